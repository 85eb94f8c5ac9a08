"""A consumer that joins with --from-beginning after the producer has exited
reads every record from the store, well past 100,001 (the reference stalls
there: its next FETCH waited for a HEAD from the gone producer)."""
from dafka_harness import *

RECORDS = 150000
SIZE = 8


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store")
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS),
                             "--size", str(SIZE), "events")
    if producer.wait(120) != 0:      # exits only once the store ACKed everything (durable)
        fail("producer failed:\n" + producer.errors())
    consumer = cluster.start("late-consumer", "dafka-consume", "--from-beginning",
                             "--count", str(RECORDS), "events")
    if consumer.wait(120) != 0:
        fail("late consumer failed:\n" + consumer.errors())
    if consumed(consumer) != expected_records(RECORDS, SIZE):
        fail("late consumer got %d records, not all in order" % len(consumed(consumer)))
    store.stop()
    if store.counter("stored") != RECORDS:
        fail("store stored %d records, not %d:\n%s" % (store.counter("stored"), RECORDS,
                                                        store.errors()))
    tower.stop()


run(test)
