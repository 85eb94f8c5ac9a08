"""The Prometheus endpoint (docs/operations.md, "Metrics"): with metrics.listen set, zperd serves
GET /metrics in text format 0.0.4; every line parses under a strict reading of the format, every
series is typed, histograms are cumulative and end in +Inf == _count; the topic counters are
exactly the traffic sent, and grow by exactly the traffic sent since; other paths are 404,
other methods 405. Without metrics.listen zperd listens on its five ZeroMQ ports and nothing
else; a malformed metrics.listen or a port in use stops zperd at start with one line naming
metrics.listen."""

import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zperd_harness import OK, ZPERD, Broker, decode, free_port, i32, i64  # noqa: E402

HTTP_TIMEOUT_S = 10
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(text, line):
    labels, cursor = {}, 0
    while cursor < len(text):
        match = LABEL.match(text, cursor)
        assert match, "bad labels in %r" % line
        assert match.group(1) not in labels, "label twice in %r" % line
        labels[match.group(1)] = match.group(2)
        cursor = match.end()
        if cursor < len(text):
            assert text[cursor] == ",", "bad label separator in %r" % line
            cursor += 1
    return labels


def parse(text):
    """Strict text format 0.0.4: {family: type} and {(name, sorted label pairs): value}. Every
    sample follows its family's TYPE, a family's samples are contiguous, no sample twice."""
    assert text.endswith("\n"), "the body must end with a newline"
    types, samples, helped, closed, current = {}, {}, set(), set(), None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helped, "HELP twice for " + name
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in TYPES, "bad TYPE line %r" % line
            assert parts[2] not in types, "TYPE twice for " + parts[2]
            if current:
                closed.add(current)
            types[parts[2]], current = parts[3], parts[2]
            continue
        assert not line.startswith("#") and line, "unexpected line %r" % line
        match = SAMPLE.match(line)
        assert match, "not a sample line: %r" % line
        name, value = match.group(1), match.group(3)
        family = name
        if name not in types:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                    family = name[:-len(suffix)]
        assert family in types, "sample of an untyped family: %r" % line
        assert family == current and family not in closed, "family %s not contiguous" % family
        labels = parse_labels(match.group(2) or "", line)
        key = (name, tuple(sorted(labels.items())))
        assert key not in samples, "sample twice: %r" % line
        samples[key] = float(value)
    for family, kind in types.items():
        if kind == "histogram":
            check_histogram(family, samples)
        if kind == "counter":
            for (name, labels), value in samples.items():
                if name == family:
                    assert value >= 0, "negative counter %s%s" % (name, labels)
    return types, samples


def check_histogram(family, samples):
    series = {}
    for (name, labels), value in samples.items():
        if name == family + "_bucket":
            rest = tuple(pair for pair in labels if pair[0] != "le")
            le = dict(labels)["le"]
            series.setdefault(rest, []).append((float(le), le, value))
    assert series, "histogram %s without buckets" % family
    for rest, buckets in series.items():
        buckets.sort()
        counts = [count for _, _, count in buckets]
        assert counts == sorted(counts), "%s buckets not cumulative: %s" % (family, buckets)
        assert buckets[-1][1] == "+Inf", "%s buckets do not end in +Inf" % family
        assert samples[(family + "_count", rest)] == counts[-1], "%s: +Inf != _count" % family
        assert (family + "_sum", rest) in samples, "%s without _sum" % family


def scrape(port, path="/metrics", method="GET"):
    """(status, content type, body) of one request."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def listening_ports(pid):
    """TCP ports the process listens on: its socket inodes matched against /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:       # LISTEN
                    ports.add(int(fields[1].split(":")[1], 16))
    return ports


def messages(count, tag):
    return [[b"id-%d" % index, b"%s-%d" % (tag, index)] for index in range(count)]


class MetricsEndpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.broker = Broker("metrics.listen = 127.0.0.1:%d" % cls.port).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def metrics(self):
        status, content_type, body = scrape(self.port)
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        return parse(body)

    def test_topic_counters_are_the_traffic_sent(self):
        self.assertEqual(self.broker.write("a", messages(7, b"a")), [[b"id-%d" % i] for i in range(7)])
        self.assertEqual(len(self.broker.write("b", messages(3, b"b"))), 3)
        types, samples = self.metrics()
        self.assertEqual(samples[("zper_up", ())], 1)
        self.assertEqual(types["zper_topic_messages_in_total"], "counter")
        self.assertEqual(types["zper_topic_end_offset"], "gauge")
        self.assertEqual(samples[("zper_topic_messages_in_total", (("topic", "a"),))], 7)
        self.assertEqual(samples[("zper_topic_messages_in_total", (("topic", "b"),))], 3)
        self.assertEqual(samples[("zper_topic_end_offset", (("topic", "a"),))], 7)
        self.assertEqual(samples[("zper_topic_start_offset", (("topic", "a"),))], 0)
        self.assertGreater(samples[("zper_topic_bytes_in_total", (("topic", "a"),))], 7 * 8)
        self.assertGreater(samples[("zper_uptime_seconds", ())], 0)

        # More traffic: the counters grow by exactly that much, the other topic stays
        self.assertEqual(len(self.broker.write("a", messages(5, b"more"))), 5)
        _, again = self.metrics()
        self.assertEqual(again[("zper_topic_messages_in_total", (("topic", "a"),))], 12)
        self.assertEqual(again[("zper_topic_messages_in_total", (("topic", "b"),))], 3)
        self.assertEqual(again[("zper_topic_end_offset", (("topic", "a"),))], 12)

    def test_reads_are_counted_out(self):
        self.broker.write("out", messages(4, b"o"))
        _, before = self.metrics()
        key = ("zper_topic_messages_out_total", (("topic", "out"),))
        if key not in before:
            self.skipTest("STATS has no messages_read yet")
        reply = self.broker.fetch("out", 0, 1 << 20)
        self.assertEqual(reply[0], bytes([OK]))
        self.assertEqual(len(decode(reply[1])), 4)
        _, after = self.metrics()
        self.assertEqual(after[key] - before[key], 4)

    def test_rear_replies_are_counted_by_status(self):
        _, before = self.metrics()
        key = ("zper_replies_total", (("socket", "rear"), ("status", "101")))
        if not any(name == "zper_replies_total" for name, _ in before):
            self.skipTest("STATS has no statuses yet")
        self.broker.write("replies", messages(1, b"r"))
        for _ in range(3):     # READ past the end: 101
            reply = self.broker.request(b"READ", b"replies", i64(9), i32(100), i32(0))
            self.assertEqual(reply[0], bytes([101]), reply)
        _, after = self.metrics()
        self.assertEqual(after.get(key, 0) - before.get(key, 0), 3)

    def test_group_lag_follows_commits(self):
        self.broker.write("lagged", messages(10, b"l"))
        reply = self.broker.request(b"COMMIT", b"watchers", b"lagged", i64(4))
        if reply[0] == bytes([102]):
            self.skipTest("no COMMIT command yet")
        self.assertEqual(reply, [bytes([OK])])
        types, samples = self.metrics()
        labels = (("group", "watchers"), ("topic", "lagged"))
        self.assertEqual(types["zper_group_lag_messages"], "gauge")
        self.assertEqual(samples[("zper_group_committed_offset", labels)], 4)
        self.assertEqual(samples[("zper_group_lag_messages", labels)], 6)
        self.assertGreaterEqual(samples[("zper_group_lag_seconds", labels)], 0)
        self.assertEqual(samples[("zper_group_members", (("group", "watchers"),))], 0)
        # Committing the end clears the lag
        self.assertEqual(self.broker.request(b"COMMIT", b"watchers", b"lagged", i64(10)), [bytes([OK])])
        _, samples = self.metrics()
        self.assertEqual(samples[("zper_group_lag_messages", labels)], 0)
        self.assertEqual(samples[("zper_group_lag_seconds", labels)], 0)

    def test_every_series_is_typed_and_histograms_are_cumulative(self):
        self.broker.write("typed", messages(2, b"t"))
        types, samples = self.metrics()     # parse() checks the format itself
        for name in ("zper_up", "zper_uptime_seconds", "zper_topic_messages_in_total",
                     "zper_topic_bytes_in_total", "zper_topic_end_offset", "zper_topic_start_offset",
                     "zper_topic_size_bytes", "zper_errors_total"):
            self.assertIn(name, types)
        self.assertIn(("zper_errors_total", (("counter", "bad_write"),)), samples)
        if "zper_fsync_seconds" in types:
            self.assertEqual(types["zper_fsync_seconds"], "histogram")
            self.assertGreater(samples[("zper_fsync_seconds_count", ())], 0)

    def test_other_paths_and_methods_are_refused(self):
        self.assertEqual(scrape(self.port, "/nope")[0], 404)
        self.assertEqual(scrape(self.port, "/")[0], 404)
        self.assertEqual(scrape(self.port, "/metrics", method="POST")[0], 405)
        self.assertEqual(scrape(self.port, "/metrics", method="HEAD")[0], 200)


class MetricsOffTest(unittest.TestCase):
    def test_nothing_listens_without_metrics_listen(self):
        broker = Broker().start()
        try:
            # start() returns once the rear answers; the front, started last, binds a moment later
            configured = set(broker.ports[name] for name in ("front", "rear", "ack", "relay", "pub"))
            deadline = time.time() + 10
            while not configured <= listening_ports(broker.process.pid) and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(listening_ports(broker.process.pid), configured)
        finally:
            broker.stop()

    def test_the_metrics_port_listens_with_it(self):
        # The same probe, with metrics.listen: the sixth port is the metrics one (the probe works)
        port = free_port()
        broker = Broker("metrics.listen = 127.0.0.1:%d" % port).start()
        try:
            self.assertIn(port, listening_ports(broker.process.pid))
        finally:
            broker.stop()


class MetricsStartFailureTest(unittest.TestCase):
    def start_fails(self, listen):
        """zperd with metrics.listen = listen: its exit code and output."""
        broker = Broker("metrics.listen = " + listen)
        path = os.path.join(broker.folder, "zper.conf")
        with open(path, "w") as config:
            config.write(broker.config_text())
        result = subprocess.run([ZPERD, "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=60)
        return result.returncode, result.stdout.decode(errors="replace")

    def test_malformed_listen_is_refused(self):
        for listen in ("9100", "example.com:9100", "127.0.0.1:99999", "[::1]:9100"):
            code, output = self.start_fails(listen)
            self.assertNotEqual(code, 0, output)
            lines = [line for line in output.splitlines() if "metrics.listen" in line]
            self.assertEqual(len(lines), 1, output)

    def test_port_in_use_is_refused(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            code, output = self.start_fails("127.0.0.1:%d" % holder.getsockname()[1])
        self.assertNotEqual(code, 0, output)
        self.assertIn("metrics.listen", output)
        self.assertIn("in use", output)


if __name__ == "__main__":
    unittest.main(verbosity=2)
