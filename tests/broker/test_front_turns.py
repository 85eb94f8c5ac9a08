"""A client's legal traffic never stalls the broker (docs/operations.md, Limits and Supervision):
a burst of messages just under max_message is stored whole while the broker keeps answering its
heartbeats, and a writer that never reads its replies costs the broker at most front.reply_budget
bytes of replies: the rest is dropped and counted, and its further writes are refused with 108."""

import json
import os
import sys
import time

import zmq

from zperd_harness import OK, BrokerTestCase, identity, main, proc_status_bytes

SLOW_CLIENT = 108
MIB = 1024 * 1024
MAX_MESSAGE = 8 * MIB                   # the default max_message
BURST_MESSAGES = 100
SILENT_WRITES = 1024                    # 1 GiB of replies the writer never reads
SILENT_ID_BYTES = MIB
SILENT_PACE = 16                        # writes sent before waiting for the broker to take them
#  The documented bound of the release build is 512 MiB of RSS with the defaults (32 MiB of
#  replies per writer, 64 MiB of hand-offs per worker). The test bounds the growth of the peak
#  RSS: without the reply budget it grows by the 1 GiB of replies the broker keeps for the writer.
#  ASan's quarantine of freed blocks is made small so that it does not count as broker memory.
RSS_GROWTH_MAX = 512 * MIB
STORED_TIMEOUT_S = 240                  # ASan on two busy cores: ~1 GB through the log


class TurnsTestCase(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
        super().setUpClass()

    def stats(self):
        reply = self.broker.request(b"STATS")
        self.assertEqual(reply[0], bytes([OK]))
        return json.loads(reply[1])

    def stored(self, topic):
        return self.broker.bounds(topic)[1]

    def durable(self, topic):
        return self.stats()["topics"].get(topic, {}).get("durable_offset", 0)

    def wait_until(self, condition, what):
        deadline = time.time() + STORED_TIMEOUT_S
        while time.time() < deadline:
            self.assertIsNone(self.broker.process.poll(),
                              "zperd exited while %s:\n%s" % (what, self.broker.output()))
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError("timed out while %s" % what)


class LargeBurst(TurnsTestCase):

    def test_burst_of_messages_under_max_message_is_stored_and_heartbeats_answered(self):
        writer = self.broker.writer(identity("burst", 0))
        body = memoryview(bytes(MAX_MESSAGE - 16))
        for index in range(BURST_MESSAGES):
            writer.send_multipart([b"burst-%08d" % index, body], copy=False)
        # Durable by the flush policy (mode 0), with the broker alive all along
        self.wait_until(lambda: self.durable("burst") >= BURST_MESSAGES, "storing the burst")
        self.assertEqual(self.stored("burst"), BURST_MESSAGES)
        self.assertEqual(self.durable("burst"), BURST_MESSAGES)
        self.assertServing()


class SilentWriter(TurnsTestCase):

    def test_replies_of_a_writer_that_never_reads_are_bounded(self):
        pid = self.broker.process.pid
        self.assertServing()
        before = proc_status_bytes(pid, "VmHWM")
        # It takes in as little as it can: the broker, not the writer, holds what it does not read
        writer = self.broker.context.socket(zmq.DEALER)
        self.broker.sockets.append(writer)
        for option, value in ((zmq.IDENTITY, identity("silent", 1)), (zmq.RCVHWM, 1),
                              (zmq.RCVBUF, 64 * 1024), (zmq.LINGER, 0), (zmq.RCVTIMEO, 10000),
                              (zmq.SNDTIMEO, 10000)):
            writer.setsockopt(option, value)
        writer.connect(self.broker.endpoint("front"))
        ids = [bytes([index % 256]) * SILENT_ID_BYTES for index in range(4)]

        def processed(count):
            counters = self.stats()["counters"]
            return self.stored("silent") + counters.get("slow_client", 0) >= count
        # Paced by what the broker took, so that what it holds is replies, not writes waiting
        # in its receive queue (receive_hwm messages per connection, a limit of its own)
        for first in range(0, SILENT_WRITES, SILENT_PACE):
            for index in range(first, first + SILENT_PACE):
                writer.send_multipart([ids[index % 4], b"x"], copy=False)
            self.wait_until(lambda: processed(first + SILENT_PACE), "taking the writes")
        growth = proc_status_bytes(pid, "VmHWM") - before
        print("silent writer: broker peak RSS %d MiB, grown by %d MiB"
              % (proc_status_bytes(pid, "VmHWM") // MIB, growth // MIB), file=sys.stderr)
        self.assertLess(growth, RSS_GROWTH_MAX, "peak RSS grew by %d MiB" % (growth // MIB))
        counters = self.stats()["counters"]
        self.assertGreater(counters["reply_dropped"], 0)
        self.assertGreater(counters["slow_client"], 0)
        # Everyone else is served meanwhile
        self.assertServing()
        # The writer reads: its first replies, in order, then 108 for the writes that were refused
        # (with an empty id: its ids are over 255 bytes); every recv is bounded by RCVTIMEO
        read = 0
        while True:
            reply = writer.recv_multipart()
            if reply != [ids[read % 4]]:
                break
            read += 1
        self.assertGreater(read, 0)
        self.assertEqual(reply, [b"", bytes([SLOW_CLIENT])])
        # Once it has read, its writes are taken again (after the 108s still queued for it)
        writer.send_multipart([b"after", b"reading"])
        while reply == [b"", bytes([SLOW_CLIENT])]:
            reply = writer.recv_multipart()
        self.assertEqual(reply, [b"after"])

if __name__ == "__main__":
    main()
