/*  =========================================================================
    zper_relay - live delivery of durable messages to readers and SUBs

    The one thing to know: the relay never holds messages. Each reader is a
    position (next logical offset) in its topic; each wake-up (a note on the
    durable bus, or the retry timer) reads from the log at that position
    and sends as much as the reader's queue takes. A reader whose queue is
    full keeps its position and is retried, so a slow reader costs no
    memory and loses nothing; a reader that disconnected (ROUTER_MANDATORY
    says EHOSTUNREACH) is forgotten.

    The PUB side keeps one position per topic, starting where the relay
    first heard of the topic; PUB drops for slow subscribers, as PUB does.
    ========================================================================= */

#include "zper_relay.h"
#include "zper_ack.h"
#include "zper_identity.h"
#include "zper_partition.h"
#include "zper_rear.h"
#include "zper_wire.h"
#include <assert.h>


typedef struct {
    zframe_t *routing_id;
    char topic [ZPER_TOPIC_MAX + 1];
    int64_t next_offset;
    bool behind;                        //  more to send than one turn or a full queue
} reader_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *publisher;
    zsock_t *bus;
    zhashx_t *readers;                  //  routing id (hex) -> reader_t
    zhashx_t *published;                //  topic -> int64_t next offset to publish
} relay_t;

static void
s_reader_destroy (void **item)
{
    reader_t *reader = (reader_t *) *item;
    zframe_destroy (&reader->routing_id);
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

//  Send one message as [prefix][frames...]; the prefix frame is sent
//  without blocking. Returns 0 or -1 (errno from libzmq).
static int
s_send_message (void *socket, const void *prefix, size_t prefix_size, zper_view_t *view,
                zper_message_t *message)
{
    if (zmq_send (socket, prefix, prefix_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    zmq_msg_t *frames = (zmq_msg_t *) zmalloc ((message->frame_count + 1) * sizeof (zmq_msg_t));
    size_t count = zper_rear_lend_frames (view, message, frames);
    for (size_t index = 0; index < count; index++)
        zmq_msg_send (&frames [index], socket, index + 1 < count? ZMQ_SNDMORE: 0);
    freen (frames);
    return 0;
}

//  Send a reader what its queue takes, up to one turn. Returns false when
//  the reader is gone and must be forgotten.
static bool
s_reader_pump (relay_t *self, reader_t *reader)
{
    zper_partition_t *partition = s_partition (self, reader->topic);
    reader->behind = false;
    if (!partition)
        return true;
    void *router = zsock_resolve (self->router);
    size_t sent = 0;
    while (sent < ZPER_RELAY_WINDOW_MESSAGES) {
        zper_view_t *view = zper_partition_read (partition, reader->next_offset,
                                                 ZPER_REAR_STREAM_WINDOW_BYTES);
        if (!view)
            return true;
        zper_message_t message;
        bool any = false;
        while (sent < ZPER_RELAY_WINDOW_MESSAGES && zper_view_next (view, &message)) {
            any = true;
            if (s_send_message (router, zframe_data (reader->routing_id),
                                zframe_size (reader->routing_id), view, &message)) {
                zper_view_destroy (&view);
                if (zmq_errno () == EHOSTUNREACH)
                    return false;
                reader->behind = true;  //  queue full: retry later
                return true;
            }
            reader->next_offset = message.offset + 1;
            sent++;
        }
        zper_view_destroy (&view);
        if (!any)
            return true;
    }
    reader->behind = true;              //  a full turn: let others go first
    return true;
}

//  Publish topic's new durable messages [next published, durable) on PUB.
static void
s_publish (relay_t *self, const zper_visible_note_t *note)
{
    int64_t *next = (int64_t *) zhashx_lookup (self->published, note->topic);
    if (!next) {
        next = (int64_t *) zmalloc (sizeof (int64_t));
        *next = note->from_offset;
        zhashx_insert (self->published, note->topic, next);
    }
    zper_partition_t *partition = s_partition (self, note->topic);
    void *publisher = zsock_resolve (self->publisher);
    while (partition && *next < note->visible_offset) {
        zper_view_t *view = zper_partition_read (partition, *next, ZPER_REAR_STREAM_WINDOW_BYTES);
        if (!view)
            break;
        zper_message_t message;
        bool any = false;
        while (zper_view_next (view, &message) && message.offset < note->visible_offset) {
            s_send_message (publisher, note->topic, strlen (note->topic), view, &message);
            *next = message.offset + 1;
            any = true;
        }
        zper_view_destroy (&view);
        if (!any)
            break;
    }
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
    if (zper_identity_parse (zframe_data (routing_id), zframe_size (routing_id), &identity, NULL)
    ||  (resume && (zmsg_size (msg) != 2 || zper_wire_frame_int64 (zmsg_next (msg), &offset))))
        zper_wire_add_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    else {
        zper_bounds_t bounds = { 0 };
        zper_partition_t *partition = s_partition (self, identity.topic);
        if (partition)
            zper_partition_bounds (partition, &bounds);
        if (offset == -1)
            offset = bounds.durable_offset;
        else
        if (offset == -2)
            offset = bounds.start_offset;
        if (offset < bounds.start_offset || offset > bounds.durable_offset)
            zper_wire_add_status (reply, ZPER_STATUS_INVALID_OFFSET);
        else {
            char *key = zframe_strhex (routing_id);
            reader_t *reader = (reader_t *) zmalloc (sizeof (reader_t));
            reader->routing_id = zframe_dup (routing_id);
            snprintf (reader->topic, sizeof reader->topic, "%s", identity.topic);
            reader->next_offset = offset;
            reader->behind = true;      //  pumped right after this message
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

//  Pump every reader (of topic, or every one that is behind when topic is
//  NULL). Returns true if some reader is still behind.
static bool
s_pump (relay_t *self, const char *topic)
{
    bool behind = false;
    reader_t *reader = (reader_t *) zhashx_first (self->readers);
    while (reader) {
        if (topic? streq (reader->topic, topic): reader->behind) {
            if (!s_reader_pump (self, reader)) {
                zhashx_delete (self->readers, zhashx_cursor (self->readers));
                reader = (reader_t *) zhashx_first (self->readers);
                continue;
            }
        }
        behind |= reader->behind;
        reader = (reader_t *) zhashx_next (self->readers);
    }
    return behind;
}

static int
s_start (relay_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->publisher = zsock_new (ZMQ_PUB);
    self->bus = zsock_new_sub (">" ZPER_INPROC_VISIBLE, "");
    self->readers = zhashx_new ();
    zhashx_set_destructor (self->readers, s_reader_destroy);
    self->published = zhashx_new ();
    zhashx_set_destructor (self->published, s_free_item);
    zsock_set_router_mandatory (self->router, 1);
    int64_t frame_limit = ZPER_REQUEST_FRAME_MAX;
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (zper_broker_bind (self->router, config, config->relay_bind, reason, reason_size)
    ||  zper_broker_bind (self->publisher, config, config->relay_pub_bind, reason, reason_size))
        return -1;
    return 0;
}

static void
s_run (relay_t *self)
{
    zpoller_t *poller = zpoller_new (self->pipe, self->router, self->bus, NULL);
    bool terminated = false, behind = false;
    while (!terminated) {
        void *which = zpoller_wait (poller, behind? ZPER_RELAY_RETRY_MS: -1);
        if (which == self->router) {
            zmsg_t *msg = zmsg_recv (self->router);
            if (msg)
                s_reader_message (self, msg);
            zmsg_destroy (&msg);
            behind = s_pump (self, NULL);
        }
        else
        if (which == self->bus) {
            zmsg_t *msg = zmsg_recv (self->bus);
            zper_visible_note_t note;
            if (msg && zper_broker_note_decode (msg, &note) == 0) {
                s_publish (self, &note);
                behind = s_pump (self, note.topic);
            }
            zmsg_destroy (&msg);
        }
        else
        if (which == self->pipe) {
            char *command = zstr_recv (self->pipe);
            terminated = !command || zper_broker_pipe_command (self->pipe, command);
            zstr_free (&command);
        }
        else
        if (zpoller_expired (poller))
            behind = s_pump (self, NULL);
        else
            terminated = zpoller_terminated (poller);
    }
    zpoller_destroy (&poller);
}

void
zper_relay_actor (zsock_t *pipe, void *args)
{
    relay_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    zsock_destroy (&self.router);
    zsock_destroy (&self.publisher);
    zsock_destroy (&self.bus);
    zhashx_destroy (&self.readers);
    zhashx_destroy (&self.published);
}

//  --------------------------------------------------------------------------
//  Selftest: ack (the durable bus) and relay in this process, over inproc

void
zper_relay_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-relay-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    zper_log_config_t log_config;
    zper_config_log_config (&config, &log_config);
    zper_broker_t broker = { &config, zper_log_new (&log_config), zper_stats_new (), verbose };
    zper_partition_t *partition = zper_log_partition (broker.log, "relayed", "0", true);
    zper_frame_t frames [2] = { { "id", 2 }, { "first", 5 } };
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 0);
    assert (zper_partition_flush (partition) == 1);
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    zactor_t *relay = zper_broker_start (zper_relay_actor, &broker, "relay");
    assert (ack && relay);

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

    //  A new durable message reaches the reader and the SUB socket
    zclock_sleep (100);                 //  the subscription reaches the relay
    frames [1].data = "again";
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 1);
    assert (zper_partition_flush (partition) == 2);
    zsock_t *notes = zsock_new_push (">" ZPER_INPROC_NOTES);
    zmsg_t *note = zmsg_new ();
    zmsg_addstr (note, "relayed");
    zper_wire_add_int64 (note, 1);
    zper_wire_add_int64 (note, 2);
    zper_wire_add_int64 (note, 22);
    zmsg_send (&note, notes);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);
    reply = zmsg_recv (subscriber);
    assert (reply && zmsg_size (reply) == 3 && zframe_streq (zmsg_first (reply), "relayed"));
    assert (zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);

    zsock_destroy (&notes);
    zsock_destroy (&reader);
    zsock_destroy (&subscriber);
    zactor_destroy (&relay);
    zactor_destroy (&ack);
    zper_log_destroy (&broker.log);
    zper_stats_destroy (&broker.stats);
}
