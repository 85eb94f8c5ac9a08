/*  =========================================================================
    zper_front_worker - append, flush, reply: one thread, its own topics

    The one thing to know is the group commit. The worker drains whatever
    writes are queued (up to ZPER_FRONT_DRAIN_MAX writes holding at most
    ZPER_FRONT_GROUP_MESSAGES_MAX messages), appends each to its topic, then
    flushes every topic that either has a client waiting for a reply (modes
    1, 2, 3), whose flush policy (flush_messages, flush_interval) is due, or
    that holds ZPER_FRONT_GROUP_MESSAGES_MAX messages awaiting their acks, and only then replies and notifies the ack: one
    fdatasync covers everything that arrived meanwhile, and nothing is ever
    acknowledged before it is durable. Between groups the poll timeout is
    the earliest flush_interval deadline of a dirty topic, so a quiet topic
    still becomes durable within the interval.

    Because the front routes by topic name, this thread is the only writer
    of its topics' partitions, so it can track each topic's next legacy
    byte position itself (the position every ack names).
    ========================================================================= */

#include "zper_front.h"
#include "zper_partition.h"
#include "zper_wire.h"
#include <assert.h>
#include <errno.h>

//  A write waiting for its topic's next flush.
typedef struct {
    zmsg_t *envelope;                   //  routing id [+ REQ delimiter]
    uint8_t mode;
    zframe_t *id;                       //  message id (first frame) or batch id
    zframe_t *batch;                    //  modes 3/4: the encoded messages
    int64_t offset;                     //  first logical offset
    int64_t position;                   //  legacy byte position of the first message
    size_t count;                       //  messages
    size_t bytes;                       //  bytes of their storage encoding
} pending_t;

typedef struct {
    char name [ZPER_TOPIC_MAX + 1];
    zper_partition_t *partition;
    int64_t durable_offset;             //  as of our last flush
    int64_t next_position;              //  legacy position of the next append
    int64_t dirty_since_ms;             //  monotonic; 0: nothing unflushed
    bool client_waiting;                //  a mode 1/2/3 write is pending
    size_t pending_messages;            //  stored messages in pending, awaiting their acks
    zlistx_t *pending;                  //  pending_t, in append order
} topic_t;

typedef struct {
    zper_broker_t *broker;
    size_t index;
    zsock_t *pipe;
    zsock_t *replies;                   //  PUSH to the front thread
    zsock_t *notes;                     //  PUSH to ack
    zhashx_t *topics;                   //  name -> topic_t
    size_t group_messages;              //  messages appended in the current group
    int64_t beat_ms;                    //  monotonic time of our last PONG
} worker_t;

static void
s_pending_destroy (void **item)
{
    pending_t *pending = (pending_t *) *item;
    zmsg_destroy (&pending->envelope);
    zframe_destroy (&pending->id);
    zframe_destroy (&pending->batch);
    freen (pending);
    *item = NULL;
}

static void
s_topic_destroy (void **item)
{
    topic_t *topic = (topic_t *) *item;
    zlistx_destroy (&topic->pending);
    freen (topic);
    *item = NULL;
}

static bool
s_mode_replies (uint8_t mode)
{
    return mode == 1 || mode == 2 || mode == 3;
}

//  Send a reply: envelope, then the payload frames of body (consumed).
static void
s_reply_send (worker_t *self, zmsg_t *envelope, zmsg_t **body_p)
{
    zmsg_t *reply = zmsg_dup (envelope);
    zframe_t *frame;
    while ((frame = zmsg_pop (*body_p)))
        zmsg_append (reply, &frame);
    zmsg_destroy (body_p);
    zmsg_send (&reply, self->replies);
}

//  Reply to a write (success when status is OK). Modes 0 and 4 never get
//  a reply; an error to mode 1/2 is [id][status], mode 3 gets its fixed
//  four frames (docs/protocol.md 2, 2.1).
static void
s_reply (worker_t *self, zmsg_t *envelope, uint8_t mode, zframe_t *id, uint8_t status,
         int64_t offset, size_t count)
{
    if (!s_mode_replies (mode) || !envelope)
        return;
    zmsg_t *body = zmsg_new ();
    if (mode == 3) {
        zper_wire_add_status (body, status);
        zframe_t *copy = zframe_dup (id);
        zmsg_append (body, &copy);
        zper_wire_add_int64 (body, status == ZPER_STATUS_OK? offset: -1);
        zper_wire_add_int32 (body, status == ZPER_STATUS_OK? (int32_t) count: 0);
    }
    else {
        zframe_t *copy = id? zframe_dup (id): zframe_new_empty ();
        zmsg_append (body, &copy);
        if (status != ZPER_STATUS_OK)
            zper_wire_add_status (body, status);
    }
    s_reply_send (self, envelope, &body);
}

static topic_t *
s_topic_require (worker_t *self, const char *name)
{
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (topic)
        return topic;
    zper_partition_t *partition = zper_log_partition (self->broker->log, name,
                                                      ZPER_PARTITION_DEFAULT, true);
    if (!partition) {
        zsys_error ("front: cannot open topic %s: %s", name, strerror (errno));
        return NULL;
    }
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    topic = (topic_t *) zmalloc (sizeof (topic_t));
    snprintf (topic->name, sizeof topic->name, "%s", name);
    topic->partition = partition;
    topic->durable_offset = bounds.durable_offset;
    topic->next_position = bounds.durable_position;
    topic->pending = zlistx_new ();
    zlistx_set_destructor (topic->pending, s_pending_destroy);
    zhashx_insert (self->topics, name, topic);
    return topic;
}

//  The disk refused: the log discarded every undurable message of the
//  topic (zper_partition_append, zper_partition_flush), so every write
//  pending on it fails with 105 and the topic restarts from its durable end.
//  Each failed write is counted: for modes 0 and 4 the counter is the only
//  trace of a dropped write.
static void
s_topic_fail (worker_t *self, topic_t *topic)
{
    for (pending_t *pending = (pending_t *) zlistx_first (topic->pending); pending;
         pending = (pending_t *) zlistx_next (topic->pending)) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_STORAGE_ERROR);
        s_reply (self, pending->envelope, pending->mode, pending->id, ZPER_STATUS_STORAGE_ERROR,
                 -1, 0);
    }
    zlistx_purge (topic->pending);
    zper_bounds_t bounds;
    zper_partition_bounds (topic->partition, &bounds);
    topic->durable_offset = bounds.durable_offset;
    topic->next_position = bounds.durable_position;
    topic->dirty_since_ms = 0;
    topic->client_waiting = false;
}

//  Map an append's errno to a reply status and count it.
static uint8_t
s_append_status (worker_t *self, topic_t *topic, int error)
{
    if (error == EMSGSIZE) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_TOO_LARGE);
        return ZPER_STATUS_MESSAGE_TOO_LARGE;
    }
    if (error == EPROTO || error == EINVAL) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_BAD_WRITE);
        return ZPER_STATUS_INVALID_ARGUMENT;
    }
    zsys_error ("front: append to topic %s failed: %s", topic->name, strerror (error));
    s_topic_fail (self, topic);
    zper_stats_count (self->broker->stats, ZPER_COUNTER_STORAGE_ERROR);     //  this write
    return ZPER_STATUS_STORAGE_ERROR;
}

//  Check max_message per frame and per message before touching the log.
static bool
s_sizes_allowed (worker_t *self, zmsg_t *body)
{
    size_t limit = self->broker->config->max_message, total = 0;
    for (zframe_t *frame = zmsg_first (body); frame; frame = zmsg_next (body)) {
        if (zframe_size (frame) > limit)
            return false;
        total += zframe_size (frame);
    }
    return total <= limit;
}

//  Append body (the message's frames, or [batch id][batch]) to topic and
//  queue it for the next flush. Returns 0 or an error status.
static uint8_t
s_append (worker_t *self, topic_t *topic, uint8_t mode, zmsg_t *body, pending_t *pending)
{
    int64_t now = zclock_time ();       //  the message's timestamp
    if (mode == 3 || mode == 4) {
        if (zmsg_size (body) != 2) {
            zper_stats_count (self->broker->stats, ZPER_COUNTER_BAD_WRITE);
            return ZPER_STATUS_INVALID_ARGUMENT;
        }
        pending->batch = zmsg_last (body);
        zmsg_remove (body, pending->batch);
        pending->offset = zper_partition_append_encoded (
            topic->partition, zframe_data (pending->batch), zframe_size (pending->batch), now,
            &pending->count);
        pending->bytes = zframe_size (pending->batch);
        if (pending->offset >= 0 && pending->count == 0) {
            zper_stats_count (self->broker->stats, ZPER_COUNTER_BAD_WRITE);
            return ZPER_STATUS_INVALID_ARGUMENT;
        }
    }
    else {
        size_t frame_count = zmsg_size (body);
        zper_frame_t *frames = (zper_frame_t *) zmalloc (frame_count * sizeof (zper_frame_t));
        size_t index = 0;
        for (zframe_t *frame = zmsg_first (body); frame; frame = zmsg_next (body), index++) {
            frames [index].data = zframe_data (frame);
            frames [index].size = zframe_size (frame);
        }
        pending->offset = zper_partition_append (topic->partition, frames, frame_count, now);
        pending->count = 1;
        pending->bytes = zper_zmtp_message_size (frames, frame_count);
        freen (frames);
    }
    if (pending->offset < 0)
        return s_append_status (self, topic, errno);
    pending->position = topic->next_position;
    topic->next_position += (int64_t) pending->bytes;
    topic->pending_messages += pending->count;
    self->group_messages += pending->count;
    if (!topic->dirty_since_ms)
        topic->dirty_since_ms = zclock_mono ();
    if (s_mode_replies (mode))
        topic->client_waiting = true;
    return 0;
}

//  Handle one write: [identity struct][routing id][REQ delimiter?][frames...]
static void
s_write (worker_t *self, zmsg_t *msg)
{
    zper_identity_t identity;
    zframe_t *identity_frame = zmsg_pop (msg);
    assert (zframe_size (identity_frame) == sizeof identity);
    memcpy (&identity, zframe_data (identity_frame), sizeof identity);
    zframe_destroy (&identity_frame);

    pending_t *pending = (pending_t *) zmalloc (sizeof (pending_t));
    pending->mode = identity.mode;
    pending->envelope = zmsg_new ();
    zframe_t *routing_id = zmsg_pop (msg);
    zmsg_append (pending->envelope, &routing_id);
    //  A REQ client (mode 2) sends an empty delimiter before its message
    if (identity.mode == 2 && zmsg_size (msg) >= 2 && zframe_size (zmsg_first (msg)) == 0) {
        zframe_t *delimiter = zmsg_pop (msg);
        zmsg_append (pending->envelope, &delimiter);
    }
    pending->id = zframe_dup (zmsg_first (msg));

    uint8_t status = 0;
    topic_t *topic = NULL;
    if (!s_sizes_allowed (self, msg)) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_TOO_LARGE);
        status = ZPER_STATUS_MESSAGE_TOO_LARGE;
        //  An id over the limit is not echoed back
        if (zframe_size (pending->id) > self->broker->config->max_message)
            zframe_reset (pending->id, "", 0);
    }
    else
    if (!(topic = s_topic_require (self, identity.topic))) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_STORAGE_ERROR);
        status = ZPER_STATUS_STORAGE_ERROR;
    }
    else
        status = s_append (self, topic, identity.mode, msg, pending);

    if (status) {
        s_reply (self, pending->envelope, pending->mode, pending->id, status, -1, 0);
        void *item = pending;
        s_pending_destroy (&item);
    }
    else
        zlistx_add_end (topic->pending, pending);
}

//  Acks for the messages of one pending write: [id][position] pairs. A
//  batch's messages are walked to find each one's first frame.
static void
s_note_add_pairs (zmsg_t *note, pending_t *pending)
{
    if (!pending->batch) {
        zframe_t *id = zframe_dup (pending->id);
        zmsg_append (note, &id);
        zper_wire_add_int64 (note, pending->position);
        return;
    }
    const uint8_t *cursor = zframe_data (pending->batch);
    const uint8_t *end = cursor + zframe_size (pending->batch);
    int64_t position = pending->position;
    while (cursor < end) {
        const uint8_t *start = cursor;
        zper_frame_t frame;
        bool more;
        int rc = zper_zmtp_decode (&cursor, end, &frame, &more);
        assert (rc == 0);               //  the log validated the batch
        zmsg_addmem (note, frame.data, frame.size);
        zper_wire_add_int64 (note, position);
        while (more) {
            rc = zper_zmtp_decode (&cursor, end, &frame, &more);
            assert (rc == 0);
        }
        position += cursor - start;
    }
}

//  Make topic durable, then reply to its waiting clients and tell ack.
static void
s_topic_flush (worker_t *self, topic_t *topic)
{
    int64_t durable = zper_partition_flush (topic->partition);
    if (durable < 0) {
        zsys_error ("front: flush of topic %s failed: %s", topic->name, strerror (errno));
        s_topic_fail (self, topic);
        return;
    }
    zmsg_t *note = zmsg_new ();
    zmsg_addstr (note, topic->name);
    zper_wire_add_int64 (note, topic->durable_offset);
    zper_wire_add_int64 (note, durable);
    zper_wire_add_int64 (note, topic->next_position);
    uint64_t messages = 0, bytes = 0;
    for (pending_t *pending = (pending_t *) zlistx_first (topic->pending); pending;
         pending = (pending_t *) zlistx_next (topic->pending)) {
        s_reply (self, pending->envelope, pending->mode, pending->id, ZPER_STATUS_OK,
                 pending->offset, pending->count);
        s_note_add_pairs (note, pending);
        messages += pending->count;
        bytes += pending->bytes;
    }
    zlistx_purge (topic->pending);
    topic->pending_messages = 0;
    topic->dirty_since_ms = 0;
    topic->client_waiting = false;
    zper_stats_written (self->broker->stats, topic->name, messages, bytes);
    topic->durable_offset = durable;
    zmsg_send (&note, self->notes);
}

//  Flush every topic that must be: a client waits, the policy is due, or
//  (force) the worker is stopping. Returns the poll timeout until the next
//  flush_interval deadline, or -1 when nothing is left unflushed.
static int
s_flush_due (worker_t *self, bool force)
{
    int64_t now = zclock_mono ();
    int64_t wall_now = zclock_time ();
    int64_t interval = self->broker->config->flush_interval_ms;
    int64_t next_deadline = -1;
    for (topic_t *topic = (topic_t *) zhashx_first (self->topics); topic;
         topic = (topic_t *) zhashx_next (self->topics)) {
        if (!topic->dirty_since_ms)
            continue;
        //  A flush also bounds its note: one pair per message for ack to publish
        if (force || topic->client_waiting || now - topic->dirty_since_ms >= interval
        ||  topic->pending_messages >= ZPER_FRONT_GROUP_MESSAGES_MAX
        ||  zper_partition_flush_due (topic->partition, wall_now))
            s_topic_flush (self, topic);
        else {
            int64_t deadline = topic->dirty_since_ms + interval;
            if (next_deadline < 0 || deadline < next_deadline)
                next_deadline = deadline;
        }
    }
    return next_deadline < 0? -1: (int) (next_deadline > now? next_deadline - now: 0);
}

//  Handle one message from the pipe: a write (3+ frames) or a command.
//  Returns true on $TERM.
static bool
s_pipe_message (worker_t *self, zmsg_t *msg)
{
    if (zmsg_size (msg) >= 3) {
        s_write (self, msg);
        return false;
    }
    char *command = zmsg_popstr (msg);
    bool terminate = !command || zper_broker_pipe_command (self->pipe, command);
    zstr_free (&command);
    return terminate;
}

void
zper_front_worker_actor (zsock_t *pipe, void *args)
{
    zper_front_worker_args_t *arguments = (zper_front_worker_args_t *) args;
    worker_t self = { .broker = arguments->broker, .index = arguments->index, .pipe = pipe,
                      .topics = zhashx_new () };
    zhashx_set_destructor (self.topics, s_topic_destroy);
    self.replies = zsock_new_push (">" ZPER_INPROC_FRONT_REPLIES);
    self.notes = zsock_new_push (">" ZPER_INPROC_NOTES);
    //  No limit on replies: the front thread may be blocked handing us a
    //  write while we hand it replies, and a limit would deadlock the two.
    //  Replies are bounded anyway, by the writes in flight.
    zsock_set_sndhwm (self.replies, 0);
    //  Replies and notes of the last flush must outlive this thread
    zsock_set_linger (self.replies, ZPER_SHUTDOWN_LINGER_MS);
    zsock_set_linger (self.notes, ZPER_SHUTDOWN_LINGER_MS);
    zsock_signal (pipe, 0);

    bool terminated = false;
    int timeout = -1;
    while (!terminated) {
        zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout) == -1 && zmq_errno () != EINTR)
            break;
        //  A group ends when the queue is empty or the group is large
        //  enough: a turn must stay short for the next PING to be answered.
        self.group_messages = 0;
        for (int drained = 0; drained < ZPER_FRONT_DRAIN_MAX && !terminated
                           && self.group_messages < ZPER_FRONT_GROUP_MESSAGES_MAX
                           && (zsock_events (pipe) & ZMQ_POLLIN); drained++) {
            zmsg_t *msg = zmsg_recv (pipe);
            terminated = !msg || s_pipe_message (&self, msg);
            zmsg_destroy (&msg);
        }
        timeout = s_flush_due (&self, terminated);
        //  A PING waits behind every write queued before it; a worker that
        //  keeps finishing (bounded) turns is alive, so it says so itself.
        int64_t now = zclock_mono ();
        if (!terminated && now - self.beat_ms >= ZPER_HEARTBEAT_INTERVAL_MS) {
            zstr_send (pipe, "PONG");
            self.beat_ms = now;
        }
    }
    zhashx_destroy (&self.topics);
    zsock_destroy (&self.replies);
    zsock_destroy (&self.notes);
}
