/*  =========================================================================
    zper_rear - the rear thread: ROUTER in, workers by reader, stream sends

    This thread owns the ROUTER socket and does no log work: it peels the
    envelope off each request (one frame for DEALER, routing id plus empty
    delimiter for REQ, so REQ readers get their replies), hands the
    request to the worker chosen from the routing id, and sends the
    workers' answers out.

    The one thing to know is stream flow control. A worker hands this
    thread a stream one chunk at a time: a log view of up to
    ZPER_REAR_STREAM_WINDOW_BYTES of messages (zper_rear.h). The thread
    sends them in one go, with no poll between them, into a send queue of
    ZPER_REAR_SEND_HWM messages per reader. The ROUTER runs with
    ROUTER_MANDATORY and non-blocking sends, so a reader that does not read
    can neither block this thread nor make libzmq drop a streamed message:
    a message that cannot be queued leaves the chunk here (the reader's
    outbox), at that message, and the thread retries it on its own timer,
    after 1 ms at first and less often while the reader stays stuck. The
    queue's bound is counted here, by the reader's output (zper_output.h,
    its message cap), not by libzmq's high-water mark, which is off: so
    this thread knows, before it sends a message, whether the next one
    will go too. That is what lets a stream's messages point into the
    mapping without a reference each (constant messages: no allocation,
    no atomic count, no release callback): the last message this thread
    sends before it stops, whatever stops it, is lent with a reference to
    the mapping, and libzmq releases a reader's messages in order, so the
    mapping outlives every constant sent before it (s_stream_message).
    Only a chunk sent whole earns the worker CREDIT for the
    next one, so a stalled reader holds one view, never more. (An earlier
    bulk hand-off stalled at 18k msg/s because it bounced every full queue
    back to the worker's 50 ms timer, with libzmq's 1000-message queue.) A
    send to a reader that has gone answers GONE, which ends its stream.

    The outbox also holds one reply that a full queue refused, ahead of
    the chunk: the answer to the request that ends a stream must reach a
    reader whose queue the stream filled.

    Bytes, not only messages: 10,000 queued messages can be 80 GB of
    8 MiB messages (lent pages of the mapping, or copied READ batches). So
    every message to a reader is charged to its output budget
    (rear.output_budget, zper_output.h), and a reader over it is full,
    exactly as when libzmq's queue is: a stream pauses, a reply waits in
    the outbox, a reply beyond that is dropped (rear_reply_dropped). The
    budgets of readers that hold nothing are forgotten every
    ZPER_OUTPUT_SWEEP_MS.
    ========================================================================= */

#include "zper_rear.h"
#include "zper_pool.h"
#include "zper_wire.h"
#include <assert.h>
#include <stdarg.h>


//  What this thread holds for one reader: a reply that its full queue
//  refused (one at most; it goes first), and the chunk of its stream that
//  is being sent.
typedef struct {
    zframe_t *routing_id;
    zmsg_t *reply;                      //  [envelope][frames...], or NULL
    zper_view_t *view;                  //  the chunk, or NULL
    uint32_t stream;                    //  the chunk's stream
    char topic [ZPER_TOPIC_NAME_MAX + 1];   //  the chunk's topic: what is sent is counted under it
    zper_message_t message;             //  the next message of the chunk, when started
    bool started;
    bool unanchored;                    //  the last message sent has no reference to the mapping
    zper_rear_retry_t retry;            //  retry.at_ms is 0 while not stalled
} outbox_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *output;                    //  PULL from the workers
    zper_pool_t *workers;
    zper_rear_worker_args_t *worker_args;
    zhashx_t *outboxes;                 //  routing id (hex) -> outbox_t
    int64_t next_retry_ms;              //  monotonic: the earliest stalled outbox's retry; 0: none
    zhashx_t *outputs;                  //  routing id (zframe_t) -> zper_output_t
    int64_t next_sweep_ms;              //  monotonic: when outputs holding nothing go
    zmq_msg_t sender;                   //  security on: the first frame after the routing id
} rear_t;

//  Let go of an outbox's chunk. libzmq may still hold messages that point
//  into its mapping; the last one sent holds a reference (the top comment
//  says why), unless libzmq refused a message it never should have (its
//  high-water mark is off): then the view is left, never unmapped under
//  libzmq's feet.
static void
s_chunk_release (outbox_t *outbox)
{
    if (outbox->unanchored && outbox->view) {
        zsys_error ("rear: a stream stopped on a message with no reference: its view is kept");
        outbox->view = NULL;
    }
    zper_view_destroy (&outbox->view);
    outbox->unanchored = false;
    outbox->started = false;
}

static void
s_outbox_destroy (void **item)
{
    outbox_t *outbox = (outbox_t *) *item;
    zframe_destroy (&outbox->routing_id);
    zmsg_destroy (&outbox->reply);
    s_chunk_release (outbox);
    freen (outbox);
    *item = NULL;
}

//  FNV-1a of a routing id: picks the reader's worker, keys its output.
static size_t
s_routing_hash (const void *routing_id)
{
    uint32_t hash = 2166136261u;
    const uint8_t *bytes = zframe_data ((zframe_t *) routing_id);
    for (size_t index = 0; index < zframe_size ((zframe_t *) routing_id); index++)
        hash = (hash ^ bytes [index]) * 16777619u;
    return hash;
}

static size_t
s_worker_of (rear_t *self, zframe_t *routing_id)
{
    return s_routing_hash (routing_id) % zper_pool_size (self->workers);
}

static void
s_routing_id_destroy (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

static void *
s_routing_id_dup (const void *item)
{
    return zframe_dup ((zframe_t *) item);
}

static int
s_routing_id_compare (const void *item1, const void *item2)
{
    return zframe_eq ((zframe_t *) item1, (zframe_t *) item2)? 0: 1;
}

static void
s_output_destroy (void **item)
{
    zper_output_destroy ((zper_output_t **) item);
}

//  The output budget of a reader, created at its first message.
static zper_output_t *
s_output (rear_t *self, zframe_t *routing_id)
{
    zper_output_t *output = (zper_output_t *) zhashx_lookup (self->outputs, routing_id);
    if (!output) {
        output = zper_output_new (self->broker->config->rear_output_budget);
        zper_output_set_message_cap (output, ZPER_REAR_SEND_HWM);
        zper_output_set_label_id (output, "rear", zframe_data (routing_id),
                                  zframe_size (routing_id));
        zhashx_insert (self->outputs, routing_id, output);
        if (!self->next_sweep_ms)
            self->next_sweep_ms = zclock_mono () + ZPER_OUTPUT_SWEEP_MS;
    }
    return output;
}

//  Forget the budgets of readers that hold nothing (gone, or up to date).
static void
s_outputs_sweep (rear_t *self)
{
    zlistx_t *ids = zhashx_keys (self->outputs);
    for (zframe_t *id = (zframe_t *) zlistx_first (ids); id; id = (zframe_t *) zlistx_next (ids))
        if (zper_output_held ((zper_output_t *) zhashx_lookup (self->outputs, id)) == 0)
            zhashx_delete (self->outputs, id);
    zlistx_destroy (&ids);
    self->next_sweep_ms = zhashx_size (self->outputs)? zclock_mono () + ZPER_OUTPUT_SWEEP_MS: 0;
}

static void
s_to_worker (rear_t *self, uint8_t kind, uint32_t stream, zmsg_t **msg_p, uint8_t envelope_frames,
             zmq_msg_t *sender)
{
    zper_rear_header_t header = { kind, envelope_frames, stream, sender };
    size_t worker = s_worker_of (self, zmsg_first (*msg_p));
    zmsg_pushmem (*msg_p, &header, sizeof header);
    zmsg_send (msg_p, zper_pool_worker (self->workers, worker));
}

//  The outbox of a reader, created when create is set; key gets its hex
//  routing id (caller frees). Lookups cost nothing while no outbox exists.
static outbox_t *
s_outbox (rear_t *self, zframe_t *routing_id, bool create, char **key)
{
    *key = NULL;
    if (!create && zhashx_size (self->outboxes) == 0)
        return NULL;
    *key = zframe_strhex (routing_id);
    outbox_t *outbox = (outbox_t *) zhashx_lookup (self->outboxes, *key);
    if (!outbox && create) {
        outbox = (outbox_t *) zmalloc (sizeof (outbox_t));
        outbox->routing_id = zframe_dup (routing_id);
        zhashx_insert (self->outboxes, *key, outbox);
    }
    return outbox;
}

//  Forget the chunk a reader's outbox holds, if it belongs to stream (or
//  to any stream when stream is 0).
static void
s_chunk_forget (rear_t *self, zframe_t *routing_id, uint32_t stream)
{
    char *key;
    outbox_t *outbox = s_outbox (self, routing_id, false, &key);
    if (outbox && outbox->view && (stream == 0 || outbox->stream == stream)) {
        s_chunk_release (outbox);
        if (!outbox->reply)
            zhashx_delete (self->outboxes, key);
    }
    zstr_free (&key);
}

static void
s_request (rear_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    //  Any request ends the reader's stream: what this thread still holds
    //  of it goes (the worker ends its side when the request reaches it)
    s_chunk_forget (self, zmsg_first (msg), 0);
    //  [routing id][""][command]... is a REQ reader; DEALER has no delimiter
    zmsg_first (msg);
    zframe_t *second = zmsg_next (msg);
    uint8_t envelope_frames = zmsg_size (msg) >= 3 && zframe_size (second) == 0? 2: 1;
    zmq_msg_t *sender = NULL;
    if (self->broker->security) {
        //  The worker checks the key: it gets the frame that carries it
        sender = (zmq_msg_t *) zmalloc (sizeof (zmq_msg_t));
        zmq_msg_init (sender);
        zmq_msg_move (sender, &self->sender);
    }
    s_to_worker (self, ZPER_REAR_REQUEST, 0, msg_p, envelope_frames, sender);
}

//  libzmq released the last frame of a reply: the frame goes.
static void
s_frame_free (void *data, void *hint)
{
    zframe_t *frame = (zframe_t *) hint;
    zframe_destroy (&frame);
}

//  Send the last frame of a reply, the reply charged to output.
static void
s_send_charged (void *router, zframe_t *frame, zper_output_t *output, size_t bytes,
                size_t frames)
{
    zmq_msg_t msg;
    zmq_msg_init_data (&msg, zframe_data (frame), zframe_size (frame), s_frame_free, frame);
    zper_output_charge (output, &msg, bytes, frames);
    if (zmq_msg_send (&msg, router, 0) == -1)
        zmq_msg_close (&msg);
}

//  Send a reply ([envelope][frames...], at least two frames) without
//  blocking. Returns 0 (the frames are sent), or -1 with the libzmq errno
//  when the reader's queue or output budget refused it (msg is untouched).
static int
s_send (rear_t *self, zmsg_t *msg)
{
    void *router = zsock_resolve (self->router);
    zframe_t *frame = zmsg_first (msg);
    zper_output_t *output = s_output (self, frame);
    if (zper_output_full (output)) {
        errno = EAGAIN;                 //  zmq_errno () is errno
        return -1;
    }
    if (zmq_send (router, zframe_data (frame), zframe_size (frame), ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    //  Once the first frame is queued the rest of the message is too
    size_t bytes = zmsg_content_size (msg), frames = zmsg_size (msg);
    frame = zmsg_pop (msg);
    zframe_destroy (&frame);
    size_t remaining = zmsg_size (msg);
    while ((frame = zmsg_pop (msg)))
        if (--remaining)
            zframe_send (&frame, router, ZFRAME_MORE);
        else
            s_send_charged (router, frame, output, bytes, frames);
    return 0;
}

//  The reader's queue is full: retry the outbox soon if this attempt moved
//  it on, else wait twice as long as last time (up to the cap).
static void
s_outbox_stall (rear_t *self, outbox_t *outbox, bool progress)
{
    int64_t retry_at_ms = zper_rear_retry_schedule (&outbox->retry, progress,
                                                    ZPER_REAR_STREAM_RETRY_MIN_MS,
                                                    ZPER_REAR_STREAM_RETRY_MS);
    if (!self->next_retry_ms || retry_at_ms < self->next_retry_ms)
        self->next_retry_ms = retry_at_ms;
}

//  Tell a chunk's worker how it ended (CREDIT: all queued, or GONE).
static void
s_chunk_done (rear_t *self, outbox_t *outbox, uint8_t kind)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *routing_id = zframe_dup (outbox->routing_id);
    zmsg_append (msg, &routing_id);
    s_to_worker (self, kind, outbox->stream, &msg, 1, NULL);   //  streams are DEALER only
    //  A reader gone had its pipe ended after its engine: nothing reads
    //  what it still holds (a whole chunk's last message holds a reference)
    if (kind == ZPER_REAR_GONE)
        outbox->unanchored = false;
    s_chunk_release (outbox);
}

//  Send one stored message's frames after its routing id, which the caller
//  queued. Small frames are copied (libzmq keeps them inline); the others
//  point into the mapping as constant messages, except the last frame of
//  an anchor, which is lent with a reference. The message is charged to
//  output (its data, and one frame more for the routing id). Returns true
//  if the message holds a reference to the mapping.
static bool
s_stream_message (void *router, zper_view_t *view, const zper_message_t *message,
                  zper_output_t *output, bool anchor)
{
    bool anchored = false;
    const uint8_t *cursor = message->data;
    for (size_t index = 0; index < message->frame_count; index++) {
        zper_frame_t frame = zper_rear_frame_next (message, &cursor);
        bool last = index + 1 == message->frame_count;
        zmq_msg_t msg;
        if (anchor && last && frame.data
        &&  zper_view_lend (view, frame.data, frame.size, &msg) == 0)
            anchored = true;
        else
        if (frame.size > ZPER_REAR_COPY_FRAME_MAX)
            zmq_msg_init_data (&msg, (void *) frame.data, frame.size, NULL, NULL);
        else {
            zmq_msg_init_size (&msg, frame.size);
            if (frame.size)
                memcpy (zmq_msg_data (&msg), frame.data, frame.size);
        }
        if (last)
            zper_output_charge_batched (output, &msg, message->size, message->frame_count + 1);
        if (zmq_msg_send (&msg, router, last? 0: ZMQ_SNDMORE) == -1)
            zmq_msg_close (&msg);
    }
    return anchored;
}

//  Send what the reader's queue takes of its outbox: the held reply, then
//  the chunk. Returns -1 if it stalled (it waits for its retry), else 0:
//  the outbox is empty, or the reader is gone.
static int
s_outbox_send (rear_t *self, outbox_t *outbox)
{
    void *router = zsock_resolve (self->router);
    zper_output_t *output = s_output (self, outbox->routing_id);
    outbox->retry.at_ms = 0;
    if (outbox->reply && s_send (self, outbox->reply) == -1 && zmq_errno () == EAGAIN) {
        s_outbox_stall (self, outbox, false);
        return -1;
    }
    zmsg_destroy (&outbox->reply);      //  sent, or its reader is gone
    uint64_t sent = 0, bytes = 0;
    int rc = 0;
    while (outbox->view && (outbox->started || zper_view_next (outbox->view, &outbox->message))) {
        outbox->started = true;
        bool full = zper_output_full (output);
        if (full
        ||  zmq_send (router, zframe_data (outbox->routing_id), zframe_size (outbox->routing_id),
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
            if (full || zmq_errno () == EAGAIN) {
                s_outbox_stall (self, outbox, sent > 0);
                rc = -1;
            }
            else
                s_chunk_done (self, outbox, ZPER_REAR_GONE);
            break;
        }
        //  The message after this one goes now, unless the chunk ends or
        //  this one fills the reader's output: else this one is the last
        //  for now and must hold a reference (the top comment)
        zper_message_t message = outbox->message;
        outbox->started = zper_view_next (outbox->view, &outbox->message);
        bool anchor = !outbox->started
                   || !zper_output_room_after (output, message.size, message.frame_count + 1);
        outbox->unanchored = !s_stream_message (router, outbox->view, &message, output, anchor);
        sent++;
        bytes += message.size;
    }
    if (rc == 0 && outbox->view)
        s_chunk_done (self, outbox, ZPER_REAR_CREDIT);
    zper_stats_read (self->broker->stats, outbox->topic, sent, bytes);
    return rc;
}

//  Send an outbox now; forget it once it is empty.
static void
s_outbox_flush (rear_t *self, const char *key, outbox_t *outbox)
{
    if (s_outbox_send (self, outbox) == 0)
        zhashx_delete (self->outboxes, key);
}

//  A worker's REPLY: sent now, or held until the reader's queue takes it,
//  ahead of what is left of a chunk the reader has here (the chunk of the
//  stream the request ended is gone by then: DROP precedes the reply). A
//  reader holds one reply at most: past that, a reader that does not read
//  loses replies (counted), as docs/protocol.md 3.1 says of pipelining.
static void
s_reply (rear_t *self, zmsg_t **msg_p)
{
    char *key;
    outbox_t *outbox = s_outbox (self, zmsg_first (*msg_p), false, &key);
    if (!outbox && s_send (self, *msg_p) == -1 && zmq_errno () == EAGAIN) {
        zstr_free (&key);
        outbox = s_outbox (self, zmsg_first (*msg_p), true, &key);
        outbox->reply = *msg_p;
        *msg_p = NULL;
        s_outbox_stall (self, outbox, false);
    }
    else
    if (outbox && !outbox->reply) {
        outbox->reply = *msg_p;
        *msg_p = NULL;
        s_outbox_flush (self, key, outbox);
    }
    else
    if (outbox) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_REAR_REPLY_DROPPED);
        zper_output_dropped (s_output (self, zmsg_first (*msg_p)), 1);
    }
    zstr_free (&key);
}

//  The view a CHUNK ([envelope][view pointer], after its header) hands
//  over, or NULL if msg is not one.
static zper_view_t *
s_chunk_view (zmsg_t *msg)
{
    zper_view_t *view = NULL;
    zframe_t *pointer = zmsg_last (msg);
    if (zmsg_size (msg) >= 2 && zframe_size (pointer) == sizeof view)
        memcpy (&view, zframe_data (pointer), sizeof view);
    return view;
}

//  A worker's CHUNK. The thread owns the view.
static void
s_chunk (rear_t *self, zper_rear_header_t *header, zmsg_t *msg)
{
    zper_view_t *view = s_chunk_view (msg);
    assert (view);
    char *key;
    outbox_t *outbox = s_outbox (self, zmsg_first (msg), true, &key);
    //  A worker has one chunk of a reader here at most: replace, never leak
    s_chunk_release (outbox);
    outbox->view = view;
    outbox->stream = header->stream;
    zframe_t *topic = zmsg_size (msg) == 3? zmsg_next (msg): NULL;
    size_t topic_size = topic && zframe_size (topic) < sizeof outbox->topic? zframe_size (topic): 0;
    if (topic_size)
        memcpy (outbox->topic, zframe_data (topic), topic_size);
    outbox->topic [topic_size] = 0;
    if (!outbox->retry.at_ms)
        s_outbox_flush (self, key, outbox);
    zstr_free (&key);
}

static void
s_worker_output (rear_t *self)
{
    zmsg_t *msg = zmsg_recv (self->output);
    zframe_t *frame = msg? zmsg_pop (msg): NULL;
    if (frame && zframe_size (frame) == sizeof (zper_rear_header_t) && zmsg_size (msg)) {
        zper_rear_header_t header;
        memcpy (&header, zframe_data (frame), sizeof header);
        if (header.kind == ZPER_REAR_REPLY)
            s_reply (self, &msg);
        else
        if (header.kind == ZPER_REAR_CHUNK)
            s_chunk (self, &header, msg);
        else
        if (header.kind == ZPER_REAR_DROP)
            s_chunk_forget (self, zmsg_first (msg), header.stream);
    }
    zframe_destroy (&frame);
    zmsg_destroy (&msg);
}

//  Retry the stalled outboxes that are due and find the next retry.
static void
s_retries (rear_t *self)
{
    int64_t now = zclock_mono ();
    self->next_retry_ms = 0;
    zlistx_t *keys = zhashx_keys (self->outboxes);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
        outbox_t *outbox = (outbox_t *) zhashx_lookup (self->outboxes, key);
        int64_t retry_at_ms = outbox->retry.at_ms;
        if (retry_at_ms && retry_at_ms <= now)
            s_outbox_flush (self, key, outbox);
        else
        if (retry_at_ms && (!self->next_retry_ms || retry_at_ms < self->next_retry_ms))
            self->next_retry_ms = retry_at_ms;
    }
    zlistx_destroy (&keys);
}

static int
s_start (rear_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->output = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->output, 0);     //  see zper_rear_worker.c: no deadlock
    self->outboxes = zhashx_new ();
    zhashx_set_destructor (self->outboxes, s_outbox_destroy);
    self->outputs = zhashx_new ();
    zhashx_set_destructor (self->outputs, s_output_destroy);
    zhashx_set_key_destructor (self->outputs, s_routing_id_destroy);
    zhashx_set_key_duplicator (self->outputs, s_routing_id_dup);
    zhashx_set_key_comparator (self->outputs, s_routing_id_compare);
    zhashx_set_key_hasher (self->outputs, s_routing_hash);
    zsock_set_router_mandatory (self->router, 1);
    //  Each reader's output counts its queue (ZPER_REAR_SEND_HWM messages,
    //  s_output); libzmq's mark would refuse unforeseen (the top comment)
    zsock_set_sndhwm (self->router, 0);
    int64_t frame_limit = ZPER_REQUEST_FRAME_MAX;
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (zsock_bind (self->output, ZPER_INPROC_REAR_REPLIES) == -1) {
        snprintf (reason, reason_size, "cannot bind %s", ZPER_INPROC_REAR_REPLIES);
        return -1;
    }
    if (zper_broker_bind (self->broker, self->router, "rear", config->rear_bind, reason,
                          reason_size))
        return -1;
    size_t count = (size_t) config->rear_workers;
    self->worker_args = (zper_rear_worker_args_t *) zmalloc (count * sizeof (zper_rear_worker_args_t));
    for (size_t index = 0; index < count; index++) {
        self->worker_args [index].broker = self->broker;
        self->worker_args [index].index = index;
    }
    self->workers = zper_pool_new (zper_rear_worker_actor, self->worker_args,
                                   sizeof (zper_rear_worker_args_t), count);
    if (!self->workers) {
        snprintf (reason, reason_size, "cannot start %zu worker threads", count);
        return -1;
    }
    return 0;
}

static void
s_run (rear_t *self)
{
    zpoller_t *poller = zpoller_new (self->pipe, self->router, self->output, NULL);
    zper_pool_poll (self->workers, poller);
    bool terminated = false;
    while (!terminated) {
        int64_t now = zclock_mono ();
        int64_t wake_ms = !self->next_sweep_ms? self->next_retry_ms
                        : !self->next_retry_ms? self->next_sweep_ms
                        : self->next_retry_ms < self->next_sweep_ms? self->next_retry_ms
                        : self->next_sweep_ms;
        int timeout = !wake_ms? -1: wake_ms > now? (int) (wake_ms - now): 0;
        void *which = zpoller_wait (poller, timeout);
        if (which == self->router) {
            zmsg_t *msg = self->broker->security
                        ? zper_broker_recv_keeping (self->router, 1, &self->sender)
                        : zmsg_recv (self->router);
            if (msg && zmsg_size (msg) >= 2)
                s_request (self, &msg);
            zmsg_destroy (&msg);
        }
        else
        if (which == self->output)
            s_worker_output (self);
        else
        if (which == self->pipe)
            terminated = zper_broker_pool_command (self->pipe, self->workers, "rear");
        else
        if (!which || !zper_pool_handle (self->workers, which))
            terminated = zpoller_terminated (poller);
        if (self->next_retry_ms && zclock_mono () >= self->next_retry_ms)
            s_retries (self);
        if (self->next_sweep_ms && zclock_mono () >= self->next_sweep_ms)
            s_outputs_sweep (self);
    }
    zpoller_destroy (&poller);
}

//  Chunks the workers sent that this thread never read own a view each.
static void
s_drain_output (rear_t *self)
{
    zsock_set_rcvtimeo (self->output, 0);
    zmsg_t *msg;
    while ((msg = zmsg_recv (self->output))) {
        zframe_t *frame = zmsg_pop (msg);
        zper_rear_header_t header;
        if (frame && zframe_size (frame) == sizeof header) {
            memcpy (&header, zframe_data (frame), sizeof header);
            zper_view_t *view = header.kind == ZPER_REAR_CHUNK? s_chunk_view (msg): NULL;
            zper_view_destroy (&view);
        }
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
    }
}

void
zper_rear_actor (zsock_t *pipe, void *args)
{
    rear_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    zmq_msg_init (&self.sender);
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    zper_pool_destroy (&self.workers);
    if (self.output)
        s_drain_output (&self);
    zsock_destroy (&self.router);
    zsock_destroy (&self.output);
    zhashx_destroy (&self.outboxes);
    zhashx_destroy (&self.outputs);
    freen (self.worker_args);
    zmq_msg_close (&self.sender);
}

//  --------------------------------------------------------------------------
//  Selftest: rear in this process, over inproc; the test announces what it
//  writes on a visible bus as front worker 0 would

static zmsg_t *
s_ask (zsock_t *reader, const char *command, int64_t first, int64_t second)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, command);
    zper_wire_add_int64 (request, first);
    if (second != INT64_MIN)
        zper_wire_add_int64 (request, second);
    zmsg_send (&request, reader);
    return zmsg_recv (reader);
}

static uint8_t
s_status_of (zmsg_t *reply)
{
    assert (reply && zframe_size (zmsg_first (reply)) == 1);
    return zframe_data (zmsg_first (reply)) [0];
}

//  A cluster command: frames are text, or int32 when they start with '#'
//  ("#3"). Returns the reply's status; its JSON (or "") into json.
static uint8_t
s_cluster_ask (zsock_t *reader, char *json, size_t json_size, const char *command, ...)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, command);
    va_list arguments;
    va_start (arguments, command);
    for (const char *frame = va_arg (arguments, const char *); frame;
         frame = va_arg (arguments, const char *))
        if (*frame == '#')
            zper_wire_add_int32 (request, atoi (frame + 1));
        else
            zmsg_addstr (request, frame);
    va_end (arguments);
    zmsg_send (&request, reader);
    zmsg_t *reply = zmsg_recv (reader);
    uint8_t status = s_status_of (reply);
    zframe_t *body = zmsg_size (reply) == 2? zmsg_last (reply): NULL;
    size_t size = body? zframe_size (body): 0;
    assert (size < json_size);
    memcpy (json, body? zframe_data (body): (const uint8_t *) "", size);
    json [size] = 0;
    zmsg_destroy (&reply);
    return status;
}

//  The cluster commands: 113 on a single node; with a cluster table
//  (built without etcd), METADATA and CLUSTER answer its JSON, bad
//  arguments get 103 and admin commands 113 while etcd is unreachable.
static void
s_test_cluster_commands (zper_broker_t *broker, zper_config_t *config, zsock_t *reader)
{
    char json [4096];
    assert (s_cluster_ask (reader, json, sizeof json, "METADATA", NULL) == ZPER_STATUS_NO_CLUSTER);
    assert (s_cluster_ask (reader, json, sizeof json, "CREATE", "orders", "#2", "#2", "#0", NULL)
            == ZPER_STATUS_NO_CLUSTER);
    assert (s_cluster_ask (reader, json, sizeof json, "REASSIGN", "orders", "#0", "1,2", NULL)
            == ZPER_STATUS_NO_CLUSTER);
    assert (s_cluster_ask (reader, json, sizeof json, "CLUSTER", NULL) == ZPER_STATUS_NO_CLUSTER);

    snprintf (config->cluster_etcd, sizeof config->cluster_etcd, "http://127.0.0.1:1");
    config->cluster_node = 1;
    config->cluster_etcd_timeout_ms = 100;
    broker->cluster = zper_cluster_new (config, broker->log);
    assert (broker->cluster);
    assert (s_cluster_ask (reader, json, sizeof json, "METADATA", NULL) == ZPER_STATUS_OK);
    assert (strstr (json, "\"cluster\":\"zper\"") && strstr (json, "\"node\":1"));
    assert (s_cluster_ask (reader, json, sizeof json, "METADATA", "nosuch", NULL) == ZPER_STATUS_OK);
    assert (strstr (json, "\"topics\":{}"));
    assert (s_cluster_ask (reader, json, sizeof json, "CLUSTER", NULL) == ZPER_STATUS_OK);
    assert (strstr (json, "\"node\":1"));
    assert (s_cluster_ask (reader, json, sizeof json, "CLUSTER", "extra", NULL)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (s_cluster_ask (reader, json, sizeof json, "METADATA", "a", "b", NULL)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (s_cluster_ask (reader, json, sizeof json, "CREATE", "orders", "#2", "#2", NULL)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (s_cluster_ask (reader, json, sizeof json, "CREATE", "orders", "#2", "#2", "#-1", NULL)
            == ZPER_STATUS_INVALID_ARGUMENT);
    const char *lists [] = { "", "1,1", "1,x", "0", "1,", ",1", "65536", "1 2",
                             "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", NULL };
    for (int index = 0; lists [index]; index++)
        assert (s_cluster_ask (reader, json, sizeof json, "REASSIGN", "orders", "#0",
                               lists [index], NULL) == ZPER_STATUS_INVALID_ARGUMENT);
    assert (s_cluster_ask (reader, json, sizeof json, "REASSIGN", "orders", "#-1", "1", NULL)
            == ZPER_STATUS_INVALID_ARGUMENT);
    //  Well-formed, but etcd does not answer
    assert (s_cluster_ask (reader, json, sizeof json, "CREATE", "orders", "#2", "#1", "#0", NULL)
            == ZPER_STATUS_NO_CLUSTER);
    assert (s_cluster_ask (reader, json, sizeof json, "REASSIGN", "orders", "#0", "1,2", NULL)
            == ZPER_STATUS_NO_CLUSTER);
    zper_cluster_destroy (&broker->cluster);
    *config->cluster_etcd = 0;
}

void
zper_rear_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-rear-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    zper_broker_t broker;
    assert (zper_broker_open (&broker, &config, verbose) == 0);
    zper_partition_t *partition = zper_log_partition (broker.log, "readable", "0", true);
    zper_frame_t frames [2] = { { "id", 2 }, { "hello", 5 } };
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 0);
    assert (zper_partition_flush (partition) == 1);
    zactor_t *rear = zper_broker_start (zper_rear_actor, &broker, "rear");
    assert (rear);
    zsock_t *reader = zper_broker_test_client (ZMQ_DEALER, config.rear_bind, "readable", 0);

    zmsg_t *reply = s_ask (reader, "FETCH", 0, 1000);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zmsg_size (reply) == 2);
    assert (zframe_size (zmsg_last (reply)) == 11);
    assert (memcmp (zframe_data (zmsg_last (reply)), "\x01\x02id\x00\x05hello", 11) == 0);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "FETCH", 1, 1000);
    assert (s_status_of (reply) == ZPER_STATUS_INVALID_OFFSET);
    zmsg_destroy (&reply);
    //  max_bytes 0 validates the position: a boundary, the end, or neither
    reply = s_ask (reader, "FETCH", 0, 0);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zframe_size (zmsg_last (reply)) == 0);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "FETCH", 11, 0);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zframe_size (zmsg_last (reply)) == 0);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "FETCH", 1, 0);
    assert (s_status_of (reply) == ZPER_STATUS_INVALID_OFFSET);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "FETCH", 12, 0);
    assert (s_status_of (reply) == ZPER_STATUS_INVALID_OFFSET);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "OFFSET", -1, INT64_MIN);
    int64_t position;
    assert (s_status_of (reply) == ZPER_STATUS_OK);
    assert (zper_wire_frame_int64 (zmsg_last (reply), &position) == 0 && position == 11);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "NOPE", 0, INT64_MIN);
    assert (s_status_of (reply) == ZPER_STATUS_INVALID_COMMAND);
    zmsg_destroy (&reply);

    //  Streaming FETCH: the backlog, then what the visible bus announces
    reply = s_ask (reader, "FETCH", 0, -1);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zmsg_size (reply) == 1);
    zmsg_destroy (&reply);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "hello"));
    zmsg_destroy (&reply);
    frames [1].data = "again";
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 1);
    assert (zper_partition_flush (partition) == 2);
    zsock_t *bus = zper_broker_bus_publisher (0);       //  as front worker 0 would
    zper_visible_note_t note = { "readable", 1, 2, 22 };
    zper_broker_note_send (bus, &note);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);

    //  zper_rear_send_message: the stored frames, lent, after the prefix;
    //  nothing at all when the prefix cannot be queued
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (router, 1);
    assert (zsock_bind (router, "inproc://zper-rear-test-send") == 0);
    zsock_t *peer = zsock_new (ZMQ_DEALER);
    zsock_set_identity (peer, "peer");
    zsock_set_rcvtimeo (peer, 5000);
    assert (zsock_connect (peer, "inproc://zper-rear-test-send") == 0);
    zstr_send (peer, "hello");          //  the ROUTER learns the peer
    zmsg_t *hello = zmsg_recv (router);
    assert (hello && zframe_streq (zmsg_first (hello), "peer"));
    zmsg_destroy (&hello);
    zper_view_t *view = zper_partition_read (partition, 1, 1000);
    zper_message_t message;
    assert (view && zper_view_next (view, &message));
    assert (zper_rear_send_message (zsock_resolve (router), "nobody", 6, view, &message, NULL) == -1);
    assert (zmq_errno () == EHOSTUNREACH);
    assert (zper_rear_send_message (zsock_resolve (router), "peer", 4, view, &message, NULL) == 0);
    zper_view_destroy (&view);          //  the lent frames outlive the view
    reply = zmsg_recv (peer);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_first (reply), "id"));
    assert (zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);
    zsock_destroy (&peer);
    zsock_destroy (&router);

    s_test_cluster_commands (&broker, &config, reader);
    zsock_destroy (&bus);
    zsock_destroy (&reader);
    zactor_destroy (&rear);
    zper_broker_close (&broker);

    //  zper_rear_follow: nothing at the visible end or without a partition;
    //  a reader behind retention resumes at the oldest retained message
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.segment_size = 1000;     //  small: rolls every few records
    log_config.retention_bytes = 2000;
    partition = zper_partition_open ("followed/0", &log_config);
    assert (partition);
    int64_t offset = 0;
    assert (zper_rear_follow (NULL, &offset, 1000) == NULL && offset == 0);
    assert (zper_rear_follow (partition, &offset, 1000) == NULL && offset == 0);
    char body [64];
    memset (body, 'x', sizeof body);
    frames [1] = (zper_frame_t) { body, sizeof body };
    for (int number = 0; number < 100; number++)
        assert (zper_partition_append (partition, frames, 2, zclock_time ()) == number);
    assert (zper_partition_flush (partition) == 100);
    assert (zper_partition_retain (partition, zclock_time ()) > 0);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.start_offset > 0);
    view = zper_rear_follow (partition, &offset, 1000);
    assert (view && offset == bounds.start_offset);
    assert (zper_view_next (view, &message) && message.offset == bounds.start_offset);
    zper_view_destroy (&view);
    offset = 100;
    assert (zper_rear_follow (partition, &offset, 1000) == NULL && offset == 100);
    zper_partition_destroy (&partition);

    //  zper_rear_retry_schedule: soon after progress, else twice as late, capped
    zper_rear_retry_t retry = { 0 };
    int64_t now = zclock_mono ();
    assert (zper_rear_retry_schedule (&retry, false, 1, 5) >= now + 1 && retry.wait_ms == 1);
    zper_rear_retry_schedule (&retry, false, 1, 5);
    assert (retry.wait_ms == 2);
    zper_rear_retry_schedule (&retry, false, 1, 5);
    zper_rear_retry_schedule (&retry, false, 1, 5);
    assert (retry.wait_ms == 5);
    zper_rear_retry_schedule (&retry, true, 1, 5);
    assert (retry.wait_ms == 1);
}
