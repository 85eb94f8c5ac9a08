"""STATS counts what the broker sends, not only what it stores (docs/protocol.md 3.1): messages
and bytes read per topic (READ, FETCH, a streaming FETCH, the relay), acks published per topic,
every reply by socket and status, the fdatasync latency histogram, the log's descriptors, and
the connections' output budgets with the peer of each. Known traffic, then exact counts.

Counts made after a reply is sent (acks, streamed and relayed messages) are polled for until a
deadline: they are exact once there, never more."""

import json
import time

import zmq

from zperd_harness import (Broker, INVALID_ARGUMENT, OK, decode, decode_read_batch, encode,
                           i32, i64, identity, main)
import unittest

WRITTEN = 20                            # mode 1 writes to the counted topic
DEADLINE_S = 15                         # a count made after its reply is there within this


def counted_messages():
    """Messages of different sizes and frame counts: byte counts are not a multiple of one."""
    return [[b"id-%02d" % n, b"x" * (n * 37)] if n % 2 else [b"id-%02d" % n]
            for n in range(WRITTEN)]


class StatsCountersTestCase(unittest.TestCase):
    """One broker per test: statuses are counted broker-wide."""

    def setUp(self):
        self.broker = Broker().start()

    def tearDown(self):
        self.broker.stop()

    def stats(self):
        reply = self.broker.request(b"STATS")
        self.assertEqual(reply[0], bytes([OK]))
        return json.loads(reply[1])

    def stats_when(self, condition, what):
        """STATS once condition(stats) holds; fails after DEADLINE_S."""
        deadline = time.time() + DEADLINE_S
        while True:
            stats = self.stats()
            if condition(stats):
                return stats
            if time.time() > deadline:
                raise AssertionError("STATS never showed %s: %s" % (what, json.dumps(stats)))
            time.sleep(0.05)

    def ack_subscriber(self, prefix):
        """A SUB on the ack socket whose subscription has reached the broker: a mode 0 write
        (no reply, so no front status) to a probe topic it matches is acked to it."""
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("ack"))
        sub.setsockopt(zmq.SUBSCRIBE, prefix)
        probe = self.broker.writer(identity(prefix.decode() + "probe", 0))
        deadline = time.time() + DEADLINE_S
        while True:
            probe.send_multipart([b"probe"])
            if sub.poll(200):
                break
            self.assertLess(time.time(), deadline, "the ack subscription never took effect")
        self.broker.close(probe)
        return sub


class ReadsAcksAndStatuses(StatsCountersTestCase):

    def test_reads_acks_and_reply_statuses_are_counted_exactly(self):
        sub = self.ack_subscriber(b"counted")
        messages = counted_messages()
        self.assertEqual(self.broker.write("counted", messages), [[m[0]] for m in messages])
        # Every ack of the counted topic reaches the subscriber (probe acks may come between)
        acked = []
        while len(acked) < WRITTEN:
            ack = sub.recv_multipart()
            if ack[0] == b"counted":
                acked.append(ack[1])
        self.assertEqual(acked, [m[0] for m in messages])
        encoded = sum(len(encode(m)) for m in messages)

        # READ twice, FETCH once: the whole topic each time
        for _ in range(2):
            reply = self.broker.request(b"READ", b"counted", i64(0), i32(1 << 20), i32(0))
            self.assertEqual(reply[0], bytes([OK]))
            self.assertEqual([r[2] for r in decode_read_batch(reply[1])], messages)
        reply = self.broker.fetch("counted", 0, 1 << 20)
        self.assertEqual(reply[0], bytes([OK]))
        self.assertEqual(decode(reply[1]), messages)
        # A bad request: READ without its arguments
        self.assertEqual(self.broker.request(b"READ", b"counted"), [bytes([INVALID_ARGUMENT])])

        stats = self.stats_when(lambda s: s["topics"].get("counted", {}).get("acks") == WRITTEN,
                                "%d acks of topic counted" % WRITTEN)
        topic = stats["topics"]["counted"]
        self.assertEqual(topic["messages_read"], 3 * WRITTEN)
        self.assertEqual(topic["bytes_read"], 3 * encoded)
        self.assertEqual(topic["messages_written"], WRITTEN)
        self.assertIn("messages_read_per_second", topic)
        self.assertIn("bytes_read_per_second", topic)
        self.assertEqual(topic["acks"], WRITTEN)
        self.assertGreaterEqual(stats["topics"]["countedprobe"]["acks"], 1)
        # Replies by status: the front answered each mode 1 write once (mode 0 never)
        self.assertEqual(stats["statuses"]["front"], {"100": WRITTEN})
        self.assertGreaterEqual(stats["statuses"]["rear"]["103"], 1)
        self.assertGreaterEqual(stats["statuses"]["rear"]["100"], 3)

        # fdatasync latency: the writes were synced; buckets are cumulative
        fsync = stats["fsync"]
        self.assertGreater(fsync["count"], 0)
        self.assertGreaterEqual(fsync["sum_us"], 0)
        bounds = [bucket[0] for bucket in fsync["buckets"]]
        self.assertEqual(bounds, [100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
                                  250000, 1000000])
        cumulative = [bucket[1] for bucket in fsync["buckets"]]
        self.assertEqual(cumulative, sorted(cumulative))
        self.assertLessEqual(cumulative[-1], fsync["count"])

        log = stats["log"]
        self.assertGreaterEqual(log["topics"], 2)
        self.assertGreaterEqual(log["open_partitions"], 1)
        self.assertIn("closed_partitions", log)
        self.assertGreater(log["open_fds"], 0)
        self.assertLessEqual(log["open_fds"], log["fd_limit"])

    def test_a_refused_write_is_counted_under_its_front_status(self):
        bad = self.broker.writer(b"\x00not-an-identity")
        bad.send_multipart([b"id-bad", b"body"])
        self.assertEqual(bad.recv_multipart(), [b"id-bad", bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.stats()["statuses"]["front"], {"103": 1})


class StreamsRelayAndConnections(StatsCountersTestCase):

    def test_streamed_and_relayed_messages_are_counted(self):
        messages = counted_messages()
        encoded = sum(len(encode(m)) for m in messages)
        self.broker.write("streamed", messages)
        stream = self.broker.reader(identity("streamed"))
        stream.send_multipart([b"FETCH", i64(0), i64(-1)])
        self.assertEqual(stream.recv_multipart(), [bytes([OK])])
        self.assertEqual([stream.recv_multipart() for _ in messages], messages)
        self.stats_when(lambda s: s["topics"]["streamed"]["messages_read"] == WRITTEN
                        and s["topics"]["streamed"]["bytes_read"] == encoded,
                        "%d streamed messages" % WRITTEN)

        relayed = self.broker.socket(zmq.DEALER, identity("relayed"), self.broker.endpoint("relay"))
        relayed.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(relayed.recv_multipart(), [bytes([OK]), i64(0)])
        self.broker.write("relayed", messages)
        self.assertEqual([relayed.recv_multipart() for _ in messages], messages)
        self.stats_when(lambda s: s["topics"]["relayed"]["messages_read"] == WRITTEN
                        and s["topics"]["relayed"]["bytes_read"] == encoded,
                        "%d relayed messages" % WRITTEN)

    def test_hops_count_samples_of_relayed_and_long_polled_traffic(self):
        # STATS "hops": where a message's time goes inside the broker, per hop (zper_hops.h)
        relayed = self.broker.socket(zmq.DEALER, identity("hopped"), self.broker.endpoint("relay"))
        relayed.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(relayed.recv_multipart(), [bytes([OK]), i64(0)])
        poll = self.broker.reader(identity("poller"))
        poll.send_multipart([b"READ", b"hopped", i64(0), i32(1 << 20), i32(60000)])
        time.sleep(0.3)                         # the poll waits at the end
        writer = self.broker.writer(identity("hopped", 0))
        for n in range(WRITTEN):
            writer.send(b"hop-%02d" % n)
        self.assertEqual([relayed.recv_multipart() for _ in range(WRITTEN)],
                         [[b"hop-%02d" % n] for n in range(WRITTEN)])
        self.assertEqual(poll.recv_multipart()[0], bytes([OK]))
        hops = self.stats()["hops"]
        self.assertEqual(set(hops), {"front_to_worker", "worker_to_bus", "bus_to_relay",
                                     "relay_send", "front_to_relay_send", "bus_to_read_reply"})
        for name, hop in hops.items():
            self.assertGreater(hop["count"], 0, name)
            self.assertLessEqual(hop["count"], 2 * WRITTEN, name)   # one per turn at most
            self.assertTrue(0 <= hop["p50_us"] <= hop["p99_us"], name)
            # the percentiles are bucket middles, within 1/8 of a sample
            self.assertLessEqual(hop["p99_us"], hop["max_us"] * 9 // 8 + 1, name)

    def test_a_connected_reader_is_listed_with_its_routing_id(self):
        routing_id = identity("listed")
        reader = self.broker.socket(zmq.DEALER, routing_id, self.broker.endpoint("relay"))
        reader.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(reader.recv_multipart(), [bytes([OK]), i64(0)])
        connections = self.stats()["connections"]
        self.assertGreaterEqual(connections["count"], 1)
        self.assertGreaterEqual(connections["queued_bytes"], 0)
        self.assertGreaterEqual(connections["dropped"], 0)
        peers = [(p["socket"], p["peer"]) for p in connections["peers"]]
        self.assertIn(("relay", routing_id.hex().upper()), peers)
        self.assertIn(("ack", "*"), peers)
        self.assertIn(("relay.pub", "*"), peers)
        for peer in connections["peers"]:
            self.assertEqual(sorted(peer), ["dropped", "peer", "queued_bytes", "socket"])


class MaxPeers(StatsCountersTestCase):

    def setUp(self):
        self.broker = Broker("metrics.max_peers = 1").start()

    def test_at_most_max_peers_connections_are_listed(self):
        reader = self.broker.socket(zmq.DEALER, identity("one"), self.broker.endpoint("relay"))
        reader.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(reader.recv_multipart(), [bytes([OK]), i64(0)])
        connections = self.stats()["connections"]
        self.assertGreaterEqual(connections["count"], 3)        # ack, relay.pub, the reader
        self.assertEqual(len(connections["peers"]), 1)


if __name__ == "__main__":
    main()
