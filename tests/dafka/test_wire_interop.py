"""A raw pyzmq peer speaking spec/dafka-wire.md's bytes, as a reference Dafka
producer and consumer would, interoperates with a ZPER store:
  - reference producer: RECORD/HEAD in, the store's ACK out, byte for byte;
  - reference consumer: STORE_HELLO received on joining; FETCH answered with
    DIRECT_RECORDs [seq, seq+count] inclusive with the right contents;
    GET_HEADS answered with a DIRECT_HEAD."""
from dafka_harness import *

TOPIC = b"wire"
RECORDS = 300


def content(sequence):
    return b"content-%d" % sequence


def play_producer(cluster, store):
    producer = RawPeer(cluster, zmq.XPUB)
    producer.subscribe(b"K" + producer.uuid)
    producer.subscribe(b"F" + producer.uuid)
    producer.wait_subscription(b"M")                 # the store writer's SUB#2
    producer.wait_for_peer(store.writer_uuid)
    for sequence in range(RECORDS):
        producer.data.send_multipart([record(TOPIC, producer.uuid, sequence), content(sequence)])
    producer.data.send(head(TOPIC, producer.uuid, RECORDS - 1))
    expected_ack = (b"K" + producer.uuid + b"\x00\x01" + string_field(TOPIC)
                    + struct.pack(">Q", RECORDS - 1))
    deadline = time.time() + 30
    while time.time() < deadline:
        frames = producer.recv(1000)
        if frames and frames[0][:1] == b"K":
            if len(frames) != 1 or frames[0][:35] != b"K" + producer.uuid + b"\x00\x01":
                fail("ACK is not as the spec writes it: %r" % frames)
            if frames[0] == expected_ack:
                return producer
        elif frames is None:
            producer.data.send(head(TOPIC, producer.uuid, RECORDS - 1))
    fail("no ACK for sequence %d" % (RECORDS - 1))


def play_consumer(cluster, store, partition):
    consumer = RawPeer(cluster, zmq.XPUB)
    for message_id in (b"D", b"E", b"L"):
        consumer.subscribe(message_id + consumer.uuid)
    consumer.wait_subscription(b"F")                 # the store reader's SUB
    consumer.wait_subscription(b"G")
    consumer.wait_for_peer(store.reader_uuid)
    frames = consumer.recv()
    expected_hello = (b"L" + consumer.uuid + b"\x00\x01" + string_field(store.reader_uuid.encode()))
    if frames != [expected_hello]:
        fail("expected STORE_HELLO, got %r" % frames)
    first, count = 250, 10
    consumer.data.send(fetch(partition, consumer.uuid, TOPIC, first, count))
    for sequence in range(first, first + count + 1):        # inclusive, as the reference
        frames = consumer.recv()
        expected = (b"D" + consumer.uuid + b"\x00\x01" + string_field(partition)
                    + string_field(TOPIC) + struct.pack(">Q", sequence))
        if frames != [expected, content(sequence)]:
            fail("DIRECT_RECORD %d: got %r" % (sequence, frames))
    if consumer.recv(500) is not None:
        fail("more DIRECT_RECORDs than the inclusive range")
    consumer.data.send(header(b"G", TOPIC, string_field(consumer.uuid)))
    expected_head = (b"E" + consumer.uuid + b"\x00\x01" + string_field(partition)
                     + string_field(TOPIC) + struct.pack(">Q", RECORDS - 1))
    if consumer.recv() != [expected_head]:
        fail("GET_HEADS was not answered with the DIRECT_HEAD")
    return consumer


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store")
    producer = play_producer(cluster, store)
    consumer = play_consumer(cluster, store, producer.uuid)
    producer.close()
    consumer.close()
    store.stop()
    if store.counter("stored") != RECORDS or store.counter("malformed") != 0:
        fail("store counters: " + store.errors())
    tower.stop()


run(test)
