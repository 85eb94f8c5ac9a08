"""kill -9 a store mid-stream and restart it on the same db: it catches up
(from the other store, since the producer freed what the first store ACKed)
and then serves content identical to what was published."""
from dafka_harness import *

BATCH = 5000


def write_lines(producer, first, count):
    producer.process.stdin.write(b"".join(b"line-%d\n" % index for index in range(first, first + count)))
    producer.process.stdin.flush()


def wait_for_ack(cluster, watcher, store, producer_uuid, sequence, timeout=60):
    """Waits until store's writer ACKs sequence for the producer's partition."""
    watcher.wait_for_peer(store.writer_uuid)
    acks = cluster.context.socket(zmq.SUB)
    acks.setsockopt(zmq.LINGER, 0)
    acks.setsockopt(zmq.SUBSCRIBE, b"K" + producer_uuid)
    acks.connect(watcher.peers[store.writer_uuid.encode()])
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            watcher.pump()
            if acks.poll(100):
                message_id, topic, fields = parse_header(acks.recv())
                acked = struct.unpack(">Q", fields[1 + fields[0]:][:8])[0]
                if acked >= sequence:
                    return
        fail("%s never ACKed %d" % (store.name, sequence))
    finally:
        acks.close()


def test(cluster):
    tower = cluster.tower()
    store_a = cluster.store("store-a")
    store_b = cluster.store("store-b")
    producer = cluster.start("producer", "dafka-produce", "stream", stdin=subprocess.PIPE)
    deadline = time.time() + 20
    while b"producer" not in producer.output():
        if time.time() > deadline:
            fail("producer did not start:\n" + producer.errors())
        time.sleep(0.05)
    producer_uuid = producer.output().split()[3]
    watcher = RawPeer(cluster)
    # Both stores hold the stream before store-b dies: a store that joined after
    # the first records (slow discovery on a loaded machine) could fetch them only
    # from the producer, which frees them at store-b's first ACK, or from store-b
    write_lines(producer, 0, 1)
    wait_for_ack(cluster, watcher, store_a, producer_uuid, 0)
    wait_for_ack(cluster, watcher, store_b, producer_uuid, 0)
    write_lines(producer, 1, BATCH - 1)
    watcher.sleep(1.0)
    store_b.kill()                                   # kill -9, mid-stream
    write_lines(producer, BATCH, BATCH)
    wait_for_ack(cluster, watcher, store_a, producer_uuid, 2 * BATCH - 1)
    store_b = cluster.store("store-b-restarted", db="store-b.db")
    write_lines(producer, 2 * BATCH, BATCH)
    wait_for_ack(cluster, watcher, store_b, producer_uuid, 3 * BATCH - 1)
    store_a.stop()                                   # from now on only store-b has the data
    producer.process.stdin.close()
    if producer.wait(60) != 0:
        fail("producer failed:\n" + producer.errors())
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning",
                             "--count", str(3 * BATCH), "stream")
    if consumer.wait(60) != 0:
        fail("consumer failed:\n" + consumer.errors())
    if consumed(consumer) != [b"line-%d" % index for index in range(3 * BATCH)]:
        fail("restarted store served %d records, not identical" % len(consumed(consumer)))
    watcher.close()
    store_b.stop()
    tower.stop()


run(test)
