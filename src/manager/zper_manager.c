/*  =========================================================================
    zper_manager - start the components, watch them, stop them in order

    Start order is ack, relay, rear, front: everything that listens for
    durable notes exists before the first write can be accepted. Stop order
    is the reverse, so that the front's last flush still reaches the ack.

    Supervision: every ZPER_HEARTBEAT_INTERVAL_MS each component is sent
    PING and must answer PONG (the front and the rear answer only while all
    their workers answer). A component silent for ZPER_HEARTBEAT_LIVENESS
    intervals is not restarted in place: a silent thread is stuck inside a
    call, and C offers no safe way to stop a thread from outside, so its
    sockets and its topics' unflushed data cannot be taken over. The
    manager logs which component is stuck and run returns
    ZPER_EXIT_UNRESPONSIVE; zperd then stops as cleanly as it can (with a
    deadline) and exits 3, for the service supervisor to restart the
    process; the log's recovery does the rest.

    The Prometheus endpoint (metrics.listen) starts before the components
    and stops before them: it only reads the broker, on its own thread. So
    a port in use stops zperd before it binds anything else, and once the
    rear answers, /metrics does too.
    ========================================================================= */

#include "zper_manager.h"
#include "zper_ack.h"
#include "zper_front.h"
#include "zper_rear.h"
#include "zper_relay.h"
#include "zper_replication.h"
#include "zper_coordinator.h"
#include "zper_wire.h"
#include "zper_metrics.h"
#include <assert.h>


//  In cluster mode the replication actor and the coordinator start last
//  (a node takes leaderships only once it can serve them) and stop first
//  (a clean stop ends its lease, so others are elected at once).
typedef enum { COMPONENT_ACK, COMPONENT_RELAY, COMPONENT_REAR, COMPONENT_FRONT,
               COMPONENT_REPLICATION, COMPONENT_COORDINATOR, COMPONENT_COUNT } component_t;
#define COMPONENT_SINGLE_NODE_COUNT COMPONENT_REPLICATION

static const char *s_component_names [COMPONENT_COUNT] = {
    "ack", "relay", "rear", "front", "replication", "coordinator"
};
static zactor_fn *s_component_actors [COMPONENT_COUNT] = {
    zper_ack_actor, zper_relay_actor, zper_rear_actor, zper_front_actor,
    zper_replication_actor, zper_coordinator_actor
};

struct _zper_manager_t {
    zper_config_t config;
    int component_count;                //  the first four, or all in cluster mode
    zper_broker_t broker;
    zactor_t *components [COMPONENT_COUNT];
    int64_t pong_ms [COMPONENT_COUNT];
    zper_metrics_t *metrics;            //  metrics.listen set, else NULL
};

//  One scrape, on the metrics server's thread: the STATS object rendered.
static char *
s_render_metrics (void *argument)
{
    zper_broker_t *broker = (zper_broker_t *) argument;
    char *stats = zper_broker_stats_json (broker, NULL, NULL);
    char *text = zper_metrics_from_stats (stats);
    zstr_free (&stats);
    return text;
}

zper_manager_t *
zper_manager_new (const zper_config_t *config, bool verbose)
{
    zper_manager_t *self = (zper_manager_t *) zmalloc (sizeof (zper_manager_t));
    self->config = *config;
    if (zper_broker_open (&self->broker, &self->config, verbose)) {
        zper_manager_destroy (&self);   //  broker_open logged why
        return NULL;
    }
    if (*self->config.metrics_listen) {
        self->metrics = zper_metrics_new (self->config.metrics_listen,
                                          (int) self->config.metrics_max_clients,
                                          s_render_metrics, &self->broker);
        if (!self->metrics) {
            zsys_error ("metrics.listen: %s", zper_metrics_reason ());
            zper_manager_destroy (&self);
            return NULL;
        }
        if (verbose)
            zsys_info ("metrics: serving GET /metrics on %s", self->config.metrics_listen);
    }
    self->component_count = self->broker.cluster? COMPONENT_COUNT: COMPONENT_SINGLE_NODE_COUNT;
    for (int index = 0; index < self->component_count; index++) {
        self->components [index] = zper_broker_start (s_component_actors [index], &self->broker,
                                                      s_component_names [index]);
        if (!self->components [index]) {
            zper_manager_destroy (&self);
            return NULL;
        }
        self->pong_ms [index] = zclock_mono ();
        if (verbose)
            zsys_info ("%s: started", s_component_names [index]);
    }
    return self;
}

void
zper_manager_destroy (zper_manager_t **self_p)
{
    assert (self_p);
    zper_manager_t *self = *self_p;
    if (self) {
        zper_metrics_destroy (&self->metrics);
        for (int index = COMPONENT_COUNT - 1; index >= 0; index--)     //  NULL ones skipped
            zactor_destroy (&self->components [index]);
        zper_broker_close (&self->broker);
        freen (self);
        *self_p = NULL;
    }
}

void
zper_manager_reload (zper_manager_t *self)
{
    if (!self->broker.security) {
        zsys_info ("SIGHUP: security is off (security.curve = 0): nothing to reload");
        return;
    }
    zsys_info ("SIGHUP: reading security.keys %s again", self->config.security_keys);
    zper_security_reload (self->broker.security);
}

//  Ping every component; returns -1 if one has been silent too long.
static int
s_heartbeat (zper_manager_t *self)
{
    int64_t now = zclock_mono ();
    for (int index = 0; index < self->component_count; index++) {
        int64_t silent = now - self->pong_ms [index];
        if (silent > ZPER_HEARTBEAT_LIVENESS * ZPER_HEARTBEAT_INTERVAL_MS) {
            zsys_error ("%s has not answered heartbeats for %lld ms: stopping the broker",
                        s_component_names [index], (long long) silent);
            return -1;
        }
        zstr_send (self->components [index], "PING");
    }
    return 0;
}

static void
s_pong (zper_manager_t *self, void *which)
{
    for (int index = 0; index < self->component_count; index++)
        if (which == self->components [index]) {
            char *answer = zstr_recv (which);
            if (answer && streq (answer, "PONG"))
                self->pong_ms [index] = zclock_mono ();
            zstr_free (&answer);
        }
}

//  Retention runs every retention period, but at least every
//  ZPER_RETENTION_CHECK_MAX_MS, so a short test retention is honoured too.
static int64_t
s_retention_interval (const zper_config_t *config)
{
    if (config->retention_ms > 0 && config->retention_ms < ZPER_RETENTION_CHECK_MAX_MS)
        return config->retention_ms;
    return ZPER_RETENTION_CHECK_MAX_MS;
}

//  One step of the retention pass (ZPER_RETENTION_STEP_MS of work: a log
//  of 100,000 topics takes many, and heartbeats go on between them).
//  Returns true when the pass is over.
static bool
s_retain (zper_manager_t *self)
{
    bool done;
    int deleted = zper_log_retain_step (self->broker.log, zclock_time (), ZPER_RETENTION_STEP_MS,
                                        &done);
    if (deleted < 0)
        zsys_error ("retention failed: %s", strerror (errno));
    else
    if (deleted > 0 && self->broker.verbose)
        zsys_info ("retention deleted %d segment(s)", deleted);
    return done;
}

int
zper_manager_run (zper_manager_t *self, atomic_int *stop)
{
    zpoller_t *poller = zpoller_new (NULL);
    for (int index = 0; index < self->component_count; index++)
        zpoller_add (poller, self->components [index]);
    int64_t retention_interval = s_retention_interval (&self->config);
    int64_t now = zclock_mono ();
    int64_t next_heartbeat = now, next_stats = now + ZPER_STATS_INTERVAL_MS;
    int64_t next_retention = now + retention_interval;
    int rc = 0;
    while (!atomic_load (stop)) {
        void *which = zpoller_wait (poller, ZPER_MANAGER_TICK_MS);
        if (which)
            s_pong (self, which);
        now = zclock_mono ();
        if (now >= next_heartbeat) {
            if (s_heartbeat (self)) {
                rc = ZPER_EXIT_UNRESPONSIVE;
                break;
            }
            next_heartbeat = now + ZPER_HEARTBEAT_INTERVAL_MS;
        }
        if (now >= next_stats) {
            zper_stats_tick (self->broker.stats, zclock_time ());
            next_stats = now + ZPER_STATS_INTERVAL_MS;
        }
        if (now >= next_retention && s_retain (self))
            next_retention = now + retention_interval;
    }
    zpoller_destroy (&poller);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: a whole broker inside this process, clients over inproc

void
zper_manager_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-manager-test");
    snprintf (config.base_dir, sizeof config.base_dir, "data");
    zper_manager_t *manager = zper_manager_new (&config, verbose);
    assert (manager);

    zsock_t *writer = zper_broker_test_client (ZMQ_DEALER, config.front_bind, "managed", 1);
    zstr_sendm (writer, "id-1");
    zstr_send (writer, "hello");
    char *id = zstr_recv (writer);
    assert (id && streq (id, "id-1"));
    zstr_free (&id);

    zsock_t *reader = zper_broker_test_client (ZMQ_DEALER, config.rear_bind, "managed", 0);
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, "FETCH");
    zper_wire_add_int64 (request, 0);
    zper_wire_add_int64 (request, 1000);
    zmsg_send (&request, reader);
    zmsg_t *reply = zmsg_recv (reader);
    assert (reply && zmsg_size (reply) == 2);
    zframe_t *status = zmsg_first (reply);
    assert (zframe_data (status) [0] == ZPER_STATUS_OK);
    zframe_t *super = zmsg_next (reply);
    assert (zframe_size (super) == 2 + 4 + 2 + 5);
    assert (memcmp (zframe_data (super), "\x01\x04id-1\x00\x05hello", 13) == 0);
    zmsg_destroy (&reply);

    //  A stop already requested: run returns at once, destroy stops cleanly
    atomic_int stop = 1;
    assert (zper_manager_run (manager, &stop) == 0);
    zsock_destroy (&writer);
    zsock_destroy (&reader);
    zper_manager_destroy (&manager);
    zper_manager_destroy (&manager);
}
