/*  =========================================================================
    zper_broker - start-up handshake, socket setup and durable notes

    The start-up handshake exists because a component's bind can fail (the
    port is taken) and the daemon must then stop with one clear line rather
    than run half a broker: each actor binds first, then says READY or FAIL.

    Security is started before the log is opened: a broker that cannot
    serve CURVE as configured must stop before it takes the data folder.
    ========================================================================= */

#include "zper_broker.h"
#include "zper_dir_lock.h"
#include "zper_hops.h"
#include "zper_identity.h"
#include "zper_wire.h"
#include <assert.h>
#include <stdarg.h>

//  Start security as config says; NULL (logged) when it is on and cannot
//  start. *failed says which.
static zper_security_t *
s_security_open (const zper_config_t *config, bool verbose, bool *failed)
{
    *failed = false;
    if (!config->security_curve)
        return NULL;
    const char *missing = !*config->security_cert? "security.cert (the broker's certificate)"
                        : !*config->security_keys? "security.keys (the folder of allowed client "
                                                   "certificates)": NULL;
    char error [512] = "";
    zper_security_t *security = NULL;
    if (missing)
        snprintf (error, sizeof error, "security.curve = 1 needs %s: set it, or security.curve = 0",
                  missing);
    else
        security = zper_security_new (config->security_cert, config->security_keys,
                                      config->security_reload_ms, verbose, error, sizeof error);
    if (!security) {
        zsys_error ("%s", error);
        *failed = true;
    }
    else
        zsys_info ("security: CURVE on every socket, server key %s, allowed keys in %s",
                   zper_security_public_key (security), config->security_keys);
    return security;
}

int
zper_broker_open (zper_broker_t *self, const zper_config_t *config, bool verbose)
{
    *self = (zper_broker_t) { .config = config, .verbose = verbose };
    bool failed;
    self->security = s_security_open (config, verbose, &failed);
    if (failed)
        return -1;
    zper_log_config_t log_config;
    zper_config_log_config (config, &log_config);
    self->log = zper_log_new (&log_config);
    if (!self->log) {
        char *reason = zper_dir_lock_reason (config->base_dir, errno);
        zsys_error ("%s", reason);
        zstr_free (&reason);
        zper_security_destroy (&self->security);
        return -1;
    }
    //  Beside the topic folders, under the log's lock (zper_log_name_valid
    //  keeps its name from ever being a topic's)
    char *offsets_path = zsys_sprintf ("%s/%s", config->base_dir, ZPER_OFFSETS_FILE);
    self->offsets = zper_offsets_open (offsets_path, (size_t) config->groups_max_offsets);
    if (!self->offsets) {
        zsys_error ("cannot open the consumer offsets file %s: %s", offsets_path,
                    strerror (errno));
        zstr_free (&offsets_path);
        zper_log_destroy (&self->log);
        zper_security_destroy (&self->security);
        return -1;
    }
    zstr_free (&offsets_path);
    self->stats = zper_stats_new ();
    zper_stats_set_max_peers (self->stats, (size_t) config->metrics_max_peers);
    self->acks_wanted = zper_subscriptions_new ();
    //  NULL unless cluster.etcd is set: a single node has no cluster at all
    self->cluster = zper_cluster_new (config, self->log);
    self->groups = zper_groups_new (config, self->log, self->offsets, self->cluster);
    return 0;
}

char *
zper_broker_stats_json (zper_broker_t *self, zper_stats_topic_fn *listed, void *argument)
{
    if (self->security) {
        zper_stats_set (self->stats, ZPER_COUNTER_AUTH_REFUSED_MECHANISM,
                        zper_security_refused (self->security, ZPER_REFUSED_MECHANISM));
        zper_stats_set (self->stats, ZPER_COUNTER_AUTH_REFUSED_KEY,
                        zper_security_refused (self->security, ZPER_REFUSED_KEY));
    }
    char *stats = zper_stats_json_filtered (self->stats, self->log, listed, argument);
    char *groups = stats && self->groups
                 ? zper_groups_json_filtered (self->groups, NULL, zclock_time (), listed, argument)
                 : NULL;
    char *end = stats? strrchr (stats, '}'): NULL;
    if (!groups || !end) {
        zstr_free (&groups);
        return stats;
    }
    //  zper_stats' object always has members: the groups go after them
    char *joined = zsys_sprintf ("%.*s,\"groups\":%s}", (int) (end - stats), stats, groups);
    zstr_free (&stats);
    zstr_free (&groups);
    return joined;
}

void
zper_broker_close (zper_broker_t *self)
{
    zper_groups_destroy (&self->groups);       //  it uses the offsets, log and cluster
    zper_cluster_destroy (&self->cluster);     //  its epochs files, before the log
    zper_offsets_destroy (&self->offsets);
    zper_log_destroy (&self->log);
    zper_stats_destroy (&self->stats);
    zper_subscriptions_destroy (&self->acks_wanted);
    zper_security_destroy (&self->security);
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
zper_broker_bind (zper_broker_t *self, zsock_t *socket, const char *name, const char *endpoint,
                  char *reason, size_t reason_size)
{
    const zper_config_t *config = self->config;
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
    if (self->security && zper_security_server (self->security, socket, name)) {
        snprintf (reason, reason_size, "cannot make %s a CURVE server: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (zsock_bind (socket, "%s", endpoint) == -1) {
        snprintf (reason, reason_size, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

zper_guard_t *
zper_broker_guard_new (zper_broker_t *self)
{
    if (!self->security)
        return NULL;
    return zper_guard_new (self->config->security_keys, self->config->security_reload_ms);
}

//  Add to cut_off what guard cut since before.
static void
s_count_cuts (zper_broker_t *self, zper_guard_t *guard, uint64_t before)
{
    uint64_t cut = zper_guard_cut_count (guard) - before;
    if (cut) {
        zper_stats_add (self->stats, ZPER_COUNTER_CUT_OFF, cut);
        zsys_info ("security: %llu connection(s) closed: their key left security.keys",
                   (unsigned long long) cut);
    }
}

zper_guard_verdict_t
zper_broker_guard_check (zper_broker_t *self, zper_guard_t *guard, zmq_msg_t *msg, int access,
                         const char *topic, size_t topic_size)
{
    uint64_t before = zper_guard_cut_count (guard);
    zper_guard_verdict_t verdict = zper_guard_check (guard, msg, access, topic, topic_size);
    if (verdict == ZPER_GUARD_CUT)
        s_count_cuts (self, guard, before);
    return verdict;
}

int
zper_broker_guard_tick (zper_broker_t *self, zper_guard_t *guard)
{
    if (!guard)
        return -1;
    int64_t reload_ms = self->config->security_reload_ms;
    uint64_t before = zper_guard_cut_count (guard);
    zper_guard_refresh (guard);
    s_count_cuts (self, guard, before);
    //  The guard refreshes at most every reload_ms: asking again that soon
    //  is cheap (one clock read) and never late by more than one interval
    return (int) reload_ms;
}

void
zper_broker_subscription_recv (zper_broker_t *self, void *xpub, zper_gate_t *gate,
                               zper_guard_t *guard, zper_subscriptions_t *subscriptions)
{
    if (!gate) {
        zper_subscriptions_recv (subscriptions, xpub);
        return;
    }
    uint64_t before = zper_guard_cut_count (guard);
    int verdict = zper_gate_recv (gate, guard);
    if (verdict == ZPER_GUARD_FORBIDDEN)
        zper_stats_count (self->stats, ZPER_COUNTER_FORBIDDEN);
    else
    if (verdict == ZPER_GUARD_CUT)
        s_count_cuts (self, guard, before);
}

int
zper_broker_timeout_min (int timeout, int other)
{
    return timeout < 0? other: other < 0? timeout: timeout < other? timeout: other;
}

zmsg_t *
zper_broker_recv_keeping (zsock_t *socket, size_t index, zmq_msg_t *kept)
{
    void *handle = zsock_resolve (socket);
    zmq_msg_close (kept);
    zmq_msg_init (kept);
    zmsg_t *msg = zmsg_new ();
    bool more = true;
    //  The frames up to index are received whole, then copied into frames
    for (size_t count = 0; more && count <= index; count++) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, 0) == -1) {
            zmq_msg_close (&part);
            zmsg_destroy (&msg);
            return NULL;
        }
        more = zmq_msg_more (&part) == 1;
        zmsg_addmem (msg, zmq_msg_data (&part), zmq_msg_size (&part));
        if (count == index)
            zmq_msg_move (kept, &part);
        zmq_msg_close (&part);
    }
    if (more) {
        //  zmsg_recv takes the rest of the message, from where we are
        zmsg_t *rest = zmsg_recv (socket);
        zframe_t *frame;
        while (rest && (frame = zmsg_pop (rest)))
            zmsg_append (msg, &frame);
        zmsg_destroy (&rest);
    }
    return msg;
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
    if (prefix)
        zsock_set_subscribe (bus, prefix);
    //  inproc may connect before the worker binds: the pipe waits for it
    for (int index = 0; index < config->front_workers; index++)
        zsock_connect (bus, ZPER_INPROC_VISIBLE, index);
    //  In cluster mode a follower's partitions grow by the replication
    //  actor, which publishes on the bus after the front workers'
    if (*config->cluster_etcd)
        zsock_connect (bus, ZPER_INPROC_VISIBLE, config->front_workers);
    return bus;
}

int64_t
zper_broker_bus_interest (zper_bus_interest_t *self, zsock_t *bus, bool busy, int64_t now,
                          bool *settled)
{
    *settled = false;
    if (busy && !self->listening) {
        zsock_set_subscribe (bus, "");
        self->listening = ++self->subscribes;
        self->settle_ms = now + ZPER_REAR_BUS_SETTLE_MS;
    }
    if (self->settle_ms && now >= self->settle_ms) {
        self->settle_ms = 0;
        *settled = true;
    }
    if (busy || !self->listening)
        self->idle_since_ms = 0;
    else
    if (!self->idle_since_ms)
        self->idle_since_ms = now;
    else
    if (now - self->idle_since_ms >= ZPER_REAR_BUS_LINGER_MS) {
        zsock_set_unsubscribe (bus, "");
        self->listening = 0;
        self->idle_since_ms = 0;
    }
    if (self->settle_ms)
        return self->settle_ms - now;
    if (self->idle_since_ms)
        return self->idle_since_ms + ZPER_REAR_BUS_LINGER_MS - now;
    return -1;
}

void
zper_broker_note_send (zsock_t *bus, const zper_visible_note_t *note)
{
    zper_broker_note_send_stamped (bus, note, 0);
}

void
zper_broker_note_send_stamped (zsock_t *bus, const zper_visible_note_t *note, int64_t received_us)
{
    void *socket = zsock_resolve (bus);
    uint8_t integers [3][ZPER_WIRE_INT64_SIZE], stamps [2 * ZPER_WIRE_INT64_SIZE];
    zper_wire_put_int64 (integers [0], note->from_offset);
    zper_wire_put_int64 (integers [1], note->visible_offset);
    zper_wire_put_int64 (integers [2], note->visible_position);
    zper_wire_put_int64 (stamps, received_us);
    zper_wire_put_int64 (stamps + ZPER_WIRE_INT64_SIZE, zper_hops_now ());
    zmq_send (socket, note->topic, strlen (note->topic), ZMQ_SNDMORE);
    zmq_send (socket, integers [0], ZPER_WIRE_INT64_SIZE, ZMQ_SNDMORE);
    zmq_send (socket, integers [1], ZPER_WIRE_INT64_SIZE, ZMQ_SNDMORE);
    zmq_send (socket, integers [2], ZPER_WIRE_INT64_SIZE, ZMQ_SNDMORE);
    zmq_send (socket, stamps, sizeof stamps, 0);
}

int
zper_broker_note_decode (zmsg_t *msg, zper_visible_note_t *note)
{
    zframe_t *topic = zmsg_first (msg);
    if ((zmsg_size (msg) != 4 && zmsg_size (msg) != 5) || !topic || zframe_size (topic) == 0
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

void
zper_broker_note_stamps (zmsg_t *msg, int64_t *received_us, int64_t *noted_us)
{
    zframe_t *stamps = zmsg_size (msg) == 5? zmsg_last (msg): NULL;
    *received_us = *noted_us = 0;
    if (stamps && zframe_size (stamps) == 2 * ZPER_WIRE_INT64_SIZE) {
        *received_us = zper_wire_get_int64 (zframe_data (stamps));
        *noted_us = zper_wire_get_int64 (zframe_data (stamps) + ZPER_WIRE_INT64_SIZE);
    }
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
    if (zper_broker_bind (broker, socket, "test", "tcp://127.0.0.1:*", reason, sizeof reason)) {
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
    int64_t received_us, noted_us;
    zper_broker_note_stamps (msg, &received_us, &noted_us);
    assert (received_us == 0 && noted_us > 0);      //  stamped when sent
    zmsg_addstr (msg, "extra");
    assert (zper_broker_note_decode (msg, &decoded) == -1);
    zmsg_destroy (&msg);
    zsock_destroy (&source);
    zsock_destroy (&sink);

    //  In cluster mode readers also hear the replication actor's bus,
    //  index front.workers; a single node does not connect to it
    snprintf (config.cluster_etcd, sizeof config.cluster_etcd, "http://127.0.0.1:2379");
    sink = zper_broker_bus_subscriber (&config, "");
    zsock_set_rcvtimeo (sink, 5000);
    source = zper_broker_bus_publisher (config.front_workers);
    assert (source);
    zper_broker_note_send (source, &note);
    msg = zmsg_recv (sink);
    assert (zper_broker_note_decode (msg, &decoded) == 0 && streq (decoded.topic, "topic"));
    zmsg_destroy (&msg);
    zsock_destroy (&sink);
    *config.cluster_etcd = 0;
    sink = zper_broker_bus_subscriber (&config, "");
    zsock_set_rcvtimeo (sink, 100);
    zper_broker_note_send (source, &note);
    msg = zmsg_recv (sink);
    assert (msg == NULL);
    zsock_destroy (&source);
    zsock_destroy (&sink);

    //  A message received keeping one frame whole: every frame in the zmsg
    zsock_t *pull = zsock_new_pull ("inproc://zper-broker-keeping");
    zsock_t *push = zsock_new_push (">inproc://zper-broker-keeping");
    zmq_msg_t kept;
    zmq_msg_init (&kept);
    zstr_sendx (push, "header", "routing", "command", "argument", NULL);
    msg = zper_broker_recv_keeping (pull, 1, &kept);
    assert (msg && zmsg_size (msg) == 4 && zframe_streq (zmsg_first (msg), "header"));
    assert (zframe_streq (zmsg_next (msg), "routing") && zframe_streq (zmsg_last (msg), "argument"));
    assert (zmq_msg_size (&kept) == 7 && memcmp (zmq_msg_data (&kept), "routing", 7) == 0);
    zmsg_destroy (&msg);
    zstr_send (push, "PING");
    msg = zper_broker_recv_keeping (pull, 1, &kept);
    assert (msg && zmsg_size (msg) == 1 && zmq_msg_size (&kept) == 0);
    zmsg_destroy (&msg);
    zmq_msg_close (&kept);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    assert (zper_broker_timeout_min (-1, 5) == 5 && zper_broker_timeout_min (3, -1) == 3);
    assert (zper_broker_timeout_min (3, 5) == 3 && zper_broker_timeout_min (-1, -1) == -1);

    //  Security on without its certificate: the broker does not open
    zper_config_init (&config);
    config.security_curve = 1;
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    assert (zper_broker_open (&broker, &config, verbose) == -1);
    assert (broker.log == NULL && broker.security == NULL);
    zper_broker_close (&broker);
}
