#!/usr/bin/env bash
# Install what the client suites need on a fresh Debian 12 machine: the
# callers themselves and, with --cri, a Python venv with grpcio for the CRI
# client (under build/clients/venv). Idempotent and quick when present.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$here/../../build/clients/venv

need=(podman conmon containerd docker.io containernetworking-plugins runc
  busybox-static iproute2 bsdutils util-linux python3 python3-venv)
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

[[ "${1:-}" == --cri ]] || exit 0
# Versions with wheels for Python 3.11; grpc_tools compiles the proto at run time.
pins=(grpcio==1.62.2 grpcio-tools==1.62.2 protobuf==4.25.3)
stamp=$venv/.pins
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi
