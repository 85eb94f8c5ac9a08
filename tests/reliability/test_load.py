"""Load on loopback (docs/reliability.md section 2): 1000 producer connections in mode 1 and 100
consumers following the topics with READ long polls, while a streaming reader and a relay
reader never read what they are sent and one producer never reads its replies. Nothing is
lost: every acknowledged message is read back by every consumer of its topic, the producer
that never read gets all its replies when it finally reads, and the broker's peak resident
memory (VmHWM) is reported. Counts are fixed; every wait is bounded.

    test_load.py [PRODUCERS [CONSUMERS]]        (default 1000 and 100)
"""

import sys
import time

import reliability as rel
import zmq

TOPICS = 10
PER_PRODUCER = 5
DEAF_WRITES = 20000                # the producer that never reads its replies
DEADLINE_S = 120
READ_WAIT_MS = 2000


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def topic_of(index):
    return "load%d" % (index % TOPICS)


def main():
    producer_count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    consumer_count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    broker = rel.Broker("front.workers = 3\nrear.workers = 3")
    broker.context.set(zmq.MAX_SOCKETS, 4096)     # before the context's first socket
    rel.start(broker)
    deadline = time.time() + DEADLINE_S
    poller = zmq.Poller()

    #  The stubborn ones: a stream and a relay reader that never read, a producer that never
    #  reads its replies.
    stream = broker.reader(rel.identity(topic_of(0)))
    stream.send_multipart([b"FETCH", rel.i64(0), rel.i64(-1)])
    relay = broker.socket(zmq.DEALER, rel.identity(topic_of(1)), broker.endpoint("relay"))
    relay.send_multipart([b"RESUME", rel.i64(-2)])
    deaf = broker.writer(rel.identity("deaf", 1))
    for seq in range(DEAF_WRITES):
        deaf.send_multipart(rel.frames_of("deaf", seq))

    #  Consumers: READ long polls from offset 0 of their topic.
    consumers = {}
    for index in range(consumer_count):
        sock = broker.reader(None)
        consumers[sock] = {"topic": topic_of(index), "offset": 0, "got": []}
        sock.send_multipart([b"READ", topic_of(index).encode(), rel.i64(0), rel.i32(1 << 20),
                             rel.i32(READ_WAIT_MS)])
        poller.register(sock, zmq.POLLIN)

    #  Producers: each writes PER_PRODUCER messages in mode 1 to its topic.
    producers, acked, expected = {}, {}, {}
    for index in range(producer_count):
        sock = broker.writer(rel.identity(topic_of(index), 1))
        for number in range(PER_PRODUCER):
            seq = index * PER_PRODUCER + number
            sock.send_multipart([b"%d" % seq, b"payload of %d" % seq])
            expected.setdefault(topic_of(index), set()).add(seq)
        producers[sock] = PER_PRODUCER
        poller.register(sock, zmq.POLLIN)

    replies = 0
    while time.time() < deadline:
        done_writing = replies == producer_count * PER_PRODUCER
        if done_writing and all(len(state["got"]) >= len(acked.get(state["topic"], ()))
                                for state in consumers.values()):
            break
        for sock, _event in poller.poll(1000):
            if sock in producers:
                reply = sock.recv_multipart()
                assert len(reply) == 1, "error reply under load: %r" % reply
                acked.setdefault(topic_of(int(reply[0]) // PER_PRODUCER), set()).add(int(reply[0]))
                replies += 1
                continue
            state = consumers[sock]
            reply = sock.recv_multipart()
            assert reply[0] == bytes([rel.OK]), reply[:1]
            for offset, _ts, frames in rel.decode_read_batch(reply[1]):
                assert offset == state["offset"]
                state["got"].append(int(frames[0]))
                state["offset"] += 1
            sock.send_multipart([b"READ", state["topic"].encode(), rel.i64(state["offset"]),
                                 rel.i32(1 << 20), rel.i32(READ_WAIT_MS)])
    assert replies == producer_count * PER_PRODUCER, \
        "%d of %d mode-1 replies within %d s" % (replies, producer_count * PER_PRODUCER, DEADLINE_S)
    assert acked == expected
    for state in consumers.values():
        assert sorted(state["got"]) == sorted(acked[state["topic"]]), \
            "consumer of %s read %d of %d" % (state["topic"], len(state["got"]),
                                             len(acked[state["topic"]]))
    #  The deaf producer's writes are all stored, and its replies all waited for it.
    broker.wait_durable("deaf", DEAF_WRITES, timeout_s=60)
    deaf_replies = [deaf.recv_multipart() for _ in range(DEAF_WRITES)]
    assert deaf_replies == [[b"%d" % seq] for seq in range(DEAF_WRITES)]
    peak = vm_hwm_kb(broker.process.pid)
    deaf_record = rel.Producer("deaf", next_seq=DEAF_WRITES)
    deaf_record.acked = set(range(DEAF_WRITES))
    rel.check_topic(broker, deaf_record)
    broker.stop()
    print("load passed: %d producers, %d consumers, %d + %d messages, broker VmHWM %d KiB"
          % (producer_count, consumer_count, replies, DEAF_WRITES, peak))


if __name__ == "__main__":
    main()
