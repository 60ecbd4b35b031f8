# A demangled symbol's name as hot-functions.txt lists it: without the suffix LLVM or GCC gives a
# local symbol (`.llvm.N`, `.N`, `.part.N`), which differs from one build to another. Used by
# build.sh and benches/hot_functions.sh alike.
s/\(\.llvm\|\.part\)\{0,1\}\.[0-9][0-9]*$//
