"""Visibility: under `visibility = written` (the default) a reader sees a message as soon as the
front worker wrote it, long before its flush; under `visibility = durable` only once synced."""

import time
import unittest

from zperd_harness import Broker, OK, decode_read_batch, encode, i32, i64, identity, main

NEVER_MS = 60000                # a flush interval the tests never reach
POLL_MS = 5000                  # a READ long poll: the answer comes when data is visible
SHORT_POLL_MS = 500


def read(broker, topic, offset, wait_ms):
    reply = broker.request(b"READ", topic.encode(), i64(offset), i32(1 << 20), i32(wait_ms))
    assert reply[0] == bytes([OK]), reply
    return [(record[0], record[2]) for record in decode_read_batch(reply[1])]


class WrittenIsVisible(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker("flush_interval = %d\nflush_messages = 60000" % NEVER_MS).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def test_mode_0_write_is_readable_before_its_flush(self):
        writer = self.broker.writer(identity("early", 0))
        writer.send_multipart([b"id-1", b"first"])
        started = time.time()
        self.assertEqual(read(self.broker, "early", 0, POLL_MS), [(0, [b"id-1", b"first"])])
        self.assertLess(time.time() - started, NEVER_MS / 1000)
        # A long poll at the end is woken by the next write
        writer.send_multipart([b"id-2", b"second"])
        self.assertEqual(read(self.broker, "early", 1, POLL_MS), [(1, [b"id-2", b"second"])])

    def test_mode_4_batch_is_readable_before_its_flush(self):
        writer = self.broker.writer(identity("earlybatch", 4))
        writer.send_multipart([b"b", encode([b"m1"]) + encode([b"m2"])])
        self.assertEqual(read(self.broker, "earlybatch", 0, POLL_MS), [(0, [b"m1"]), (1, [b"m2"])])


class DurableOnlyWaitsForTheFlush(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker("flush_interval = %d\nflush_messages = 60000\nvisibility = durable"
                            % NEVER_MS).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def test_mode_0_write_is_not_readable_until_a_flush(self):
        writer = self.broker.writer(identity("late", 0))
        writer.send_multipart([b"id-1", b"first"])
        self.assertEqual(read(self.broker, "late", 0, SHORT_POLL_MS), [])
        # A mode 1 write to the topic flushes it: both become visible
        self.assertEqual(self.broker.write("late", [[b"id-2", b"second"]]), [[b"id-2"]])
        self.assertEqual(read(self.broker, "late", 0, POLL_MS),
                         [(0, [b"id-1", b"first"]), (1, [b"id-2", b"second"])])


if __name__ == "__main__":
    main()
