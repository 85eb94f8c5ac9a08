"""Reads: FETCH boundaries, streaming FETCH, READ long polls, BOUNDS, TIMEOFFSET,
TOPICS, STATS, REQ readers, retention. OFFSET's reply shapes: test_offset.py."""

import json
import threading
import time

import zmq

from zperd_harness import (BrokerTestCase, OK, INVALID_OFFSET, INVALID_ARGUMENT, decode,
                           decode_read_batch, encode, get_i64, i32, i64, identity, main)

SEGMENT_SIZE = 4096


class Fetch(BrokerTestCase):
    extra_config = "segment_size = %d" % SEGMENT_SIZE

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.messages = [[b"id-%03d" % n, bytes([n]) * (50 + n * 7)] for n in range(60)]
        for message in cls.messages:    # one flush each: records fill several segments
            cls.broker.write("fetched", [message])
        cls.end = sum(len(encode(m)) for m in cls.messages)

    def test_fetch_across_segments_returns_every_message_in_order(self):
        stats = json.loads(self.broker.request(b"STATS")[1])
        self.assertGreaterEqual(stats["topics"]["fetched"]["segments"], 3)
        self.assertEqual(self.broker.fetch_all("fetched"), self.messages)

    def test_fetch_returns_only_whole_messages_within_max_bytes(self):
        position = 0
        while position < self.end:
            reply = self.broker.fetch("fetched", position, 700)
            self.assertEqual(reply[0], bytes([OK]))
            got = decode(reply[1])      # asserts whole frames and whole messages
            self.assertTrue(got)
            self.assertTrue(len(reply[1]) <= 700 or len(got) == 1)
            position += len(reply[1])
        self.assertEqual(position, self.end)

    def test_fetch_smaller_than_a_message_returns_that_whole_message(self):
        reply = self.broker.fetch("fetched", 0, 1)
        self.assertEqual(decode(reply[1]), [self.messages[0]])

    def test_fetch_at_end_is_ok_and_empty(self):
        self.assertEqual(self.broker.fetch("fetched", self.end, 1000), [bytes([OK]), b""])

    def test_fetch_beyond_end_is_invalid_offset(self):
        self.assertEqual(self.broker.fetch("fetched", self.end + 1, 1000), [bytes([INVALID_OFFSET])])
        self.assertEqual(self.broker.fetch("fetched", -5, 1000), [bytes([INVALID_OFFSET])])

    def test_fetch_mid_message_is_invalid_offset(self):
        for position in (1, 2, len(encode(self.messages[0])) + 3):
            self.assertEqual(self.broker.fetch("fetched", position, 1000), [bytes([INVALID_OFFSET])])

    def test_fetch_of_unknown_topic_is_empty_at_zero(self):
        self.assertEqual(self.broker.fetch("neverwritten", 0, 1000), [bytes([OK]), b""])
        self.assertEqual(self.broker.fetch("neverwritten", 10, 1000), [bytes([INVALID_OFFSET])])

    def test_req_reader_gets_replies_through_its_envelope(self):
        reply = self.broker.request(b"FETCH", i64(0), i64(100000), routing_id=identity("fetched"),
                                    kind=zmq.REQ)
        self.assertEqual(reply[0], bytes([OK]))
        self.assertEqual(decode(reply[1])[0], self.messages[0])

    def test_bounds_topics_timeoffset_and_stats(self):
        start, durable, start_position, durable_position, first_ts, last_ts = \
            self.broker.bounds("fetched")
        self.assertEqual((start, durable, start_position, durable_position), (0, 60, 0, self.end))
        self.assertTrue(0 < first_ts <= last_ts)
        self.assertEqual(self.broker.bounds("neverwritten"), [0, 0, 0, 0, -1, -1])
        topics = self.broker.request(b"TOPICS")
        self.assertEqual(topics[0], bytes([OK]))
        self.assertIn(b"fetched", topics[1:])
        self.assertEqual(topics[1:], sorted(topics[1:]))
        at = self.broker.request(b"TIMEOFFSET", b"fetched", i64(first_ts))
        self.assertEqual(get_i64(at[1]), 0)
        after = self.broker.request(b"TIMEOFFSET", b"fetched", i64(last_ts + 1))
        self.assertEqual(get_i64(after[1]), 60)
        stats = self.broker.request(b"STATS")
        self.assertEqual(stats[0], bytes([OK]))
        document = json.loads(stats[1])
        self.assertEqual(document["topics"]["fetched"]["durable_offset"], 60)
        self.assertEqual(document["topics"]["fetched"]["messages_written"], 60)
        self.assertEqual(document["topics"]["fetched"]["durable_position"], self.end)


class Read(BrokerTestCase):

    def test_read_returns_records_with_offsets_and_timestamps(self):
        self.broker.write("reads", [[b"r0"], [b"r1", b"more"], [b"r2"]])
        reply = self.broker.request(b"READ", b"reads", i64(1), i32(1 << 20), i32(0))
        records = decode_read_batch(reply[1])
        self.assertEqual([(r[0], r[2]) for r in records], [(1, [b"r1", b"more"]), (2, [b"r2"])])
        self.assertTrue(all(r[1] > 0 for r in records))
        self.assertEqual(self.broker.request(b"READ", b"reads", i64(9), i32(100), i32(0)),
                         [bytes([INVALID_OFFSET])])

    def assert_long_poll_wakes(self, topic, reader, quiet_s, max_wait_ms):
        """A READ at topic's end, sent quiet_s after its first write, waits, then
        returns the next write."""
        self.broker.write(topic, [[b"m0"]])
        time.sleep(quiet_s)
        sock = self.broker.reader(identity(reader))
        sock.send_multipart([b"READ", topic.encode(), i64(1), i32(1 << 20), i32(max_wait_ms)])
        time.sleep(0.3)
        self.assertEqual(sock.poll(0), 0)          # still waiting
        self.broker.write(topic, [[b"m1"]])
        reply = sock.recv_multipart()
        self.assertEqual([(r[0], r[2]) for r in decode_read_batch(reply[1])], [(1, [b"m1"])])

    def test_read_at_end_waits_for_new_data(self):
        self.assert_long_poll_wakes("polled", "x", 0, 8000)

    def test_a_long_poll_after_a_quiet_second_wakes_on_a_write(self):
        # 1.5 s: every rear worker left the bus
        self.assert_long_poll_wakes("quiet", "w", 1.5, 60000)

    def test_a_new_request_answers_a_pending_long_poll_first(self):
        # Replies keep the order of requests: the waiting READ is answered (empty) before the
        # BOUNDS that followed it, not after its 8 s wait
        self.broker.write("pending", [[b"q0"]])
        sock = self.broker.reader(identity("y"))
        sock.send_multipart([b"READ", b"pending", i64(1), i32(1 << 20), i32(8000)])
        time.sleep(0.3)
        self.assertEqual(sock.poll(0), 0)          # still waiting
        sock.send_multipart([b"BOUNDS", b"pending"])
        self.assertEqual(sock.recv_multipart(), [bytes([OK]), b""])
        bounds = sock.recv_multipart()
        self.assertEqual(bounds[0], bytes([OK]))
        self.assertEqual(get_i64(bounds[2]), 1)    # visible end

    def test_read_at_end_times_out_with_an_empty_batch(self):
        reply = self.broker.request(b"READ", b"silent", i64(0), i32(100), i32(200))
        self.assertEqual(reply, [bytes([OK]), b""])


class LongPollRace(BrokerTestCase):
    # One front worker, kept busy by another topic: libzmq applies a new bus subscription at
    # one of the publisher's later sends (at most every ~1 ms while it sends), so a note sent
    # meanwhile is lost to a rear worker that just subscribed
    extra_config = "front.workers = 1"

    def test_a_long_poll_raced_by_a_write_gets_it(self):
        # A rear worker listens to the visible bus only while it has polls or streams; the
        # note of a write right behind the READ may miss its new subscription: the READ must
        # still be answered with the data (the worker looks at the log once the subscription
        # surely holds), not wait out its 60 s
        stop = threading.Event()
        noise = self.broker.writer(identity("noise", 0))
        raced = self.broker.writer(identity("raced", 0))

        def make_noise():
            while not stop.is_set():
                noise.send(b"n")
                time.sleep(0.0002)
        raced.send(b"r0")
        thread = threading.Thread(target=make_noise)
        thread.start()
        try:
            for offset in range(1, 6):
                time.sleep(1.2)                     # every rear worker left the bus
                sock = self.broker.reader(identity("z%d" % offset))
                sock.send_multipart([b"READ", b"raced", i64(offset), i32(1 << 20), i32(60000)])
                raced.send(b"r%d" % offset)
                reply = sock.recv_multipart()
                self.assertEqual([(r[0], r[2]) for r in decode_read_batch(reply[1])],
                                 [(offset, [b"r%d" % offset])])
                self.broker.close(sock)
        finally:
            stop.set()
            thread.join()


class StreamingFetch(BrokerTestCase):

    def test_streaming_fetch_sends_backlog_then_new_messages(self):
        self.broker.write("streamed", [[b"s0"], [b"s1", b"two"]])
        sock = self.broker.reader(identity("streamed"))
        sock.send_multipart([b"FETCH", i64(0), i64(-1)])
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        self.assertEqual(sock.recv_multipart(), [b"s0"])
        self.assertEqual(sock.recv_multipart(), [b"s1", b"two"])
        self.broker.write("streamed", [[b"s2"]])
        self.assertEqual(sock.recv_multipart(), [b"s2"])
        # Another command ends the stream
        sock.send_multipart([b"OFFSET", i64(-1)])
        reply = sock.recv_multipart()
        self.assertEqual(reply[0], bytes([OK]))
        self.broker.write("streamed", [[b"s3"]])
        self.assertEqual(sock.poll(500), 0)

    def test_streaming_a_large_backlog_loses_nothing(self):
        messages = [[b"big-%d" % n, b"z" * 20000] for n in range(300)]
        self.broker.write("backlog", messages)
        sock = self.broker.reader(identity("backlog"))
        sock.setsockopt(zmq.RCVHWM, 10)
        sock.send_multipart([b"FETCH", i64(0), i64(-1)])
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        time.sleep(0.5)                 # let the broker hit the reader's full queue
        self.assertEqual([sock.recv_multipart() for _ in messages], messages)

    def test_streaming_from_req_is_refused(self):
        reply = self.broker.request(b"FETCH", i64(0), i64(-1), routing_id=identity("streamed"),
                                    kind=zmq.REQ)
        self.assertEqual(reply, [bytes([INVALID_ARGUMENT])])


class Retention(BrokerTestCase):
    extra_config = "segment_size = 1024\ncleanup_interval = 1000\nflush_interval = 50"

    def test_fetch_before_first_retained_is_invalid_offset(self):
        self.broker.write("retained", [[b"old-%d" % n, b"o" * 200] for n in range(20)])
        time.sleep(1.5)
        self.broker.write("retained", [[b"new", b"n" * 200]])
        deadline = time.time() + 20
        while time.time() < deadline and self.broker.bounds("retained")[0] == 0:
            time.sleep(0.2)
        start, durable, start_position = self.broker.bounds("retained")[:3]
        self.assertGreater(start, 0)
        self.assertEqual(self.broker.fetch("retained", 0, 1000), [bytes([INVALID_OFFSET])])
        earliest = self.broker.request(b"OFFSET", i64(-2), routing_id=identity("retained"))
        self.assertEqual(get_i64(earliest[1]), start_position)
        self.assertEqual(self.broker.fetch_all("retained", start_position)[-1], [b"new", b"n" * 200])


if __name__ == "__main__":
    main()
