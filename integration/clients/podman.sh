# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# podman 4.3 + conmon 2.1.6 driving the runtime under test, on private
# storage, run and tmp dirs, file events and no network, with the cgroup
# driver CLIENTS_CGROUP (systemd: podman's default on a systemd host). podman's
# runtime wrapper also adds the runtime's private --root, because `podman
# --runtime-flag` is not passed to the cleanup process conmon starts (the
# runtime state would leak with any runtime).
PM_DIR=$CLIENTS_WORK/podman
RT_ROOTS=$PM_DIR/runtime-root
# containers/storage keeps its overlay home bind-mounted (private) while any
# podman holds a layer; it is not any one container's.
# shellcheck disable=SC2034 # read by lib.sh
CALLER_MOUNTS=$PM_DIR/root/overlay
export CONTAINERS_CONF=$PM_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PM_DIR/storage.conf
export CONTAINERS_REGISTRIES_CONF=$PM_DIR/registries.conf
# One string, so that script(1) can run podman on a terminal.
PODMAN="podman --root $PM_DIR/root --runroot $PM_DIR/runroot --tmpdir $PM_DIR/tmp \
--runtime $PM_DIR/bin/$RT_NAME --cgroup-manager=$CLIENTS_CGROUP --events-backend=file"

pm() {
  # shellcheck disable=SC2086 # PODMAN is a command line
  $PODMAN "$@"
}

# pm_run|pm_create ARGS...: track the container through --cidfile.
pm_run() { pm_new run "$@"; }
pm_create() { pm_new create "$@"; }
pm_new() {
  local verb=$1 cid rc=0
  shift
  cid=$(mktemp -u "$SCEN_DIR/cid.XXXXXX")
  pm "$verb" --network none --cidfile "$cid" "$@" || rc=$?
  [[ -s "$cid" ]] && track "$(cat "$cid")"
  return "$rc"
}

# pm_wait_log ID REGEX: wait until the container's output has a matching line.
pm_wait_log() {
  wait_for "'$2' in the logs of $1" 20 sh -c "$PODMAN logs $1 | grep -qE '$2'"
}

state() { # ID GO-TEMPLATE
  pm inspect --format "$2" "$1"
}

status_is() { # ID STATUS
  [[ "$(state "$1" '{{.State.Status}}')" == "$2" ]]
}

suite_setup() {
  mkdir -p "$PM_DIR/bin" "$RT_ROOTS" "$PM_DIR/cni"
  make_runtime_wrapper "$PM_DIR/bin/$RT_NAME" "$RT_ROOTS"
  # The bounding set lacks CAP_SYS_RESOURCE, so no runtime may raise an
  # rlimit: use podman's own limits (it sets nproc to 32768 on itself).
  local nofile nproc
  nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
  [[ "$nproc" == unlimited ]] || ((nproc > 32768)) && nproc=32768
  cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "$CLIENTS_CGROUP"
events_logger = "file"
events_logfile_path = "$PM_DIR/events.log"
lock_type = "file"
[network]
network_config_dir = "$PM_DIR/cni"
EOF
  cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
runroot = "$PM_DIR/runroot"
graphroot = "$PM_DIR/root"
EOF
  echo 'unqualified-search-registries = []' >"$CONTAINERS_REGISTRIES_CONF"
  pm load -q -i "$IMAGES_TAR"
}

suite_teardown() {
  pm rm --all --force --time 0 || true
  pm system prune --force --volumes || true
  # podman leaves its cgroupfs parent behind; remove it when it is empty.
  find /sys/fs/cgroup/*/libpod_parent -depth -type d -empty -delete 2>/dev/null || true
  find /sys/fs/cgroup/*/libpod_parent -depth -type d -exec rmdir {} + 2>/dev/null || true
}

suite_force_remove() {
  pm rm --force --time 0 "$1"
}

# --- scenarios -----------------------------------------------------------

t_run_rm() {
  out=$(pm_run --rm "$IMG" echo hello from podman)
  expect_eq "output" "$out" "hello from podman"
}

t_exit_code() {
  expect_eq "exit code" "$(rc_of pm_run --rm "$IMG" sh -c 'exit 42')" 42
}

t_stdin() {
  out=$(printf 'one\ntwo\n' | pm_run --rm -i "$IMG" sh -c 'tr a-z A-Z; echo done')
  expect_eq "output" "$out" $'ONE\nTWO\ndone'
}

t_tty() {
  out=$(on_terminal "$PODMAN run --rm -t --network none $IMG sh -c 'test -t 0 && test -t 1 && tty; exit 4'" || true)
  expect_match "tty" "$out" "$TTY_LINE"
  expect_eq "exit code" "$(rc_of on_terminal "$PODMAN run --rm -t --network none $IMG sh -c 'exit 4'")" 4
}

t_detach_stop_rm() {
  # A SIGTERM handler: stop is graceful and returns its exit code.
  id=$(pm_run -d "$IMG" sh -c 'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done')
  pm_wait_log "$id" '^ready$'
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  pid=$(state "$id" '{{.State.Pid}}')
  [[ -d /proc/$pid ]] || fail "container init $pid not running"
  pm stop --time 10 "$id"
  expect_eq "status after stop" "$(state "$id" '{{.State.Status}}')" exited
  expect_eq "exit code after stop" "$(state "$id" '{{.State.ExitCode}}')" 3
  pm rm "$id"
  expect_eq "exists after rm" "$(rc_of pm container exists "$id")" 1
}

t_stop_escalates() {
  # sleep as pid 1 ignores SIGTERM: podman must fall back to SIGKILL.
  id=$(pm_run -d "$IMG" sleep 1000)
  start=$SECONDS
  pm stop --time 1 "$id"
  ((SECONDS - start < 10)) || fail "stop took $((SECONDS - start))s"
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 137
  pm rm "$id"
}

t_kill_signal() {
  id=$(pm_run -d "$IMG" sh -c 'trap "echo got USR1; exit 5" USR1; echo ready; while :; do sleep 0.1; done')
  pm_wait_log "$id" '^ready$'
  pm kill --signal USR1 "$id"
  wait_for "exit after USR1" 10 status_is "$id" exited
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 5
  expect_eq "logs" "$(pm logs "$id")" $'ready\ngot USR1'
  pm rm "$id"
}

t_exec() {
  id=$(pm_run -d --memory 64m "$IMG" sleep 1000)
  out=$(pm exec "$id" sh -c 'echo in $(cat /proc/1/comm) as $(id -u)')
  expect_eq "exec output" "$out" "in sleep as 0"
  expect_eq "exec exit code" "$(rc_of pm exec "$id" sh -c 'exit 7')" 7
  out=$(echo piped | pm exec -i "$id" cat)
  expect_eq "exec stdin" "$out" piped
  out=$(pm exec --user 1000 --workdir /tmp --env X=y "$id" sh -c 'echo $(id -u) $(pwd) $X')
  expect_eq "exec user/cwd/env" "$out" "1000 /tmp y"
  # The exec'd process joins the container's cgroups and sees its limits.
  out=$(pm exec "$id" sh -c 'cat /proc/self/cgroup; echo --; cat /proc/1/cgroup')
  expect_eq "exec'd process's cgroups" "${out%%--*}" "${out#*--$'\n'}"$'\n'
  expect_eq "memory limit seen by exec" "$(pm exec "$id" sh -c "$CG_FUNCS; mem")" 67108864
  pm rm --force --time 0 "$id"
}

t_exec_tty() {
  id=$(pm_run -d "$IMG" sleep 1000)
  out=$(on_terminal "$PODMAN exec -t $id sh -c 'test -t 0 && tty'")
  expect_match "tty" "$out" "$TTY_LINE"
  pm rm --force --time 0 "$id"
}

t_memory() {
  out=$(pm_run --rm --memory 64m --memory-swap 64m "$IMG" sh -c "$CG_FUNCS; mem")
  expect_eq "memory limit inside" "$out" 67108864
}

t_pids_limit() {
  out=$(pm_run --rm --pids-limit 50 "$IMG" sh -c "$CG_FUNCS; pids")
  expect_eq "pids limit inside" "$out" 50
  # The limit holds: sh, a subshell and one sleep fit in 3, a second sleep does not.
  out=$(pm_run --rm --pids-limit 3 "$IMG" sh -c '(sleep 1 & sleep 1 & wait) 2>&1; echo rc=$?')
  expect_match "fork past the limit" "$out" "can't fork"
  # "Unlimited": podman 4.3 writes pids.limit 0 in a config declaring
  # runtime-spec 1.0.2; that keeps runc 1.1's meaning (no limit), not
  # spec 1.3's (one task).
  out=$(pm_run --rm --pids-limit=-1 "$IMG" sh -c "$CG_FUNCS; pids; (true) && echo forked")
  expect_eq "unlimited pids" "$out" "$NO_PIDS_LIMIT"$'\nforked'
}

t_cpus() {
  out=$(pm_run --rm --cpus 0.5 --cpu-shares 512 "$IMG" sh -c "$CG_FUNCS; quota; shares")
  expect_eq "cpu quota, shares inside" "$out" 50000$'\n'"$SHARES_512"
}

t_update() {
  id=$(pm_run -d --memory 64m --memory-swap 128m "$IMG" sh -c "$CG_FUNCS; $WATCH_LIMITS")
  wait_for "first limits line" 10 sh -c "$PODMAN logs $id | grep -qx 'mem=67108864 quota=-1'"
  pm update --memory 96m --memory-swap 128m --cpus 0.25 "$id"
  wait_for "updated limits inside" 10 sh -c "$PODMAN logs $id | grep -qx 'mem=100663296 quota=25000'"
  pm rm --force --time 0 "$id"
}

t_read_only() {
  out=$(pm_run --rm --read-only --tmpfs /etc "$IMG" sh -c '
    touch /bin/x 2>&1; touch /tmp/x && echo tmp writable
    touch /etc/new && grep -c ^app: /etc/passwd
    grep -E " /etc | /tmp " /proc/self/mountinfo | cut -d" " -f5,9 | sort')
  expect_match "rootfs write" "$out" "Read-only file system"
  expect_match "/tmp" "$out" "tmp writable"
  # tmpcopyup: the tmpfs on /etc starts with the image's /etc.
  expect_match "/etc copied up" "$out" $'\n1\n'
  expect_match "mounts" "$out" $'/etc tmpfs\n/tmp tmpfs'
}

t_cap_drop_all() {
  out=$(pm_run --rm --cap-drop ALL "$IMG" sh -c '
    grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /tmp/f; chown 1000 /tmp/f 2>&1 || echo chown denied')
  expect_match "caps" "$out" $'CapEff:\t0000000000000000\nCapBnd:\t0000000000000000'
  expect_match "chown" "$out" "chown denied"
  out=$(pm_run --rm --cap-drop ALL --cap-add CHOWN "$IMG" sh -c 'grep ^CapEff /proc/self/status')
  expect_eq "cap-add CHOWN" "$out" $'CapEff:\t0000000000000001'
}

t_user() {
  expect_match "--user 1000:1000" "$(pm_run --rm --user 1000:1000 "$IMG" id)" '^uid=1000\(app\) gid=1000\(app\)'
  expect_match "--user nobody" "$(pm_run --rm --user nobody "$IMG" id)" '^uid=65534\(nobody\) gid=65534\(nogroup\)'
  expect_match "write as nobody" "$(pm_run --rm --user nobody "$IMG" sh -c 'touch /etc/x 2>&1')" "Permission denied"
}

t_env_workdir() {
  out=$(pm_run --rm --env FOO=bar --workdir /home/app --hostname box "$IMG" sh -c 'echo "$FOO $(pwd) $(hostname) $PATH"')
  expect_eq "env, cwd, hostname" "$out" "bar /home/app box /usr/sbin:/usr/bin:/sbin:/bin"
}

t_pause_unpause() {
  id=$(pm_run -d "$IMG" sh -c "$TICKER")
  wait_for "ticks" 10 sh -c "$PODMAN logs $id | grep -q ."
  pm pause "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" paused
  sleep 0.3 # a tick written just before the freeze may still be on its way
  n=$(pm logs "$id" | wc -l)
  sleep 1
  expect_eq "ticks while paused" "$(pm logs "$id" | wc -l)" "$n"
  pm unpause "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  wait_for "ticks after unpause" 10 sh -c "test \$($PODMAN logs $id | wc -l) -gt $n"
  pm rm --force --time 0 "$id"
}

t_exec_after_unpause() {
  id=$(pm_run -d "$IMG" sleep 1000)
  pm pause "$id"
  pm unpause "$id"
  expect_eq "exec" "$(pm exec "$id" echo alive)" alive
  pm rm --force --time 0 "$id"
}

t_top() {
  id=$(pm_run -d "$IMG" sh -c 'sleep 1000 & sleep 1001')
  wait_for "two processes" 10 sh -c "$PODMAN top $id | grep -q 'sleep 1000'"
  out=$(pm top "$id" pid args)
  expect_match "top" "$out" $'PID +COMMAND *\n1 +sleep 1001 *\n[0-9]+ +sleep 1000'
  pm rm --force --time 0 "$id"
}

t_stats() {
  id=$(pm_run -d --memory 64m "$IMG" sh -c 'sleep 1000 & sleep 1001')
  out=$(pm stats --no-stream --format '{{.PIDs}} {{.MemUsage}}' "$id")
  expect_match "stats" "$out" '^2 [0-9.]+[kMG]?B / 67.11MB$'
  pm rm --force --time 0 "$id"
}

t_restart() {
  id=$(pm_run -d "$IMG" sh -c "$TICKER")
  pid=$(state "$id" '{{.State.Pid}}')
  pm restart --time 1 "$id"
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  pid2=$(state "$id" '{{.State.Pid}}')
  [[ "$pid2" != "$pid" && -d /proc/$pid2 ]] || fail "init pid $pid -> $pid2 after restart"
  wait_for "ticks from the start again" 10 sh -c "$PODMAN logs $id | grep -c '^tick 1$' | grep -qx 2"
  pm rm --force --time 0 "$id"
}

t_exec_after_restart() {
  id=$(pm_run -d "$IMG" sleep 1000)
  pm restart --time 0 "$id"
  expect_eq "exec" "$(pm exec "$id" cat /proc/1/cmdline | tr '\0' ' ')" "sleep 1000 "
  pm rm --force --time 0 "$id"
}

t_restart_policy() {
  id=$(pm_run -d --restart on-failure:2 "$IMG" sh -c 'echo run; exit 3')
  wait_for "restarts to end" 30 sh -c "test \"\$($PODMAN inspect --format '{{.State.Status}} {{.RestartCount}}' $id)\" = 'exited 2'"
  expect_eq "runs" "$(pm logs "$id" | grep -c '^run$')" 3
  expect_eq "exit code" "$(state "$id" '{{.State.ExitCode}}')" 3
  pm rm "$id"
}

t_oom_killed() {
  id=$(pm_create --memory 32m --memory-swap 32m "$IMG" sh -c "$MEMORY_HOG")
  # conmon 2.1.6 writes its OOM marker to its working directory and podman
  # 4.3 reads it from the bundle: start it from there.
  rc=$(cd "$PM_DIR/root/overlay-containers/$id/userdata" && rc_of pm start --attach "$id")
  expect_eq "exit code" "$rc" 137
  expect_eq "OOMKilled" "$(state "$id" '{{.State.OOMKilled}}')" true
  pm rm "$id"
}

t_rm_force_running() {
  id=$(pm_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  pm rm --force --time 1 "$id"
  expect_eq "exists after rm -f" "$(rc_of pm container exists "$id")" 1
  [[ ! -d /proc/$pid ]] || fail "init $pid still running"
}

t_security_defaults() {
  out=$(pm_run --rm "$IMG" sh -c '
    grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status
    wc -c </proc/timer_list; ls /sys/firmware | wc -l
    echo 1 2>&1 >/proc/sys/kernel/domainname | grep -o "Read-only file system"
    touch /sys/x 2>&1 | grep -o "Read-only file system"
    head -c1 /dev/zero | wc -c')
  expect_eq "seccomp, no_new_privs, masked and read-only paths, /dev" "$out" \
    $'NoNewPrivs:\t0\nSeccomp:\t2\n0\n0\nRead-only file system\nRead-only file system\n1'
}

t_privileged() {
  out=$(pm_run --rm --privileged "$IMG" sh -c '
    grep -E "^(CapEff|Seccomp):" /proc/self/status; test -b /dev/vda && echo has vda')
  expect_eq "caps, seccomp, host devices" "$out" \
    $'CapEff:\t'"$(sed -n 's/^CapBnd:\t//p' /proc/self/status)"$'\nSeccomp:\t0\nhas vda'
}

t_volumes() {
  mkdir -p "$SCEN_DIR/host"
  echo from-host >"$SCEN_DIR/host/in"
  out=$(pm_run --rm -v "$SCEN_DIR/host:/data" "$IMG" sh -c 'cat /data/in; echo from-container >/data/out')
  expect_eq "bind mount read" "$out" from-host
  expect_eq "bind mount write" "$(cat "$SCEN_DIR/host/out")" from-container
  out=$(pm_run --rm -v "$SCEN_DIR/host:/data:ro" "$IMG" sh -c 'touch /data/x 2>&1 || true')
  expect_match "read-only bind mount" "$out" "Read-only file system"
  vol=$(new_name vol)
  pm volume create "$vol" >/dev/null
  pm_run --rm -v "$vol:/v" "$IMG" sh -c 'echo kept >/v/f'
  expect_eq "named volume kept" "$(pm_run --rm -v "$vol:/v" "$IMG" cat /v/f)" kept
  pm volume rm "$vol"
}

t_userns() {
  # --ipc none: no shm mount of podman's. With one, podman 4.3 sometimes
  # leaves it mounted when a user-namespaced container stops, then fails to
  # remove the container ("unlinkat .../userdata/shm: device or resource
  # busy"): 1 run in 25 on a loaded machine, with runc as with hull.
  id=$(pm_run -d --ipc none --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMG" sh -c '
    id -u; cat /proc/self/uid_map /proc/self/gid_map; stat -c %u /bin/busybox; touch /tmp/x && echo writable
    exec sleep 1000')
  pid=$(state "$id" '{{.State.Pid}}')
  expect_eq "init's uid on the host" "$(stat -c %u "/proc/$pid")" 100000
  pm_wait_log "$id" '^writable$'
  expect_eq "uid, maps, image owner, rootfs" "$(pm logs "$id" | tr -s ' ')" \
    $'0\n 0 100000 65536\n 0 100000 65536\n0\nwritable'
  pm rm --force --time 0 "$id"
}

t_limits_misc() {
  # With any --ulimit podman drops default_ulimits: give nproc too.
  out=$(pm_run --rm --ulimit nofile=512:512 --ulimit nproc=1000:1000 --oom-score-adj 300 --cpuset-cpus 0 \
    --sysctl net.ipv4.ip_unprivileged_port_start=100 --shm-size 8m "$IMG" sh -c "$CG_FUNCS"'
    ulimit -n; ulimit -u; cat /proc/self/oom_score_adj; cpus
    cat /proc/sys/net/ipv4/ip_unprivileged_port_start; df -k /dev/shm | awk "NR == 2 {print \$2}"')
  expect_eq "nofile, nproc, oom_score_adj, cpuset, sysctl, shm size" "$out" $'512\n1000\n300\n0\n100\n8192'
}

t_devices() {
  out=$(pm_run --rm --device /dev/null:/dev/xnull "$IMG" sh -c '
    test -c /dev/xnull && echo ok >/dev/xnull && echo xnull writable
    mknod /tmp/vda b 253 0 && head -c1 /tmp/vda 2>&1 | grep -o "Operation not permitted"')
  expect_eq "added device, denied device" "$out" $'xnull writable\nOperation not permitted'
}

t_rm_force_paused() {
  # A frozen container must be thawed to die: rm -f has to manage that.
  id=$(pm_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  pm pause "$id"
  pm rm --force --time 1 "$id"
  expect_eq "exists after rm -f" "$(rc_of pm container exists "$id")" 1
  ! alive "$pid" || fail "init $pid still running"
}

t_cgroupns() {
  if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
    out=$(pm_run --rm --cgroupns private "$IMG" cat /proc/self/cgroup)
    expect_eq "own cgroup seen as the root" "$out" "0::/"
  else
    out=$(pm_run --rm --cgroupns private "$IMG" sh -c 'grep -E ":(memory|pids):" /proc/self/cgroup | sort')
    expect_eq "own cgroups seen as the root" "$out" $'4:memory:/\n8:pids:/'
  fi
}

t_bad_command() {
  # podman turns the runtime's error into the shell's exit codes.
  out=$(pm_run --rm "$IMG" /no/such/binary 2>&1) && rc=0 || rc=$?
  expect_eq "exit code for a missing command" "$rc" 127
  expect_match "error" "$out" "no such file or directory|not found"
  out=$(pm_run --rm "$IMG" /etc/passwd 2>&1) && rc=0 || rc=$?
  expect_eq "exit code for a file that is not executable" "$rc" 126
  expect_match "error" "$out" "[Pp]ermission denied"
}

# The systemd driver (podman's default on a systemd host): the container's
# scope is machine.slice/libpod-ID.scope, and goes with the container.
t_systemd_scope() {
  id=$(pm_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  expect_scope "libpod-$id.scope" "$pid" "/machine.slice/libpod-$id.scope"
  pm rm --force --time 0 "$id"
  expect_scope_gone "libpod-$id.scope"
}
