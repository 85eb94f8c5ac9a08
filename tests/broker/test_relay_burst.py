"""Relay under bursts: a burst larger than a reader's turn and its queue arrives complete and in
order, to a fast reader, to a stalled one and to a plain SUB."""

import time

import zmq

from zperd_harness import BrokerTestCase, OK, get_i64, i64, identity, main

RELAY_TURN = 256                        # ZPER_RELAY_WINDOW_MESSAGES


def burst(prefix, count, size=120):
    return [[b"%s-%06d" % (prefix, n), bytes([n % 251]) * size] if n % 2 else
            [b"%s-%06d" % (prefix, n)] for n in range(count)]


class RelayBurst(BrokerTestCase):
    extra_config = "segment_size = 262144"      # bursts and replays cross segments

    def relay_reader(self, topic, rcvhwm=None):
        sock = self.broker.socket(zmq.DEALER, identity(topic), self.broker.endpoint("relay"))
        if rcvhwm is not None:
            sock.setsockopt(zmq.RCVHWM, rcvhwm)
        sock.send_multipart([b"RESUME", i64(-1)])
        reply = sock.recv_multipart()
        self.assertEqual(reply[0], bytes([OK]))
        return sock, get_i64(reply[1])

    def test_a_burst_larger_than_a_turn_reaches_every_reader_complete_and_in_order(self):
        fast, _ = self.relay_reader("burst")
        other, _ = self.relay_reader("burst")
        messages = burst(b"b", 40 * RELAY_TURN)
        for start in range(0, len(messages), 2000):
            self.broker.write("burst", messages[start:start + 2000])
        self.assertEqual([fast.recv_multipart() for _ in messages], messages)
        self.assertEqual([other.recv_multipart() for _ in messages], messages)
        self.assertEqual(fast.poll(300), 0)

    def test_a_stalled_reader_gets_a_burst_larger_than_its_queue_without_loss(self):
        sock, start = self.relay_reader("stalledburst", rcvhwm=20)
        self.assertEqual(start, 0)
        messages = burst(b"s", 4000, 3000)
        for begin in range(0, len(messages), 1000):
            self.broker.write("stalledburst", messages[begin:begin + 1000])
        time.sleep(1.0)                 # the queue is full; the relay keeps its position
        self.assertEqual([sock.recv_multipart() for _ in messages], messages)
        self.assertEqual(sock.poll(300), 0)

    def test_a_reader_far_behind_replays_every_segment_then_follows(self):
        messages = burst(b"r", 20000)
        for begin in range(0, len(messages), 5000):
            self.broker.write("replayed", messages[begin:begin + 5000])
        sock = self.broker.socket(zmq.DEALER, identity("replayed"), self.broker.endpoint("relay"))
        sock.send_multipart([b"RESUME", i64(-2)])
        self.assertEqual(sock.recv_multipart(), [bytes([OK]), i64(0)])
        self.assertEqual([sock.recv_multipart() for _ in messages], messages)
        self.broker.write("replayed", [[b"after"]])
        self.assertEqual(sock.recv_multipart(), [b"after"])

    def test_pub_tails_a_burst_in_order(self):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint("pub"))
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"pubburst")
        time.sleep(0.3)
        # Fewer than the PUB's send queue (libzmq's 1000): PUB drops past it, as PUB does
        messages = burst(b"p", 3 * RELAY_TURN)
        self.broker.write("pubburst", messages)
        self.assertEqual([sub.recv_multipart() for _ in messages],
                         [[b"pubburst"] + m for m in messages])


if __name__ == "__main__":
    main()
