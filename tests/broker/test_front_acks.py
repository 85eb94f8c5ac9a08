"""Acks follow subscriptions: a SUB gets exactly the acks of the topics it subscribed to, and
topics nobody subscribes to are still written and acknowledged by replies (docs/protocol.md 5.1)."""

import struct
import time

import zmq

from zperd_harness import BrokerTestCase, OK, encode, get_i64, identity, main

QUIET_S = 0.5                   # nothing more may arrive within this after the expected acks
SUBSCRIBE_SETTLE_S = 0.3        # a subscription reaches the broker (PUB drops for slow joiners)


class AcksFollowSubscriptions(BrokerTestCase):

    def subscriber(self, prefix):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("ack"))
        sub.setsockopt(zmq.SUBSCRIBE, prefix)
        return sub

    def assertNothingMore(self, sub):
        self.assertEqual(sub.poll(int(QUIET_S * 1000)), 0, "an unexpected ack arrived")

    def test_subscriber_receives_exactly_the_acks_of_its_topic(self):
        alpha, beta = self.subscriber(b"alpha"), self.subscriber(b"beta")
        time.sleep(SUBSCRIBE_SETTLE_S)
        self.broker.write("alpha", [[b"a1", b"x"], [b"a2", b"y" * 300]])
        self.broker.write("beta", [[b"b1", b"z"]])
        self.broker.write("gamma", [[b"g1", b"w"]])
        batch = self.broker.writer(identity("alpha", 3))
        batch.send_multipart([b"batch", encode([b"a3", b"p"]) + encode([b"a4"])])
        self.assertEqual(batch.recv_multipart()[0], bytes([OK]))
        acks = [alpha.recv_multipart() for _ in range(4)]
        self.assertEqual([ack[:2] for ack in acks],
                         [[b"alpha", b"a1"], [b"alpha", b"a2"], [b"alpha", b"a3"], [b"alpha", b"a4"]])
        sizes = [len(encode(m)) for m in ([b"a1", b"x"], [b"a2", b"y" * 300], [b"a3", b"p"])]
        self.assertEqual([get_i64(ack[2]) for ack in acks],
                         [0, sizes[0], sizes[0] + sizes[1], sum(sizes)])
        self.assertEqual(beta.recv_multipart(), [b"beta", b"b1", struct.pack(">q", 0)])
        self.assertNothingMore(alpha)
        self.assertNothingMore(beta)

    def test_unsubscribed_topic_is_acknowledged_by_replies_alone(self):
        messages = [[b"q%d" % n, b"body"] for n in range(100)]
        replies = self.broker.write("quiet", messages)
        self.assertEqual(replies, [[b"q%d" % n] for n in range(100)])
        self.assertEqual(self.broker.bounds("quiet")[1], 100)
        # Acks are for messages stored after the subscription reached the broker: none of the
        # earlier ones is published late, the next write is
        late = self.subscriber(b"quiet")
        time.sleep(SUBSCRIBE_SETTLE_S)
        self.assertNothingMore(late)
        self.assertEqual(self.broker.write("quiet", [[b"q100", b"body"]]), [[b"q100"]])
        ack = late.recv_multipart()
        self.assertEqual(ack[:2], [b"quiet", b"q100"])
        self.assertEqual(get_i64(ack[2]), sum(len(encode(m)) for m in messages))

    def test_acks_stop_when_the_subscriber_leaves(self):
        first = self.subscriber(b"leaving")
        time.sleep(SUBSCRIBE_SETTLE_S)
        self.broker.write("leaving", [[b"l1", b"x"]])
        self.assertEqual(first.recv_multipart()[1], b"l1")
        self.broker.close(first)
        time.sleep(SUBSCRIBE_SETTLE_S)
        self.broker.write("leaving", [[b"l2", b"x"]])
        # A new subscriber gets the acks of what is written after it joined, not before
        second = self.subscriber(b"leaving")
        time.sleep(SUBSCRIBE_SETTLE_S)
        self.broker.write("leaving", [[b"l3", b"x"]])
        self.assertEqual(second.recv_multipart()[1], b"l3")
        self.assertNothingMore(second)


if __name__ == "__main__":
    main()
