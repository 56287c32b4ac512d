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

# A counter in the container's own /dev/shm (a tmpfs CRIU dumps with its
# content), read through exec: `ctr containers restore` leaves once the
# task started, and the task's output with it.
COUNTER='i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.1; done'

# count ID: the count now.
count() {
  cr task exec --exec-id "c$RANDOM" "$1" cat /dev/shm/count
}

# counts_past ID N: the count goes past N.
counts_past() {
  wait_for "$1 counting past $2" 20 sh -c "test \"\$($CTR task exec --exec-id c\$\$ $1 cat /dev/shm/count)\" -gt $2"
}

t_checkpoint_restore() {
  id=$(new_name cr) && track "$id"
  ref=localhost/clients/checkpoint:$id
  cr_detach "$id" sh -c "$COUNTER"
  wait_for "task to run" 10 status_is "$id" RUNNING
  counts_past "$id" 3
  at=$(count "$id")
  cr containers checkpoint --task --rw "$id" "$ref"
  grep -qE "checkpoint .*$id" "$CLIENTS_WORK/runtime-calls" ||
    fail "the shim did not call the runtime's checkpoint"
  # ctr leaves the task running (the shim passes --leave-running).
  expect_eq "status after checkpoint" "$(task_status "$id")" RUNNING
  cr task kill --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  cr task delete "$id"
  cr containers delete "$id"
  cr containers restore --live --rw "$id" "$ref"
  wait_for "restored task" 20 status_is "$id" RUNNING
  grep -qE "restore .*$id" "$CLIENTS_WORK/runtime-calls" ||
    fail "the shim did not call the runtime's restore"
  # From the image: at least where it was before the checkpoint (a fresh
  # start would count from 1), and on.
  now=$(count "$id")
  ((now >= at)) || fail "restored at $now, checkpointed after $at"
  counts_past "$id" "$now"
  cr task kill --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  cr task delete "$id" || true
  cr containers delete "$id"
  cr images rm "$ref" >/dev/null
}
