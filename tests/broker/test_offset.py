"""Legacy OFFSET replies in the original server's shapes (spec/zper-wire.md, OFFSET), byte for
byte: -2 [100][first retained]; -1 [100][start of the newest segment][end]; a time t
[100][starts of the segments whose data begins at or before t...][end], the newest max_entries
values, or [101] when no data is that old. Legacy readers assert these shapes."""

import time

from zperd_harness import (BrokerTestCase, OK, INVALID_OFFSET, decode_read_batch, encode, get_i64,
                           i32, i64, identity, main)

SEGMENT_SIZE = 4096


class OffsetShapes(BrokerTestCase):
    extra_config = "segment_size = %d" % SEGMENT_SIZE

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.messages = [[b"id-%03d" % n, bytes([n]) * (60 + n * 9)] for n in range(50)]
        for message in cls.messages:    # one write group each: one message per record
            cls.broker.write("shaped", [message])
        cls.end = sum(len(encode(m)) for m in cls.messages)
        cls.starts = cls.segment_starts("shaped")
        cls.first_time = cls.first_timestamps("shaped", cls.starts)

    @classmethod
    def segment_starts(cls, topic):
        """Where each segment begins: a FETCH stops at a segment boundary (docs/protocol.md)."""
        starts, position = [], 0
        while position < cls.end:
            starts.append(position)
            reply = cls.broker.fetch(topic, position, 1 << 20)
            assert reply[0] == bytes([OK]) and reply[1], reply
            position += len(reply[1])
        return starts

    @classmethod
    def first_timestamps(cls, topic, starts):
        """The time of the message at each segment start (READ gives offsets and times)."""
        records = []
        while len(records) < len(cls.messages):     # a READ too may stop at a segment end
            reply = cls.broker.request(b"READ", topic.encode(), i64(len(records)), i32(1 << 20),
                                       i32(0))
            assert reply[0] == bytes([OK]) and reply[1], reply
            records += decode_read_batch(reply[1])
        times, position = {}, 0
        for offset, timestamp, frames in records:
            times[position] = timestamp
            position += len(encode(frames))
        return [times[start] for start in starts]

    def offset(self, topic, timestamp, *max_entries):
        reply = self.broker.request(b"OFFSET", i64(timestamp), *[i32(m) for m in max_entries],
                                    routing_id=identity(topic))
        self.assertEqual(reply[0], bytes([OK]), reply)
        self.assertTrue(all(len(frame) == 8 for frame in reply[1:]), reply)
        return [get_i64(frame) for frame in reply[1:]]

    def assertInvalidOffset(self, topic, timestamp):
        reply = self.broker.request(b"OFFSET", i64(timestamp), routing_id=identity(topic))
        self.assertEqual(reply, [bytes([INVALID_OFFSET])])

    def test_setup_spans_several_segments(self):
        self.assertGreaterEqual(len(self.starts), 3)

    def test_earliest_is_the_first_retained_position_alone(self):
        self.assertEqual(self.offset("shaped", -2), [0])
        self.assertEqual(self.offset("shaped", -2, 5), [0])

    def test_latest_is_the_newest_segment_start_then_the_end(self):
        self.assertEqual(self.offset("shaped", -1), [self.starts[-1], self.end])

    def test_latest_with_one_segment_is_zero_then_the_end(self):
        self.broker.write("single", [[b"a", b"one"]])
        self.broker.write("single", [[b"b", b"two"]])
        end = len(encode([b"a", b"one"])) + len(encode([b"b", b"two"]))
        self.assertEqual(self.offset("single", -1), [0, end])
        self.assertEqual(self.offset("single", int(time.time() * 1000) + 60000), [0, end])

    def test_a_time_inside_the_data_lists_older_segment_starts_then_the_end(self):
        for index in range(len(self.starts)):
            moment = self.first_time[index]
            expected = [s for s, t in zip(self.starts, self.first_time) if t <= moment]
            self.assertEqual(self.offset("shaped", moment), expected + [self.end])

    def test_a_time_after_the_newest_message_lists_every_start_then_the_end(self):
        self.assertEqual(self.offset("shaped", int(time.time() * 1000) + 60000),
                         self.starts + [self.end])

    def test_a_time_before_every_segment_is_invalid_offset(self):
        self.assertInvalidOffset("shaped", self.first_time[0] - 1)
        self.assertInvalidOffset("shaped", 1000)

    def test_max_entries_keeps_the_newest_values_the_end_last(self):
        later = int(time.time() * 1000) + 60000
        everything = self.starts + [self.end]
        self.assertEqual(self.offset("shaped", later, 1), [self.end])
        self.assertEqual(self.offset("shaped", later, 2), everything[-2:])
        self.assertEqual(self.offset("shaped", later, len(everything)), everything)
        self.assertEqual(self.offset("shaped", later, 1 << 20), everything)
        self.assertEqual(self.offset("shaped", later, 0), [])
        self.assertEqual(self.offset("shaped", -1, 1), [self.starts[-1], self.end])

    def test_every_value_is_a_fetchable_position(self):
        values = self.offset("shaped", int(time.time() * 1000) + 60000) + self.offset("shaped", -1)
        for position in values:
            reply = self.broker.fetch("shaped", position, 1)
            self.assertEqual(reply[0], bytes([OK]))
            self.assertEqual(reply[1] == b"", position == self.end)

    def test_a_topic_without_data_is_zero_zero_and_holds_nothing_that_old(self):
        self.assertEqual(self.offset("neverwritten", -1), [0, 0])
        self.assertEqual(self.offset("neverwritten", -2), [0])
        self.assertInvalidOffset("neverwritten", int(time.time() * 1000) + 60000)


if __name__ == "__main__":
    main()
