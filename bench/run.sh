#!/usr/bin/env bash
#  bench/run.sh - build ZPER in Release and run the benchmark suite
#
#  Usage: bench/run.sh [--runs R] [--log-gb G] [--only LIST] [--quick]
#
#  Builds every area in its own Release build folder (build-bench-rel, or
#  $ZPER_BENCH_BUILD), runs bench/zper_bench_broker (raw libzmq and disk
#  baselines, produce, consume, latency, hostile, restart, curve, scale: see its header) R times
#  (default 3), then writes under bench/results/:
#    broker_runs.csv      every run of every scenario
#    broker_summary.csv   medians, ranges, ratios to the same-run baseline
#    targets.csv          the targets of issues 4, 12 and 13, met or missed
#    table.txt            the table printed at the end
#    machine.txt          the machine the figures come from
#    *.png                plots (gnuplot, installed from Debian if missing):
#                         ratios, latency, scale_topics, scale_producers
#  The scratch log (--log-gb GiB, default 2) lives in build-bench-rel/scratch
#  and is deleted at the end. A live progress line goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ZPER_BENCH_BUILD:-$ROOT/build-bench-rel}
RESULTS=$ROOT/bench/results
RUNS=3
LOG_GB=2
ONLY=
QUICK=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --log-gb) LOG_GB=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --quick) QUICK=--quick; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

if ! command -v gnuplot > /dev/null; then
    echo "run.sh: installing gnuplot-nox for the plots" >&2
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y -q gnuplot-nox > /dev/null || echo "run.sh: no gnuplot: no plots" >&2
fi

echo "run.sh: Release build in $BUILD" >&2
mkdir -p "$BUILD"
BUILD_LOG=$BUILD/bench-build.log
cmake -S "$ROOT" -B "$BUILD" -DZPER_AREAS="log;broker;client;dafka" -DCMAKE_BUILD_TYPE=Release \
      -DZPER_SANITIZE=OFF > "$BUILD_LOG" 2>&1 || { cat "$BUILD_LOG"; exit 1; }
cmake --build "$BUILD" -j2 >> "$BUILD_LOG" 2>&1 || { tail -30 "$BUILD_LOG"; exit 1; }

mkdir -p "$RESULTS"
{
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel:   $(uname -srm)"
    echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
    echo "memory:   $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "disk:     $(df -h "$BUILD" | awk 'NR==2 {print $1 ", " $2 " total, " $4 " free"}')"
    echo "libzmq:   $(dpkg-query -W -f='${Version}' libzmq5 2>/dev/null)"
    echo "czmq:     $(dpkg-query -W -f='${Version}' libczmq4 2>/dev/null)"
    echo "compiler: $(cc --version | head -1)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the machine)"
    echo "command:  bench/run.sh --runs $RUNS --log-gb $LOG_GB ${ONLY:+--only $ONLY} $QUICK"
} > "$RESULTS/machine.txt"

ARGS=(--runs "$RUNS" --log-gb "$LOG_GB" --out "$RESULTS" --dir "$BUILD/scratch")
[ -n "$ONLY" ] && ARGS+=(--only "$ONLY")
[ -n "$QUICK" ] && ARGS+=("$QUICK")
"$BUILD/bench/zper_bench_broker" "${ARGS[@]}" | tee "$RESULTS/table.txt"
rm -rf "$BUILD/scratch"

command -v gnuplot > /dev/null || exit 0
cd "$RESULTS"
#  Ratios to the same-run raw DEALER->ROUTER baseline, one bar per produce
#  and consume scenario, with the range of the runs as error bars
#  (the scale curves have their own plots, below)
awk -F, 'NR > 1 && $2 != "" && $1 !~ /^scale\./ { print $1, $9, $10, $11 }' broker_summary.csv \
    > ratios.dat
#  Latency percentiles per rate and path
awk -F, 'NR > 1 && $1 ~ /^latency/ { print $1, $16, $17, $18, $19 }' broker_summary.csv > latency.dat
#  Scale curves: msg/s (median, range) by topics (ZPER and the raw twin) and
#  by producers; x is the count at the end of the scenario's name
for curve in topics raw.topics producers; do
    awk -F, -v prefix="scale.$curve." 'NR > 1 && index ($1, prefix) == 1 {
        print substr ($1, length (prefix) + 1), $4, $6, $7 }' broker_summary.csv \
        | sort -n > "scale_$curve.dat"
done
STYLE='set terminal pngcairo size 1400,700 noenhanced
set key left top
set datafile separator " "
set style fill solid 0.6
set grid ytics
set logscale y'
if [ -s ratios.dat ]; then
    gnuplot <<EOF
$STYLE
set output "ratios.png"
set title "ZPER / raw libzmq DEALER->ROUTER of the same size, same run (median, range of runs)"
set style data histogram
set style histogram errorbars gap 1 lw 1
set xtics rotate by -60 font ",8"
set ylabel "ratio (log scale)"
plot "ratios.dat" using 2:3:4:xtic(1) title "ratio", 1 with lines dt 2 title "raw = 1"
EOF
fi
if [ -s latency.dat ]; then
    gnuplot <<EOF
$STYLE
set output "latency.png"
set title "produce (latency.mM: producer mode M) -> reader latency at a fixed rate (median of runs), microseconds"
set style data histogram
set style histogram clustered gap 1
set ylabel "microseconds (log scale)"
plot "latency.dat" using 2:xtic(1) title "p50", "" using 3 title "p99", "" using 4 title "p99.9", \
     "" using 5 title "max"
EOF
fi
if [ -s scale_topics.dat ]; then
    gnuplot <<EOF
$STYLE
set output "scale_topics.png"
set title "mode 0, 100 B, one sender writing round robin over N topics (a connection each): msg/s, median and range of runs"
set logscale x
set xlabel "topics"
set ylabel "msg/s (log scale)"
plot "scale_topics.dat" using 1:2:3:4 with yerrorlines title "ZPER (scale.topics.N)", \
     "scale_raw.topics.dat" using 1:2:3:4 with yerrorlines title "raw DEALER->ROUTER, the same connections (scale.raw.topics.N)"
EOF
fi
if [ -s scale_producers.dat ]; then
    gnuplot <<EOF
$STYLE
set output "scale_producers.png"
set title "mode 0, 100 B, P libzper producers of one topic: msg/s, median and range of runs"
set logscale x 2
set xlabel "producers"
set ylabel "msg/s (log scale)"
plot "scale_producers.dat" using 1:2:3:4 with yerrorlines title "ZPER (scale.producers.P)"
EOF
fi
rm -f ratios.dat latency.dat scale_topics.dat scale_raw.topics.dat scale_producers.dat
echo "run.sh: results and plots in $RESULTS" >&2
