/*  =========================================================================
    zper_front - the front thread: ROUTER in, workers by topic, replies out

    The one thing to know: this thread owns the ROUTER socket, does no disk
    work and allocates nothing per message. It receives each frame into one
    reused zmq_msg_t, finds the write's identity in a small cache keyed by
    routing id (a producer sends millions of messages under one id), and
    appends the write to the hand-off of the worker that owns its topic
    (zper_identity_route: the client's hash byte is never used, so two
    clients of one topic always land on one worker). A message is copied
    once, straight into the storage encoding; each worker gets one inproc
    message per drain turn (or per ZPER_FRONT_HANDOFF_BYTES), handed over
    without a copy (zper_front.h describes the hand-off).

    Security (security.curve = 1): this thread checks each write's key
    against its topic on the write's first frame after the routing id
    (libzmq 4.3 puts the sender's key on every frame it received, but not
    on the routing id a ROUTER makes up after a poll), before anything of
    the write is copied: a write
    outside the key's grant is handed over refused (109, in order like any
    refusal), one from a key that left security.keys is dropped unanswered.
    With security off the guard is NULL and the check is one test of it.

    Refusals keep their order: a write whose identity does not parse is
    answered here with status 103 (docs/protocol.md 2.1) and never reaches
    a worker, but a write that is too large or malformed is handed to its
    worker marked refused, so its reply leaves in order with the replies
    of the writes before it. Workers push replies back over an inproc PULL
    and this thread forwards them, because only it may use the ROUTER.

    Backpressure never blocks this thread: while a worker's queue of
    hand-offs is over front.queue_bytes, it stops reading the ROUTER
    (the writers' connections fill and push back) and keeps answering
    heartbeats and forwarding replies.

    Replies are bounded per writer by bytes (front.reply_budget): each
    writer's replies are charged to a zper_output_t from the moment they
    are given to the ROUTER until libzmq releases them (written to the
    connection, or dropped with it), in steps, so that tracking costs one
    allocation per ZPER_OUTPUT_CHARGE_STEP bytes of replies, not one per
    reply. A reply to a writer whose output is full is dropped and
    counted, and the writer's next writes are refused with 108
    SLOW_CLIENT until what it holds falls to half the budget: so a writer
    that never reads costs at most front.reply_budget bytes plus one
    reply, whatever the size of its ids.

    Stopping: stop reading the ROUTER, stop the workers (each flushes and
    pushes its last replies and notes), send those replies, then close the
    ROUTER with a linger so they leave the process.
    ========================================================================= */

#include "zper_front.h"
#include "zper_ack.h"
#include "zper_hops.h"
#include "zper_partition.h"
#include "zper_pool.h"
#include "zper_output.h"
#include "zper_wire.h"
#include <assert.h>
#include <errno.h>

#define ROUTING_ID_MAX  255             //  ZMTP: a routing id is at most 255 bytes

//  A parsed identity, remembered under its routing id.
typedef struct {
    uint8_t routing_id [ROUTING_ID_MAX];
    size_t routing_id_size;             //  0: slot empty
    uint8_t mode;
    uint8_t topic_size;
    char topic [ZPER_TOPIC_MAX + 1];
    size_t worker;
} identity_slot_t;

//  A routing id, as a key of the writers table.
typedef struct {
    const uint8_t *data;
    size_t size;
} routing_key_t;

//  A writer with unread replies. Its output lives on while libzmq holds
//  replies charged to it, so a release after the front stopped is safe.
typedef struct {
    routing_key_t key;                  //  points into routing_id
    uint8_t routing_id [ROUTING_ID_MAX];
    zper_output_t *output;              //  bytes of replies libzmq still holds
    bool slow;                          //  a reply was dropped: writes get 108
} reply_writer_t;

//  A reply to send: [routing id][reply frames...], each frame pointing
//  into a worker's pack (zper_front.h) or into what this thread holds.
typedef struct {
    const uint8_t *frames [ZPER_FRONT_REPLY_FRAMES_MAX];
    size_t sizes [ZPER_FRONT_REPLY_FRAMES_MAX];
    size_t count;
    reply_writer_t *writer;
    size_t cost;                        //  what it holds while libzmq queues it
} reply_t;

//  The writes drained for one worker and not yet handed to it.
typedef struct {
    uint8_t *entries;
    size_t entries_size, entries_capacity;
    uint8_t *data;
    size_t data_size, data_capacity;
} handoff_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    void *router_handle;                //  its libzmq socket, resolved once: used per frame
    zsock_t *replies;
    zper_pool_t *workers;
    zper_front_worker_args_t *worker_args;
    handoff_t *handoffs;                //  one per worker
    size_t worker_count;
    identity_slot_t *identities;        //  ZPER_FRONT_IDENTITY_CACHE slots
    identity_slot_t *last_identity;     //  the slot that answered last
    zmq_msg_t part;                     //  the frame being received
    int64_t last_bad_identity_log_ms;
    zhashx_t *writers;                  //  routing_key_t -> reply_writer_t, while they hold replies
    reply_writer_t *last_writer;        //  the writer that got the last reply
    size_t slow_writers;                //  writers refused with 108
    int64_t last_slow_log_ms;
    zper_guard_t *guard;                //  security on: who may write what; else NULL
    int64_t guard_due_ms;               //  monotonic: when to refresh the guard
} front_t;

//  Frames beyond this size make libzmq drop the connection before they are
//  buffered: twice max_message (and a little) leaves room to answer
//  oversized frames with 104 while a hostile length never allocates gigabytes.
static int64_t
s_wire_frame_limit (const zper_config_t *config)
{
    return 2 * (int64_t) config->max_message + ZPER_FRONT_FRAME_SLACK;
}

//  Make room for more bytes after used. Buffers at least double, so many
//  small writes cost few reallocations, but a large write (a batch) gets
//  just its size: doubling past it would waste up to half of a big buffer.
static uint8_t *
s_reserve (uint8_t **buffer, size_t *capacity, size_t used, size_t more)
{
    if (used + more > *capacity) {
        size_t wanted = *capacity? 2 * *capacity: ZPER_FRONT_HANDOFF_START_BYTES;
        if (wanted < used + more)
            wanted = used + more;
        *buffer = (uint8_t *) realloc (*buffer, wanted);
        assert (*buffer);
        *capacity = wanted;
    }
    return *buffer + used;
}

static void
s_append_bytes (uint8_t **buffer, size_t *capacity, size_t *used, const void *data, size_t size)
{
    if (size)
        memcpy (s_reserve (buffer, capacity, *used, size), data, size);
    *used += size;
}

static bool
s_more (front_t *self)
{
    return zmq_msg_more (&self->part) == 1;
}

static int
s_receive_part (front_t *self, int flags)
{
    return zmq_msg_recv (&self->part, self->router_handle, flags);
}

//  FNV-1a of a routing id, as zper_identity_route hashes a topic.
static size_t
s_routing_hash (const void *key)
{
    const routing_key_t *routing = (const routing_key_t *) key;
    uint32_t hash = 2166136261u;
    for (size_t index = 0; index < routing->size; index++)
        hash = (hash ^ routing->data [index]) * 16777619u;
    return hash;
}

static int
s_routing_compare (const void *left, const void *right)
{
    const routing_key_t *one = (const routing_key_t *) left, *other = (const routing_key_t *) right;
    if (one->size != other->size)
        return one->size < other->size? -1: 1;
    return memcmp (one->data, other->data, one->size);
}

//  The writers table's destructor
static void
s_reply_writer_destroy (void **item)
{
    reply_writer_t *writer = (reply_writer_t *) *item;
    zper_output_destroy (&writer->output);
    free (writer);
    *item = NULL;
}

//  The reply state of a routing id; a new one when create is set, else
//  NULL for a writer that holds no reply.
static reply_writer_t *
s_reply_writer (front_t *self, const uint8_t *routing_id, size_t size, bool create)
{
    routing_key_t key = { routing_id, size };
    reply_writer_t *writer = self->last_writer;
    if (writer && s_routing_compare (&writer->key, &key) == 0)
        return writer;
    writer = (reply_writer_t *) zhashx_lookup (self->writers, &key);
    if (!writer && create) {
        writer = (reply_writer_t *) zmalloc (sizeof (reply_writer_t));
        memcpy (writer->routing_id, routing_id, size);
        writer->key = (routing_key_t) { writer->routing_id, size };
        writer->output = zper_output_new (self->broker->config->front_reply_budget);
        assert (writer->output);
        zper_output_set_label_id (writer->output, "front", routing_id, size);
        zhashx_insert (self->writers, &writer->key, writer);
    }
    if (writer)
        self->last_writer = writer;
    return writer;
}

//  A slow writer stays refused until what it holds falls to half its
//  budget (so it reads a good part before it writes again); returns
//  whether it is still refused.
static bool
s_writer_still_slow (front_t *self, reply_writer_t *writer)
{
    if (zper_output_held (writer->output) > self->broker->config->front_reply_budget / 2)
        return true;
    writer->slow = false;
    self->slow_writers--;
    return false;
}

//  True when writes from routing id are refused with 108.
static bool
s_writer_slow (front_t *self, const uint8_t *routing_id, size_t size)
{
    if (!self->slow_writers)
        return false;
    reply_writer_t *writer = s_reply_writer (self, routing_id, size, false);
    return writer && writer->slow && s_writer_still_slow (self, writer);
}

//  Forget the writers that hold no reply and are not refused, so that the
//  table holds only writers with replies in flight, however many come and
//  go. Called once per heartbeat.
static void
s_writers_sweep (front_t *self)
{
    zlistx_t *idle = zlistx_new ();
    for (reply_writer_t *writer = (reply_writer_t *) zhashx_first (self->writers); writer;
         writer = (reply_writer_t *) zhashx_next (self->writers))
        if ((!writer->slow || !s_writer_still_slow (self, writer))
        &&  zper_output_held (writer->output) == 0)
            zlistx_add_end (idle, writer);
    for (reply_writer_t *writer = (reply_writer_t *) zlistx_first (idle); writer;
         writer = (reply_writer_t *) zlistx_next (idle))
        zhashx_delete (self->writers, &writer->key);
    zlistx_destroy (&idle);
    self->last_writer = NULL;
}

//  A reply over its writer's budget is dropped: count it, refuse the
//  writer's next writes, and say so in the log (once a second at most).
static void
s_reply_drop (front_t *self, reply_writer_t *writer)
{
    zper_stats_count (self->broker->stats, ZPER_COUNTER_REPLY_DROPPED);
    zper_output_dropped (writer->output, 1);
    if (!writer->slow) {
        writer->slow = true;
        self->slow_writers++;
    }
    int64_t now = zclock_time ();
    if (now - self->last_slow_log_ms >= ZPER_LOG_INTERVAL_MS) {
        zsys_warning ("front: a writer does not read its replies (over front.reply_budget = %lld"
                      " bytes): reply dropped, its writes are refused with 108",
                      (long long) self->broker->config->front_reply_budget);
        self->last_slow_log_ms = now;
    }
}

//  Load a reply's writer (created on first use) and cost: its frames after
//  the routing id, each counted with what libzmq keeps per queued frame.
static void
s_reply_load (front_t *self, reply_t *reply)
{
    assert (reply->count >= 2);                 //  [routing id][reply...]
    reply->cost = 0;
    for (size_t index = 1; index < reply->count; index++)
        reply->cost += reply->sizes [index] + ZPER_OUTPUT_FRAME_COST;
    reply->writer = s_reply_writer (self, reply->frames [0], reply->sizes [0], true);
}

//  Send a loaded reply within its writer's budget, or drop it if it does
//  not fit. Its last frame carries the charge of what was
//  sent since the last charge (zper_output_charge_batched): one
//  connection's queue is FIFO, so when libzmq releases that frame, the
//  replies before it have left too. The ROUTER consumes the routing id
//  as it is sent, so that frame is not copied; a send that fails (the
//  writer left) ends the reply.
static void
s_reply_deliver (front_t *self, reply_t *reply)
{
    zper_output_t *output = reply->writer->output;
    if (!zper_output_fits (output, reply->cost)) {
        s_reply_drop (self, reply->writer);
        return;
    }
    if (zmq_send_const (self->router_handle, reply->frames [0], reply->sizes [0],
                        ZMQ_SNDMORE) == -1)
        return;
    size_t last = reply->count - 1;
    for (size_t index = 1; index < last; index++)
        if (zmq_send (self->router_handle, reply->frames [index], reply->sizes [index],
                      ZMQ_SNDMORE) == -1)
            return;
    zmq_msg_t frame;
    zmq_msg_init_size (&frame, reply->sizes [last]);
    if (reply->sizes [last])
        memcpy (zmq_msg_data (&frame), reply->frames [last], reply->sizes [last]);
    if (zper_output_charge_batched (output, &frame, reply->cost, 0))
        zsys_warning ("front: out of memory: a reply goes out uncounted");
    if (zmq_msg_send (&frame, self->router_handle, 0) == -1)
        zmq_msg_close (&frame);
}

//  Read the reply at *cursor of a worker's pack that ends at end
//  (zper_front.h) and step past it. Returns 0, or -1 at the pack's end.
static int
s_reply_unpack (const uint8_t **cursor, const uint8_t *end, reply_t *reply)
{
    if (*cursor >= end)
        return -1;
    const uint8_t *next = *cursor;
    reply->count = *next++;
    //  Workers build packs: one that does not parse is a bug here
    assert (reply->count >= 2 && reply->count <= ZPER_FRONT_REPLY_FRAMES_MAX);
    for (size_t index = 0; index < reply->count; index++) {
        uint32_t size;
        assert (next + sizeof size <= end);
        memcpy (&size, next, sizeof size);
        next += sizeof size;
        assert (size <= (size_t) (end - next));
        reply->frames [index] = next;
        reply->sizes [index] = size;
        next += size;
    }
    *cursor = next;
    return 0;
}

//  The cached identity of a routing id, parsed on a miss. Returns NULL
//  with *problem set when it does not parse (refusals are not cached).
static const identity_slot_t *
s_identity (front_t *self, const uint8_t *routing_id, size_t size, const char **problem)
{
    //  A busy producer sends message after message: try its slot first
    identity_slot_t *slot = self->last_identity;
    if (slot && slot->routing_id_size == size && memcmp (slot->routing_id, routing_id, size) == 0)
        return slot;
    routing_key_t key = { routing_id, size };
    slot = &self->identities [s_routing_hash (&key) % ZPER_FRONT_IDENTITY_CACHE];
    self->last_identity = slot;
    if (slot->routing_id_size == size && memcmp (slot->routing_id, routing_id, size) == 0)
        return slot;
    zper_identity_t identity;
    if (zper_identity_parse (routing_id, size, &identity, problem)) {
        self->last_identity = NULL;
        return NULL;
    }
    memcpy (slot->routing_id, routing_id, size);
    slot->routing_id_size = size;
    slot->mode = identity.mode;
    slot->topic_size = (uint8_t) strlen (identity.topic);
    memcpy (slot->topic, identity.topic, slot->topic_size + 1);
    slot->worker = zper_identity_route (identity.topic, zper_pool_size (self->workers));
    return slot;
}

//  Receive and drop what is left of the current message.
static void
s_skip_rest (front_t *self)
{
    while (s_more (self) && s_receive_part (self, 0) != -1)
        ;
}

//  Answer a write whose identity does not parse: [id][103], through a REQ
//  delimiter when one is there. The routing id has been received.
static void
s_reject_identity (front_t *self, const uint8_t *routing_id, size_t routing_id_size,
                   const char *problem)
{
    zper_stats_count (self->broker->stats, ZPER_COUNTER_BAD_IDENTITY);
    int64_t now = zclock_time ();
    if (now - self->last_bad_identity_log_ms >= ZPER_LOG_INTERVAL_MS) {
        zsys_warning ("front: write refused: bad identity (%s)", problem);
        self->last_bad_identity_log_ms = now;
    }
    //  [routing id][delimiter]?[id][status], within the writer's budget;
    //  the id is the frame just received, the status a byte here
    reply_t reply = { .frames = { routing_id }, .sizes = { routing_id_size }, .count = 1 };
    bool has_id = s_more (self) && s_receive_part (self, 0) != -1;
    if (has_id && zmq_msg_size (&self->part) == 0 && s_more (self)) {
        reply.frames [reply.count] = (const uint8_t *) "";     //  the REQ delimiter
        reply.sizes [reply.count++] = 0;
        has_id = s_receive_part (self, 0) != -1;
    }
    //  An oversized id is not echoed back
    bool echo = has_id && zmq_msg_size (&self->part) <= self->broker->config->max_message;
    reply.frames [reply.count] = echo? (const uint8_t *) zmq_msg_data (&self->part)
                                     : (const uint8_t *) "";
    reply.sizes [reply.count++] = echo? zmq_msg_size (&self->part): 0;
    uint8_t status = ZPER_STATUS_INVALID_ARGUMENT;
    reply.frames [reply.count] = &status;
    reply.sizes [reply.count++] = 1;
    zper_stats_status (self->broker->stats, ZPER_STATS_FRONT, status);
    s_reply_load (self, &reply);
    s_reply_deliver (self, &reply);
    s_skip_rest (self);
}

//  Copy the current frame into the hand-off's data in the storage
//  encoding (modes 0-2).
static void
s_encode_part (front_t *self, handoff_t *handoff)
{
    zper_frame_t frame = { zmq_msg_data (&self->part), zmq_msg_size (&self->part) };
    size_t size = zper_zmtp_frame_size (frame.size);
    uint8_t *target = s_reserve (&handoff->data, &handoff->data_capacity, handoff->data_size,
                                 size);
    zper_zmtp_encode (&frame, 1, target);
    if (s_more (self))
        target [0] |= ZPER_ZMTP_MORE;
    handoff->data_size += size;
}

//  Receive the frames of one write into its hand-off: the body into data,
//  and into *entry the refusal, if any. The id a reply needs but data does
//  not hold (a batch id, a refused write's id) goes after the entry.
//  Security on: the key is checked on the first frame. Returns 0, or -1
//  when the key was cut off: the write is dropped, the caller forgets its
//  entry.
static int
s_receive_write (front_t *self, handoff_t *handoff, zper_front_entry_t *entry,
                 const identity_slot_t *identity)
{
    size_t limit = self->broker->config->max_message;
    bool batch = entry->mode == ZPER_MODE_BATCH_ACK || entry->mode == ZPER_MODE_BATCH;
    size_t data_start = handoff->data_size, total = 0, frames = 0;
    bool refused = entry->status != 0;          //  108 (its writer does not read), 109
    bool too_large = false;
    zmq_msg_t id;
    zmq_msg_init (&id);
    bool checked = !self->guard;
    while (s_more (self) && s_receive_part (self, 0) != -1) {
        if (!checked) {
            checked = true;
            zper_guard_verdict_t verdict = zper_broker_guard_check (
                self->broker, self->guard, &self->part, ZPER_GUARD_WRITE, identity->topic,
                identity->topic_size);
            if (verdict == ZPER_GUARD_CUT) {
                s_skip_rest (self);
                zmq_msg_close (&id);
                return -1;
            }
            if (verdict == ZPER_GUARD_FORBIDDEN) {
                entry->status = ZPER_STATUS_FORBIDDEN;
                refused = true;
            }
        }
        size_t size = zmq_msg_size (&self->part);
        //  A REQ client (mode 2) sends an empty delimiter before its message
        if (frames == 0 && entry->mode == ZPER_MODE_REQ && size == 0 && s_more (self)
        &&  !(entry->flags & ZPER_FRONT_ENTRY_REQ)) {
            entry->flags |= ZPER_FRONT_ENTRY_REQ;
            continue;
        }
        total += size;
        too_large |= size > limit || total > limit;
        if (frames++ == 0)
            zmq_msg_copy (&id, &self->part);    //  shares the frame: no copy of its bytes
        if (too_large || refused)
            ;                                   //  nothing of it is stored
        else
        if (!batch)
            s_encode_part (self, handoff);
        else
        if (frames == 2)
            s_append_bytes (&handoff->data, &handoff->data_capacity, &handoff->data_size,
                            zmq_msg_data (&self->part), size);
    }
    if (refused)
        ;                                       //  it keeps its 108 or 109
    else
    if (too_large)
        entry->status = ZPER_STATUS_MESSAGE_TOO_LARGE;
    else
    if (batch && frames != 2)
        entry->status = ZPER_STATUS_INVALID_ARGUMENT;
    if (entry->status)
        handoff->data_size = data_start;
    entry->data_size = handoff->data_size - data_start;
    //  The id travels with the entry unless data holds it (an accepted
    //  message's first frame); an id over the limit is not echoed back,
    //  nor a large one to a writer that does not read its replies
    if (entry->status == ZPER_STATUS_SLOW_CLIENT)
        limit = ZPER_FRONT_SLOW_ID_MAX;
    if ((entry->status || batch) && zmq_msg_size (&id) <= limit) {
        entry->id_size = (uint32_t) zmq_msg_size (&id);
        s_append_bytes (&handoff->entries, &handoff->entries_capacity, &handoff->entries_size,
                        zmq_msg_data (&id), entry->id_size);
    }
    zmq_msg_close (&id);
    return 0;
}

static void
s_free_buffer (void *data, void *hint)
{
    (void) hint;
    free (data);
}

//  Hand a worker its pending writes as one message [entries][data],
//  without copying them: the worker's thread frees the buffers.
static void
s_handoff_send (front_t *self, size_t worker)
{
    handoff_t *handoff = &self->handoffs [worker];
    if (handoff->entries_size == 0)     //  no write: every write has an entry
        return;
    void *pipe = zsock_resolve (zper_pool_worker (self->workers, worker));
    atomic_size_t *queued = &self->worker_args [worker].queued_bytes;
    atomic_fetch_add (queued, handoff->entries_size + handoff->data_size);
    zmq_msg_t entries, data;
    zmq_msg_init_data (&entries, handoff->entries, handoff->entries_size, s_free_buffer, NULL);
    if (handoff->data_size)
        zmq_msg_init_data (&data, handoff->data, handoff->data_size, s_free_buffer, NULL);
    else {
        free (handoff->data);
        zmq_msg_init (&data);
    }
    int rc = zmq_msg_send (&entries, pipe, ZMQ_SNDMORE);
    assert (rc != -1);                  //  inproc to our own worker: blocks, never fails
    rc = zmq_msg_send (&data, pipe, 0);
    assert (rc != -1);
    memset (handoff, 0, sizeof *handoff);
}

//  Take one write whose routing id is in self->part into its worker's
//  hand-off.
static void
s_take_write (front_t *self)
{
    uint8_t routing_id [ROUTING_ID_MAX];
    size_t routing_id_size = zmq_msg_size (&self->part);
    assert (routing_id_size <= ROUTING_ID_MAX);
    memcpy (routing_id, zmq_msg_data (&self->part), routing_id_size);
    const char *problem = "no message frames";
    const identity_slot_t *identity = s_more (self)
        ? s_identity (self, routing_id, routing_id_size, &problem): NULL;
    if (!identity) {
        s_reject_identity (self, routing_id, routing_id_size, problem);
        return;
    }
    handoff_t *handoff = &self->handoffs [identity->worker];
    size_t entry_at = handoff->entries_size;
    zper_front_entry_t entry = { .mode = identity->mode,
                                 .routing_id_size = (uint8_t) routing_id_size,
                                 .topic_size = identity->topic_size };
    if (s_writer_slow (self, routing_id, routing_id_size))
        entry.status = ZPER_STATUS_SLOW_CLIENT;
    if (entry_at == 0)                  //  one clock reading per hand-off: zper_hops.h
        entry.received_us = zper_hops_stamp32 ();
    s_reserve (&handoff->entries, &handoff->entries_capacity, entry_at, sizeof entry);
    handoff->entries_size += sizeof entry;
    s_append_bytes (&handoff->entries, &handoff->entries_capacity, &handoff->entries_size,
                    routing_id, routing_id_size);
    s_append_bytes (&handoff->entries, &handoff->entries_capacity, &handoff->entries_size,
                    identity->topic, identity->topic_size);
    if (s_receive_write (self, handoff, &entry, identity)) {
        handoff->entries_size = entry_at;       //  a key cut off: nothing of it is kept
        return;
    }
    memcpy (handoff->entries + entry_at, &entry, sizeof entry);
    size_t padded = entry_at + zper_front_entry_size (&entry);
    s_reserve (&handoff->entries, &handoff->entries_capacity, handoff->entries_size,
               padded - handoff->entries_size);
    handoff->entries_size = padded;
    //  Entries count too: a refused write's id travels in them
    if (handoff->entries_size + handoff->data_size >= ZPER_FRONT_HANDOFF_BYTES)
        s_handoff_send (self, identity->worker);
}

//  True while a worker's queue of hand-offs is over front.queue_bytes:
//  the front then reads no more writes until it drains.
static bool
s_workers_full (front_t *self)
{
    size_t limit = (size_t) self->broker->config->front_queue_bytes;
    for (size_t worker = 0; worker < self->worker_count; worker++)
        if (atomic_load (&self->worker_args [worker].queued_bytes) > limit)
            return true;
    return false;
}

//  Take what is queued, not one message per poll: a poll is a system call
//  over every socket. Bounded, so replies and heartbeats keep their turn,
//  and stopped as soon as a worker's queue is full, so a worker's queue
//  passes its limit by one hand-off at most. Every worker then gets what
//  was drained for it.
static void
s_drain_router (front_t *self)
{
    for (int drained = 0; drained < ZPER_FRONT_DRAIN_MAX && !s_workers_full (self)
                       && s_receive_part (self, ZMQ_DONTWAIT) != -1; drained++)
        s_take_write (self);
    for (size_t worker = 0; worker < self->worker_count; worker++)
        s_handoff_send (self, worker);
}

//  Pass worker replies to the ROUTER as they came, each within its
//  writer's budget: every pack waiting, each reply of a pack in order.
static void
s_forward_replies (front_t *self)
{
    void *replies = zsock_resolve (self->replies);
    zmq_msg_t pack;
    zmq_msg_init (&pack);
    while (zmq_msg_recv (&pack, replies, ZMQ_DONTWAIT) != -1) {
        const uint8_t *cursor = (const uint8_t *) zmq_msg_data (&pack);
        const uint8_t *end = cursor + zmq_msg_size (&pack);
        reply_t reply;
        while (s_reply_unpack (&cursor, end, &reply) == 0) {
            s_reply_load (self, &reply);
            s_reply_deliver (self, &reply);
        }
    }
    zmq_msg_close (&pack);
}

static int
s_start (front_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->router_handle = zsock_resolve (self->router);
    self->replies = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->replies, 0);    //  see zper_front_worker.c: no deadlock
    self->writers = zhashx_new ();
    zhashx_set_key_hasher (self->writers, s_routing_hash);
    zhashx_set_key_comparator (self->writers, s_routing_compare);
    zhashx_set_key_duplicator (self->writers, NULL);    //  the key lives in its writer
    zhashx_set_key_destructor (self->writers, NULL);
    zhashx_set_destructor (self->writers, s_reply_writer_destroy);
    //  A pipelining writer reads its replies late; libzmq's default of 1000
    //  queued replies would silently drop acknowledgements. What bounds
    //  them is front.reply_budget, which counts bytes and drops visibly
    zsock_set_sndhwm (self->router, ZPER_FRONT_REPLY_HWM);
    int64_t frame_limit = s_wire_frame_limit (config);
    zmq_setsockopt (self->router_handle, ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (zsock_bind (self->replies, ZPER_INPROC_FRONT_REPLIES) == -1) {
        snprintf (reason, reason_size, "cannot bind %s", ZPER_INPROC_FRONT_REPLIES);
        return -1;
    }
    if (zper_broker_bind (self->broker, self->router, "front", config->front_bind, reason,
                          reason_size))
        return -1;
    self->guard = zper_broker_guard_new (self->broker);
    if (self->broker->security && !self->guard) {
        snprintf (reason, reason_size, "cannot read security.keys %.200s",
                  config->security_keys);
        return -1;
    }
    size_t count = (size_t) config->front_workers;
    self->worker_args = (zper_front_worker_args_t *)
        zmalloc (count * sizeof (zper_front_worker_args_t));
    for (size_t index = 0; index < count; index++) {
        self->worker_args [index].broker = self->broker;
        self->worker_args [index].index = index;
        atomic_init (&self->worker_args [index].queued_bytes, 0);
    }
    self->handoffs = (handoff_t *) zmalloc (count * sizeof (handoff_t));
    self->worker_count = count;
    self->identities = (identity_slot_t *)
        zmalloc (ZPER_FRONT_IDENTITY_CACHE * sizeof (identity_slot_t));
    self->workers = zper_pool_new (zper_front_worker_actor, self->worker_args,
                                   sizeof (zper_front_worker_args_t), count);
    if (!self->workers) {
        snprintf (reason, reason_size, "cannot start %zu worker threads", count);
        return -1;
    }
    return 0;
}

static void
s_stop (front_t *self)
{
    zper_pool_destroy (&self->workers);
    if (self->router) {
        s_forward_replies (self);
        zsock_set_linger (self->router, ZPER_SHUTDOWN_LINGER_MS);
    }
    zsock_destroy (&self->router);
    zsock_destroy (&self->replies);
    //  Replies still lingering keep their writers until libzmq releases them
    zhashx_destroy (&self->writers);
    //  Hand-offs are sent at the end of every drain: none holds a write
    for (size_t worker = 0; self->handoffs && worker < self->worker_count; worker++) {
        freen (self->handoffs [worker].entries);
        freen (self->handoffs [worker].data);
    }
    freen (self->handoffs);
    freen (self->identities);
    freen (self->worker_args);
    zper_guard_destroy (&self->guard);
}

//  Poll items: the pipe, the ROUTER, the replies, then each worker.
enum { ITEM_PIPE, ITEM_ROUTER, ITEM_REPLIES, ITEM_WORKERS };

static void
s_run (front_t *self)
{
    size_t count = ITEM_WORKERS + self->worker_count;
    zmq_pollitem_t *items = (zmq_pollitem_t *) zmalloc (count * sizeof (zmq_pollitem_t));
    items [ITEM_PIPE].socket = zsock_resolve (self->pipe);
    items [ITEM_ROUTER].socket = self->router_handle;
    items [ITEM_REPLIES].socket = zsock_resolve (self->replies);
    for (size_t worker = 0; worker < self->worker_count; worker++)
        items [ITEM_WORKERS + worker].socket
            = zsock_resolve (zactor_sock (zper_pool_worker (self->workers, worker)));
    for (size_t index = 0; index < count; index++)
        items [index].events = ZMQ_POLLIN;
    bool terminated = false;
    while (!terminated) {
        //  Read the ROUTER only while no worker's queue is full
        bool paused = s_workers_full (self);
        items [ITEM_ROUTER].events = paused? 0: ZMQ_POLLIN;
        int timeout = paused? ZPER_FRONT_QUEUE_WAIT_MS: -1;
        if (self->guard) {
            int64_t now = zclock_mono ();
            if (now >= self->guard_due_ms)
                self->guard_due_ms = now + zper_broker_guard_tick (self->broker, self->guard);
            timeout = zper_broker_timeout_min (timeout, (int) (self->guard_due_ms - now));
        }
        if (zmq_poll (items, (int) count, timeout) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            break;
        }
        //  Serve every source that has input, not only the first one: writers
        //  that keep the ROUTER busy must starve neither the replies nor the
        //  workers' PONGs
        if (items [ITEM_PIPE].revents & ZMQ_POLLIN) {
            terminated = zper_broker_pool_command (self->pipe, self->workers, "front");
            s_writers_sweep (self);
        }
        if (!terminated && (items [ITEM_ROUTER].revents & ZMQ_POLLIN))
            s_drain_router (self);
        if (items [ITEM_REPLIES].revents & ZMQ_POLLIN)
            s_forward_replies (self);
        for (size_t worker = 0; worker < self->worker_count; worker++)
            if (items [ITEM_WORKERS + worker].revents & ZMQ_POLLIN)
                zper_pool_handle (self->workers, zper_pool_worker (self->workers, worker));
    }
    freen (items);
}

void
zper_front_actor (zsock_t *pipe, void *args)
{
    front_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    zmq_msg_init (&self.part);
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    s_stop (&self);
    zmq_msg_close (&self.part);
}

//  --------------------------------------------------------------------------
//  Selftest: ack and front in this process, over inproc

//  Write one hand-off entry at target (zper_front.h); returns its size.
static size_t
s_test_entry (uint8_t *target, uint8_t mode, uint8_t status, const char *topic, const char *id,
              size_t data_size)
{
    const char *routing_id = "client";
    zper_front_entry_t entry = { .data_size = data_size, .mode = mode, .status = status,
                                 .routing_id_size = (uint8_t) strlen (routing_id),
                                 .topic_size = (uint8_t) strlen (topic),
                                 .id_size = id? (uint32_t) strlen (id): 0 };
    size_t size = zper_front_entry_size (&entry);
    memset (target, 0, size);
    memcpy (target, &entry, sizeof entry);
    uint8_t *topic_at = target + sizeof entry + entry.routing_id_size;
    memcpy (target + sizeof entry, routing_id, entry.routing_id_size);
    memcpy (topic_at, topic, entry.topic_size);
    if (id)
        memcpy (topic_at + entry.topic_size, id, entry.id_size);
    return size;
}

//  Send a worker one hand-off: a write [id][body] of mode 1 to topic,
//  after a refusal (104) of the same client when refused_id is set.
static void
s_test_handoff (zactor_t *worker, zper_front_worker_args_t *args, const char *topic,
                const char *refused_id, const char *id)
{
    uint8_t entries [256], data [64];
    size_t entries_size = 0;
    if (refused_id)
        entries_size += s_test_entry (entries, ZPER_MODE_ACK, ZPER_STATUS_MESSAGE_TOO_LARGE,
                                      topic, refused_id, 0);
    zper_frame_t frames [2] = { { id, strlen (id) }, { "body", 4 } };
    size_t data_size = zper_zmtp_message_size (frames, 2);
    assert (data_size <= sizeof data);
    zper_zmtp_encode (frames, 2, data);
    entries_size += s_test_entry (entries + entries_size, ZPER_MODE_ACK, 0, topic, NULL,
                                  data_size);
    atomic_fetch_add (&args->queued_bytes, entries_size + data_size);
    void *pipe = zsock_resolve (zactor_sock (worker));
    zmq_send (pipe, entries, entries_size, ZMQ_SNDMORE);
    zmq_send (pipe, data, data_size, 0);
}

//  The test's end of the workers' replies: the pack being read.
typedef struct {
    zsock_t *socket;
    zframe_t *pack;
    const uint8_t *cursor;
} test_replies_t;

//  Receive a worker's next reply [routing id][id][status] (from the pack
//  being read, or the next one): returns the status, ZPER_STATUS_OK for
//  [routing id][id].
static uint8_t
s_test_reply (test_replies_t *replies, const char *id)
{
    reply_t reply;
    while (!replies->pack
       ||  s_reply_unpack (&replies->cursor, zframe_data (replies->pack)
                                             + zframe_size (replies->pack), &reply)) {
        zframe_destroy (&replies->pack);
        replies->pack = zframe_recv (replies->socket);
        assert (replies->pack);
        replies->cursor = zframe_data (replies->pack);
    }
    assert (reply.count == 2 || reply.count == 3);
    assert (reply.sizes [0] == 6 && memcmp (reply.frames [0], "client", 6) == 0);
    assert (reply.sizes [1] == strlen (id) && memcmp (reply.frames [1], id, strlen (id)) == 0);
    return reply.count == 3? reply.frames [2][0]: ZPER_STATUS_OK;
}

//  A reply to an id of this size fits the test's budget once, not twice.
#define S_TEST_LONG_ID  90
#define S_TEST_BUDGET   (2 * (S_TEST_LONG_ID + ZPER_OUTPUT_FRAME_COST) - 10)

//  Wait (bounded) until counter reads at least value; assert it is then
//  exactly value.
static void
s_test_wait_counter (zper_broker_t *broker, zper_counter_t counter, uint64_t value)
{
    for (int tries = 0; zper_stats_counter (broker->stats, counter) < value; tries++) {
        assert (tries < 500);
        zclock_sleep (10);
    }
    assert (zper_stats_counter (broker->stats, counter) == value);
}

//  Wait (bounded) until topic's log is durable up to offset.
static void
s_test_wait_durable (zper_broker_t *broker, const char *topic, int64_t offset)
{
    zper_bounds_t bounds = { 0 };
    for (int tries = 0; bounds.durable_offset < offset; tries++) {
        assert (tries < 500);
        zper_partition_t *partition = zper_log_partition (broker->log, topic, "0", false);
        if (partition)
            zper_partition_bounds (partition, &bounds);
        if (bounds.durable_offset < offset)
            zclock_sleep (10);
    }
}

//  Cluster mode, a worker fed by hand over a cluster table built without
//  etcd (views applied by hand, as the coordinator would): writes only to
//  a partition it leads with enough replicas in sync, replies only once
//  the high-watermark passes them, 110 for those held when it resigns.
static void
s_test_cluster (zper_broker_t *broker, zper_config_t *config, test_replies_t *replies)
{
    snprintf (config->cluster_etcd, sizeof config->cluster_etcd, "http://127.0.0.1:1");
    config->cluster_node = 1;
    broker->cluster = zper_cluster_new (config, broker->log);
    assert (broker->cluster);
    zper_front_worker_args_t args = { .broker = broker, .index = (size_t) config->front_workers + 1 };
    atomic_init (&args.queued_bytes, 0);
    zactor_t *worker = zactor_new (zper_front_worker_actor, &args);
    zsock_t *commit = zsock_new (ZMQ_PUSH);
    int rc = zsock_connect (commit, ZPER_INPROC_COMMIT, (int) args.index);
    assert (rc == 0);

    //  Not a partition of a created topic: 110, and no folder
    s_test_handoff (worker, &args, "plain", NULL, "id-plain");
    assert (s_test_reply (replies, "id-plain") == ZPER_STATUS_NOT_LEADER);
    assert (zper_log_partition (broker->log, "plain", "0", false) == NULL);

    //  orders.0 on nodes 1 and 2 (min ISR 2), led by node 2; then node 1
    //  wins epoch 4 with an ISR of one: 111, nothing stored
    zper_cluster_view_t *view = zper_cluster_view_new (7);
    const char *keys [][2] = {
        { "nodes/1", "{\"id\":1,\"front\":\"f\",\"rear\":\"r\",\"replication\":\"p\","
                     "\"relay\":\"l\",\"ack\":\"a\"}" },
        { "nodes/2", "{\"id\":2,\"front\":\"f\",\"rear\":\"r\",\"replication\":\"p\","
                     "\"relay\":\"l\",\"ack\":\"a\"}" },
        { "topics/orders", "{\"partitions\":1,\"min_insync_replicas\":2,\"replicas\":[[1,2]]}" },
        { "leaders/orders/0", "{\"node\":2,\"epoch\":3}" },
        { "state/orders/0", "{\"epoch\":3,\"leader\":2,\"isr\":[2,1]}" } };
    for (size_t index = 0; index < sizeof keys / sizeof keys [0]; index++) {
        rc = zper_cluster_view_add (view, keys [index][0], keys [index][1], 3 + (int64_t) index, 0);
        assert (rc == 0);
    }
    zper_cluster_view_finish (view);
    zper_cluster_apply_view (broker->cluster, &view);
    s_test_handoff (worker, &args, "orders.0", NULL, "id-follower");
    assert (s_test_reply (replies, "id-follower") == ZPER_STATUS_NOT_LEADER);
    int isr_one [] = { 1 }, isr_two [] = { 1, 2 };
    rc = zper_cluster_become_leader (broker->cluster, "orders.0", 4, isr_one, 1);
    assert (rc == 0);
    s_test_handoff (worker, &args, "orders.0", NULL, "id-few");
    assert (s_test_reply (replies, "id-few") == ZPER_STATUS_NOT_ENOUGH_REPLICAS);
    assert (zper_stats_counter (broker->stats, ZPER_COUNTER_NOT_ENOUGH_REPLICAS) == 1);

    //  In sync: the write is stored and flushed, but its reply waits for
    //  the high-watermark. A refusal handed over after the flush is
    //  answered at once (no topic), so it overtakes the held reply.
    zper_cluster_want_isr (broker->cluster, "orders.0", isr_two, 2);
    zper_cluster_confirm_isr (broker->cluster, "orders.0", isr_two, 2);
    s_test_handoff (worker, &args, "orders.0", NULL, "id-held");
    s_test_wait_durable (broker, "orders.0", 1);
    s_test_handoff (worker, &args, "plain", NULL, "id-overtakes");
    assert (s_test_reply (replies, "id-overtakes") == ZPER_STATUS_NOT_LEADER);
    zper_cluster_set_high_watermark (broker->cluster, "orders.0", 1);
    uint8_t move [ZPER_WIRE_INT64_SIZE];
    zper_wire_put_int64 (move, 1);
    zmq_send (zsock_resolve (commit), "orders.0", 8, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (commit), move, sizeof move, 0);
    assert (s_test_reply (replies, "id-held") == ZPER_STATUS_OK);

    //  Leadership lost while a reply waits: it gets 110 (stored or not:
    //  the next leader decides), announced by a commit message
    s_test_handoff (worker, &args, "orders.0", NULL, "id-orphan");
    s_test_wait_durable (broker, "orders.0", 2);
    uint64_t not_leader = zper_stats_counter (broker->stats, ZPER_COUNTER_NOT_LEADER);
    zper_cluster_resign (broker->cluster, "orders.0");
    zper_wire_put_int64 (move, 2);
    zmq_send (zsock_resolve (commit), "orders.0", 8, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (commit), move, sizeof move, 0);
    assert (s_test_reply (replies, "id-orphan") == ZPER_STATUS_NOT_LEADER);
    assert (zper_stats_counter (broker->stats, ZPER_COUNTER_NOT_LEADER) == not_leader + 1);

    //  Leading again at a later epoch: the state is read from the log
    rc = zper_cluster_become_leader (broker->cluster, "orders.0", 6, isr_two, 2);
    assert (rc == 0);
    s_test_handoff (worker, &args, "orders.0", NULL, "id-again");
    s_test_wait_durable (broker, "orders.0", 3);
    zper_cluster_set_high_watermark (broker->cluster, "orders.0", 3);
    zper_wire_put_int64 (move, 3);
    zmq_send (zsock_resolve (commit), "orders.0", 8, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (commit), move, sizeof move, 0);
    assert (s_test_reply (replies, "id-again") == ZPER_STATUS_OK);

    zsock_destroy (&commit);
    zactor_destroy (&worker);
    zper_cluster_destroy (&broker->cluster);
    *config->cluster_etcd = 0;
}

void
zper_front_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-front-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    config.front_workers = 2;
    config.max_message = 100;
    config.flush_interval_ms = 60000;   //  only waiting clients and the stop flush
    config.visibility = ZPER_VISIBILITY_WRITTEN;
    config.front_reply_budget = S_TEST_BUDGET;
    zper_broker_t broker;
    assert (zper_broker_open (&broker, &config, verbose) == 0);
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    zactor_t *front = zper_broker_start (zper_front_actor, &broker, "front");
    assert (ack && front);

    //  Mode 1: the reply names the message once it is durable
    zsock_t *dealer = zper_broker_test_client (ZMQ_DEALER, config.front_bind, "fronted", 1);
    zstr_sendx (dealer, "id-1", "body", NULL);
    char *id = zstr_recv (dealer);
    assert (id && streq (id, "id-1"));
    zstr_free (&id);
    zper_partition_t *partition = zper_log_partition (broker.log, "fronted", "0", false);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == 1);

    //  A full disk: the writer gets [id][105], nothing is stored, and the
    //  broker resumes when space returns
    zper_partition_set_fault (partition, ENOSPC, 0);
    zstr_sendx (dealer, "id-full", "body", NULL);
    zmsg_t *reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_first (reply), "id-full"));
    assert (zframe_data (zmsg_last (reply)) [0] == ZPER_STATUS_STORAGE_ERROR);
    zmsg_destroy (&reply);
    zper_partition_set_fault (partition, 0, 0);
    zstr_sendx (dealer, "id-space", "body", NULL);
    id = zstr_recv (dealer);
    assert (id && streq (id, "id-space"));
    zstr_free (&id);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == 2);

    //  Mode 2 through a REQ envelope; an oversized message gets [id][104]
    zsock_t *req = zper_broker_test_client (ZMQ_REQ, config.front_bind, "fronted", 2);
    zstr_sendx (req, "id-2", "body", NULL);
    id = zstr_recv (req);
    assert (id && streq (id, "id-2"));
    zstr_free (&id);
    char large [101];
    memset (large, 'x', 100);
    large [100] = 0;
    zstr_sendx (req, "id-3", large, NULL);
    reply = zmsg_recv (req);
    assert (zmsg_size (reply) == 2 && zframe_streq (zmsg_first (reply), "id-3"));
    assert (zframe_data (zmsg_next (reply)) [0] == ZPER_STATUS_MESSAGE_TOO_LARGE);
    zmsg_destroy (&reply);

    //  A refused write's reply keeps its place among the writer's replies
    zstr_sendx (dealer, "id-a", "body", NULL);
    zstr_sendx (dealer, "id-big", large, NULL);
    zstr_sendx (dealer, "id-b", "body", NULL);
    id = zstr_recv (dealer);
    assert (id && streq (id, "id-a"));
    zstr_free (&id);
    reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_first (reply), "id-big"));
    zmsg_destroy (&reply);
    id = zstr_recv (dealer);
    assert (id && streq (id, "id-b"));
    zstr_free (&id);

    //  A bad identity is answered by the front thread: [id][103]
    zsock_t *stranger = zsock_new_dealer (config.front_bind);
    zsock_set_rcvtimeo (stranger, 5000);
    zstr_sendx (stranger, "id-4", "body", NULL);
    reply = zmsg_recv (stranger);
    assert (reply && zmsg_size (reply) == 2);
    assert (zframe_data (zmsg_last (reply)) [0] == ZPER_STATUS_INVALID_ARGUMENT);
    zmsg_destroy (&reply);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_BAD_IDENTITY) == 1);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_TOO_LARGE) == 2);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_STORAGE_ERROR) == 1);

    //  A writer over front.reply_budget: the reply that would pass it is
    //  dropped, the next write is refused with 108 while the writer holds
    //  more than half the budget, and once it has read, it writes again
    zsock_t *slow = zper_broker_test_client (ZMQ_DEALER, config.front_bind, "slow", 1);
    char long_id [S_TEST_LONG_ID + 1];
    memset (long_id, 'i', S_TEST_LONG_ID);
    long_id [S_TEST_LONG_ID] = 0;
    zstr_sendx (slow, long_id, "body", NULL);           //  costs S_TEST_LONG_ID + 64
    zstr_sendx (slow, long_id, "body", NULL);           //  would pass the budget
    s_test_wait_counter (&broker, ZPER_COUNTER_REPLY_DROPPED, 1);
    zstr_sendx (slow, "id-refused", "body", NULL);
    s_test_wait_counter (&broker, ZPER_COUNTER_SLOW_CLIENT, 1);
    id = zstr_recv (slow);
    assert (id && streq (id, long_id));
    zstr_free (&id);
    reply = zmsg_recv (slow);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_first (reply), "id-refused"));
    assert (zframe_data (zmsg_last (reply)) [0] == ZPER_STATUS_SLOW_CLIENT);
    zmsg_destroy (&reply);
    zstr_sendx (slow, "id-read", "body", NULL);
    id = zstr_recv (slow);
    assert (id && streq (id, "id-read"));
    zstr_free (&id);
    zsock_destroy (&slow);

    //  Visibility written: a mode 0 write is written and announced on the
    //  bus at the end of its turn, long before the flush policy syncs it
    zsock_t *bus = zper_broker_bus_subscriber (&config, "seen");
    zsock_set_rcvtimeo (bus, 5000);
    zclock_sleep (100);                 //  the subscription reaches the bus
    zsock_t *producer = zper_broker_test_client (ZMQ_DEALER, config.front_bind, "seen", 0);
    zstr_sendx (producer, "id-5", "body", NULL);
    reply = zmsg_recv (bus);
    zper_visible_note_t note;
    assert (reply && zper_broker_note_decode (reply, &note) == 0);
    assert (streq (note.topic, "seen") && note.from_offset == 0 && note.visible_offset == 1);
    zmsg_destroy (&reply);
    partition = zper_log_partition (broker.log, "seen", "0", false);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == 0 && bounds.end_offset == 1);

    zsock_destroy (&bus);
    zsock_destroy (&producer);
    zsock_destroy (&dealer);
    zsock_destroy (&req);
    zsock_destroy (&stranger);
    zactor_destroy (&front);

    //  A worker alone, fed by hand: a refusal queued before a write that
    //  the disk then fails is answered first, as the client sent them
    //  (libzmq frees the front's endpoints after its sockets close: wait;
    //  the worker's bus takes an index no front worker used)
    test_replies_t replies = { .socket = zsock_new (ZMQ_PULL) };
    for (int tries = 0; zsock_bind (replies.socket, ZPER_INPROC_FRONT_REPLIES) == -1; tries++) {
        assert (tries < 500);
        zclock_sleep (10);
    }
    zsock_set_rcvtimeo (replies.socket, 5000);
    zper_front_worker_args_t args = { .broker = &broker, .index = (size_t) config.front_workers };
    atomic_init (&args.queued_bytes, 0);
    zactor_t *worker = zactor_new (zper_front_worker_actor, &args);
    s_test_handoff (worker, &args, "ordered", NULL, "id-first");
    assert (s_test_reply (&replies, "id-first") == ZPER_STATUS_OK);
    partition = zper_log_partition (broker.log, "ordered", "0", false);
    zper_partition_set_fault (partition, ENOSPC, 0);
    s_test_handoff (worker, &args, "ordered", "id-refused", "id-failed");
    assert (s_test_reply (&replies, "id-refused") == ZPER_STATUS_MESSAGE_TOO_LARGE);
    //  Both replies of that turn came in one pack: one message, one wake-up
    assert (replies.cursor < zframe_data (replies.pack) + zframe_size (replies.pack));
    assert (s_test_reply (&replies, "id-failed") == ZPER_STATUS_STORAGE_ERROR);
    zper_partition_set_fault (partition, 0, 0);
    zactor_destroy (&worker);

    s_test_cluster (&broker, &config, &replies);
    zframe_destroy (&replies.pack);
    zsock_destroy (&replies.socket);
    zactor_destroy (&ack);
    zper_broker_close (&broker);
}
