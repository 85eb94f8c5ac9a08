"""Forged HEADs and RECORDs for thousands of random producer uuids cannot take
a store down or stop it acknowledging real producers (store/max_partitions,
store/fetch_give_up):
  - a HEAD with sequence 2^64-1 is a sequence like any other: the store
    FETCHes what it lacks (from 0 for a new producer, from its end for a
    known one) instead of taking it for "no sequence";
  - 4000 forged HEADs and 300 forged first RECORDs: at most max_partitions
    partitions are tracked, no folder is made for a HEAD, the store's open
    files stay bounded, the refusals are counted and logged about once a
    second, not once per message;
  - a producer known before the flood is still acknowledged during it;
  - a new producer started during the flood is acknowledged once the silent
    forged partitions are given up and forgotten."""
import random

from dafka_harness import *

MAX_PARTITIONS = 64
GIVE_UP_MS = 3000
FORGED_HEADS = 4000
FORGED_RECORDS = 300
FIRST_RECORDS = 20
FDS_PER_PARTITION = 8               # generous: a partition holds a few segment/index files
NO_SEQUENCE = 2 ** 64 - 1


class RawProducer(RawPeer):
    def __init__(self, cluster, store, topic):
        super().__init__(cluster, zmq.XPUB)
        self.topic = topic
        self.subscribe(b"K" + self.uuid)
        self.subscribe(b"F" + self.uuid)
        self.wait_subscription(b"M")
        self.wait_for_peer(store.writer_uuid)

    def publish(self, first, count):
        for sequence in range(first, first + count):
            self.data.send_multipart([record(self.topic, self.uuid, sequence), b"record"])
        self.data.send(head(self.topic, self.uuid, first + count - 1))

    def expect(self, message_id, sequence, resend=None, timeout=60):
        """Waits for an ACK or FETCH of sequence addressed to this producer."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            frames = self.recv(500)
            tail = 8 if message_id == b"K" else 12          # FETCH: sequence, then count
            if (frames and frames[0][:1] == message_id
                    and frames[0][-tail:][:8] == struct.pack(">Q", sequence)):
                return
            if frames is None and resend:
                resend()
        fail("%s %d never came for %s" % (message_id, sequence, self.uuid))


def open_files(node):
    return len(os.listdir("/proc/%d/fd" % node.process.pid))


def folders(cluster, db):
    root = os.path.join(cluster.folder, db)
    return sum(len(os.listdir(os.path.join(root, topic))) for topic in os.listdir(root)
               if os.path.isdir(os.path.join(root, topic)))


def forge_records(attacker, count):
    for index in range(count):
        forged = uuidlib.uuid4().hex.upper().encode()
        attacker.data.send_multipart([record(b"forged", forged, 0), b"forged"])


def flood(cluster, attacker):
    """First records (each may make a folder while the table has room), then
    HEADs (tracked in memory only), then more records (refused: full)."""
    forge_records(attacker, FIRST_RECORDS)
    for index in range(FORGED_HEADS):
        forged = uuidlib.uuid4().hex.upper().encode()
        attacker.data.send(head(b"forged", forged, random.randrange(1, 2 ** 63)))
        if index % 500 == 0:
            attacker.pump()
    forge_records(attacker, FORGED_RECORDS - FIRST_RECORDS)


def test(cluster):
    tower = cluster.tower()
    store = cluster.store("store", db="limits.db")
    known = RawProducer(cluster, store, b"real")
    known.publish(0, 10)
    known.expect(b"K", 9)
    # 2^64-1 is a sequence: a new producer is fetched from 0, a known one from its end
    fresh = RawProducer(cluster, store, b"max")
    fresh.data.send(head(b"max", fresh.uuid, NO_SEQUENCE))
    fresh.expect(b"F", 0, lambda: fresh.data.send(head(b"max", fresh.uuid, NO_SEQUENCE)))
    known.data.send(head(b"real", known.uuid, NO_SEQUENCE))
    known.expect(b"F", 10)
    files_before = open_files(store)
    attacker = RawPeer(cluster, zmq.XPUB)
    attacker.wait_subscription(b"H")
    attacker.wait_for_peer(store.writer_uuid)
    started = time.time()
    flood(cluster, attacker)
    newcomer = cluster.start("newcomer", "dafka-produce", "--count", "100", "--size", "8", "new")
    # The known producer is acknowledged during the flood
    known.publish(10, 10)
    known.expect(b"K", 19, lambda: known.publish(10, 10))
    files_during = open_files(store)
    made = folders(cluster, "limits.db")
    if made > 1 + FIRST_RECORDS + 1:              # known, the first forged records, the newcomer
        fail("%d partition folders: HEADs or refused records made folders" % made)
    if files_during > files_before + MAX_PARTITIONS * FDS_PER_PARTITION:
        fail("open files grew from %d to %d" % (files_before, files_during))
    # The newcomer gets in once the silent forged partitions are forgotten
    if newcomer.wait(120) != 0:
        fail("a new producer was never acknowledged:\n" + newcomer.errors())
    # Every forged partition has been silent for fetch_give_up by now (the
    # tick that gives them up runs every 50 ms; 2 s of slack)
    attacker.sleep(max(0, started + GIVE_UP_MS / 1000.0 + 2 - time.time()))
    elapsed = time.time() - started
    for peer in (known, fresh, attacker):
        peer.close()
    store.stop()
    tracked_heads = MAX_PARTITIONS - 2 - FIRST_RECORDS - 1    # known, max, records, newcomer
    if (store.counter("table_full") < FORGED_HEADS // 2
            or store.counter("given_up") < 1 + tracked_heads):
        fail("refusals not counted: " + store.errors())
    lines = store.output().count(b"partition table full")
    if not 1 <= lines <= elapsed + 2:
        fail("%d log lines about refusals in %.0f s" % (lines, elapsed))
    print("open files %d -> %d, partition folders %d, table_full=%d given_up=%d, %d log lines "
          "in %.1f s" % (files_before, files_during, made, store.counter("table_full"),
                         store.counter("given_up"), lines, elapsed))
    tower.stop()


test.extra_config = ("    max_partitions = %d\n    fetch_give_up = %d\n"
                     % (MAX_PARTITIONS, GIVE_UP_MS))
run(test)
