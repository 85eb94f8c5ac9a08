"""Two topics where one name is a prefix of the other: each consumer receives
its own topic only (the wire subscription is a prefix; ZPER checks the exact
topic on receipt), live and when reading back from the store."""
from dafka_harness import *

RECORDS = 2000


def check(consumer, topic):
    if consumer.wait(60) != 0:
        fail(consumer.name + " failed:\n" + consumer.errors())
    lines = consumed(consumer)
    topics = set(line.split(b"\t")[0] for line in lines)
    if topics != {topic}:
        fail("%s received topics %s" % (consumer.name, topics))
    if [line.split(b"\t")[3] for line in lines] != expected_records(RECORDS, 4):
        fail("%s received %d records, not all in order" % (consumer.name, len(lines)))


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store")
    # Live consumers, joined before the producers; both topics stream interleaved, so any
    # cross-delivery would show among the first RECORDS records each one counts
    live = [cluster.start("live-" + topic, "dafka-consume", "--from-beginning", "--meta",
                          "--count", str(RECORDS), topic) for topic in ("hel", "hello")]
    time.sleep(1.0)
    producers = [cluster.start("producer-" + topic, "dafka-produce", "--count", str(RECORDS),
                               "--size", "4", topic) for topic in ("hel", "hello")]
    for producer in producers:
        if producer.wait(60) != 0:
            fail(producer.name + " failed:\n" + producer.errors())
    check(live[0], b"hel")
    check(live[1], b"hello")
    # Read back from the store alone
    late = cluster.start("late-hel", "dafka-consume", "--from-beginning", "--meta",
                         "--count", str(RECORDS), "hel")
    check(late, b"hel")
    store.stop()
    if store.counter("stored") != 2 * RECORDS:
        fail("store stored %d" % store.counter("stored"))
    tower.stop()


run(test)
