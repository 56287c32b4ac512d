#!/usr/bin/env bash
# The systemd lane's machine: a Debian 12 root filesystem with systemd 252 as
# PID 1 and dbus, debootstrapped into an ext4 image, plus the cloud kernel
# and an initrd that mounts it from virtio-blk. Built once per machine and
# cached outside the repository, keyed by this script (which holds the
# package list): a change to either builds a new image. Prints the cache
# directory (root.img, vmlinuz, initrd.img).
#
# usage: integration/vm/systemd-image.sh
# Environment: VM_IMAGE_CACHE (default /var/cache/hull-vm), VM_MIRROR
# (default: the machine's own Debian mirror).
set -euo pipefail

cache=${VM_IMAGE_CACHE:-/var/cache/hull-vm}
say() { echo "systemd-image: $*" >&2; }
die() { echo "systemd-image: error: $*" >&2; exit 1; }

# What the guest holds. The kernel comes from the image itself so that its
# initrd (initramfs-tools) can load virtio_blk and mount the root.
# Also the other runtimes (differential tests, make bench-systemd), the
# callers in their systemd configurations, and what rootless and CRIU need.
packages=(
  systemd systemd-sysv dbus dbus-user-session udev kmod linux-image-cloud-amd64
  initramfs-tools busybox-static procps iproute2 util-linux e2fsprogs
  libseccomp2 strace runc crun python3 hyperfine time podman conmon containerd
  docker.io containernetworking-plugins apparmor criu uidmap python3-grpcio
  python3-pkg-resources python3-grpc-tools
)

key=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)
out=$cache/systemd-$key
if [[ -f $out/root.img && -f $out/vmlinuz && -f $out/initrd.img ]]; then
  echo "$out"
  exit 0
fi
((EUID == 0)) || die "must run as root to build the image"
command -v debootstrap >/dev/null || {
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
}
mirror=${VM_MIRROR:-$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
root=$work/root
log=$work/build.log
cleanup() {
  for m in dev/pts dev proc sys; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
start=$SECONDS
say "debootstrap bookworm from $mirror (log: $log)"
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "debootstrap failed"
fi
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
say "installing ${#packages[@]} packages"
if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${packages[@]}" >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "installing the packages failed"
fi
chroot "$root" apt-get clean
# The callers' daemons start when a test asks for them, not at boot.
chroot "$root" systemctl disable -q docker.service docker.socket containerd.service \
  podman-auto-update.timer podman-restart.service podman.socket >>"$log" 2>&1 || true

# The machine: root on the first disk, a fixed identity, nothing that waits
# on a network or a terminal, and the unit that runs the payload's tests.
echo '/dev/vda / ext4 rw,relatime 0 1' >"$root/etc/fstab"
echo hull-vm >"$root/etc/hostname"
printf '%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$root/etc/machine-id"
for unit in getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  systemd-networkd-wait-online.service systemd-firstboot.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
printf 'overlay\nveth\nbridge\ntun\n' >"$root/etc/modules-load.d/hull.conf"
# Rootless: an unprivileged user with subordinate ids, its own systemd from
# boot (lingering), and the controllers runc's docs delegate to it.
chroot "$root" useradd --create-home --uid 1000 --shell /bin/sh hulltest >>"$log" 2>&1 || die "useradd failed"
echo 'hulltest:100000:65536' >"$root/etc/subuid"
echo 'hulltest:100000:65536' >"$root/etc/subgid"
mkdir -p "$root/var/lib/systemd/linger" "$root/etc/systemd/system/user@.service.d"
touch "$root/var/lib/systemd/linger/hulltest"
printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >"$root/etc/systemd/system/user@.service.d/delegate.conf"
cat >"$root/etc/systemd/system/hull-tests.service" <<'EOF'
[Unit]
Description=hull tests
Requires=dbus.service
Wants=user@1000.service
After=dbus.service systemd-modules-load.service user@1000.service

[Service]
Type=oneshot
# The runner comes with each run's payload disk (systemd-guest.sh).
ExecStart=/bin/sh -c 'mkdir -p /payload && mount /dev/vdb /payload && exec /payload/guest.sh'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
Delegate=yes
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/hull-tests.service "$root/etc/systemd/system/multi-user.target.wants/hull-tests.service"

kver=$(basename "$(ls -1d "$root"/lib/modules/* | sort -V | tail -n 1)")
[[ -f $root/boot/vmlinuz-$kver && -f $root/boot/initrd.img-$kver ]] || die "no kernel or initrd for $kver in the image"
for m in dev/pts dev proc sys; do umount "$root/$m"; done
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
say "making the ext4 image"
mkfs.ext4 -q -F -L hull-root -d "$root" "$work/root.img" 3G >>"$log" 2>&1 || die "mkfs.ext4 failed"
rm -rf "$out"
mkdir -p "$out"
mv "$work/root.img" "$work/vmlinuz" "$work/initrd.img" "$out/"
say "built $out in $((SECONDS - start))s ($(du -sh "$out" | cut -f1))"
echo "$out"
