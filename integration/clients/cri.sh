# shellcheck shell=bash
# containerd 1.6's CRI plugin driven the way the kubelet drives it, through
# the project's own CRI client (cri/cri.py, on the runtime.v1 subset in
# cri/runtime_v1.proto). containerd runs in a network namespace of its own
# with a CNI bridge and host-local addresses from Debian's
# containernetworking-plugins; its runtime handler is named after the runtime
# under test (io.containerd.runc.v2 with BinaryName = that runtime; with
# CLIENTS_CGROUP=systemd, SystemdCgroup = true and each pod in its
# kubepods-besteffort-pod<uid>.slice, as the kubelet's systemd driver does).
CRI_DIR=$CLIENTS_WORK/cri
RT_ROOTS=$CRI_DIR/runtime-root
CRI_SUBNET=10.88.77.0/24
CRI_CGROUP_PARENT=/hull-clients-cri
# grpcio from the venv deps.sh makes, or (CLIENTS_NO_INSTALL: a machine
# without network) Debian's python3-grpcio and python3-grpc-tools.
if [[ -x "$CLIENTS_BUILD/venv/bin/python" || -z "${CLIENTS_NO_INSTALL:-}" ]]; then
  CRI_PYTHON=$CLIENTS_BUILD/venv/bin/python
else
  CRI_PYTHON=python3
fi

cri() {
  CRI_SOCKET=$CRI_DIR/containerd.sock CRI_HANDLER=$RT_NAME CRI_GEN=$CLIENTS_BUILD/cri-gen \
    CRI_CGROUP_PARENT=$CRI_CGROUP_PARENT CRI_SUBNET_PREFIX=${CRI_SUBNET%0/24} \
    CG_FUNCS=$CG_FUNCS WATCH_LIMITS=$WATCH_LIMITS MEMORY_HOG=$MEMORY_HOG \
    "$CRI_PYTHON" "$CLIENTS_HERE/cri/cri.py" "$@"
}

cni_config() {
  cat <<EOF
{
  "cniVersion": "0.4.0",
  "name": "clients-pods",
  "plugins": [{
    "type": "bridge", "bridge": "hc-cri0", "isGateway": true, "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$CRI_SUBNET"}]],
             "dataDir": "$CRI_DIR/ipam"}
  }]
}
EOF
}

cri_plugin_config() {
  local rt=plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$RT_NAME
  cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  # The bounding set lacks CAP_SYS_RESOURCE: no oom_score_adj below ours.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "$RT_NAME"
    [$rt]
      runtime_type = "io.containerd.runc.v2"
      [$rt.options]
        BinaryName = "$RT_CMD"
        Root = "$RT_ROOTS"
        SystemdCgroup = $([[ "$CLIENTS_CGROUP" == systemd ]] && echo true || echo false)
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CRI_DIR/net.d"
    max_conf_num = 1
EOF
}

suite_setup() {
  mkdir -p "$CRI_DIR/net.d" "$RT_ROOTS"
  rm -rf "$CLIENTS_BUILD/cri-gen"
  mkdir -p "$CLIENTS_BUILD/cri-gen"
  "$CRI_PYTHON" -m grpc_tools.protoc -I "$CLIENTS_HERE/cri" \
    --python_out="$CLIENTS_BUILD/cri-gen" --grpc_python_out="$CLIENTS_BUILD/cri-gen" runtime_v1.proto
  cni_config >"$CRI_DIR/net.d/10-clients.conflist"
  {
    containerd_config "$CRI_DIR"
    cri_plugin_config
  } >"$CRI_DIR/config.toml"
  # Its own network namespace, with loopback up for the streaming server.
  start_containerd "$CRI_DIR" unshare --net sh -c 'ip link set lo up && exec "$@"' sh
  ctr --address "$CRI_DIR/containerd.sock" --namespace k8s.io images import "$IMAGES_TAR" >/dev/null
}

suite_teardown() {
  cri remove-all || true
  stop_daemon "$CRI_DIR/containerd.pid"
  find /sys/fs/cgroup/*"$CRI_CGROUP_PARENT" -depth -type d -exec rmdir {} + 2>/dev/null || true
  # The pods' slices (the kubelet's to remove, here the suite's).
  if [[ "$CLIENTS_CGROUP" == systemd ]]; then
    systemctl stop 'kubepods-besteffort-pod*.slice' 2>/dev/null || true
  fi
}

suite_force_remove() {
  cri remove "$1"
}

# --- scenarios (in cri/cri.py) -------------------------------------------

t_version() { cri version; }
t_pod_lifecycle() { cri pod_lifecycle; }
t_run_to_completion() { cri run_to_completion; }
t_pod_network() { cri pod_network; }
t_shared_pid_namespace() { cri shared_pid_namespace; }
t_pod_sysctls() { cri pod_sysctls; }
t_exec_sync() { cri exec_sync; }
t_stats() { cri stats; }
t_update_resources() { cri update_resources; }
t_stop_graceful() { cri stop_graceful; }
t_stop_escalation() { cri stop_escalation; }
t_oom_killed() { cri oom_killed; }
t_security_context() { cri security_context; }
t_env_workdir() { cri env_workdir; }
t_systemd_scope() { cri systemd_scope; }
