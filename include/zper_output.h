/*  =========================================================================
    zper_output - a byte budget for what the broker queues for a peer

    libzmq's high-water marks count messages, not bytes: 1,000 queued
    messages may be 100 KiB or 8 GiB. So the broker counts the bytes it
    hands libzmq for a peer that may not read (a rear or relay reader, the
    subscribers of the ack and relay PUB sockets) in one zper_output_t,
    charges each message to it, and gets the bytes back when libzmq
    releases the message: once it is written to the network, or dropped
    with the pipe of a peer that left. A sender asks zper_output_full
    before each message; what one output holds is then at most its budget
    plus one message (docs/operations.md, Limits and Memory).

    Every output of the process is also listed, with a label (which socket,
    which peer), its queued bytes and its drops, so that STATS can show the
    busiest connections (zper_output_snapshot).
    ========================================================================= */

#ifndef ZPER_OUTPUT_H_INCLUDED
#define ZPER_OUTPUT_H_INCLUDED

#include <czmq.h>
#include "zper_defaults.h"

typedef struct _zper_output_t zper_output_t;

//  An output that may hold budget bytes. Returns NULL only when out of memory.
zper_output_t *
    zper_output_new (int64_t budget);

//  Let go of the output. It lives on, thread-safe, until libzmq released
//  every message charged to it. Idempotent; nulls *self_p.
void
    zper_output_destroy (zper_output_t **self_p);

//  True when the output holds its budget or more (counting what
//  zper_output_charge_batched has yet to charge): send the peer nothing now.
bool
    zper_output_full (zper_output_t *self);

//  True when, after one more message of data_bytes in frames frames is
//  charged, the output will not be full: what a sender asks before a
//  message to know that the next one will go too (what makes an output
//  full only ever goes down behind the sender's back).
bool
    zper_output_room_after (zper_output_t *self, size_t data_bytes, size_t frames);

//  Cap the messages the output may hold (0: no cap, the default), for a
//  sender that counts a peer's queue itself (its socket's high-water mark
//  off): zper_output_full is then also true at the cap. Every message sent
//  must be charged (zper_output_charge or _batched, one call each), all by
//  the one thread that sends.
void
    zper_output_set_message_cap (zper_output_t *self, uint64_t messages);

//  True when bytes more fit in the budget (counting what
//  zper_output_charge_batched has yet to charge): for a sender that drops
//  what does not fit, so that the output never holds more than its budget.
bool
    zper_output_fits (zper_output_t *self, size_t bytes);

//  Bytes charged and not yet released: 0 once libzmq holds nothing charged.
int64_t
    zper_output_held (zper_output_t *self);

//  Charge msg to the output: bytes (the data of the message msg ends, and
//  ZPER_OUTPUT_FRAME_COST per frame of it) count as held until libzmq
//  releases msg. msg keeps its data (no copy): it becomes a reference that
//  owns the original. Returns 0, or -1 (out of memory, msg untouched).
int
    zper_output_charge (zper_output_t *self, zmq_msg_t *msg, size_t data_bytes, size_t frames);

//  The same for a stream of many small messages, at a fraction of the cost:
//  msg's bytes are added to what is sent but not yet charged, and charged
//  with msg only once that reaches a step (ZPER_OUTPUT_CHARGE_STEP, or an
//  eighth of a smaller budget) or fills the budget. Bytes charged with a later message are held until that one is
//  released, so the output counts more than libzmq holds, never less than
//  it by more than one step. Only the thread that sends may call it.
int
    zper_output_charge_batched (zper_output_t *self, zmq_msg_t *msg, size_t data_bytes,
                                size_t frames);

//  Queue the first frame of a message on an XPUB socket that runs with
//  ZMQ_XPUB_NODROP (so that libzmq says when a subscriber's queue is full,
//  instead of dropping in silence), for every subscriber whose queue has
//  room, without blocking. Returns 0 when every subscriber that wants it
//  has it, 1 when one or more miss this message because their queue was
//  full (the caller counts it), -1 on another libzmq error. The rest of the
//  message follows with ordinary sends.
int
    zper_output_publish_first (void *xpub, const void *data, size_t size);

//  Label the output for STATS: socket is the broker socket's name ("rear",
//  "relay", "ack", "relay.pub", "front"), peer who it queues for (a routing
//  id in hex; "*" for the subscribers of a PUB, who share one output).
//  Both are copied, cut to ZPER_OUTPUT_SOCKET_MAX / ZPER_OUTPUT_PEER_MAX,
//  and any byte outside [A-Za-z0-9._*-] becomes '_' (labels go into JSON
//  and Prometheus text as they are). peer may be NULL.
void
    zper_output_set_label (zper_output_t *self, const char *socket, const char *peer);

//  The same, peer given as the bytes of a routing id (written in hex).
void
    zper_output_set_label_id (zper_output_t *self, const char *socket, const void *routing_id,
                              size_t routing_id_size);

//  Count count messages a sender dropped for this output's peer (its queue
//  or budget was full). Any thread.
void
    zper_output_dropped (zper_output_t *self, uint64_t count);

//  Messages dropped for this output's peer so far.
uint64_t
    zper_output_drops (zper_output_t *self);

//  One output in a snapshot.
typedef struct {
    char socket [ZPER_OUTPUT_SOCKET_MAX];
    char peer [ZPER_OUTPUT_PEER_MAX];
    int64_t queued_bytes;               //  zper_output_held
    uint64_t dropped;
} zper_output_peer_t;

//  What every output of the process holds together.
typedef struct {
    size_t count;                       //  live outputs (an output lives until libzmq released
                                        //  all it was charged, after its owner let go)
    int64_t queued_bytes;               //  bytes they hold
    uint64_t dropped;                   //  messages dropped for any peer since the process started
} zper_output_totals_t;

//  Fill totals, and return the busiest outputs (most queued bytes first,
//  then most drops): a new array of *listed = at most max_peers entries,
//  which the caller frees (free), or NULL when it lists none. Costs
//  O(outputs log outputs) under the registry's mutex.
zper_output_peer_t *
    zper_output_snapshot (zper_output_totals_t *totals, size_t max_peers, size_t *listed);

//  Self test of this class
void
    zper_output_test (bool verbose);

#endif
