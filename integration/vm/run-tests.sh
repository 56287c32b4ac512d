#!/bin/sh
# The VM lanes' test loop (busybox ash or dash): run each test binary of
# the list on the console, print one HULL-VM-BINARY line per binary and the
# HULL-VM-RESULT line the host reads.
#
# usage: run-tests.sh ENV_FILE TESTS_FILE
# ENV_FILE sets HULL_BIN, VM_TEST_ARGS and VM_CWD (the repository, where
# cargo runs tests from), and in the systemd lane CLIENTS_RUNTIME.
. "$1"
export HULL_BIN CLIENTS_RUNTIME RUST_BACKTRACE=1
total_passed=0
total_failed=0
while IFS= read -r bin; do
  [ -n "$bin" ] || continue
  name=${bin##*/}
  echo "HULL-VM: running $name --test-threads=1 $VM_TEST_ARGS"
  start=$(cut -d' ' -f1 /proc/uptime)
  # Live on the console, and kept for counting.
  # shellcheck disable=SC2086 # VM_TEST_ARGS is a list of arguments
  { (cd "$VM_CWD" && exec "$bin" --test-threads=1 $VM_TEST_ARGS) </dev/null 2>&1; echo $? >/run/rc; } |
    tee /run/out
  rc=$(cat /run/rc)
  # Keep the marker at the start of a line even after a crash mid-line.
  [ -z "$(tail -c 1 /run/out)" ] || echo
  end=$(cut -d' ' -f1 /proc/uptime)
  # "test result: ok. 14 passed; 0 failed; 0 ignored; ..." (one per binary;
  # summed in case a harness prints several).
  counts=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' /run/out |
    awk '{ p += $1; f += $2 } END { print p + 0, f + 0, NR }')
  set -- $counts
  passed=$1 failed=$2 results=$3
  # A binary that crashed or failed outside any test still counts as a failure.
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  if [ "$results" = 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  echo "HULL-VM-BINARY: $name exit=$rc passed=$passed failed=$failed seconds=$(awk "BEGIN { print $end - $start }")"
done <"$2"

echo "HULL-VM-RESULT: $total_passed passed, $total_failed failed"
