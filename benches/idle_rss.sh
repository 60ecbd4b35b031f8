#!/usr/bin/env bash
# Idle memory of the image's binary with its hot code laid out together (image/build.sh) and of the
# same build linked in the default order: what the layout buys (BENCHMARKS.md, "Idle memory").
#
#   benches/idle_rss.sh [ROUNDS]
#
# Each binary in turn is started with certificate files, given one review, and read from
# /proc/PID/status (VmRSS, RssFile, RssAnon), as the Dockerfile runs it
# (MIMALLOC_ARENA_EAGER_COMMIT=0); ROUNDS rounds (default 5), the median printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$(src/bin/sidecar-injector/image/build.sh)" "$work/ordered"
# The same flags, features and profile, without the ordering file: the linker's default order.
RUSTFLAGS=$(src/bin/sidecar-injector/image/build.sh --rustflags) \
  cargo rustc --release --locked --quiet --no-default-features --features server \
    --target x86_64-unknown-linux-gnu --bin sidecar-injector
cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/sidecar-injector" "$work/unordered"
# Link the ordered build again, so that what is left in the target directory is what ships.
src/bin/sidecar-injector/image/build.sh >/dev/null
python3 benches/idle_rss.py --rounds "${1:-5}" "ordered=$work/ordered" "unordered=$work/unordered"
