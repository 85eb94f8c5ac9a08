#!/usr/bin/env bash
#  bench/cluster.sh - cluster mode's cost and failover time, measured on loopback
#
#  Usage: bench/cluster.sh [--runs R] [--kills K] [--lease-ttl S] [--quick]
#
#  Builds ZPER in Release (build-bench-rel, or $ZPER_BENCH_BUILD), then, with /usr/bin/etcd
#  (Debian etcd-server) and Python 3 + pyzmq, runs bench/cluster_bench.py, which starts etcd and
#  three zperd nodes on 127.0.0.1 in a scratch folder (build-bench-rel/cluster-scratch, deleted
#  at the end) and measures, in the same run:
#    throughput  `zper produce --mode 1` (the C client, pipelined mode-1 writes) of 100 B and
#                1 KiB messages to (a) a single-node zperd (no cluster) and (b) the leader of a
#                partition with 3 replicas and min ISR 2; R runs (default 3), interleaved, medians,
#                and the ratio b/a (the price of waiting for the followers' fdatasync)
#    failover    kill -9 of the partition's leader -> first acknowledged write on the new
#                leader, seen by a mode-1 producer that re-reads METADATA on 110 or silence;
#                K kills (default 20), each node restarted after its kill; median and max.
#                Dominated by cluster.lease_ttl (default 5 s, as a node's default config).
#  Appends the figures, after a header with the machine, to bench/results/cluster.txt.
#  --quick: 1/50 of the messages, 1/10 of the kills, one run (a smoke run of the script).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ZPER_BENCH_BUILD:-$ROOT/build-bench-rel}
RESULTS=$ROOT/bench/results
RUNS=3
KILLS=20
LEASE_TTL=5
QUICK=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --kills) KILLS=$2; shift 2 ;;
        --lease-ttl) LEASE_TTL=$2; shift 2 ;;
        --quick) QUICK=--quick; RUNS=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/etcd ] || { echo "cluster.sh: needs /usr/bin/etcd (apt-get install etcd-server)" >&2; exit 1; }

echo "cluster.sh: Release build in $BUILD" >&2
mkdir -p "$BUILD"
BUILD_LOG=$BUILD/bench-build.log
cmake -S "$ROOT" -B "$BUILD" -DZPER_AREAS="log;broker;client;dafka" -DCMAKE_BUILD_TYPE=Release \
      -DZPER_SANITIZE=OFF > "$BUILD_LOG" 2>&1 || { cat "$BUILD_LOG"; exit 1; }
cmake --build "$BUILD" -j2 --target zperd zper_cli >> "$BUILD_LOG" 2>&1 || { tail -30 "$BUILD_LOG"; exit 1; }

mkdir -p "$RESULTS"
SCRATCH=$BUILD/cluster-scratch
rm -rf "$SCRATCH"
{
    echo
    echo "==== bench/cluster.sh --runs $RUNS --kills $KILLS --lease-ttl $LEASE_TTL $QUICK"
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:   $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes')"
    echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
    echo "disk:     $(df -h "$BUILD" | awk 'NR==2 {print $1 ", " $2 " total, " $4 " free"}')"
    echo "etcd:     $(/usr/bin/etcd --version | head -1)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the machine)"
    echo "nodes:    3 zperd + etcd + the clients on one machine, loopback, one data disk"
} >> "$RESULTS/cluster.txt"
/usr/bin/python3 "$ROOT/bench/cluster_bench.py" --zperd "$BUILD/zperd" --zper "$BUILD/zper" \
    --dir "$SCRATCH" --out "$RESULTS/cluster.txt" --runs "$RUNS" --kills "$KILLS" \
    --lease-ttl "$LEASE_TTL" $QUICK
rm -rf "$SCRATCH"
