#!/bin/sh
# make bench-systemd, in the systemd lane's guest: integration/bench.py
# --systemd (hull, crun and runc with --systemd-cgroup on the same bundle,
# alternating) on the console. The lane's runner starts it as it starts a
# test binary (run-tests.sh: "--test-threads=1" then VM_TEST_ARGS, e.g.
# --quick), so it ends with the result line that runner counts.
here=$(cd "$(dirname "$0")" && pwd)
shift # --test-threads=1
if python3 "$here/../bench.py" --systemd "$@" "$HULL_BIN"; then
  echo "test result: ok. 1 passed; 0 failed; 0 ignored"
else
  echo "test result: FAILED. 0 passed; 1 failed; 0 ignored"
fi
