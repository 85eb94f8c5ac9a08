"""Replication on a healthy cluster: etcd + 3 nodes, a topic of 3 partitions x 3 replicas.
Every node's METADATA agrees on the layout (leaders, epochs, an ISR of 3); 300 acknowledged
messages per partition are served, exactly and in order, by READ on every replica; writes
to a follower or to a name that is not a created partition get 110; a second CREATE gets
114 and bad CREATE arguments 103. (A single node's 113 is tests/broker/test_cluster_single.)"""

import json
import time
import unittest

import cluster_harness as h

TOPIC, PARTITIONS, REPLICAS, COUNT = "orders", 3, 3, 300
OTHER = "other"                             # the refusal tests' topic: 1 partition x 3


class Replication(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = h.Cluster(3).start()
        cls.created = cls.cluster.create_topic(TOPIC, PARTITIONS, REPLICAS, 0)
        for index in range(PARTITIONS):
            cls.cluster.wait_isr(TOPIC, index, REPLICAS)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def agreed_topic(self, topic):
        """The topic's METADATA once every node shows the same one (nodes poll etcd)."""
        deadline = time.time() + h.WAIT_S
        while True:
            views = [self.cluster.metadata(node_id, topic) for node_id in self.cluster.nodes]
            shown = [json.dumps(view["topics"].get(topic), sort_keys=True) for view in views]
            if len(set(shown)) == 1:
                return views[0]["topics"][topic]
            self.assertLess(time.time(), deadline, "nodes disagree on %s:\n%s" % (topic, shown))
            time.sleep(0.1)

    def test_create_replies_the_round_robin_layout(self):
        self.assertEqual(self.created[0], bytes([h.OK]), self.created)
        layout = json.loads(self.created[1])
        self.assertEqual(layout["partitions"], PARTITIONS)
        self.assertEqual(layout["min_insync_replicas"], 2)
        self.assertEqual(len(layout["replicas"]), PARTITIONS)
        for replicas in layout["replicas"]:
            self.assertEqual(sorted(replicas), [1, 2, 3])
        #  Round robin: each node is the first replica of one partition
        self.assertEqual(sorted(replicas[0] for replicas in layout["replicas"]), [1, 2, 3])

    def test_every_node_shows_the_same_leaders_epochs_and_isr(self):
        topic = self.agreed_topic(TOPIC)
        layout = json.loads(self.created[1])
        self.assertEqual(topic["partitions"], PARTITIONS)
        self.assertEqual(topic["min_insync_replicas"], 2)
        self.assertEqual([entry["id"] for entry in topic["partition"]], list(range(PARTITIONS)))
        for entry in topic["partition"]:
            self.assertEqual(entry["replicas"], layout["replicas"][entry["id"]])
            self.assertIn(entry["leader"], entry["replicas"])
            self.assertEqual(sorted(entry["isr"]), [1, 2, 3])
            self.assertGreaterEqual(entry["epoch"], 0)
        #  Every node's METADATA lists the three live nodes with their advertised endpoints
        view = self.cluster.metadata(2)
        for node_id, node in self.cluster.nodes.items():
            shown = view["nodes"][str(node_id)]
            for name, port in (("front", "front"), ("rear", "rear"),
                               ("replication", "replication")):
                self.assertEqual(shown[name], node.endpoint(port))
        #  Each node's own CLUSTER view: the leader says leader, the others follow it
        deadline = time.time() + h.WAIT_S
        while True:
            problems = []
            for entry in topic["partition"]:
                name = "%s.%d" % (TOPIC, entry["id"])
                for node_id in entry["replicas"]:
                    mine = self.cluster.cluster_view(node_id)["partitions"].get(name)
                    want = "leader" if node_id == entry["leader"] else "follower"
                    if not mine or mine["role"] != want or mine["epoch"] != entry["epoch"] or \
                            (want == "follower" and mine["leader"] != entry["leader"]):
                        problems.append((node_id, name, mine))
            if not problems:
                break
            self.assertLess(time.time(), deadline, "CLUSTER views: %r" % problems)
            time.sleep(0.1)

    def test_acknowledged_messages_are_on_every_replica_in_order(self):
        sent = {}
        for index in range(PARTITIONS):
            messages = [[b"p%d-%d" % (index, n), b"partition %d message %d" % (index, n)]
                        for n in range(COUNT)]
            errors = []
            acked = self.cluster.produce(TOPIC, index, messages, errors=errors)
            self.assertEqual(errors, [])
            self.assertEqual(acked, [message[0] for message in messages])
            sent[index] = messages
        for index in range(PARTITIONS):
            records = self.cluster.wait_replicas_equal(TOPIC, index, [1, 2, 3], COUNT)
            self.assertEqual([offset for offset, _frames in records], list(range(COUNT)))
            self.assertEqual([frames for _offset, frames in records], sent[index])
        #  The legacy FETCH of a follower serves the same bytes as READ
        follower = [node_id for node_id in (1, 2, 3)
                    if node_id != self.cluster.leader_of(TOPIC, 0)[0]][0]
        self.assertEqual(self.cluster.nodes[follower].fetch_all("%s.0" % TOPIC), sent[0])

    def test_a_write_to_a_follower_gets_110_and_is_not_stored(self):
        self.cluster.create_topic(OTHER, 1, 3, 0)
        self.cluster.wait_isr(OTHER, 0, 3)
        leader, _epoch = self.cluster.leader_of(OTHER, 0)
        for follower in (node_id for node_id in (1, 2, 3) if node_id != leader):
            errors = []
            acked = self.cluster.produce(OTHER, 0, [[b"f%d" % follower, b"never"]],
                                         node=follower, errors=errors)
            self.assertEqual(acked, [])
            self.assertEqual(errors, [(b"f%d" % follower, h.NOT_LEADER)])
        #  A write the leader acknowledges after the refusals is the partition's first message
        self.assertEqual(self.cluster.produce(OTHER, 0, [[b"first", b"kept"]]), [b"first"])
        records = self.cluster.wait_replicas_equal(OTHER, 0, [1, 2, 3], 1)
        self.assertEqual(records, [(0, [b"first", b"kept"])])

    def test_a_write_to_a_name_that_is_no_created_partition_gets_110(self):
        leader, _epoch = self.cluster.leader_of(TOPIC, 0)
        for topic, index in ((TOPIC, PARTITIONS), (TOPIC, 99), ("nosuchtopic", 0), (TOPIC, None)):
            errors = []
            acked = self.cluster.produce(topic, index, [[b"x", b"never"]], node=leader,
                                         errors=errors)
            self.assertEqual((acked, errors), ([], [(b"x", h.NOT_LEADER)]), (topic, index))
            name = topic if index is None else "%s.%d" % (topic, index)
            self.assertEqual(self.cluster.read_all(leader, name), [])
            reply = self.cluster.nodes[leader].request(b"TOPICS")
            self.assertNotIn(name.encode(), reply[1:])

    def test_a_second_create_gets_114(self):
        self.assertEqual(self.cluster.create_topic(TOPIC, PARTITIONS, REPLICAS, 0),
                         [bytes([h.TOPIC_EXISTS])])
        self.assertEqual(self.cluster.create_topic(TOPIC, 1, 1, 1, node=3),
                         [bytes([h.TOPIC_EXISTS])])
        #  The layout did not change
        self.assertEqual(self.cluster.metadata(1, TOPIC)["topics"][TOPIC]["partitions"],
                         PARTITIONS)

    def test_bad_create_arguments_get_103(self):
        for name, partitions, replicas, min_isr in (
                ("bad.name", 1, 1, 0), ("", 1, 1, 0), ("x" * 59, 1, 1, 0),
                ("toomany", 1, 4, 0),             # more replicas than live nodes
                ("badisr", 1, 3, 4), ("badisr", 1, 2, -1)):
            self.assertEqual(self.cluster.create_topic(name, partitions, replicas, min_isr),
                             [bytes([h.INVALID_ARGUMENT])], (name, partitions, replicas, min_isr))
        reply = h.request(self.cluster.nodes[1].endpoint("rear"), [b"CREATE", b"short"])
        self.assertEqual(reply, [bytes([h.INVALID_ARGUMENT])])
        view = self.cluster.metadata(1)
        for name in ("bad.name", "toomany", "badisr"):
            self.assertNotIn(name, view["topics"])


if __name__ == "__main__":
    h.require_etcd()
    unittest.main(verbosity=2)
