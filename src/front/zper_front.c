/*  =========================================================================
    zper_front - the front thread: ROUTER in, workers by topic, replies out

    The one thing to know: this thread owns the ROUTER socket and does no
    disk work. It parses each write's identity, picks the worker from the
    topic name (zper_identity_route; the client's hash byte is never used,
    so two clients of one topic can never land on two workers), and
    forwards the message. Workers push their replies back over an inproc
    PULL and this thread sends them out, because only it may use the
    ROUTER. A write from an identity that does not parse is answered here
    with status 103 (docs/protocol.md 2.1) and never reaches a worker.

    Stopping: stop reading the ROUTER, stop the workers (each flushes and
    pushes its last replies and notes), send those replies, then close the
    ROUTER with a linger so they leave the process.
    ========================================================================= */

#include "zper_front.h"
#include "zper_ack.h"
#include "zper_partition.h"
#include "zper_pool.h"
#include "zper_wire.h"
#include <assert.h>

typedef struct {
    zper_broker_t *broker;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *replies;
    zper_pool_t *workers;
    zper_front_worker_args_t *worker_args;
    int64_t last_bad_identity_log_ms;
} front_t;

//  Frames beyond this size make libzmq drop the connection before they are
//  buffered: twice max_message (and a little) leaves room to answer
//  oversized frames with 104 while a hostile length never allocates gigabytes.
static int64_t
s_wire_frame_limit (const zper_config_t *config)
{
    return 2 * (int64_t) config->max_message + ZPER_FRONT_FRAME_SLACK;
}

//  Answer a write whose identity does not parse: [id][103], through a REQ
//  delimiter when one is there.
static void
s_reject_identity (front_t *self, zmsg_t *msg, const char *problem)
{
    zper_stats_count (self->broker->stats, ZPER_COUNTER_BAD_IDENTITY);
    int64_t now = zclock_time ();
    if (now - self->last_bad_identity_log_ms >= ZPER_LOG_INTERVAL_MS) {
        zsys_warning ("front: write refused: bad identity (%s)", problem);
        self->last_bad_identity_log_ms = now;
    }
    zmsg_t *reply = zmsg_new ();
    zframe_t *routing_id = zmsg_pop (msg);
    zmsg_append (reply, &routing_id);
    if (zmsg_size (msg) >= 2 && zframe_size (zmsg_first (msg)) == 0) {
        zframe_t *delimiter = zmsg_pop (msg);
        zmsg_append (reply, &delimiter);
    }
    zframe_t *id = zmsg_pop (msg);
    if (!id || zframe_size (id) > self->broker->config->max_message) {
        zframe_destroy (&id);           //  an oversized id is not echoed back
        id = zframe_new_empty ();
    }
    zmsg_append (reply, &id);
    zper_wire_add_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zmsg_send (&reply, self->router);
}

static void
s_dispatch (front_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    zframe_t *routing_id = zmsg_first (msg);
    zper_identity_t identity;
    const char *problem = "no message frames";
    if (zmsg_size (msg) < 2
    ||  zper_identity_parse (zframe_data (routing_id), zframe_size (routing_id), &identity,
                             &problem)) {
        s_reject_identity (self, msg, problem);
        zmsg_destroy (msg_p);
        return;
    }
    size_t worker = zper_identity_route (identity.topic, zper_pool_size (self->workers));
    zmsg_pushmem (msg, &identity, sizeof identity);
    zmsg_send (msg_p, zper_pool_worker (self->workers, worker));
}

static void
s_forward_replies (front_t *self)
{
    zmsg_t *reply;
    while ((reply = zmsg_recv_nowait (self->replies)))
        zmsg_send (&reply, self->router);
}

static int
s_start (front_t *self, char *reason, size_t reason_size)
{
    const zper_config_t *config = self->broker->config;
    self->router = zsock_new (ZMQ_ROUTER);
    self->replies = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->replies, 0);    //  see zper_front_worker.c: no deadlock
    //  A pipelining writer reads its replies late; libzmq's default of 1000
    //  queued replies would silently drop acknowledgements
    zsock_set_sndhwm (self->router, ZPER_FRONT_REPLY_HWM);
    int64_t frame_limit = s_wire_frame_limit (config);
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    if (zsock_bind (self->replies, ZPER_INPROC_FRONT_REPLIES) == -1) {
        snprintf (reason, reason_size, "cannot bind %s", ZPER_INPROC_FRONT_REPLIES);
        return -1;
    }
    if (zper_broker_bind (self->router, config, config->front_bind, reason, reason_size))
        return -1;
    size_t count = (size_t) config->front_workers;
    self->worker_args = (zper_front_worker_args_t *)
        zmalloc (count * sizeof (zper_front_worker_args_t));
    for (size_t index = 0; index < count; index++) {
        self->worker_args [index].broker = self->broker;
        self->worker_args [index].index = index;
    }
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
    freen (self->worker_args);
}

static void
s_run (front_t *self)
{
    zpoller_t *poller = zpoller_new (self->pipe, self->router, self->replies, NULL);
    zper_pool_poll (self->workers, poller);
    bool terminated = false;
    while (!terminated) {
        void *which = zpoller_wait (poller, -1);
        if (which == self->router) {
            //  Take what is queued, not one message per poll: a poll is a
            //  system call over every socket, the main cost of small
            //  writes. Bounded, so replies and heartbeats keep their turn.
            zmsg_t *msg;
            for (int drained = 0; drained < ZPER_FRONT_DRAIN_MAX
                              && (msg = zmsg_recv_nowait (self->router)); drained++)
                s_dispatch (self, &msg);
        }
        else
        if (which == self->replies)
            s_forward_replies (self);
        else
        if (which == self->pipe)
            terminated = zper_broker_pool_command (self->pipe, self->workers, "front");
        else
        if (!which || !zper_pool_handle (self->workers, which))
            terminated = zpoller_terminated (poller);
    }
    zpoller_destroy (&poller);
}

void
zper_front_actor (zsock_t *pipe, void *args)
{
    front_t self = { .broker = (zper_broker_t *) args, .pipe = pipe };
    char reason [256];
    if (s_start (&self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self);
    }
    s_stop (&self);
}

//  --------------------------------------------------------------------------
//  Selftest: ack and front in this process, over inproc

void
zper_front_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-front-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    config.front_workers = 2;
    config.max_message = 100;
    zper_log_config_t log_config;
    zper_config_log_config (&config, &log_config);
    zper_broker_t broker = { &config, zper_log_new (&log_config), zper_stats_new (), verbose };
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

    //  A bad identity is answered by the front thread: [id][103]
    zsock_t *stranger = zsock_new_dealer (config.front_bind);
    zsock_set_rcvtimeo (stranger, 5000);
    zstr_sendx (stranger, "id-4", "body", NULL);
    reply = zmsg_recv (stranger);
    assert (reply && zmsg_size (reply) == 2);
    assert (zframe_data (zmsg_last (reply)) [0] == ZPER_STATUS_INVALID_ARGUMENT);
    zmsg_destroy (&reply);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_BAD_IDENTITY) == 1);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_TOO_LARGE) == 1);
    assert (zper_stats_counter (broker.stats, ZPER_COUNTER_STORAGE_ERROR) == 1);

    zsock_destroy (&dealer);
    zsock_destroy (&req);
    zsock_destroy (&stranger);
    zactor_destroy (&front);
    zactor_destroy (&ack);
    zper_log_destroy (&broker.log);
    zper_stats_destroy (&broker.stats);
}
