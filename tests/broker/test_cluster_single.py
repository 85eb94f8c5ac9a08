"""Cluster mode's additions as a single node sees them: the cluster commands answer 113
NO_CLUSTER, a partition name ("orders.1") in an identity is an ordinary topic, and the
cluster.* config keys are checked at start. The multi-node behaviour is tests/cluster."""

import json
import time

from zperd_harness import (BrokerTestCase, OK, INVALID_ARGUMENT, decode_read_batch,
                           i32, i64, identity, main)
from test_daemon import run, write_config

NO_CLUSTER = 113
WAIT_S = 15


class SingleNode(BrokerTestCase):

    def counters(self):
        reply = self.broker.request(b"STATS")
        self.assertEqual(reply[0], bytes([OK]))
        return json.loads(reply[1])["counters"]

    def test_cluster_commands_answer_113_on_a_single_node(self):
        for request in ([b"METADATA"], [b"METADATA", b"orders"],
                        [b"CREATE", b"orders", i32(3), i32(3), i32(0)],
                        [b"REASSIGN", b"orders", i32(0), b"1,2,4"], [b"CLUSTER"],
                        #  Even malformed: the command itself does not exist here
                        [b"CREATE", b"orders"], [b"CLUSTER", b"extra"]):
            self.assertEqual(self.broker.request(*request), [bytes([NO_CLUSTER])], request)
        self.assertServing()

    def test_a_partition_name_is_an_ordinary_topic_on_a_single_node(self):
        messages = [[b"id-%d" % n, b"partition one, message %d" % n] for n in range(3)]
        self.assertEqual(self.broker.write("orders.1", messages), [[m[0]] for m in messages])
        reply = self.broker.request(b"READ", b"orders.1", i64(0), i32(1 << 20), i32(0))
        self.assertEqual(reply[0], bytes([OK]))
        records = decode_read_batch(reply[1])
        self.assertEqual([record[0] for record in records], [0, 1, 2])
        self.assertEqual([record[2] for record in records], messages)
        #  The legacy reader names it in its identity, seed revision too
        self.assertEqual(self.broker.fetch_all("orders.1"), messages)
        reply = self.broker.request(b"OFFSET", i64(-1), routing_id=identity("orders.1",
                                                                             revision="seed"))
        self.assertEqual(reply[0], bytes([OK]))
        self.assertIn(b"orders.1", self.broker.request(b"TOPICS")[1:])
        #  Plain "orders" is another topic
        self.assertEqual(self.broker.bounds("orders")[1], 0)

    def test_malformed_partition_names_are_refused(self):
        for topic in (".a", "a.", "a..1", "a.b", "a.123456", "a.1.2"):
            reply = self.broker.request(b"FETCH", i64(0), i64(100), routing_id=identity(topic))
            self.assertEqual(reply, [bytes([INVALID_ARGUMENT])], topic)
        before = self.counters()["bad_identity"]
        sock = self.broker.writer(identity("a.b", mode=1))
        sock.send_multipart([b"id-bad", b"never stored"])
        deadline = time.time() + WAIT_S
        while self.counters()["bad_identity"] <= before:
            self.assertLess(time.time(), deadline, "the bad identity was never counted")
            time.sleep(0.05)
        self.broker.close(sock)
        self.assertNotIn(b"a.b", self.broker.request(b"TOPICS")[1:])
        self.assertServing()

    def test_stats_has_the_cluster_counters_at_zero(self):
        counters = self.counters()
        self.assertEqual((counters["not_leader"], counters["not_enough_replicas"]), (0, 0))


class ClusterConfig(BrokerTestCase):
    """Start-up errors of the cluster.* keys: one line, exit code 2, no etcd needed."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def assertConfigError(self, text, expected):
        result = run("-c", write_config(text), "--check-config")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn(expected, result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)

    def test_etcd_without_a_node_id_is_refused(self):
        self.assertConfigError("cluster.etcd = http://127.0.0.1:2379\n",
                               "cluster.etcd is set but cluster.node is not")

    def test_a_wildcard_bind_needs_an_advertised_host(self):
        base = "cluster.etcd = http://127.0.0.1:2379\ncluster.node = 2\n"
        self.assertConfigError(base + "front.bind = tcp://*:5555\n", "cluster.advertise_host")
        self.assertConfigError(base + "cluster.replication.bind = tcp://0.0.0.0:5560\n",
                               "cluster.advertise_host")
        result = run("-c", write_config(base + "front.bind = tcp://*:5555\n"
                                        "cluster.advertise_host = node2.example\n"),
                     "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("cluster.node = 2", result.stdout)
        self.assertIn('cluster.advertise_host = "node2.example"', result.stdout)

    def test_out_of_range_values_are_refused(self):
        self.assertConfigError("cluster.lease_ttl = 1\n", "cluster.lease_ttl")
        self.assertConfigError("cluster.lease_ttl = 61\n", "cluster.lease_ttl")
        self.assertConfigError("cluster.node = 65536\n", "cluster.node")

    def test_a_single_node_with_wildcard_binds_needs_no_cluster_keys(self):
        result = run("-c", write_config("front.bind = tcp://*:5555\n"), "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("# cluster.etcd is not set", result.stdout)
        self.assertIn("# cluster.node is not set", result.stdout)


if __name__ == "__main__":
    main()
