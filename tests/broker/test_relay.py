"""Relay: DEALER readers (hello, RESUME) and SUB tailing of the relay's PUB endpoint."""

import time

import zmq

from zperd_harness import (BrokerTestCase, OK, INVALID_OFFSET, INVALID_ARGUMENT, get_i64, i64,
                           identity, main)


class Relay(BrokerTestCase):

    def relay_reader(self, topic):
        return self.broker.socket(zmq.DEALER, identity(topic), self.broker.endpoint("relay"))

    def test_hello_receives_new_durable_messages_from_the_end(self):
        self.broker.write("live", [[b"before"]])
        sock = self.relay_reader("live")
        sock.send_multipart([b"hello"])
        time.sleep(0.3)
        self.broker.write("live", [[b"l1", b"frame"], [b"l2"]])
        self.assertEqual(sock.recv_multipart(), [b"l1", b"frame"])
        self.assertEqual(sock.recv_multipart(), [b"l2"])

    def test_resume_replays_from_the_given_offset_then_follows(self):
        self.broker.write("resumed", [[b"r0"], [b"r1"], [b"r2"]])
        sock = self.relay_reader("resumed")
        sock.send_multipart([b"RESUME", i64(1)])
        reply = sock.recv_multipart()
        self.assertEqual(reply[0], bytes([OK]))
        self.assertEqual(get_i64(reply[1]), 1)
        self.assertEqual([sock.recv_multipart() for _ in range(2)], [[b"r1"], [b"r2"]])
        self.broker.write("resumed", [[b"r3"]])
        self.assertEqual(sock.recv_multipart(), [b"r3"])

    def test_resume_earliest_and_latest(self):
        self.broker.write("ends", [[b"e0"]])
        sock = self.relay_reader("ends")
        sock.send_multipart([b"RESUME", i64(-2)])
        self.assertEqual(get_i64(sock.recv_multipart()[1]), 0)
        self.assertEqual(sock.recv_multipart(), [b"e0"])
        other = self.relay_reader("ends")
        other.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(get_i64(other.recv_multipart()[1]), 1)

    def test_resume_outside_the_topic_or_malformed_is_refused(self):
        sock = self.relay_reader("ends2")
        sock.send_multipart([b"RESUME", i64(5)])
        self.assertEqual(sock.recv_multipart(), [bytes([INVALID_OFFSET])])
        sock.send_multipart([b"RESUME", b"\x00\x01"])
        self.assertEqual(sock.recv_multipart(), [bytes([INVALID_ARGUMENT])])
        bad = self.broker.socket(zmq.DEALER, b"\x00\x01", self.broker.endpoint("relay"))
        bad.send_multipart([b"hello"])
        self.assertEqual(bad.recv_multipart(), [bytes([INVALID_ARGUMENT])])

    def test_slow_reader_loses_nothing(self):
        sock = self.relay_reader("slow")
        sock.setsockopt(zmq.RCVHWM, 5)
        sock.send_multipart([b"RESUME", i64(0)])
        sock.recv_multipart()
        messages = [[b"slow-%d" % n, b"s" * 5000] for n in range(200)]
        self.broker.write("slow", messages)
        time.sleep(0.5)
        self.assertEqual([sock.recv_multipart() for _ in messages], messages)

    def test_plain_sub_socket_tails_a_topic(self):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("pub"))
        sub.setsockopt(zmq.SUBSCRIBE, b"tailed")
        time.sleep(0.3)
        self.broker.write("tailed", [[b"t1", b"x"], [b"t2"]])
        self.broker.write("other", [[b"o1"]])
        self.assertEqual(sub.recv_multipart(), [b"tailed", b"t1", b"x"])
        self.assertEqual(sub.recv_multipart(), [b"tailed", b"t2"])
        self.assertEqual(sub.poll(300), 0)


class RelayNobodyListening(BrokerTestCase):
    # Its own broker: the relay listens to the visible bus only while it has readers or PUB
    # subscribers (Relay's tests leave readers registered)

    def test_followers_after_a_quiet_time_get_what_follows_and_nothing_before(self):
        first = self.broker.socket(zmq.SUB, None, self.broker.endpoint("pub"))
        first.setsockopt(zmq.SUBSCRIBE, b"later")
        time.sleep(0.3)
        self.broker.write("later", [[b"old-%d" % n] for n in range(3)])
        self.assertEqual([first.recv_multipart() for _ in range(3)],
                         [[b"later", b"old-%d" % n] for n in range(3)])
        self.broker.close(first)
        time.sleep(1.5)                             # nobody follows: the relay left the bus
        self.broker.write("later", [[b"unseen"]])   # no subscriber then: never published
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("pub"))
        sub.setsockopt(zmq.SUBSCRIBE, b"later")
        time.sleep(0.3)
        reader = self.broker.socket(zmq.DEALER, identity("later"), self.broker.endpoint("relay"))
        reader.send_multipart([b"RESUME", i64(-1)])
        self.assertEqual(reader.recv_multipart(), [bytes([OK]), i64(4)])
        self.broker.write("later", [[b"new"]])
        self.assertEqual(reader.recv_multipart(), [b"new"])
        self.assertEqual(sub.recv_multipart(), [b"later", b"new"])
        self.assertEqual(sub.poll(300), 0)


if __name__ == "__main__":
    main()
