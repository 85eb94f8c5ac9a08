"""bench/groups_bench.py - what consumer groups and the metrics endpoint cost, on loopback.

Usage: python3 bench/groups_bench.py BUILD_DIR [--runs R] [--messages N] [--topics K]

BUILD_DIR holds zperd and zper (a Release build: cmake -S . -B build-bench-rel
-DCMAKE_BUILD_TYPE=Release && cmake --build build-bench-rel). One zperd on free loopback ports, a
scratch data folder deleted at the end; every figure is the median of R runs (default 5), each
against its baseline measured in the same run:

  consume   N messages of 100 B (default 120,000) in six partitions g.0..g.5, read to the end by
            `zper consume --group` (one member, auto-commit every second), by the same with
            `--commit-interval 0` (a commit, so an fdatasync, after every message), and by the
            baseline: plain `zper consume` of each partition in turn. Messages per second and the
            ratio to the baseline.
  scrape    K topics (default 10,000) with one message each: GET /metrics (the STATS object
            rendered as Prometheus text) against the baseline, the STATS request it renders.
            Milliseconds per scrape, the ratio, and the body's size.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "broker"))
import zperd_harness as harness                 # noqa: E402

PARTITIONS = 6
MESSAGE = b"x" * 99                             # + the newline: 100 B lines


def zper(build, *arguments, stdin=None):
    started = time.perf_counter()
    result = subprocess.run([os.path.join(build, "zper"), *arguments], input=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit("zper %s: exit %d: %s" % (" ".join(arguments), result.returncode,
                                                   result.stderr.decode(errors="replace")))
    return result.stdout, elapsed


def consume_rates(build, rear, count, run):
    """Messages per second of the three readers over the same partitions."""
    rates = {}
    group_args = ["consume", "--rear", rear, "--group"]
    output, seconds = zper(build, *group_args, "auto-%d" % run, "-n", str(count), "g")
    assert output.count(b"\n") == count, "group read %d of %d" % (output.count(b"\n"), count)
    rates["group"] = count / seconds
    small = count // 20                         # a commit per message is slow: read a 20th
    output, seconds = zper(build, *group_args, "each-%d" % run, "--commit-interval", "0",
                           "-n", str(small), "g")
    rates["group_commit_each"] = small / seconds
    seconds = 0.0
    for index in range(PARTITIONS):
        output, elapsed = zper(build, "consume", "--rear", rear, "g.%d" % index)
        seconds += elapsed
    rates["plain"] = count / seconds
    return rates


def scrape_ms(metrics_url, broker):
    started = time.perf_counter()
    body = urllib.request.urlopen(metrics_url, timeout=60).read()
    scrape = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    reply = broker.request(b"STATS")
    stats = (time.perf_counter() - started) * 1000
    assert reply[0] == bytes([harness.OK])
    return scrape, stats, len(body), len(reply[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=120000)
    parser.add_argument("--topics", type=int, default=10000)
    options = parser.parse_args()
    build = os.path.abspath(options.build)
    harness.ZPERD = os.path.join(build, "zperd")
    metrics_port = harness.free_port()
    broker = harness.Broker("metrics.listen = 127.0.0.1:%d\n" % metrics_port)
    broker.start()
    try:
        rear = broker.endpoint("rear")
        per_partition = options.messages // PARTITIONS
        count = per_partition * PARTITIONS
        for index in range(PARTITIONS):
            zper(build, "produce", "--front", broker.endpoint("front"), "--batch", "g.%d" % index,
                 stdin=(MESSAGE + b"\n") * per_partition)
        runs = [consume_rates(build, rear, count, run) for run in range(options.runs)]
        print("consume: %d messages of 100 B in %d partitions, %d runs (medians)"
              % (count, PARTITIONS, options.runs))
        plain = statistics.median(run["plain"] for run in runs)
        for name in ("plain", "group", "group_commit_each"):
            rate = statistics.median(run[name] for run in runs)
            print("  %-18s %10.0f msg/s  %5.2fx plain" % (name, rate, rate / plain))

        for first in range(0, options.topics, 200):   # the topic is the writer's identity:
            writers = [broker.writer(harness.identity("t%d" % index, 1))    # a socket each,
                       for index in range(first, min(first + 200, options.topics))]
            for writer in writers:                      # 200 at a time (libzmq's socket limit)
                writer.send_multipart([b"id", b"one"])
            for writer in writers:
                writer.recv_multipart()
                broker.close(writer)
        url = "http://127.0.0.1:%d/metrics" % metrics_port
        samples = [scrape_ms(url, broker) for _ in range(options.runs)]
        scrape = statistics.median(sample[0] for sample in samples)
        stats = statistics.median(sample[1] for sample in samples)
        print("scrape: %d topics, %d runs (medians)" % (options.topics + PARTITIONS, options.runs))
        print("  STATS request      %8.1f ms  %8d bytes of JSON" % (stats, samples[-1][3]))
        print("  GET /metrics       %8.1f ms  %8d bytes of text  %5.2fx STATS"
              % (scrape, samples[-1][2], scrape / stats))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
