#!/usr/bin/env python3
"""A soak of hull (as root; `make soak`, not part of CI).

    soak.py HULL [--cycles N] [--parallel P] [--out FILE]

P workers (8) run N cycles (10,000) in all. A cycle is create -> start ->
exec -> kill -> delete of a waiting busybox container; every 25th cycle is
instead one of the hard ones, in turn:

  exit     a foreground `run` of a process that exits at once
  forkbomb a fork bomb under pids.limit 32, killed after a second
  oom      a process that outgrows a 16 MiB memory limit (OOM-killed)
  stubborn a process that ignores SIGTERM: kill TERM, then delete --force

Every hull command has 60 seconds; one that takes longer is a hang (killed
and counted). Afterwards the host must hold nothing of the soak: no state
directory, cgroup, mount or process, and no leaked fd or memory growth in
a foreground `hull run` that lived through the whole soak; the script
prints the figures (and writes them as JSON with --out) and exits 1 if
anything leaked or hung.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 60


class Soak:
    def __init__(self, hull, root, bundles):
        self.hull, self.root, self.bundles = hull, root, bundles
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []
        self.hangs = []

    def hull_cmd(self, *args, ok=(0,)):
        cmd = [self.hull, "--root", self.root, *args]
        # stderr through a file, not a pipe: a created container's init
        # inherits hull's stdio (as with runc) and would hold a pipe open.
        with tempfile.TemporaryFile() as err:
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=err, timeout=LIMIT)
            except subprocess.TimeoutExpired:
                with self.lock:
                    self.hangs.append(" ".join(args))
                return None
            if ok is not None and p.returncode not in ok:
                err.seek(0)
                text = err.read().decode(errors="replace").strip()
                with self.lock:
                    self.failures.append(f"{' '.join(args)}: exit {p.returncode}: {text}")
        return p.returncode

    def count(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def plain(self, cid):
        b = self.bundles["wait"]
        if self.hull_cmd("create", "--bundle", b, cid) != 0:
            self.hull_cmd("delete", "--force", cid, ok=None)
            return
        self.hull_cmd("start", cid)
        self.hull_cmd("exec", cid, "true")
        self.hull_cmd("kill", cid, "KILL")
        # delete (not forced) of a container that is going away: wait for it
        for _ in range(200):
            if self.hull_cmd("delete", cid, ok=None) == 0:
                break
            time.sleep(0.01)
        else:
            self.hull_cmd("delete", "--force", cid)
        self.count("plain")

    def exit_at_once(self, cid):
        self.hull_cmd("run", "--bundle", self.bundles["exit"], cid)
        self.count("exit")

    def forkbomb(self, cid):
        self.hull_cmd("run", "-d", "--bundle", self.bundles["forkbomb"], cid)
        time.sleep(1)
        self.hull_cmd("delete", "--force", cid)
        self.count("forkbomb")

    def oom(self, cid):
        # The process is OOM-killed: hull run ends with 137.
        self.hull_cmd("run", "--bundle", self.bundles["oom"], cid, ok=(137,))
        self.count("oom")

    def stubborn(self, cid):
        self.hull_cmd("run", "-d", "--bundle", self.bundles["stubborn"], cid)
        self.hull_cmd("kill", cid, "TERM")
        time.sleep(0.1)
        self.hull_cmd("delete", "--force", cid)
        self.count("stubborn")

    def worker(self, w, cycles):
        hard = [self.exit_at_once, self.forkbomb, self.oom, self.stubborn]
        for n in range(cycles):
            cid = f"soak-{w}-{n}"
            if n % 25 == 24:
                hard[(n // 25) % len(hard)](cid)
            else:
                self.plain(cid)


def bundle(hull, base, name, args, resources=None):
    d = os.path.join(base, name)
    subprocess.run([os.path.join(HERE, "mkbundle.sh"), hull, d], check=True,
                   stdout=subprocess.DEVNULL)
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    c["process"]["args"] = args
    if resources:
        c["linux"].setdefault("resources", {}).update(resources)
    json.dump(c, open(p, "w"))
    return d


def cgroup_leftovers():
    out = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith("soak-"):
                out.append(os.path.join(top, d))
        # Only the first levels: containers live at /<id>.
        if top.count("/") > 4:
            dirs[:] = []
    return out


def soak_processes():
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cg = open(f"/proc/{pid}/cgroup", "rb").read()
            stat = open(f"/proc/{pid}/stat", "rb").read()
        except OSError:
            continue
        # A zombie waits for whoever reaps orphans (the host's init): dead.
        if stat[stat.rindex(b")") + 2:][:1] == b"Z":
            continue
        if b"/soak-" in cg:
            out.append(int(pid))
    return out


def meminfo():
    """The host's memory that the soak could leak into, in KiB."""
    keep = ("MemAvailable", "Slab", "SUnreclaim", "Shmem")
    out = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":", 1)
        if k in keep:
            out[k] = int(v.split()[0])
    return out


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hull")
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--out")
    a = ap.parse_args()
    hull = os.path.abspath(a.hull)
    base = tempfile.mkdtemp(prefix="hull-soak-")
    root = os.path.join(base, "state")
    bundles = {
        "wait": bundle(hull, base, "wait", ["sleep", "1000"]),
        "exit": bundle(hull, base, "exit", ["true"]),
        "forkbomb": bundle(hull, base, "forkbomb", ["sh", "-c", "f() { f | f & }; f; sleep 100"],
                           {"pids": {"limit": 32}}),
        "oom": bundle(hull, base, "oom", ["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a)"],
                      {"memory": {"limit": 16 << 20, "swap": 16 << 20}}),
        "stubborn": bundle(hull, base, "stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]),
    }
    mounts_before = len(open("/proc/self/mountinfo").read().splitlines())
    mem_before = meminfo()
    # A foreground run that lives through the soak: its fds and memory.
    watch = subprocess.Popen([hull, "--root", root, "run", "--bundle", bundles["wait"], "soak-watch"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    watch_fds, watch_rss = fd_count(watch.pid), rss_kib(watch.pid)
    s = Soak(hull, root, bundles)
    per = [a.cycles // a.parallel + (1 if w < a.cycles % a.parallel else 0) for w in range(a.parallel)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=s.worker, args=(w, per[w])) for w in range(a.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    watch_fds_after, watch_rss_after = fd_count(watch.pid), rss_kib(watch.pid)
    subprocess.run([hull, "--root", root, "kill", "soak-watch", "KILL"])
    watch.wait(timeout=LIMIT)
    time.sleep(0.5)
    # "@empty-layer" is hull's own, kept for every container to come.
    left_state = sorted(d for d in os.listdir(root) if not d.startswith("@"))
    report = {
        "cycles": a.cycles,
        "parallel": a.parallel,
        "seconds": round(elapsed, 1),
        "cycles_per_second": round(a.cycles / elapsed, 1),
        "kinds": s.counts,
        "hangs": s.hangs,
        "failures": s.failures[:20],
        "failure_count": len(s.failures),
        "left_state_dirs": left_state,
        "left_cgroups": cgroup_leftovers(),
        "left_processes": soak_processes(),
        "mounts_before": mounts_before,
        "mounts_after": len(open("/proc/self/mountinfo").read().splitlines()),
        "watch_fds": [watch_fds, watch_fds_after],
        "watch_rss_kib": [watch_rss, watch_rss_after],
        "host_memory_kib": [mem_before, meminfo()],
    }
    print(json.dumps(report, indent=1))
    if a.out:
        json.dump(report, open(a.out, "w"), indent=1)
    bad = (s.hangs or s.failures or left_state or report["left_cgroups"]
           or report["left_processes"] or report["mounts_after"] != mounts_before
           or watch_fds_after != watch_fds)
    subprocess.run(["rm", "-rf", base])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
