"""A consumer far behind its producer asks for each gap once. Seen on the
wire: no FETCH it sends asks again for a range an earlier one asked for; and
at the store: it serves each record the consumer delivers once, plus at most
the one extra record per FETCH that a store's inclusive answer carries (stores
answer [seq, seq+count], the next FETCH starts at seq+count). The code before
this re-sent the FETCH every second while the first answer was still arriving:
a store served 212-280k DIRECT_RECORDs for 200k delivered.

The producer has exited and the store is restarted once the consumer runs, so
a raw SUB tap is already connected to the consumer's XPUB (it has seen the
consumer's GET_HEADS) before the first FETCH can go out, and everything the
consumer reads comes from the store. The consumer's fetch timeout (re-ask
after this long without progress) is set far above the run's length: the test
proves that no gap is asked twice while its answer flows, whatever the
machine's load; the timeout's own re-ask is what lets the other Dafka tests
survive a lost FETCH."""
from dafka_harness import *

RECORDS = 200000
SIZE = 8
BLOCKS = (RECORDS + 99999) // 100000        # FETCHes a gap-free catch-up needs


def fetch_fields(frame):
    """(requester, sequence, count) of a FETCH's frame 0."""
    _, _, rest = parse_header(frame)
    requester = rest[1:1 + rest[0]]
    rest = rest[1 + rest[0]:]
    rest = rest[1 + rest[0]:]                # the subject
    sequence, count = struct.unpack(">QI", rest[:12])
    return requester, sequence, count


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store", "store.db")
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS),
                             "--size", str(SIZE), "events")
    if producer.wait(120) != 0:      # exits only once the store ACKed everything (durable)
        fail("producer failed:\n" + producer.errors())
    store.stop()

    tap = RawPeer(cluster)
    tap.subscribe(b"F")
    tap.subscribe(b"G")
    consumer = cluster.start("late-consumer", "dafka-consume", "--from-beginning",
                             "--set", "consumer/fetch_timeout=20000",
                             "--count", str(RECORDS), "events")
    consumer_uuid = None
    deadline = time.time() + 30
    while consumer_uuid is None:     # an earliest consumer sends GET_HEADS every second
        frames = tap.recv(1000)
        if frames and frames[0][:1] == b"G":
            _, _, rest = parse_header(frames[0])
            consumer_uuid = rest[1:1 + rest[0]]
        if time.time() > deadline:
            fail("the tap never saw the consumer's GET_HEADS")

    store = cluster.store("store-again", "store.db")
    fetches = []
    deadline = time.time() + 120
    while consumer.process.poll() is None:
        if time.time() > deadline:
            fail("late consumer did not finish:\n" + consumer.errors())
        frames = tap.recv(100)
        if frames and frames[0][:1] == b"F":
            requester, sequence, count = fetch_fields(frames[0])
            if requester == consumer_uuid:
                fetches.append((sequence, count))
    tap.close()
    if consumer.wait(10) != 0:
        fail("late consumer failed:\n" + consumer.errors())
    if consumed(consumer) != expected_records(RECORDS, SIZE):
        fail("late consumer got %d records, not all in order" % len(consumed(consumer)))
    print("consumer FETCHes (sequence, count): %s" % fetches)
    for (sequence, count), (next_sequence, _) in zip(fetches, fetches[1:]):
        if next_sequence < sequence + count:
            fail("FETCH from %d asked again for part of [%d, %d] asked before: %s"
                 % (next_sequence, sequence, sequence + count - 1, fetches))
    store.stop()
    served = store.counter("served")
    print("store served %d DIRECT_RECORDs for %d delivered" % (served, RECORDS))
    if served > RECORDS + BLOCKS:
        fail("store served %d DIRECT_RECORDs for %d delivered (at most %d expected): "
             "gaps were asked for more than once" % (served, RECORDS, RECORDS + BLOCKS))
    tower.stop()


run(test)
