#!/bin/sh
# make test-systemd-clients, in the systemd lane's guest: the callers in
# their systemd configurations (integration/clients/run.sh with
# CLIENTS_CGROUP=systemd) driving hull, or Debian's runc with
# RUNTIME=runc, on the scenarios given (VM_TEST_ARGS; all when none). The
# lane's runner starts it as it starts a test binary (run-tests.sh:
# "--test-threads=1" then VM_TEST_ARGS), so it ends with the result line
# that runner counts.
here=$(cd "$(dirname "$0")" && pwd)
shift # --test-threads=1
out=/run/clients.out
CLIENTS_CGROUP=systemd CLIENTS_NO_INSTALL=1 RUNTIME=${CLIENTS_RUNTIME:-hull} HULL=$HULL_BIN \
  bash "$here/../clients/run.sh" "$@" 2>&1 | tee "$out"
# "clients: 12 passed, 0 failed, 1 skipped"
set -- $(sed -n 's/^clients: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$out")
word=ok
[ "${2:-1}" = 0 ] || word=FAILED
echo "test result: $word. ${1:-0} passed; ${2:-1} failed; 0 ignored"
