#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# hull driven by its real callers: podman + conmon, containerd + ctr,
# containerd's CRI plugin (what kubelet does) and Docker Engine, all from
# Debian 12's packages, each on private state torn down afterwards.
#   run.sh [SUITE[/GLOB]...]      suites: podman ctr cri docker (default all),
#                                  podman-rootless (only when named)
#   RUNTIME=hull (default)|runc|crun   the runtime the callers drive
#   HULL=PATH                          hull's binary (./target/$(rustc host triple)/release/hull, as make builds it)
#   REPEAT=N                           run each scenario N times (flake hunting)
#   CLIENTS_CGROUP=cgroupfs (default)|systemd   the callers' cgroup driver
#                                      (systemd: on a host where it is PID 1)
#   CLIENTS_NO_INSTALL=1               install nothing (a machine without network)
# One line per scenario (ok, XFAIL, XPASS, FAIL) and a summary; exits
# non-zero on any FAIL or XPASS. What hull is known to lack is marked, with
# the reason, in ./xfail; the marks apply to hull only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
repo=$(cd "$here/../.." && pwd)
all_suites=(podman ctr cri docker)
# Only when asked for: rootless podman needs an ordinary user with its own
# systemd (the systemd lane's hulltest).
# podman-cr and ctr-cr checkpoint with CRIU, which works on the systemd
# lane's kernel only.
opt_suites=(podman-rootless podman-cr ctr-cr)

RUNTIME=${RUNTIME:-hull}
case $RUNTIME in
hull) RT_BIN=${HULL:-$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release/hull} ;;
runc) RT_BIN=/usr/sbin/runc ;;
crun) RT_BIN=/usr/bin/crun ;;
*)
  echo "RUNTIME must be hull, runc or crun, not '$RUNTIME'" >&2
  exit 2
  ;;
esac
[[ -x "$RT_BIN" ]] || {
  echo "no runtime binary at $RT_BIN (make build, or set HULL=path)" >&2
  exit 2
}
RT_BIN=$(realpath "$RT_BIN")
RT_NAME=$RUNTIME

# Which scenarios: "podman" or "podman/GLOB" per argument.
declare -A selected=()
args=("$@")
((${#args[@]})) || args=("${all_suites[@]}")
for arg in "${args[@]}"; do
  suite=${arg%%/*} glob='*'
  [[ "$arg" == */* ]] && glob=${arg#*/}
  [[ " ${all_suites[*]} ${opt_suites[*]} " == *" $suite "* ]] || {
    echo "unknown suite '$suite' (have: ${all_suites[*]} ${opt_suites[*]})" >&2
    exit 2
  }
  selected[$suite]+="$glob "
done

CLIENTS_CGROUP=${CLIENTS_CGROUP:-cgroupfs}
case $CLIENTS_CGROUP in
cgroupfs | systemd) ;;
*)
  echo "CLIENTS_CGROUP must be cgroupfs or systemd, not '$CLIENTS_CGROUP'" >&2
  exit 2
  ;;
esac
export CLIENTS_HERE=$here CLIENTS_BUILD=$repo/build/clients RT_NAME RT_BIN CLIENTS_CGROUP
export CLIENTS_LOGS=$CLIENTS_BUILD/logs
export IMG=localhost/clients/busybox:1 PAUSE_IMG=localhost/clients/pause:1
export IMAGES_TAR=$CLIENTS_BUILD/images.tar

[[ -n "${CLIENTS_NO_INSTALL:-}" ]] || "$here/deps.sh" ${selected[cri]+--cri}
mkdir -p "$CLIENTS_BUILD"
rm -rf "$CLIENTS_LOGS"
python3 "$here/mkimage.py" /bin/busybox "$IMAGES_TAR"

CLIENTS_WORK=$(mktemp -d /tmp/hull-clients.XXXXXX)
# Traversable, so that user-namespaced containers reach their rootfs.
chmod 711 "$CLIENTS_WORK"
export CLIENTS_WORK
# A few host paths are fixed in the callers: containerd's shims put their
# sockets in /run/containerd/s whatever the state dir, dockerd makes
# /run/docker/plugins, CNI's result cache is /var/lib/cni. Remove what this
# run made of them, once empty.
made=()
for d in /run/containerd /run/docker /var/lib/cni; do [[ -e "$d" ]] || made+=("$d"); done
cleanup() {
  cp "$CLIENTS_WORK/runtime-calls" "$CLIENTS_LOGS/" 2>/dev/null || true
  # Each suite tears its caller down; anything still mounted here is ours.
  awk -v w="$CLIENTS_WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$CLIENTS_WORK"
  for d in "${made[@]}"; do
    find "$d" -depth -type d -empty -delete 2>/dev/null || true
  done
}
trap cleanup EXIT
touch "$CLIENTS_WORK/results"
export RT_CMD=$CLIENTS_WORK/bin/$RT_NAME
make_runtime_wrapper "$RT_CMD"

echo "clients: cgroup driver $CLIENTS_CGROUP; $RT_NAME = $RT_BIN ($("$RT_BIN" --version 2>&1 | head -n1)); logs in $CLIENTS_LOGS"
start=$SECONDS
for suite in "${all_suites[@]}" "${opt_suites[@]}"; do
  [[ -n "${selected[$suite]:-}" ]] || continue
  read -ra globs <<<"${selected[$suite]}"
  bash "$here/suite.sh" "$suite" "${globs[@]}" || echo "FAIL $suite: suite runner exited $?" |
    tee -a "$CLIENTS_WORK/results"
done

count() { grep -c "^$1 " "$CLIENTS_WORK/results" || true; }
ok=$(count ok) xfail=$(count XFAIL) xpass=$(count XPASS) failed=$(count FAIL)
echo "clients ($RT_NAME, $((SECONDS - start))s): $ok ok, $xfail XFAIL, $xpass XPASS, $failed FAIL"
echo "clients: $ok passed, $((failed + xpass)) failed, $xfail skipped"
((failed + xpass == 0))
