#!/usr/bin/env bash
# Instructions per review: each case of benches/cases/ reviewed by benches/review_ir.rs under
# valgrind's callgrind, counting only inside `review()`, and beside it the same body only read by
# serde_json into nothing, the floor of any review of it (the ratio is the review's cost against
# that baseline). Steady from one run to the next where this VM's timings drift by tens of percent,
# so a change of a percent can be judged; the time per review stays criterion's figure
# (`cargo bench --bench review`, BENCHMARKS.md).
#
#   benches/review_ir.sh [REVIEW_IR_BINARY]
#
# Without the binary it builds it (the bench profile, fat LTO: minutes when cold).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
runner=${1:-}
if [ -z "$runner" ]; then
  # Cargo builds the binaries beside a bench, so the runner is picked by its target's name.
  runner=$(cargo bench --bench review_ir --no-run --message-format=json 2>/dev/null |
    grep '"name":"review_ir"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The total counted inside review(), from one callgrind output.
counted() { sed -n 's/^summary: //p' "$1"; }
# Instructions per call of FUNCTION, running the runner with ARGS then a count: 10 calls, then 110,
# so that the difference is 100 calls without what only the first ones pay (pages first touched,
# statics built lazily).
per_call() {
  local function=$1; shift
  for count in 10 110; do
    valgrind --tool=callgrind --callgrind-out-file="$work/out.$count" \
      --toggle-collect="$function" "$runner" "$@" "$count" >/dev/null 2>&1
  done
  echo $(( ($(counted "$work/out.110") - $(counted "$work/out.10")) / 100 ))
}
for case in $("$runner" --list); do
  review=$(per_call 'sidecar_injector_engine::review::review' "$case")
  floor=$(per_call 'review_ir::read_only_body' --read-only "$case")
  echo "$case: $review instructions per review; reading the body alone $floor ($(awk -v r="$review" -v f="$floor" 'BEGIN { printf "%.2f", r / f }')x)"
done
