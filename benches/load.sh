#!/usr/bin/env bash
# The load benchmark: sidecar-injector, the null server (our stack without our code), the Go
# baseline and the Node.js baseline, in one run.
#
#   benches/load.sh                      # 3 rounds of 5 s runs at 1/16/64/256 connections (7 minutes)
#   benches/load.sh --seconds 2 --connections 16,64
#
# It installs h2load and Go from Debian when they are missing, builds the server exactly as the
# Dockerfile does (static, server feature only) and the Go baseline, then runs benches/load/run.py,
# which prints the Markdown table that BENCHMARKS.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v go >/dev/null || missing+=(golang-go)
command -v taskset >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "Node.js is needed for the seed's baseline"; exit 1; }

# The server as the image ships it; the null server with the same flags, features and profile.
SERVER=$(src/bin/sidecar-injector/image/build.sh)
RUSTFLAGS=$(src/bin/sidecar-injector/image/build.sh --rustflags) \
  cargo build --release --locked --quiet --no-default-features --features server \
    --target x86_64-unknown-linux-gnu --example null-server
NULL_SERVER="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/null-server"
GO_BASELINE="$CARGO_TARGET_DIR/go-baseline"
(cd benches/baselines/go && GOFLAGS=-mod=mod go build -o "$GO_BASELINE" .)

exec python3 benches/load/run.py --server-bin "$SERVER" --null-bin "$NULL_SERVER" --go-bin "$GO_BASELINE" "$@"
