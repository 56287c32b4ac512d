#!/usr/bin/env bash
# mkdeb.sh ROOT VERSION OUTDIR: package the tree installed under ROOT
# (make install DESTDIR=ROOT PREFIX=/usr) as OUTDIR/hull_VERSION_ARCH.deb.
set -euo pipefail
root=$1 version=$2 out=$3
arch=$(dpkg --print-architecture)
mkdir -p "$root/DEBIAN" "$out"
# What the binary links against (ldd: libc and libseccomp), as Debian's
# packages name them.
depends="libc6 (>= 2.34), libseccomp2 (>= 2.5.0)"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: hull
Version: $version
Architecture: $arch
Maintainer: hull developers <hull@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/hull-runtime/hull
Description: OCI container runtime, a drop-in replacement for runc
 hull creates and runs containers from OCI bundles with runc's command
 line, for containerd, CRI-O, podman and Docker Engine, and by hand.
CONTROL
dpkg-deb --build --root-owner-group "$root" "$out/hull_${version}_${arch}.deb" >/dev/null
echo "$out/hull_${version}_${arch}.deb"
