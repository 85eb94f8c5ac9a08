"""With security/curve = 1, a key removed from the allowed folder while
connected is cut off: the store and the consumer shut its connections down
(within security/reload_ms), its reconnection is refused by zauth as an unknown
key, and nothing it sends afterwards is stored or consumed; what it sent while
allowed stays.

On code without Dafka CURVE the tower speaks plaintext: the CURVE listener
below hears no beacon and the test fails."""
from dafka_harness import *

BEFORE = 5
AFTER = 5


def send_records(xpub, first, count):
    for sequence in range(first, first + count):
        xpub.send_multipart([record(b"orders", b"WRITER", sequence), b"writer-%d" % sequence])
    xpub.send(head(b"orders", b"WRITER", first + count - 1))


def test(cluster):
    curve = Curve(cluster, ["tower", "store", "consumer", "listener", "writer"])
    tower = cluster.start("tower", "tower", *curve.args("tower"))
    listener = CurveListener(cluster, curve, "listener")
    store = cluster.store("store", args=curve.args("store"))
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning", "orders",
                             *curve.args("consumer"))
    # Its uuid announced, as a producer's is, so that its records are its own
    announcer = CurveAnnouncer(cluster, curve, "writer", b"WRITER")
    announcer.announce(listener)
    senders = []
    for uuid in (store.writer_uuid, consumer_uuid(consumer)):
        endpoint, key = listener.wait_for(uuid)
        xpub = curve.socket(zmq.XPUB, "writer", key)
        xpub.connect(endpoint)
        if not wait_subscribed(xpub, b"M"):
            fail("the writer's socket never got a subscription from %s" % endpoint)
        send_records(xpub, 0, BEFORE)
        senders.append(xpub)
    expected = [b"writer-%d" % sequence for sequence in range(BEFORE)]
    deadline = time.time() + 20
    while consumed(consumer) != expected:
        if time.time() > deadline:
            fail("the consumer read %r while the key was allowed" % consumed(consumer))
        time.sleep(0.05)

    os.unlink(os.path.join(cluster.folder, "keys", "writer"))
    consumer_log = lambda: consumer.errors().encode()
    for node, log in ((store, store.output), (consumer, consumer_log)):
        deadline = time.time() + 20
        while b": unknown key" not in log():
            if time.time() > deadline:
                fail("%s did not cut the removed key off:\n%r" % (node.name, log()))
            time.sleep(0.05)
    # The reconnection was refused, so the old connection is gone on both sides
    for xpub in senders:
        send_records(xpub, BEFORE, AFTER)
    store.stop()
    if store.counter("stored") != BEFORE or store.counter("refused_unknown_key") < 1:
        fail("the store stored records of a removed key:\n" + store.errors())
    consumer.stop()
    if consumed(consumer) != expected:
        fail("the consumer read %r after the key was removed" % consumed(consumer))
    for sock in senders:
        sock.close()
    announcer.close()
    listener.close()
    tower.stop()


run(test)
