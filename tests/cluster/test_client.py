"""The zper CLI (and through it libzper's zper_cluster_producer) against a real cluster: etcd +
3 nodes. `zper topics create` makes a topic of 3 partitions x 3 replicas (a second create is
refused: TOPIC_EXISTS); `zper produce --cluster --key K` writes 1000 keyed lines, 250 per key,
and a plain `zper produce` (mode 3, detected through METADATA) 300 unkeyed lines round-robin;
`zper cluster status` and `zper topics` show 3 partitions with a leader and a full ISR; READ on
the partitions' leaders then finds every line exactly once, each key's lines in the one partition
FNV-1a(key) % 3 (computed here: any client partitions the same), in the order they were written;
`zper topics reassign --wait` returns once METADATA shows the new replicas."""

import json
import subprocess
import unittest

import cluster_harness as h

TOPIC, PARTITIONS, REPLICAS = "clitopic", 3, 3
KEYS, PER_KEY, UNKEYED = ("alpha", "beta", "gamma", "delta"), 250, 300
COMMAND_TIMEOUT = 120                       # seconds, any one zper command


def fnv1a(data):
    """FNV-1a 32-bit, as docs/cluster.md defines the partitioner."""
    value = 2166136261
    for byte in data:
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


class ClientCli(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        h.require_etcd()
        cls.cluster = h.Cluster(3)
        try:
            cls.cluster.start()
        except BaseException:
            try:                            # no etcd or zperd left behind
                cls.cluster.stop()
            except BaseException:
                pass
            raise
        cls.rear = cls.cluster.nodes[1].endpoint("rear")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def zper(self, *arguments, stdin=b""):
        result = subprocess.run([h.ZPER, *arguments, "--rear", self.rear], input=stdin,
                                capture_output=True, timeout=COMMAND_TIMEOUT)
        self.assertNotIn(b"Sanitizer", result.stderr)
        return result

    def read_partitions(self):
        """{partition: [first frame of each record]} read on each partition's leader."""
        logs = {}
        for index in range(PARTITIONS):
            leader, _epoch = self.cluster.leader_of(TOPIC, index)
            records = self.cluster.read_all(leader, "%s.%d" % (TOPIC, index))
            logs[index] = [frames[0] for _offset, frames in records]
        return logs

    def test_1_create_produce_status_read(self):
        result = self.zper("topics", "create", TOPIC, "--partitions", str(PARTITIONS),
                           "--replicas", str(REPLICAS))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["partitions"], PARTITIONS)
        result = self.zper("topics", "create", TOPIC)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"TOPIC_EXISTS", result.stderr)
        self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
        for index in range(PARTITIONS):
            self.cluster.wait_isr(TOPIC, index, REPLICAS)

        for key in KEYS:
            lines = b"".join(b"%s-%d\n" % (key.encode(), seq) for seq in range(PER_KEY))
            result = self.zper("produce", TOPIC, "--cluster", "--key", key, stdin=lines)
            self.assertEqual(result.returncode, 0, result.stderr)
        #  No --cluster: --rear is given, METADATA has the topic, so it goes to the partitions
        front = self.cluster.nodes[1].endpoint("front")
        lines = b"".join(b"plain-%d\n" % seq for seq in range(UNKEYED))
        result = self.zper("produce", TOPIC, "--batch", "--front", front, stdin=lines)
        self.assertEqual(result.returncode, 0, result.stderr)

        result = self.zper("cluster", "status")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = [line.split() for line in result.stdout.decode().splitlines()
                if line.startswith(TOPIC + " ")]
        self.assertEqual(sorted(int(row[1]) for row in rows), list(range(PARTITIONS)), result.stdout)
        for row in rows:
            self.assertIn(int(row[2]), self.cluster.nodes, row)               # a leader
            self.assertEqual(sorted(row[5].split(",")), ["1", "2", "3"], row)  # full ISR
        self.assertEqual(len([line for line in result.stdout.decode().splitlines()
                              if line.startswith("node ")]), 3, result.stdout)
        result = self.zper("cluster", "status", "--json")
        merged = json.loads(result.stdout)
        self.assertEqual(sorted(merged["nodes"]), ["1", "2", "3"])
        self.assertEqual(merged["metadata"]["topics"][TOPIC]["partitions"], PARTITIONS)
        result = self.zper("topics")
        self.assertEqual(len([line for line in result.stdout.decode().splitlines()
                              if line.startswith(TOPIC + " ")]), PARTITIONS, result.stdout)

        logs = self.read_partitions()
        everything = [line for log in logs.values() for line in log]
        self.assertEqual(len(everything), len(KEYS) * PER_KEY + UNKEYED)
        self.assertEqual(len(set(everything)), len(everything), "a line stored twice")
        for key in KEYS:
            partition = fnv1a(key.encode()) % PARTITIONS
            mine = [line for line in logs[partition] if line.startswith(key.encode() + b"-")]
            self.assertEqual(mine, [b"%s-%d" % (key.encode(), seq) for seq in range(PER_KEY)],
                             "%s: not all in partition %d, in order" % (key, partition))
        for index in range(PARTITIONS):
            plain = [line for line in logs[index] if line.startswith(b"plain-")]
            self.assertEqual(len(plain), UNKEYED // PARTITIONS, "round-robin: even spread")

    def test_2_reassign_waits_for_the_move(self):
        entry = self.cluster.partition(TOPIC, 0)
        target = list(reversed(entry["replicas"]))
        result = self.zper("topics", "reassign", TOPIC, "--partition", "0", "--replicas",
                           ",".join(str(node) for node in target), "--wait")
        self.assertEqual(result.returncode, 0, result.stderr)
        entry = self.cluster.partition(TOPIC, 0, node=1)
        self.assertEqual(sorted(entry["replicas"]), sorted(target))
        self.assertFalse(entry.get("targets"), entry)


if __name__ == "__main__":
    unittest.main()
