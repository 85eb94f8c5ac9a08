#!/bin/sh
#  Build the libFuzzer targets with clang and run them (docs/reliability.md section 2).
#    fuzz/run.sh [-b BUILD_DIR] [-s SECONDS] [-n] [TARGET...]
#      -b  where objects and fuzzers go (default: build-fuzz at the top of the tree)
#      -s  seconds per target (default 60); each run starts from fuzz/corpus/<target>
#      -n  build only
#  A crash leaves crash-* in BUILD_DIR/<target>/; copy it into fuzz/corpus/<target>/ with the fix,
#  so that the replay test (ctest reliability.fuzz_replay.<target>) keeps it fixed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build-fuzz"
seconds=60
run=1
while getopts b:s:n option; do
    case $option in
        b) build=$OPTARG ;;
        s) seconds=$OPTARG ;;
        n) run=0 ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=${*:-"identity rear_command dafka_proto config log_recovery"}
CC=${CC:-clang}
flags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -D_GNU_SOURCE -UNDEBUG -I$top/include -I$top/fuzz $(pkg-config --cflags libczmq libzmq libcurl jansson libmicrohttpd)"
libs="$(pkg-config --libs libczmq libzmq libcurl jansson libmicrohttpd) -lpthread -lm"
mkdir -p "$build/obj"

#  Objects of the library (every area but the selftest runner), rebuilt only when a source or
#  a header is newer than the object.
newest_header=$(ls -t "$top"/include/*.h "$top"/src/*/*.h 2>/dev/null | head -1)
objects=""
for source in "$top"/src/*/*.c "$top/fuzz/zper_fuzz_scratch.c"; do
    object="$build/obj/$(basename "$(dirname "$source")")_$(basename "$source" .c).o"
    if [ ! -f "$object" ] || [ "$source" -nt "$object" ] || [ "$newest_header" -nt "$object" ]; then
        # shellcheck disable=SC2086
        $CC $flags -I"$(dirname "$source")" -c "$source" -o "$object"
    fi
    objects="$objects $object"
done
for target in $targets; do
    binary="$build/zper_fuzz_$target"
    # shellcheck disable=SC2086
    $CC $flags -fsanitize=fuzzer "$top/fuzz/zper_fuzz_$target.c" $objects $libs -o "$binary"
done
[ $run -eq 1 ] || exit 0

status=0
for target in $targets; do
    mkdir -p "$build/$target/corpus"
    echo "fuzz: $target for $seconds s"
    (cd "$build/$target" && ASAN_OPTIONS=detect_leaks=1 \
        "$build/zper_fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 corpus "$top/fuzz/corpus/$target") || status=1
done
exit $status
