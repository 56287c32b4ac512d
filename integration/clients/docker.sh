# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# Docker Engine 20.10 (Debian's docker.io) driving the runtime under test: a
# private dockerd (own data-root, exec-root, pidfile, socket, config file and
# trust key, in a network namespace of its own, no bridge, no iptables, no
# sysctls, cgroupfs) with the runtime added as the default (`--add-runtime`;
# the name runc is reserved, so Debian's runc is added as "test-runc"). The
# containerd it manages lives under those roots too.
DK_DIR=$CLIENTS_WORK/docker
RT_ROOTS=$DK_DIR/exec
DK_RUNTIME=$RT_NAME
[[ "$RT_NAME" == runc ]] && DK_RUNTIME=test-runc
export DOCKER_CONFIG=$DK_DIR/client
# One string, so that script(1) can run docker on a terminal. /usr/bin/docker
# is Debian's client, whatever else PATH has.
DOCKER="/usr/bin/docker --host unix://$DK_DIR/docker.sock"

dk() {
  # shellcheck disable=SC2086 # DOCKER is a command line
  $DOCKER "$@"
}

# dk_run|dk_create ARGS...: track the container through --cidfile.
dk_run() { dk_new run "$@"; }
dk_create() { dk_new create "$@"; }
dk_new() {
  local verb=$1 cid rc=0
  shift
  cid=$(mktemp -u "$SCEN_DIR/cid.XXXXXX")
  dk "$verb" --network none --cidfile "$cid" "$@" || rc=$?
  [[ -s "$cid" ]] && track "$(cat "$cid")"
  return "$rc"
}

state() { # ID GO-TEMPLATE
  dk inspect --format "$2" "$1"
}

status_is() { # ID STATUS
  [[ "$(state "$1" '{{.State.Status}}')" == "$2" ]]
}

dk_wait_log() { # ID REGEX
  wait_for "'$2' in the logs of $1" 20 sh -c "$DOCKER logs $1 2>&1 | grep -qE '$2'"
}

# The containers' parent: a cgroup, or with the systemd driver a slice.
if [[ "$CLIENTS_CGROUP" == systemd ]]; then
  DK_PARENT=hull-clients-docker.slice
else
  DK_PARENT=/hull-clients-docker
fi

suite_setup() {
  mkdir -p "$DK_DIR/data" "$RT_ROOTS" "$DOCKER_CONFIG"
  echo "{\"deprecated-key-path\": \"$DK_DIR/key.json\"}" >"$DK_DIR/daemon.json"
  start_daemon "$DK_DIR/dockerd.pid.launch" "$DK_DIR/dockerd.log" \
    unshare --net dockerd --config-file "$DK_DIR/daemon.json" \
    --data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" --pidfile "$DK_DIR/dockerd.pid" \
    --host "unix://$DK_DIR/docker.sock" --bridge none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --userland-proxy=false --storage-driver overlay2 \
    --exec-opt "native.cgroupdriver=$CLIENTS_CGROUP" --cgroup-parent "$DK_PARENT" \
    --add-runtime "$DK_RUNTIME=$RT_CMD" --default-runtime "$DK_RUNTIME"
  wait_for "dockerd on $DK_DIR/docker.sock" 60 dk version
  dk load --quiet --input "$IMAGES_TAR"
}

suite_teardown() {
  local ids
  ids=$(dk ps --all --quiet 2>/dev/null) || true
  # shellcheck disable=SC2086 # one id per word
  [[ -z "$ids" ]] || dk rm --force $ids || true
  stop_daemon "$DK_DIR/dockerd.pid.launch"
  find /sys/fs/cgroup/*/hull-clients-docker -depth -type d -exec rmdir {} + 2>/dev/null || true
}

suite_force_remove() {
  dk rm --force "$1"
}

# --- scenarios -----------------------------------------------------------

t_info() {
  # dockerd runs `RUNTIME --version` and wants a line with "version" in it.
  expect_eq "default runtime" "$(dk info --format '{{.DefaultRuntime}}')" "$DK_RUNTIME"
  if grep "failed to parse $RT_CMD version" "$DK_DIR/dockerd.log" >&2; then
    fail "dockerd cannot parse \`$RT_BIN --version\`: $("$RT_BIN" --version | head -n1)"
  fi
}

t_run_rm() {
  out=$(dk_run --rm "$IMG" echo hello from docker)
  expect_eq "output" "$out" "hello from docker"
}

t_exit_code() {
  expect_eq "exit code" "$(rc_of dk_run --rm "$IMG" sh -c 'exit 42')" 42
}

t_stdin() {
  out=$(printf 'one\ntwo\n' | dk_run --rm -i "$IMG" sh -c 'tr a-z A-Z; echo done')
  expect_eq "output" "$out" $'ONE\nTWO\ndone'
}

t_tty() {
  out=$(on_terminal "$DOCKER run --rm -t --network none $IMG sh -c 'test -t 0 && test -t 1 && tty'")
  expect_match "tty" "$out" "$TTY_LINE"
  expect_eq "exit code" "$(rc_of on_terminal "$DOCKER run --rm -t --network none $IMG sh -c 'exit 4'")" 4
}

t_detach_stop_rm() {
  id=$(dk_run -d "$IMG" sh -c 'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done')
  dk_wait_log "$id" '^ready$'
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  pid=$(state "$id" '{{.State.Pid}}')
  alive "$pid" || fail "container init $pid not running"
  dk stop --time 10 "$id"
  expect_eq "status after stop" "$(state "$id" '{{.State.Status}}')" exited
  expect_eq "exit code after stop" "$(state "$id" '{{.State.ExitCode}}')" 3
  dk rm "$id"
  expect_eq "inspect after rm" "$(rc_of dk inspect "$id")" 1
}

t_stop_escalates() {
  id=$(dk_run -d "$IMG" sleep 1000)
  start=$SECONDS
  dk stop --time 1 "$id"
  ((SECONDS - start < 10)) || fail "stop took $((SECONDS - start))s"
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 137
  dk rm "$id"
}

t_kill_signal() {
  id=$(dk_run -d "$IMG" sh -c 'trap "echo got USR1; exit 5" USR1; echo ready; while :; do sleep 0.1; done')
  dk_wait_log "$id" '^ready$'
  dk kill --signal USR1 "$id"
  wait_for "exit after USR1" 10 status_is "$id" exited
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 5
  expect_eq "logs" "$(dk logs "$id")" $'ready\ngot USR1'
  dk rm "$id"
}

t_exec() {
  id=$(dk_run -d --memory 64m "$IMG" sleep 1000)
  out=$(dk exec "$id" sh -c 'echo in $(cat /proc/1/comm) as $(id -u)')
  expect_eq "exec output" "$out" "in sleep as 0"
  expect_eq "exec exit code" "$(rc_of dk exec "$id" sh -c 'exit 7')" 7
  out=$(echo piped | dk exec -i "$id" cat)
  expect_eq "exec stdin" "$out" piped
  out=$(dk exec --user 1000 --workdir /tmp --env X=y "$id" sh -c 'echo $(id -u) $(pwd) $X')
  expect_eq "exec user/cwd/env" "$out" "1000 /tmp y"
  # The exec'd process joins the container's cgroups and sees its limits.
  out=$(dk exec "$id" sh -c 'cat /proc/self/cgroup; echo --; cat /proc/1/cgroup')
  expect_eq "exec'd process's cgroups" "${out%%--*}" "${out#*--$'\n'}"$'\n'
  expect_eq "memory limit seen by exec" "$(dk exec "$id" sh -c "$CG_FUNCS; mem")" 67108864
  dk rm --force "$id"
}

t_exec_tty() {
  id=$(dk_run -d "$IMG" sleep 1000)
  out=$(on_terminal "$DOCKER exec -t $id sh -c 'test -t 0 && tty'")
  expect_match "tty" "$out" "$TTY_LINE"
  dk rm --force "$id"
}

t_memory() {
  out=$(dk_run --rm --memory 64m --memory-swap 64m "$IMG" sh -c "$CG_FUNCS; mem")
  expect_eq "memory limit inside" "$out" 67108864
}

t_pids_limit() {
  out=$(dk_run --rm --pids-limit 50 "$IMG" sh -c "$CG_FUNCS; pids")
  expect_eq "pids limit inside" "$out" 50
  out=$(dk_run --rm --pids-limit 3 "$IMG" sh -c '(sleep 1 & sleep 1 & wait) 2>&1; echo rc=$?')
  expect_match "fork past the limit" "$out" "can't fork"
  # Docker's two spellings of "unlimited".
  for unlimited in -1 0; do
    out=$(dk_run --rm "--pids-limit=$unlimited" "$IMG" sh -c "$CG_FUNCS; pids; (true) && echo forked")
    expect_eq "pids limit $unlimited" "$out" "$NO_PIDS_LIMIT"$'\nforked'
  done
}

t_cpus() {
  out=$(dk_run --rm --cpus 0.5 --cpu-shares 512 "$IMG" sh -c "$CG_FUNCS; quota; shares")
  expect_eq "cpu quota, shares inside" "$out" 50000$'\n'"$SHARES_512"
}

t_update() {
  id=$(dk_run -d --memory 64m --memory-swap 128m "$IMG" sh -c "$CG_FUNCS; $WATCH_LIMITS")
  dk_wait_log "$id" '^mem=67108864 quota=-1$'
  dk update --memory 96m --memory-swap 128m --cpus 0.25 --pids-limit 40 "$id"
  dk_wait_log "$id" '^mem=100663296 quota=25000$'
  expect_eq "inspect" "$(state "$id" '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}')" "100663296 40"
  dk rm --force "$id"
}

t_read_only() {
  out=$(dk_run --rm --read-only --tmpfs /tmp --tmpfs /run:size=1m "$IMG" sh -c '
    touch /bin/x 2>&1; touch /tmp/x && echo tmp writable
    grep -E " /run | /tmp " /proc/self/mountinfo | cut -d" " -f5,9 | sort')
  expect_match "rootfs write" "$out" "Read-only file system"
  expect_match "/tmp" "$out" "tmp writable"
  expect_match "mounts" "$out" $'/run tmpfs\n/tmp tmpfs'
}

t_cap_drop_all() {
  out=$(dk_run --rm --cap-drop ALL "$IMG" sh -c '
    grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /tmp/f; chown 1000 /tmp/f 2>&1 || echo chown denied')
  expect_match "caps" "$out" $'CapEff:\t0000000000000000\nCapBnd:\t0000000000000000'
  expect_match "chown" "$out" "chown denied"
  out=$(dk_run --rm --cap-drop ALL --cap-add CHOWN "$IMG" sh -c 'grep ^CapEff /proc/self/status')
  expect_eq "cap-add CHOWN" "$out" $'CapEff:\t0000000000000001'
}

t_user() {
  expect_match "--user 1000:1000" "$(dk_run --rm --user 1000:1000 "$IMG" id)" '^uid=1000\(app\) gid=1000\(app\)'
  expect_match "--user nobody" "$(dk_run --rm --user nobody "$IMG" id)" '^uid=65534\(nobody\) gid=65534\(nogroup\)'
  expect_match "write as nobody" "$(dk_run --rm --user nobody "$IMG" sh -c 'touch /etc/x 2>&1')" "Permission denied"
}

t_env_workdir() {
  out=$(dk_run --rm --env FOO=bar --workdir /home/app --hostname box "$IMG" sh -c 'echo "$FOO $(pwd) $(hostname) $PATH"')
  expect_eq "env, cwd, hostname" "$out" "bar /home/app box /usr/sbin:/usr/bin:/sbin:/bin"
}

t_pause_unpause() {
  id=$(dk_run -d "$IMG" sh -c "$TICKER")
  dk_wait_log "$id" '^tick'
  dk pause "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" paused
  sleep 0.3 # a tick written just before the freeze may still be on its way
  n=$(dk logs "$id" | wc -l)
  sleep 1
  expect_eq "ticks while paused" "$(dk logs "$id" | wc -l)" "$n"
  dk unpause "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  wait_for "ticks after unpause" 10 sh -c "test \$($DOCKER logs $id | wc -l) -gt $n"
  dk rm --force "$id"
}

t_exec_after_unpause() {
  id=$(dk_run -d "$IMG" sleep 1000)
  dk pause "$id"
  dk unpause "$id"
  expect_eq "exec" "$(dk exec "$id" echo alive)" alive
  dk rm --force "$id"
}

t_top() {
  # docker top asks the runtime for the pids (`ps`), then ps(1) on the host.
  id=$(dk_run -d "$IMG" sh -c 'sleep 1000 & exec sleep 1001')
  wait_for "two processes" 10 sh -c "$DOCKER top $id | grep -q 'sleep 1000'"
  out=$(dk top "$id" -o pid,args)
  expect_match "top" "$out" $'PID +COMMAND *\n[0-9]+ +sleep 100[01] *\n[0-9]+ +sleep 100[01]'
  dk rm --force "$id"
}

t_stats() {
  id=$(dk_run -d --memory 64m "$IMG" sh -c 'sleep 1000 & exec sleep 1001')
  wait_for "two processes" 10 sh -c "$DOCKER top $id | grep -q 'sleep 1000'"
  out=$(dk stats --no-stream --format '{{.PIDs}} {{.MemUsage}}' "$id")
  expect_match "stats" "$out" '^2 [0-9.]+[KMG]?i?B / 64MiB$'
  dk rm --force "$id"
}

t_restart() {
  id=$(dk_run -d "$IMG" sh -c "$TICKER")
  pid=$(state "$id" '{{.State.Pid}}')
  dk restart --time 1 "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  pid2=$(state "$id" '{{.State.Pid}}')
  if [[ "$pid2" == "$pid" ]] || ! alive "$pid2"; then fail "init pid $pid -> $pid2 after restart"; fi
  wait_for "ticks from the start again" 10 sh -c "$DOCKER logs $id | grep -c '^tick 1$' | grep -qx 2"
  dk rm --force "$id"
}

t_exec_after_restart() {
  id=$(dk_run -d "$IMG" sleep 1000)
  dk restart --time 0 "$id"
  expect_eq "exec" "$(dk exec "$id" cat /proc/1/cmdline | tr '\0' ' ')" "sleep 1000 "
  dk rm --force "$id"
}

t_restart_policy() {
  id=$(dk_run -d --restart on-failure:2 "$IMG" sh -c 'echo run; exit 3')
  wait_for "restarts to end" 30 sh -c "test \"\$($DOCKER inspect --format '{{.State.Status}} {{.RestartCount}}' $id)\" = 'exited 2'"
  expect_eq "runs" "$(dk logs "$id" | grep -c '^run$')" 3
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 3
  dk rm "$id"
}

t_oom_killed() {
  id=$(new_name oom)
  expect_eq "exit code" "$(rc_of dk_run --name "$id" --memory 32m --memory-swap 32m "$IMG" sh -c "$MEMORY_HOG")" 137
  # The shim's OOM event may reach dockerd after the exit event.
  wait_for "OOMKilled" 20 sh -c "test \"\$($DOCKER inspect --format '{{.State.OOMKilled}}' $id)\" = true"
  dk rm "$id"
}

t_rm_force_paused() {
  id=$(dk_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  dk pause "$id"
  # shellcheck disable=SC2086 # DOCKER is a command line
  timeout 20 $DOCKER rm --force "$id" || fail "rm --force of a paused container failed or hung"
  expect_eq "inspect after rm -f" "$(rc_of dk inspect "$id")" 1
  ! alive "$pid" || fail "init $pid still running"
}

t_rm_force_running() {
  id=$(dk_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  dk rm --force "$id"
  expect_eq "inspect after rm -f" "$(rc_of dk inspect "$id")" 1
  ! alive "$pid" || fail "init $pid still running"
}

t_security_defaults() {
  out=$(dk_run --rm "$IMG" sh -c '
    grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status
    wc -c </proc/timer_list; ls /sys/firmware | wc -l
    echo 1 2>&1 >/proc/sys/kernel/domainname | grep -o "Read-only file system"
    touch /sys/x 2>&1 | grep -o "Read-only file system"
    head -c1 /dev/zero | wc -c')
  expect_eq "seccomp, no_new_privs, masked and read-only paths, /dev" "$out" \
    $'NoNewPrivs:\t0\nSeccomp:\t2\n0\n0\nRead-only file system\nRead-only file system\n1'
}

# No --privileged scenario: dockerd asks for every capability, and runc
# refuses CAP_SYS_RESOURCE, which this machine's bounding set lacks.

t_volumes() {
  mkdir -p "$SCEN_DIR/host"
  echo from-host >"$SCEN_DIR/host/in"
  out=$(dk_run --rm -v "$SCEN_DIR/host:/data" "$IMG" sh -c 'cat /data/in; echo from-container >/data/out')
  expect_eq "bind mount read" "$out" from-host
  expect_eq "bind mount write" "$(cat "$SCEN_DIR/host/out")" from-container
  out=$(dk_run --rm -v "$SCEN_DIR/host:/data:ro" "$IMG" sh -c 'touch /data/x 2>&1 || true')
  expect_match "read-only bind mount" "$out" "Read-only file system"
  vol=$(new_name vol)
  dk volume create "$vol" >/dev/null
  dk_run --rm -v "$vol:/v" "$IMG" sh -c 'echo kept >/v/f'
  expect_eq "named volume kept" "$(dk_run --rm -v "$vol:/v" "$IMG" cat /v/f)" kept
  dk volume rm "$vol"
}

# The systemd driver (Docker's default on cgroup v2): the scope
# docker-ID.scope in the --cgroup-parent slice, expanded as systemd does.
t_systemd_scope() {
  id=$(dk_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  expect_scope "docker-$id.scope" "$pid" \
    "/hull.slice/hull-clients.slice/hull-clients-docker.slice/docker-$id.scope"
  dk rm --force "$id"
  expect_scope_gone "docker-$id.scope"
}
