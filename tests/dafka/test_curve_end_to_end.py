"""With security/curve = 1, records flow producer -> two stores -> consumers,
live and late (served by a store after the producer left); producer/min_acks = 2
counts the two stores apart by their keys; the tower forwards each beacon with
the key its sender authenticated with.

On code without Dafka CURVE the security keys are ignored: the tower speaks
plaintext, the CURVE listener below hears no beacon, and the test fails."""
from dafka_harness import *

RECORDS = 2000
SIZE = 100


def test(cluster):
    curve = Curve(cluster, ["tower", "store-a", "store-b", "producer", "live", "late",
                            "listener"])
    tower = cluster.start("tower", "tower", *curve.args("tower"))
    listener = CurveListener(cluster, curve, "listener")
    stores = [cluster.store(name, args=curve.args(name)) for name in ("store-a", "store-b")]
    # The tower vouches for each store's own key, whatever a peer would announce
    for store in stores:
        endpoint, key = listener.wait_for(store.writer_uuid)
        if key != curve.keys[store.name][0]:
            fail("the tower forwarded %s's beacon with key %r, not its own" % (store.name, key))
    live = cluster.start("live", "dafka-consume", "--from-beginning", "--count", str(RECORDS),
                         "orders", *curve.args("live"))
    time.sleep(1.0)
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS), "--size",
                             str(SIZE), "--set", "producer/min_acks=2", "orders",
                             *curve.args("producer"))
    if producer.wait(60) != 0:
        fail("the producer did not get every record acknowledged by both stores:\n"
             + producer.errors())
    expected = expected_records(RECORDS, SIZE)
    if live.wait(60) != 0 or consumed(live) != expected:
        fail("the live consumer did not read the %d records in order:\n%s"
             % (RECORDS, live.errors()))
    late = cluster.start("late", "dafka-consume", "--from-beginning", "--count", str(RECORDS),
                         "orders", *curve.args("late"))
    if late.wait(60) != 0 or consumed(late) != expected:
        fail("the late consumer did not read the %d records from the stores:\n%s"
             % (RECORDS, late.errors()))
    listener.close()
    for store in stores:
        store.stop()
        if store.counter("stored") != RECORDS or store.counter("forged") != 0:
            fail("%s counters:\n%s" % (store.name, store.errors()))
    tower.stop()


run(test)
