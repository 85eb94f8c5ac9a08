"""producer/min_acks = 2: a record is released only once two DISTINCT stores
acknowledged it. With one store up the producer keeps waiting; a second store
joining later fetches the records from the producer, ACKs, and only then the
producer exits."""
from dafka_harness import *

RECORDS = 3000


def test(cluster):
    tower = cluster.tower()
    store_a = cluster.store("store-a")
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS), "--size", "8",
                             "--set", "producer/min_acks=2", "pairs")
    time.sleep(3.0)                  # store-a ACKed long ago (flush_interval is 50 ms)
    if producer.process.poll() is not None:
        fail("producer exited with one store's ACKs:\n" + producer.errors())
    store_b = cluster.store("store-b")
    if producer.wait(60) != 0:
        fail("producer failed:\n" + producer.errors())
    for store in (store_a, store_b):
        store.stop()
        if store.counter("stored") != RECORDS:
            fail("%s stored %d" % (store.name, store.counter("stored")))
    tower.stop()


run(test)
