#!/usr/bin/env bash
# Writes src/bin/sidecar-injector/image/hot-functions.txt: the functions the image's binary runs to
# start, to answer a review over HTTP/1.1 and over HTTP/2, to be probed and scraped, and to stop,
# with certificate files and as the Deployment runs it (--self-managed: benches/
# hot_functions_cluster.py, inside the control-plane launcher: docs/testing.md); the image build lays them out
# together (see image/build.sh for why). Run it when that build says the list is stale, and commit
# the list.
#
#   benches/hot_functions.sh [OUT]
#
# It builds the image's binary, runs it under valgrind's callgrind (installed from Debian when
# missing), and keeps the demangled names of every function callgrind saw run (without
# callgrind's `'N` recursion marks), shortened by image/short-names.sed as build.sh shortens the
# build's names.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/bin/sidecar-injector/image/hot-functions.txt}
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
binary=$(src/bin/sidecar-injector/image/build.sh)

work=$(mktemp -d)
server=
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
port=18643
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --dump-instr=no \
  --compress-strings=no --compress-pos=no \
  "$binary" serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$((port + 1))" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" > "$work/server.log" 2>&1 &
server=$!
# Ready when it answers; curl retries until then (callgrind makes the start slow).
curl -sfk --retry 100 --retry-all-errors --retry-delay 1 -o /dev/null "https://127.0.0.1:$port/healthz"
for http in --http1.1 --http2; do
  curl -sfk "$http" -H 'Content-Type: application/json' --data-binary @benches/load/review.json \
    "https://127.0.0.1:$port/mutate" | grep -q '"patch"'
done
curl -sfk -o /dev/null "https://127.0.0.1:$port/readyz"
curl -sf -o /dev/null "http://127.0.0.1:$((port + 1))/metrics"
kill -TERM "$server"
wait "$server"
server=

# And as the Deployment runs it: --self-managed, against a real API server.
mkdir "$work/cluster"
"${SIDECAR_INJECTOR_KUBE_CLUSTER:-../shared/kube/cluster}" run -- python3 benches/hot_functions_cluster.py --server-bin "$binary" \
  --out "$work/cluster" > "$work/cluster.log" 2>&1 || { cat "$work/cluster.log"; exit 1; }

names() {
  sed -n 's/^fn=\(([0-9]*) \)\{0,1\}//p' "$@" |
    sed -e "s/'[0-9]*\$//" -f src/bin/sidecar-injector/image/short-names.sed |
    grep -v -e '^(below main)' -e '^0x' | LC_ALL=C sort -u
}
names "$work/callgrind.out" > "$work/files.names"
names "$work/cluster/created.out" "$work/cluster/restarted.out" > "$work/cluster.names"
# In three groups, the functions both ways run between those only one runs, so that each way's
# code lies together: the kernel's fault-around then maps little of the other's.
{
  echo "# The functions the image's binary runs to start, answer a review and stop; written by"
  echo "# benches/hot_functions.sh, read by src/bin/sidecar-injector/image/build.sh, which lays them"
  echo "# out in this order."
  echo "# Run only with certificate files (serve --tls-cert/--tls-key):"
  comm -23 "$work/files.names" "$work/cluster.names"
  echo "# Run both ways:"
  comm -12 "$work/files.names" "$work/cluster.names"
  echo "# Run only as the Deployment runs it (--self-managed):"
  comm -13 "$work/files.names" "$work/cluster.names"
} > "$out"
echo "$(grep -vc '^#' "$out") functions in $out"
