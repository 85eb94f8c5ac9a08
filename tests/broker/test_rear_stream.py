"""Streaming FETCH flow control (the rear hands a stream over one window of messages at a time)
and the read end under visibility = written."""

import json
import time

import zmq

from zperd_harness import (BrokerTestCase, OK, decode_read_batch, encode, get_i64, i32, i64,
                           identity, main)

WINDOW_BYTES = 1 << 20                  # ZPER_REAR_STREAM_WINDOW_BYTES
SMALL_QUEUE = 50                        # a reader's RCVHWM that the broker fills again and again
# More than every queue between the log and a reader that does not read can hold: the broker's
# send queue (ZPER_REAR_SEND_HWM, 10,000 messages), the kernel's socket buffers (a few MiB) and
# the window the rear holds: so the stream really stalls
STALLING = 20000
STALLING_SIZE = 2000


def stream_messages(prefix, count, size):
    """Messages of mixed shapes: one or three frames, empty, small (copied) and large (lent)."""
    messages = []
    for n in range(count):
        body = b"%s-%06d-" % (prefix, n) + bytes([n % 251]) * size
        messages.append([body] if n % 3 else [b"m%d" % n, b"", body])
    return messages


def write_batched(broker, topic, messages, batch=2000):
    for start in range(0, len(messages), batch):
        broker.write(topic, messages[start:start + batch])


def start_stream(broker, topic, rcvhwm=None, position=0):
    sock = broker.socket(zmq.DEALER, identity(topic), broker.endpoint("rear"))
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.send_multipart([b"FETCH", i64(position), i64(-1)])
    return sock


def stream_until_ok(sock):
    """The stream's messages received before the answer [OK ...] to a new
    command, and that answer."""
    streamed = []
    while True:
        reply = sock.recv_multipart()
        if reply[0] == bytes([OK]):
            return streamed, reply
        streamed.append(reply)


class StreamFlow(BrokerTestCase):
    extra_config = "segment_size = %d" % (8 * WINDOW_BYTES)

    def test_long_stream_arrives_complete_and_in_order_across_many_windows(self):
        messages = stream_messages(b"long", 24000, 300)
        self.assertGreater(sum(len(encode(m)) for m in messages), 6 * WINDOW_BYTES)
        write_batched(self.broker, "long", messages)
        sock = start_stream(self.broker, "long", SMALL_QUEUE)
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        received = [sock.recv_multipart() for _ in messages]
        self.assertEqual(received, messages)
        # Then it follows the topic live
        self.broker.write("long", [[b"live-1"], [b"live-2", b"x" * 100]])
        self.assertEqual([sock.recv_multipart() for _ in range(2)],
                         [[b"live-1"], [b"live-2", b"x" * 100]])
        self.assertEqual(sock.poll(300), 0)

    def test_stalled_reader_resumes_without_loss(self):
        backlog = stream_messages(b"stall", STALLING, STALLING_SIZE)
        write_batched(self.broker, "stalled", backlog)
        sock = start_stream(self.broker, "stalled", SMALL_QUEUE)
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        time.sleep(1.0)                 # the broker finds the queue full, retries less and less
        more = stream_messages(b"during", 200, 500)
        self.broker.write("stalled", more)   # written while the reader is stalled
        time.sleep(0.3)
        expected = backlog + more
        self.assertEqual([sock.recv_multipart() for _ in expected], expected)
        self.assertEqual(sock.poll(300), 0)

    def test_a_new_command_ends_a_stalled_stream_and_is_answered_after_it(self):
        backlog = stream_messages(b"ended", STALLING, STALLING_SIZE)
        write_batched(self.broker, "ended", backlog)
        sock = start_stream(self.broker, "ended", SMALL_QUEUE)
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        time.sleep(0.5)                 # stalled with a window held by the broker
        sock.send_multipart([b"OFFSET", i64(-1)])
        streamed, reply = stream_until_ok(sock)
        # What came before the answer is the start of the stream, in order; nothing after it
        self.assertLess(len(streamed), len(backlog))
        self.assertEqual(streamed, backlog[:len(streamed)])
        self.assertEqual(get_i64(reply[-1]), sum(len(encode(m)) for m in backlog))
        self.assertEqual(sock.poll(500), 0)
        # A new stream on the same socket starts where it is asked to
        position = sum(len(encode(m)) for m in backlog[:10])
        sock.send_multipart([b"FETCH", i64(position), i64(-1)])
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        self.assertEqual([sock.recv_multipart() for _ in range(20)], backlog[10:30])

    def test_a_reader_that_disconnects_while_stalled_is_forgotten(self):
        write_batched(self.broker, "vanished", stream_messages(b"gone", STALLING, STALLING_SIZE))
        for _ in range(3):
            sock = start_stream(self.broker, "vanished", SMALL_QUEUE)
            self.assertEqual(sock.recv_multipart(), [bytes([OK])])
            time.sleep(0.3)
            self.broker.close(sock)
        self.assertServing()            # and tearDown's stop finds no leak (ASan)


class StreamOverDeletedSegments(BrokerTestCase):
    # Small segments, and retention that deletes every closed segment 3 s after its last write
    extra_config = "segment_size = %d\ncleanup_interval = 3000" % (256 * 1024)

    def test_messages_queued_before_their_segments_are_deleted_arrive_intact(self):
        # The rear sends stream messages pointing into the segments' mappings, which only the
        # last message it sends before it stops holds: a stream that stalls, is ended by a
        # request, and whose segments retention then deletes (unmapping them once nothing holds
        # them) must still deliver every queued message byte for byte
        backlog = stream_messages(b"deleted", STALLING, STALLING_SIZE)
        write_batched(self.broker, "deleted", backlog)
        sock = start_stream(self.broker, "deleted", SMALL_QUEUE,
                            position=self.broker.bounds("deleted")[2])
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        time.sleep(0.5)                 # stalled, with the reader's queue full
        sock.send_multipart([b"OFFSET", i64(-1)])
        first = self.broker.bounds("deleted")[0]
        deadline = time.time() + 20
        while time.time() < deadline and self.broker.bounds("deleted")[0] == first:
            time.sleep(0.2)             # retention deletes segments the queue points into
        self.assertGreater(self.broker.bounds("deleted")[0], first)
        streamed, _ = stream_until_ok(sock)
        self.assertGreater(len(streamed), 0)
        # Byte for byte, in order (retention may have deleted what the stream had not read yet
        # when it started: it then resumes at the oldest message kept, as documented)
        numbers = [int(frames[-1].split(b"-")[1]) for frames in streamed]
        self.assertEqual(numbers, sorted(set(numbers)))
        self.assertEqual(streamed, [backlog[n] for n in numbers])
        self.assertServing()
        # The stream stopped on a message that holds its mapping (else the rear keeps the view
        # rather than unmap it under libzmq, and says so)
        self.assertNotIn("no reference", self.broker.output())


class VisibleEnd(BrokerTestCase):
    # Nothing becomes durable during the test: every read end below is the written end
    extra_config = "visibility = written\nflush_interval = 600000\nflush_messages = 60000"

    def write_unacked(self, topic, messages, end):
        """Write in mode 0 (no reply: nothing waits for a sync) until the read end is end."""
        sock = self.broker.writer(identity(topic, 0))
        for frames in messages:
            sock.send_multipart(frames)
        deadline = time.time() + 15
        while time.time() < deadline and self.broker.bounds(topic)[1] < end:
            time.sleep(0.05)

    def test_readers_see_written_messages_before_they_are_durable(self):
        messages = [[b"w0"], [b"w1", b"frame"], [b"w2"]]
        end_position = sum(len(encode(m)) for m in messages)
        sock = self.broker.reader(identity("written"))
        sock.send_multipart([b"FETCH", i64(0), i64(-1)])
        self.assertEqual(sock.recv_multipart(), [bytes([OK])])
        self.write_unacked("written", messages, 3)
        self.assertEqual([sock.recv_multipart() for _ in messages], messages)
        stats = json.loads(self.broker.request(b"STATS")[1])
        self.assertEqual(stats["topics"]["written"]["durable_offset"], 0)
        start, end, start_position, position = self.broker.bounds("written")[:4]
        self.assertEqual((start, end, start_position, position), (0, 3, 0, end_position))
        latest = self.broker.request(b"OFFSET", i64(-1), routing_id=identity("written"))
        self.assertEqual(get_i64(latest[-1]), end_position)
        self.assertEqual(self.broker.fetch_all("written"), messages)
        reply = self.broker.request(b"READ", b"written", i64(0), i32(1 << 20), i32(0))
        self.assertEqual([(r[0], r[2]) for r in decode_read_batch(reply[1])],
                         list(enumerate(messages)))

    def test_a_long_poll_at_the_written_end_wakes_on_a_write(self):
        self.write_unacked("polledw", [[b"p0"]], 1)
        sock = self.broker.reader(identity("any"))
        sock.send_multipart([b"READ", b"polledw", i64(1), i32(1000), i32(10000)])
        self.assertEqual(sock.poll(200), 0)
        self.write_unacked("polledw", [[b"p1"]], 2)
        reply = sock.recv_multipart()
        self.assertEqual([(r[0], r[2]) for r in decode_read_batch(reply[1])], [(1, [b"p1"])])

    def test_relay_resume_latest_starts_at_the_written_end(self):
        self.write_unacked("relayw", [[b"r0"], [b"r1"]], 2)
        sock = self.broker.socket(zmq.DEALER, identity("relayw"), self.broker.endpoint("relay"))
        sock.send_multipart([b"RESUME", i64(-1)])
        reply = sock.recv_multipart()
        self.assertEqual((reply[0], get_i64(reply[1])), (bytes([OK]), 2))
        self.write_unacked("relayw", [[b"r2"]], 3)
        self.assertEqual(sock.recv_multipart(), [b"r2"])


if __name__ == "__main__":
    main()
