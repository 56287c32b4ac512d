# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# podman 4.3's `container checkpoint` / `restore` driving the runtime under
# test and CRIU, as podman.sh sets podman up. Debian's CRIU 3.17 dumps on
# the 6.1 kernel of the systemd lane, not on our machines' 6.18: only when
# asked for (make test-systemd-clients), not in run.sh's default suites.
# shellcheck source=podman.sh
source "$CLIENTS_HERE/podman.sh"

# A counter on stdout: a restored one goes on from where it was.
COUNTER='i=0; while :; do i=$((i+1)); echo "n$i"; sleep 0.1; done'

# last_count ID: the highest count in the container's logs.
last_count() {
  pm logs "$1" 2>/dev/null | sed -n 's/^n\([0-9]*\)$/\1/p' | sort -n | tail -n1
}

# counted_once ID: the log counts 1 once: a restored counter went on, it
# did not start again.
counted_once() {
  expect_eq "times the log counts 1" "$(pm logs "$1" | grep -c $'^n1\r\{0,1\}$')" 1
}

# counts_past ID N: the logs go past N.
counts_past() {
  wait_for "$1 counting past $2" 20 sh -c "test \"\$($PODMAN logs $1 | sed -n 's/^n\([0-9]*\)\$/\1/p' | sort -n | tail -n1)\" -gt $2"
}

t_checkpoint_restore() {
  id=$(pm_run -d "$IMG" sh -c "$COUNTER")
  pm_wait_log "$id" '^n3$'
  pm container checkpoint "$id"
  expect_eq "status after checkpoint" "$(state "$id" '{{.State.Status}}')" exited
  grep -qE "^(--root [^ ]+ )?checkpoint .*$id" "$CLIENTS_WORK/runtime-calls" ||
    fail "podman did not call the runtime's checkpoint"
  at=$(last_count "$id")
  pm container restore "$id"
  expect_eq "status after restore" "$(state "$id" '{{.State.Status}}')" running
  counts_past "$id" "$at"
  counted_once "$id"
  # The restored container is the runtime's as any other: exec, stop, rm.
  expect_eq "exec" "$(pm exec "$id" echo inside)" inside
  pm stop --time 1 "$id"
  pm rm "$id"
}

t_leave_running() {
  id=$(pm_run -d "$IMG" sh -c "$COUNTER")
  pm_wait_log "$id" '^n3$'
  pid=$(state "$id" '{{.State.Pid}}')
  pm container checkpoint --leave-running "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  expect_eq "pid" "$(state "$id" '{{.State.Pid}}')" "$pid"
  counts_past "$id" "$(last_count "$id")"
  pm rm --force --time 0 "$id"
}

t_export_import() {
  id=$(pm_run -d "$IMG" sh -c "$COUNTER")
  pm_wait_log "$id" '^n3$'
  pm container checkpoint --export "$SCEN_DIR/cp.tar.gz" "$id"
  at=$(last_count "$id")
  pm rm "$id"
  # A new container from the exported checkpoint.
  new=$(pm container restore --import "$SCEN_DIR/cp.tar.gz" --name "cr-import-$$" | tail -n1)
  track "$new"
  expect_eq "status" "$(state "$new" '{{.State.Status}}')" running
  counts_past "$new" "$at"
  pm rm --force --time 0 "$new"
}

t_pre_checkpoint() {
  id=$(pm_run -d "$IMG" sh -c "$COUNTER")
  pm_wait_log "$id" '^n3$'
  pm container checkpoint --pre-checkpoint "$id"
  expect_eq "status after pre-dump" "$(state "$id" '{{.State.Status}}')" running
  pm container checkpoint --with-previous "$id"
  at=$(last_count "$id")
  pm container restore "$id"
  counts_past "$id" "$at"
  counted_once "$id"
  pm rm --force --time 0 "$id"
}

t_tty() {
  id=$(pm_run -dt "$IMG" sh -c "$COUNTER")
  pm_wait_log "$id" '^n3'
  pm container checkpoint "$id"
  pm container restore "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  expect_match "tty" "$(pm exec "$id" sh -c 'readlink /proc/1/fd/1')" '^/dev/pts/'
  pm rm --force --time 0 "$id"
}
