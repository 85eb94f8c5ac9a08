"""Malformed Dafka frames from a raw PUB peer (wrong version, short fields,
missing content frame, unknown id, absurd counts, no topic terminator) are
dropped and counted by the store and the consumer; nothing crashes and good
traffic still flows."""
from dafka_harness import *

TOPIC = b"good"
RECORDS = 1000
UUID = b"0123456789ABCDEF0123456789ABCDEF"


def malformed_messages(store_reader):
    good_record = record(TOPIC, UUID, 0)
    return [
        # seen by the store and the consumer (they subscribe M / M+good / H+good)
        [good_record[:len(TOPIC) + 2] + b"\x02" + good_record[len(TOPIC) + 3:], b"content"],
        [good_record],                                          # missing content frame
        [head(TOPIC, UUID, 7)[:-3]],                            # short sequence
        [b"M" + TOPIC + b"-no-terminator", b"content"],
        # seen by the store's reader only (F, and W + its uuid)
        [fetch(UUID, UUID, TOPIC, 0, 10)[:-2]],                 # short count
        [header(b"W", store_reader, string_field(UUID) + b"\x7f\xff\xff\xff\x00\x00\x00\x10ab")],
        # an unknown id is filtered by every ZeroMQ subscription: it must simply vanish
        [b"Z" + TOPIC + b"\x00\x01", b"content"],
    ]


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store")
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning",
                             "--count", str(RECORDS), TOPIC.decode())
    attacker = RawPeer(cluster, zmq.XPUB)
    # every subscription the malformed messages need, so that each one is delivered
    for prefix in (b"M", b"H", b"F", b"W" + store.reader_uuid.encode(), b"M" + TOPIC, b"H" + TOPIC):
        attacker.wait_subscription(prefix)
    for frames in malformed_messages(store.reader_uuid.encode()):
        attacker.data.send_multipart(frames)
    attacker.sleep(0.5)
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS),
                             "--size", "4", TOPIC.decode())
    if producer.wait(60) != 0 or consumer.wait(60) != 0:
        fail("good traffic stopped:\n" + producer.errors() + consumer.errors())
    if consumed(consumer) != expected_records(RECORDS, 4):
        fail("consumer lost good records")
    if consumer.counter("malformed") != 4:
        fail("consumer counted %d malformed, not 4" % consumer.counter("malformed"))
    attacker.close()
    store.stop()
    if store.counter("malformed") != 6 or store.counter("stored") != RECORDS:
        fail("store counted malformed=%d stored=%d" % (store.counter("malformed"),
                                                       store.counter("stored")))
    tower.stop()


run(test)
