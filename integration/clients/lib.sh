# shellcheck shell=bash
# shellcheck disable=SC2016 # in-container scripts are single-quoted on purpose
# shellcheck disable=SC2034 # the snippets below are used by the suite files
# Helpers shared by the client suites: assertions, polling, and the leak check
# every scenario ends with. Sourced by suite.sh and scenario.sh; run.sh exports
# the environment they read:
#   CLIENTS_HERE   this directory          CLIENTS_WORK  the run's scratch dir
#   CLIENTS_BUILD  build/clients (caches)  RT_NAME, RT_BIN  the runtime under test
#   RT_CMD         what the callers are given: RT_BIN behind a recording wrapper
#   IMG, PAUSE_IMG, IMAGES_TAR  the locally built busybox images

# A scenario fails with one line that says what a user would have seen.
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# one_line TEXT: newlines and tabs shown as \n and \t, for a one-line reason.
one_line() {
  local t=${1//$'\n'/\\n}
  echo "${t//$'\t'/\\t}"
}

expect_eq() { # WHAT GOT WANT
  [[ "$2" == "$3" ]] || fail "$1: got '$(one_line "$2")', want '$(one_line "$3")'"
}

expect_match() { # WHAT GOT EXTENDED-REGEX
  [[ "$2" =~ $3 ]] || fail "$1: got '$(one_line "$2")', want a match for /$(one_line "$3")/"
}

# rc_of CMD...: print CMD's exit code (its output goes to stderr, the log).
rc_of() {
  local rc=0
  "$@" >&2 || rc=$?
  echo "$rc"
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for $what"
}

# Every container a scenario creates is tracked, so that the runner can check
# afterwards that its caller left nothing of it behind.
track() {
  echo "$1" >>"$SCEN_DIR/ids"
}

# A short unique container name; long enough to grep for without false hits.
new_name() {
  echo "hc-$1-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
}

# A line of output naming a terminal; callers may print warnings around it
# (ctr: "resize pty ... cannot resize a stopped container").
TTY_LINE=$'(^|\n)/dev/pts/[0-9]+'

# The script(1) wrapper gives a command a real terminal, as a user's shell
# has; its output loses the terminal's carriage returns and the "^@" echo of
# the NUL that ctr writes to the console. Exits with the command's status.
on_terminal() { # CMD-STRING
  script -qefc "$1" /dev/null </dev/null | tr -d '\r' | sed 's/\^@//g'
}

# --- leak check ------------------------------------------------------------

# pids_naming ID: processes whose command line or cgroup names ID (shims and
# conmon carry the id in their argv; container processes in their cgroup).
pids_naming() {
  local pat
  pat=$(mktemp)
  echo "$1" >"$pat"
  grep -laF -f "$pat" /proc/[0-9]*/cmdline /proc/[0-9]*/cgroup 2>/dev/null |
    cut -d/ -f3 | sort -u | grep -vx -e "$$" -e "${BASHPID:-$$}" || true
  rm -f "$pat"
}

cgroups_naming() {
  find /sys/fs/cgroup -mindepth 2 -maxdepth 7 -type d -name "*$1*" 2>/dev/null || true
}

mounts_naming() {
  grep -F "$1" /proc/self/mountinfo | awk '{print $5}' || true
}

# Mount points under the run's scratch dir (where every caller keeps its
# state, pod network namespaces included): taken before and after a
# scenario, so any mount it left is found whatever its path. CALLER_MOUNTS
# (set by a suite) are the caller's own, kept between containers.
mount_snapshot() {
  awk -v w="$CLIENTS_WORK" -v keep=" ${CALLER_MOUNTS:-} " \
    'index($5, w) == 1 && index(keep, " " $5 " ") == 0 {print $5}' /proc/self/mountinfo | sort
}

# leaks_of ID: one line per thing still there: runtime state under the
# runtime's --root (RT_ROOTS: the suite's roots), a cgroup, a mount, a process.
leaks_of() {
  local id=$1 root p cmd
  for root in ${RT_ROOTS:-}; do
    [[ -d "$root" ]] || continue
    find "$root" -maxdepth 3 -name "$id" -printf 'runtime state %p\n' 2>/dev/null || true
  done
  cgroups_naming "$id" | sed 's/^/cgroup /'
  mounts_naming "$id" | sed 's/^/mount /'
  for p in $(pids_naming "$id"); do
    cmd=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) || continue
    echo "process $p: ${cmd:0:160}"
  done
}

# scrub ID: remove what a failed scenario or a leaky caller left, so the next
# scenario starts clean. Only things that name ID are touched.
thaw() { # ID: a frozen process only dies once thawed
  local cg
  for cg in $(cgroups_naming "$1"); do
    if [[ -e "$cg/freezer.state" ]]; then echo THAWED >"$cg/freezer.state"; fi 2>/dev/null
    if [[ -e "$cg/cgroup.freeze" ]]; then echo 0 >"$cg/cgroup.freeze"; fi 2>/dev/null
  done
  return 0
}

# shim_sockets PID: the sockets a containerd shim listens on in the fixed
# /run/containerd/s, which a killed shim leaves behind.
shim_sockets() {
  local inode
  for inode in $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n'); do
    awk -v i="$inode" '$7 == i && index($8, "/run/containerd/s/") == 1 {print $8}' "/proc/$1/net/unix"
  done
}

scrub() {
  local id=$1 root p cg m sockets=()
  thaw "$id"
  for p in $(pids_naming "$id"); do
    mapfile -t -O "${#sockets[@]}" sockets < <(shim_sockets "$p")
    kill -9 "$p" 2>/dev/null || true
  done
  ((${#sockets[@]} == 0)) || rm -f "${sockets[@]}"
  for root in ${RT_ROOTS:-}; do
    find "$root" -maxdepth 3 -name "$id" -type d 2>/dev/null | while read -r d; do
      "$RT_BIN" --root "$(dirname "$d")" delete --force "$id" >/dev/null 2>&1 || rm -rf "$d"
    done
  done
  mounts_naming "$id" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  cgroups_naming "$id" | sort -r | while read -r cg; do rmdir "$cg" 2>/dev/null || true; done
}

# --- shell snippets run inside the busybox containers --------------------

# Read the container's own cgroup limits (cgroup v1 paths, as on our hybrid
# hosts, with the v2 file as a fallback: v2's "max" quota is -1, and the
# v2 stand-in for shares is cpu.weight, SHARES_512 below). On v2 the file
# is under /proc/self/cgroup's path: "/" in a cgroup namespace, the host's
# path in a container without one (ctr's), which sees the whole tree.
CG_FUNCS='
v2() { cat "/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)/$1"; }
mem() { cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || v2 memory.max; }
pids() { cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || v2 pids.max; }
quota() { cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || { q=$(v2 cpu.max | cut -d" " -f1); [ "$q" = max ] && echo -1 || echo "$q"; }; }
shares() { cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || v2 cpu.weight; }
cpus() { cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || v2 cpuset.cpus; }'
# --cpu-shares 512 as the container sees it: cpu.weight 59 on cgroup v2
# (runc's conversion, which every runtime and systemd's CPUWeight share).
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then SHARES_512=59; else SHARES_512=512; fi
# "No pids limit" as the container sees it: max; under the systemd driver
# the scope's TasksMax, which is systemd's DefaultTasksMax unless set.
if [[ "${CLIENTS_CGROUP:-}" == systemd ]]; then
  NO_PIDS_LIMIT=$(systemctl show -p DefaultTasksMax --value)
else
  NO_PIDS_LIMIT=max
fi
# Print "mem=BYTES quota=US" whenever either changes (needs CG_FUNCS), so
# that an update is seen from inside without exec.
WATCH_LIMITS='last=; while :; do v="mem=$(mem) quota=$(quota)"; [ "$v" = "$last" ] || echo "$v"; last=$v; sleep 0.1; done'
TICKER='i=0; while :; do i=$((i + 1)); echo "tick $i"; sleep 0.2; done'
# Touch 256 MiB at once as the container's init: a 32 MiB container is
# OOM-killed. The second's wait lets the caller's shim arm its OOM watch,
# which it does only after `start` (an OOM before that goes unreported).
MEMORY_HOG='sleep 1; exec dd if=/dev/zero of=/dev/null bs=256M count=1'

# --- the runtime under test --------------------------------------------------

# make_runtime_wrapper PATH [ROOT]: RT_BIN behind a script that records each
# call in $CLIENTS_WORK/runtime-calls (so every scenario can show that its
# containers were created by the runtime under test, not by some default the
# caller fell back to), with a private --root when ROOT is given.
make_runtime_wrapper() {
  mkdir -p "$(dirname "$1")"
  printf '#!/bin/sh
echo "$*" >>%s
exec %s %s"$@"
' \
    "$CLIENTS_WORK/runtime-calls" "$RT_BIN" "${2:+--root $2 }" >"$1"
  chmod +x "$1"
}

# created_by_runtime ID: the runtime under test was asked to create ID
# (or to restore it from a checkpoint).
created_by_runtime() {
  grep -qE "(^| )(create|run|restore) (.* )?$1( |$)" "$CLIENTS_WORK/runtime-calls" 2>/dev/null
}

# --- daemons ----------------------------------------------------------------

# start_daemon PIDFILE LOG CMD...: CMD in the background in its own session
# (an interrupt reaches it through teardown only); its pid goes to PIDFILE.
start_daemon() {
  local pidfile=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo "$!" >"$pidfile"
}

alive() { # PID: running, not a zombie
  local state
  state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$state" != Z ]]
}

# stop_daemon PIDFILE: SIGTERM, SIGKILL after 20 s; returns once it is gone.
stop_daemon() {
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# containerd_config DIR: the top of a private containerd 1.6 config: own
# root, state, sockets and opt dir; plugins that would look for other
# filesystems are off. The caller appends its plugin sections.
containerd_config() {
  cat <<EOT
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$1/containerd.sock"
[ttrpc]
  address = "$1/containerd.sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
EOT
}

# start_containerd DIR [WRAPPER...]: start it on DIR/config.toml, wait for
# its socket to answer.
start_containerd() {
  local dir=$1
  shift
  start_daemon "$dir/containerd.pid" "$dir/containerd.log" "$@" containerd --config "$dir/config.toml"
  wait_for "containerd on $dir/containerd.sock" 30 ctr --address "$dir/containerd.sock" version
}

# --- the systemd cgroup driver (CLIENTS_CGROUP=systemd) ----------------------

# expect_scope UNIT PID CGROUP: the container's scope is active, at the
# cgroup the caller computes (CGROUP), and it is where the container's init
# PID is, as systemd reports it (`systemctl show -p ControlGroup`).
expect_scope() {
  expect_eq "$1 state" "$(systemctl show -p ActiveState --value "$1")" active
  expect_eq "$1 ControlGroup" "$(systemctl show -p ControlGroup --value "$1")" "$3"
  expect_eq "cgroup of the container's init" "$(sed -n 's/^0:://p' "/proc/$2/cgroup")" "$3"
}

# expect_scope_gone UNIT: after the caller removed the container, its scope
# is gone and no unit failed.
expect_scope_gone() {
  wait_for "$1 to go" 10 sh -c "[ \"\$(systemctl show -p LoadState --value $1)\" = not-found ]"
  expect_eq "failed units" "$(systemctl list-units --failed --plain --no-legend)" ""
}
