/*  =========================================================================
    zper_ack - the ack component: announces durable messages

    An XPUB socket (ack.bind; PUB to its SUB clients) publishes
    [topic][message id][position:int64] for every message once it is
    durable (docs/protocol.md 5.1), and the visible bus (ZPER_INPROC_VISIBLE)
    tells the rear and the relay that a topic moved. Front workers feed it
    over ZPER_INPROC_NOTES. The subscriptions it sees tell the workers
    which topics anyone listens to (zper_ack_wanted): acks nobody
    subscribed to are never built.
    ========================================================================= */

#ifndef ZPER_ACK_H_INCLUDED
#define ZPER_ACK_H_INCLUDED

#include "zper_broker.h"

//  A note from a front worker: [topic][from][visible][visible_position]
//  (zper_visible_note_t, all int64 big-endian), then, when the note is a
//  flush's and acks are wanted, one frame of packed entries, one per newly
//  durable message: [id size:uint32, host order][id][position:int64 BE].
//  The ack actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_ack_actor, broker, "ack").
void
    zper_ack_actor (zsock_t *pipe, void *args);

//  What a worker remembers of one topic's ack interest; zero it at first.
typedef struct {
    uint64_t generation;                //  of the subscriptions it was answered from
    bool wanted;
} zper_ack_interest_t;

//  True when a current subscription of the ack socket matches topic (one
//  of its prefixes). Thread-safe and cheap: the answer is cached in
//  interest until the subscriptions change. A subscription counts from the
//  moment the ack actor has read it. The subscriptions are those of the
//  ack actor running in this process (one broker per process, like its
//  inproc endpoints); with none running, nothing is wanted.
bool
    zper_ack_wanted (const char *topic, zper_ack_interest_t *interest);

//  Self test of this class
void
    zper_ack_test (bool verbose);

#endif
