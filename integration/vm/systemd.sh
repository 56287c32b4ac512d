#!/usr/bin/env bash
# The systemd lane: boot Debian 12 with systemd 252 as PID 1 (pure cgroup v2,
# dbus running) under QEMU (TCG), from the image systemd-image.sh caches,
# and run the given test binaries in hull-tests.service as root; the result
# comes back on the serial console in the HULL-VM-* lines the cgroup v2
# lane uses (same runner, run-tests.sh).
#
# usage: integration/vm/systemd.sh HULL_BINARY TEST_BINARY...
# Environment: as cgroupv2.sh (VM_TEST_ARGS, VM_EXTRA, VM_TIMEOUT, VM_MEM,
# VM_CPUS, VM_ACCEL), VM_DIR defaults to <repo>/build/vm-systemd;
# VM_CGROUP=hybrid boots systemd's v1 (hybrid) layout instead of pure v2.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_DIR=${VM_DIR:-$(cd "$here/../.." && pwd)/build/vm-systemd}
# The helpers, the argument checks and the console report of the cgroup v2
# lane; sourcing runs nothing else.
# shellcheck source=cgroupv2.sh
. "$here/cgroupv2.sh"
say() { echo "systemd-vm: $*" >&2; }
die() { echo "systemd-vm: error: $*" >&2; exit 1; }

# The per-run payload disk: hull, the test binaries and VM_EXTRA at their
# host paths under files/, the runner's env and list at its top.
build_payload() {
  local p=$VM_DIR/payload t x
  rm -rf "$p"
  mkdir -p "$p/files"
  copy_in() {
    mkdir -p "$p/files$(dirname "$1")"
    cp -a -L "$1" "$p/files$1"
  }
  copy_in "$hull"
  for t in "${tests[@]}"; do copy_in "$t"; done
  for x in $VM_EXTRA; do copy_in "$x"; done
  mkdir -p "$p/files$repo"
  {
    echo "HULL_BIN=$(shq "$hull")"
    echo "VM_TEST_ARGS=$(shq "$VM_TEST_ARGS")"
    echo "CLIENTS_RUNTIME=$(shq "${CLIENTS_RUNTIME:-hull}")"
    echo "VM_CWD=$(shq "$repo")"
  } >"$p/hull-vm.env"
  printf '%s\n' "${tests[@]}" >"$p/hull-vm.tests"
  install -m 0755 "$here/run-tests.sh" "$p/run-tests.sh"
  install -m 0755 "$here/systemd-guest.sh" "$p/guest.sh"
  local mib
  mib=$(($(du -sm "$p" | cut -f1) * 2 + 64))
  payload=$VM_DIR/payload.img
  rm -f "$payload"
  mkfs.ext4 -q -F -L hull-payload -d "$p" "$payload" "${mib}M" || die "mkfs.ext4 of the payload failed"
}

boot_systemd() {
  local log=$VM_DIR/console.log
  local append="root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off"
  # VM_CGROUP=hybrid: systemd's legacy layout (v1 controllers, cgroup2 at
  # /sys/fs/cgroup/unified for its own tracking).
  if [[ ${VM_CGROUP:-v2} == hybrid ]]; then
    append+=" systemd.unified_cgroup_hierarchy=0"
  else
    append+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
  fi
  append+=" systemd.show_status=0 fsck.mode=skip"
  say "booting $image under qemu ($VM_ACCEL, ${VM_CPUS} vCPU, ${VM_MEM} MiB, timeout ${VM_TIMEOUT}s); console: $log"
  local start=$SECONDS rc firmware=()
  [[ -f /usr/share/qemu/qboot.rom ]] && firmware=(-bios /usr/share/qemu/qboot.rom)
  set +e
  # The root disk is a snapshot: every run boots the same pristine image.
  timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel "$VM_ACCEL" -m "$VM_MEM" -smp "$VM_CPUS" "${firmware[@]}" \
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
    -drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
    -drive "file=$payload,format=raw,if=virtio" \
    </dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' -e 's/\r$//' | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  report "$log" "$rc" $((SECONDS - start))
  # The lane exists for the tests that need systemd: none may skip here.
  if grep -aq 'skipped: systemd is not PID 1' "$log"; then
    die "a systemd test skipped: systemd was not PID 1 in the guest (console: $log)"
  fi
  if [[ ${VM_CGROUP:-v2} != hybrid ]] && grep -aq 'skipped: no user hulltest' "$log"; then
    die "a rootless test skipped: the guest's user hulltest had no systemd of its own (console: $log)"
  fi
  if [[ ${VM_CGROUP:-v2} != hybrid ]] && grep -aq 'skipped: criu is missing' "$log"; then
    die "a checkpoint test skipped: criu is missing or \`criu check\` failed in the guest (console: $log)"
  fi
}

mkdir -p "$VM_DIR"
ensure_packages
image=$("$here/systemd-image.sh")
build_payload
say "payload $(du -h "$payload" | cut -f1) ($(basename "$hull") + ${#tests[@]} test binaries)"
boot_systemd
