"""The bad-input catalogue: each gets its documented error (or disconnect), and afterwards a
well-behaved writer and reader on the same broker still get correct answers."""

import json
import time

import zmq

from zperd_harness import (BrokerTestCase, OK, INVALID_COMMAND, INVALID_ARGUMENT,
                           MESSAGE_TOO_LARGE, i32, i64, identity, main)

MAX_MESSAGE = 1024 * 1024


class BadWrites(BrokerTestCase):
    extra_config = "max_message = %d" % MAX_MESSAGE

    def refused_identity(self, routing_id):
        sock = self.broker.writer(routing_id)
        sock.send_multipart([b"id-bad", b"data"])
        self.assertEqual(sock.recv_multipart(), [b"id-bad", bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_short_identity_is_refused(self):
        self.refused_identity(b"\x92")

    def test_topic_length_at_or_over_0x80_is_refused(self):
        self.refused_identity(b"\x92\x01\x80" + b"a" * 128)
        self.refused_identity(b"\x92\xff" + b"a" * 20)

    def test_bad_topic_bytes_are_refused(self):
        self.refused_identity(b"\x00\x01\x04te/t" + b"u" * 16)
        self.refused_identity(b"\x00\x01\x04te\x00t" + b"u" * 16)

    def test_65_byte_topic_is_refused(self):
        self.refused_identity(identity("a" * 65, 1))

    def test_identity_with_trailing_bytes_is_refused(self):
        self.refused_identity(identity("trail", 1) + b"extra")

    def test_unknown_write_mode_is_refused(self):
        self.refused_identity(identity("modes", 9))

    def test_generated_routing_id_is_refused_through_req_envelope(self):
        sock = self.broker.writer(None, kind=zmq.REQ)
        sock.send_multipart([b"id-req", b"data"])
        self.assertEqual(sock.recv_multipart(), [b"id-req", bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_oversized_message_is_refused_and_counted_never_stored(self):
        sock = self.broker.writer(identity("toolarge", 1))
        sock.send_multipart([b"big", b"x" * MAX_MESSAGE])           # message over the limit
        self.assertEqual(sock.recv_multipart(), [b"big", bytes([MESSAGE_TOO_LARGE])])
        sock.send_multipart([b"x" * (MAX_MESSAGE + 1)])            # one frame over the limit
        self.assertEqual(sock.recv_multipart(), [b"", bytes([MESSAGE_TOO_LARGE])])
        req = self.broker.writer(identity("toolarge", 2), kind=zmq.REQ)
        req.send_multipart([b"big2", b"y" * MAX_MESSAGE])
        self.assertEqual(req.recv_multipart(), [b"big2", bytes([MESSAGE_TOO_LARGE])])
        sock.send_multipart([b"fits", b"z" * (MAX_MESSAGE - 4)])   # exactly the limit
        self.assertEqual(sock.recv_multipart(), [b"fits"])
        self.assertEqual(self.broker.fetch_all("toolarge", max_bytes=4 << 20),
                         [[b"fits", b"z" * (MAX_MESSAGE - 4)]])
        stats = json.loads(self.broker.request(b"STATS")[1])
        self.assertGreaterEqual(stats["counters"]["too_large"], 3)
        self.assertServing()

    def test_hostile_frame_size_drops_the_connection_only(self):
        sock = self.broker.writer(identity("hostile", 1))
        sock.send_multipart([b"x" * (3 * MAX_MESSAGE)])
        self.assertEqual(sock.poll(1000), 0)
        self.assertEqual(self.broker.bounds("hostile")[1], 0)
        self.assertServing()

    def test_mode_1_client_that_disconnects_mid_stream(self):
        sock = self.broker.writer(identity("vanish", 1))
        for number in range(200):
            sock.send_multipart([b"v%d" % number, b"p" * 1000])
        self.broker.close(sock)
        time.sleep(0.5)
        got = self.broker.fetch_all("vanish")
        self.assertEqual(got, [[b"v%d" % n, b"p" * 1000] for n in range(len(got))])
        self.assertServing()


class BadReads(BrokerTestCase):

    def status(self, *frames, routing_id=None, kind=zmq.DEALER):
        return self.broker.request(*frames, routing_id=routing_id or identity("badreads"), kind=kind)

    def test_unknown_command_is_102(self):
        self.assertEqual(self.status(b"FLY"), [bytes([INVALID_COMMAND])])
        self.assertEqual(self.status(b"fetch", i64(0), i64(10)), [bytes([INVALID_COMMAND])])
        self.assertServing()

    def test_command_without_arguments_is_103(self):
        for command in (b"FETCH", b"OFFSET", b"READ", b"BOUNDS", b"TIMEOFFSET"):
            self.assertEqual(self.status(command), [bytes([INVALID_ARGUMENT])], command)
        self.assertServing()

    def test_wrong_argument_count_is_103(self):
        self.assertEqual(self.status(b"FETCH", i64(0)), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"FETCH", i64(0), i64(1), i64(2)), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"OFFSET", i64(-1), i32(1), i32(1)), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"TOPICS", b"extra"), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"STATS", b"extra"), [bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_short_arguments_are_103(self):
        self.assertEqual(self.status(b"FETCH", b"\x00" * 4, i64(10)), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"FETCH", i64(0), b"\x01"), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"OFFSET", i64(-1), b"\x00\x01"), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"READ", b"t", i64(0), i64(10), i32(0)),
                         [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"FETCH", i64(0), i64(-7)), [bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_bad_topic_names_are_103(self):
        self.assertEqual(self.status(b"BOUNDS", b"../etc"), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"BOUNDS", b""), [bytes([INVALID_ARGUMENT])])
        self.assertEqual(self.status(b"READ", b"a/b", i64(0), i32(10), i32(0)),
                         [bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_legacy_command_from_a_bad_identity_is_103(self):
        self.assertEqual(self.status(b"FETCH", i64(0), i64(10), routing_id=b"\x01\x02\x03"),
                         [bytes([INVALID_ARGUMENT])])
        self.assertServing()

    def test_req_reader_with_bad_requests_stays_in_lock_step(self):
        sock = self.broker.reader(identity("badreads"), kind=zmq.REQ)
        for frames, status in (([b"NOPE"], INVALID_COMMAND), ([b"FETCH"], INVALID_ARGUMENT),
                               ([b"OFFSET", i64(-1)], OK)):
            sock.send_multipart(frames)
            self.assertEqual(sock.recv_multipart()[0], bytes([status]))
        self.assertServing()

    def test_many_bad_requests_never_freeze_the_reader(self):
        # The original froze after 5 bad requests
        sock = self.broker.reader(b"\x00")
        for _ in range(50):
            sock.send_multipart([b"FETCH", b"x"])
        for _ in range(50):
            self.assertEqual(sock.recv_multipart(), [bytes([INVALID_ARGUMENT])])
        self.assertServing()


if __name__ == "__main__":
    main()
