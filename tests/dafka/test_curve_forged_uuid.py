"""With security/curve = 1 a producer's uuid is its key's. Another allowed key
(a raw pyzmq CURVE peer, "forger") that knows the running producer's uuid
- announces that uuid in a beacon of its own: the tower drops it;
- sends RECORDs and a HEAD under that uuid before the producer's first record
  (claiming the stream), and again mid-stream with the very sequences the
  producer is about to publish (taking it over):
- sends HEADs of uuids nobody announced, more than the store's partition table
  holds;
the store and the consumer drop every one and count them (forged=), the
consumer prints only the real records, the store keeps and serves only the real
ones, and a restarted store still knows whose uuid it is (the binding is kept
in the partition's folder).

Before this check the forged records were stored and delivered, and the real
producer's were dropped as duplicates while it saw them acknowledged. On code
without Dafka CURVE the tower speaks plaintext: the forger hears no beacon and
the test fails."""
from dafka_harness import *
from test_metrics import parse, scrape     # tests/broker: the strict text-format parser

RECORDS = 5                         # real records before the takeover, and after


def send_forged(xpub, producer_uuid, first):
    for sequence in range(first, first + RECORDS):
        xpub.send_multipart([record(b"orders", producer_uuid, sequence),
                             b"forged-%d" % sequence])
    xpub.send(head(b"orders", producer_uuid, first + RECORDS - 1))


def forger_connected(curve, listener, uuid, name):
    """An XPUB of the forger's connected to the node uuid with the node's own
    key; returns once that node's SUB subscribed RECORDs."""
    endpoint, key = listener.wait_for(uuid)
    xpub = curve.socket(zmq.XPUB, "forger", key)
    xpub.connect(endpoint)
    if not wait_subscribed(xpub, b"M"):
        fail("the %s never subscribed the forger's RECORDs" % name)
    return xpub


def wait_logged(node, log, what, timeout=20):
    deadline = time.time() + timeout
    while what not in log():
        if time.time() > deadline:
            fail("%s did not log %r:\n%r" % (node.name, what, log()))
        time.sleep(0.05)


def wait_forged(port, count, timeout=20):
    """Until the store on metrics port counted count forged records: its log
    names the first one, and a store stopped then may not have read the rest."""
    deadline = time.time() + timeout
    while True:
        forged = parse(scrape(port)[2])[1][("zper_dafka_store_forged_total", ())]
        if forged >= count:
            return
        if time.time() > deadline:
            fail("the store counted %d forged records, not %d" % (forged, count))
        time.sleep(0.05)


def publish(producer, first, count):
    for index in range(first, first + count):
        producer.process.stdin.write(b"real-%d\n" % index)
    producer.process.stdin.flush()


def test(cluster):
    curve = Curve(cluster, ["tower", "store", "producer", "consumer", "late", "forger"])
    tower = cluster.start("tower", "tower", *curve.args("tower"))
    listener = CurveListener(cluster, curve, "forger")
    store = cluster.store("store", args=curve.args("store") + ["--set", "store/max_partitions=2"])
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning", "--count",
                             str(2 * RECORDS), "--verbose", "orders", *curve.args("consumer"))
    producer = cluster.start("producer", "dafka-produce", "orders", *curve.args("producer"),
                             stdin=subprocess.PIPE)
    deadline = time.time() + 20
    while b"producer" not in producer.output():
        if time.time() > deadline:
            fail("the producer did not start:\n" + producer.errors())
        time.sleep(0.05)
    producer_uuid = producer.output().split()[-1]
    consumer_id = consumer_uuid(consumer)
    if listener.wait_for(producer_uuid.decode())[1] != curve.keys["producer"][0]:
        fail("the tower vouched another key for the producer's uuid")

    # The forger's own beacon for the producer's uuid is dropped by the tower
    impostor = CurveAnnouncer(cluster, curve, "forger", producer_uuid)
    deadline = time.time() + 20
    while b"dropped a beacon of" not in tower.output():
        if time.time() > deadline:
            fail("the tower did not drop the forger's beacon:\n%r" % tower.output())
        impostor.beacon.send_multipart(impostor.message)
        time.sleep(0.1)
    impostor.close()

    # Claiming the stream before its first record
    to_store = forger_connected(curve, listener, store.writer_uuid, "store")
    to_consumer = forger_connected(curve, listener, consumer_id, "consumer")
    for xpub in (to_store, to_consumer):
        send_forged(xpub, producer_uuid, 0)
    for index in range(10):             # would fill the table if they took a slot
        to_store.send(head(b"orders", uuidlib.uuid4().hex.upper().encode(), 7))
    wait_logged(store, store.output, b"not bound to")
    wait_logged(consumer, lambda: consumer.errors().encode(), b"dropped a RECORD")
    publish(producer, 0, RECORDS)
    deadline = time.time() + 20
    while len(consumed(consumer)) < RECORDS:
        if time.time() > deadline:
            fail("the consumer did not get the first real records:\n" + consumer.errors())
        time.sleep(0.05)

    # Taking it over mid-stream, with the sequences the producer publishes next
    for xpub in (to_store, to_consumer):
        send_forged(xpub, producer_uuid, RECORDS)
    deadline = time.time() + 20
    while consumer.errors().count("dafka consumer: dropped a") < 2 * (RECORDS + 1):
        if time.time() > deadline:
            fail("the consumer did not drop the forged records:\n" + consumer.errors())
        time.sleep(0.05)
    publish(producer, RECORDS, RECORDS)
    producer.process.stdin.close()
    if producer.wait(60) != 0:
        fail("the producer did not get its records acknowledged:\n" + producer.errors())
    expected = [b"real-%d" % index for index in range(2 * RECORDS)]
    if consumer.wait(60) != 0 or consumed(consumer) != expected:
        fail("the consumer read %r, not the real records:\n%s"
             % (consumed(consumer), consumer.errors()))
    if consumer.counter("forged") != 2 * (RECORDS + 1):
        fail("the consumer did not count the forged records:\n" + consumer.errors())
    late = cluster.start("late", "dafka-consume", "--from-beginning", "--count",
                         str(len(expected)), "orders", *curve.args("late"))
    if late.wait(60) != 0 or consumed(late) != expected:
        fail("the store served %r, not the real records:\n%s" % (consumed(late), late.errors()))
    store.stop()
    if (store.counter("forged") < 2 * RECORDS + 10 or store.counter("stored") != len(expected)
            or store.counter("table_full") != 0):
        fail("store counters:\n" + store.errors())

    key_file = os.path.join(cluster.folder, "store.db", "orders", producer_uuid.decode(),
                            "dafka.key")
    with open(key_file, "rb") as stream:
        if stream.read() != curve.keys["producer"][0]:
            fail("the store did not keep the producer's key in its partition's folder")

    # A restarted tower has forgotten whose uuid it was, and vouches for the
    # forger's key now; a restarted store still binds the uuid to the
    # producer's key, kept in the partition's folder: dropped, not stored
    tower.stop()
    tower = cluster.start("tower-2", "tower", *curve.args("tower"))
    impostor = CurveAnnouncer(cluster, curve, "forger", producer_uuid)
    impostor.announce(listener)
    port = free_port()
    restarted = cluster.store("restarted", db="store.db",
                              args=curve.args("store") + ["--metrics", "127.0.0.1:%d" % port])
    to_store.close()
    to_store = forger_connected(curve, listener, restarted.writer_uuid, "restarted store")
    impostor.announce(listener)
    send_forged(to_store, producer_uuid, len(expected))
    wait_logged(restarted, restarted.output, b"not bound to")
    wait_forged(port, RECORDS)
    restarted.stop()
    if restarted.counter("stored") != 0 or restarted.counter("forged") < RECORDS:
        fail("restarted store counters:\n" + restarted.errors())
    for sock in (to_store, to_consumer):
        sock.close()
    impostor.close()
    listener.close()
    tower.stop()


run(test)
