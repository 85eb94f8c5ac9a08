/*  =========================================================================
    zper_ack - the ack component: announces durable messages

    An XPUB socket (ack.bind; PUB to its SUB clients) publishes
    [topic][message id][position:int64] for every message once it is
    durable (docs/protocol.md 5.1). Front workers feed it over
    ZPER_INPROC_NOTES. The subscriptions it sees (broker->acks_wanted)
    tell the workers which topics anyone listens to: acks nobody
    subscribed to are never built. (Readers are woken by the workers'
    own visible buses, not from here: zper_broker.h.)
    ========================================================================= */

#ifndef ZPER_ACK_H_INCLUDED
#define ZPER_ACK_H_INCLUDED

#include "zper_broker.h"

//  What a front worker sends after a flush, when acks are wanted:
//  [topic][packed entries], one entry per newly durable message:
//  [id size:uint32, host order][id][position:int64 BE].
//  The ack actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_ack_actor, broker, "ack").
void
    zper_ack_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_ack_test (bool verbose);

#endif
