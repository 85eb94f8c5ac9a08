/*  =========================================================================
    zper_coordinator - a cluster node's one session with etcd

    The actor that keeps the node's lease alive, registers the node's
    endpoints, reads etcd's picture of the cluster into the table
    (zper_cluster.h), runs the leader elections of the partitions the node
    holds, writes the ISR its leaders ask for, finishes reassignments, and
    gives every leadership up before its lease can expire when etcd stops
    answering (docs/cluster.md). Only started in cluster mode.
    ========================================================================= */

#ifndef ZPER_COORDINATOR_H_INCLUDED
#define ZPER_COORDINATOR_H_INCLUDED

#include "zper_broker.h"

//  The actor; args is the zper_broker_t. Start it with zper_broker_start
//  (zper_coordinator_actor, broker, "coordinator").
void
    zper_coordinator_actor (zsock_t *pipe, void *args);

//  Self test of this class (starts its own etcd)
void
    zper_coordinator_test (bool verbose);

#endif
