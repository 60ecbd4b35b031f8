#!/usr/bin/env bash
# Instructions per review: `cargo bench --bench review`'s cases run under valgrind's callgrind,
# counting only inside `review()`, divided by the calls. Steady from one run to the next where
# this VM's timings drift by tens of percent, so a change of a few percent can be judged; the
# time per review stays criterion's figure (BENCHMARKS.md).
#
#   benches/review_ir.sh [BENCH_BINARY] [CASE_REGEX]
#
# Without BENCH_BINARY it builds the bench (release profile, fat LTO: minutes when cold).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
bench=${1:-}
if [ -z "$bench" ]; then
  bench=$(cargo bench --bench review --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
cases=${2:-'review/typical.*$'}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for case in $("$bench" --bench --list "$cases" 2>/dev/null | sed -n 's/: benchmark$//p'); do
  valgrind --tool=callgrind --callgrind-out-file="$work/out" \
    --toggle-collect='sidecar_injector_engine::review::review' \
    "$bench" --bench "^$case\$" --profile-time 1 >/dev/null 2>&1
  # The total counted, and the calls into review() (callgrind names a function in full the first
  # time it appears, as caller or callee, then by its number).
  awk -v case="$case" '
    /^summary:/ { total = $2 }
    /^c?fn=\(/ {
      id = $1; sub(/^c?fn=/, "", id)
      if (NF > 1 && $0 ~ /sidecar_injector_engine::review::review$/) target = id
      if ($0 ~ /^cfn=/) pending = (id == target)
      next
    }
    /^calls=/ { if (pending) { split($1, c, "="); calls += c[2] } pending = 0 }
    END {
      if (!calls) { print case ": no call to review() counted" > "/dev/stderr"; exit 1 }
      printf "%s: %d instructions per review (%d reviews)\n", case, total / calls, calls
    }' "$work/out"
done
