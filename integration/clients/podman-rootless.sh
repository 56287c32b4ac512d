# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# Rootless podman 4.3 + conmon driving the runtime under test as an ordinary
# user (ROOTLESS_USER, default hulltest: subordinate ids in /etc/subuid and
# /etc/subgid, its own systemd from boot, the controllers delegated to it),
# as developers run it: the runtime runs as uid 0 of podman's user namespace,
# and with the systemd driver each container is a scope of the user's own
# systemd. Only where that user exists (the systemd lane builds it); not in
# run.sh's default suites.
PMR_USER=${ROOTLESS_USER:-hulltest}
PMR_UID=$(id -u "$PMR_USER" 2>/dev/null) || PMR_UID=
PMR_DIR=$CLIENTS_WORK/podman-rootless
PMR_XDG=/run/user/$PMR_UID
RT_ROOTS=$PMR_DIR/runtime-root
PMR_ENV=(
  XDG_RUNTIME_DIR="$PMR_XDG" DBUS_SESSION_BUS_ADDRESS="unix:path=$PMR_XDG/bus"
  HOME="$PMR_DIR/home" PATH=/usr/sbin:/usr/bin:/sbin:/bin
  CONTAINERS_CONF="$PMR_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$PMR_DIR/storage.conf"
  CONTAINERS_REGISTRIES_CONF="$PMR_DIR/registries.conf"
)

pm() {
  (cd "$PMR_DIR" && runuser -u "$PMR_USER" -- env -i "${PMR_ENV[@]}" podman \
    --runtime "$PMR_DIR/bin/$RT_NAME" --cgroup-manager="$CLIENTS_CGROUP" --events-backend=file "$@")
}

pm_run() {
  local cid rc=0
  cid=$PMR_DIR/home/cid.$RANDOM$RANDOM
  pm run --network none --cidfile "$cid" "$@" || rc=$?
  [[ -s "$cid" ]] && track "$(cat "$cid")"
  rm -f "$cid"
  return "$rc"
}

logs_have() { # ID LINE
  pm logs "$1" | grep -qx "$2"
}

state() { # ID GO-TEMPLATE
  pm inspect --format "$2" "$1"
}

status_is() { # ID STATUS
  [[ "$(state "$1" '{{.State.Status}}')" == "$2" ]]
}

suite_setup() {
  [[ -n "$PMR_UID" ]] || {
    echo "no user $PMR_USER (the systemd lane's image has one)"
    return 1
  }
  [[ -S "$PMR_XDG/bus" ]] || {
    echo "$PMR_USER has no session bus at $PMR_XDG/bus (lingering, dbus-user-session)"
    return 1
  }
  mkdir -p "$PMR_DIR/bin" "$PMR_DIR/home" "$RT_ROOTS"
  make_runtime_wrapper "$PMR_DIR/bin/$RT_NAME" "$RT_ROOTS"
  touch "$CLIENTS_WORK/runtime-calls"
  chmod 666 "$CLIENTS_WORK/runtime-calls"
  cat >"$PMR_DIR/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "$CLIENTS_CGROUP"
events_logger = "file"
events_logfile_path = "$PMR_DIR/events.log"
EOF
  cat >"$PMR_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$PMR_DIR/runroot"
graphroot = "$PMR_DIR/root"
EOF
  echo 'unqualified-search-registries = []' >"$PMR_DIR/registries.conf"
  cp "$IMAGES_TAR" "$PMR_DIR/images.tar"
  chown -R "$PMR_USER:" "$PMR_DIR"
  pm load -q -i "$PMR_DIR/images.tar"
}

suite_teardown() {
  pm rm --all --force --time 0 || true
  # podman's pause process holds its user namespace; ours to end.
  local pause
  pause=$(cat "$PMR_XDG/libpod/tmp/pause.pid" 2>/dev/null) || pause=
  pm system reset --force >/dev/null 2>&1 || true
  [[ -z "$pause" ]] || kill -9 "$pause" 2>/dev/null || true
}

suite_force_remove() {
  pm rm --force --time 0 "$1"
}

# --- scenarios -----------------------------------------------------------

t_run_rm() {
  out=$(pm_run --rm "$IMG" sh -c 'echo hello from rootless podman; cat /proc/self/uid_map')
  expect_match "output" "$out" "^hello from rootless podman"$'\n'" +0 +$PMR_UID +1"$'\n'" +1 +100000 +65536$"
}

t_exit_code() {
  expect_eq "exit code" "$(rc_of pm_run --rm "$IMG" sh -c 'exit 42')" 42
}

t_detach_exec_stop_rm() {
  id=$(pm_run -d "$IMG" sh -c 'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done')
  wait_for "ready in the logs" 20 logs_have "$id" ready
  expect_eq "status" "$(state "$id" '{{.State.Status}}')" running
  out=$(pm exec "$id" sh -c 'echo in $(cat /proc/1/comm) as $(id -u)')
  expect_eq "exec output" "$out" "in sh as 0"
  expect_eq "exec exit code" "$(rc_of pm exec "$id" sh -c 'exit 7')" 7
  pm stop --time 10 "$id"
  expect_eq "status after stop" "$(state "$id" '{{.State.Status}}')" exited
  expect_eq "exit code after stop" "$(state "$id" '{{.State.ExitCode}}')" 3
  pm rm "$id"
  expect_eq "exists after rm" "$(rc_of pm container exists "$id")" 1
}

t_memory() {
  out=$(pm_run --rm --memory 64m "$IMG" sh -c "$CG_FUNCS; mem")
  expect_eq "memory limit inside" "$out" 67108864
}

t_pause_unpause() {
  id=$(pm_run -d "$IMG" sh -c "$TICKER")
  pm pause "$id"
  expect_eq "status paused" "$(state "$id" '{{.State.Status}}')" paused
  pm unpause "$id"
  expect_eq "status after unpause" "$(state "$id" '{{.State.Status}}')" running
  pm rm --force --time 0 "$id"
}

t_systemd_scope() {
  id=$(pm_run -d "$IMG" sleep 1000)
  pid=$(state "$id" '{{.State.Pid}}')
  want=/user.slice/user-$PMR_UID.slice/user@$PMR_UID.service/user.slice/libpod-$id.scope
  expect_eq "cgroup of the container's init" "$(sed -n 's/^0:://p' "/proc/$pid/cgroup")" "$want"
  expect_eq "owner of the scope's cgroup" "$(stat -c %U "/sys/fs/cgroup$want")" "$PMR_USER"
  pm rm --force --time 0 "$id"
  wait_for "the scope to go" 10 sh -c "[ ! -d /sys/fs/cgroup$want ]"
}
