#!/usr/bin/env bash
# The cgroup v2 lane: boot Debian 12's cloud kernel under QEMU (TCG) with an
# initramfs holding busybox, hull and the given test binaries, mount a pure
# cgroup v2 hierarchy with every controller enabled, run the tests as root on
# the serial console and report their result.
#
# Why a VM: CI hosts and developer machines are often hybrid or v1, while the
# field runs cgroup v2; a VM is the only way to get a pure, known hierarchy.
#
# usage: integration/vm/cgroupv2.sh HULL_BINARY TEST_BINARY...
#
# Environment (all optional):
#   VM_TEST_ARGS   extra libtest arguments, e.g. a name filter ("state_json")
#   VM_EXTRA       host files or directories to add at the same path; ELF
#                  files bring their libraries (e.g. "/usr/sbin/runc")
#   VM_MODULES     kernel modules to load (default: "overlay veth bridge")
#   VM_TIMEOUT     seconds before the VM is killed (default: 900)
#   VM_MEM VM_CPUS memory in MiB and vCPUs (default: 2048, 2)
#   VM_ACCEL       QEMU accelerator (default: tcg; KVM is unreliable here)
#   VM_KERNEL_PKG  kernel image package (default: what linux-image-cloud-amd64
#                  depends on; cached, `rm -rf build/vm/kernel` to refresh)
#   VM_DIR         cache and output directory (default: <repo>/build/vm)
#
# Exit status: 0 only if the VM reported at least one passed test and none
# failed; 1 otherwise (failures, kernel panic, timeout, missing result).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_DIR=${VM_DIR:-$repo/build/vm}
VM_TEST_ARGS=${VM_TEST_ARGS:-}
VM_EXTRA=${VM_EXTRA:-}
VM_MODULES=${VM_MODULES-overlay veth bridge}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_MEM=${VM_MEM:-2048}
VM_CPUS=${VM_CPUS:-2}
VM_ACCEL=${VM_ACCEL:-tcg}

say() { echo "cgroupv2-vm: $*" >&2; }
die() { echo "cgroupv2-vm: error: $*" >&2; exit 1; }

# An absolute path for $1 without resolving symlinks: tests bake in the path
# cargo gave them, and the VM must offer the binary there.
abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")" ;;
  esac
}

# Quote $1 for a POSIX shell (the VM's busybox ash sources the env file).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

(($# >= 2)) || die "usage: $0 HULL_BINARY TEST_BINARY..."
hull=$(abspath "$1")
shift
[[ -x $hull ]] || die "hull binary $hull is missing or not executable"
tests=()
for t in "$@"; do
  t=$(abspath "$t")
  [[ -x $t && -f $t ]] || die "test binary $t is missing or not executable"
  tests+=("$t")
done

mkdir -p "$VM_DIR"

# --- 1. host packages ------------------------------------------------------

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_quiet() {
  local log=$VM_DIR/apt.log
  if ! DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "'$*' failed (full log: $log)"
  fi
}

has_backports() {
  grep -rqs --include='*.list' --include='*.sources' 'bookworm-backports' \
    /etc/apt/sources.list /etc/apt/sources.list.d/
}

ensure_packages() {
  local missing=() p
  for p in busybox-static cpio qemu-system-x86; do installed "$p" || missing+=("$p"); done
  if ((${#missing[@]})); then
    ((EUID == 0)) || die "must run as root to install ${missing[*]}"
    : >"$VM_DIR/apt.log"
    say "installing ${missing[*]} (apt log: $VM_DIR/apt.log)"
    if [[ " ${missing[*]} " == *" qemu-system-x86 "* ]] && ! has_backports; then
      say "adding bookworm-backports: qemu-system-x86 only installs from there"
      cat >/etc/apt/sources.list.d/backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt_quiet apt-get update -q
    local p base=()
    for p in "${missing[@]}"; do [[ $p == qemu-system-x86 ]] || base+=("$p"); done
    ((${#base[@]} == 0)) || apt_quiet apt-get install -y -q --no-install-recommends "${base[@]}"
    installed qemu-system-x86 ||
      apt_quiet apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
  fi
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after install"
  [[ -x /bin/busybox ]] || die "/bin/busybox not found after installing busybox-static"
}

# --- 2. the kernel, downloaded once ---------------------------------------

kernel_package() {
  if [[ -n ${VM_KERNEL_PKG:-} ]]; then echo "$VM_KERNEL_PKG"; return; fi
  local pkg
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  if [[ -z $pkg ]]; then
    apt_quiet apt-get update -q
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
      awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  fi
  [[ -n $pkg ]] || die "cannot resolve the image package behind linux-image-cloud-amd64"
  echo "$pkg"
}

# Sets kdir (the unpacked package) and kver.
ensure_kernel() {
  local pkg cached
  if [[ -n ${VM_KERNEL_PKG:-} ]]; then
    pkg=$VM_KERNEL_PKG
  else
    # Any cached kernel will do: reruns need neither apt nor the network.
    cached=$(ls -1d "$VM_DIR"/kernel/linux-image-*/boot 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n $cached ]]; then pkg=$(basename "$(dirname "$cached")"); else pkg=$(kernel_package); fi
  fi
  kdir=$VM_DIR/kernel/$pkg
  if ! compgen -G "$kdir/boot/vmlinuz-*" >/dev/null; then
    say "downloading $pkg"
    local tmp
    tmp=$(mktemp -d "$VM_DIR/kernel-dl.XXXXXX")
    # apt drops privileges to _apt for downloads; let it write here.
    chmod 0755 "$tmp" && { chown _apt "$tmp" 2>/dev/null || true; }
    (cd "$tmp" && apt_quiet apt-get download "$pkg")
    dpkg -x "$tmp"/*.deb "$tmp/root"
    local ver
    ver=$(basename "$(ls -1d "$tmp"/root/lib/modules/*)")
    /bin/busybox depmod -b "$tmp/root" "$ver"
    mkdir -p "$VM_DIR/kernel"
    rm -rf "$kdir"
    mv "$tmp/root" "$kdir"
    rm -rf "$tmp"
  fi
  kver=$(basename "$(ls -1d "$kdir"/lib/modules/*)")
  [[ -f $kdir/boot/vmlinuz-$kver ]] || die "no vmlinuz-$kver in $kdir"
}

# --- 3. the initramfs -----------------------------------------------------

# Copy a host file into the stage at the same path (dereferenced).
stage_file() {
  local src=$1
  [[ -e $stage$src ]] && return 0
  mkdir -p "$stage$(dirname "$src")"
  cp -L --preserve=mode "$src" "$stage$src"
}

file_is_elf() { [[ $(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; }

# Copy an ELF and every shared library ldd resolves for it, loader included.
stage_elf() {
  local bin=$1 lib
  stage_file "$bin"
  # Static binaries make ldd exit 1 with "not a dynamic executable".
  ldd "$bin" 2>/dev/null | grep -q 'not found' && die "$bin: ldd reports missing libraries"
  while read -r lib; do
    stage_file "$lib"
  done < <(ldd "$bin" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)
}

build_initramfs() {
  stage=$VM_DIR/initramfs.d
  rm -rf "$stage"
  mkdir -p "$stage"/{dev,proc,sys,tmp,run,root,etc,usr/bin,usr/sbin,usr/lib,usr/lib64}
  # Mirror the host's merged-/usr links so every path ldd printed resolves.
  local d
  for d in bin sbin lib lib64; do
    if [[ -L /$d ]]; then ln -s "$(readlink "/$d")" "$stage/$d"; else mkdir -p "$stage/$d"; fi
  done

  cp /bin/busybox "$stage/bin/busybox"
  local applet
  while read -r applet; do
    [[ -e $stage/$applet || -L $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
  done < <(/bin/busybox --list-full)

  stage_elf "$hull"
  local t x
  for t in "${tests[@]}"; do stage_elf "$t"; done
  for x in $VM_EXTRA; do
    [[ -e $x ]] || die "VM_EXTRA path $x does not exist"
    if [[ -d $x ]]; then
      mkdir -p "$stage$(dirname "$x")" && cp -a "$x" "$stage$(dirname "$x")/"
    elif file_is_elf "$x"; then stage_elf "$x"; else stage_file "$x"; fi
  done

  # Modules in load order: each one's dependencies first.
  local insmod=() m line
  for m in $VM_MODULES; do
    line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$kdir/lib/modules/$kver/modules.dep" || true)
    [[ -n $line ]] || die "kernel module $m not found in $kver"
    local deps=(${line#*:}) i
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do insmod+=("${deps[i]}"); done
    insmod+=("${line%%:*}")
  done
  local ko_list=()
  for m in "${insmod[@]}"; do
    [[ " ${ko_list[*]} " == *" /lib/modules/$kver/$m "* ]] && continue
    mkdir -p "$stage/lib/modules/$kver/$(dirname "$m")"
    cp "$kdir/lib/modules/$kver/$m" "$stage/lib/modules/$kver/$m"
    ko_list+=("/lib/modules/$kver/$m")
  done

  [[ -e $stage/dev/console ]] || mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$stage/etc/group"
  echo hull-vm >"$stage/etc/hostname"
  ln -s /proc/self/mounts "$stage/etc/mtab"
  # Tests run from the repository root, as under `cargo test`.
  mkdir -p "$stage$repo"

  {
    echo "HULL_BIN=$(shq "$hull")"
    echo "VM_TEST_ARGS=$(shq "$VM_TEST_ARGS")"
    echo "VM_CWD=$(shq "$repo")"
    echo "VM_INSMOD=$(shq "${ko_list[*]}")"
  } >"$stage/etc/hull-vm.env"
  printf '%s\n' "${tests[@]}" >"$stage/etc/hull-vm.tests"
  install -m 0755 "$(dirname "${BASH_SOURCE[0]}")/init.sh" "$stage/init"
  install -m 0755 "$(dirname "${BASH_SOURCE[0]}")/run-tests.sh" "$stage/run-tests.sh"

  # Fail here, not after a minute of booting, if a library is missing.
  local loader
  loader=$(cd "$stage" && ls lib64/ld-linux-x86-64.so.2 2>/dev/null || true)
  if [[ -n $loader ]]; then
    for t in "$hull" "${tests[@]}"; do
      if chroot "$stage" "/$loader" --list "$t" 2>&1 | grep -q 'not found'; then
        chroot "$stage" "/$loader" --list "$t" >&2 || true
        die "$t cannot resolve its libraries inside the initramfs"
      fi
    done
  fi

  initrd=$VM_DIR/initramfs.cpio.gz
  # gzip -1: the archive is mostly binaries; fast to pack, fast to unpack.
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 | gzip -1 >"$initrd.tmp")
  mv "$initrd.tmp" "$initrd"
}

# --- 4. boot ---------------------------------------------------------------

boot() {
  local log=$VM_DIR/console.log
  local append="console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all mitigations=off"
  say "booting $kver under qemu ($VM_ACCEL, ${VM_CPUS} vCPU, ${VM_MEM} MiB, timeout ${VM_TIMEOUT}s); console: $log"
  # qboot boots a -kernel faster than SeaBIOS and prints nothing.
  local firmware=()
  [[ -f /usr/share/qemu/qboot.rom ]] && firmware=(-bios /usr/share/qemu/qboot.rom)
  local start=$SECONDS rc
  set +e
  # The sed strips the console's CRs and terminal escapes (firmware and
  # kernel clear the screen), unbuffered so the run shows live.
  timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel "$VM_ACCEL" -m "$VM_MEM" -smp "$VM_CPUS" "${firmware[@]}" \
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$initrd" -append "$append" \
    </dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' -e 's/\r$//' | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  report "$log" "$rc" $((SECONDS - start))
}

# Read the console log of a finished VM: fine only if it reported at least
# one passed test and none failed. LOG QEMU_STATUS SECONDS
report() {
  local log=$1 rc=$2 took=$3 result
  result=$(grep -a '^HULL-VM-RESULT: ' "$log" | tail -n 1 || true)
  if [[ -z $result ]]; then
    echo >&2
    tail -n 40 "$log" >&2
    if ((rc == 124 || rc == 137)); then
      die "the VM timed out after ${VM_TIMEOUT}s without a result (console: $log)"
    elif grep -aq 'Kernel panic' "$log"; then
      die "the VM kernel panicked: $(grep -a 'Kernel panic' "$log" | head -n 1) (console: $log)"
    elif grep -aq '^HULL-VM-ERROR: ' "$log"; then
      die "the VM init failed: $(grep -a '^HULL-VM-ERROR: ' "$log" | head -n 1) (console: $log)"
    fi
    die "the VM exited (qemu status $rc) without a HULL-VM-RESULT line (console: $log)"
  fi
  local passed failed
  passed=$(sed -E 's/^HULL-VM-RESULT: ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$result")
  failed=$(sed -E 's/^HULL-VM-RESULT: ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$result")
  say "$result (VM wall time ${took}s)"
  if [[ $failed == 0 && $passed -gt 0 ]]; then
    return 0
  fi
  # The first panics (what failed and why), then one line per binary.
  echo >&2
  awk '/ panicked at / { n++; left = 4; if (n > 1 && n <= 5) print "" }
       /^stack backtrace:|^note: / { left = 0 }
       n <= 5 && left > 0 && NF { print; left-- }
       /^HULL-VM-BINARY: / { bins = bins $0 "\n" } END { printf "%s", bins }' "$log" >&2
  if [[ $failed == 0 ]]; then
    die "no test passed in the VM (console: $log)"
  fi
  die "$failed test(s) failed in the VM (console: $log)"
}

# Sourced by the systemd lane for its helpers; run, it is the cgroup v2 lane.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  ensure_packages
  ensure_kernel
  build_initramfs
  say "initramfs $(du -h "$initrd" | cut -f1) ($(basename "$hull") + ${#tests[@]} test binaries)"
  boot
fi
