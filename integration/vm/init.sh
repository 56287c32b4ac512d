#!/bin/sh
# PID 1 of the cgroup v2 VM (busybox ash). cgroupv2.sh installs it as /init
# in the initramfs and reads the console for the HULL-VM-* lines it prints.
#
# Stage 1 copies the initramfs into a tmpfs and switch_roots into it: hull
# uses pivot_root, which fails when the root is the initramfs (rootfs can
# never be unmounted). Stage 2 prepares a host the way systemd would (shared
# root, cgroup2 with nsdelegate, every controller enabled) and runs the tests.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

fail() {
  echo "HULL-VM-ERROR: $*"
  halt_vm
}

halt_vm() {
  sync
  poweroff -f
  echo o >/proc/sysrq-trigger
  # Still here: exiting PID 1 panics the kernel; panic=-1 reboots it and
  # qemu -no-reboot exits.
  exit 1
}

if [ "$1" != stage2 ]; then
  mkdir -p /newroot
  mount -t tmpfs -o mode=0755 root /newroot || fail "cannot mount the tmpfs root"
  for f in /*; do
    case "$f" in
      /newroot) ;;
      /proc | /sys | /dev) mkdir -p "/newroot$f" ;;
      *) cp -a "$f" /newroot/ || fail "cannot copy $f to the tmpfs root" ;;
    esac
  done
  [ -e /newroot/dev/console ] || cp -a /dev/console /newroot/dev/ 2>/dev/null
  exec switch_root /newroot /init stage2
  fail "switch_root failed"
fi

mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fail "mount /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm || fail "mount /dev/shm"
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# A fresh tmpfs on DIR that keeps what the initramfs put there (test
# binaries may live under /tmp).
mount_tmpfs() { # DIR OPTIONS
  mkdir -p /.tmpfs
  mount -t tmpfs -o "$2" "${1#/}" /.tmpfs || return 1
  cp -a "$1"/. /.tmpfs/ && mount --move /.tmpfs "$1" && rmdir /.tmpfs
}
mount_tmpfs /tmp mode=1777 || fail "mount /tmp"
mount_tmpfs /run nosuid,nodev,mode=0755 || fail "mount /run"
# systemd makes / shared; containers meet that propagation in the field.
mount --make-rshared / || fail "make / rshared"

mkdir -p /sys/fs/cgroup
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "HULL-VM: cannot enable controller $c"
done

hostname hull-vm
ip link set lo up || fail "ip link set lo up"

. /etc/hull-vm.env
export HULL_BIN RUST_BACKTRACE=1
for ko in $VM_INSMOD; do
  insmod "$ko" || echo "HULL-VM: cannot load $ko"
done

echo "HULL-VM: kernel $(uname -r), booted in $(cut -d' ' -f1 /proc/uptime)s"
echo "HULL-VM: $(grep cgroup /proc/mounts)"
echo "HULL-VM: cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "HULL-VM: cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

total_passed=0
total_failed=0
while IFS= read -r bin; do
  [ -n "$bin" ] || continue
  name=${bin##*/}
  echo "HULL-VM: running $name --test-threads=1 $VM_TEST_ARGS"
  start=$(cut -d' ' -f1 /proc/uptime)
  # Live on the console, and kept for counting.
  # shellcheck disable=SC2086 # VM_TEST_ARGS is a list of arguments
  { (cd "$VM_CWD" && exec "$bin" --test-threads=1 $VM_TEST_ARGS) </dev/null 2>&1; echo $? >/run/rc; } |
    tee /run/out
  rc=$(cat /run/rc)
  # Keep the marker at the start of a line even after a crash mid-line.
  [ -z "$(tail -c 1 /run/out)" ] || echo
  end=$(cut -d' ' -f1 /proc/uptime)
  # "test result: ok. 14 passed; 0 failed; 0 ignored; ..." (one per binary;
  # summed in case a harness prints several).
  counts=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' /run/out |
    awk '{ p += $1; f += $2 } END { print p + 0, f + 0, NR }')
  set -- $counts
  passed=$1 failed=$2 results=$3
  # A binary that crashed or failed outside any test still counts as a failure.
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  if [ "$results" = 0 ] && [ "$failed" = 0 ]; then failed=1; fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  echo "HULL-VM-BINARY: $name exit=$rc passed=$passed failed=$failed seconds=$(awk "BEGIN { print $end - $start }")"
done </etc/hull-vm.tests

echo "HULL-VM-RESULT: $total_passed passed, $total_failed failed"
halt_vm
