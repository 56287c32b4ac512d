#!/usr/bin/env python3
"""Write a docker-archive tarball (what `docker save` writes) holding two
images built from the host's static busybox, for callers that cannot reach a
registry: `docker load`, `podman load` and `ctr images import` all read it.

  localhost/clients/busybox:1   Cmd ["sh"]
  localhost/clients/pause:1     Entrypoint ["/bin/sleep", "2147483647"]
                                (the CRI sandbox image)

Both share one layer. The output is deterministic for a given busybox.
  mkimage.py BUSYBOX OUT.tar
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile

BUSYBOX_TAG = "localhost/clients/busybox:1"
PAUSE_TAG = "localhost/clients/pause:1"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/:/bin/false\n"
)
GROUP = "root:x:0:\ntty:x:5:\napp:x:1000:\nnogroup:x:65534:\n"


def add(tar, name, kind, data=b"", mode=0o755, link="", uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 0
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer(busybox):
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "root", "sys", "home"):
            add(tar, d, tarfile.DIRTYPE)
        add(tar, "home/app", tarfile.DIRTYPE, uid=1000, gid=1000)
        add(tar, "tmp", tarfile.DIRTYPE, mode=0o1777)
        with open(busybox, "rb") as f:
            add(tar, "bin/busybox", tarfile.REGTYPE, f.read())
        for applet in sorted(set(applets) - {"busybox"}):
            add(tar, "bin/" + applet, tarfile.SYMTYPE, mode=0o777, link="busybox")
        add(tar, "etc/passwd", tarfile.REGTYPE, PASSWD.encode(), mode=0o644)
        add(tar, "etc/group", tarfile.REGTYPE, GROUP.encode(), mode=0o644)
    return buf.getvalue()


def config(diff_id, **container):
    cfg = {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/"}
    cfg.update(container)
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mkimage.py"}],
        },
        sort_keys=True,
    ).encode()


def main():
    busybox, out = sys.argv[1], sys.argv[2]
    blob = layer(busybox)
    diff_id = hashlib.sha256(blob).hexdigest()
    images = {
        BUSYBOX_TAG: config(diff_id, Cmd=["sh"]),
        PAUSE_TAG: config(diff_id, Entrypoint=["/bin/sleep", "2147483647"]),
    }
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, diff_id, tarfile.DIRTYPE)
        add(tar, diff_id + "/layer.tar", tarfile.REGTYPE, blob, mode=0o644)
        add(tar, diff_id + "/VERSION", tarfile.REGTYPE, b"1.0", mode=0o644)
        manifest, repositories = [], {}
        for tag, cfg in images.items():
            cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
            add(tar, cfg_name, tarfile.REGTYPE, cfg, mode=0o644)
            manifest.append(
                {"Config": cfg_name, "RepoTags": [tag], "Layers": [diff_id + "/layer.tar"]}
            )
            repo, version = tag.rsplit(":", 1)
            repositories[repo] = {version: diff_id}
        add(tar, "manifest.json", tarfile.REGTYPE, json.dumps(manifest).encode(), mode=0o644)
        add(tar, "repositories", tarfile.REGTYPE, json.dumps(repositories).encode(), mode=0o644)


if __name__ == "__main__":
    main()
