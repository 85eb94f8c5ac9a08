/*  =========================================================================
    zper_front - the write side of the broker (front, default :5555)

    A ROUTER socket takes writes from DEALER, REQ and (ZMTP/2.0) PUSH
    clients whose identity names the topic; front.workers worker threads
    append them to the log, one topic always on the same worker, and reply
    once the data is durable (docs/protocol.md sections 1-2).
    ========================================================================= */

#ifndef ZPER_FRONT_H_INCLUDED
#define ZPER_FRONT_H_INCLUDED

#include "zper_broker.h"
#include "zper_identity.h"

//  Worker replies come back to the front thread here (front binds).
#define ZPER_INPROC_FRONT_REPLIES   "inproc://zper-front-replies"

//  The front actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_front_actor, broker, "front").
void
    zper_front_actor (zsock_t *pipe, void *args);

//  What the front passes to a worker thread.
typedef struct {
    zper_broker_t *broker;
    size_t index;
} zper_front_worker_args_t;

//  One front worker (zper_front_worker.c): takes [identity struct][routing
//  id][frames...] messages on its pipe, appends, flushes by policy or when
//  a client waits, pushes replies to ZPER_INPROC_FRONT_REPLIES and notes
//  to ZPER_INPROC_NOTES. args is a zper_front_worker_args_t.
void
    zper_front_worker_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_front_test (bool verbose);

#endif
