"""FETCH is capped and fair. Against a partition of 110,000 records:
  - a FETCH with count 2^32-1 is answered with sequences 0..100,000 and no
    more: count is capped at the protocol's own 100,000, served inclusively;
  - while 20 such FETCHes are being answered (2,000,020 records), a producer's
    record is stored and ACKed: the store serves FETCHes a slice per loop turn,
    so when the ACK arrived and the store was stopped, most of those records
    had not been served yet (the store used to answer each FETCH whole);
  - with those answers in progress and store/max_fetches = 64, 100 more
    FETCHes: the ones beyond the limit are dropped and counted."""
from dafka_harness import *

RECORDS = 110000
CAP = 100001
FETCHES = 20
MAX_FETCHES = 64
MORE = 100
ALL = 2 ** 32 - 1


def requester(cluster, store):
    peer = RawPeer(cluster, zmq.XPUB)
    for message_id in (b"D", b"E", b"L"):
        peer.subscribe(message_id + peer.uuid)
    peer.wait_subscription(b"F")
    peer.wait_subscription(b"G")
    peer.wait_for_peer(store.reader_uuid)
    return peer


def partition_of(peer, topic):
    """The producer uuid and head of topic, from the store's DIRECT_HEAD."""
    deadline = time.time() + 30
    while time.time() < deadline:
        peer.data.send(header(b"G", topic, string_field(peer.uuid)))
        frames = peer.recv(1000)
        if frames and frames[0][:1] == b"E":
            _, _, rest = parse_header(frames[0])
            producer = rest[1:1 + rest[0]]
            return producer, struct.unpack(">Q", rest[-8:])[0]
    fail("no DIRECT_HEAD for %r" % topic)


def direct_records(peer, first_wait_ms=10000, quiet_ms=2000):
    """Sequences of the DIRECT_RECORDs received until quiet_ms of silence."""
    sequences = []
    wait = first_wait_ms
    while peer.sub.poll(wait):
        frames = peer.sub.recv_multipart()
        if frames[0][:1] == b"D":
            sequences.append(struct.unpack(">Q", frames[0][-8:])[0])
        wait = quiet_ms
        if len(sequences) % 10000 == 0:
            peer.pump()
    return sequences


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store")
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS), "--size", "10",
                             "big")
    if producer.wait(180) != 0:
        fail("the big partition was not acknowledged:\n" + producer.errors())
    reader = requester(cluster, store)
    partition, last = partition_of(reader, b"big")
    if last != RECORDS - 1:
        fail("head %d, not %d" % (last, RECORDS - 1))
    # The cap: one FETCH for everything gets 0..100000
    reader.data.send(fetch(partition, reader.uuid, b"big", 0, ALL))
    sequences = direct_records(reader)
    if sequences != list(range(CAP)):
        fail("a FETCH of 2^32-1 got %d records (%r...%r), not 0..100000"
             % (len(sequences), sequences[:2], sequences[-2:]))
    # Fairness: 19 FETCHes for nobody, then ours; once ours is being answered,
    # a producer's record must be ACKed before the answers are done
    writer = RawPeer(cluster, zmq.XPUB)
    writer.subscribe(b"K" + writer.uuid)
    writer.wait_subscription(b"M")
    writer.wait_for_peer(store.writer_uuid)
    for index in range(FETCHES - 1):
        nobody = ("%032X" % index).encode()
        reader.data.send(fetch(partition, nobody, b"big", 0, ALL))
    reader.data.send(fetch(partition, reader.uuid, b"big", 0, ALL))
    if not reader.sub.poll(30000):
        fail("the FETCHes were not answered")
    writer.data.send_multipart([record(b"small", writer.uuid, 0), b"small"])
    writer.data.send(head(b"small", writer.uuid, 0))
    deadline = time.time() + 120
    while True:
        frames = writer.recv(1000)
        if frames and frames[0][:1] == b"K":
            break
        if time.time() > deadline:
            fail("no ACK while FETCHes were answered")
        writer.data.send(head(b"small", writer.uuid, 0))
    # Beyond max_fetches: dropped. A GET_HEADS after them, answered on the
    # reader's own connection, tells that the store has read them all
    for index in range(MORE):
        nobody = ("%032X" % (FETCHES + index)).encode()
        reader.data.send(fetch(partition, nobody, b"big", 0, ALL))
    reader.data.send(header(b"G", b"big", string_field(reader.uuid)))
    while True:
        if not reader.sub.poll(30000):
            fail("GET_HEADS not answered after the extra FETCHes")
        if reader.sub.recv_multipart()[0][:1] == b"E":
            break
    store.stop()
    if store.counter("fetch_dropped") < 1:
        fail("no FETCH counted as dropped: " + store.errors())
    served = store.counter("served")
    if served >= CAP + FETCHES * CAP:
        fail("every FETCH was answered before the ACK (served=%d)" % served)
    print("served %d of %d records when the ACK arrived and the store stopped; %d of %d more "
          "FETCHes dropped" % (served - CAP, FETCHES * CAP, store.counter("fetch_dropped"), MORE))
    reader.close()
    writer.close()
    tower.stop()


test.extra_config = "    max_fetches = %d\n" % MAX_FETCHES
run(test)
