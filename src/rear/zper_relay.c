/*  =========================================================================
    zper_relay - live delivery of visible messages to readers and SUBs

    The one thing to know: the relay never holds messages. Each reader is a
    position (next logical offset) in its topic; each wake-up reads from the
    log at that position and sends as much as the reader's queue takes,
    every message lent from the log's mapping (no copy, no allocation of
    ours per message). A reader that keeps up keeps its log view between
    turns (a reference to the mapping, not a copy). A reader whose queue is
    full keeps its position and is retried, soon at first and less often
    while it stays full; once a retry sends nothing it holds no view
    either, so a slow reader costs no memory and loses nothing (unless
    retention removes what it has not read: it then resumes at the oldest
    retained message, as a streaming FETCH does). A reader that
    disconnected (ROUTER_MANDATORY says EHOSTUNREACH) is forgotten.

    A wake-up drains the notes waiting on the visible bus (the one inproc
    PUB of each front worker) before it sends anything, so a burst of notes
    costs one read and one run of sends per reader, not one per note. The
    relay listens to the bus only while it has a reader or a PUB
    subscription (and ZPER_REAR_BUS_LINGER_MS after): a broker nobody
    follows live does not wake it per write. A subscription reaches the
    bus late (zper_rear_worker.c says why), so ZPER_REAR_BUS_SETTLE_MS after
    subscribing every reader takes a turn (reading the log, not notes); and
    a topic's PUB position skips what was written while the relay did not
    listen (nobody could have wanted it), at the first note it hears.
    Readers take turns of at most ZPER_RELAY_WINDOW_MESSAGES; one with more
    to send goes again at once, after the others and after any new note or
    request.

    The PUB side keeps one position per topic, starting where the relay
    first heard of the topic; PUB drops for slow subscribers, as PUB does.
    Its socket is an XPUB whose subscriptions the relay keeps: a topic no
    subscriber matches is skipped (its position jumps to the visible end)
    without reading the log, so the PUB side costs nothing unused.

    Bytes, not only messages: libzmq queues 1,000 messages per peer, each
    up to max_message, lent from the mapping, which keeps the segment's
    pages resident (and a deleted segment on disk). So each reader has an
    output budget (relay.output_budget, zper_output.h): a reader over it
    is treated as full (it keeps its position, loses nothing). The PUB's
    subscribers share each message, so they share one budget
    (relay.pub.output_budget): a message that would pass it is not
    published. A subscriber misses messages, counted in relay_pub_dropped,
    when its queue is full or the budget is spent.

    Security on: a reader's hello or RESUME registers it only if its key
    may read the topic of its identity (else [109]); the PUB side applies
    only the subscriptions whose key may read every topic they match
    (zper_gate). Both are checked when given: a grant taken away later
    stops nothing already registered, a key removed from security.keys
    does (its connections are closed).
    ========================================================================= */

#include "zper_relay.h"
#include "zper_hops.h"
#include "zper_identity.h"
#include "zper_partition.h"
#include "zper_rear.h"
#include "zper_wire.h"
#include <assert.h>


typedef enum {
    READER_IDLE,                        //  sent everything visible: a note wakes it
    READER_MORE,                        //  more to send than one turn: goes again at once
    READER_BLOCKED                      //  its queue was full: retried at retry_at_ms
} reader_state_t;

typedef struct {
    zframe_t *routing_id;
    char topic [ZPER_TOPIC_MAX + 1];
    int64_t next_offset;
    zper_view_t *view;                  //  held between turns while the reader keeps up
    zper_message_t message;             //  the view's next message, when started
    bool started;
    reader_state_t state;
    zper_rear_retry_t retry;            //  while blocked
    zper_output_t *output;              //  what libzmq holds for it: relay.output_budget
} reader_t;

//  What the PUB side has published of a topic, and what it may publish.
typedef struct {
    int64_t next_offset;
    int64_t visible_offset;
    uint64_t listening;                 //  bus_interest.listening when last heard of
    zper_subscriptions_cache_t wanted;
    bool due;                           //  listed in relay_t.due
    char topic [];                      //  allocated with the struct
} published_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *publisher;                 //  XPUB, with ZMQ_XPUB_NODROP
    zper_output_t *published_output;    //  what the publisher's queues hold
    zper_subscriptions_t *subscriptions;    //  of the publisher
    zsock_t *bus;
    zhashx_t *readers;                  //  routing id (hex) -> reader_t
    zhashx_t *published;                //  topic -> published_t
    zlist_t *due;                       //  published_t with something to publish: a wake-up
                                        //  visits these, not every topic the relay heard of
    zper_guard_t *guard;                //  security on: who may read what; else NULL
    zper_gate_t *gate;                  //  security on: the PUB side's subscriptions
    zmq_msg_t sender;                   //  security on: the request's first frame after the
                                        //  routing id: it carries the key (zper_front.c says why)
    //  zper_hops, per wake-up: when its first note was read, the oldest
    //  write its notes cover, and what it sent (readers and PUB)
    int64_t notes_read_us;
    int64_t notes_received_us;
    uint64_t sent;
    zper_bus_interest_t bus_interest;   //  listening to the bus while someone follows live
} relay_t;

static void
s_reader_destroy (void **item)
{
    reader_t *reader = (reader_t *) *item;
    zframe_destroy (&reader->routing_id);
    zper_view_destroy (&reader->view);
    zper_output_destroy (&reader->output);
    freen (reader);
    *item = NULL;
}

static void
s_free_item (void **item)
{
    freen (*item);
    *item = NULL;
}

static zper_partition_t *
s_partition (relay_t *self, const char *topic)
{
    return zper_log_partition (self->broker->log, topic, ZPER_PARTITION_DEFAULT, false);
}

//  The reader's next view, from its position; false at the visible end.
static bool
s_reader_read (relay_t *self, reader_t *reader)
{
    reader->view = zper_rear_follow (s_partition (self, reader->topic), &reader->next_offset,
                                     ZPER_REAR_STREAM_WINDOW_BYTES);
    return reader->view != NULL;
}

//  Send a reader what its queue takes, up to one turn, and set its state;
//  *sent and *bytes count what was sent. A reader that keeps up keeps its
//  view between turns, so that catching up reads (and checks) each record
//  once, not once per turn; one whose queue stays full holds nothing.
//  Returns false when the reader is gone and must be forgotten.
static bool
s_reader_turn (relay_t *self, reader_t *reader, size_t *sent_p, uint64_t *bytes_p)
{
    void *router = zsock_resolve (self->router);
    reader->state = READER_IDLE;
    size_t sent = 0;
    *sent_p = 0;
    *bytes_p = 0;
    while (sent < ZPER_RELAY_WINDOW_MESSAGES) {
        if (!reader->view && !s_reader_read (self, reader))
            return true;                //  at the visible end
        if (!reader->started && !zper_view_next (reader->view, &reader->message)) {
            zper_view_destroy (&reader->view);
            continue;
        }
        reader->started = true;
        if (zper_rear_send_message (router, zframe_data (reader->routing_id),
                                    zframe_size (reader->routing_id), reader->view,
                                    &reader->message, reader->output)) {
            if (zmq_errno () != EAGAIN)
                return false;
            //  Its queue or budget is full: retry soon if this turn moved it on
            zper_rear_retry_schedule (&reader->retry, sent > 0, ZPER_RELAY_RETRY_MIN_MS,
                                      ZPER_RELAY_RETRY_MS);
            reader->state = READER_BLOCKED;
            if (sent == 0) {
                zper_view_destroy (&reader->view);
                reader->started = false;
            }
            return true;
        }
        reader->started = false;
        reader->next_offset = reader->message.offset + 1;
        sent++;
        *sent_p = sent;
        *bytes_p += reader->message.size;
    }
    reader->state = READER_MORE;
    return true;
}

//  A reader's turn (s_reader_turn), counted once per turn, not per message.
static bool
s_reader_pump (relay_t *self, reader_t *reader)
{
    size_t sent;
    uint64_t bytes;
    bool alive = s_reader_turn (self, reader, &sent, &bytes);
    zper_stats_read (self->broker->stats, reader->topic, sent, bytes);
    self->sent += sent;
    return alive;
}

//  Publish one message on PUB, unless the budget is spent; count it when
//  some subscriber misses it. Returns whether it was published.
static bool
s_publish_message (relay_t *self, const char *topic, zper_view_t *view,
                   const zper_message_t *message)
{
    void *publisher = zsock_resolve (self->publisher);
    int missed = zper_output_full (self->published_output)? -1
               : zper_output_publish_first (publisher, topic, strlen (topic));
    if (missed) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_RELAY_PUB_DROPPED);
        zper_output_dropped (self->published_output, 1);
    }
    if (missed != -1)
        zper_rear_send_frames (publisher, view, message, self->published_output);
    return missed != -1;
}

//  Publish on PUB what notes made visible since the last wake-up.
static void
s_publish (relay_t *self, const char *topic, published_t *published)
{
    zper_partition_t *partition = s_partition (self, topic);
    uint64_t sent = 0, bytes = 0;
    while (published->next_offset < published->visible_offset) {
        if (zper_output_full (self->published_output)) {
            //  Spent: what is left is dropped without reading the log
            uint64_t dropped = (uint64_t) (published->visible_offset - published->next_offset);
            zper_stats_add (self->broker->stats, ZPER_COUNTER_RELAY_PUB_DROPPED, dropped);
            zper_output_dropped (self->published_output, dropped);
            published->next_offset = published->visible_offset;
            break;
        }
        zper_view_t *view = zper_rear_follow (partition, &published->next_offset,
                                              ZPER_REAR_STREAM_WINDOW_BYTES);
        if (!view)
            break;
        zper_message_t message;
        bool any = false;
        while (zper_view_next (view, &message) && message.offset < published->visible_offset) {
            if (s_publish_message (self, topic, view, &message)) {
                sent++;
                bytes += message.size;
            }
            published->next_offset = message.offset + 1;
            any = true;
        }
        zper_view_destroy (&view);
        if (!any)
            break;
    }
    zper_stats_read (self->broker->stats, topic, sent, bytes);
    self->sent += sent;
}

//  A note: the PUB side may publish up to it, and the topic's idle readers
//  have something to send.
static void
s_note (relay_t *self, const zper_visible_note_t *note)
{
    published_t *published = (published_t *) zhashx_lookup (self->published, note->topic);
    if (!published) {
        size_t topic_size = strlen (note->topic) + 1;
        published = (published_t *) zmalloc (sizeof (published_t) + topic_size);
        published->next_offset = note->from_offset;
        memcpy (published->topic, note->topic, topic_size);
        zhashx_insert (self->published, note->topic, published);
    }
    if (published->listening != self->bus_interest.listening) {
        //  Written while the relay did not listen: no subscriber then
        if (published->next_offset < note->from_offset)
            published->next_offset = note->from_offset;
        published->listening = self->bus_interest.listening;
    }
    if (note->visible_offset > published->visible_offset)
        published->visible_offset = note->visible_offset;
    if (!published->due && published->next_offset < published->visible_offset) {
        published->due = true;
        zlist_append (self->due, published);
    }
    for (reader_t *reader = (reader_t *) zhashx_first (self->readers); reader;
         reader = (reader_t *) zhashx_next (self->readers))
        if (reader->state == READER_IDLE && streq (reader->topic, note->topic))
            reader->state = READER_MORE;
}

//  Every note waiting on the bus (at most ZPER_RELAY_NOTES_PER_WAKE, so
//  that requests and the pipe keep their turn), then what they made
//  visible on PUB.
static void
s_notes (relay_t *self)
{
    int64_t now = zper_hops_now ();
    self->notes_read_us = now;
    for (size_t count = 0; count < ZPER_RELAY_NOTES_PER_WAKE; count++) {
        zmsg_t *msg = zmsg_recv (self->bus);   //  the bus's receive timeout is 0
        if (!msg)
            break;
        zper_visible_note_t note;
        if (zper_broker_note_decode (msg, &note) == 0) {
            int64_t received_us, noted_us;
            zper_broker_note_stamps (msg, &received_us, &noted_us);
            zper_hops_record_at (ZPER_HOP_BUS_TO_RELAY, noted_us, now);
            if (received_us && (!self->notes_received_us || received_us < self->notes_received_us))
                self->notes_received_us = received_us;
            s_note (self, &note);
        }
        zmsg_destroy (&msg);
    }
    //  Topics the log could not serve now stay due, for the next wake-up
    zlist_t *behind = zlist_new ();
    published_t *published;
    while ((published = (published_t *) zlist_pop (self->due))) {
        if (zper_subscriptions_wanted (self->subscriptions, published->topic, &published->wanted))
            s_publish (self, published->topic, published);
        else
            published->next_offset = published->visible_offset;
        if (published->next_offset < published->visible_offset)
            zlist_append (behind, published);
        else
            published->due = false;
    }
    zlist_destroy (&self->due);
    self->due = behind;
}

//  A reader's hello or RESUME. Replies [103] to a bad identity or request,
//  [101] to an offset outside the topic, [100][offset] to a good RESUME.
static void
s_reader_message (relay_t *self, zmsg_t *msg)
{
    zframe_t *routing_id = zmsg_pop (msg);
    zper_identity_t identity;
    zmsg_t *reply = zmsg_new ();
    int64_t offset = -1;
    bool resume = zmsg_size (msg) >= 1 && zframe_streq (zmsg_first (msg), "RESUME");
    zper_guard_verdict_t verdict = ZPER_GUARD_ALLOWED;
    if (zper_identity_parse (zframe_data (routing_id), zframe_size (routing_id), &identity, NULL)
    ||  (resume && (zmsg_size (msg) != 2 || zper_wire_frame_int64 (zmsg_next (msg), &offset))))
        zper_wire_add_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    else
    if (self->guard
    &&  (verdict = zper_broker_guard_check (self->broker, self->guard, &self->sender,
                                            ZPER_GUARD_READ, identity.topic,
                                            strlen (identity.topic))) != ZPER_GUARD_ALLOWED) {
        //  Not registered; a hello too is answered: silence would look like an idle topic
        if (verdict == ZPER_GUARD_FORBIDDEN) {
            zper_stats_count (self->broker->stats, ZPER_COUNTER_FORBIDDEN);
            zper_wire_add_status (reply, ZPER_STATUS_FORBIDDEN);
        }
    }
    else {
        zper_bounds_t bounds = { 0 };
        zper_partition_t *partition = s_partition (self, identity.topic);
        if (partition)
            zper_partition_bounds (partition, &bounds);
        if (offset == -1)
            offset = bounds.visible_offset;
        else
        if (offset == -2)
            offset = bounds.start_offset;
        if (offset < bounds.start_offset || offset > bounds.visible_offset)
            zper_wire_add_status (reply, ZPER_STATUS_INVALID_OFFSET);
        else {
            char *key = zframe_strhex (routing_id);
            //  A reader that registers again keeps its budget: what libzmq
            //  holds for it is still charged
            reader_t *previous = (reader_t *) zhashx_lookup (self->readers, key);
            reader_t *reader = (reader_t *) zmalloc (sizeof (reader_t));
            if (previous) {
                reader->output = previous->output;
                previous->output = NULL;
            }
            else {
                reader->output = zper_output_new (self->broker->config->relay_output_budget);
                zper_output_set_label_id (reader->output, "relay", zframe_data (routing_id),
                                          zframe_size (routing_id));
            }
            reader->routing_id = zframe_dup (routing_id);
            snprintf (reader->topic, sizeof reader->topic, "%s", identity.topic);
            reader->next_offset = offset;
            reader->state = READER_MORE;        //  pumped right after this message
            zhashx_update (self->readers, key, reader);
            zstr_free (&key);
            if (resume) {
                zper_wire_add_status (reply, ZPER_STATUS_OK);
                zper_wire_add_int64 (reply, offset);
            }
        }
    }
    //  A legacy hello registers silently: legacy readers expect only data
    if (zmsg_size (reply)) {
        zmsg_prepend (reply, &routing_id);
        zmsg_send (&reply, self->router);
    }
    zframe_destroy (&routing_id);
    zmsg_destroy (&reply);
}

//  Listen to the bus while a reader or a PUB subscriber may want a note
//  (the top comment says why not always). Returns the time until this
//  must run again (settle or linger), or -1.
static int64_t
s_bus_interest (relay_t *self, int64_t now)
{
    bool settled;
    int64_t wait = zper_broker_bus_interest (
        &self->bus_interest, self->bus,
        zhashx_size (self->readers) || zper_subscriptions_size (self->subscriptions), now,
        &settled);
    if (settled)
        for (reader_t *reader = (reader_t *) zhashx_first (self->readers); reader;
             reader = (reader_t *) zhashx_next (self->readers))
            if (reader->state == READER_IDLE)
                reader->state = READER_MORE;
    return wait;
}

//  Give every reader with more to send its turn, and retry the blocked
//  ones that are due. Returns the poll timeout: 0 while some reader has
//  more to send, else until the next retry, or -1.
static int
s_pump (relay_t *self)
{
    int64_t now = zclock_mono (), next_retry = -1;
    bool more = false;
    reader_t *reader = (reader_t *) zhashx_first (self->readers);
    while (reader) {
        if (reader->state == READER_MORE
        || (reader->state == READER_BLOCKED && reader->retry.at_ms <= now)) {
            if (!s_reader_pump (self, reader)) {
                zhashx_delete (self->readers, zhashx_cursor (self->readers));
                reader = (reader_t *) zhashx_first (self->readers);
                continue;
            }
        }
        more |= reader->state == READER_MORE;
        if (reader->state == READER_BLOCKED && (next_retry < 0 || reader->retry.at_ms < next_retry))
            next_retry = reader->retry.at_ms;
        reader = (reader_t *) zhashx_next (self->readers);
    }
    return more? 0: next_retry < 0? -1: next_retry > now? (int) (next_retry - now): 0;
}

static int
s_start (relay_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->publisher = zsock_new (ZMQ_XPUB);
    int nodrop = 1;                     //  a full subscriber queue is reported: zper_output.h
    zmq_setsockopt (zsock_resolve (self->publisher), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    self->published_output = zper_output_new (config->relay_pub_output_budget);
    zper_output_set_label (self->published_output, "relay.pub", "*");   //  its subscribers share it
    self->subscriptions = zper_subscriptions_new ();
    self->bus = zper_broker_bus_subscriber (self->broker->config, NULL);   //  s_bus_interest
    zsock_set_rcvtimeo (self->bus, 0);      //  s_notes drains what is waiting
    self->readers = zhashx_new ();
    zhashx_set_destructor (self->readers, s_reader_destroy);
    self->published = zhashx_new ();
    zhashx_set_destructor (self->published, s_free_item);
    self->due = zlist_new ();
    zsock_set_router_mandatory (self->router, 1);
    int64_t frame_limit = ZPER_REQUEST_FRAME_MAX;
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (self->broker->security) {
        self->guard = zper_broker_guard_new (self->broker);
        self->gate = zper_gate_new (zsock_resolve (self->publisher), self->subscriptions,
                                    ZPER_GUARD_READ);
        if (!self->guard) {
            snprintf (reason, reason_size, "cannot read security.keys %.200s",
                      config->security_keys);
            return -1;
        }
    }
    if (zper_broker_bind (self->broker, self->router, "relay", config->relay_bind, reason,
                          reason_size)
    ||  zper_broker_bind (self->broker, self->publisher, "relay.pub", config->relay_pub_bind,
                          reason, reason_size))
        return -1;
    return 0;
}

static void
s_run (relay_t *self)
{
    bool terminated = false;
    int timeout = -1;
    while (!terminated) {
        zmq_pollitem_t items [] = { { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 },
                                    { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
                                    { zsock_resolve (self->bus), 0, ZMQ_POLLIN, 0 },
                                    { zsock_resolve (self->publisher), 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, 4, timeout) == -1) {
            if (zmq_errno () != EINTR)
                break;
            continue;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (self->pipe);
            terminated = !command || zper_broker_pipe_command (self->pipe, command);
            zstr_free (&command);
        }
        if (items [1].revents & ZMQ_POLLIN) {
            zmsg_t *msg = self->guard? zper_broker_recv_keeping (self->router, 1, &self->sender)
                                     : zmsg_recv (self->router);
            if (msg)
                s_reader_message (self, msg);
            zmsg_destroy (&msg);
        }
        if (items [3].revents & ZMQ_POLLIN)
            zper_broker_subscription_recv (self->broker, zsock_resolve (self->publisher),
                                           self->gate, self->guard, self->subscriptions);
        self->sent = 0;
        self->notes_read_us = self->notes_received_us = 0;
        if (items [2].revents & ZMQ_POLLIN)
            s_notes (self);
        int64_t bus_wait = s_bus_interest (self, zclock_mono ());
        timeout = zper_broker_timeout_min (s_pump (self),
                                           zper_broker_guard_tick (self->broker, self->guard));
        timeout = zper_broker_timeout_min (timeout, bus_wait < 0? -1: (int) bus_wait);
        if (self->notes_read_us && self->sent) {
            int64_t now = zper_hops_now ();
            zper_hops_record_at (ZPER_HOP_RELAY_SEND, self->notes_read_us, now);
            zper_hops_record_at (ZPER_HOP_FRONT_TO_RELAY_SEND, self->notes_received_us, now);
        }
    }
}

void
zper_relay_actor (zsock_t *pipe, void *args)
{
    relay_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    zmq_msg_init (&self.sender);
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    zsock_destroy (&self.router);
    zsock_destroy (&self.publisher);
    zper_output_destroy (&self.published_output);
    zper_subscriptions_destroy (&self.subscriptions);
    zsock_destroy (&self.bus);
    zhashx_destroy (&self.readers);
    zlist_destroy (&self.due);
    zhashx_destroy (&self.published);
    zper_gate_destroy (&self.gate);
    zper_guard_destroy (&self.guard);
    zmq_msg_close (&self.sender);
}

//  --------------------------------------------------------------------------
//  Selftest: relay in this process, over inproc; the test announces what
//  it writes on a visible bus as front worker 0 would

void
zper_relay_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-relay-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    zper_broker_t broker;
    assert (zper_broker_open (&broker, &config, verbose) == 0);
    zper_partition_t *partition = zper_log_partition (broker.log, "relayed", "0", true);
    zper_frame_t frames [2] = { { "id", 2 }, { "first", 5 } };
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 0);
    assert (zper_partition_flush (partition) == 1);
    zactor_t *relay = zper_broker_start (zper_relay_actor, &broker, "relay");
    assert (relay);

    zsock_t *subscriber = zsock_new_sub (config.relay_pub_bind, "relayed");
    zsock_set_rcvtimeo (subscriber, 5000);
    zsock_t *reader = zper_broker_test_client (ZMQ_DEALER, config.relay_bind, "relayed", 0);
    zmsg_t *resume = zmsg_new ();
    zmsg_addstr (resume, "RESUME");
    zper_wire_add_int64 (resume, 0);
    zmsg_send (&resume, reader);
    zmsg_t *reply = zmsg_recv (reader);
    int64_t offset;
    assert (reply && zmsg_size (reply) == 2 && zframe_data (zmsg_first (reply)) [0] == ZPER_STATUS_OK);
    assert (zper_wire_frame_int64 (zmsg_last (reply), &offset) == 0 && offset == 0);
    zmsg_destroy (&reply);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "first"));
    zmsg_destroy (&reply);

    //  A new visible message reaches the reader and the SUB socket
    zclock_sleep (100);                 //  the subscription reaches the relay
    frames [1].data = "again";
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 1);
    assert (zper_partition_flush (partition) == 2);
    zsock_t *bus = zper_broker_bus_publisher (0);       //  as front worker 0 would
    zper_visible_note_t note = { "relayed", 1, 2, 22 };
    zper_broker_note_send (bus, &note);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);
    reply = zmsg_recv (subscriber);
    assert (reply && zmsg_size (reply) == 3 && zframe_streq (zmsg_first (reply), "relayed"));
    assert (zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);

    zsock_destroy (&bus);
    zsock_destroy (&reader);
    zsock_destroy (&subscriber);
    zactor_destroy (&relay);
    zper_broker_close (&broker);
}
