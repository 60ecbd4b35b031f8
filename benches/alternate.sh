#!/usr/bin/env bash
# Two builds of the criterion review benchmark in one run: pairs of runs in ABBA order (the older
# build first, then the newer first), so that this VM's drift within a pair falls on both sides,
# then each pair's ratio of medians and the ratio of their sums. Criterion's own comparison with
# its saved baseline is not used: it compares against whichever binary ran last.
#
#   benches/alternate.sh BEFORE_BIN AFTER_BIN [FILTER] [PAIRS]
#
# The binaries are `cargo bench --bench review --no-run` outputs of two worktrees, each with its
# own CARGO_TARGET_DIR. FILTER defaults to 'review/typical$', PAIRS to 8 (about 2 minutes).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
before=$1 after=$2 filter=${3:-'review/typical$'} pairs=${4:-8}

# criterion's median for FILTER and its unit; a long name puts `time:` on a line of its own.
median() {
  "$1" --bench --warm-up-time 1 --measurement-time 4 "$filter" 2>&1 |
    awk '/time:/ { sub(/.*time: *\[/, ""); print $3, $4; exit }'
}

sum_before=0 sum_after=0
for pair in $(seq 1 "$pairs"); do
  if (( pair % 2 )); then
    read -r b unit < <(median "$before"); read -r a _ < <(median "$after")
  else
    read -r a _ < <(median "$after"); read -r b unit < <(median "$before")
  fi
  sum_before=$(awk -v s="$sum_before" -v x="$b" 'BEGIN { print s + x }')
  sum_after=$(awk -v s="$sum_after" -v x="$a" 'BEGIN { print s + x }')
  echo "pair $pair: before $b $unit, after $a $unit, ratio $(awk -v b="$b" -v a="$a" 'BEGIN { printf "%.3f", a / b }')"
done
echo "all pairs: ratio of sums $(awk -v b="$sum_before" -v a="$sum_after" 'BEGIN { printf "%.3f", a / b }')"
