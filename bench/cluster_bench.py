"""The cluster benchmark's driver (bench/cluster.sh runs it; see that header for what it measures
and how to read the results). Starts etcd and nodes through tests/cluster/cluster_harness.py.

Throughput is timed around `zper produce FILE --mode 1` (the C client: pipelined mode-1 writes,
the process ends when the last write is acknowledged), so a run includes the CLI's start, a few
ms against seconds of writing. The single node and the cluster run in the same process,
interleaved run by run, so both see the same machine load.

    cluster_bench.py --zperd PATH --zper PATH --dir SCRATCH --out FILE [--runs R] [--kills K]
                     [--lease-ttl S] [--quick]"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))

import cluster_harness as h                 # noqa: E402

SIZES = (100, 1024)
COUNTS = {100: 200000, 1024: 50000}         # messages per throughput run
QUICK_DIVISOR = 50


def message_file(folder, size, count):
    path = os.path.join(folder, "lines-%d-%d.txt" % (size, count))
    if not os.path.exists(path):
        line = (b"m" * (size - 1)) + b"\n"
        with open(path, "wb") as out:
            for _ in range(count):
                out.write(line)
    return path


def produce_rate(zper, front, topic, path, count):
    """Messages per second of `zper produce` writing the file in mode 1 to front."""
    started = time.time()
    result = subprocess.run([zper, "produce", topic, path, "--mode", "1", "--front", front,
                             "--timeout", "30000"], capture_output=True, text=True, timeout=600)
    elapsed = time.time() - started
    if result.returncode != 0:
        raise AssertionError("zper produce %s at %s: exit %d\n%s"
                             % (topic, front, result.returncode, result.stderr[-2000:]))
    return count / elapsed


def throughput(args, report):
    counts = {size: COUNTS[size] // (QUICK_DIVISOR if args.quick else 1) for size in SIZES}
    files = {size: message_file(args.dir, size, counts[size]) for size in SIZES}
    single = h.Broker()
    single.start()
    cluster = h.Cluster(3)
    for node in cluster.nodes.values():
        node.lease_ttl = args.lease_ttl
    cluster.start()
    rates = {(size, kind): [] for size in SIZES for kind in ("single", "cluster")}
    try:
        for run in range(args.runs):
            for size in SIZES:
                topic = "s%dr%d" % (size, run)
                rates[(size, "single")].append(
                    produce_rate(args.zper, single.endpoint("front"), topic + ".0", files[size],
                                 counts[size]))
                reply = cluster.create_topic(topic, 1, 3, 2)
                assert reply[0] == bytes([h.OK]), reply
                cluster.wait_isr(topic, 0, 3)
                leader, _epoch = cluster.leader_of(topic, 0)
                rates[(size, "cluster")].append(
                    produce_rate(args.zper, cluster.nodes[leader].endpoint("front"), topic + ".0",
                                 files[size], counts[size]))
                print("run %d, %d B: single %.0f msg/s, cluster %.0f msg/s"
                      % (run + 1, size, rates[(size, "single")][-1], rates[(size, "cluster")][-1]),
                      file=sys.stderr, flush=True)
    finally:
        single.stop()
        cluster.stop()
    report.append("Produce throughput: `zper produce --mode 1` (pipelined mode-1 writes, one "
                  "producer), messages/s,")
    report.append("median of %d runs (each run's figures in brackets); cluster = leader of a "
                  "partition with 3 replicas, min ISR 2" % args.runs)
    report.append("%-6s %-10s %-34s %-34s %s" % ("size", "messages", "(a) single node",
                                                 "(b) cluster", "b/a"))
    for size in SIZES:
        a = statistics.median(rates[(size, "single")])
        b = statistics.median(rates[(size, "cluster")])
        report.append("%-6s %-10d %-34s %-34s %.2f" % (
            "%d B" % size, counts[size],
            "%.0f %s" % (a, [round(r) for r in rates[(size, "single")]]),
            "%.0f %s" % (b, [round(r) for r in rates[(size, "cluster")]]), b / a))


def failover(args, report):
    kills = max(1, args.kills // (10 if args.quick else 1))
    cluster = h.Cluster(3)
    for node in cluster.nodes.values():
        node.lease_ttl = args.lease_ttl
    cluster.start()
    producer = None
    times = []
    try:
        reply = cluster.create_topic("failover", 1, 3, 2)
        assert reply[0] == bytes([h.OK]), reply
        cluster.wait_isr("failover", 0, 3)
        producer = h.ClusterProducer(cluster, "failover", 0).start()
        for kill in range(kills):
            cluster.wait_isr("failover", 0, 3)
            before = len(producer.acked)
            deadline = time.time() + h.WAIT_S
            while len(producer.acked) < before + 100:       # the stream is flowing
                assert producer.failure is None and time.time() < deadline, producer.statuses
                time.sleep(0.01)
            victim, _epoch = cluster.leader_of("failover", 0)
            killed_at = time.time()
            cluster.nodes[victim].kill9()
            deadline = time.time() + h.WAIT_S
            while producer.first_ack_after(killed_at, not_leader=victim) is None:
                assert producer.failure is None and time.time() < deadline, producer.statuses
                time.sleep(0.005)
            times.append(producer.first_ack_after(killed_at, not_leader=victim) - killed_at)
            print("kill %d: node %d, first acknowledged write on the new leader after %.2f s"
                  % (kill + 1, victim, times[-1]), file=sys.stderr, flush=True)
            cluster.nodes[victim].restart()
        producer.stop()
        producer = None
    finally:
        if producer:
            producer.running = False
        cluster.stop()
    report.append("")
    report.append("Failover: kill -9 of the partition's leader -> first acknowledged write on "
                  "the new leader (mode-1 producer")
    report.append("re-routing through METADATA on 110 / %.0f s of silence), cluster.lease_ttl = "
                  "%d s, %d kills:" % (h.REPLY_TIMEOUT_S, args.lease_ttl, len(times)))
    report.append("  median %.2f s, max %.2f s, min %.2f s"
                  % (statistics.median(times), max(times), min(times)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zperd", required=True)
    parser.add_argument("--zper", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease-ttl", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    h.harness.ZPERD = args.zperd
    os.makedirs(args.dir, exist_ok=True)
    tempfile.tempdir = args.dir             # every node's and etcd's folder: the bench's disk
    report = []
    throughput(args, report)
    failover(args, report)
    text = "\n".join(report) + "\n"
    with open(args.out, "a") as out:
        out.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
