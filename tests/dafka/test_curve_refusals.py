"""With security/curve = 1 only allowed keys get in. A plaintext node and a
node whose key is not in the allowed folder never get the tower's welcome; a
plaintext socket and a stranger's CURVE socket sending RECORDs straight to a
store's and a consumer's announced endpoints get nothing stored and nothing
consumed. Every refusal is counted and logged with the peer's address, and an
allowed key's records on the same path are stored and consumed (so the
refusals are the keys', not the path's). Before that, nodes with no certificate,
a secret readable by others or no tower key exit 2 with one line naming the key.

On code without Dafka CURVE the security keys are ignored: the tower speaks
plaintext, the CURVE listener below hears no beacon, and the test fails."""
from dafka_harness import *

RECORDS = 10


def send_records(xpub, uuid, label):
    for sequence in range(RECORDS):
        xpub.send_multipart([record(b"orders", uuid, sequence), b"%s-%d" % (label, sequence)])
    xpub.send(head(b"orders", uuid, RECORDS - 1))


def wait_logged(node, stream, what, timeout=20):
    deadline = time.time() + timeout
    while what not in stream():
        if time.time() > deadline:
            fail("%s did not log %r:\n%s" % (node.name, what, stream()))
        time.sleep(0.05)


def misconfigured(cluster, name, args, key):
    """A node whose security settings are wrong exits 2 with one line naming the key."""
    node = cluster.start(name, "store", *args)
    code = node.wait(20)
    if code != 2 or key not in node.errors() or len(node.errors().splitlines()) != 1:
        fail("%s exited %s:\n%s" % (name, code, node.errors()))


def test(cluster):
    curve = Curve(cluster, ["tower", "store", "consumer", "listener", "writer"],
                  strangers=["stranger"])
    misconfigured(cluster, "no-cert", [], "security/cert")
    os.chmod(os.path.join(cluster.folder, "certs", "writer_secret"), 0o644)
    misconfigured(cluster, "open-secret", curve.args("writer"), "security/cert")
    os.chmod(os.path.join(cluster.folder, "certs", "writer_secret"), 0o600)
    misconfigured(cluster, "no-tower-key", curve.args("writer") + ["--set", "security/tower_key="],
                  "security/tower_key")
    tower = cluster.start("tower", "tower", *curve.args("tower"))
    listener = CurveListener(cluster, curve, "listener")
    store = cluster.store("store", args=curve.args("store"))
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning", "--count",
                             str(RECORDS), "orders", *curve.args("consumer"))

    # Whole nodes: neither is welcomed by the tower, so neither starts
    plain_store = cluster.start("plain-store", "store", "--db", "plain.db", "--set",
                                "security/curve=0")
    stranger = cluster.start("stranger", "dafka-produce", "--count", str(RECORDS), "orders",
                             *curve.args("stranger"))
    wait_logged(tower, tower.output, b"refused a connection from 127.0.0.1")
    wait_logged(tower, tower.output, b": not CURVE")
    wait_logged(tower, tower.output, b": unknown key")
    if b"writer" in plain_store.output() or b"producer" in stranger.output():
        fail("a refused node started:\n%r\n%r" % (plain_store.output(), stranger.output()))
    plain_store.kill()
    stranger.kill()

    # Raw sockets at the data endpoints the tower announced
    targets = [listener.wait_for(store.writer_uuid), listener.wait_for(consumer_uuid(consumer))]
    plain = cluster.context.socket(zmq.XPUB)
    plain.setsockopt(zmq.LINGER, 0)
    strangers = []
    for endpoint, key in targets:
        plain.connect(endpoint)
        xpub = curve.socket(zmq.XPUB, "stranger", key)
        xpub.connect(endpoint)
        strangers.append(xpub)
    wait_logged(store, store.output, b"dafka store writer: refused a connection from 127.0.0.1")
    wait_logged(store, store.output, b": not CURVE")
    wait_logged(store, store.output, b": unknown key")
    consumer_log = lambda: consumer.errors().encode()
    wait_logged(consumer, consumer_log, b"dafka consumer: refused a connection from 127.0.0.1")
    wait_logged(consumer, consumer_log, b": not CURVE")
    wait_logged(consumer, consumer_log, b": unknown key")
    send_records(plain, b"PLAINTEXT", b"plain")
    for xpub in strangers:
        send_records(xpub, b"STRANGER", b"stranger")

    # The same path with an allowed key works (its uuid announced, as a
    # producer's is, so that its records are its own)
    announcer = CurveAnnouncer(cluster, curve, "writer", b"WRITER")
    announcer.announce(listener)
    for endpoint, key in targets:
        xpub = curve.socket(zmq.XPUB, "writer", key)
        xpub.connect(endpoint)
        if not wait_subscribed(xpub, b"M"):
            fail("an allowed key's socket never got a subscription from %s" % endpoint)
        send_records(xpub, b"WRITER", b"writer")
        strangers.append(xpub)
    expected = [b"writer-%d" % sequence for sequence in range(RECORDS)]
    if consumer.wait(60) != 0 or consumed(consumer) != expected:
        fail("the consumer read %r:\n%s" % (consumed(consumer), consumer.errors()))
    for node in (consumer, store):
        if node is store:
            store.stop()
            if store.counter("stored") != RECORDS:
                fail("the store stored %d records, not the allowed key's %d:\n%s"
                     % (store.counter("stored"), RECORDS, store.errors()))
        if node.counter("refused_plaintext") < 1 or node.counter("refused_unknown_key") < 1:
            fail("%s did not count the refusals:\n%s" % (node.name, node.errors()))
    for sock in strangers + [plain]:
        sock.close()
    announcer.close()
    listener.close()
    tower.stop()
    if tower.counter("refused_plaintext") < 1 or tower.counter("refused_unknown_key") < 1:
        fail("the tower did not count the refusals:\n" + tower.errors())


run(test)
