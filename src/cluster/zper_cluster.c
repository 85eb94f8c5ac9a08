/*  =========================================================================
    zper_cluster - what a cluster node knows, shared by its threads

    Two halves. The view is a picture of etcd's keys under the cluster's
    prefix (nodes, topic layouts, leader keys, state keys), parsed from
    their JSON by the coordinator's thread and handed over whole. The table
    is what this node does about it: one entry per partition it holds a
    replica of, with its role, epoch, leader, ISR and high-watermark, and
    the partition's writer lock.

    Locks: the table's mutex guards the entries' fields and the view; each
    entry's writer lock guards its log partition's writes. The order is
    writer lock first, then the mutex, never the other way; entries are
    never freed before the table, so a pointer found under the mutex stays
    valid after it is released.
    ========================================================================= */

#include "zper_cluster.h"
#include "zper_etcd.h"
#include "zper_identity.h"
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    int node;
    int64_t fetch_offset;
    int64_t durable_offset;
    int64_t caught_up_ms;               //  mono ms of the last fetch at the leader's end
} progress_t;

typedef struct {
    zper_cluster_partition_t info;      //  under the table's mutex
    pthread_mutex_t writer;             //  one writer of the log partition at a time
    zper_partition_t *log;              //  owned by the log
    zper_epochs_t *epochs;              //  opened on first use
    progress_t progress [ZPER_CLUSTER_REPLICAS_MAX];
    size_t progress_count;
} entry_t;

struct _zper_cluster_t {
    const zper_config_t *config;
    zper_log_t *log;
    int node;
    pthread_mutex_t mutex;
    zhashx_t *entries;                  //  "T.i" -> entry_t
    zper_cluster_view_t *view;          //  the last picture of etcd
    atomic_uint_fast64_t generation;
    int64_t refused_logged_ms;          //  cluster.max_partitions refusals, logged once a second
};

//  ---- names ------------------------------------------------------------------

static bool
s_base_valid (const char *base, size_t size)
{
    if (size == 0 || size > ZPER_CLUSTER_BASE_NAME_MAX)
        return false;
    for (size_t index = 0; index < size; index++)
        if (!isalnum ((unsigned char) base [index]))
            return false;
    return true;
}

bool
zper_cluster_partition_name (const char *topic, char *base, int *index)
{
    const char *dot = strrchr (topic, '.');
    if (!dot || !s_base_valid (topic, (size_t) (dot - topic)))
        return false;
    const char *digits = dot + 1;
    size_t count = strlen (digits);
    if (count == 0 || count > 5 || (count > 1 && digits [0] == '0'))
        return false;
    for (size_t cursor = 0; cursor < count; cursor++)
        if (!isdigit ((unsigned char) digits [cursor]))
            return false;
    int value = atoi (digits);
    if (value >= ZPER_CLUSTER_PARTITIONS_MAX)
        return false;
    if (base) {
        memcpy (base, topic, (size_t) (dot - topic));
        base [dot - topic] = 0;
    }
    if (index)
        *index = value;
    return true;
}

static bool
s_contains (const int *list, size_t count, int value)
{
    for (size_t index = 0; index < count; index++)
        if (list [index] == value)
            return true;
    return false;
}

//  ---- view: etcd's keys, parsed ---------------------------------------------

zper_cluster_view_t *
zper_cluster_view_new (int64_t revision)
{
    zper_cluster_view_t *self = (zper_cluster_view_t *) zmalloc (sizeof (zper_cluster_view_t));
    self->revision = revision;
    self->nodes = zlistx_new ();
    self->slots = zlistx_new ();
    self->keys = zlistx_new ();
    self->by_topic = zhashx_new ();
    zlistx_set_destructor (self->nodes, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->slots, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->keys, (zlistx_destructor_fn *) zstr_free);
    return self;
}

void
zper_cluster_view_destroy (zper_cluster_view_t **self_p)
{
    assert (self_p);
    zper_cluster_view_t *self = *self_p;
    if (self) {
        zlistx_destroy (&self->nodes);
        zlistx_destroy (&self->slots);
        zlistx_destroy (&self->keys);
        zhashx_destroy (&self->by_topic);
        freen (self);
        *self_p = NULL;
    }
}

//  Read a JSON array of node ids into list. Returns the count, or -1.
static int
s_json_ids (json_t *array, int *list, size_t max)
{
    if (!json_is_array (array) || json_array_size (array) > max)
        return -1;
    size_t index;
    json_t *value;
    json_array_foreach (array, index, value) {
        if (!json_is_integer (value) || json_integer_value (value) < 1
        ||  json_integer_value (value) > ZPER_CLUSTER_NODE_MAX)
            return -1;
        list [index] = (int) json_integer_value (value);
    }
    return (int) json_array_size (array);
}

static void
s_copy_string (char *target, size_t size, json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    snprintf (target, size, "%s", value? value: "");
}

static int
s_add_node (zper_cluster_view_t *self, const char *id, json_t *root)
{
    zper_cluster_node_t *node = (zper_cluster_node_t *) zmalloc (sizeof (zper_cluster_node_t));
    node->id = atoi (id);
    s_copy_string (node->front, sizeof node->front, root, "front");
    s_copy_string (node->rear, sizeof node->rear, root, "rear");
    s_copy_string (node->replication, sizeof node->replication, root, "replication");
    s_copy_string (node->relay, sizeof node->relay, root, "relay");
    s_copy_string (node->ack, sizeof node->ack, root, "ack");
    if (node->id < 1 || node->id > ZPER_CLUSTER_NODE_MAX || !*node->replication) {
        freen (node);
        return -1;
    }
    zlistx_add_end (self->nodes, node);
    return 0;
}

//  A topic layout: one slot per partition.
static int
s_add_topic (zper_cluster_view_t *self, const char *name, json_t *root, int64_t revision)
{
    json_t *replicas = json_object_get (root, "replicas");
    json_t *targets = json_object_get (root, "targets");
    int partitions = (int) json_integer_value (json_object_get (root, "partitions"));
    int min_isr = (int) json_integer_value (json_object_get (root, "min_insync_replicas"));
    if (!s_base_valid (name, strlen (name)) || partitions < 1
    ||  partitions > ZPER_CLUSTER_PARTITIONS_MAX || !json_is_array (replicas)
    ||  (int) json_array_size (replicas) != partitions || min_isr < 1)
        return -1;
    for (int index = 0; index < partitions; index++) {
        zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zmalloc (sizeof (zper_cluster_slot_t));
        snprintf (slot->topic, sizeof slot->topic, "%s.%d", name, index);
        snprintf (slot->base, sizeof slot->base, "%s", name);
        slot->index = index;
        slot->partitions = partitions;
        slot->min_isr = min_isr;
        slot->topic_revision = revision;
        slot->leader = -1;
        int count = s_json_ids (json_array_get (replicas, (size_t) index), slot->replicas,
                                ZPER_CLUSTER_REPLICAS_MAX);
        char key [16];
        snprintf (key, sizeof key, "%d", index);
        json_t *target = json_object_get (targets, key);
        int target_count = target? s_json_ids (target, slot->targets, ZPER_CLUSTER_REPLICAS_MAX)
                                 : 0;
        if (count < 1 || target_count < 0) {
            freen (slot);
            return -1;
        }
        slot->replica_count = (size_t) count;
        slot->target_count = (size_t) target_count;
        if (slot->min_isr > count)
            slot->min_isr = count;
        zlistx_add_end (self->slots, slot);
        zhashx_insert (self->by_topic, slot->topic, slot);
    }
    return 0;
}

//  Leader and state keys are kept aside until every layout is read.
typedef struct {
    char topic [ZPER_TOPIC_MAX + 1];
    bool is_state;
    int node;
    int64_t epoch;
    int isr [ZPER_CLUSTER_REPLICAS_MAX];
    int isr_count;
    int64_t revision;
    int64_t lease;
} pending_key_t;

int
zper_cluster_view_add (zper_cluster_view_t *self, const char *key, const char *value,
                       int64_t mod_revision, int64_t lease)
{
    json_error_t error;
    json_t *root = json_loads (value, 0, &error);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    int rc = -1;
    char topic [ZPER_TOPIC_MAX + 1];
    if (strncmp (key, "nodes/", 6) == 0)
        rc = s_add_node (self, key + 6, root);
    else
    if (strncmp (key, "topics/", 7) == 0)
        rc = s_add_topic (self, key + 7, root, mod_revision);
    else
    if (strncmp (key, "leaders/", 8) == 0 || strncmp (key, "state/", 6) == 0) {
        bool is_state = key [0] == 's';
        const char *rest = key + (is_state? 6: 8);
        const char *slash = strchr (rest, '/');
        if (slash && (size_t) (slash - rest) <= ZPER_CLUSTER_BASE_NAME_MAX && strlen (slash) < 8) {
            snprintf (topic, sizeof topic, "%.*s.%s", (int) (slash - rest), rest, slash + 1);
            if (zper_cluster_partition_name (topic, NULL, NULL)) {
                pending_key_t *pending = (pending_key_t *) zmalloc (sizeof (pending_key_t));
                snprintf (pending->topic, sizeof pending->topic, "%s", topic);
                pending->is_state = is_state;
                pending->revision = mod_revision;
                pending->lease = lease;
                pending->epoch = json_integer_value (json_object_get (root, "epoch"));
                json_t *node = json_object_get (root, is_state? "leader": "node");
                pending->node = json_is_integer (node)? (int) json_integer_value (node): -1;
                pending->isr_count = is_state? s_json_ids (json_object_get (root, "isr"),
                                                           pending->isr,
                                                           ZPER_CLUSTER_REPLICAS_MAX): 0;
                if (pending->isr_count < 0 || pending->epoch < 0)
                    freen (pending);
                else {
                    zlistx_add_end (self->keys, pending);
                    rc = 0;
                }
            }
        }
    }
    json_decref (root);
    return rc;
}

static int
s_slot_compare (const void *item1, const void *item2)
{
    const zper_cluster_slot_t *first = (const zper_cluster_slot_t *) item1;
    const zper_cluster_slot_t *second = (const zper_cluster_slot_t *) item2;
    int order = strcmp (first->base, second->base);
    return order? order: first->index - second->index;
}

static int
s_node_compare (const void *item1, const void *item2)
{
    return ((const zper_cluster_node_t *) item1)->id - ((const zper_cluster_node_t *) item2)->id;
}

void
zper_cluster_view_finish (zper_cluster_view_t *self)
{
    zlistx_set_comparator (self->slots, s_slot_compare);
    zlistx_sort (self->slots);
    zlistx_set_comparator (self->nodes, s_node_compare);
    zlistx_sort (self->nodes);
    //  A partition never led has no state: every replica holds its (empty) log
    for (zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zlistx_first (self->slots); slot;
         slot = (zper_cluster_slot_t *) zlistx_next (self->slots)) {
        memcpy (slot->isr, slot->replicas, sizeof slot->isr);
        slot->isr_count = slot->replica_count;
    }
    for (pending_key_t *key = (pending_key_t *) zlistx_first (self->keys); key;
         key = (pending_key_t *) zlistx_next (self->keys)) {
        zper_cluster_slot_t *slot = zper_cluster_view_slot (self, key->topic);
        if (!slot)
            continue;                   //  a key left over from a deleted topic
        if (key->is_state) {
            slot->has_state = true;
            slot->epoch = key->epoch;
            memcpy (slot->isr, key->isr, sizeof slot->isr);
            slot->isr_count = (size_t) key->isr_count;
            slot->state_revision = key->revision;
        }
        else {
            slot->leader = key->node;
            slot->leader_epoch = key->epoch;
            slot->leader_lease = key->lease;
            slot->leader_revision = key->revision;
        }
    }
    zlistx_purge (self->keys);
}

zper_cluster_slot_t *
zper_cluster_view_slot (zper_cluster_view_t *self, const char *topic)
{
    return (zper_cluster_slot_t *) zhashx_lookup (self->by_topic, topic);
}

zper_cluster_node_t *
zper_cluster_view_node (zper_cluster_view_t *self, int id)
{
    for (zper_cluster_node_t *node = (zper_cluster_node_t *) zlistx_first (self->nodes); node;
         node = (zper_cluster_node_t *) zlistx_next (self->nodes))
        if (node->id == id)
            return node;
    return NULL;
}

static json_t *
s_json_id_array (const int *list, size_t count)
{
    json_t *array = json_array ();
    for (size_t index = 0; index < count; index++)
        json_array_append_new (array, json_integer (list [index]));
    return array;
}

//  Serialize root compactly (keys in insertion order) and release it.
static char *
s_json_dump (json_t *root)
{
    char *text = json_dumps (root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (root);
    return text;
}

char *
zper_cluster_layout_json (const zper_cluster_slot_t *slots, size_t count)
{
    assert (count > 0);
    json_t *root = json_object ();
    json_object_set_new (root, "partitions", json_integer ((json_int_t) count));
    json_object_set_new (root, "min_insync_replicas", json_integer (slots [0].min_isr));
    json_t *layout = json_array (), *targets = json_object ();
    for (size_t index = 0; index < count; index++) {
        const zper_cluster_slot_t *slot = &slots [index];
        json_array_append_new (layout, s_json_id_array (slot->replicas, slot->replica_count));
        if (slot->target_count) {
            char key [32];
            snprintf (key, sizeof key, "%zu", index);
            json_object_set_new (targets, key, s_json_id_array (slot->targets, slot->target_count));
        }
    }
    json_object_set_new (root, "replicas", layout);
    if (json_object_size (targets))
        json_object_set_new (root, "targets", targets);
    else
        json_decref (targets);
    return s_json_dump (root);
}

char *
zper_cluster_state_json (int64_t epoch, int leader, const int *isr, size_t isr_count)
{
    json_t *root = json_object ();
    json_object_set_new (root, "epoch", json_integer (epoch));
    json_object_set_new (root, "leader", json_integer (leader));
    json_object_set_new (root, "isr", s_json_id_array (isr, isr_count));
    return s_json_dump (root);
}

//  ---- the table ----------------------------------------------------------------

static void
s_entry_destroy (void **item)
{
    entry_t *entry = (entry_t *) *item;
    pthread_mutex_destroy (&entry->writer);
    zper_epochs_destroy (&entry->epochs);
    freen (entry);
    *item = NULL;
}

zper_cluster_t *
zper_cluster_new (const zper_config_t *config, zper_log_t *log)
{
    if (!*config->cluster_etcd)
        return NULL;
    zper_cluster_t *self = (zper_cluster_t *) zmalloc (sizeof (zper_cluster_t));
    self->config = config;
    self->log = log;
    self->node = (int) config->cluster_node;
    pthread_mutex_init (&self->mutex, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->view = zper_cluster_view_new (0);
    return self;
}

void
zper_cluster_destroy (zper_cluster_t **self_p)
{
    assert (self_p);
    zper_cluster_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->entries);
        zper_cluster_view_destroy (&self->view);
        pthread_mutex_destroy (&self->mutex);
        freen (self);
        *self_p = NULL;
    }
}

int
zper_cluster_node (zper_cluster_t *self)
{
    return self->node;
}

const zper_config_t *
zper_cluster_config (zper_cluster_t *self)
{
    return self->config;
}

uint64_t
zper_cluster_generation (zper_cluster_t *self)
{
    return atomic_load (&self->generation);
}

static void
s_changed (zper_cluster_t *self)
{
    atomic_fetch_add (&self->generation, 1);
}

//  The entry of topic, under the mutex; NULL if none.
static entry_t *
s_entry (zper_cluster_t *self, const char *topic)
{
    return (entry_t *) zhashx_lookup (self->entries, topic);
}

//  The entry of topic, created (with its log partition, readers capped at
//  nothing until a high-watermark is known) if this node has room. Called
//  under the mutex.
static entry_t *
s_entry_require (zper_cluster_t *self, const char *topic)
{
    entry_t *entry = s_entry (self, topic);
    if (entry)
        return entry;
    if ((int64_t) zhashx_size (self->entries) >= self->config->cluster_max_partitions) {
        int64_t now = zclock_mono ();
        if (now - self->refused_logged_ms >= ZPER_LOG_INTERVAL_MS) {
            self->refused_logged_ms = now;
            zsys_error ("cluster: cluster.max_partitions (%lld) reached: not holding %s",
                        (long long) self->config->cluster_max_partitions, topic);
        }
        return NULL;
    }
    zper_partition_t *log = zper_log_partition (self->log, topic, ZPER_PARTITION_DEFAULT, true);
    if (!log) {
        zsys_error ("cluster: cannot open partition %s: %s", topic, strerror (errno));
        return NULL;
    }
    entry = (entry_t *) zmalloc (sizeof (entry_t));
    pthread_mutex_init (&entry->writer, NULL);
    entry->log = log;
    snprintf (entry->info.topic, sizeof entry->info.topic, "%s", topic);
    entry->info.role = ZPER_ROLE_NONE;
    entry->info.epoch = -1;
    entry->info.leader = -1;
    entry->info.high_watermark = 0;
    zper_partition_set_visible_limit (log, 0);
    zhashx_insert (self->entries, topic, entry);
    return entry;
}

uint8_t
zper_cluster_lead_begin (zper_cluster_t *self, const char *topic, bool appending, int64_t *epoch)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    pthread_mutex_unlock (&self->mutex);
    if (!entry)
        return ZPER_STATUS_NOT_LEADER;
    pthread_mutex_lock (&entry->writer);
    pthread_mutex_lock (&self->mutex);
    uint8_t status = 0;
    if (entry->info.role != ZPER_ROLE_LEADER)
        status = ZPER_STATUS_NOT_LEADER;
    else
    if (appending && (int) entry->info.isr_count < entry->info.min_isr)
        status = ZPER_STATUS_NOT_ENOUGH_REPLICAS;
    else
        *epoch = entry->info.epoch;
    pthread_mutex_unlock (&self->mutex);
    if (status)
        pthread_mutex_unlock (&entry->writer);
    return status;
}

void
zper_cluster_lead_end (zper_cluster_t *self, const char *topic)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    pthread_mutex_unlock (&self->mutex);
    assert (entry);
    pthread_mutex_unlock (&entry->writer);
}

int
zper_cluster_follow_begin (zper_cluster_t *self, const char *topic, int64_t *epoch)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    pthread_mutex_unlock (&self->mutex);
    if (!entry)
        return -1;
    pthread_mutex_lock (&entry->writer);
    pthread_mutex_lock (&self->mutex);
    bool following = entry->info.role == ZPER_ROLE_FOLLOWER;
    if (following)
        *epoch = entry->info.epoch;
    pthread_mutex_unlock (&self->mutex);
    if (!following)
        pthread_mutex_unlock (&entry->writer);
    return following? 0: -1;
}

void
zper_cluster_follow_end (zper_cluster_t *self, const char *topic)
{
    zper_cluster_lead_end (self, topic);
}

int64_t
zper_cluster_high_watermark (zper_cluster_t *self, const char *topic)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    int64_t hw = entry? entry->info.high_watermark: -1;
    pthread_mutex_unlock (&self->mutex);
    return hw;
}

static void
s_partition_free (void **item)
{
    freen (*item);
    *item = NULL;
}

zlistx_t *
zper_cluster_partitions (zper_cluster_t *self)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_partition_free);
    pthread_mutex_lock (&self->mutex);
    for (entry_t *entry = (entry_t *) zhashx_first (self->entries); entry;
         entry = (entry_t *) zhashx_next (self->entries))
        if (entry->info.role != ZPER_ROLE_NONE) {
            zper_cluster_partition_t *copy = (zper_cluster_partition_t *)
                zmalloc (sizeof (zper_cluster_partition_t));
            *copy = entry->info;
            zlistx_add_end (list, copy);
        }
    pthread_mutex_unlock (&self->mutex);
    return list;
}

int
zper_cluster_partition (zper_cluster_t *self, const char *topic,
                        zper_cluster_partition_t *partition)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    bool found = entry && entry->info.role != ZPER_ROLE_NONE;
    if (found)
        *partition = entry->info;
    pthread_mutex_unlock (&self->mutex);
    return found? 0: -1;
}

zper_partition_t *
zper_cluster_log_partition (zper_cluster_t *self, const char *topic)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry_require (self, topic);
    pthread_mutex_unlock (&self->mutex);
    if (!entry)
        errno = errno? errno: ENOSPC;
    return entry? entry->log: NULL;
}

//  Called under the mutex.
static zper_epochs_t *
s_epochs (entry_t *entry)
{
    if (!entry->epochs) {
        entry->epochs = zper_epochs_open (zper_partition_folder (entry->log));
        if (!entry->epochs)
            zsys_error ("cluster: cannot open the leader epochs of %s: %s", entry->info.topic,
                        strerror (errno));
    }
    return entry->epochs;
}

zper_epochs_t *
zper_cluster_epochs (zper_cluster_t *self, const char *topic)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry_require (self, topic);
    zper_epochs_t *epochs = entry? s_epochs (entry): NULL;
    pthread_mutex_unlock (&self->mutex);
    return epochs;
}

void
zper_cluster_set_high_watermark (zper_cluster_t *self, const char *topic, int64_t hw)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    if (entry && hw != entry->info.high_watermark) {
        entry->info.high_watermark = hw;
        zper_partition_set_visible_limit (entry->log, hw);
    }
    pthread_mutex_unlock (&self->mutex);
}

void
zper_cluster_want_isr (zper_cluster_t *self, const char *topic, const int *isr, size_t count)
{
    assert (count <= ZPER_CLUSTER_REPLICAS_MAX);
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    if (entry && entry->info.role == ZPER_ROLE_LEADER) {
        memcpy (entry->info.isr_wanted, isr, count * sizeof (int));
        entry->info.isr_wanted_count = count;
    }
    pthread_mutex_unlock (&self->mutex);
}

void
zper_cluster_confirm_isr (zper_cluster_t *self, const char *topic, const int *isr, size_t count)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    if (entry) {
        memcpy (entry->info.isr, isr, count * sizeof (int));
        entry->info.isr_count = count;
    }
    pthread_mutex_unlock (&self->mutex);
    s_changed (self);
}

void
zper_cluster_follower_progress (zper_cluster_t *self, const char *topic, int node,
                                int64_t fetch_offset, int64_t durable_offset,
                                int64_t caught_up_ms)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry (self, topic);
    if (entry) {
        size_t index = 0;
        while (index < entry->progress_count && entry->progress [index].node != node)
            index++;
        if (index < ZPER_CLUSTER_REPLICAS_MAX) {
            entry->progress [index] = (progress_t) { node, fetch_offset, durable_offset,
                                                     caught_up_ms };
            if (index == entry->progress_count)
                entry->progress_count++;
        }
    }
    pthread_mutex_unlock (&self->mutex);
}

//  ---- roles: what the coordinator decides ------------------------------------------

//  What entry should become under slot (NULL: this node holds no replica
//  of it any more). Called under the mutex.
static zper_cluster_partition_t
s_entry_next (zper_cluster_t *self, entry_t *entry, const zper_cluster_slot_t *slot)
{
    zper_cluster_partition_t next = entry->info;
    if (!slot) {
        next.role = ZPER_ROLE_NONE;
        next.leader = -1;
        next.leader_endpoint [0] = 0;
        return next;
    }
    next.replica_count = 0;
    for (size_t index = 0; index < slot->replica_count; index++)
        next.replicas [next.replica_count++] = slot->replicas [index];
    for (size_t index = 0; index < slot->target_count; index++)
        if (!s_contains (next.replicas, next.replica_count, slot->targets [index])
        &&  next.replica_count < ZPER_CLUSTER_REPLICAS_MAX)
            next.replicas [next.replica_count++] = slot->targets [index];
    next.min_isr = slot->min_isr;
    bool still_leading = next.role == ZPER_ROLE_LEADER && slot->leader == self->node
                      && slot->leader_epoch == next.epoch;
    if (still_leading) {
        if (slot->has_state && slot->epoch == next.epoch) {
            memcpy (next.isr, slot->isr, sizeof next.isr);
            next.isr_count = slot->isr_count;
        }
        return next;
    }
    //  A leader key naming this node that it does not hold is a previous
    //  life's: nobody leads until it expires (the coordinator deletes it)
    int leader = slot->leader == self->node? -1: slot->leader;
    zper_cluster_node_t *node = leader >= 0? zper_cluster_view_node (self->view, leader): NULL;
    next.role = ZPER_ROLE_FOLLOWER;
    next.leader = node? leader: -1;
    next.epoch = slot->leader >= 0? slot->leader_epoch: slot->epoch;
    snprintf (next.leader_endpoint, sizeof next.leader_endpoint, "%s",
              node? node->replication: "");
    memcpy (next.isr, slot->isr, sizeof next.isr);
    next.isr_count = slot->isr_count;
    next.isr_wanted_count = 0;
    return next;
}

//  Does the change from current to next need the writer lock (a role,
//  leader or epoch change)?
static bool
s_role_change (const zper_cluster_partition_t *current, const zper_cluster_partition_t *next)
{
    return current->role != next->role || current->epoch != next->epoch
        || current->leader != next->leader
        || strcmp (current->leader_endpoint, next->leader_endpoint) != 0;
}

typedef struct {
    entry_t *entry;
    zper_cluster_slot_t slot;
    bool has_slot;
} change_t;

void
zper_cluster_apply_view (zper_cluster_t *self, zper_cluster_view_t **view_p)
{
    assert (view_p && *view_p);
    zhashx_t *changes = zhashx_new ();         //  topic -> change_t
    zhashx_set_destructor (changes, s_partition_free);
    pthread_mutex_lock (&self->mutex);
    zper_cluster_view_destroy (&self->view);
    self->view = *view_p;
    *view_p = NULL;
    bool changed = false;
    //  Every entry first as "let go", then the slots that hold this node
    for (entry_t *entry = (entry_t *) zhashx_first (self->entries); entry;
         entry = (entry_t *) zhashx_next (self->entries))
        if (entry->info.role != ZPER_ROLE_NONE) {
            change_t *change = (change_t *) zmalloc (sizeof (change_t));
            change->entry = entry;
            zhashx_insert (changes, entry->info.topic, change);
        }
    for (zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zlistx_first (self->view->slots);
         slot; slot = (zper_cluster_slot_t *) zlistx_next (self->view->slots)) {
        if (!s_contains (slot->replicas, slot->replica_count, self->node)
        &&  !s_contains (slot->targets, slot->target_count, self->node))
            continue;
        entry_t *entry = s_entry_require (self, slot->topic);
        if (!entry)
            continue;
        change_t *change = (change_t *) zhashx_lookup (changes, slot->topic);
        if (!change) {
            change = (change_t *) zmalloc (sizeof (change_t));
            change->entry = entry;
            zhashx_insert (changes, slot->topic, change);
        }
        change->slot = *slot;
        change->has_slot = true;
    }
    pthread_mutex_unlock (&self->mutex);

    //  The coordinator's thread is the only one changing roles, so what
    //  was decided above still holds once the writer lock is taken
    for (change_t *change = (change_t *) zhashx_first (changes); change;
         change = (change_t *) zhashx_next (changes)) {
        entry_t *entry = change->entry;
        const zper_cluster_slot_t *slot = change->has_slot? &change->slot: NULL;
        pthread_mutex_lock (&self->mutex);
        zper_cluster_partition_t next = s_entry_next (self, entry, slot);
        bool locked = s_role_change (&entry->info, &next);
        pthread_mutex_unlock (&self->mutex);
        if (locked)
            pthread_mutex_lock (&entry->writer);
        pthread_mutex_lock (&self->mutex);
        next = s_entry_next (self, entry, slot);
        if (memcmp (&next, &entry->info, sizeof next) != 0) {
            if (entry->info.role == ZPER_ROLE_LEADER && next.role != ZPER_ROLE_LEADER)
                zsys_info ("cluster: %s: no longer the leader (epoch %lld)", next.topic,
                           (long long) entry->info.epoch);
            entry->info = next;
            changed = true;
        }
        pthread_mutex_unlock (&self->mutex);
        if (locked)
            pthread_mutex_unlock (&entry->writer);
    }
    zhashx_destroy (&changes);
    if (changed)
        s_changed (self);
}

int
zper_cluster_become_leader (zper_cluster_t *self, const char *topic, int64_t epoch,
                            const int *isr, size_t isr_count)
{
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = s_entry_require (self, topic);
    pthread_mutex_unlock (&self->mutex);
    if (!entry)
        return -1;
    pthread_mutex_lock (&entry->writer);
    int rc = -1;
    //  Whatever this node copied as a follower is durable already; the
    //  flush covers a log it wrote as an earlier leader and never synced
    if (zper_partition_flush (entry->log) < 0)
        goto done;
    zper_bounds_t bounds;
    zper_partition_bounds (entry->log, &bounds);
    pthread_mutex_lock (&self->mutex);
    zper_epochs_t *epochs = s_epochs (entry);
    pthread_mutex_unlock (&self->mutex);
    if (!epochs || zper_epochs_assign (epochs, epoch, bounds.end_offset))
        goto done;
    pthread_mutex_lock (&self->mutex);
    zper_cluster_partition_t *info = &entry->info;
    info->role = ZPER_ROLE_LEADER;
    info->epoch = epoch;
    info->leader = self->node;
    info->leader_endpoint [0] = 0;
    memcpy (info->isr, isr, isr_count * sizeof (int));
    info->isr_count = isr_count;
    memcpy (info->isr_wanted, isr, isr_count * sizeof (int));
    info->isr_wanted_count = isr_count;
    info->epoch_start = bounds.end_offset;
    entry->progress_count = 0;
    pthread_mutex_unlock (&self->mutex);
    zsys_info ("cluster: %s: leader at epoch %lld from offset %lld", topic, (long long) epoch,
               (long long) bounds.end_offset);
    rc = 0;
done:
    if (rc)
        zsys_error ("cluster: %s: cannot take the leadership: %s", topic, strerror (errno));
    pthread_mutex_unlock (&entry->writer);
    s_changed (self);
    return rc;
}

void
zper_cluster_resign (zper_cluster_t *self, const char *topic)
{
    zlistx_t *leading = zlistx_new ();
    pthread_mutex_lock (&self->mutex);
    for (entry_t *entry = (entry_t *) zhashx_first (self->entries); entry;
         entry = (entry_t *) zhashx_next (self->entries))
        if (entry->info.role == ZPER_ROLE_LEADER && (!topic || streq (topic, entry->info.topic)))
            zlistx_add_end (leading, entry);
    pthread_mutex_unlock (&self->mutex);
    for (entry_t *entry = (entry_t *) zlistx_first (leading); entry;
         entry = (entry_t *) zlistx_next (leading)) {
        pthread_mutex_lock (&entry->writer);
        pthread_mutex_lock (&self->mutex);
        entry->info.role = ZPER_ROLE_FOLLOWER;
        entry->info.leader = -1;
        entry->info.leader_endpoint [0] = 0;
        entry->info.isr_wanted_count = 0;
        pthread_mutex_unlock (&self->mutex);
        pthread_mutex_unlock (&entry->writer);
        zsys_info ("cluster: %s: resigned the leadership (epoch %lld)", entry->info.topic,
                   (long long) entry->info.epoch);
    }
    if (zlistx_size (leading))
        s_changed (self);
    zlistx_destroy (&leading);
}

//  ---- the rear's commands ----------------------------------------------------------

static const char *
s_role_name (zper_role_t role)
{
    return role == ZPER_ROLE_LEADER? "leader": role == ZPER_ROLE_FOLLOWER? "follower": "none";
}

char *
zper_cluster_metadata_json (zper_cluster_t *self, const char *topic)
{
    json_t *root = json_object ();
    json_object_set_new (root, "cluster", json_string (self->config->cluster_name));
    json_object_set_new (root, "node", json_integer (self->node));
    pthread_mutex_lock (&self->mutex);
    zper_cluster_view_t *view = self->view;
    json_object_set_new (root, "revision", json_integer (view->revision));
    json_t *nodes = json_object ();
    for (zper_cluster_node_t *node = (zper_cluster_node_t *) zlistx_first (view->nodes); node;
         node = (zper_cluster_node_t *) zlistx_next (view->nodes)) {
        char id [16];
        snprintf (id, sizeof id, "%d", node->id);
        json_object_set_new (nodes, id, json_pack ("{s:s, s:s, s:s, s:s, s:s}",
            "front", node->front, "rear", node->rear, "replication", node->replication,
            "relay", node->relay, "ack", node->ack));
    }
    json_object_set_new (root, "nodes", nodes);
    json_t *topics = json_object ();
    json_t *partitions = NULL;
    for (zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zlistx_first (view->slots); slot;
         slot = (zper_cluster_slot_t *) zlistx_next (view->slots)) {
        if (topic && !streq (topic, slot->base))
            continue;
        if (slot->index == 0) {
            json_t *layout = json_object ();
            json_object_set_new (layout, "partitions", json_integer (slot->partitions));
            json_object_set_new (layout, "min_insync_replicas", json_integer (slot->min_isr));
            partitions = json_array ();
            json_object_set_new (layout, "partition", partitions);
            json_object_set_new (topics, slot->base, layout);
        }
        if (!partitions)
            continue;                   //  cannot happen: slots are sorted, index 0 first
        json_t *partition = json_object ();
        json_object_set_new (partition, "id", json_integer (slot->index));
        json_object_set_new (partition, "leader", json_integer (
            slot->leader >= 0 && zper_cluster_view_node (view, slot->leader)? slot->leader: -1));
        json_object_set_new (partition, "epoch",
                             json_integer (slot->leader >= 0? slot->leader_epoch: slot->epoch));
        json_object_set_new (partition, "replicas",
                             s_json_id_array (slot->replicas, slot->replica_count));
        json_object_set_new (partition, "isr", s_json_id_array (slot->isr, slot->isr_count));
        if (slot->target_count)
            json_object_set_new (partition, "targets",
                                 s_json_id_array (slot->targets, slot->target_count));
        json_array_append_new (partitions, partition);
    }
    pthread_mutex_unlock (&self->mutex);
    json_object_set_new (root, "topics", topics);
    return s_json_dump (root);
}

char *
zper_cluster_status_json (zper_cluster_t *self)
{
    json_t *root = json_object ();
    json_object_set_new (root, "node", json_integer (self->node));
    json_t *partitions = json_object ();
    int64_t now = zclock_mono ();
    pthread_mutex_lock (&self->mutex);
    for (entry_t *entry = (entry_t *) zhashx_first (self->entries); entry;
         entry = (entry_t *) zhashx_next (self->entries)) {
        zper_cluster_partition_t *info = &entry->info;
        if (info->role == ZPER_ROLE_NONE)
            continue;
        zper_bounds_t bounds;
        zper_partition_bounds (entry->log, &bounds);
        json_t *partition = json_object ();
        json_object_set_new (partition, "role", json_string (s_role_name (info->role)));
        json_object_set_new (partition, "leader", json_integer (info->leader));
        json_object_set_new (partition, "epoch", json_integer (info->epoch));
        json_object_set_new (partition, "end", json_integer (bounds.end_offset));
        json_object_set_new (partition, "high_watermark", json_integer (info->high_watermark));
        if (info->role == ZPER_ROLE_LEADER) {
            json_object_set_new (partition, "isr", s_json_id_array (info->isr, info->isr_count));
            json_t *followers = json_object ();
            for (size_t index = 0; index < entry->progress_count; index++) {
                progress_t *progress = &entry->progress [index];
                char id [16];
                snprintf (id, sizeof id, "%d", progress->node);
                json_object_set_new (followers, id, json_pack ("{s:I, s:I, s:I, s:I}",
                    "fetch_offset", (json_int_t) progress->fetch_offset,
                    "durable_offset", (json_int_t) progress->durable_offset,
                    "lag", (json_int_t) (bounds.end_offset - progress->fetch_offset),
                    "caught_up_ms_ago", (json_int_t) (now - progress->caught_up_ms)));
            }
            json_object_set_new (partition, "followers", followers);
        }
        json_object_set_new (partitions, info->topic, partition);
    }
    pthread_mutex_unlock (&self->mutex);
    json_object_set_new (root, "partitions", partitions);
    return s_json_dump (root);
}

//  The etcd key prefix of config's cluster: "/zper/<name>/".
static void
s_prefix (const zper_config_t *config, char *prefix, size_t size)
{
    snprintf (prefix, size, "/zper/%s/", config->cluster_name);
}

//  The ids of the live nodes (keys under nodes/), sorted. Returns the
//  count, or -1 when etcd cannot be reached.
static int
s_live_nodes (zper_etcd_t *etcd, const char *prefix, int *ids, size_t max)
{
    char key [ZPER_CONFIG_STRING_MAX + 16];
    snprintf (key, sizeof key, "%snodes/", prefix);
    zlistx_t *kvs;
    if (zper_etcd_get (etcd, key, true, &kvs, NULL))
        return -1;
    size_t count = 0;
    for (zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs); kv && count < max;
         kv = (zper_etcd_kv_t *) zlistx_next (kvs)) {
        int id = atoi (kv->key + strlen (key));
        if (id >= 1 && id <= ZPER_CLUSTER_NODE_MAX)
            ids [count++] = id;
    }
    zlistx_destroy (&kvs);
    //  Keys sort as text ("10" before "9"): sort as numbers
    for (size_t index = 1; index < count; index++)
        for (size_t cursor = index; cursor > 0 && ids [cursor - 1] > ids [cursor]; cursor--) {
            int swap = ids [cursor];
            ids [cursor] = ids [cursor - 1];
            ids [cursor - 1] = swap;
        }
    return (int) count;
}

uint8_t
zper_cluster_create_topic (zper_cluster_t *self, const char *name, int partitions,
                           int replicas, int min_isr, char **layout, char *reason,
                           size_t reason_size)
{
    *layout = NULL;
    partitions = partitions > 0? partitions: (int) self->config->cluster_default_partitions;
    replicas = replicas > 0? replicas: (int) self->config->cluster_default_replicas;
    if (!s_base_valid (name, strlen (name))) {
        snprintf (reason, reason_size, "topic name must be 1..%d ASCII letters or digits",
                  ZPER_CLUSTER_BASE_NAME_MAX);
        return ZPER_STATUS_INVALID_ARGUMENT;
    }
    if (partitions > ZPER_CLUSTER_PARTITIONS_MAX || replicas > ZPER_CLUSTER_REPLICAS_MAX
    ||  min_isr < 0 || min_isr > replicas) {
        snprintf (reason, reason_size, "partitions must be 1..%d, replicas 1..%d, "
                  "min_isr 0..replicas", ZPER_CLUSTER_PARTITIONS_MAX, ZPER_CLUSTER_REPLICAS_MAX);
        return ZPER_STATUS_INVALID_ARGUMENT;
    }
    if (min_isr == 0)
        min_isr = replicas >= 3? 2: 1;
    zper_etcd_t *etcd = zper_etcd_new (self->config->cluster_etcd,
                                       (int) self->config->cluster_etcd_timeout_ms);
    char prefix [ZPER_CONFIG_STRING_MAX + 16];
    s_prefix (self->config, prefix, sizeof prefix);
    int ids [ZPER_CLUSTER_REPLICAS_MAX * 64];
    int nodes = etcd? s_live_nodes (etcd, prefix, ids, sizeof ids / sizeof ids [0]): -1;
    uint8_t status = ZPER_STATUS_NO_CLUSTER;
    if (nodes < 0)
        snprintf (reason, reason_size, "%s", etcd? zper_etcd_error (etcd): "no etcd endpoint");
    else
    if (replicas > nodes) {
        snprintf (reason, reason_size, "%d replicas asked, %d live nodes", replicas, nodes);
        status = ZPER_STATUS_INVALID_ARGUMENT;
    }
    else {
        //  Round-robin: partition i's replicas start at the i-th live node
        zper_cluster_slot_t *slots = (zper_cluster_slot_t *)
            zmalloc ((size_t) partitions * sizeof (zper_cluster_slot_t));
        for (int index = 0; index < partitions; index++) {
            slots [index].min_isr = min_isr;
            slots [index].replica_count = (size_t) replicas;
            for (int column = 0; column < replicas; column++)
                slots [index].replicas [column] = ids [(index + column) % nodes];
        }
        char *value = zper_cluster_layout_json (slots, (size_t) partitions);
        freen (slots);
        char key [ZPER_CONFIG_STRING_MAX + 128];
        snprintf (key, sizeof key, "%stopics/%s", prefix, name);
        zper_etcd_txn_t *txn = zper_etcd_txn_new ();
        zper_etcd_txn_compare (txn, key, ZPER_ETCD_CREATE_REVISION, ZPER_ETCD_EQUAL, 0);
        zper_etcd_txn_put (txn, true, key, value, strlen (value), 0);
        bool created = false;
        if (zper_etcd_txn_commit (etcd, txn, &created))
            snprintf (reason, reason_size, "%s", zper_etcd_error (etcd));
        else
        if (!created) {
            snprintf (reason, reason_size, "topic %s exists", name);
            status = ZPER_STATUS_TOPIC_EXISTS;
        }
        else {
            status = ZPER_STATUS_OK;
            *layout = value;
            value = NULL;
        }
        zstr_free (&value);
        zper_etcd_txn_destroy (&txn);
    }
    zper_etcd_destroy (&etcd);
    return status;
}

uint8_t
zper_cluster_reassign (zper_cluster_t *self, const char *topic, int partition,
                       const int *replicas, size_t count, char *reason, size_t reason_size)
{
    if (!s_base_valid (topic, strlen (topic)) || count < 1 || count > ZPER_CLUSTER_REPLICAS_MAX) {
        snprintf (reason, reason_size, "bad topic name or replica count");
        return ZPER_STATUS_INVALID_ARGUMENT;
    }
    for (size_t index = 0; index < count; index++)
        if (replicas [index] < 1 || s_contains (replicas, index, replicas [index])) {
            snprintf (reason, reason_size, "replica ids must be distinct and >= 1");
            return ZPER_STATUS_INVALID_ARGUMENT;
        }
    zper_etcd_t *etcd = zper_etcd_new (self->config->cluster_etcd,
                                       (int) self->config->cluster_etcd_timeout_ms);
    char prefix [ZPER_CONFIG_STRING_MAX + 16], key [ZPER_CONFIG_STRING_MAX + 128];
    s_prefix (self->config, prefix, sizeof prefix);
    snprintf (key, sizeof key, "%stopics/%s", prefix, topic);
    uint8_t status = ZPER_STATUS_NO_CLUSTER;
    int ids [ZPER_CLUSTER_REPLICAS_MAX * 64];
    int nodes = etcd? s_live_nodes (etcd, prefix, ids, sizeof ids / sizeof ids [0]): -1;
    zlistx_t *kvs = NULL;
    if (nodes < 0 || zper_etcd_get (etcd, key, false, &kvs, NULL)) {
        snprintf (reason, reason_size, "%s", etcd? zper_etcd_error (etcd): "no etcd endpoint");
        goto done;
    }
    status = ZPER_STATUS_INVALID_ARGUMENT;
    for (size_t index = 0; index < count; index++)
        if (!s_contains (ids, (size_t) nodes, replicas [index])) {
            snprintf (reason, reason_size, "node %d is not a live node", replicas [index]);
            goto done;
        }
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    zper_cluster_view_t *view = zper_cluster_view_new (0);
    char relative [ZPER_CONFIG_STRING_MAX + 128];
    snprintf (relative, sizeof relative, "topics/%s", topic);
    if (!kv || zper_cluster_view_add (view, relative, kv->value, kv->mod_revision, 0)) {
        snprintf (reason, reason_size, "no topic %s", topic);
        zper_cluster_view_destroy (&view);
        goto done;
    }
    zper_cluster_view_finish (view);
    int partitions = (int) zlistx_size (view->slots);
    if (partition < 0 || partition >= partitions) {
        snprintf (reason, reason_size, "topic %s has %d partitions", topic, partitions);
        zper_cluster_view_destroy (&view);
        goto done;
    }
    zper_cluster_slot_t *slots = (zper_cluster_slot_t *)
        zmalloc ((size_t) partitions * sizeof (zper_cluster_slot_t));
    size_t index = 0;
    for (zper_cluster_slot_t *slot = (zper_cluster_slot_t *) zlistx_first (view->slots); slot;
         slot = (zper_cluster_slot_t *) zlistx_next (view->slots))
        slots [index++] = *slot;
    memcpy (slots [partition].targets, replicas, count * sizeof (int));
    slots [partition].target_count = count;
    char *value = zper_cluster_layout_json (slots, (size_t) partitions);
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_compare (txn, key, ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL, kv->mod_revision);
    zper_etcd_txn_put (txn, true, key, value, strlen (value), 0);
    bool applied = false;
    if (zper_etcd_txn_commit (etcd, txn, &applied)) {
        snprintf (reason, reason_size, "%s", zper_etcd_error (etcd));
        status = ZPER_STATUS_NO_CLUSTER;
    }
    else
    if (!applied)
        snprintf (reason, reason_size, "the layout changed meanwhile: retry");
    else
        status = ZPER_STATUS_OK;
    zper_etcd_txn_destroy (&txn);
    zstr_free (&value);
    freen (slots);
    zper_cluster_view_destroy (&view);
done:
    zlistx_destroy (&kvs);
    zper_etcd_destroy (&etcd);
    return status;
}

//  ---- selftest ----------------------------------------------------------------------

static void
s_test_view_add (zper_cluster_view_t *view, const char *key, const char *value,
                 int64_t revision)
{
    int rc = zper_cluster_view_add (view, key, value, revision, 0);
    assert (rc == 0);
}

//  A view of three nodes and topic "orders" (2 partitions on nodes 1, 2),
//  partition 0 led by leader at epoch.
static zper_cluster_view_t *
s_test_view (int leader, int64_t epoch, const char *isr)
{
    zper_cluster_view_t *view = zper_cluster_view_new (7);
    for (int id = 1; id <= 3; id++) {
        char key [32], value [256];
        snprintf (key, sizeof key, "nodes/%d", id);
        snprintf (value, sizeof value, "{\"id\":%d,\"front\":\"tcp://127.0.0.1:%d\","
                  "\"rear\":\"r\",\"replication\":\"tcp://127.0.0.1:%d\",\"relay\":\"l\","
                  "\"ack\":\"a\"}", id, 6000 + id, 7000 + id);
        s_test_view_add (view, key, value, 3);
    }
    s_test_view_add (view, "topics/orders",
                     "{\"partitions\":2,\"min_insync_replicas\":2,\"replicas\":[[1,2],[2,1]]}", 4);
    if (leader > 0) {
        char value [128];
        snprintf (value, sizeof value, "{\"node\":%d,\"epoch\":%lld}", leader, (long long) epoch);
        s_test_view_add (view, "leaders/orders/0", value, 5);
        snprintf (value, sizeof value, "{\"epoch\":%lld,\"leader\":%d,\"isr\":%s}",
                  (long long) epoch, leader, isr);
        s_test_view_add (view, "state/orders/0", value, 6);
    }
    zper_cluster_view_finish (view);
    return view;
}

void
zper_cluster_test (bool verbose)
{
    char base [ZPER_CLUSTER_BASE_NAME_MAX + 1];
    int index;
    assert (zper_cluster_partition_name ("orders.12", base, &index));
    assert (streq (base, "orders") && index == 12);
    assert (zper_cluster_partition_name ("a.0", base, &index) && index == 0);
    assert (!zper_cluster_partition_name ("orders", NULL, NULL));
    assert (!zper_cluster_partition_name ("orders.01", NULL, NULL));
    assert (!zper_cluster_partition_name ("orders.", NULL, NULL));
    assert (!zper_cluster_partition_name (".1", NULL, NULL));
    assert (!zper_cluster_partition_name ("or-ders.1", NULL, NULL));
    assert (!zper_cluster_partition_name ("orders.1024", NULL, NULL));

    //  The view: layouts, leaders, states, bad values refused
    zper_cluster_view_t *view = s_test_view (2, 3, "[2,1]");
    assert (zlistx_size (view->nodes) == 3 && zlistx_size (view->slots) == 2);
    zper_cluster_slot_t *slot = zper_cluster_view_slot (view, "orders.0");
    assert (slot && slot->leader == 2 && slot->leader_epoch == 3 && slot->epoch == 3);
    assert (slot->isr_count == 2 && slot->has_state && slot->state_revision == 6);
    assert (slot->min_isr == 2 && slot->topic_revision == 4);
    slot = zper_cluster_view_slot (view, "orders.1");
    assert (slot && slot->leader == -1 && !slot->has_state && slot->isr_count == 2);
    assert (slot->replicas [0] == 2 && slot->replicas [1] == 1);
    assert (zper_cluster_view_node (view, 3) && !zper_cluster_view_node (view, 4));
    assert (zper_cluster_view_add (view, "topics/bad", "{\"partitions\":0}", 1, 0) == -1);
    assert (zper_cluster_view_add (view, "topics/bad", "not json", 1, 0) == -1);
    assert (zper_cluster_view_add (view, "nodes/9", "{\"id\":9}", 1, 0) == -1);
    char *layout = zper_cluster_layout_json (zper_cluster_view_slot (view, "orders.0"), 1);
    assert (streq (layout, "{\"partitions\":1,\"min_insync_replicas\":2,\"replicas\":[[1,2]]}"));
    zstr_free (&layout);
    zper_cluster_view_destroy (&view);

    //  The table on a real log: roles follow the views, leadership comes
    //  only from become_leader, the writer lock follows the role
    char folder [] = "/tmp/zper-cluster-test-XXXXXX";
    assert (mkdtemp (folder));
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.base_dir = folder;
    zper_log_t *log = zper_log_new (&log_config);
    assert (log);
    zper_config_t config;
    zper_config_init (&config);
    snprintf (config.cluster_etcd, sizeof config.cluster_etcd, "http://127.0.0.1:1");
    snprintf (config.cluster_name, sizeof config.cluster_name, "test");
    config.cluster_node = 1;
    config.cluster_max_partitions = 100;
    config.cluster_etcd_timeout_ms = 200;
    zper_config_t single;
    zper_config_init (&single);
    assert (zper_cluster_new (&single, log) == NULL);
    zper_cluster_t *cluster = zper_cluster_new (&config, log);
    assert (cluster && zper_cluster_node (cluster) == 1);
    int64_t epoch;
    assert (zper_cluster_lead_begin (cluster, "orders.0", true, &epoch) == ZPER_STATUS_NOT_LEADER);

    view = s_test_view (2, 3, "[2,1]");
    uint64_t generation = zper_cluster_generation (cluster);
    zper_cluster_apply_view (cluster, &view);
    assert (!view && zper_cluster_generation (cluster) > generation);
    zper_cluster_partition_t partition;
    assert (zper_cluster_partition (cluster, "orders.0", &partition) == 0);
    assert (partition.role == ZPER_ROLE_FOLLOWER && partition.leader == 2 && partition.epoch == 3);
    assert (streq (partition.leader_endpoint, "tcp://127.0.0.1:7002"));
    assert (zper_cluster_partition (cluster, "orders.1", &partition) == 0);
    assert (partition.role == ZPER_ROLE_FOLLOWER && partition.leader == -1);
    assert (zper_cluster_lead_begin (cluster, "orders.0", true, &epoch) == ZPER_STATUS_NOT_LEADER);
    assert (zper_cluster_follow_begin (cluster, "orders.0", &epoch) == 0 && epoch == 3);
    zper_cluster_follow_end (cluster, "orders.0");
    zlistx_t *partitions = zper_cluster_partitions (cluster);
    assert (zlistx_size (partitions) == 2);
    zlistx_destroy (&partitions);
    //  Readers see nothing until a high-watermark is known
    zper_partition_t *log_partition = zper_cluster_log_partition (cluster, "orders.0");
    zper_frame_t frame = { (const uint8_t *) "m", 1 };
    assert (zper_partition_append (log_partition, &frame, 1, 0) == 0);
    assert (zper_partition_flush (log_partition) == 1);
    zper_bounds_t bounds;
    zper_partition_bounds (log_partition, &bounds);
    assert (bounds.visible_offset == 0 && bounds.durable_offset == 1);
    zper_cluster_set_high_watermark (cluster, "orders.0", 1);
    zper_partition_bounds (log_partition, &bounds);
    assert (bounds.visible_offset == 1 && zper_cluster_high_watermark (cluster, "orders.0") == 1);

    //  Elected at epoch 4 with an ISR of one: may not append under min ISR 2
    int isr_one [] = { 1 };
    assert (zper_cluster_become_leader (cluster, "orders.0", 4, isr_one, 1) == 0);
    zper_epochs_t *epochs = zper_cluster_epochs (cluster, "orders.0");
    assert (epochs && zper_epochs_latest (epochs) == 4 && zper_epochs_latest_start (epochs) == 1);
    assert (zper_cluster_lead_begin (cluster, "orders.0", true, &epoch)
            == ZPER_STATUS_NOT_ENOUGH_REPLICAS);
    assert (zper_cluster_lead_begin (cluster, "orders.0", false, &epoch) == 0 && epoch == 4);
    zper_cluster_lead_end (cluster, "orders.0");
    assert (zper_cluster_follow_begin (cluster, "orders.0", &epoch) == -1);
    int isr_two [] = { 1, 2 };
    zper_cluster_want_isr (cluster, "orders.0", isr_two, 2);
    zper_cluster_confirm_isr (cluster, "orders.0", isr_two, 2);
    assert (zper_cluster_lead_begin (cluster, "orders.0", true, &epoch) == 0 && epoch == 4);
    zper_cluster_lead_end (cluster, "orders.0");
    zper_cluster_follower_progress (cluster, "orders.0", 2, 1, 1, zclock_mono ());
    char *status = zper_cluster_status_json (cluster);
    assert (strstr (status, "\"orders.0\":{\"role\":\"leader\""));
    assert (strstr (status, "\"followers\":{\"2\":{\"fetch_offset\":1"));
    zstr_free (&status);

    //  etcd shows our key at our epoch: still leading; another leader: follower
    view = s_test_view (1, 4, "[1,2]");
    zper_cluster_apply_view (cluster, &view);
    assert (zper_cluster_partition (cluster, "orders.0", &partition) == 0);
    assert (partition.role == ZPER_ROLE_LEADER && partition.epoch == 4);
    char *metadata = zper_cluster_metadata_json (cluster, "orders");
    assert (strstr (metadata, "\"partition\":[{\"id\":0,\"leader\":1,\"epoch\":4"));
    assert (strstr (metadata, "\"nodes\":{\"1\":{\"front\":\"tcp://127.0.0.1:6001\""));
    zstr_free (&metadata);
    metadata = zper_cluster_metadata_json (cluster, "nosuch");
    assert (strstr (metadata, "\"topics\":{}"));
    zstr_free (&metadata);
    view = s_test_view (2, 5, "[2]");
    zper_cluster_apply_view (cluster, &view);
    assert (zper_cluster_partition (cluster, "orders.0", &partition) == 0);
    assert (partition.role == ZPER_ROLE_FOLLOWER && partition.leader == 2 && partition.epoch == 5);
    //  Resigning: a leader becomes a follower of nobody
    assert (zper_cluster_become_leader (cluster, "orders.1", 1, isr_two, 2) == 0);
    zper_cluster_resign (cluster, NULL);
    assert (zper_cluster_partition (cluster, "orders.1", &partition) == 0);
    assert (partition.role == ZPER_ROLE_FOLLOWER && partition.leader == -1);
    //  A view without the topic lets its partitions go
    view = zper_cluster_view_new (9);
    zper_cluster_view_finish (view);
    zper_cluster_apply_view (cluster, &view);
    assert (zper_cluster_partition (cluster, "orders.0", &partition) == -1);

    //  Admin commands against etcd: unreachable first, then a real one
    char reason [256], *created = NULL;
    assert (zper_cluster_create_topic (cluster, "orders", 2, 2, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_NO_CLUSTER);
    assert (*reason && !created);
    char etcd_folder [] = "/tmp/zper-cluster-etcd-XXXXXX";
    assert (mkdtemp (etcd_folder));
    int pid = zper_etcd_test_start (etcd_folder, config.cluster_etcd, sizeof config.cluster_etcd);
    assert (pid > 0);
    zper_etcd_t *etcd = zper_etcd_new (config.cluster_etcd, 2000);
    for (int id = 1; id <= 3; id++) {
        char key [64];
        snprintf (key, sizeof key, "/zper/test/nodes/%d", id);
        assert (zper_etcd_put (etcd, key, "{}", 2, 0) == 0);
    }
    assert (zper_cluster_create_topic (cluster, "orders", 3, 3, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_OK);
    assert (streq (created, "{\"partitions\":3,\"min_insync_replicas\":2,"
                            "\"replicas\":[[1,2,3],[2,3,1],[3,1,2]]}"));
    zstr_free (&created);
    assert (zper_cluster_create_topic (cluster, "orders", 3, 3, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_TOPIC_EXISTS);
    assert (zper_cluster_create_topic (cluster, "more", 1, 4, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_cluster_create_topic (cluster, "a.b", 1, 1, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_cluster_create_topic (cluster, "one", 0, 1, 0, &created, reason,
                                       sizeof reason) == ZPER_STATUS_OK);
    assert (strstr (created, "\"partitions\":3,\"min_insync_replicas\":1"));
    zstr_free (&created);
    int targets [] = { 1, 3 };
    assert (zper_cluster_reassign (cluster, "orders", 1, targets, 2, reason, sizeof reason)
            == ZPER_STATUS_OK);
    int unknown [] = { 1, 7 };
    assert (zper_cluster_reassign (cluster, "orders", 1, unknown, 2, reason, sizeof reason)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_cluster_reassign (cluster, "orders", 3, targets, 2, reason, sizeof reason)
            == ZPER_STATUS_INVALID_ARGUMENT);
    zlistx_t *kvs;
    assert (zper_etcd_get (etcd, "/zper/test/topics/orders", false, &kvs, NULL) == 0);
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    assert (kv && strstr (kv->value, "\"targets\":{\"1\":[1,3]}"));
    zlistx_destroy (&kvs);
    zper_etcd_destroy (&etcd);
    zper_etcd_test_stop (pid);

    zper_cluster_destroy (&cluster);
    zper_cluster_destroy (&cluster);
    zper_log_destroy (&log);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s %s", folder, etcd_folder);
    assert (system (command) == 0);
}
