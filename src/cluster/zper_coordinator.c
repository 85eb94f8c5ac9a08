/*  =========================================================================
    zper_coordinator - a cluster node's one session with etcd

    One thread, one etcd client, a loop of bounded steps every
    cluster.poll_ms:

      1. the lease: granted once (cluster.lease_ttl), kept alive every
         third of it; the node's endpoints are registered under nodes/<id>
         on that lease, only if no other live node holds the id;
      2. the picture: a cheap count-only range tells etcd's revision; when
         it moved, every key under the prefix is read into a view that the
         table applies (roles follow the leader keys);
      3. the duties: for each partition this node holds a replica of, run
         the election when it has no leader and this node is in its ISR,
         delete a leader key a previous life of this node left, write the
         ISR its leader wants (CAS on the state key), finish a
         reassignment whose new replicas are all in sync.

    The one thing to know is when leadership ends. A leader key lives on
    the node's lease, so etcd ends it TTL after the last renewal it
    received. The coordinator counts from when it SENT its last successful
    renewal, and resigns every leadership one etcd timeout before that
    deadline: an old leader stops accepting writes before any other node
    can be elected (docs/cluster.md, Guarantees).

    Every etcd call blocks for at most cluster.etcd_timeout_ms; after each
    the actor says PONG itself when a heartbeat is due, and a failed call
    ends the step (the next one retries), so a silent etcd never makes the
    manager think this thread is stuck.
    ========================================================================= */

#include "zper_coordinator.h"
#include "zper_etcd.h"
#include <assert.h>

#define KEY_MAX     (ZPER_CONFIG_STRING_MAX + 128)

typedef struct {
    zper_broker_t *broker;
    zper_cluster_t *cluster;
    const zper_config_t *config;
    zsock_t *pipe;
    zper_etcd_t *etcd;
    char prefix [ZPER_CONFIG_STRING_MAX + 16];
    int node;
    int64_t lease;                      //  0: none
    bool registered;                    //  nodes/<id> is ours on this lease
    int64_t lease_valid_ms;             //  mono: etcd may end the lease after this
    int64_t keepalive_due_ms;           //  mono
    int64_t revision;                   //  of the view the table holds (0: none yet)
    bool reload;                        //  read every key on the next step
    zhashx_t *leaderless_since;         //  topic -> mono ms when first seen without a leader
    int64_t beat_ms;
    int64_t error_logged_ms;
    bool unreachable_logged;
} coordinator_t;

//  Say PONG when a heartbeat interval passed since the last one.
static void
s_beat (coordinator_t *self)
{
    int64_t now = zclock_mono ();
    if (now - self->beat_ms >= ZPER_HEARTBEAT_INTERVAL_MS) {
        zstr_send (self->pipe, "PONG");
        self->beat_ms = now;
    }
}

//  Log an etcd failure, at most once a second.
static void
s_etcd_failed (coordinator_t *self, const char *what)
{
    int64_t now = zclock_mono ();
    if (now - self->error_logged_ms >= ZPER_LOG_INTERVAL_MS) {
        self->error_logged_ms = now;
        zsys_warning ("coordinator: %s: %s", what, zper_etcd_error (self->etcd));
    }
}

static void
s_key (coordinator_t *self, char *key, const char *format, const char *topic)
{
    //  "T.i" is stored as T/i in leader and state keys
    char name [ZPER_TOPIC_MAX + 1];
    snprintf (name, sizeof name, "%s", topic);
    char *dot = strrchr (name, '.');
    if (dot)
        *dot = '/';
    snprintf (key, KEY_MAX, format, self->prefix, name);
}

//  ---- the lease and the registration --------------------------------------------

static int
s_register (coordinator_t *self)
{
    const zper_config_t *config = self->config;
    char front [ZPER_CONFIG_STRING_MAX], rear [ZPER_CONFIG_STRING_MAX],
         replication [ZPER_CONFIG_STRING_MAX], relay [ZPER_CONFIG_STRING_MAX],
         ack [ZPER_CONFIG_STRING_MAX];
    zper_config_advertised (config, config->front_bind, front, sizeof front);
    zper_config_advertised (config, config->rear_bind, rear, sizeof rear);
    zper_config_advertised (config, config->cluster_replication_bind, replication,
                            sizeof replication);
    zper_config_advertised (config, config->relay_bind, relay, sizeof relay);
    zper_config_advertised (config, config->ack_bind, ack, sizeof ack);
    char *value = zsys_sprintf ("{\"id\":%d,\"front\":\"%s\",\"rear\":\"%s\","
                                "\"replication\":\"%s\",\"relay\":\"%s\",\"ack\":\"%s\"}",
                                self->node, front, rear, replication, relay, ack);
    char key [KEY_MAX];
    snprintf (key, sizeof key, "%snodes/%d", self->prefix, self->node);
    //  Only if no other live node holds this id: two nodes with one id
    //  would take each other's partitions
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, key, ZPER_ETCD_CREATE_REVISION, ZPER_ETCD_EQUAL, 0);
    zper_etcd_txn_put (txn, true, key, value, strlen (value), self->lease);
    bool created = false;
    int rc = zper_etcd_txn_commit (self->etcd, txn, &created);
    zper_etcd_txn_destroy (&txn);
    zstr_free (&value);
    if (rc) {
        s_etcd_failed (self, "cannot register the node");
        return -1;
    }
    if (!created) {
        int64_t now = zclock_mono ();
        if (now - self->error_logged_ms >= ZPER_LOG_INTERVAL_MS) {
            self->error_logged_ms = now;
            zsys_error ("coordinator: cluster.node %d is registered by another live node: "
                        "waiting for its lease to end", self->node);
        }
        return -1;
    }
    self->registered = true;
    self->reload = true;
    zsys_info ("coordinator: node %d registered in etcd (lease %llx)", self->node,
               (unsigned long long) self->lease);
    return 0;
}

//  Keep the lease: grant, renew, register. Resign every leadership when
//  the lease may end. Returns 0 while the node is registered on a live
//  lease, else -1.
static int
s_lease (coordinator_t *self)
{
    int64_t now = zclock_mono ();
    int64_t ttl_ms = self->config->cluster_lease_ttl * 1000;
    if (self->lease && now >= self->keepalive_due_ms) {
        int64_t sent = now;
        int64_t left = zper_etcd_lease_keepalive (self->etcd, self->lease);
        s_beat (self);
        if (left > 0) {
            self->lease_valid_ms = sent + left * 1000;
            self->keepalive_due_ms = sent + ttl_ms / 3;
            if (self->unreachable_logged)
                zsys_info ("coordinator: etcd answers again");
            self->unreachable_logged = false;
        }
        else
        if (left == 0) {
            zsys_warning ("coordinator: lease %llx ended: registering again",
                          (unsigned long long) self->lease);
            zper_cluster_resign (self->cluster, NULL);
            self->lease = 0;
            self->registered = false;
        }
        else {
            self->keepalive_due_ms = now + ZPER_HEARTBEAT_INTERVAL_MS / 4;
            s_etcd_failed (self, "cannot renew the lease");
        }
    }
    //  Resign one etcd timeout (at most a quarter of the TTL) before etcd
    //  may end the lease
    int64_t margin = self->config->cluster_etcd_timeout_ms < ttl_ms / 4?
                     self->config->cluster_etcd_timeout_ms: ttl_ms / 4;
    if (self->lease && zclock_mono () >= self->lease_valid_ms - margin) {
        if (!self->unreachable_logged)
            zsys_warning ("coordinator: etcd unreachable: the lease may end: resigning every "
                          "leadership, writes refused until etcd answers");
        self->unreachable_logged = true;
        zper_cluster_resign (self->cluster, NULL);
        if (zclock_mono () >= self->lease_valid_ms) {
            self->lease = 0;            //  gone for sure: start over
            self->registered = false;
        }
        return -1;
    }
    if (!self->lease) {
        int64_t sent = zclock_mono ();
        int64_t lease = zper_etcd_lease_grant (self->etcd, self->config->cluster_lease_ttl);
        s_beat (self);
        if (lease <= 0) {
            s_etcd_failed (self, "cannot get a lease");
            return -1;
        }
        self->lease = lease;
        self->lease_valid_ms = sent + ttl_ms;
        self->keepalive_due_ms = sent + ttl_ms / 3;
    }
    if (!self->registered && s_register (self))
        return -1;
    return 0;
}

//  ---- the picture ----------------------------------------------------------------

//  A view of kvs (every key under the prefix).
static zper_cluster_view_t *
s_view_build (coordinator_t *self, zlistx_t *kvs, int64_t revision)
{
    zper_cluster_view_t *view = zper_cluster_view_new (revision);
    size_t prefix_size = strlen (self->prefix);
    for (zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs); kv;
         kv = (zper_etcd_kv_t *) zlistx_next (kvs))
        if (strlen (kv->key) > prefix_size
        &&  zper_cluster_view_add (view, kv->key + prefix_size, kv->value, kv->mod_revision,
                                   kv->lease)) {
            int64_t now = zclock_mono ();
            if (now - self->error_logged_ms >= ZPER_LOG_INTERVAL_MS) {
                self->error_logged_ms = now;
                zsys_warning ("coordinator: ignoring etcd key %s: not a ZPER value", kv->key);
            }
        }
    zper_cluster_view_finish (view);
    return view;
}

//  Read etcd's picture when it changed: the table gets one copy, the
//  duties below the other. Returns the view (caller destroys), or NULL
//  when nothing changed or etcd could not be read.
static zper_cluster_view_t *
s_picture (coordinator_t *self)
{
    int64_t revision = 0, count = 0;
    if (zper_etcd_revision (self->etcd, self->prefix, &revision, &count)) {
        s_etcd_failed (self, "cannot read the cluster's revision");
        return NULL;
    }
    s_beat (self);
    if (revision == self->revision && !self->reload)
        return NULL;
    zlistx_t *kvs;
    if (zper_etcd_get (self->etcd, self->prefix, true, &kvs, &revision)) {
        s_etcd_failed (self, "cannot read the cluster");
        return NULL;
    }
    s_beat (self);
    zper_cluster_view_t *for_table = s_view_build (self, kvs, revision);
    zper_cluster_view_t *view = s_view_build (self, kvs, revision);
    zlistx_destroy (&kvs);
    zper_cluster_apply_view (self->cluster, &for_table);
    self->revision = revision;
    self->reload = false;
    return view;
}

//  ---- the duties ----------------------------------------------------------------------

static bool
s_contains (const int *list, size_t count, int value)
{
    for (size_t index = 0; index < count; index++)
        if (list [index] == value)
            return true;
    return false;
}

//  Run one etcd transaction; a failed or refused one makes the next step
//  read every key again. Returns true when it applied.
static bool
s_commit (coordinator_t *self, zper_etcd_txn_t **txn_p, const char *what)
{
    bool applied = false;
    if (zper_etcd_txn_commit (self->etcd, *txn_p, &applied))
        s_etcd_failed (self, what);
    zper_etcd_txn_destroy (txn_p);
    s_beat (self);
    self->reload = true;
    return applied;
}

//  A leader key naming this node that it does not hold (a previous life's,
//  or one it could not take up): delete it, so that an election can run.
static void
s_delete_stale_leader (coordinator_t *self, const zper_cluster_slot_t *slot)
{
    char key [KEY_MAX];
    s_key (self, key, "%sleaders/%s", slot->topic);
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->leader_revision);
    zper_etcd_txn_delete (txn, true, key);
    if (s_commit (self, &txn, "cannot delete a stale leader key"))
        zsys_info ("coordinator: %s: deleted the leader key of an earlier run of this node",
                   slot->topic);
}

//  The election: this node is in the ISR and nobody leads. One txn: the
//  leader key still absent, the state unchanged; it takes the key on our
//  lease, bumps the epoch and drops dead nodes from the ISR.
static void
s_elect (coordinator_t *self, const zper_cluster_slot_t *slot, zper_cluster_view_t *view)
{
    int64_t now = zclock_mono ();
    int64_t *since = (int64_t *) zhashx_lookup (self->leaderless_since, slot->topic);
    if (!since) {
        since = (int64_t *) zmalloc (sizeof (int64_t));
        *since = now;
        zhashx_insert (self->leaderless_since, slot->topic, since);
    }
    //  The first replica in the ISR campaigns at once, the others a little
    //  later, so that leaderships spread as the layout placed them
    size_t rank = 0;
    while (rank < slot->isr_count && slot->isr [rank] != self->node)
        rank++;
    if (now - *since < (int64_t) rank * 2 * self->config->cluster_poll_ms)
        return;
    int isr [ZPER_CLUSTER_REPLICAS_MAX];
    size_t isr_count = 0;
    for (size_t index = 0; index < slot->isr_count; index++)
        if (slot->isr [index] == self->node || zper_cluster_view_node (view, slot->isr [index]))
            isr [isr_count++] = slot->isr [index];
    int64_t epoch = slot->epoch + 1;
    char leader_key [KEY_MAX], state_key [KEY_MAX];
    s_key (self, leader_key, "%sleaders/%s", slot->topic);
    s_key (self, state_key, "%sstate/%s", slot->topic);
    char *leader = zsys_sprintf ("{\"node\":%d,\"epoch\":%lld}", self->node, (long long) epoch);
    char *state = zper_cluster_state_json (epoch, self->node, isr, isr_count);
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, leader_key, ZPER_ETCD_CREATE_REVISION, ZPER_ETCD_EQUAL, 0);
    zper_etcd_txn_compare (txn, state_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->state_revision);
    zper_etcd_txn_put (txn, true, leader_key, leader, strlen (leader), self->lease);
    zper_etcd_txn_put (txn, true, state_key, state, strlen (state), 0);
    bool won = s_commit (self, &txn, "cannot run an election");
    zstr_free (&leader);
    zstr_free (&state);
    if (!won)
        return;
    zhashx_delete (self->leaderless_since, slot->topic);
    if (zper_cluster_become_leader (self->cluster, slot->topic, epoch, isr, isr_count)) {
        //  Our disk refused the epoch: let another replica lead
        zper_etcd_txn_t *undo = zper_etcd_txn_new ();
        zper_etcd_txn_delete (undo, true, leader_key);
        s_commit (self, &undo, "cannot give up a leadership");
    }
}

//  Leader: write the ISR the replication actor wants, if it differs from
//  what etcd holds; only while our leader key and the state are as read.
static void
s_write_isr (coordinator_t *self, const zper_cluster_slot_t *slot,
             const zper_cluster_partition_t *partition)
{
    if (!partition->isr_wanted_count)
        return;
    bool same = partition->isr_wanted_count == slot->isr_count;
    for (size_t index = 0; same && index < slot->isr_count; index++)
        same = s_contains (partition->isr_wanted, partition->isr_wanted_count, slot->isr [index]);
    if (same)
        return;
    char leader_key [KEY_MAX], state_key [KEY_MAX];
    s_key (self, leader_key, "%sleaders/%s", slot->topic);
    s_key (self, state_key, "%sstate/%s", slot->topic);
    char *state = zper_cluster_state_json (partition->epoch, self->node, partition->isr_wanted,
                                           partition->isr_wanted_count);
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, leader_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->leader_revision);
    zper_etcd_txn_compare (txn, state_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->state_revision);
    zper_etcd_txn_put (txn, true, state_key, state, strlen (state), 0);
    if (s_commit (self, &txn, "cannot write an ISR")) {
        zper_cluster_confirm_isr (self->cluster, slot->topic, partition->isr_wanted,
                                  partition->isr_wanted_count);
        zsys_info ("coordinator: %s: ISR is now %s", slot->topic, state);
    }
    zstr_free (&state);
}

//  Leader: a reassignment whose new replicas are all in sync ends: the
//  layout takes the targets, the ISR keeps only them. A leader that is not
//  among them resigns first (it must accept no write a successor may not
//  have), then gives its key up in the same txn.
static void
s_finish_reassignment (coordinator_t *self, zper_cluster_slot_t *slot,
                       const zper_cluster_partition_t *partition, zper_cluster_view_t *view)
{
    for (size_t index = 0; index < slot->target_count; index++)
        if (!s_contains (partition->isr, partition->isr_count, slot->targets [index]))
            return;
    bool staying = s_contains (slot->targets, slot->target_count, self->node);
    int isr [ZPER_CLUSTER_REPLICAS_MAX];
    size_t isr_count = 0;
    for (size_t index = 0; index < partition->isr_count; index++)
        if (s_contains (slot->targets, slot->target_count, partition->isr [index]))
            isr [isr_count++] = partition->isr [index];
    //  The new layout: every partition of the topic as the view has it,
    //  this one with its targets as replicas
    //  On the heap: 1024 slots would take 400 KB of this thread's stack
    zper_cluster_slot_t *slots = (zper_cluster_slot_t *)
        zmalloc ((size_t) slot->partitions * sizeof (zper_cluster_slot_t));
    size_t count = 0;
    for (zper_cluster_slot_t *other = (zper_cluster_slot_t *) zlistx_first (view->slots);
         other && count < (size_t) slot->partitions;
         other = (zper_cluster_slot_t *) zlistx_next (view->slots))
        if (streq (other->base, slot->base))
            slots [count++] = *other;
    zper_cluster_slot_t *moved = &slots [slot->index];
    memcpy (moved->replicas, slot->targets, sizeof moved->replicas);
    moved->replica_count = slot->target_count;
    moved->target_count = 0;
    char *layout = zper_cluster_layout_json (slots, count);
    freen (slots);
    char *state = zper_cluster_state_json (partition->epoch, staying? self->node: -1, isr,
                                           isr_count);
    char topic_key [KEY_MAX], leader_key [KEY_MAX], state_key [KEY_MAX];
    snprintf (topic_key, sizeof topic_key, "%stopics/%s", self->prefix, slot->base);
    s_key (self, leader_key, "%sleaders/%s", slot->topic);
    s_key (self, state_key, "%sstate/%s", slot->topic);
    if (!staying)
        zper_cluster_resign (self->cluster, slot->topic);
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, topic_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->topic_revision);
    zper_etcd_txn_compare (txn, leader_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->leader_revision);
    zper_etcd_txn_compare (txn, state_key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL,
                           slot->state_revision);
    zper_etcd_txn_put (txn, true, topic_key, layout, strlen (layout), 0);
    zper_etcd_txn_put (txn, true, state_key, state, strlen (state), 0);
    if (!staying)
        zper_etcd_txn_delete (txn, true, leader_key);
    if (s_commit (self, &txn, "cannot finish a reassignment"))
        zsys_info ("coordinator: %s: reassignment done: replicas %s", slot->topic, layout);
    zstr_free (&layout);
    zstr_free (&state);
}

static void
s_duties (coordinator_t *self, zper_cluster_view_t *view)
{
    for (zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zlistx_first (view->slots); slot;
         slot = (zper_cluster_slot_t *) zlistx_next (view->slots)) {
        zper_cluster_partition_t partition;
        if (zper_cluster_partition (self->cluster, slot->topic, &partition))
            continue;                   //  not a replica here
        bool leading = partition.role == ZPER_ROLE_LEADER && slot->leader == self->node
                    && slot->leader_epoch == partition.epoch;
        if (leading) {
            s_write_isr (self, slot, &partition);
            if (slot->target_count && !self->reload)
                s_finish_reassignment (self, slot, &partition, view);
        }
        else
        if (slot->leader == self->node)
            s_delete_stale_leader (self, slot);
        else
        if (slot->leader < 0 && s_contains (slot->isr, slot->isr_count, self->node))
            s_elect (self, slot, view);
        else
            zhashx_delete (self->leaderless_since, slot->topic);
        if (self->reload)
            break;                      //  we wrote: read again before deciding more
    }
}

//  ---- the actor -------------------------------------------------------------------------

static void
s_step (coordinator_t *self, zper_cluster_view_t **view_p)
{
    if (s_lease (self))
        return;
    zper_cluster_view_t *fresh = s_picture (self);
    if (fresh) {
        zper_cluster_view_destroy (view_p);
        *view_p = fresh;
    }
    //  Every step, not only when etcd changed: an election waits for its
    //  turn, and leaders ask for ISR changes between two changes of etcd
    if (*view_p && !self->reload)
        s_duties (self, *view_p);
}

//  On a clean stop: give every leadership up and end the lease, so that
//  the other replicas elect a new leader at once rather than after the TTL.
static void
s_leave (coordinator_t *self)
{
    zper_cluster_resign (self->cluster, NULL);
    if (self->lease && zper_etcd_lease_revoke (self->etcd, self->lease) == 0)
        zsys_info ("coordinator: node %d left the cluster", self->node);
}

void
zper_coordinator_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    coordinator_t self = { .broker = broker, .cluster = broker->cluster,
                           .config = broker->config, .pipe = pipe,
                           .node = zper_cluster_node (broker->cluster),
                           .leaderless_since = zhashx_new () };
    zhashx_set_destructor (self.leaderless_since, (zhashx_destructor_fn *) zstr_free);
    snprintf (self.prefix, sizeof self.prefix, "/zper/%s/", self.config->cluster_name);
    self.etcd = zper_etcd_new (self.config->cluster_etcd,
                               (int) self.config->cluster_etcd_timeout_ms);
    if (!self.etcd) {
        zper_broker_fail (pipe, "cluster.etcd '%s' is not a list of http:// endpoints",
                          self.config->cluster_etcd);
        zhashx_destroy (&self.leaderless_since);
        return;
    }
    zper_broker_ready (pipe);
    zper_cluster_view_t *view = NULL;
    bool terminated = false;
    while (!terminated) {
        s_step (&self, &view);
        zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, self.config->cluster_poll_ms) == -1 && zmq_errno () != EINTR)
            break;
        while (!terminated && (zsock_events (pipe) & ZMQ_POLLIN)) {
            char *command = zstr_recv (pipe);
            terminated = !command || zper_broker_pipe_command (pipe, command);
            zstr_free (&command);
        }
        if (!terminated)
            s_beat (&self);
    }
    s_leave (&self);
    zper_cluster_view_destroy (&view);
    zper_etcd_destroy (&self.etcd);
    zhashx_destroy (&self.leaderless_since);
}

//  ---- selftest ----------------------------------------------------------------------

//  Wait (at most 20 s) until the table shows topic in role at an epoch
//  above min_epoch. Returns the epoch, or -1.
static int64_t
s_test_wait_role (zper_cluster_t *cluster, const char *topic, zper_role_t role, int64_t min_epoch)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        zper_cluster_partition_t partition;
        if (zper_cluster_partition (cluster, topic, &partition) == 0
        &&  partition.role == role && partition.epoch > min_epoch)
            return partition.epoch;
        zclock_sleep (50);
    }
    return -1;
}

void
zper_coordinator_test (bool verbose)
{
    char folder [] = "/tmp/zper-coordinator-test-XXXXXX";
    assert (mkdtemp (folder));
    char etcd_folder [ZPER_CONFIG_STRING_MAX], endpoint [128];
    snprintf (etcd_folder, sizeof etcd_folder, "%s/etcd", folder);
    int pid = zper_etcd_test_start (etcd_folder, endpoint, sizeof endpoint);
    assert (pid > 0);

    zper_config_t config;
    zper_config_init (&config);
    snprintf (config.base_dir, sizeof config.base_dir, "%s/data", folder);
    snprintf (config.cluster_etcd, sizeof config.cluster_etcd, "%s", endpoint);
    snprintf (config.cluster_name, sizeof config.cluster_name, "coordinator");
    config.cluster_node = 1;
    config.cluster_lease_ttl = 2;
    config.cluster_poll_ms = 50;
    config.cluster_etcd_timeout_ms = 1000;
    config.cluster_max_partitions = 100;
    zper_broker_t broker;
    assert (zper_broker_open (&broker, &config, verbose) == 0);
    assert (broker.cluster);

    //  A topic of one partition on this node alone: it elects itself
    zper_etcd_t *etcd = zper_etcd_new (endpoint, 2000);
    const char *layout = "{\"partitions\":1,\"min_insync_replicas\":1,\"replicas\":[[1]]}";
    assert (zper_etcd_put (etcd, "/zper/coordinator/topics/solo", layout, strlen (layout), 0)
            == 0);
    zactor_t *coordinator = zper_broker_start (zper_coordinator_actor, &broker, "coordinator");
    assert (coordinator);
    int64_t epoch = s_test_wait_role (broker.cluster, "solo.0", ZPER_ROLE_LEADER, 0);
    assert (epoch == 1);
    zlistx_t *kvs;
    assert (zper_etcd_get (etcd, "/zper/coordinator/leaders/solo/0", false, &kvs, NULL) == 0);
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    assert (kv && streq (kv->value, "{\"node\":1,\"epoch\":1}") && kv->lease != 0);
    zlistx_destroy (&kvs);
    assert (zper_etcd_get (etcd, "/zper/coordinator/nodes/1", false, &kvs, NULL) == 0);
    assert (zlistx_size (kvs) == 1);
    zlistx_destroy (&kvs);
    int64_t written_epoch;
    assert (zper_cluster_lead_begin (broker.cluster, "solo.0", true, &written_epoch) == 0);
    zper_cluster_lead_end (broker.cluster, "solo.0");

    //  Someone deletes our leader key: we resign, and win again at epoch 2
    assert (zper_etcd_delete (etcd, "/zper/coordinator/leaders/solo/0", false) == 1);
    epoch = s_test_wait_role (broker.cluster, "solo.0", ZPER_ROLE_LEADER, 1);
    assert (epoch == 2);
    zper_epochs_t *epochs = zper_cluster_epochs (broker.cluster, "solo.0");
    assert (zper_epochs_latest (epochs) == 2);

    //  etcd stops answering: the leadership ends before the lease could
    kill (pid, SIGSTOP);
    assert (s_test_wait_role (broker.cluster, "solo.0", ZPER_ROLE_FOLLOWER, 0) >= 2);
    kill (pid, SIGCONT);
    epoch = s_test_wait_role (broker.cluster, "solo.0", ZPER_ROLE_LEADER, 2);
    assert (epoch >= 3);

    //  A clean stop ends the lease: the node's keys are gone at once
    zactor_destroy (&coordinator);
    assert (zper_etcd_get (etcd, "/zper/coordinator/nodes/", true, &kvs, NULL) == 0);
    assert (zlistx_size (kvs) == 0);
    zlistx_destroy (&kvs);
    zper_etcd_destroy (&etcd);
    zper_broker_close (&broker);
    zper_etcd_test_stop (pid);
    char command [ZPER_CONFIG_STRING_MAX + 16];
    snprintf (command, sizeof command, "rm -rf %s", folder);
    assert (system (command) == 0);
}
