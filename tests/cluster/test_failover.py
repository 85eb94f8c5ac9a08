"""Failover: a producer writes partition 0 continuously (mode 1, pipelined, re-reading
METADATA on 110 or silence); its leader is killed with SIGKILL mid-stream. A new leader with
a higher epoch must appear within lease TTL + 15 s (the issue's bound), writes must resume
through it, and every acknowledged message must be on every ISR replica exactly once, in
order. The old leader restarted on its data truncates what the others never had, catches up
(its READ equals the leader's) and rejoins the ISR."""

import time

import cluster_harness as h

TOPIC = "failover"
FAILOVER_BOUND_S = h.LEASE_TTL_S + 15
BEFORE, AFTER = 300, 300                    # acknowledgements before the kill, after failover


def main():
    h.require_etcd()
    cluster = h.Cluster(3).start()
    with cluster.stopped_after():
        cluster.create_in_sync(TOPIC, 1, 3)
        old_leader, old_epoch = cluster.leader_of(TOPIC, 0)

        producer = h.ClusterProducer(cluster, TOPIC, 0).start()
        producer.wait_acks(BEFORE, "before the kill")
        killed_at = time.time()
        cluster.nodes[old_leader].kill9()
        new_leader, new_epoch = cluster.leader_of(TOPIC, 0, above_epoch=old_epoch,
                                                  not_node=old_leader, timeout_s=FAILOVER_BOUND_S)
        elected_s = time.time() - killed_at
        assert new_epoch > old_epoch and new_leader != old_leader
        acked_at_kill = len(producer.acked)
        producer.wait_acks(acked_at_kill + AFTER, "after the failover")
        resumed = producer.first_ack_after(killed_at, not_leader=old_leader)
        assert resumed is not None, "no acknowledgement from the new leader"
        producer.stop()
        assert set(producer.statuses) <= {h.NOT_LEADER, h.NOT_ENOUGH_REPLICAS}, producer.statuses

        #  The survivors: the ISR without the dead leader, each holding every acknowledged
        #  message exactly once, in order
        survivors = [node_id for node_id in cluster.nodes if node_id != old_leader]
        isr = cluster.wait_isr(TOPIC, 0, 2)
        assert isr == survivors, "ISR %r, survivors %r" % (isr, survivors)
        records = cluster.wait_replicas_equal(TOPIC, 0, survivors, len(producer.acked))
        h.check_partition_log(records, producer, "%s.0" % TOPIC)

        #  The old leader comes back on its data: truncates, catches up, rejoins the ISR
        cluster.nodes[old_leader].restart()
        cluster.wait_isr(TOPIC, 0, 3)
        records = cluster.wait_replicas_equal(TOPIC, 0, [1, 2, 3], len(records))
        h.check_partition_log(records, producer, "%s.0" % TOPIC)
        leader, epoch = cluster.leader_of(TOPIC, 0)
        assert epoch >= new_epoch

        #  And it follows: new writes reach all three
        more = [[b"after-rejoin-%d" % n, b"x"] for n in range(50)]
        assert cluster.produce(TOPIC, 0, more) == [m[0] for m in more]
        final = cluster.wait_replicas_equal(TOPIC, 0, [1, 2, 3], len(records) + len(more))
        assert [frames for _offset, frames in final[len(records):]] == more
        print("failover passed: %d acked (%d uncertain), new leader %d epoch %d -> %d, "
              "elected after %.2f s, writes resumed after %.2f s"
              % (len(producer.acked), len(producer.uncertain), new_leader, old_epoch, new_epoch,
                 elected_s, resumed - killed_at))


if __name__ == "__main__":
    main()
