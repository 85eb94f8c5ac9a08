/*  =========================================================================
    zper_cluster_producer - write a clustered topic through its partitions' leaders

    A clustered topic T is the plain topics T.0 .. T.P-1, each led by one
    node (docs/cluster.md). This class asks METADATA of a node's rear, runs
    one ordinary zper_producer per partition on its leader's front, and
    keeps every message until that leader acknowledges it. The wire is
    zper_producer's: nothing here encodes a write.

    The one thing to know: each partition keeps its messages in a ring of
    sequence numbers [head, tail). sent_seq says how far the current
    zper_producer was given them, answer_seq which one the next
    acknowledgement is about: the broker answers one producer's writes in
    order (one per message in mode 1, one per batch with its message count
    in mode 3), so an ack settles the entries from answer_seq on. A 110 /
    111 refusal, a timeout or a failed send marks the partition stale: the
    next call asks METADATA again, connects a new zper_producer to the
    leader it names and sends again every entry not yet settled, in
    order. A message whose first outcome never arrived may so be stored
    twice: delivery is at least once. Entries are addressed by sequence
    number, never by pointer, because acks arrive inside zper_producer
    calls that this class makes while it walks the ring.
    ========================================================================= */

#include "zper_client_wire.h"
#include "zper_zmtp.h"
#include <jansson.h>

//  FNV-1a, 32 bits (the partitioner every client must share)
#define S_FNV_OFFSET_BASIS  2166136261u
#define S_FNV_PRIME         16777619u
//  How long sync waits on one partition's producer before looking at the
//  others (and at their timeouts)
#define S_POLL_SLICE_MS     20

typedef struct {
    zmsg_t *msg;                    //  NULL once settled (acked or refused)
    bool answered;                  //  refused with a retryable status: send again
} s_entry_t;

typedef struct _zper_cluster_producer_t zper_cluster_producer_t;

typedef struct {
    zper_cluster_producer_t *owner;
    int index;
    char topic [ZPER_TOPIC_MAX + 1];    //  "T.i"
    int leader;                     //  node id, -1 when the partition has none
    int64_t epoch;
    char *front;                    //  the leader's front endpoint, NULL when unknown
    zper_producer_t *producer;      //  on front, NULL while stale
    s_entry_t *ring;                //  entry of sequence s at ring [s % capacity]
    size_t capacity;
    uint64_t head_seq;              //  oldest entry not settled
    uint64_t tail_seq;              //  next sequence to assign
    uint64_t sent_seq;              //  entries below were given to producer
    uint64_t answer_seq;            //  the next ack is about this entry
    bool stale;                     //  refresh METADATA and reconnect before sending
    bool drain;                     //  the old producer is alive: read its remaining acks first
    int refreshes;                  //  refreshes since the last acknowledgement
    int64_t retry_at;               //  zclock_mono: no refresh before this
    int64_t progress_at;            //  zclock_mono of the last ack (or first send)
} s_partition_t;

struct _zper_cluster_producer_t {
    char *topic;
    int mode;
    int timeout_ms;
    zlistx_t *rears;                //  rear endpoints to ask METADATA: bootstrap, then learned
    size_t rear_next;               //  which one to ask first (the last that answered)
    char *server_key;               //  CURVE when set
    char *cert_path;
    s_partition_t *partitions;
    int partition_count;
    int round_robin;
    int64_t acked;
    int64_t refused;
    bool failed;                    //  a refusal since the last sync
    char error [ZPER_CLIENT_ERROR_MAX];
};

int
zper_cluster_partition_for_key (const void *key, size_t key_size, int partitions)
{
    assert (partitions > 0);
    uint32_t hash = S_FNV_OFFSET_BASIS;
    const uint8_t *bytes = (const uint8_t *) key;
    for (size_t index = 0; index < key_size; index++) {
        hash ^= bytes [index];
        hash *= S_FNV_PRIME;
    }
    return (int) (hash % (uint32_t) partitions);
}

//  ---- the ring of one partition ----------------------------------------------

static s_entry_t *
s_entry (s_partition_t *partition, uint64_t seq)
{
    return &partition->ring [seq % partition->capacity];
}

static void
s_ring_push (s_partition_t *partition, zmsg_t *msg)
{
    if (partition->tail_seq - partition->head_seq == partition->capacity) {
        size_t capacity = partition->capacity? partition->capacity * 2: 64;
        s_entry_t *ring = (s_entry_t *) zmalloc (capacity * sizeof (s_entry_t));
        for (uint64_t seq = partition->head_seq; seq < partition->tail_seq; seq++)
            ring [seq % capacity] = *s_entry (partition, seq);
        free (partition->ring);
        partition->ring = ring;
        partition->capacity = capacity;
    }
    *s_entry (partition, partition->tail_seq++) = (s_entry_t) { msg, false };
}

//  Drop settled entries from the head.
static void
s_ring_trim (s_partition_t *partition)
{
    while (partition->head_seq < partition->tail_seq && !s_entry (partition, partition->head_seq)->msg)
        partition->head_seq++;
    if (partition->sent_seq < partition->head_seq)
        partition->sent_seq = partition->head_seq;
    if (partition->answer_seq < partition->head_seq)
        partition->answer_seq = partition->head_seq;
}

static size_t
s_pending (s_partition_t *partition)
{
    return (size_t) (partition->tail_seq - partition->head_seq);
}

//  ---- acknowledgements -----------------------------------------------------------

static bool
s_retryable (int status)
{
    return status == ZPER_STATUS_NOT_LEADER || status == ZPER_STATUS_NOT_ENOUGH_REPLICAS;
}

static void
s_refuse (zper_cluster_producer_t *self, s_entry_t *entry)
{
    zmsg_destroy (&entry->msg);
    self->refused++;
    self->failed = true;
}

//  One answer about entry seq.
static void
s_settle (s_partition_t *partition, uint64_t seq, int status)
{
    zper_cluster_producer_t *self = partition->owner;
    s_entry_t *entry = s_entry (partition, seq);
    if (!entry->msg || entry->answered)
        return;
    if (status == ZPER_STATUS_OK) {
        zmsg_destroy (&entry->msg);
        self->acked++;
        partition->refreshes = 0;
        partition->retry_at = 0;
    }
    else
    if (s_retryable (status)) {
        entry->answered = true;
        partition->stale = true;
        partition->drain = true;
        zper_client_error_set (self->error, "%s refused a message of topic '%s': %s%s",
                               partition->front? partition->front: "?", partition->topic,
                               zper_status_name (status), zper_client_status_hint (status));
    }
    else {
        s_refuse (self, entry);
        zper_client_error_set (self->error, "%s refused a message of topic '%s': %s%s",
                               partition->front? partition->front: "?", partition->topic,
                               zper_status_name (status), zper_client_status_hint (status));
    }
}

//  The ack handler of every partition's zper_producer. Mode 1 names the
//  message by its id: normally the entry at answer_seq; if not (a reply
//  was lost), the next entry with that id, the skipped ones being left to
//  the timeout. Mode 3 acknowledges the next ack->count unsettled messages.
static void
s_on_ack (const zper_ack_t *ack, void *arg)
{
    s_partition_t *partition = (s_partition_t *) arg;
    partition->progress_at = zclock_mono ();
    if (partition->owner->mode == ZPER_MODE_BATCH_ACK) {
        //  Entries settled before a resend were not sent again: skip them
        int32_t settled = 0;
        for (; settled < ack->count && partition->answer_seq < partition->sent_seq;
             partition->answer_seq++)
            if (s_entry (partition, partition->answer_seq)->msg) {
                s_settle (partition, partition->answer_seq, ack->status);
                settled++;
            }
    }
    else
        for (uint64_t seq = partition->answer_seq; seq < partition->sent_seq; seq++) {
            zmsg_t *msg = s_entry (partition, seq)->msg;
            zframe_t *id = msg? zmsg_first (msg): NULL;
            if (id && zframe_size (id) == ack->id_size
            &&  memcmp (zframe_data (id), ack->id, ack->id_size) == 0) {
                s_settle (partition, seq, ack->status);
                partition->answer_seq = seq + 1;
                break;
            }
        }
    s_ring_trim (partition);
}

//  ---- connections ------------------------------------------------------------------

//  Close the partition's producer. A producer that is alive (it refused a
//  write) is drained first, so that acks of writes behind the refusal
//  settle them instead of their being sent twice.
static void
s_disconnect (s_partition_t *partition)
{
    if (!partition->producer)
        return;
    if (partition->drain)
        zper_producer_sync (partition->producer);
    zper_producer_set_ack_handler (partition->producer, NULL, NULL);
    zper_producer_set_ack_timeout (partition->producer, 0);
    zper_producer_set_timeout (partition->producer, 0);
    zper_producer_destroy (&partition->producer);
    partition->drain = false;
}

//  Hand entries from sent_seq on to the producer, in order. A failed send
//  marks the partition stale (the whole unsettled range goes again).
static void
s_send_pending (s_partition_t *partition)
{
    while (partition->producer && !partition->stale && partition->sent_seq < partition->tail_seq) {
        s_entry_t *entry = s_entry (partition, partition->sent_seq++);
        if (!entry->msg)
            continue;
        entry->answered = false;
        if (partition->answer_seq == partition->sent_seq - 1)
            partition->progress_at = zclock_mono ();
        zmsg_t *copy = zmsg_dup (entry->msg);
        if (zper_producer_send (partition->producer, &copy) == -1) {
            zper_client_error_set (partition->owner->error, "%s", zper_producer_error (partition->producer));
            partition->stale = true;
        }
    }
}

//  How long a connection or a METADATA answer may take: a dead node should
//  cost a retry little, whatever the ack timeout.
static int
s_connect_timeout (zper_cluster_producer_t *self)
{
    return self->timeout_ms < ZPER_CLIENT_TIMEOUT_MS? self->timeout_ms: ZPER_CLIENT_TIMEOUT_MS;
}

//  A new producer on the partition's leader, and every unsettled entry
//  sent again. Returns 0, or -1 (no leader known: still stale).
static int
s_connect (zper_cluster_producer_t *self, s_partition_t *partition)
{
    s_disconnect (partition);
    if (!partition->front) {
        zper_client_error_set (self->error, "partition %s has no leader", partition->topic);
        return -1;
    }
    partition->producer = zper_producer_new (partition->front, partition->topic, self->mode);
    if (!partition->producer) {
        zper_client_error_set (self->error, "node front '%s' of %s is not an endpoint",
                               partition->front, partition->topic);
        return -1;
    }
    if (self->server_key)
        zper_producer_set_curve (partition->producer, self->server_key, self->cert_path);
    zper_producer_set_timeout (partition->producer, s_connect_timeout (self));
    zper_producer_set_ack_timeout (partition->producer, self->timeout_ms);
    zper_producer_set_ack_handler (partition->producer, s_on_ack, partition);
    partition->stale = false;
    partition->sent_seq = partition->answer_seq = partition->head_seq;
    s_send_pending (partition);
    return 0;
}

//  ---- metadata ------------------------------------------------------------------------

static void
s_rear_add (zper_cluster_producer_t *self, const char *endpoint)
{
    for (char *known = (char *) zlistx_first (self->rears); known;
         known = (char *) zlistx_next (self->rears))
        if (streq (known, endpoint))
            return;
    zlistx_add_end (self->rears, strdup (endpoint));
}

static const char *
s_json_string (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Take in a METADATA reply: every node's rear (to ask next time), and
//  each partition's leader and epoch. A partition whose leader or epoch
//  changed goes stale. Returns 0, or -1 with errno ENOENT (no such topic)
//  or EPROTO (not the METADATA shape).
static int
s_metadata_apply (zper_cluster_producer_t *self, const char *text)
{
    json_t *root = json_loads (text, 0, NULL);
    json_t *nodes = json_object_get (root, "nodes");
    json_t *topic = json_object_get (json_object_get (root, "topics"), self->topic);
    json_t *layout = json_object_get (topic, "partition");
    int count = (int) json_integer_value (json_object_get (topic, "partitions"));
    int rc = 0;
    if (!json_is_object (nodes)) {
        zper_client_error_set (self->error, "a malformed METADATA reply");
        errno = EPROTO;
        rc = -1;
    }
    else
    if (!topic || count <= 0 || count > ZPER_CLUSTER_PARTITIONS_MAX || !json_is_array (layout)) {
        zper_client_error_set (self->error, "the cluster has no topic '%s' (zper topics create %s)",
                               self->topic, self->topic);
        errno = ENOENT;
        rc = -1;
    }
    if (rc == -1) {
        json_decref (root);
        return -1;
    }
    const char *id;
    json_t *node;
    json_object_foreach (nodes, id, node)
        if (s_json_string (node, "rear"))
            s_rear_add (self, s_json_string (node, "rear"));
    if (!self->partitions) {
        self->partitions = (s_partition_t *) zmalloc (count * sizeof (s_partition_t));
        self->partition_count = count;
        for (int index = 0; index < count; index++) {
            s_partition_t *partition = &self->partitions [index];
            partition->owner = self;
            partition->index = index;
            partition->leader = -1;
            partition->epoch = -1;
            snprintf (partition->topic, sizeof partition->topic, "%s.%d", self->topic, index);
        }
    }
    size_t element;
    json_t *entry;
    json_array_foreach (layout, element, entry) {
        json_int_t index = json_integer_value (json_object_get (entry, "id"));
        if (index < 0 || index >= self->partition_count)
            continue;
        s_partition_t *partition = &self->partitions [index];
        int leader = (int) json_integer_value (json_object_get (entry, "leader"));
        int64_t epoch = json_integer_value (json_object_get (entry, "epoch"));
        char key [16];
        snprintf (key, sizeof key, "%d", leader);
        const char *front = s_json_string (json_object_get (nodes, key), "front");
        if (leader != partition->leader || epoch != partition->epoch
        ||  !front != !partition->front || (front && !streq (front, partition->front))) {
            partition->leader = leader;
            partition->epoch = epoch;
            free (partition->front);
            partition->front = front? strdup (front): NULL;
            partition->stale = true;
        }
    }
    json_decref (root);
    return 0;
}

//  Ask METADATA of the known rears, from the last that answered on, until
//  one answers. Returns 0, or -1 with errno and self->error from the last
//  one asked.
static int
s_metadata_refresh (zper_cluster_producer_t *self)
{
    size_t count = zlistx_size (self->rears);
    int rc = -1;
    for (size_t attempt = 0; attempt < count && rc == -1; attempt++) {
        size_t which = (self->rear_next + attempt) % count;
        const char *endpoint = (const char *) zlistx_first (self->rears);
        for (size_t index = 0; index < which; index++)
            endpoint = (const char *) zlistx_next (self->rears);
        zper_consumer_t *consumer = zper_consumer_new (endpoint, NULL);
        if (!consumer) {
            zper_client_error_set (self->error, "bootstrap '%s' is not an endpoint", endpoint);
            errno = EINVAL;
            continue;
        }
        zper_consumer_set_timeout (consumer, s_connect_timeout (self));
        if (self->server_key)
            zper_consumer_set_curve (consumer, self->server_key, self->cert_path);
        char *json = zper_consumer_metadata (consumer, self->topic);
        if (json) {
            self->rear_next = which;
            rc = s_metadata_apply (self, json);
            zstr_free (&json);
        }
        else {
            int error = errno;
            zper_client_error_set (self->error, "METADATA: %s", zper_consumer_error (consumer));
            errno = error;
        }
        zper_consumer_destroy (&consumer);
    }
    return rc;
}

//  A stale partition: refresh METADATA and reconnect, at most once per
//  backoff. After ZPER_CLUSTER_PRODUCER_RETRIES refreshes without an
//  acknowledgement, what it holds is refused.
static void
s_recover (zper_cluster_producer_t *self, s_partition_t *partition)
{
    int64_t now = zclock_mono ();
    if (now < partition->retry_at)
        return;
    if (s_pending (partition) && ++partition->refreshes > ZPER_CLUSTER_PRODUCER_RETRIES) {
        size_t given_up = 0;
        for (uint64_t seq = partition->head_seq; seq < partition->tail_seq; seq++)
            if (s_entry (partition, seq)->msg) {
                s_refuse (self, s_entry (partition, seq));
                given_up++;
            }
        s_ring_trim (partition);
        char reason [ZPER_CLIENT_ERROR_MAX];
        snprintf (reason, sizeof reason, "%s", self->error);
        zper_client_error_set (self->error, "no leader of %s stored %zu message(s) after %d "
                               "METADATA refreshes (last: %s)", partition->topic, given_up,
                               ZPER_CLUSTER_PRODUCER_RETRIES, reason);
        partition->refreshes = 0;
    }
    partition->retry_at = now + ZPER_CLUSTER_PRODUCER_BACKOFF_MS;
    if (partition->producer && partition->drain)
        s_disconnect (partition);       //  its acks first: they may settle what would go again
    if (s_metadata_refresh (self) == 0 && partition->stale)
        s_connect (self, partition);
    else
    if (partition->stale)
        s_disconnect (partition);
    else
        s_send_pending (partition);
}

//  Mark stale a partition whose oldest write waited too long for an answer.
static void
s_check_timeout (zper_cluster_producer_t *self, s_partition_t *partition)
{
    if (!partition->stale && partition->answer_seq < partition->sent_seq
    &&  zclock_mono () - partition->progress_at > self->timeout_ms) {
        zper_client_error_set (self->error, "%s did not acknowledge %s within %d ms",
                               partition->front? partition->front: "?", partition->topic,
                               self->timeout_ms);
        partition->stale = true;
    }
}

//  ---- the class ------------------------------------------------------------------------

//  The object without metadata (the selftest feeds it METADATA text).
static zper_cluster_producer_t *
s_new (const char *bootstrap, const char *topic, int mode)
{
    if (!bootstrap || !topic || strchr (topic, '.') || !zper_topic_valid (topic)
    ||  strlen (topic) > ZPER_CLUSTER_BASE_NAME_MAX
    ||  (mode != ZPER_MODE_ACK && mode != ZPER_MODE_BATCH_ACK)) {
        errno = EINVAL;
        return NULL;
    }
    zper_cluster_producer_t *self = (zper_cluster_producer_t *) zmalloc (sizeof (zper_cluster_producer_t));
    self->topic = strdup (topic);
    self->mode = mode;
    self->timeout_ms = ZPER_CLIENT_ACK_TIMEOUT_MS;
    self->rears = zlistx_new ();
    zlistx_set_destructor (self->rears, (zlistx_destructor_fn *) zstr_free);
    char *list = strdup (bootstrap);
    char *saved = NULL;
    bool valid = true;
    for (char *endpoint = strtok_r (list, ",", &saved); endpoint; endpoint = strtok_r (NULL, ",", &saved)) {
        valid = valid && zper_client_endpoint_valid (endpoint);
        s_rear_add (self, endpoint);
    }
    free (list);
    if (!valid || zlistx_size (self->rears) == 0) {
        zper_cluster_producer_destroy (&self);
        errno = EINVAL;
    }
    return self;
}

zper_cluster_producer_t *
zper_cluster_producer_new (const char *bootstrap, const char *topic, int mode)
{
    zper_cluster_producer_t *self = s_new (bootstrap, topic, mode);
    if (self && s_metadata_refresh (self) == -1) {
        int error = errno;
        zper_cluster_producer_destroy (&self);
        errno = error;
    }
    //  Producers connect at their first send: making them costs nothing
    for (int index = 0; self && index < self->partition_count; index++)
        s_connect (self, &self->partitions [index]);
    return self;
}

void
zper_cluster_producer_destroy (zper_cluster_producer_t **self_p)
{
    assert (self_p);
    zper_cluster_producer_t *self = *self_p;
    if (self) {
        if (self->partitions)
            zper_cluster_producer_sync (self);
        for (int index = 0; index < self->partition_count; index++) {
            s_partition_t *partition = &self->partitions [index];
            s_disconnect (partition);
            for (uint64_t seq = partition->head_seq; seq < partition->tail_seq; seq++)
                zmsg_destroy (&s_entry (partition, seq)->msg);
            free (partition->ring);
            free (partition->front);
        }
        free (self->partitions);
        zlistx_destroy (&self->rears);
        free (self->server_key);
        free (self->cert_path);
        free (self->topic);
        free (self);
        *self_p = NULL;
    }
}

int
zper_cluster_producer_set_curve (zper_cluster_producer_t *self, const char *server_key,
                                 const char *cert_path)
{
    assert (self);
    //  Checked once here, on a producer that never connects
    zper_producer_t *probe = zper_producer_new ("tcp://127.0.0.1:1", "probe", ZPER_MODE_ACK);
    int rc = zper_producer_set_curve (probe, server_key, cert_path);
    if (rc == -1)
        zper_client_error_set (self->error, "%s", zper_producer_error (probe));
    zper_producer_destroy (&probe);
    if (rc == -1) {
        errno = EINVAL;
        return -1;
    }
    free (self->server_key);
    free (self->cert_path);
    self->server_key = strdup (server_key);
    self->cert_path = strdup (cert_path);
    for (int index = 0; index < self->partition_count; index++)
        self->partitions [index].stale = true;      //  reconnect with CURVE
    return 0;
}

void
zper_cluster_producer_set_timeout (zper_cluster_producer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms;
}

int
zper_cluster_producer_send (zper_cluster_producer_t *self, zmsg_t **msg_p, const void *key,
                            size_t key_size)
{
    assert (self);
    assert (msg_p);
    if (!*msg_p || zmsg_size (*msg_p) == 0) {
        zmsg_destroy (msg_p);
        zper_client_error_set (self->error, "a message needs at least one frame");
        errno = EINVAL;
        return -1;
    }
    int index = key? zper_cluster_partition_for_key (key, key_size, self->partition_count)
                   : self->round_robin++ % self->partition_count;
    s_partition_t *partition = &self->partitions [index];
    s_ring_push (partition, *msg_p);
    *msg_p = NULL;
    s_check_timeout (self, partition);
    if (partition->stale)
        s_recover (self, partition);
    else
        s_send_pending (partition);
    return 0;
}

//  True while some partition holds a message not settled.
static bool
s_unsettled (zper_cluster_producer_t *self)
{
    for (int index = 0; index < self->partition_count; index++)
        if (s_pending (&self->partitions [index]))
            return true;
    return false;
}

//  One round over the partitions: read acks (each producer for at most
//  slice_ms), send lingering batches, recover stale partitions. Returns
//  true if it waited on some producer.
static bool
s_service (zper_cluster_producer_t *self, int slice_ms)
{
    bool waited = false;
    for (int index = 0; index < self->partition_count; index++) {
        s_partition_t *partition = &self->partitions [index];
        if (!s_pending (partition))
            continue;
        s_check_timeout (self, partition);
        if (partition->stale)
            s_recover (self, partition);
        else
        if (partition->producer) {
            zper_producer_poll (partition->producer, slice_ms);
            waited = waited || slice_ms > 0;
        }
    }
    return waited;
}

int
zper_cluster_producer_poll (zper_cluster_producer_t *self, int timeout_ms)
{
    assert (self);
    int64_t acked = self->acked;
    int64_t deadline = zclock_mono () + timeout_ms;
    do {
        if (!s_service (self, timeout_ms > 0? S_POLL_SLICE_MS: 0) && timeout_ms > 0)
            zclock_sleep (S_POLL_SLICE_MS);
    } while (self->acked == acked && zclock_mono () < deadline && s_unsettled (self));
    return (int) (self->acked - acked);
}

int
zper_cluster_producer_sync (zper_cluster_producer_t *self)
{
    assert (self);
    for (int index = 0; index < self->partition_count; index++)
        if (self->partitions [index].producer)
            zper_producer_flush (self->partitions [index].producer);
    //  Bounded: each partition either settles, or refreshes at most
    //  ZPER_CLUSTER_PRODUCER_RETRIES times before it refuses what it holds.
    while (s_unsettled (self))
        if (!s_service (self, S_POLL_SLICE_MS))
            zclock_sleep (S_POLL_SLICE_MS);
    bool failed = self->failed;
    self->failed = false;
    return failed? -1: 0;
}

int64_t
zper_cluster_producer_acked (zper_cluster_producer_t *self)
{
    assert (self);
    return self->acked;
}

int64_t
zper_cluster_producer_refused (zper_cluster_producer_t *self)
{
    assert (self);
    return self->refused;
}

int
zper_cluster_producer_partitions (zper_cluster_producer_t *self)
{
    assert (self);
    return self->partition_count;
}

const char *
zper_cluster_producer_error (zper_cluster_producer_t *self)
{
    assert (self);
    return self->error;
}

//  ---- selftest ----------------------------------------------------------------------------
//  Offline: the partitioner's reference values, METADATA parsing, and the
//  retry path against stand-ins on real sockets: node 1's front refuses
//  every write with 110 NOT_LEADER, node 2's acknowledges; a stand-in rear
//  names node 1 as the leader in its first METADATA reply and node 2 in
//  every later one. The black-box test tests/cluster/test_client.py runs
//  the same against real zperd nodes.

#define TEST_TOPIC  "orders"

static void
s_test_front (zsock_t *pipe, void *args)
{
    bool refuse = args != NULL;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert (router);
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        const uint8_t *id = zframe_data (identity);
        int mode = id [1];
        assert (id [2] == strlen (TEST_TOPIC ".0"));
        assert (memcmp (id + 3, TEST_TOPIC ".", strlen (TEST_TOPIC ".")) == 0);
        zframe_t *message_id = zmsg_pop (msg);
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &identity);
        if (mode == ZPER_MODE_ACK) {
            zmsg_append (reply, &message_id);
            if (refuse)
                zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_NOT_LEADER }, 1);
        }
        else {
            //  [batch id][batch] -> [status][batch id][first offset][count]
            assert (mode == ZPER_MODE_BATCH_ACK);
            zframe_t *batch = zmsg_first (msg);
            const uint8_t *cursor = zframe_data (batch), *end = cursor + zframe_size (batch);
            int32_t count = 0;
            while (cursor < end) {
                size_t frames;
                int64_t length = zper_zmtp_message_length (cursor, (size_t) (end - cursor), &frames);
                assert (length > 0);
                cursor += length;
                count++;
            }
            uint8_t offset [ZPER_WIRE_INT64_SIZE], counted [ZPER_WIRE_INT32_SIZE];
            zper_wire_put_int64 (offset, refuse? -1: 0);
            zper_wire_put_int32 (counted, refuse? 0: count);
            zmsg_addmem (reply, &(uint8_t) { refuse? ZPER_STATUS_NOT_LEADER: ZPER_STATUS_OK }, 1);
            zmsg_append (reply, &message_id);
            zmsg_addmem (reply, offset, sizeof offset);
            zmsg_addmem (reply, counted, sizeof counted);
        }
        zmsg_send (&reply, router);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static char *
s_test_metadata (const char *front_one, const char *front_two, const char *rear, int leader)
{
    return zsys_sprintf (
        "{\"cluster\":\"zper\",\"node\":1,\"revision\":7,\"nodes\":{"
        "\"1\":{\"front\":\"%s\",\"rear\":\"%s\"},\"2\":{\"front\":\"%s\",\"rear\":\"%s\"}},"
        "\"topics\":{\"" TEST_TOPIC "\":{\"partitions\":2,\"min_insync_replicas\":1,\"partition\":["
        "{\"id\":0,\"leader\":%d,\"epoch\":%d,\"replicas\":[1,2],\"isr\":[1,2]},"
        "{\"id\":1,\"leader\":%d,\"epoch\":%d,\"replicas\":[2,1],\"isr\":[2,1]}]}}}",
        front_one, rear, front_two, rear, leader, leader, leader, leader);
}

//  args: the two fronts, "front1 front2"
static void
s_test_rear (zsock_t *pipe, void *args)
{
    char *fronts = strdup ((const char *) args);
    char *front_two = strchr (fronts, ' ');
    *front_two++ = 0;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert (router);
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    int asked = 0;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        char *command = zmsg_popstr (msg);
        assert (streq (command, "METADATA"));
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &identity);
        zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_OK }, 1);
        char *json = s_test_metadata (fronts, front_two, zsock_endpoint (router), ++asked == 1? 1: 2);
        zmsg_addstr (reply, json);
        zstr_free (&json);
        zmsg_send (&reply, router);
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    free (fronts);
}

void
zper_cluster_producer_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    //  FNV-1a 32-bit reference values: "" 0x811c9dc5, "a" 0xe40c292c,
    //  "foobar" 0xbf9cf968
    assert (zper_cluster_partition_for_key ("", 0, 1000000007) == (int) (0x811c9dc5u % 1000000007u));
    assert (zper_cluster_partition_for_key ("a", 1, 1000000007) == (int) (0xe40c292cu % 1000000007u));
    assert (zper_cluster_partition_for_key ("foobar", 6, 3) == (int) (0xbf9cf968u % 3));
    assert (zper_cluster_partition_for_key (NULL, 0, 1) == 0);

    assert (zper_cluster_producer_new ("tcp://127.0.0.1:1", "has.dot", ZPER_MODE_ACK) == NULL);
    assert (errno == EINVAL);
    assert (zper_cluster_producer_new ("tcp://127.0.0.1:1", TEST_TOPIC, ZPER_MODE_REQ) == NULL);
    assert (zper_cluster_producer_new ("nonsense", TEST_TOPIC, ZPER_MODE_ACK) == NULL);

    //  METADATA parsing: leaders' fronts, learned rears, unknown topics
    zper_cluster_producer_t *self = s_new ("tcp://127.0.0.1:9", TEST_TOPIC, ZPER_MODE_ACK);
    char *json = s_test_metadata ("tcp://127.0.0.1:11", "tcp://127.0.0.1:12", "tcp://127.0.0.1:13", 2);
    assert (s_metadata_apply (self, json) == 0);
    zstr_free (&json);
    assert (self->partition_count == 2 && zlistx_size (self->rears) == 2);
    assert (streq (self->partitions [1].topic, TEST_TOPIC ".1"));
    assert (self->partitions [0].leader == 2 && self->partitions [0].epoch == 2);
    assert (streq (self->partitions [0].front, "tcp://127.0.0.1:12") && self->partitions [0].stale);
    assert (s_metadata_apply (self, "{\"nodes\":{},\"topics\":{}}") == -1 && errno == ENOENT);
    assert (s_metadata_apply (self, "not json") == -1 && errno == EPROTO);
    zper_cluster_producer_destroy (&self);

    //  Refused with 110 by node 1, everything is stored once on node 2
    //  after a METADATA refresh, in mode 1 and in mode 3
    zactor_t *refusing = zactor_new (s_test_front, "refuse");
    zactor_t *leading = zactor_new (s_test_front, NULL);
    char *front_one = zstr_recv (refusing);
    char *front_two = zstr_recv (leading);
    char *fronts = zsys_sprintf ("%s %s", front_one, front_two);
    for (int mode = ZPER_MODE_ACK; mode <= ZPER_MODE_BATCH_ACK; mode += 2) {
        //  A fresh rear names node 1 first. The first bootstrap is down:
        //  the second answers
        zactor_t *rear = zactor_new (s_test_rear, fronts);
        char *rear_endpoint = zstr_recv (rear);
        char *unused = zper_client_unused_endpoint ();
        char *bootstrap = zsys_sprintf ("%s,%s", unused, rear_endpoint);
        zstr_free (&unused);
        self = zper_cluster_producer_new (bootstrap, TEST_TOPIC, mode);
        assert (self);
        zper_cluster_producer_set_timeout (self, 5000);
        assert (zper_cluster_producer_partitions (self) == 2);
        for (int index = 0; index < 100; index++) {
            zmsg_t *msg = zmsg_new ();
            zmsg_addstrf (msg, "id-%d", index);
            zmsg_addstr (msg, "body");
            assert (zper_cluster_producer_send (self, &msg, index % 2? "k": NULL, 1) == 0 && !msg);
        }
        assert (zper_cluster_producer_sync (self) == 0);
        assert (zper_cluster_producer_acked (self) == 100);
        assert (zper_cluster_producer_refused (self) == 0);
        assert (streq (self->partitions [0].front, front_two));
        zper_cluster_producer_destroy (&self);
        zactor_destroy (&rear);
        zstr_free (&rear_endpoint);
        zstr_free (&bootstrap);
    }
    zactor_destroy (&refusing);
    zactor_destroy (&leading);
    zstr_free (&fronts);
    zstr_free (&front_one);
    zstr_free (&front_two);
}
