"""Writes: round trips, identity revisions, writer socket types, modes, acks, native batches."""

import socket
import struct
import time

import zmq

from zperd_harness import (BrokerTestCase, OK, INVALID_ARGUMENT, decode, decode_read_batch, encode,
                           get_i64, i32, i64, identity, java_hash, main)


class WriteRoundTrips(BrokerTestCase):
    extra_config = "flush_interval = 100"

    def test_single_frame_message_round_trips(self):
        self.assertEqual(self.broker.write("single", [[b"hello"]]), [[b"hello"]])
        self.assertEqual(self.broker.fetch_all("single"), [[b"hello"]])

    def test_multi_frame_and_empty_frames_round_trip(self):
        messages = [[b"id-1", b"a", b"bb"], [b"", b"x"], [b"id-3", b"", b""], [b""]]
        replies = self.broker.write("frames", messages)
        self.assertEqual(replies, [[m[0]] for m in messages])
        self.assertEqual(self.broker.fetch_all("frames"), messages)

    def test_sizes_from_1_byte_to_8_mib_round_trip(self):
        sizes = [1, 255, 256, 65535, 65536, 1 << 20, 8 * 1024 * 1024]
        messages = [[bytes([index % 251]) * size] for index, size in enumerate(sizes)]
        self.assertEqual(len(self.broker.write("sizes", messages)), len(sizes))
        got = self.broker.fetch_all("sizes", max_bytes=16 << 20)
        self.assertEqual([len(m[0]) for m in got], sizes)
        self.assertEqual(got, messages)

    def test_many_topics_at_once_keep_their_own_order(self):
        writers = {}
        for number in range(40):
            topic = "many%d" % number
            writers[topic] = self.broker.writer(identity(topic, 1))
        for round_ in range(5):
            for topic, sock in writers.items():
                sock.send_multipart([b"%s-%d" % (topic.encode(), round_)])
        for topic, sock in writers.items():
            self.assertEqual([sock.recv_multipart() for _ in range(5)],
                             [[b"%s-%d" % (topic.encode(), r)] for r in range(5)])
        for topic in writers:
            self.assertEqual(self.broker.fetch_all(topic),
                             [[b"%s-%d" % (topic.encode(), r)] for r in range(5)])

    def test_pipelined_mode_1_writer_reading_late_gets_every_reply(self):
        sock = self.broker.writer(identity("pipelined", 1))
        sock.setsockopt(zmq.SNDHWM, 0)
        count = 5000                    # more than libzmq's default queue of 1000
        for number in range(count):
            sock.send_multipart([b"%d" % number, b"x" * 10])
        self.broker.wait_durable("pipelined", count)
        self.assertEqual([sock.recv_multipart()[0] for _ in range(count)],
                         [b"%d" % n for n in range(count)])

    def test_seed_identity_writes_in_mode_0(self):
        sock = self.broker.writer(identity("seedrev", revision="seed"))
        sock.send_multipart([b"s1", b"one"])
        sock.send_multipart([b"s2", b"two"])
        self.broker.wait_durable("seedrev", 2)
        self.assertEqual(self.broker.fetch_all("seedrev"), [[b"s1", b"one"], [b"s2", b"two"]])

    def test_seed_identity_without_uuid_is_accepted(self):
        sock = self.broker.writer(identity("nouuid", revision="seed", uuid=b""))
        sock.send_multipart([b"n1"])
        self.broker.wait_durable("nouuid", 1)
        self.assertEqual(self.broker.fetch_all("nouuid"), [[b"n1"]])

    def test_client_hash_byte_is_ignored_for_routing(self):
        # Two producers of one topic with different hash bytes: one worker, one ordered stream
        first = self.broker.writer(identity("hashes", 1, hash_byte=0x00, uuid=b"A" * 16))
        second = self.broker.writer(identity("hashes", 1, hash_byte=0x7F, uuid=b"B" * 16))
        for number in range(20):
            (first if number % 2 else second).send_multipart([b"h%d" % number])
        for sock in (first, second):
            for _ in range(10):
                sock.recv_multipart()
        got = [m[0] for m in self.broker.fetch_all("hashes")]
        self.assertEqual(sorted(got), sorted(b"h%d" % n for n in range(20)))
        self.assertEqual(self.broker.bounds("hashes")[1], 20)

    def test_mode_0_becomes_durable_within_flush_interval(self):
        sock = self.broker.writer(identity("quiet", 0))
        sock.send_multipart([b"q"])
        self.broker.wait_durable("quiet", 1, timeout_s=10)
        self.assertEqual(self.broker.fetch_all("quiet"), [[b"q"]])

    def test_req_writer_in_mode_2_gets_every_reply(self):
        sock = self.broker.writer(identity("reqw", 2), kind=zmq.REQ)
        for number in range(5):
            sock.send_multipart([b"r%d" % number, b"body"])
            self.assertEqual(sock.recv_multipart(), [b"r%d" % number])
        self.assertEqual(self.broker.fetch_all("reqw"), [[b"r%d" % n, b"body"] for n in range(5)])

    def test_dealer_in_mode_2_gets_replies_without_envelope(self):
        sock = self.broker.writer(identity("dealer2", 2))
        sock.send_multipart([b"d1", b"x"])
        self.assertEqual(sock.recv_multipart(), [b"d1"])

    def test_zmtp2_push_writer_as_jeromq_0_3_5_sends(self):
        # libzmq 4 PUSH refuses a ROUTER peer (ZMTP 3.0 socket types); legacy jeromq spoke
        # ZMTP/2.0, where a PUSH talks to a ROUTER. Speak it by hand.
        raw = socket.create_connection(("127.0.0.1", self.broker.ports["front"]), timeout=10)
        raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f")
        greeting = b""
        while len(greeting) < 10:
            greeting += raw.recv(10 - len(greeting))
        raw.sendall(b"\x01\x08")                    # ZMTP/2.0, socket type PUSH
        routing_id = identity("pushed", revision="seed")
        raw.sendall(bytes([0, len(routing_id)]) + routing_id)
        raw.sendall(encode([b"p1", b"first"]) + encode([b"p2", b"second"]))
        self.broker.wait_durable("pushed", 2)
        raw.close()
        self.assertEqual(self.broker.fetch_all("pushed"), [[b"p1", b"first"], [b"p2", b"second"]])


class Acks(BrokerTestCase):

    def test_ack_publishes_topic_id_and_byte_position_per_message(self):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("ack"))
        sub.setsockopt(zmq.SUBSCRIBE, b"acked")
        time.sleep(0.3)
        messages = [[b"id-a", b"x" * 10], [b"id-b", b"y" * 300], [b"id-c"]]
        self.broker.write("acked", messages)
        acks = [sub.recv_multipart() for _ in messages]
        positions = [get_i64(ack[2]) for ack in acks]
        self.assertEqual([ack[:2] for ack in acks], [[b"acked", m[0]] for m in messages])
        expected, position = [], 0
        for frames in messages:
            expected.append(position)
            position += len(encode(frames))
        self.assertEqual(positions, expected)
        # Each acked position is where FETCH finds that very message
        for frames, position in zip(messages, positions):
            reply = self.broker.fetch("acked", position, 1)
            self.assertEqual(decode(reply[1])[0], frames)


class NativeBatches(BrokerTestCase):

    def test_mode_3_batch_is_stored_as_messages_and_acknowledged_once(self):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("ack"))
        sub.setsockopt(zmq.SUBSCRIBE, b"batched")
        time.sleep(0.3)
        messages = [[b"m1", b"one"], [b"m2"], [b"m3", b"", b"three"]]
        sock = self.broker.writer(identity("batched", 3))
        sock.send_multipart([b"batch-1", b"".join(encode(m) for m in messages)])
        reply = sock.recv_multipart()
        self.assertEqual(reply[:2], [bytes([OK]), b"batch-1"])
        self.assertEqual(get_i64(reply[2]), 0)
        self.assertEqual(struct.unpack(">i", reply[3])[0], 3)
        self.assertEqual(self.broker.fetch_all("batched"), messages)
        self.assertEqual([sub.recv_multipart()[1] for _ in messages], [b"m1", b"m2", b"m3"])
        read = self.broker.request(b"READ", b"batched", i64(1), i32(1 << 20), i32(0))
        self.assertEqual(read[0], bytes([OK]))
        self.assertEqual([(r[0], r[2]) for r in decode_read_batch(read[1])],
                         [(1, messages[1]), (2, messages[2])])

    def test_mode_4_batch_is_stored_without_reply(self):
        sock = self.broker.writer(identity("batch4", 4))
        sock.send_multipart([b"b", encode([b"x"]) + encode([b"y"])])
        self.broker.wait_durable("batch4", 2)
        self.assertEqual(self.broker.fetch_all("batch4"), [[b"x"], [b"y"]])

    def test_malformed_batch_is_refused_with_103(self):
        sock = self.broker.writer(identity("badbatch", 3))
        sock.send_multipart([b"bad", b"\x01\x05ab"])     # truncated frame
        reply = sock.recv_multipart()
        self.assertEqual(reply[:2], [bytes([INVALID_ARGUMENT]), b"bad"])
        self.assertEqual(get_i64(reply[2]), -1)
        sock.send_multipart([b"three", b"frames", b"here"])
        self.assertEqual(sock.recv_multipart()[0], bytes([INVALID_ARGUMENT]))
        self.assertEqual(self.broker.bounds("badbatch")[1], 0)


if __name__ == "__main__":
    main()
