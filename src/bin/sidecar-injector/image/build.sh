#!/usr/bin/env bash
# Builds the image's binary: static glibc, the server and heal features only (the webhook and the
# reconciler run from one image), its hot code laid out together.
# The Dockerfile, .ci/run and benches/load.sh all build it with this script, so that what is
# tested and measured is what ships. Prints the binary's path.
#
#   src/bin/sidecar-injector/image/build.sh [--min-match FRACTION]
#   src/bin/sidecar-injector/image/build.sh --rustflags    (only print the flags it builds with,
#                                                          for a baseline built the same way)
#
# Why the layout: the code a server runs to start and to answer a review is a small part of its
# code, spread all over it, and the kernel maps the pages around each page of a file it faults
# in, so nearly the whole binary was resident at rest. hot-functions.txt, beside this script,
# lists that code (benches/hot_functions.sh writes it by running the server under callgrind), and
# the linker puts it first (lld's --symbol-ordering-file). Symbol names carry hashes that differ
# between builds, so the list holds them demangled, and the names of this build are looked up in
# the build itself: link with the last build's order, read the names, and link again only when the
# order changed. v0 mangling, because its names demangle with their generic arguments: legacy names
# keep those only in the hash, so without it a name matched every instance of a generic function,
# and far more code was laid out among the hot. --min-match warns when less than FRACTION of the
# list is found: the list is stale, and the binary, still correct, idles with more resident pages
# until benches/hot_functions.sh is run again. A warning, not a failure, so that a dependency
# update can land before the list is regenerated.
#
# Static glibc: the server resolves no host names (in-cluster config gives the API server as an
# IP), so it needs none of glibc's NSS modules at run time. Not position-independent: nothing to
# relocate at start, which keeps its pages clean.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
rustflags="-C target-feature=+crt-static -C relocation-model=static -C symbol-mangling-version=v0"
if [ "${1:-}" = --rustflags ]; then echo "$rustflags"; exit 0; fi
min_match=0
if [ "${1:-}" = --min-match ]; then min_match=$2; fi
release="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release"
binary="$release/sidecar-injector"
list=src/bin/sidecar-injector/image/hot-functions.txt
mkdir -p "$release"
export RUSTFLAGS="$rustflags"

# An order file is named by its content's hash: a new order is a new rustc argument, so cargo links
# again exactly when the order changed, and never when it did not.
link() {
  cargo rustc --release --locked --quiet --no-default-features --features server,heal \
    --target x86_64-unknown-linux-gnu --bin sidecar-injector -- \
    -C link-arg=-Wl,--symbol-ordering-file="$1" -C link-arg=-Wl,--no-warn-symbol-ordering
}
named_by_content() {
  local named
  named="$release/link-order-$(sha256sum "$1" | cut -c1-16).txt"
  mv "$1" "$named"
  echo "$named"
}

last="$release/link-order-last"
if [ ! -s "$last" ] || [ ! -f "$(cat "$last")" ]; then
  : > "$release/link-order.new"
  named_by_content "$release/link-order.new" > "$last"
fi
link "$(cat "$last")"

# Each of this build's symbols is kept when its demangled name, shortened (short-names.sed), is on
# the list; the two `nm` runs list the same symbols in the same order.
nm --defined-only -p "$binary" | awk '{ print $3 }' > "$release/symbols"
nm --defined-only -p -C "$binary" | cut -d' ' -f3- |
  sed -f src/bin/sidecar-injector/image/short-names.sed | paste "$release/symbols" - |
  awk -F '\t' -v min="$min_match" -v list="$list" '
  BEGIN {
    while ((getline line < list) > 0) if (line != "" && line !~ /^#/) { order[++total] = line; wanted[line] = 1 }
  }
  $2 in wanted { symbols[$2] = symbols[$2] $1 "\n" }
  END {
    # In the order of the list, which groups the code each way of running needs.
    for (i = 1; i <= total; i++) if (order[i] in symbols) { printf "%s", symbols[order[i]]; matched++ }
    printf "link order: %d of the %d hot functions listed are in this build\n", matched, total > "/dev/stderr"
    if (matched < min * total) print "warning: the list is stale: regenerate it with benches/hot_functions.sh" > "/dev/stderr"
  }' > "$release/link-order.new"
order=$(named_by_content "$release/link-order.new")
if [ "$order" != "$(cat "$last")" ]; then
  link "$order"
  echo "$order" > "$last"
fi
echo "$binary"
