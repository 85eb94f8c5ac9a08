/*  =========================================================================
    zper_broker - start-up handshake, socket setup and durable notes

    The start-up handshake exists because a component's bind can fail (the
    port is taken) and the daemon must then stop with one clear line rather
    than run half a broker: each actor binds first, then says READY or FAIL.
    ========================================================================= */

#include "zper_broker.h"
#include "zper_identity.h"
#include "zper_wire.h"
#include <assert.h>
#include <stdarg.h>

int
zper_broker_open (zper_broker_t *self, const zper_config_t *config, bool verbose)
{
    zper_log_config_t log_config;
    zper_config_log_config (config, &log_config);
    *self = (zper_broker_t) { .config = config, .verbose = verbose,
                              .log = zper_log_new (&log_config) };
    if (!self->log)
        return -1;
    self->stats = zper_stats_new ();
    self->acks_wanted = zper_subscriptions_new ();
    return 0;
}

void
zper_broker_close (zper_broker_t *self)
{
    zper_log_destroy (&self->log);
    zper_stats_destroy (&self->stats);
    zper_subscriptions_destroy (&self->acks_wanted);
}

zactor_t *
zper_broker_start (zactor_fn *actor, zper_broker_t *broker, const char *name)
{
    zactor_t *handle = zactor_new (actor, broker);
    if (!handle) {
        zsys_error ("%s: cannot start its thread", name);
        return NULL;
    }
    char *status = zstr_recv (handle);
    if (status && streq (status, "READY")) {
        zstr_free (&status);
        return handle;
    }
    zsys_error ("%s: %s", name, status && strlen (status) > 5? status + 5: "failed to start");
    zstr_free (&status);
    zactor_destroy (&handle);
    return NULL;
}

void
zper_broker_ready (zsock_t *pipe)
{
    zsock_signal (pipe, 0);
    zstr_send (pipe, "READY");
}

void
zper_broker_fail (zsock_t *pipe, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    char *reason = zsys_vprintf (format, arguments);
    va_end (arguments);
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "FAIL %s", reason);
    zstr_free (&reason);
    //  Wait for the $TERM that zactor_destroy sends
    while (true) {
        char *command = zstr_recv (pipe);
        bool terminate = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (terminate)
            break;
    }
}

int
zper_broker_bind (zsock_t *socket, const zper_config_t *config, const char *endpoint,
                  char *reason, size_t reason_size)
{
    zsock_set_rcvhwm (socket, config->receive_hwm);
    //  Every network socket bounds what a peer may announce: without a limit
    //  libzmq allocates any frame size a peer declares (random bytes on the
    //  ack or relay PUB port made it malloc 2^61 bytes and abort). Sockets that
    //  carry writes set their own larger limit before binding.
    int64_t frame_limit;
    size_t limit_size = sizeof frame_limit;
    zmq_getsockopt (zsock_resolve (socket), ZMQ_MAXMSGSIZE, &frame_limit, &limit_size);
    if (frame_limit < 0) {
        frame_limit = ZPER_REQUEST_FRAME_MAX;
        zmq_setsockopt (zsock_resolve (socket), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    }
    //  A client that reconnects with the same identity (a fixed uuid) takes
    //  its routing id over instead of being refused as a duplicate
    if (zsock_type (socket) == ZMQ_ROUTER)
        zsock_set_router_handover (socket, 1);
    if (config->send_buffer)
        zsock_set_sndbuf (socket, config->send_buffer);
    if (config->receive_buffer)
        zsock_set_rcvbuf (socket, config->receive_buffer);
    if (zsock_bind (socket, "%s", endpoint) == -1) {
        snprintf (reason, reason_size, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

zsock_t *
zper_broker_bus_publisher (int index)
{
    zsock_t *bus = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (bus, 0);
    if (zsock_bind (bus, ZPER_INPROC_VISIBLE, index) == -1)
        zsock_destroy (&bus);
    return bus;
}

zsock_t *
zper_broker_bus_subscriber (const zper_config_t *config, const char *prefix)
{
    zsock_t *bus = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (bus, prefix);
    //  inproc may connect before the worker binds: the pipe waits for it
    for (int index = 0; index < config->front_workers; index++)
        zsock_connect (bus, ZPER_INPROC_VISIBLE, index);
    return bus;
}

void
zper_broker_note_send (zsock_t *bus, const zper_visible_note_t *note)
{
    void *socket = zsock_resolve (bus);
    uint8_t integers [3][ZPER_WIRE_INT64_SIZE];
    zper_wire_put_int64 (integers [0], note->from_offset);
    zper_wire_put_int64 (integers [1], note->visible_offset);
    zper_wire_put_int64 (integers [2], note->visible_position);
    zmq_send (socket, note->topic, strlen (note->topic), ZMQ_SNDMORE);
    zmq_send (socket, integers [0], ZPER_WIRE_INT64_SIZE, ZMQ_SNDMORE);
    zmq_send (socket, integers [1], ZPER_WIRE_INT64_SIZE, ZMQ_SNDMORE);
    zmq_send (socket, integers [2], ZPER_WIRE_INT64_SIZE, 0);
}

int
zper_broker_note_decode (zmsg_t *msg, zper_visible_note_t *note)
{
    zframe_t *topic = zmsg_first (msg);
    if (zmsg_size (msg) != 4 || !topic || zframe_size (topic) == 0
    ||  zframe_size (topic) > ZPER_TOPIC_NAME_MAX)
        return -1;
    memcpy (note->topic, zframe_data (topic), zframe_size (topic));
    note->topic [zframe_size (topic)] = 0;
    if (zper_wire_frame_int64 (zmsg_next (msg), &note->from_offset)
    ||  zper_wire_frame_int64 (zmsg_next (msg), &note->visible_offset)
    ||  zper_wire_frame_int64 (zmsg_next (msg), &note->visible_position))
        return -1;
    return 0;
}

bool
zper_broker_pipe_command (zsock_t *pipe, const char *command)
{
    if (streq (command, "$TERM"))
        return true;
    if (streq (command, "PING"))
        zstr_send (pipe, "PONG");
    else
        zsys_warning ("zperd: unexpected command on a component pipe: %s", command);
    return false;
}

bool
zper_broker_pool_command (zsock_t *pipe, zper_pool_t *workers, const char *name)
{
    char *command = zstr_recv (pipe);
    bool terminated = !command;
    if (command && streq (command, "PING")) {
        if (zper_pool_heartbeat (workers, name))
            zstr_send (pipe, "PONG");
    }
    else
    if (command)
        terminated = zper_broker_pipe_command (pipe, command);
    zstr_free (&command);
    return terminated;
}

zsock_t *
zper_broker_test_client (int type, const char *endpoint, const char *topic, uint8_t mode)
{
    zsock_t *client = zsock_new (type);
    uint8_t routing_id [3 + ZPER_TOPIC_MAX + ZPER_IDENTITY_UUID_SIZE];
    size_t size = zper_identity_encode (topic, mode, (const uint8_t *) "0123456789abcdef",
                                        routing_id);
    zmq_setsockopt (zsock_resolve (client), ZMQ_ROUTING_ID, routing_id, size);
    zsock_set_rcvtimeo (client, 5000);
    int rc = zsock_connect (client, "%s", endpoint);
    assert (rc == 0);
    return client;
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_ready_actor (zsock_t *pipe, void *args)
{
    zsock_t *socket = zsock_new (ZMQ_PUB);
    char reason [256];
    zper_broker_t *broker = (zper_broker_t *) args;
    if (zper_broker_bind (socket, broker->config, "tcp://127.0.0.1:*", reason, sizeof reason)) {
        zper_broker_fail (pipe, "%s", reason);
        zsock_destroy (&socket);
        return;
    }
    zper_broker_ready (pipe);
    bool terminated = false;
    while (!terminated) {
        char *command = zstr_recv (pipe);
        terminated = !command || zper_broker_pipe_command (pipe, command);
        zstr_free (&command);
    }
    zsock_destroy (&socket);
}

static void
s_failing_actor (zsock_t *pipe, void *args)
{
    zper_broker_fail (pipe, "cannot bind %s", "tcp://nowhere:1");
}

void
zper_broker_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_broker_t broker = { .config = &config };
    zactor_t *actor = zper_broker_start (s_ready_actor, &broker, "ready");
    assert (actor);
    zstr_send (actor, "PING");
    char *reply = zstr_recv (actor);
    assert (reply && streq (reply, "PONG"));
    zstr_free (&reply);
    zactor_destroy (&actor);
    assert (zper_broker_start (s_failing_actor, &broker, "failing (expected)") == NULL);

    //  A reader subscribes to the buses of both workers before they bind;
    //  worker 1's note reaches it, a topic outside its prefix does not
    config.front_workers = 2;
    zsock_t *sink = zper_broker_bus_subscriber (&config, "top");
    zsock_set_rcvtimeo (sink, 5000);
    zsock_t *source = zper_broker_bus_publisher (1);
    assert (source && zper_broker_bus_publisher (1) == NULL);   //  taken
    zper_visible_note_t other = { "other", 0, 1, 10 }, note = { "topic", 3, 7, 120 }, decoded;
    zper_broker_note_send (source, &other);
    zper_broker_note_send (source, &note);
    zmsg_t *msg = zmsg_recv (sink);
    assert (zper_broker_note_decode (msg, &decoded) == 0);
    assert (streq (decoded.topic, "topic") && decoded.from_offset == 3);
    assert (decoded.visible_offset == 7 && decoded.visible_position == 120);
    zmsg_addstr (msg, "extra");
    assert (zper_broker_note_decode (msg, &decoded) == -1);
    zmsg_destroy (&msg);
    zsock_destroy (&source);
    zsock_destroy (&sink);
}
