"""Jepsen-style kill loop: a producer thread per partition (3 partitions x 3 replicas, min ISR
2) writes unique ids without ever resending, re-routing through METADATA on 110 or silence,
while the leader of a random partition is killed with SIGKILL, ZPER_CLUSTER_KILLS times
(ctest: 5; the long run: ZPER_CLUSTER_KILLS=50), each killed node restarted on its data after
a moment. Before each kill the cluster is back to a full ISR, so every kill is a failover and
never a loss of quorum. At the end, for every partition: every replica serves the same log,
no id twice and in the order written, every acknowledged id in it.

    ZPER_CLUSTER_KILLS=50 test_jepsen.py [SEED]"""

import os
import random
import statistics
import sys
import time

import cluster_harness as h

TOPIC, PARTITIONS = "jepsen", 3
FAILOVER_BOUND_S = h.LEASE_TTL_S + 15
LOAD_MIN_S, LOAD_MAX_S = 0.3, 2.0           # load between the full ISR and the kill
DOWN_MIN_S, DOWN_MAX_S = 0.2, 2.0           # a killed node stays down this long


def wait_full_isr(cluster):
    for index in range(PARTITIONS):
        cluster.wait_isr(TOPIC, index, 3)


def main():
    h.require_etcd()
    kills = int(os.environ.get("ZPER_CLUSTER_KILLS", "5"))
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time())
    chance = random.Random(seed)
    print("jepsen: %d kills, seed %d" % (kills, seed), flush=True)
    cluster = h.Cluster(3).start()
    producers = []

    def stop_producers():
        for producer in producers:
            producer.running = False

    with cluster.stopped_after(on_failure=stop_producers):
        cluster.create_in_sync(TOPIC, PARTITIONS, 3, 2)
        producers = [h.ClusterProducer(cluster, TOPIC, index).start()
                     for index in range(PARTITIONS)]
        failovers = []
        for kill in range(kills):
            time.sleep(chance.uniform(LOAD_MIN_S, LOAD_MAX_S))
            for producer in producers:
                assert producer.failure is None, producer.failure
            index = chance.randrange(PARTITIONS)
            victim, epoch = cluster.leader_of(TOPIC, index)
            killed_at = time.time()
            cluster.nodes[victim].kill9()
            cluster.leader_of(TOPIC, index, above_epoch=epoch, not_node=victim,
                              timeout_s=FAILOVER_BOUND_S)
            deadline = time.time() + h.WAIT_S
            while producers[index].first_ack_after(killed_at, not_leader=victim) is None:
                assert producers[index].failure is None, producers[index].failure
                assert time.time() < deadline, "kill %d: %s.%d never acknowledged again " \
                    "(statuses %r)" % (kill, TOPIC, index, producers[index].statuses)
                time.sleep(0.02)
            failovers.append(producers[index].first_ack_after(killed_at, not_leader=victim)
                             - killed_at)
            time.sleep(chance.uniform(DOWN_MIN_S, DOWN_MAX_S))
            cluster.nodes[victim].restart()
            wait_full_isr(cluster)
            print("kill %d: node %d led %s.%d (epoch %d); writes resumed after %.2f s; "
                  "acked %s" % (kill, victim, TOPIC, index, epoch, failovers[-1],
                                [len(p.acked) for p in producers]), flush=True)
        for producer in producers:
            producer.stop()
        for producer in producers:
            assert set(producer.statuses) <= {h.NOT_LEADER, h.NOT_ENOUGH_REPLICAS}, \
                producer.statuses
            assert producer.acked, "%s: nothing acknowledged" % producer.log_topic

        wait_full_isr(cluster)
        served = 0
        for index, producer in enumerate(producers):
            records = cluster.wait_replicas_equal(TOPIC, index, [1, 2, 3], len(producer.acked))
            h.check_partition_log(records, producer, producer.log_topic)
            served += len(records)
        acked = sum(len(producer.acked) for producer in producers)
        uncertain = sum(len(producer.uncertain) for producer in producers)
        print("jepsen passed: %d kills, %d acked, %d uncertain, %d served; failover median "
              "%.2f s, max %.2f s (seed %d)"
              % (kills, acked, uncertain, served,
                 statistics.median(failovers) if failovers else 0.0,
                 max(failovers) if failovers else 0.0, seed))


if __name__ == "__main__":
    main()
