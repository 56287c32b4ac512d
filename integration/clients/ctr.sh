# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# containerd 1.6 driven with ctr: a private containerd (own root, state,
# socket and config, CRI plugin off) whose runc v2 shim runs the runtime
# under test (`ctr run --runc-binary`, with a private --runc-root; with
# CLIENTS_CGROUP=systemd also --runc-systemd-cgroup and a slice:prefix:name
# cgroup).
CD_DIR=$CLIENTS_WORK/ctr
RT_ROOTS=$CD_DIR/runtime-root
NS=hull-clients
CTR="ctr --address $CD_DIR/containerd.sock --namespace $NS"

cr() {
  # shellcheck disable=SC2086 # CTR is a command line
  $CTR "$@"
}

# cr_run ARGS...: ctr run with the runtime under test.
cr_run() {
  local sd=() a prev=
  if [[ "$CLIENTS_CGROUP" == systemd ]]; then
    # The container id follows the image; its scope is ctr-<id>.scope.
    for a in "$@"; do
      [[ "$prev" == "$IMG" ]] && sd=(--runc-systemd-cgroup --cgroup "system.slice:ctr:$a") && break
      prev=$a
    done
  fi
  cr run --runc-binary "$RT_CMD" --runc-root "$RT_ROOTS" --fifo-dir "$CD_DIR/fifo" "${sd[@]}" "$@"
}

# cr_detach ID ARGS...: a detached task whose output goes to $SCEN_DIR/ID.log.
cr_detach() {
  local id=$1
  shift
  cr_run -d --log-uri "file://$SCEN_DIR/$id.log" "$IMG" "$id" "$@"
}

task_status() { # ID: RUNNING, PAUSED, STOPPED...
  cr task ls | awk -v id="$1" '$1 == id {print $3}'
}

task_pid() {
  cr task ls | awk -v id="$1" '$1 == id {print $2}'
}

status_is() { # ID STATUS
  [[ "$(task_status "$1")" == "$2" ]]
}

log_has() { # ID REGEX
  grep -qE "$2" "$SCEN_DIR/$1.log"
}

# task_delete ID: delete a stopped task; print the exit code ctr only warns
# about (it exits 0 whatever the task's status was).
task_delete() {
  local out
  out=$(cr task delete "$1" 2>&1)
  echo "$out" >&2
  if [[ "$out" =~ non-zero\ exit\ code\ ([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo 0
  fi
}

suite_setup() {
  mkdir -p "$CD_DIR/fifo" "$RT_ROOTS"
  {
    containerd_config "$CD_DIR"
    echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
  } >"$CD_DIR/config.toml"
  # One disabled_plugins list: fold the CRI plugin into it.
  sed -i '/^disabled_plugins = \["io.containerd.grpc.v1.cri"\]$/d' "$CD_DIR/config.toml"
  sed -i 's|^disabled_plugins = \[|disabled_plugins = ["io.containerd.grpc.v1.cri", |' "$CD_DIR/config.toml"
  start_containerd "$CD_DIR"
  cr images import --no-unpack=false "$IMAGES_TAR" >/dev/null
}

suite_teardown() {
  local id
  for id in $(cr task ls -q 2>/dev/null); do cr task delete --force "$id" || true; done
  for id in $(cr containers ls -q 2>/dev/null); do cr containers delete "$id" || true; done
  stop_daemon "$CD_DIR/containerd.pid"
  # containerd leaves the namespace's cgroupfs parent behind.
  find /sys/fs/cgroup/*/"$NS" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

suite_force_remove() {
  cr task delete --force "$1" || true
  cr containers delete "$1" || true
}

# --- scenarios -----------------------------------------------------------

t_run_rm() {
  id=$(new_name run) && track "$id"
  out=$(cr_run --rm "$IMG" "$id" echo hello from ctr)
  expect_eq "output" "$out" "hello from ctr"
}

t_exit_code() {
  id=$(new_name exit) && track "$id"
  expect_eq "exit code" "$(rc_of cr_run --rm "$IMG" "$id" sh -c 'exit 42')" 42
}

t_stdin() {
  id=$(new_name stdin) && track "$id"
  # ctr run never closes the task's stdin: read what is sent, not to EOF.
  out=$(printf 'one\ntwo\n' | cr_run --rm "$IMG" "$id" sh -c 'head -n 2 | tr a-z A-Z; echo done')
  expect_eq "output" "$out" $'ONE\nTWO\ndone'
}

t_tty() {
  id=$(new_name tty) && track "$id"
  out=$(on_terminal "$CTR run --runc-binary $RT_CMD --runc-root $RT_ROOTS --fifo-dir $CD_DIR/fifo \
    --rm -t $IMG $id sh -c 'test -t 0 && test -t 1 && tty'")
  expect_match "tty" "$out" "$TTY_LINE"
}

t_detach_kill_delete() {
  id=$(new_name detach) && track "$id"
  cr_detach "$id" sh -c 'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done'
  wait_for "ready" 10 log_has "$id" '^ready$'
  expect_eq "status" "$(task_status "$id")" RUNNING
  cr task kill "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  expect_eq "exit code" "$(task_delete "$id")" 3
  cr containers delete "$id"
}

t_kill_exited() {
  # The shim reads the runtime's error to tell "already gone" from a failure.
  id=$(new_name killx) && track "$id"
  cr_detach "$id" true
  wait_for "task to stop" 10 status_is "$id" STOPPED
  out=$(cr task kill --signal SIGKILL "$id" 2>&1) && rc=0 || rc=$?
  expect_eq "kill of an exited task: exit code" "$rc" 1
  expect_match "kill of an exited task: error" "$out" "process already finished: not found"
  expect_eq "exit code" "$(task_delete "$id")" 0
  cr containers delete "$id"
}

t_kill_all() {
  id=$(new_name killall) && track "$id"
  # pid 1 ignores SIGTERM; only kill --all reaches its children.
  cr_detach "$id" sh -c 'sleep 1000 & sleep 1001 & echo ready; exec sleep 1002'
  wait_for "ready" 10 log_has "$id" '^ready$'
  wait_for "3 processes" 10 sh -c "test \$($CTR task ps $id | tail -n +2 | wc -l) = 3"
  cr task kill --all "$id"
  wait_for "children to go" 10 sh -c "test \$($CTR task ps $id | tail -n +2 | wc -l) = 1"
  expect_eq "status" "$(task_status "$id")" RUNNING
  cr task kill --all --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  expect_eq "exit code" "$(task_delete "$id")" 137
  cr containers delete "$id"
}

t_task_exec() {
  id=$(new_name exec) && track "$id"
  cr_detach "$id" sleep 1000
  out=$(cr task exec --exec-id e1 --fifo-dir "$CD_DIR/fifo" "$id" sh -c 'echo in $(cat /proc/1/comm)')
  expect_eq "exec output" "$out" "in sleep"
  expect_eq "exec exit code" "$(rc_of cr task exec --exec-id e2 --fifo-dir "$CD_DIR/fifo" "$id" sh -c 'exit 7')" 7
  out=$(on_terminal "$CTR task exec -t --exec-id e3 --fifo-dir $CD_DIR/fifo $id tty")
  expect_match "exec -t" "$out" "$TTY_LINE"
  cr task delete --force "$id"
  cr containers delete "$id"
}

t_pause_resume() {
  id=$(new_name pause) && track "$id"
  cr_detach "$id" sh -c "$TICKER"
  wait_for "ticks" 10 log_has "$id" '^tick'
  cr task pause "$id"
  expect_eq "status" "$(task_status "$id")" PAUSED
  sleep 0.3 # a tick written just before the freeze may still be on its way
  n=$(wc -l <"$SCEN_DIR/$id.log")
  sleep 1
  expect_eq "ticks while paused" "$(wc -l <"$SCEN_DIR/$id.log")" "$n"
  cr task resume "$id"
  expect_eq "status" "$(task_status "$id")" RUNNING
  wait_for "ticks after resume" 10 sh -c "test \$(wc -l <$SCEN_DIR/$id.log) -gt $n"
  cr task delete --force "$id"
  cr containers delete "$id"
}

t_exec_after_resume() {
  id=$(new_name execres) && track "$id"
  cr_detach "$id" sleep 1000
  cr task pause "$id"
  cr task resume "$id"
  expect_eq "exec" "$(cr task exec --exec-id e1 --fifo-dir "$CD_DIR/fifo" "$id" echo alive)" alive
  cr task delete --force "$id"
  cr containers delete "$id"
}

t_task_ps() {
  id=$(new_name ps) && track "$id"
  cr_detach "$id" sh -c 'sleep 1000 & exec sleep 1001'
  wait_for "2 processes" 10 sh -c "test \$($CTR task ps $id | tail -n +2 | wc -l) = 2"
  pids=$(cr task ps "$id" | awk 'NR > 1 {print $1}' | sort -n | tr '\n' ' ')
  expect_match "task ps lists the init" " $pids" " $(task_pid "$id") "
  for p in $pids; do
    expect_match "process $p" "$(tr '\0' ' ' </proc/"$p"/cmdline)" '^sleep 100[01] $'
  done
  cr task delete --force "$id"
  cr containers delete "$id"
}

t_metrics() {
  id=$(new_name metrics) && track "$id"
  cr_run -d --memory-limit 67108864 "$IMG" "$id" sh -c 'sleep 1000 & exec sleep 1001'
  wait_for "2 processes" 10 sh -c "test \$($CTR task ps $id | tail -n +2 | wc -l) = 2"
  out=$(cr task metrics "$id")
  # containerd's names for the v1 or the v2 files.
  expect_match "memory limit" "$out" 'memory\.(limit_in_bytes|usage_limit) +67108864'
  expect_match "memory usage" "$out" 'memory\.usage(_in_bytes)? +[1-9][0-9]*'
  expect_match "pids" "$out" 'pids.current +2'
  cr task delete --force "$id"
  cr containers delete "$id"
}

t_limits() {
  id=$(new_name limits) && track "$id"
  # ctr's default spec has no /sys/fs/cgroup: ask for the cgroup mount.
  out=$(cr_run --rm --memory-limit 67108864 --cpu-quota 50000 --cpu-period 100000 --cpu-shares 512 \
    --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec \
    "$IMG" "$id" sh -c "$CG_FUNCS; mem; quota; shares")
  expect_eq "memory, cpu quota, shares inside" "$out" 67108864$'\n'50000$'\n'"$SHARES_512"
}

t_read_only() {
  id=$(new_name ro) && track "$id"
  out=$(cr_run --rm --read-only "$IMG" "$id" sh -c 'touch /bin/x 2>&1; touch /dev/shm/x && echo shm writable')
  expect_match "rootfs write" "$out" "Read-only file system"
  expect_match "/dev/shm" "$out" "shm writable"
}

t_cap_drop() {
  id=$(new_name caps) && track "$id"
  out=$(cr_run --rm --cap-drop CAP_CHOWN "$IMG" "$id" sh -c '
    grep ^CapEff /proc/self/status; touch /tmp/f; chown 1000 /tmp/f 2>&1 || echo chown denied')
  expect_match "caps" "$out" $'CapEff:\t00000000a80425fa'
  expect_match "chown" "$out" "chown denied"
}

t_env_cwd() {
  id=$(new_name env) && track "$id"
  out=$(cr_run --rm --env FOO=bar --cwd /home/app "$IMG" "$id" sh -c 'echo "$FOO $(pwd) $(id -u)"')
  expect_eq "env, cwd" "$out" "bar /home/app 0"
}

# No user namespace scenario here: with --uidmap, ctr 1.6 sets task options
# of its own (the I/O owner) that replace the container's runtime options, so
# the shim runs /run/containerd/runc's default runc, not the runtime under test.

t_forced_delete() {
  id=$(new_name force) && track "$id"
  cr_detach "$id" sleep 1000
  pid=$(task_pid "$id")
  cr task delete --force "$id"
  [[ -z "$(task_status "$id")" ]] || fail "task still listed"
  ! alive "$pid" || fail "init $pid still running"
  cr containers delete "$id"
}

t_forced_delete_paused() {
  # A frozen task must be thawed to die: delete --force has to manage that.
  id=$(new_name fpause) && track "$id"
  cr_detach "$id" sleep 1000
  pid=$(task_pid "$id")
  cr task pause "$id"
  # The shim sends SIGKILL and waits for the exit, which a runtime that
  # leaves the cgroup frozen never lets come.
  # shellcheck disable=SC2086 # CTR is a command line
  if ! timeout 10 $CTR task delete --force "$id"; then
    fail "task delete --force of a paused task hung; the task is $(task_status "$id"), its freezer $(
      cat /sys/fs/cgroup/freezer/"$NS/$id"/freezer.state 2>/dev/null || echo unknown)"
  fi
  [[ -z "$(task_status "$id")" ]] || fail "task still listed"
  ! alive "$pid" || fail "init $pid still running"
  cr containers delete "$id"
}

t_oom_event() {
  id=$(new_name oom) && track "$id"
  cr events >"$SCEN_DIR/events" 2>&1 &
  events=$!
  trap 'kill $events' EXIT
  sleep 0.2
  expect_eq "exit code" "$(rc_of cr_run --rm --memory-limit 33554432 "$IMG" "$id" sh -c "$MEMORY_HOG")" 137
  wait_for "the OOM event" 10 grep -q "/tasks/oom.*$id" "$SCEN_DIR/events"
}

# The systemd driver (`SystemdCgroup = true` in containerd's runc options):
# the scope ctr-ID.scope in system.slice, gone with the task.
t_systemd_scope() {
  id=$(new_name scope) && track "$id"
  cr_detach "$id" sleep 1000
  wait_for "task to run" 10 status_is "$id" RUNNING
  expect_scope "ctr-$id.scope" "$(task_pid "$id")" "/system.slice/ctr-$id.scope"
  cr task kill --signal SIGKILL "$id"
  wait_for "task to stop" 10 status_is "$id" STOPPED
  cr task delete "$id"
  cr containers delete "$id"
  expect_scope_gone "ctr-$id.scope"
}
