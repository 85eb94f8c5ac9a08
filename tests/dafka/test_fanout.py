"""1 producer -> 2 stores -> 2 consumers: every record reaches both consumers,
in order, identical, and both stores persist all of them. With
producer/min_acks = 2 the producer only exits once BOTH stores acknowledged
every record as durable."""
from dafka_harness import *

RECORDS = 20000
SIZE = 16


def test(cluster):
    tower = cluster.tower()
    stores = [cluster.store("store-a"), cluster.store("store-b")]
    consumers = [cluster.start("consumer-%d" % index, "dafka-consume", "--from-beginning",
                               "--count", str(RECORDS), "orders") for index in range(2)]
    time.sleep(1.0)
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS),
                             "--size", str(SIZE), "--set", "producer/min_acks=2", "orders")
    if producer.wait(60) != 0:
        fail("producer failed:\n" + producer.errors())
    expected = expected_records(RECORDS, SIZE)
    for consumer in consumers:
        if consumer.wait(60) != 0:
            fail("consumer failed:\n" + consumer.errors())
        if consumed(consumer) != expected:
            fail("%s did not receive all records in order" % consumer.name)
        if consumer.counter("received") != RECORDS:
            fail("%s counted wrong" % consumer.name)
    for store in stores:
        store.stop()
        if store.counter("stored") != RECORDS or store.counter("malformed") != 0:
            fail("%s stored %d of %d" % (store.name, store.counter("stored"), RECORDS))
    tower.stop()


run(test)
