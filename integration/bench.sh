#!/usr/bin/env bash
# create -> start -> delete of one busybox container running `true`, timed
# by hyperfine for hull, crun and runc on the same bundle (as root).
#   bench.sh HULL [RUNS]
# Never run from a timed test: timings on a shared VM are noisy; compare
# runtimes within one run of this script.
#
# crun refuses a hybrid host whose hugetlb controller is bound to cgroup v2;
# for its turn hugetlb is moved to a v1 hierarchy, and moved back (the
# kernel can take a while to release it) before this script exits.
set -euo pipefail
hull=$(realpath "$1") runs=${2:-50}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/hull-bench.XXXXXX)

missing=()
for p in hyperfine crun runc busybox-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

"$here/mkbundle.sh" "$hull" "$work/bundle" >/dev/null
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
# Debian's crun 1.8 refuses spec versions newer than it knows.
c["ociVersion"] = "1.0.2"
json.dump(c, open(p, "w"))
PY

hugetlb_moved= hugetlb_enabled=
unified=/sys/fs/cgroup/unified
restore_hugetlb() {
  [[ -n $hugetlb_moved ]] || return 0
  umount /sys/fs/cgroup/hugetlb 2>/dev/null || true
  rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
  for _ in $(seq 600); do
    grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && break
    sleep 0.5
  done
  if grep -qw hugetlb $unified/cgroup.controllers; then
    [[ -z $hugetlb_enabled ]] || echo +hugetlb >$unified/cgroup.subtree_control
  else
    echo "bench: warning: hugetlb is not back on cgroup v2 yet" >&2
  fi
}
cleanup() {
  restore_hugetlb
  rm -rf "$work"
}
trap cleanup EXIT

cycle() { # runtime binary, state root
  echo "$1 --root $2 create --bundle $work/bundle b && $1 --root $2 start b && $1 --root $2 delete --force b"
}

args=(--warmup 5 --runs "$runs" --export-markdown "$work/result.md")
cmds=(-n hull "$(cycle "$hull" "$work/hull")" -n runc "$(cycle runc "$work/runc")")
# crun needs hugetlb on a v1 hierarchy on this hybrid host.
crun_ok=1
if grep -qw hugetlb $unified/cgroup.controllers 2>/dev/null && ! [[ -d /sys/fs/cgroup/hugetlb ]]; then
  # Turning hugetlb off in the root would drop every child's hugetlb
  # limits: only when none has one.
  limited=$(grep -Lx max $unified/*/hugetlb.*.max 2>/dev/null | head -n 1 || true)
  if [[ -n $limited ]]; then
    echo "bench: $limited sets a hugetlb limit; not moving hugetlb, so no crun" >&2
    crun_ok=
  else
    if grep -qw hugetlb $unified/cgroup.subtree_control; then
      echo -hugetlb >$unified/cgroup.subtree_control && hugetlb_enabled=1
    fi
    mkdir /sys/fs/cgroup/hugetlb && hugetlb_moved=1
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  fi
fi
[[ -z $crun_ok ]] || cmds+=(-n crun "$(cycle crun "$work/crun")")
# The same binaries with hugetlb in the same place for all three.
hyperfine "${args[@]}" "${cmds[@]}"
cat "$work/result.md"
