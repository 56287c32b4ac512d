#!/usr/bin/env bash
# Assemble the built-in default bundle: a static busybox rootfs plus the
# config.json `hull spec` writes, with a greeting instead of an interactive
# shell when stdin is not a terminal.
#   mkbundle.sh HULL DIR [interactive]
set -euo pipefail
hull=$(realpath "$1") dir=$2 mode=${3:-}
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/root" "$dir/rootfs/tmp"
for d in proc sys dev; do mkdir -p "$dir/rootfs/$d"; done
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $("$dir/rootfs/bin/busybox" --list); do
  [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
(cd "$dir" && "$hull" spec)
if [ "$mode" != interactive ]; then
  python3 - "$dir/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"Hello from hull: container $(hostname), pid $$, uid $(id -u)\"; ls /"]
json.dump(c, open(p, "w"), indent="\t")
PY
fi
