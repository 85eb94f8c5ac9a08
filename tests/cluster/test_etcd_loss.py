"""Losing etcd: etcd is frozen (SIGSTOP) while a producer writes partition 0. A leader that
cannot renew its lease must stop acknowledging within the lease TTL + a margin (it answers
110 or nothing), since after the TTL another node may lead. When etcd comes back (SIGCONT) the
cluster recovers: a leader again, writes acknowledged again, and nothing acknowledged before,
during or after the outage is lost (READ on every replica)."""

import time

import cluster_harness as h

TOPIC = "etcdloss"
MARGIN_S = 15                               # the failover bound's margin (test_failover)
QUIET_S = 5                                 # after TTL + margin, no acknowledgement this long
BEFORE, AFTER = 200, 200


def main():
    h.require_etcd()
    cluster = h.Cluster(3).start()
    with cluster.stopped_after():
        cluster.create_in_sync(TOPIC, 1, 3)
        _leader, epoch = cluster.leader_of(TOPIC, 0)
        producer = h.ClusterProducer(cluster, TOPIC, 0).start()
        producer.wait_acks(BEFORE, "before the outage")

        paused_at = time.time()
        cluster.etcd.pause()
        silent_from = paused_at + h.LEASE_TTL_S + MARGIN_S
        time.sleep(silent_from + QUIET_S - time.time())
        late = [when - paused_at for when, _leader in producer.ack_times if when > silent_from]
        assert not late, "acknowledged %d writes more than TTL + %d s after etcd froze " \
            "(first %.2f s after)" % (len(late), MARGIN_S, late[0])
        acked_in_outage = len(producer.acked)

        resumed_at = time.time()
        cluster.etcd.resume()
        cluster.leader_of(TOPIC, 0)
        producer.wait_acks(acked_in_outage + AFTER, "after etcd came back")
        recovered = producer.first_ack_after(resumed_at)
        producer.stop()
        assert set(producer.statuses) <= {h.NOT_LEADER, h.NOT_ENOUGH_REPLICAS}, producer.statuses

        cluster.wait_isr(TOPIC, 0, 3)
        _leader, new_epoch = cluster.leader_of(TOPIC, 0)
        assert new_epoch >= epoch
        records = cluster.wait_replicas_equal(TOPIC, 0, [1, 2, 3], len(producer.acked))
        h.check_partition_log(records, producer, "%s.0" % TOPIC)
        print("etcd loss passed: %d acked (%d uncertain), statuses %r, epoch %d -> %d, "
              "writes acknowledged again %.2f s after etcd resumed"
              % (len(producer.acked), len(producer.uncertain), producer.statuses, epoch,
                 new_epoch, recovered - resumed_at))


if __name__ == "__main__":
    main()
