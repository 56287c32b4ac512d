#!/usr/bin/env bash
# Short libFuzzer runs of every fuzz target (fuzz/, `cargo fuzz`, nightly):
# FUZZ_SECONDS each (60 by default). The repository's corpus is read, never
# written: new finds go to a scratch copy. A crash, a panic or a malloc
# over 512 MiB fails the run and leaves its input in fuzz/artifacts/.
# Without a nightly toolchain it says so and stops: `cargo test` runs the
# same targets on stable over the same corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: skipped: no nightly toolchain here (see 'rustup toolchain list')"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cd fuzz
cargo +nightly fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $(cargo +nightly fuzz list); do
  work=$(mktemp -d)
  echo "fuzz: $t for ${secs}s"
  rc=0
  cargo +nightly fuzz run -O "$t" "$work" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  rm -rf "$work"
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz: $t failed (exit $rc); the input is in fuzz/artifacts/$t"
    exit 1
  fi
done
