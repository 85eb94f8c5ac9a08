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
#include <stdatomic.h>

//  Worker replies come back to the front thread here (front binds).
#define ZPER_INPROC_FRONT_REPLIES   "inproc://zper-front-replies"

//  The front actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_front_actor, broker, "front").
void
    zper_front_actor (zsock_t *pipe, void *args);

//  What the front passes to a worker thread. queued_bytes counts the
//  hand-offs sent to the worker and not yet taken: the front reads no
//  writes while it is over front.queue_bytes, so a slow disk pushes back
//  on the writers' connections instead of growing the broker's memory.
typedef struct {
    zper_broker_t *broker;
    size_t index;
    atomic_size_t queued_bytes;
} zper_front_worker_args_t;

//  A hand-off: the writes the front thread drained for one worker in one
//  turn, as ONE inproc message of two frames [entries][data] (a command
//  such as PING is a single frame). entries holds one zper_front_entry_t
//  per write, in arrival order, each followed by its routing id, its topic
//  and, for a batch or a refused write, its id, padded to
//  ZPER_FRONT_ENTRY_ALIGN. data holds the bodies of the accepted writes in
//  the same order and without gaps: a message (modes 0-2) already in the
//  storage encoding, a batch (modes 3/4) as the client sent it. So the
//  messages of consecutive writes to one topic are one encoded run.
typedef struct {
    uint64_t data_size;                 //  bytes of the body in data (0 when refused)
    uint32_t id_size;                   //  bytes of the id after the topic (0 if not kept)
    uint8_t mode;
    uint8_t status;                     //  0, or the refusal to reply (103, 104, 108, 109): no body
    uint8_t routing_id_size;
    uint8_t topic_size;
    uint8_t flags;                      //  ZPER_FRONT_ENTRY_REQ
    uint32_t received_us;               //  first entry of a hand-off: when the front received
                                        //  it (zper_hops_stamp32); else 0. Fits the padding
} zper_front_entry_t;

//  The write came from a REQ socket: its reply goes back through an empty
//  delimiter frame.
#define ZPER_FRONT_ENTRY_REQ        0x01
#define ZPER_FRONT_ENTRY_ALIGN      8

//  Bytes an entry takes in the entries frame, with its variable parts.
static inline size_t
zper_front_entry_size (const zper_front_entry_t *entry)
{
    size_t size = sizeof *entry + entry->routing_id_size + entry->topic_size + entry->id_size;
    return (size + ZPER_FRONT_ENTRY_ALIGN - 1) & ~((size_t) ZPER_FRONT_ENTRY_ALIGN - 1);
}

//  A reply pack: the replies a worker owes at the end of a turn (or once
//  ZPER_FRONT_REPLY_PACK_BYTES are packed), in order, as ONE inproc
//  message, so that the front thread wakes and receives once per flush
//  rather than once per frame. Each reply is [frames: u8] followed by
//  each frame as [size: u32, host order][bytes]: first the writer's
//  routing id, then the frames the ROUTER sends it (docs/protocol.md 2.1),
//  at most ZPER_FRONT_REPLY_FRAMES_MAX in all.

//  One front worker (zper_front_worker.c): takes hand-offs on its pipe,
//  appends, flushes by policy or when a client waits, pushes reply packs
//  to ZPER_INPROC_FRONT_REPLIES, publishes visible notes on its own bus
//  (zper_broker_bus_publisher) and pushes the acks of durable messages to
//  the ack actor (ZPER_INPROC_NOTES) as [topic][packed acks]. args is a
//  zper_front_worker_args_t.
void
    zper_front_worker_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_front_test (bool verbose);

#endif
