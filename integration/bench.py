#!/usr/bin/env python3
"""hull against crun and runc on the same busybox bundle (as root).

    bench.py HULL [--quick] [--rounds R] [--runs N] [--out FILE]

Every timed path runs in rounds; each round times every runtime once with
hyperfine (its median of N runs), in an order that alternates from round to
round, so that drift of the machine cannot decide a ratio: the ratio
reported is the median of the per-round ratios to crun. Paths:

  cycle   create -> start -> delete of `true`
  run     foreground `run` of `true`
  exec    `exec <id> true` into a running container
  state   `state` with 100 containers present
  list    `list` with 100 containers present
  burst   100 creates in parallel (xargs -P), then 100 deletes: wall time
  floor   unshare -fmunip --mount-proc true (the kernel's own cost)

and memory: peak RSS of `create`, RSS and PSS of an init waiting in the
created state, and the binary's size. Never run from a timed test: timings
on a shared VM are noisy; compare runtimes within one run of this script.

crun refuses a hybrid host whose hugetlb controller is bound to cgroup v2:
for the whole run hugetlb is moved to a v1 hierarchy (when no cgroup has a
hugetlb limit), and moved back before the script exits.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UNIFIED = "/sys/fs/cgroup/unified"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def quiet(cmd):
    return subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)


class Hugetlb:
    """Move hugetlb to a v1 hierarchy for crun, and back."""

    def __init__(self):
        self.moved = False
        self.enabled = False

    def move(self):
        ctrls = f"{UNIFIED}/cgroup.controllers"
        if not os.path.exists(ctrls) or "hugetlb" not in open(ctrls).read().split():
            return True
        if os.path.isdir("/sys/fs/cgroup/hugetlb"):
            return True
        for root, _, files in os.walk(UNIFIED):
            for f in files:
                if f.startswith("hugetlb.") and f.endswith(".max"):
                    try:
                        # "max", or (kernel 6.x) PAGE_COUNTER_MAX in bytes.
                        v = open(os.path.join(root, f)).read().strip()
                        if v != "max" and not (v.isdigit() and int(v) >= 1 << 62):
                            print(f"bench: {root} has a hugetlb limit: no crun", file=sys.stderr)
                            return False
                    except OSError:
                        pass
        sub = f"{UNIFIED}/cgroup.subtree_control"
        if "hugetlb" in open(sub).read().split():
            open(sub, "w").write("-hugetlb")
            self.enabled = True
        os.mkdir("/sys/fs/cgroup/hugetlb")
        self.moved = True
        sh("mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb")
        return True

    def restore(self):
        if not self.moved:
            return
        # The kernel frees a v1 hierarchy only if it has no child cgroup,
        # dying ones included, when its last mount goes: an unmount that
        # races a dying cgroup leaves the hierarchy alive and unmounted.
        # Mount it again (the same hierarchy comes back), wait for its
        # children to go, and unmount until hugetlb is back on cgroup v2.
        ctrls = f"{UNIFIED}/cgroup.controllers"
        mnt = "/sys/fs/cgroup/hugetlb"
        for _ in range(60):
            for root, dirs, _ in os.walk(mnt, topdown=False):
                for d in dirs:
                    try:
                        os.rmdir(os.path.join(root, d))
                    except OSError:
                        pass
            quiet(f"umount {mnt}")
            quiet(f"rmdir {mnt}")
            for _ in range(10):
                if "hugetlb" in open(ctrls).read().split():
                    break
                time.sleep(0.1)
            else:
                os.makedirs(mnt, exist_ok=True)
                quiet(f"mount -t cgroup -o hugetlb cgroup {mnt}")
                time.sleep(0.5)
                continue
            if self.enabled:
                open(f"{UNIFIED}/cgroup.subtree_control", "w").write("+hugetlb")
            return
        print("bench: warning: hugetlb is not back on cgroup v2", file=sys.stderr)


def hyperfine(cmd, runs, prepare=None, warmup=2):
    """Median seconds of `cmd` over `runs` (hyperfine). A command without
    shell syntax runs without a shell (-N): no shell start-up to subtract."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = ["hyperfine", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
                "--export-json", out.name]
        if not any(c in cmd for c in "&|>;"):
            args.append("-N")
        if prepare:
            args += ["--prepare", prepare]
        if subprocess.run(args + [cmd], stdout=subprocess.DEVNULL).returncode != 0:
            # Once more, to show why.
            r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
            sys.exit(f"bench: `{cmd}` failed (now exit {r.returncode}): {r.stderr.strip()}")
        return json.load(open(out.name))["results"][0]["median"]


def rounds(name, runtimes, make_cmd, n_rounds, runs, prepare=None):
    """Per-round medians for each runtime, alternating the order."""
    per = {rt: [] for rt in runtimes}
    for r in range(n_rounds):
        order = list(runtimes) if r % 2 == 0 else list(reversed(runtimes))
        for rt in order:
            per[rt].append(hyperfine(make_cmd(rt), runs, prepare(rt) if prepare else None))
        print(f"  {name} round {r + 1}/{n_rounds}", file=sys.stderr)
    return per


def summary(name, per, base="crun"):
    rows = []
    for rt, xs in per.items():
        med = statistics.median(xs)
        spread = (max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0
        ratio = ""
        if base in per and rt != base:
            ratios = [a / b for a, b in zip(xs, per[base])]
            ratio = f"{statistics.median(ratios):.2f}"
        rows.append((name, rt, med * 1000, spread * 1000, ratio))
    return rows


def rss_of_created_init(rt, cmd, bundle, root):
    cid = f"mem-{rt}"
    quiet(f"{cmd} --root {root} delete --force {cid}")
    sh(f"{cmd} --root {root} create --bundle {bundle} {cid}", stdout=subprocess.DEVNULL)
    state = json.loads(subprocess.run(f"{cmd} --root {root} state {cid}", shell=True,
                                      check=True, capture_output=True).stdout)
    pid = state["pid"]
    # A waiting init, as every runtime's settles: hull's sheds its setup
    # pages right after it reported ready, off the path create waits on.
    time.sleep(0.2)
    rss = pss = 0
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    quiet(f"{cmd} --root {root} delete --force {cid}")
    return rss, pss


def peak_rss_of_create(binary, bundle, root, cid):
    quiet(f"{binary} --root {root} delete --force {cid}")
    # The result goes to a file: the container's init inherits create's
    # stdio, so a pipe would stay open for as long as the container lives.
    with tempfile.NamedTemporaryFile(mode="r") as out:
        subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M", binary, "--root", root,
                        "create", "--bundle", bundle, cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        peak = int(out.read().strip().splitlines()[-1])
    quiet(f"{binary} --root {root} delete --force {cid}")
    return peak


def install(packages):
    missing = [p for p in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
    ).stdout.find("install ok installed") < 0]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                       check=True, env=env, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hull")
    ap.add_argument("--quick", action="store_true", help="a few runs, to show the script works")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--many", type=int, help="containers for state/list/burst")
    ap.add_argument("--out", help="also write the table (markdown) here")
    ap.add_argument("--systemd", action="store_true",
                    help="the systemd cgroup driver (--systemd-cgroup, on a host where systemd is "
                         "PID 1): create+start+delete and run only")
    a = ap.parse_args()
    n_rounds = a.rounds or (1 if a.quick else 7)
    runs = a.runs or (3 if a.quick else 15)
    many = a.many or (10 if a.quick else 100)

    install(["hyperfine", "crun", "runc", "time", "busybox-static", "util-linux"])
    hull = os.path.realpath(a.hull)
    work = tempfile.mkdtemp(prefix="hull-bench.")
    bundle = os.path.join(work, "bundle")
    sh(f"{HERE}/mkbundle.sh {hull} {bundle}", stdout=subprocess.DEVNULL)
    cfg = json.load(open(f"{bundle}/config.json"))
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    # Debian's crun 1.8 refuses spec versions newer than it knows.
    cfg["ociVersion"] = "1.0.2"
    json.dump(cfg, open(f"{bundle}/config.json", "w"))
    sleeper = os.path.join(work, "sleeper")
    shutil.copytree(bundle, sleeper, symlinks=True)
    cfg["process"]["args"] = ["sleep", "1000000"]
    json.dump(cfg, open(f"{sleeper}/config.json", "w"))

    hugetlb = Hugetlb()
    rows = []
    try:
        runtimes = ["hull", "runc"]
        if hugetlb.move():
            runtimes.insert(1, "crun")
        bins = {"hull": hull, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
        root = {rt: os.path.join(work, f"root-{rt}") for rt in runtimes}

        # Container ids carry the runtime's name: without a cgroupsPath each
        # runtime puts container ID in the cgroup /ID, and two runtimes'
        # containers must never share one.
        # With --systemd each container is a scope named after it:
        # system.slice/<runtime>-<id>.scope.
        driver = " --systemd-cgroup" if a.systemd else ""

        def rt_cmd(rt):
            return f"{bins[rt]} --root {root[rt]}{driver}"

        per = rounds("cycle", runtimes, lambda rt: (
            f"{rt_cmd(rt)} create --bundle {bundle} b-{rt} && {rt_cmd(rt)} start b-{rt} && "
            f"{rt_cmd(rt)} delete --force b-{rt}"), n_rounds, runs)
        rows += summary("create+start+delete", per)
        per = rounds("run", runtimes, lambda rt: f"{rt_cmd(rt)} run --bundle {bundle} r-{rt}",
                     n_rounds, runs)
        rows += summary("run", per)
        if a.systemd:
            return report(rows, [], n_rounds, runs, a.out)

        for rt in runtimes:
            sh(f"{rt_cmd(rt)} run -d --bundle {sleeper} x-{rt} >/dev/null")
        per = rounds("exec", runtimes, lambda rt: f"{rt_cmd(rt)} exec x-{rt} true", n_rounds, runs)
        rows += summary("exec true", per)
        for rt in runtimes:
            quiet(f"{rt_cmd(rt)} delete --force x-{rt}")

        for rt in runtimes:
            sh(f"seq {many} | xargs -P 4 -I{{}} {rt_cmd(rt)} create --bundle {sleeper} m{{}}-{rt} >/dev/null")
        per = rounds("state", runtimes, lambda rt: f"{rt_cmd(rt)} state m{many // 2}-{rt}",
                     n_rounds, runs)
        rows += summary(f"state ({many} present)", per)
        per = rounds("list", runtimes, lambda rt: f"{rt_cmd(rt)} list",
                     n_rounds, runs)
        rows += summary(f"list ({many} present)", per)
        for rt in runtimes:
            sh(f"seq {many} | xargs -P 4 -I{{}} {rt_cmd(rt)} delete --force m{{}}-{rt}")

        per = rounds("burst", runtimes, lambda rt: (
            f"seq {many} | xargs -P {many} -I{{}} {rt_cmd(rt)} create --bundle {sleeper} p{{}}-{rt} "
            f">/dev/null && seq {many} | xargs -P {many} -I{{}} {rt_cmd(rt)} delete --force p{{}}-{rt}"),
            n_rounds, max(1, runs // 5))
        rows += summary(f"{many} parallel creates+deletes", per)

        floor = statistics.median(
            [hyperfine("unshare -fmunip --mount-proc true", runs) for _ in range(n_rounds)])
        rows.append(("floor: unshare -fmunip --mount-proc true", "kernel", floor * 1000, 0.0, ""))

        mem = []
        for rt in runtimes:
            rss, pss = rss_of_created_init(rt, bins[rt], sleeper, root[rt])
            peak = peak_rss_of_create(bins[rt], sleeper, root[rt], f"peak-{rt}")
            size = os.path.getsize(bins[rt])
            mem.append((rt, peak, rss, pss, size))
    finally:
        # Every container goes first: a hugetlb hierarchy that still holds
        # cgroups when it is unmounted is not given back to cgroup v2.
        for rt in ["hull", "crun", "runc"]:
            b = {"hull": hull, "crun": "crun", "runc": "runc"}[rt]
            r = os.path.join(work, f"root-{rt}")
            if os.path.isdir(r):
                ids = subprocess.run(f"{b} --root {r} list -q", shell=True, capture_output=True,
                                     text=True).stdout.split()
                for i in ids:
                    quiet(f"{b} --root {r} delete --force {i}")
        hugetlb.restore()
        shutil.rmtree(work, ignore_errors=True)

    report(rows, mem, n_rounds, runs, a.out)


def report(rows, mem, n_rounds, runs, out):
    lines = [f"rounds {n_rounds} x {runs} runs each (medians; ratio = median of per-round ratios to crun)",
             "", "| path | runtime | median ms | ± ms | / crun |", "|---|---|---:|---:|---:|"]
    for name, rt, med, spread, ratio in rows:
        lines.append(f"| {name} | {rt} | {med:.2f} | {spread:.2f} | {ratio} |")
    if mem:
        lines += ["", "| runtime | peak RSS of create (KiB) | created init RSS (KiB) | PSS (KiB) | binary (bytes) |",
                  "|---|---:|---:|---:|---:|"]
    for rt, peak, rss, pss, size in mem:
        lines.append(f"| {rt} | {peak} | {rss} | {pss} | {size} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        open(out, "w").write(text)


if __name__ == "__main__":
    main()
