/*  =========================================================================
    zper_ack - the ack component: announces durable messages

    A PUB socket (ack.bind) publishes [topic][message id][position:int64]
    for every message once it is durable (docs/protocol.md 5.1), and the
    durable bus (ZPER_INPROC_VISIBLE) tells the rear and the relay that a
    topic moved. Front workers feed it over ZPER_INPROC_NOTES.
    ========================================================================= */

#ifndef ZPER_ACK_H_INCLUDED
#define ZPER_ACK_H_INCLUDED

#include "zper_broker.h"

//  A note from a front worker: [topic][from][durable][durable_position]
//  then one [message id][position:int64] pair per newly durable message.
//  The ack actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_ack_actor, broker, "ack").
void
    zper_ack_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_ack_test (bool verbose);

#endif
