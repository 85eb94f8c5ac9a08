#!/bin/sh
#  ZPER developer entry point: the README's two commands.
#    ./build.sh run    install missing Debian packages, build, start zperd on built-in defaults
#    ./build.sh test   install missing Debian packages, build with ASan+UBSan, run every test
#  Extra arguments after 'run' go to zperd (e.g. ./build.sh run -c zper.conf -v).
set -eu
cd "$(dirname "$0")"

PACKAGES="build-essential cmake pkg-config libzmq3-dev libczmq-dev libcurl4-openssl-dev libjansson-dev libmicrohttpd-dev etcd-server python3 python3-zmq clang"

install_dependencies () {
    missing=""
    for package in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $package"
    done
    [ -z "$missing" ] && return 0
    echo "build.sh: installing$missing"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq $missing >/dev/null
}

build () {            #  build DIR [cmake options...]
    dir=$1; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    run)
        install_dependencies
        build build
        exec ./build/zperd "$@"
        ;;
    test)
        install_dependencies
        build build-test -DZPER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
        #  Leaks fail the run; the broker's children inherit these through the environment.
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
        cd build-test && ctest --output-on-failure -j 2 --timeout 600 "$@"
        ;;
    *)
        echo "usage: ./build.sh run [zperd options] | ./build.sh test [ctest options]" >&2
        exit 2
        ;;
esac
