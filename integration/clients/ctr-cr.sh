# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# containerd 1.6's checkpoint through its runc v2 shim (`ctr containers
# checkpoint --task`, an image with the CRIU dump) and restore from it
# (`ctr containers restore --live`), with the runtime under test and CRIU,
# as ctr.sh sets containerd up. Debian's CRIU 3.17 dumps on the 6.1 kernel
# of the systemd lane, not on our machines' 6.18: only when asked for (make
# test-systemd-clients), not in run.sh's default suites.
# shellcheck source=ctr.sh
source "$CLIENTS_HERE/ctr.sh"

COUNTER='i=0; while :; do i=$((i+1)); echo "n$i"; sleep 0.1; done'

# last_in FILE: the highest count in FILE.
last_in() {
  sed -n 's/^n\([0-9]*\)\r\{0,1\}$/\1/p' "$1" | sort -n | tail -n1
}

t_checkpoint_restore() {
  id=$(new_name cr) && track "$id"
  ref=localhost/clients/checkpoint:$id
  cr_detach "$id" sh -c "$COUNTER"
  wait_for "counting" 10 log_has "$id" '^n3$'
  cr containers checkpoint --task --rw "$id" "$ref"
  grep -qE "checkpoint .*$id" "$CLIENTS_WORK/runtime-calls" ||
    fail "the shim did not call the runtime's checkpoint"
  # ctr leaves the task running (the shim passes --leave-running).
  expect_eq "status after checkpoint" "$(task_status "$id")" RUNNING
  cr task kill --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  cr task delete "$id"
  cr containers delete "$id"
  at=$(last_in "$SCEN_DIR/$id.log")
  # The restored task's output comes to ctr, which stays attached.
  setsid $CTR containers restore --live --rw "$id" "$ref" >"$SCEN_DIR/restored.log" 2>&1 </dev/null &
  wait_for "restored task" 20 status_is "$id" RUNNING
  grep -qE "restore .*$id" "$CLIENTS_WORK/runtime-calls" ||
    fail "the shim did not call the runtime's restore"
  wait_for "counting past $at" 20 sh -c "test \"\$(sed -n 's/^n\([0-9]*\)\r\{0,1\}\$/\1/p' $SCEN_DIR/restored.log | sort -n | tail -n1)\" -gt $at"
  expect_match "exec" "$(cr task exec --exec-id e1 "$id" echo inside)" '^inside'
  cr task kill --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  cr task delete "$id" || true
  cr containers delete "$id"
  cr images rm "$ref" >/dev/null
}
