#!/usr/bin/env python3
"""The kubelet's side of the CRI, as much of it as the scenarios need, and
the CRI scenarios themselves: each one runs its own pod sandbox with the
runtime handler under test and asserts what the kubelet would see.

  cri.py SCENARIO      run t_SCENARIO (cri.sh sets the environment below)
  cri.py remove ID     stop and remove a container or a pod sandbox
  cri.py remove-all    stop and remove every pod sandbox (suite teardown)

Environment: CRI_SOCKET, CRI_HANDLER, CRI_GEN (the compiled runtime_v1.proto),
CRI_CGROUP_PARENT, CRI_SUBNET_PREFIX, SCEN_DIR, IMG, and the in-container
snippets CG_FUNCS, WATCH_LIMITS, MEMORY_HOG from lib.sh.
"""
import json
import os
import subprocess
import sys
import time
import uuid

import grpc
from google.protobuf import text_format

sys.path.insert(0, os.environ["CRI_GEN"])
import runtime_v1_pb2 as api  # noqa: E402
import runtime_v1_pb2_grpc as rpc  # noqa: E402

ENV = os.environ


class Failed(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    raise Failed(msg)


def expect_eq(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")


def expect_in(what, needle, haystack):
    if needle not in haystack:
        fail(f"{what}: {needle!r} not in {haystack!r}")


def wait_for(what, secs, check):
    end = time.monotonic() + secs
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            fail(f"timed out after {secs}s waiting for {what}")
        time.sleep(0.1)


def track(obj_id):
    with open(os.path.join(ENV["SCEN_DIR"], "ids"), "a") as f:
        f.write(obj_id + "\n")


class Cri:
    """One connection; every call and its answer go to the log."""

    def __init__(self):
        channel = grpc.insecure_channel("unix://" + ENV["CRI_SOCKET"])
        self.runtime = rpc.RuntimeServiceStub(channel)
        self.images = rpc.ImageServiceStub(channel)

    def __getattr__(self, method):
        stub = self.images if method == "ImageStatus" else self.runtime

        def call(request, timeout=60, quiet=False):
            text = text_format.MessageToString(request, as_one_line=True)
            if not quiet:
                log(f"> {method} {text}")
            try:
                response = getattr(stub, method)(request, timeout=timeout)
            except grpc.RpcError as e:
                log(f"< {method} {text if quiet else ''} error {e.code().name}: {e.details()}")
                raise
            if not quiet:
                log(f"< {method} {text_format.MessageToString(response, as_one_line=True)[:2000]}")
            return response

        return call

    # --- pods ------------------------------------------------------------

    def run_pod(self, name, pid=api.CONTAINER, sysctls=None):
        uid = uuid.uuid4().hex
        logs = os.path.join(ENV["SCEN_DIR"], "pods", uid)
        os.makedirs(logs)
        config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="clients"),
            hostname=name,
            log_directory=logs,
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=pod_parent(uid),
                security_context=api.LinuxSandboxSecurityContext(
                    namespace_options=api.NamespaceOption(pid=pid)
                ),
                sysctls=sysctls or {},
            ),
        )
        pod_id = self.RunPodSandbox(
            api.RunPodSandboxRequest(config=config, runtime_handler=ENV["CRI_HANDLER"])
        ).pod_sandbox_id
        track(pod_id)
        return Pod(self, pod_id, config)

    def pod_status(self, pod_id):
        return self.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status

    def remove_pod(self, pod_id):
        self.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    # --- containers ------------------------------------------------------

    def status(self, cid, quiet=False):
        return self.ContainerStatus(api.ContainerStatusRequest(container_id=cid), quiet=quiet).status

    def start(self, cid):
        self.StartContainer(api.StartContainerRequest(container_id=cid))

    def stop(self, cid, timeout):
        self.StopContainer(api.StopContainerRequest(container_id=cid, timeout=timeout))

    def remove(self, cid):
        self.RemoveContainer(api.RemoveContainerRequest(container_id=cid))

    def wait_exited(self, cid, secs=20):
        wait_for(
            f"container {cid[:12]} to exit",
            secs,
            lambda: self.status(cid, quiet=True).state == api.CONTAINER_EXITED,
        )
        return self.status(cid)


class Pod:
    def __init__(self, cri, pod_id, config):
        self.cri, self.id, self.config = cri, pod_id, config

    def create(self, name, script, resources=None, security=None, envs=(), workdir=""):
        """A busybox container running `sh -c SCRIPT`, logging to NAME.log."""
        sec = security or api.LinuxContainerSecurityContext()
        sec.namespace_options.CopyFrom(self.config.linux.security_context.namespace_options)
        config = api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name),
            image=api.ImageSpec(image=ENV["IMG"]),
            command=["/bin/sh", "-c"],
            args=[script],
            working_dir=workdir,
            envs=[api.KeyValue(key=k, value=v) for k, v in envs],
            log_path=name + ".log",
            linux=api.LinuxContainerConfig(resources=resources, security_context=sec),
        )
        cid = self.cri.CreateContainer(
            api.CreateContainerRequest(pod_sandbox_id=self.id, config=config, sandbox_config=self.config)
        ).container_id
        track(cid)
        return cid

    def run(self, name, script, **kw):
        cid = self.create(name, script, **kw)
        self.cri.start(cid)
        return cid

    def log_lines(self, name, quiet=False):
        """The container's output, from the CRI log format the kubelet reads:
        TIMESTAMP STREAM P|F TEXT, P marking a partial line."""
        path = os.path.join(self.config.log_directory, name + ".log")
        if not os.path.exists(path):
            return []
        lines, partial = [], ""
        with open(path) as f:
            for entry in f:
                _, _, tag, text = entry.rstrip("\n").split(" ", 3)
                partial += text
                if tag == "F":
                    lines.append(partial)
                    partial = ""
        if not quiet:
            log(f"  log of {name}: {lines}")
        return lines

    def wait_log(self, name, line, secs=20):
        try:
            wait_for(f"{line!r} in the log of {name}", secs, lambda: line in self.log_lines(name, quiet=True))
        finally:
            self.log_lines(name)

    def remove(self):
        self.cri.remove_pod(self.id)


def pod_parent(uid):
    """The pod's cgroup parent as the kubelet sets it: a cgroup, or with the
    systemd driver the pod's slice in the QoS class's."""
    if ENV.get("CLIENTS_CGROUP") == "systemd":
        return f"kubepods-besteffort-pod{uid}.slice"
    return ENV["CRI_CGROUP_PARENT"]


def systemctl_show(unit, prop):
    out = subprocess.run(["systemctl", "show", "-p", prop, "--value", unit], capture_output=True, text=True)
    return out.stdout.strip()


# --- scenarios ------------------------------------------------------------


def t_version(cri):
    v = cri.Version(api.VersionRequest(version="v1"))
    expect_eq("runtime name", v.runtime_name, "containerd")
    expect_eq("runtime API version", v.runtime_api_version, "v1")
    image = cri.ImageStatus(api.ImageStatusRequest(image=api.ImageSpec(image=ENV["IMG"]))).image
    expect_in("image tags", ENV["IMG"], list(image.repo_tags))


def t_pod_lifecycle(cri):
    pod = cri.run_pod("lifecycle")
    status = cri.pod_status(pod.id)
    expect_eq("state", status.state, api.SANDBOX_READY)
    expect_eq("runtime handler", status.runtime_handler, ENV["CRI_HANDLER"])
    if not status.network.ip.startswith(ENV["CRI_SUBNET_PREFIX"]):
        fail(f"pod ip {status.network.ip!r} not from the CNI range {ENV['CRI_SUBNET_PREFIX']}*")
    cri.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod.id))
    expect_eq("state after stop", cri.pod_status(pod.id).state, api.SANDBOX_NOTREADY)
    cri.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
    try:
        cri.pod_status(pod.id)
        fail("pod sandbox still there after RemovePodSandbox")
    except grpc.RpcError as e:
        expect_eq("status after remove", e.code(), grpc.StatusCode.NOT_FOUND)


def t_run_to_completion(cri):
    pod = cri.run_pod("completion")
    ok = pod.run("ok", "echo hello from cri; echo to stderr >&2")
    bad = pod.run("bad", "exit 42")
    s = cri.wait_exited(ok)
    expect_eq("exit code", s.exit_code, 0)
    expect_eq("reason", s.reason, "Completed")
    expect_eq("log", sorted(pod.log_lines("ok")), ["hello from cri", "to stderr"])
    s = cri.wait_exited(bad)
    expect_eq("exit code", s.exit_code, 42)
    expect_eq("reason", s.reason, "Error")
    cri.remove(ok)
    cri.remove(bad)
    try:
        cri.status(ok)
        fail("container still there after RemoveContainer")
    except grpc.RpcError as e:
        expect_eq("status after remove", e.code(), grpc.StatusCode.NOT_FOUND)
    pod.remove()


def t_pod_network(cri):
    pod = cri.run_pod("network")
    ip = cri.pod_status(pod.id).network.ip
    c = pod.run("net", "hostname; ip -4 -o addr show eth0 | awk '{print $4}'")
    cri.wait_exited(c)
    lines = pod.log_lines("net")
    expect_eq("hostname", lines[0] if lines else None, "network")
    expect_eq("eth0 address", lines[1].split("/")[0] if len(lines) > 1 else None, ip)
    pod.remove()


def t_shared_pid_namespace(cri):
    # shareProcessNamespace: the containers join the sandbox's pid namespace.
    pod = cri.run_pod("sharedpid", pid=api.POD)
    pod.run("sleeper", "exec sleep 1000")
    c = pod.run("looker", "sleep 0.5; for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline; echo; done | sort")
    cri.wait_exited(c)
    seen = [line.strip() for line in pod.log_lines("looker")]
    expect_in("the sandbox's pause", "/bin/sleep 2147483647", seen)
    expect_in("the other container", "sleep 1000", seen)
    pod.remove()


def t_pod_sysctls(cri):
    pod = cri.run_pod("sysctls", sysctls={"net.ipv4.ip_unprivileged_port_start": "100", "kernel.shm_rmid_forced": "1"})
    c = pod.run("reader", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced")
    cri.wait_exited(c)
    expect_eq("sysctls seen by the container", pod.log_lines("reader"), ["100", "1"])
    pod.remove()


def t_exec_sync(cri):
    pod = cri.run_pod("exec")
    c = pod.run("sleeper", "exec sleep 1000")
    r = cri.ExecSync(
        api.ExecSyncRequest(container_id=c, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    )
    expect_eq("stdout", r.stdout, b"out\n")
    expect_eq("stderr", r.stderr, b"err\n")
    expect_eq("exit code", r.exit_code, 3)
    r = cri.ExecSync(api.ExecSyncRequest(container_id=c, cmd=["cat", "/proc/1/cmdline"], timeout=10))
    expect_eq("pid 1 seen by exec", r.stdout, b"sleep\x001000\x00")
    r = cri.ExecSync(
        api.ExecSyncRequest(container_id=c, cmd=["sh", "-c", "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup"])
    )
    mine, init = r.stdout.decode().split("--\n")
    expect_eq("exec'd process's cgroups", mine, init)
    pod.remove()


def t_stats(cri):
    pod = cri.run_pod("stats")
    c = pod.run("busy", "i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done; echo spun; exec sleep 1000")
    pod.wait_log("busy", "spun")
    stats = cri.ContainerStats(api.ContainerStatsRequest(container_id=c)).stats
    if stats.memory.working_set_bytes.value <= 0:
        fail(f"memory working set {stats.memory.working_set_bytes.value}")
    if stats.cpu.usage_core_nano_seconds.value <= 1_000_000:
        fail(f"cpu usage {stats.cpu.usage_core_nano_seconds.value} ns after a busy loop")
    pod.remove()


def t_update_resources(cri):
    pod = cri.run_pod("update")
    res = api.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000)
    c = pod.run("watch", ENV["CG_FUNCS"] + "\n" + ENV["WATCH_LIMITS"], resources=res)
    pod.wait_log("watch", f"mem={64 << 20} quota=50000")
    new = api.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_period=100000, cpu_quota=25000)
    cri.UpdateContainerResources(api.UpdateContainerResourcesRequest(container_id=c, linux=new))
    pod.wait_log("watch", f"mem={96 << 20} quota=25000")
    pod.remove()


def t_stop_graceful(cri):
    pod = cri.run_pod("graceful")
    c = pod.run("trapper", 'trap "echo bye; exit 0" TERM; echo ready; while :; do sleep 0.1; done')
    pod.wait_log("trapper", "ready")
    start = time.monotonic()
    cri.stop(c, timeout=30)
    took = time.monotonic() - start
    s = cri.status(c)
    expect_eq("state", s.state, api.CONTAINER_EXITED)
    expect_eq("exit code", s.exit_code, 0)
    expect_eq("log", pod.log_lines("trapper"), ["ready", "bye"])
    if took > 10:
        fail(f"StopContainer took {took:.1f}s for a container that exits on SIGTERM")
    cri.remove(c)
    pod.remove()


def t_stop_escalation(cri):
    pod = cri.run_pod("escalation")
    # sleep as the pid namespace's init ignores SIGTERM: SIGKILL after 2 s.
    c = pod.run("stubborn", "exec sleep 1000")
    wait_for("running", 10, lambda: cri.status(c, quiet=True).state == api.CONTAINER_RUNNING)
    start = time.monotonic()
    cri.stop(c, timeout=2)
    took = time.monotonic() - start
    s = cri.status(c)
    expect_eq("state", s.state, api.CONTAINER_EXITED)
    expect_eq("exit code", s.exit_code, 137)
    if not 1.5 <= took <= 15:
        fail(f"StopContainer with timeout 2 took {took:.1f}s")
    cri.remove(c)
    pod.remove()


def t_oom_killed(cri):
    pod = cri.run_pod("oom")
    res = api.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
    c = pod.run("hog", ENV["MEMORY_HOG"], resources=res)
    s = cri.wait_exited(c)
    expect_eq("reason", s.reason, "OOMKilled")
    expect_eq("exit code", s.exit_code, 137)
    pod.remove()


def t_security_context(cri):
    pod = cri.run_pod("security")
    sec = api.LinuxContainerSecurityContext(
        capabilities=api.Capability(drop_capabilities=["ALL"]),
        run_as_user=api.Int64Value(value=1000),
        run_as_group=api.Int64Value(value=1000),
        readonly_rootfs=True,
        no_new_privs=True,
    )
    c = pod.run(
        "locked",
        'id -u; id -g; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; touch /home/app/x 2>&1 || true',
        security=sec,
    )
    cri.wait_exited(c)
    lines = pod.log_lines("locked")
    expect_eq("uid, gid, caps, no_new_privs", lines[:4], ["1000", "1000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"])
    expect_in("read-only rootfs", "Read-only file system", " ".join(lines[4:]))
    pod.remove()


def t_env_workdir(cri):
    pod = cri.run_pod("env")
    c = pod.run("env", 'echo "$FOO $(pwd)"', envs=[("FOO", "bar")], workdir="/home/app")
    cri.wait_exited(c)
    expect_eq("env and cwd", pod.log_lines("env"), ["bar /home/app"])
    pod.remove()


# --- cleanup verbs --------------------------------------------------------


def t_systemd_scope(cri):
    """SystemdCgroup = true: the container's scope cri-containerd-ID.scope
    in the pod's slice, expanded as the kubelet and cAdvisor compute it, and
    where the container's init is; gone, and nothing failed, after removal."""
    pod = cri.run_pod("scope")
    c = pod.run("scope", "sleep 1000")
    uid = pod.config.metadata.uid
    unit = f"cri-containerd-{c}.scope"
    want = ("/kubepods.slice/kubepods-besteffort.slice/"
            f"kubepods-besteffort-pod{uid}.slice/{unit}")
    expect_eq("scope state", systemctl_show(unit, "ActiveState"), "active")
    expect_eq("scope ControlGroup", systemctl_show(unit, "ControlGroup"), want)
    pid = cri.ContainerStatus(api.ContainerStatusRequest(container_id=c, verbose=True)).info["info"]
    pid = json.loads(pid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        own = [line.split("::", 1)[1].strip() for line in f if line.startswith("0::")]
    expect_eq("cgroup of the container's init", own, [want])
    cri.stop(c, 0)
    cri.remove(c)
    pod.remove()
    wait_for(f"{unit} to go", 10, lambda: systemctl_show(unit, "LoadState") == "not-found")
    failed = subprocess.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend"],
                            capture_output=True, text=True).stdout.strip()
    expect_eq("failed units", failed, "")


def remove(cri, obj_id):
    """Whatever ID is, stop and remove it; NotFound is fine."""
    for step in (
        lambda: cri.stop(obj_id, 0),
        lambda: cri.remove(obj_id),
        lambda: cri.remove_pod(obj_id),
    ):
        try:
            step()
        except grpc.RpcError:
            pass


def remove_all(cri):
    for pod in cri.ListPodSandbox(api.ListPodSandboxRequest()).items:
        remove(cri, pod.id)


def main():
    cri = Cri()
    verb = sys.argv[1]
    if verb == "remove":
        return remove(cri, sys.argv[2])
    if verb == "remove-all":
        return remove_all(cri)
    try:
        globals()["t_" + verb](cri)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except grpc.RpcError as e:
        print(f"FAILED: CRI error {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
