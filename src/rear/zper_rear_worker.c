/*  =========================================================================
    zper_rear_worker - answer readers; keep their streams and long polls

    Requests arrive from the rear thread with their envelope; answers go
    back over a PUSH socket (the rear thread owns the ROUTER). What a
    worker keeps between requests:
      - streams: a legacy streaming FETCH, by reader; the next logical
        offset to read and whether a chunk is with the rear thread;
      - polls: READs waiting at the visible end, with a deadline.
    Streams wake on the visible bus (a topic moved) and on the thread's
    CREDIT; polls on the bus and on their deadline. Any new request from a
    reader ends that reader's stream, as the legacy protocol says, and
    answers its long poll with what is there, so replies keep their order.

    The bus carries a note for every write group of every topic, so a
    worker listens to it only while it has a poll or a stream (and for
    ZPER_REAR_BUS_LINGER_MS after, so that a reader that polls again and
    again does not subscribe each time): an idle worker costs no wake-up
    per write. A subscription reaches the bus's publishers late (libzmq
    applies it at a later send), so a note sent meanwhile may be lost:
    ZPER_REAR_BUS_SETTLE_MS after subscribing, the worker looks at the log
    itself once, answering the polls and pumping the streams that moved.

    A stream goes to the rear thread as chunks: one log view of up to
    ZPER_REAR_STREAM_WINDOW_BYTES, handed over whole (zper_rear.h), so a
    worker does one read and one inproc send per window, not per message.
    FETCH super frames are lent from the log's mapping (zper_view_lend).

    Security on: the worker keeps a guard; each request comes with the
    frame that carries the reader's key (zper_rear_header_t.sender), which
    zper_rear_command_execute checks. A stream or a long poll is checked
    when it is asked for.
    ========================================================================= */

#include "zper_rear.h"
#include "zper_hops.h"
#include "zper_partition.h"
#include "zper_wire.h"
#include <assert.h>
#include <errno.h>

typedef struct {
    zmsg_t *envelope;
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    int64_t next_offset;                //  after the last chunk handed to the thread
    uint32_t number;                    //  tells the thread's answers to this stream apart
    bool awaiting_credit;               //  a chunk is with the rear thread
} stream_t;

typedef struct {
    zmsg_t *envelope;
    zper_rear_continuation_t continuation;
} poll_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *output;                    //  PUSH to the rear thread
    zsock_t *bus;                       //  SUB to the visible bus
    zhashx_t *streams;                  //  routing id (hex) -> stream_t
    zlistx_t *polls;                    //  poll_t
    uint32_t last_stream;               //  numbers streams; never 0
    zper_bus_interest_t bus_interest;   //  listening to the bus while a poll or stream needs it
    zper_guard_t *guard;                //  security on: who may read what; else NULL
} worker_t;

static void
s_stream_destroy (void **item)
{
    stream_t *stream = (stream_t *) *item;
    zmsg_destroy (&stream->envelope);
    freen (stream);
    *item = NULL;
}

static void
s_poll_destroy (void **item)
{
    poll_t *poll = (poll_t *) *item;
    zmsg_destroy (&poll->envelope);
    freen (poll);
    *item = NULL;
}

//  Send [header][envelope][frames...][lent...] to the rear thread. frames
//  may be NULL and is consumed; lent messages are moved.
static void
s_output (worker_t *self, uint8_t kind, uint32_t stream, zmsg_t *envelope, zmsg_t **frames_p,
          zmq_msg_t *lent, size_t lent_count)
{
    zper_rear_header_t header = { kind, (uint8_t) zmsg_size (envelope), stream, NULL };
    void *socket = zsock_resolve (self->output);
    size_t frame_count = frames_p && *frames_p? zmsg_size (*frames_p): 0;
    zmq_send (socket, &header, sizeof header, ZMQ_SNDMORE);
    size_t remaining = zmsg_size (envelope) + frame_count + lent_count;
    for (zframe_t *frame = zmsg_first (envelope); frame; frame = zmsg_next (envelope))
        zmq_send (socket, zframe_data (frame), zframe_size (frame), --remaining? ZMQ_SNDMORE: 0);
    for (size_t index = 0; index < frame_count; index++) {
        zframe_t *frame = zmsg_pop (*frames_p);
        zframe_send (&frame, socket, --remaining? ZFRAME_MORE: 0);
    }
    for (size_t index = 0; index < lent_count; index++)
        zmq_msg_send (&lent [index], socket, --remaining? ZMQ_SNDMORE: 0);
    if (frames_p)
        zmsg_destroy (frames_p);
}

static void
s_reply (worker_t *self, zmsg_t *envelope, zper_rear_reply_t *reply)
{
    zframe_t *status = zmsg_first (reply->frames);
    if (status && zframe_size (status) == 1)
        zper_stats_status (self->broker->stats, ZPER_STATS_REAR, zframe_data (status) [0]);
    s_output (self, ZPER_REAR_REPLY, 0, envelope, &reply->frames, &reply->lent,
              reply->has_lent? 1: 0);
}

static zper_rear_reply_t
s_reply_new (void)
{
    zper_rear_reply_t reply = { .frames = zmsg_new () };
    zmq_msg_init (&reply.lent);
    return reply;
}

static void
s_reply_close (zper_rear_reply_t *reply)
{
    zmsg_destroy (&reply->frames);
    zmq_msg_close (&reply->lent);
}

//  Hand the rear thread the next chunk of a stream: one view of visible
//  messages, which the thread then owns (zper_rear.h).
static void
s_stream_pump (worker_t *self, stream_t *stream)
{
    if (stream->awaiting_credit)
        return;
    zper_partition_t *partition = zper_log_partition (self->broker->log, stream->topic,
                                                      ZPER_PARTITION_DEFAULT, false);
    zper_view_t *view = zper_rear_follow (partition, &stream->next_offset,
                                          ZPER_REAR_STREAM_WINDOW_BYTES);
    if (!view)
        return;                         //  nothing yet: the visible bus wakes us
    //  A view holds consecutive offsets from the one read
    stream->next_offset += (int64_t) zper_view_count (view);
    stream->awaiting_credit = true;
    zmq_msg_t pointer;
    zmq_msg_init_size (&pointer, sizeof view);
    memcpy (zmq_msg_data (&pointer), &view, sizeof view);
    zmsg_t *topic = zmsg_new ();       //  the thread counts what it sends under it
    zmsg_addstr (topic, stream->topic);
    s_output (self, ZPER_REAR_CHUNK, stream->number, stream->envelope, &topic, &pointer, 1);
}

//  Answer a poll with what is there now (maybe nothing) and forget it.
//  Returns the next poll in the list.
static poll_t *
s_poll_answer (worker_t *self, poll_t *poll)
{
    zper_rear_reply_t reply = s_reply_new ();
    zper_rear_command_read (self->broker, poll->continuation.topic, poll->continuation.offset,
                            poll->continuation.max_bytes, &reply);
    s_reply (self, poll->envelope, &reply);
    s_reply_close (&reply);
    zlistx_delete (self->polls, zlistx_cursor (self->polls));
    return (poll_t *) zlistx_first (self->polls);
}

//  Answer the polls of topic that visible_offset gives something to read,
//  or (topic NULL) the polls past their deadline at now. A note that does
//  not pass a poll's offset (it can arrive after the writer's own ack, for
//  data the poll already had) leaves the poll waiting.
static void
s_polls_answer (worker_t *self, const char *topic, int64_t visible_offset, int64_t now)
{
    poll_t *poll = (poll_t *) zlistx_first (self->polls);
    while (poll) {
        bool due = topic? streq (poll->continuation.topic, topic)
                          && visible_offset > poll->continuation.offset
                        : now >= poll->continuation.deadline_ms;
        poll = due? s_poll_answer (self, poll): (poll_t *) zlistx_next (self->polls);
    }
}

//  A reader's new request ends its long poll, as it ends its stream: the
//  poll is answered now, with what is there, so that the reader's replies
//  keep the order of its requests.
static void
s_poll_end (worker_t *self, zmsg_t *envelope)
{
    poll_t *poll = (poll_t *) zlistx_first (self->polls);
    while (poll)
        poll = zframe_eq (zmsg_first (poll->envelope), zmsg_first (envelope))
             ? s_poll_answer (self, poll): (poll_t *) zlistx_next (self->polls);
}

static char *
s_key (zmsg_t *envelope)
{
    return zframe_strhex (zmsg_first (envelope));
}

//  End a reader's stream, if it has one. A chunk still with the rear
//  thread is dropped there before this request's answer goes out.
static void
s_stream_end (worker_t *self, const char *key)
{
    stream_t *stream = (stream_t *) zhashx_lookup (self->streams, key);
    if (stream && stream->awaiting_credit)
        s_output (self, ZPER_REAR_DROP, stream->number, stream->envelope, NULL, NULL, 0);
    zhashx_delete (self->streams, key);
}

//  A request: [envelope][command][args...], from sender (NULL: security off)
static void
s_request (worker_t *self, zmsg_t *envelope, zmsg_t *request, zmq_msg_t *sender)
{
    char *key = s_key (envelope);
    s_stream_end (self, key);
    s_poll_end (self, envelope);
    if (zmsg_size (request) == 0)
        zmsg_addmem (request, NULL, 0);     //  an empty request is an unknown command
    zper_rear_reply_t reply = s_reply_new ();
    zper_rear_continuation_t continuation = { .offset = 0 };
    bool is_req = zmsg_size (envelope) == 2;
    zper_rear_access_t access = { self->guard, sender };
    zper_rear_outcome_t outcome = zper_rear_command_execute (
        self->broker, zmsg_first (envelope), request, is_req, &access, &reply, &continuation);
    if (outcome == ZPER_REAR_SILENT)
        ;                               //  a key cut off gets nothing
    else
    if (outcome == ZPER_REAR_WAIT) {
        poll_t *poll = (poll_t *) zmalloc (sizeof (poll_t));
        poll->envelope = zmsg_dup (envelope);
        poll->continuation = continuation;
        zlistx_add_end (self->polls, poll);
    }
    else
        s_reply (self, envelope, &reply);
    if (outcome == ZPER_REAR_STREAM) {
        stream_t *stream = (stream_t *) zmalloc (sizeof (stream_t));
        stream->envelope = zmsg_dup (envelope);
        snprintf (stream->topic, sizeof stream->topic, "%s", continuation.topic);
        stream->next_offset = continuation.offset;
        if (++self->last_stream == 0)   //  0 means "any stream" to the thread
            self->last_stream = 1;
        stream->number = self->last_stream;
        zhashx_update (self->streams, key, stream);
        s_stream_pump (self, stream);
    }
    s_reply_close (&reply);
    zstr_free (&key);
}

//  Flow control from the rear thread for one stream: CREDIT (its chunk is
//  all queued for the reader) or GONE (the reader disconnected). An answer
//  about a stream that has since ended is ignored.
static void
s_flow (worker_t *self, zper_rear_header_t *header, zmsg_t *envelope)
{
    char *key = s_key (envelope);
    stream_t *stream = (stream_t *) zhashx_lookup (self->streams, key);
    if (stream && stream->number == header->stream) {
        if (header->kind == ZPER_REAR_GONE)
            zhashx_delete (self->streams, key);
        else {
            stream->awaiting_credit = false;
            s_stream_pump (self, stream);
        }
    }
    zstr_free (&key);
}

//  A message on the pipe: a header-framed request or flow message, or a
//  command. Returns true on $TERM.
static bool
s_pipe_message (worker_t *self, zmsg_t *msg)
{
    zframe_t *first = zmsg_first (msg);
    if (zmsg_size (msg) >= 2 && zframe_size (first) == sizeof (zper_rear_header_t)) {
        zper_rear_header_t header;
        zframe_t *frame = zmsg_pop (msg);
        memcpy (&header, zframe_data (frame), sizeof header);
        zframe_destroy (&frame);
        zmsg_t *envelope = zmsg_new ();
        for (int index = 0; index < header.envelope_frames && zmsg_size (msg); index++) {
            frame = zmsg_pop (msg);
            zmsg_append (envelope, &frame);
        }
        if (header.kind == ZPER_REAR_REQUEST)
            s_request (self, envelope, msg, header.sender);
        else
            s_flow (self, &header, envelope);
        if (header.sender) {
            zmq_msg_close (header.sender);
            freen (header.sender);
        }
        zmsg_destroy (&envelope);
        return false;
    }
    char *command = zmsg_popstr (msg);
    bool terminate = !command || zper_broker_pipe_command (self->pipe, command);
    zstr_free (&command);
    return terminate;
}

static void
s_visible (worker_t *self, zmsg_t *msg)
{
    zper_visible_note_t note;
    if (zper_broker_note_decode (msg, &note))
        return;
    size_t polls = zlistx_size (self->polls);
    s_polls_answer (self, note.topic, note.visible_offset, 0);
    if (zlistx_size (self->polls) < polls) {
        int64_t received_us, noted_us;
        zper_broker_note_stamps (msg, &received_us, &noted_us);
        zper_hops_record (ZPER_HOP_BUS_TO_READ_REPLY, noted_us);
    }
    for (stream_t *stream = (stream_t *) zhashx_first (self->streams); stream;
         stream = (stream_t *) zhashx_next (self->streams))
        if (streq (stream->topic, note.topic))
            s_stream_pump (self, stream);
}

//  A subscription holds now: what notes it may have missed is in the log.
//  Answer the polls whose topic moved past them, pump every stream (one
//  with nothing new reads nothing).
static void
s_bus_settled (worker_t *self)
{
    poll_t *poll = (poll_t *) zlistx_first (self->polls);
    while (poll) {
        zper_partition_t *partition = zper_log_partition (
            self->broker->log, poll->continuation.topic, ZPER_PARTITION_DEFAULT, false);
        zper_bounds_t bounds = { 0 };
        if (partition)
            zper_partition_bounds (partition, &bounds);
        poll = bounds.visible_offset > poll->continuation.offset
             ? s_poll_answer (self, poll): (poll_t *) zlistx_next (self->polls);
    }
    for (stream_t *stream = (stream_t *) zhashx_first (self->streams); stream;
         stream = (stream_t *) zhashx_next (self->streams))
        s_stream_pump (self, stream);
}

//  Listen to the bus while some poll or stream needs it (the top comment
//  says why not always). Returns the time until this must run again
//  (settle or linger), or -1.
static int64_t
s_bus_interest (worker_t *self, int64_t now)
{
    bool settled;
    int64_t wait = zper_broker_bus_interest (
        &self->bus_interest, self->bus,
        zlistx_size (self->polls) || zhashx_size (self->streams), now, &settled);
    if (settled)
        s_bus_settled (self);
    return wait;
}

//  Answer the expired polls and keep the bus subscription; returns the
//  poll timeout until the next deadline, settle or linger, or -1.
static int
s_timers (worker_t *self)
{
    int64_t now = zclock_mono ();
    s_polls_answer (self, NULL, 0, now);
    int64_t next = -1;
    for (poll_t *poll = (poll_t *) zlistx_first (self->polls); poll;
         poll = (poll_t *) zlistx_next (self->polls))
        if (next < 0 || poll->continuation.deadline_ms < next)
            next = poll->continuation.deadline_ms;
    int64_t bus_wait = s_bus_interest (self, now);
    next = next < 0? -1: next > now? next - now: 0;
    if (bus_wait >= 0 && (next < 0 || bus_wait < next))
        next = bus_wait;
    return (int) next;
}

void
zper_rear_worker_actor (zsock_t *pipe, void *args)
{
    zper_rear_worker_args_t *arguments = (zper_rear_worker_args_t *) args;
    worker_t self = { .broker = arguments->broker, .pipe = pipe };
    self.output = zsock_new_push (">" ZPER_INPROC_REAR_REPLIES);
    //  No limit towards the rear thread, which may be blocked handing us a
    //  request: a limit could deadlock the two. Output stays bounded by the
    //  requests in flight and one chunk (a view, not its bytes) per stream.
    zsock_set_sndhwm (self.output, 0);
    //  A chunk sent just before this worker stops owns a view: linger, so
    //  that the rear thread still receives it and destroys the view
    zsock_set_linger (self.output, -1);
    self.bus = zper_broker_bus_subscriber (self.broker->config, NULL);  //  s_bus_interest
    self.streams = zhashx_new ();
    zhashx_set_destructor (self.streams, s_stream_destroy);
    self.polls = zlistx_new ();
    zlistx_set_destructor (self.polls, s_poll_destroy);
    self.guard = zper_broker_guard_new (self.broker);
    if (self.broker->security && !self.guard)
        zsys_error ("rear: cannot read security.keys %s: every request is refused with 109",
                    self.broker->config->security_keys);
    zsock_signal (pipe, 0);

    bool terminated = false;
    int timeout = -1;
    while (!terminated) {
        zmq_pollitem_t items [] = { { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
                                    { zsock_resolve (self.bus), 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, 2, timeout) == -1 && zmq_errno () != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (pipe);
            terminated = !msg || s_pipe_message (&self, msg);
            zmsg_destroy (&msg);
        }
        if (!terminated && (items [1].revents & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (self.bus);
            if (msg)
                s_visible (&self, msg);
            zmsg_destroy (&msg);
        }
        timeout = zper_broker_timeout_min (s_timers (&self),
                                           zper_broker_guard_tick (self.broker, self.guard));
    }
    zper_guard_destroy (&self.guard);
    zhashx_destroy (&self.streams);
    zlistx_destroy (&self.polls);
    zsock_destroy (&self.output);
    zsock_destroy (&self.bus);
}
