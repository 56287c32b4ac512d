#!/usr/bin/env bash
# What make install, make uninstall and make deb deliver: the binary, a man
# page for every verb, completions naming every verb; nothing left after
# uninstall; a .deb that installs hull at /usr/bin/hull and removes cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "packaging: FAIL: $*" >&2; exit 1; }
scratch=$(mktemp -d /tmp/hull-pkg.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

make --no-print-directory install DESTDIR="$scratch" PREFIX=/usr/local >/dev/null
bin=$scratch/usr/local/bin/hull
[[ -x $bin ]] || fail "no executable $bin"
[[ $("$bin" --version) == "hull version "* ]] || fail "installed hull --version"
# The verbs, from hull's own help.
mapfile -t verbs < <("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | sed 's/,$//')
((${#verbs[@]} >= 15)) || fail "found only ${#verbs[@]} verbs in hull --help"
man=$scratch/usr/local/share/man/man8
[[ -s $man/hull.8 ]] || fail "no hull.8"
for v in "${verbs[@]}"; do
  [[ -s $man/hull-$v.8 ]] || fail "no man page hull-$v.8"
  grep -q "hull-$v" "$man/hull-$v.8" || fail "hull-$v.8 does not name its verb"
done
comp=$scratch/usr/local/share
for f in bash-completion/completions/hull zsh/vendor-completions/_hull fish/vendor_completions.d/hull.fish; do
  [[ -s $comp/$f ]] || fail "no completion $f"
  for v in "${verbs[@]}"; do
    grep -qw -- "$v" "$comp/$f" || fail "completion $f does not offer $v"
  done
done
if command -v man >/dev/null; then
  page=$(MANPAGER=cat man -l "$man/hull-exec.8" 2>/dev/null)
  grep -q -- '--ignore-paused' <<<"$page" || fail "hull-exec.8 does not document --ignore-paused"
fi
make --no-print-directory uninstall DESTDIR="$scratch" PREFIX=/usr/local >/dev/null
left=$(find "$scratch" -type f | head -n 5)
[[ -z $left ]] || fail "uninstall left: $left"
echo "packaging: make install/uninstall: ok (${#verbs[@]} verbs, man pages and completions)"

deb=$(make --no-print-directory deb | tail -n 1)
[[ -f $deb ]] || fail "make deb made no package ($deb)"
contents=$(dpkg-deb -c "$deb")
grep -q ' ./usr/bin/hull$' <<<"$contents" || fail "$deb has no /usr/bin/hull"
dpkg-deb -f "$deb" Package | grep -qx hull || fail "$deb is not named hull"
echo "packaging: make deb: ok ($deb)"

# Install and remove it for real, where we may (root, and no hull package
# or /usr/bin/hull of someone else's there).
if [[ $(id -u) == 0 ]] && ! dpkg-query -W hull >/dev/null 2>&1 && [[ ! -e /usr/bin/hull ]]; then
  dpkg -i "$deb" >/dev/null
  [[ $(/usr/bin/hull --version) == "hull version "* ]] || fail "/usr/bin/hull after dpkg -i"
  mapfile -t files < <(dpkg -L hull | while read -r f; do [[ -f $f ]] && echo "$f"; done)
  dpkg -r hull >/dev/null
  for f in "${files[@]}"; do
    [[ ! -e $f ]] || fail "dpkg -r left $f"
  done
  echo "packaging: dpkg -i / dpkg -r: ok (${#files[@]} files installed and removed)"
else
  echo "packaging: dpkg -i / dpkg -r: skipped (not root, or a hull package or /usr/bin/hull is already there)"
fi
