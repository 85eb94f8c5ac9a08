/*  =========================================================================
    zper_rear - the rear thread: ROUTER in, workers by reader, flow control

    This thread owns the ROUTER socket and does no log work: it peels the
    envelope off each request (one frame for DEALER, routing id plus empty
    delimiter for REQ, so REQ readers get their replies), hands the
    request to the worker chosen from the routing id, and sends the
    workers' answers out.

    The one thing to know is stream flow control. The ROUTER runs with
    ROUTER_MANDATORY and non-blocking sends, so a reader that does not read
    can neither block this thread nor make libzmq drop a streamed message
    silently. A streamed message that cannot be queued marks its reader
    stalled (and the rest of that chunk is dropped); at the chunk's end
    the worker is told STALL with the first unsent offset and resends from
    there later. A send to a reader that has gone answers GONE, which ends
    its stream.
    ========================================================================= */

#include "zper_rear.h"
#include "zper_ack.h"
#include "zper_pool.h"
#include "zper_wire.h"
#include <assert.h>


typedef struct {
    int64_t offset;                     //  first streamed offset not sent
    bool gone;
} stalled_t;

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *output;                    //  PULL from the workers
    zper_pool_t *workers;
    zper_rear_worker_args_t *worker_args;
    zhashx_t *stalled;                  //  routing id (hex) -> stalled_t
} rear_t;

static void
s_stalled_destroy (void **item)
{
    freen (*item);
    *item = NULL;
}

static size_t
s_worker_of (rear_t *self, zframe_t *routing_id)
{
    uint32_t hash = 2166136261u;
    const uint8_t *bytes = zframe_data (routing_id);
    for (size_t index = 0; index < zframe_size (routing_id); index++)
        hash = (hash ^ bytes [index]) * 16777619u;
    return hash % zper_pool_size (self->workers);
}

static void
s_to_worker (rear_t *self, uint8_t kind, int64_t offset, zmsg_t **msg_p, uint8_t envelope_frames)
{
    zper_rear_header_t header = { kind, envelope_frames, offset };
    size_t worker = s_worker_of (self, zmsg_first (*msg_p));
    zmsg_pushmem (*msg_p, &header, sizeof header);
    zmsg_send (msg_p, zper_pool_worker (self->workers, worker));
}

static void
s_request (rear_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    //  [routing id][""][command]... is a REQ reader; DEALER has no delimiter
    zmsg_first (msg);
    zframe_t *second = zmsg_next (msg);
    uint8_t envelope_frames = zmsg_size (msg) >= 3 && zframe_size (second) == 0? 2: 1;
    s_to_worker (self, ZPER_REAR_REQUEST, 0, msg_p, envelope_frames);
}

//  Send frames (envelope first) without blocking. Returns 0, or -1 with
//  the libzmq errno (EAGAIN: queue full; EHOSTUNREACH: reader gone).
static int
s_send (rear_t *self, zmsg_t *msg)
{
    void *router = zsock_resolve (self->router);
    size_t remaining = zmsg_size (msg);
    int flags = ZFRAME_DONTWAIT;
    zframe_t *frame;
    while ((frame = zmsg_pop (msg))) {
        if (zframe_send (&frame, router, flags | (--remaining? ZFRAME_MORE: 0)) == -1) {
            zframe_destroy (&frame);
            return -1;
        }
        //  Once the first frame is queued the rest of the message is too
        flags = 0;
    }
    return 0;
}

static void
s_streamed (rear_t *self, zper_rear_header_t *header, zmsg_t *msg)
{
    char *key = zframe_strhex (zmsg_first (msg));
    if (!zhashx_lookup (self->stalled, key) && s_send (self, msg) == -1) {
        stalled_t *stalled = (stalled_t *) zmalloc (sizeof (stalled_t));
        stalled->offset = header->offset;
        stalled->gone = zmq_errno () == EHOSTUNREACH;
        zhashx_insert (self->stalled, key, stalled);
    }
    zstr_free (&key);
}

//  A chunk ended: tell its worker how it went.
static void
s_chunk_end (rear_t *self, zper_rear_header_t *header, zmsg_t **msg_p)
{
    char *key = zframe_strhex (zmsg_first (*msg_p));
    stalled_t *stalled = (stalled_t *) zhashx_lookup (self->stalled, key);
    if (!stalled)
        s_to_worker (self, ZPER_REAR_CREDIT, 0, msg_p, header->envelope_frames);
    else
    if (stalled->gone)
        s_to_worker (self, ZPER_REAR_GONE, 0, msg_p, header->envelope_frames);
    else
        s_to_worker (self, ZPER_REAR_STALL, stalled->offset, msg_p, header->envelope_frames);
    zhashx_delete (self->stalled, key);
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
            s_send (self, msg);         //  a reader that went away loses its answer
        else
        if (header.kind == ZPER_REAR_STREAMED)
            s_streamed (self, &header, msg);
        else
        if (header.kind == ZPER_REAR_CHUNK_END)
            s_chunk_end (self, &header, &msg);
    }
    zframe_destroy (&frame);
    zmsg_destroy (&msg);
}

static int
s_start (rear_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->output = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->output, 0);     //  see zper_rear_worker.c: no deadlock
    self->stalled = zhashx_new ();
    zhashx_set_destructor (self->stalled, s_stalled_destroy);
    zsock_set_router_mandatory (self->router, 1);
    int64_t frame_limit = ZPER_REQUEST_FRAME_MAX;
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (zsock_bind (self->output, ZPER_INPROC_REAR_REPLIES) == -1) {
        snprintf (reason, reason_size, "cannot bind %s", ZPER_INPROC_REAR_REPLIES);
        return -1;
    }
    if (zper_broker_bind (self->router, config, config->rear_bind, reason, reason_size))
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
        void *which = zpoller_wait (poller, -1);
        if (which == self->router) {
            zmsg_t *msg = zmsg_recv (self->router);
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
    }
    zpoller_destroy (&poller);
}

void
zper_rear_actor (zsock_t *pipe, void *args)
{
    rear_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    zper_pool_destroy (&self.workers);
    zsock_destroy (&self.router);
    zsock_destroy (&self.output);
    zhashx_destroy (&self.stalled);
    freen (self.worker_args);
}

//  --------------------------------------------------------------------------
//  Selftest: ack (the durable bus) and rear in this process, over inproc

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

void
zper_rear_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-rear-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    zper_log_config_t log_config;
    zper_config_log_config (&config, &log_config);
    zper_broker_t broker = { &config, zper_log_new (&log_config), zper_stats_new (), verbose };
    zper_partition_t *partition = zper_log_partition (broker.log, "readable", "0", true);
    zper_frame_t frames [2] = { { "id", 2 }, { "hello", 5 } };
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 0);
    assert (zper_partition_flush (partition) == 1);
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    zactor_t *rear = zper_broker_start (zper_rear_actor, &broker, "rear");
    assert (ack && rear);
    zsock_t *reader = zper_broker_test_client (ZMQ_DEALER, config.rear_bind, "readable", 0);

    zmsg_t *reply = s_ask (reader, "FETCH", 0, 1000);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zmsg_size (reply) == 2);
    assert (zframe_size (zmsg_last (reply)) == 11);
    assert (memcmp (zframe_data (zmsg_last (reply)), "\x01\x02id\x00\x05hello", 11) == 0);
    zmsg_destroy (&reply);
    reply = s_ask (reader, "FETCH", 1, 1000);
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

    //  Streaming FETCH: the backlog, then what the durable bus announces
    reply = s_ask (reader, "FETCH", 0, -1);
    assert (s_status_of (reply) == ZPER_STATUS_OK && zmsg_size (reply) == 1);
    zmsg_destroy (&reply);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "hello"));
    zmsg_destroy (&reply);
    frames [1].data = "again";
    assert (zper_partition_append (partition, frames, 2, zclock_time ()) == 1);
    assert (zper_partition_flush (partition) == 2);
    zsock_t *notes = zsock_new_push (">" ZPER_INPROC_NOTES);
    zmsg_t *note = zmsg_new ();
    zmsg_addstr (note, "readable");
    zper_wire_add_int64 (note, 1);
    zper_wire_add_int64 (note, 2);
    zper_wire_add_int64 (note, 22);
    zmsg_send (&note, notes);
    reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2 && zframe_streq (zmsg_last (reply), "again"));
    zmsg_destroy (&reply);

    zsock_destroy (&notes);
    zsock_destroy (&reader);
    zactor_destroy (&rear);
    zactor_destroy (&ack);
    zper_log_destroy (&broker.log);
    zper_stats_destroy (&broker.stats);
}
