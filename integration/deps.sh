#!/usr/bin/env bash
# Install the Debian packages hull's build, demo and tests need, on a fresh
# Debian 12 machine. Idempotent and quick when everything is present.
set -euo pipefail

need=(busybox-static libseccomp-dev pkg-config)
# Tests compare hull with runc on the same bundle.
need+=(runc)
# The fault-injection test kills hull create with strace's injector.
need+=(strace)
# The D-Bus client's tests talk to a real bus daemon on a private socket.
need+=(dbus-daemon)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
