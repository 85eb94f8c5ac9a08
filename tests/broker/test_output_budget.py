"""A peer that never reads costs the broker at most its output budget (docs/operations.md, Limits
and Memory): a silent ack subscriber, a silent relay reader and relay PUB subscriber, a rear
reader whose stream or READ replies it never reads. Each time the broker stays alive and keeps
serving others, its peak RSS grows by about the budget rather than by the data the silent peer
was owed, PUB drops are counted in STATS, and streams lose nothing: the silent reader that reads
again gets every message. When the silent peer leaves, its budget is free again."""

import json
import os
import sys
import time

import zmq

from zperd_harness import Broker, OK, get_i64, i32, i64, identity, main, proc_status_bytes
import unittest

MIB = 1024 * 1024
MESSAGE = 4 * MIB                       # under the default max_message
WARM_UP = 24                            # messages written first: the broker's working memory
SILENT = 150                            # 600 MiB owed to the silent peer
BUDGET = 8 * MIB                        # every output budget of these brokers
#  What the peak RSS may grow by while the silent peer is owed 600 MiB: its budget (two for the
#  relay's reader and PUB), one message over it, and the working memory of large writes beyond
#  the warm-up's peak. Without the budgets the broker keeps (or maps) the whole 600 MiB.
RSS_GROWTH_MAX = 200 * MIB
WAIT_S = 120                            # ASan on two busy cores: 700 MB through the log
CONFIG = "\n".join("%s = %d" % (key, BUDGET) for key in (
    "ack.output_budget", "relay.output_budget", "relay.pub.output_budget", "rear.output_budget"))


def big(index):
    """A large single-frame message: its id (first frame) is the whole message."""
    return [b"%08d" % index + bytes([index % 251]) * (MESSAGE - 8)]


class OutputBudgetTestCase(unittest.TestCase):
    """One broker per test: each measures its own peak RSS."""

    def setUp(self):
        #  ASan keeps freed blocks in quarantine: make it small, so it does not count as memory
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
        self.broker = Broker(CONFIG).start()
        self.pid = self.broker.process.pid

    def tearDown(self):
        self.broker.stop()

    def silent(self, kind, endpoint, routing_id=None):
        """A socket that will not read: tiny kernel buffer and queue."""
        sock = self.broker.context.socket(kind)
        sock.setsockopt(zmq.RCVBUF, 4096)
        sock.setsockopt(zmq.RCVHWM, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 10000)
        if routing_id is not None:
            sock.setsockopt(zmq.IDENTITY, routing_id)
        sock.connect(endpoint)
        self.broker.sockets.append(sock)
        return sock

    def write(self, topic, first, count, window=4):
        """count large messages in mode 1, window at a time (a writer that reads its replies)."""
        writer = self.broker.writer(identity(topic, 1))
        for start in range(first, first + count, window):
            indexes = range(start, min(start + window, first + count))
            for index in indexes:
                writer.send_multipart(big(index), copy=False)
            for index in indexes:
                self.assertEqual(writer.recv_multipart()[0][:8], b"%08d" % index)
        self.broker.close(writer)

    def warm_up(self, topic):
        self.write(topic, 0, WARM_UP)
        return proc_status_bytes(self.pid, "VmHWM")

    def assert_bounded(self, peak_before):
        growth = proc_status_bytes(self.pid, "VmHWM") - peak_before
        sys.stderr.write("peak RSS grew by %d MiB " % (growth // MIB))
        self.assertLess(growth, RSS_GROWTH_MAX, "peak RSS grew by %d MiB" % (growth // MIB))

    def counter(self, name):
        reply = self.broker.request(b"STATS")
        self.assertEqual(reply[0], bytes([OK]))
        return json.loads(reply[1])["counters"].get(name, 0)

    def assert_serving(self):
        self.assertIsNone(self.broker.process.poll(), self.broker.output())
        replies = self.broker.write("wellbehaved", [[b"id-ok", b"still serving"]])
        self.assertEqual(replies, [[b"id-ok"]])
        self.assertEqual(self.broker.fetch_all("wellbehaved")[-1], [b"id-ok", b"still serving"])

    def subscriber(self, endpoint, topic):
        sub = self.broker.socket(zmq.SUB, None, endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, topic)
        time.sleep(0.3)                 # the slow-joiner rule: let the subscription arrive
        return sub

    def write_and_receive(self, topic, first, count, sock):
        """Write count messages one by one, each time reading what sock receives for it."""
        received = []
        for index in range(first, first + count):
            self.write(topic, index, 1)
            received.append(sock.recv_multipart())
        return received


class SilentAckSubscriber(OutputBudgetTestCase):

    def test_a_silent_ack_subscriber_costs_its_budget_and_frees_it_when_it_leaves(self):
        peak = self.warm_up("acked")
        silent = self.silent(zmq.SUB, self.broker.endpoint("ack"))
        silent.setsockopt(zmq.SUBSCRIBE, b"acked")
        time.sleep(0.3)
        self.write("acked", WARM_UP, SILENT)
        self.assert_bounded(peak)
        self.assertGreater(self.counter("ack_dropped"), 0)
        self.assert_serving()
        # Gone: the acks it held are released, a reading subscriber gets every ack again
        self.broker.close(silent)
        time.sleep(0.3)
        reading = self.subscriber(self.broker.endpoint("ack"), b"acked")
        first = WARM_UP + SILENT
        acks = self.write_and_receive("acked", first, 8, reading)
        self.assertEqual([ack[1][:8] for ack in acks], [b"%08d" % n for n in range(first, first + 8)])


class SilentRelayPeers(OutputBudgetTestCase):

    def test_a_silent_relay_reader_and_pub_subscriber_cost_their_budgets(self):
        peak = self.warm_up("relayed")
        reader = self.silent(zmq.DEALER, self.broker.endpoint("relay"), identity("relayed"))
        reader.send_multipart([b"RESUME", i64(-1)])
        sub = self.silent(zmq.SUB, self.broker.endpoint("pub"))
        sub.setsockopt(zmq.SUBSCRIBE, b"relayed")
        time.sleep(0.3)
        self.write("relayed", WARM_UP, SILENT)
        self.assert_bounded(peak)
        self.assertGreater(self.counter("relay_pub_dropped"), 0)
        self.assert_serving()
        # The relay reader lost nothing: reading now, it gets every message in order
        self.assertEqual(reader.recv_multipart(), [bytes([OK]), i64(WARM_UP)])
        for index in range(WARM_UP, WARM_UP + SILENT):
            self.assertEqual(reader.recv_multipart()[0][:8], b"%08d" % index)
        # The PUB subscriber left: a reading one gets every message again
        self.broker.close(sub)
        time.sleep(0.3)
        reading = self.subscriber(self.broker.endpoint("pub"), b"relayed")
        first = WARM_UP + SILENT
        self.assertEqual([m[1][:8] for m in self.write_and_receive("relayed", first, 8, reading)],
                         [b"%08d" % n for n in range(first, first + 8)])


class SilentRearReader(OutputBudgetTestCase):

    def test_a_silent_streaming_reader_costs_its_budget_and_loses_nothing(self):
        peak = self.warm_up("streamed")
        reader = self.silent(zmq.DEALER, self.broker.endpoint("rear"), identity("streamed"))
        reader.send_multipart([b"FETCH", i64(0), i64(-1)])
        self.write("streamed", WARM_UP, SILENT)
        self.assert_bounded(peak)
        self.assert_serving()
        self.assertEqual(reader.recv_multipart(), [bytes([OK])])
        for index in range(WARM_UP + SILENT):
            self.assertEqual(reader.recv_multipart()[0][:8], b"%08d" % index)

    def test_read_replies_a_reader_never_reads_are_dropped_and_counted(self):
        self.write("pipelined", 0, SILENT)
        peak = proc_status_bytes(self.pid, "VmHWM")
        reader = self.silent(zmq.DEALER, self.broker.endpoint("rear"), identity("pipelined"))
        # Each READ asks for 32 MiB: before the budgets, a 32 MiB copy of the log per reply
        for _ in range(20):
            reader.send_multipart([b"READ", b"pipelined", i64(0), i32(8 * MESSAGE), i32(0)])
        deadline = time.time() + WAIT_S
        while self.counter("rear_reply_dropped") == 0 and time.time() < deadline:
            time.sleep(0.1)
        self.assert_bounded(peak)
        self.assertGreater(self.counter("rear_reply_dropped"), 0)
        self.assert_serving()


if __name__ == "__main__":
    main()
