# A symbol's name as hot-functions.txt lists it: without the suffix LLVM gives a local symbol
# (`.llvm.N`, `.N`), then without the hash that ends a legacy Rust name (`17h` + 16 hex + `E`);
# both differ from one build to another. Used by build.sh and benches/hot_functions.sh alike.
s/\(\.llvm\)\{0,1\}\.[0-9][0-9]*$//
s/17h[0-9a-f]\{16\}E$//
