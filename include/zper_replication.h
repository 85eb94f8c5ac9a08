/*  =========================================================================
    zper_replication - the data path between cluster nodes

    One actor per cluster node (started only when broker->cluster is not
    NULL). As a leader it binds a ROUTER on cluster.replication.bind and
    answers its followers' REPLICA_EPOCH and REPLICA_FETCH (docs/cluster.md,
    "Replication wire"), tracks each follower's progress, computes the
    high-watermark (HW), proposes ISR changes to the coordinator and tells
    the front workers when a partition's HW moves. As a follower it keeps
    one DEALER per leader node, cuts its log where it parts from the
    leader's (KIP-101/279), then copies the leader's records byte for byte,
    fdatasyncs them and reports its durable end.

    The one thing to know: a follower's log is only ever written by this
    actor, under the partition's writer lock (zper_cluster_follow_begin),
    and a leader's HW only moves over a set that holds the ISR etcd
    confirmed, so a write acknowledged at HW is on every in-sync replica.
    ========================================================================= */

#ifndef ZPER_REPLICATION_H_INCLUDED
#define ZPER_REPLICATION_H_INCLUDED

#include "zper_broker.h"

//  The replication actor. args is the zper_broker_t, whose cluster must not
//  be NULL. Start it with zper_broker_start (zper_replication_actor,
//  broker, "replication").
void
    zper_replication_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_replication_test (bool verbose);

#endif
