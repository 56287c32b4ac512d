#!/bin/sh
# In the systemd lane's guest, run from the payload disk (mounted at
# /payload) by hull-tests.service (systemd is PID 1, dbus is up): put the
# payload's files at their host paths, say what the machine is, run the
# tests (run-tests.sh), and power off at once (the root disk is a
# throw-away snapshot; the unit's FailureAction covers a failure here).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
halt_vm() {
  sync
  systemctl poweroff --force --force
  echo o >/proc/sysrq-trigger
  exit 1
}
fail() {
  echo "HULL-VM-ERROR: $*"
  halt_vm
}
for d in /payload/files/*; do
  [ -d "$d" ] || continue
  t=/${d#/payload/files/}
  mkdir -p "$t" && mount --bind "$d" "$t" || fail "cannot bind $t"
done
echo "HULL-VM: kernel $(uname -r), $(systemctl --version | head -n 1), up $(cut -d' ' -f1 /proc/uptime)s"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  layout="cgroup v2, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
else
  layout="hybrid, v1: $(grep -o 'cgroup [^ ]* [^ ]*' /proc/mounts | awk '{ printf "%s ", $2 }')"
fi
echo "HULL-VM: system $(systemctl is-system-running 2>&1); $layout"
sh /payload/run-tests.sh /payload/hull-vm.env /payload/hull-vm.tests
halt_vm
