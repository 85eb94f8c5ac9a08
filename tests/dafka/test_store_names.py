"""A store accepts every topic name a reference Dafka peer may send (any bytes
but NUL, up to 255): real producers on `orders:eu`, `a b`, `ü`, `../x`, `a/b`
and a 244-byte name get their ACKs, an earliest consumer reads every record
back under the right topic name, a restarted store still serves them, and
nothing is written outside the store's db. A raw producer on a 249-byte name
(the longest folder name) is acknowledged too; one the log cannot hold even
encoded (255 bytes) is refused, counted and logged, and the store serves on.
(244: libzmq 4.3.4 breaks a connection whose SUB subscribes 246-255 bytes,
libzmq issue 4367, so no consumer can subscribe a longer topic over TCP.)"""
from dafka_harness import *

TOPICS = ["orders:eu", "a b", "\u00fc", "../x", "a/b", "n" * 244]
RECORDS = 20
LONGEST = b"n" * 249
TOO_LONG = b"n" * 255


def produce(cluster, index, topic):
    producer = cluster.start("producer%d" % index, "dafka-produce", "--count", str(RECORDS),
                             "--size", "4", topic)
    if producer.wait(120) != 0:
        fail("producer on %r was not acknowledged:\n%s" % (topic, producer.errors()))
    return producer.output().split()[-1].decode()          # its uuid


def consume_all(cluster, name, uuids):
    for index, topic in enumerate(TOPICS):
        consumer = cluster.start("%s%d" % (name, index), "dafka-consume", "--from-beginning",
                                 "--meta", "--count", str(RECORDS), topic)
        if consumer.wait(120) != 0:
            fail("consumer of %r did not get its records:\n%s" % (topic, consumer.errors()))
        expected = [("%s\t%s\t%d\t" % (topic, uuids[index], sequence)).encode() + content
                    for sequence, content in enumerate(expected_records(RECORDS, 4))]
        if consumed(consumer) != expected:
            fail("consumer of %r read %r" % (topic, consumed(consumer)[:3]))


def raw_producer(cluster, store, topic):
    """A raw producer that published records 0..2 of topic and a HEAD; returns
    the store's first answer (None if there was none)."""
    producer = RawPeer(cluster, zmq.XPUB)
    producer.subscribe(b"K" + producer.uuid)
    producer.wait_subscription(b"M")
    producer.wait_for_peer(store.writer_uuid)
    for sequence in range(3):
        producer.data.send_multipart([record(topic, producer.uuid, sequence), b"content"])
    producer.data.send(head(topic, producer.uuid, 2))
    answer = producer.recv(3000)
    producer.close()
    return answer


def longest_and_too_long(cluster, store):
    ack = raw_producer(cluster, store, LONGEST)
    if not ack or ack[0][:1] != b"K" or not ack[0].endswith(struct.pack(">Q", 2)):
        fail("a 249-byte topic was not acknowledged: %r" % ack)
    if raw_producer(cluster, store, TOO_LONG) is not None:
        fail("a topic the log cannot hold was acknowledged")


def outside_files(cluster, db):
    """Paths under the test's folder that neither the test nor the store's db made."""
    ours = {"dafka.cfg"}
    strays = []
    for entry in os.listdir(cluster.folder):
        if entry not in ours and entry != db and not entry.endswith((".out", ".err")):
            strays.append(entry)
    root = os.path.realpath(os.path.join(cluster.folder, db))
    for folder, subfolders, files in os.walk(root):
        for entry in subfolders + files:
            if not os.path.realpath(os.path.join(folder, entry)).startswith(root + os.sep):
                strays.append(os.path.join(folder, entry))
    return strays


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store", db="names.db")
    uuids = [produce(cluster, index, topic) for index, topic in enumerate(TOPICS)]
    longest_and_too_long(cluster, store)
    consume_all(cluster, "consumer", uuids)
    store.stop()
    if store.counter("stored") != RECORDS * len(TOPICS) + 3 or store.counter("refused") < 1:
        fail("store counters: " + store.errors())
    if b"name too long for the log once encoded" not in store.output():
        fail("the refusal was not logged:\n%r" % store.output())
    # The producers are gone: the restarted store alone serves every topic
    restarted = cluster.store("restarted", db="names.db")
    consume_all(cluster, "again", uuids)
    restarted.stop()
    strays = outside_files(cluster, "names.db")
    if strays:
        fail("written outside the store's db: %r" % strays)
    tower.stop()


run(test)
