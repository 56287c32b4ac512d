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

sh /run-tests.sh /etc/hull-vm.env /etc/hull-vm.tests
halt_vm
