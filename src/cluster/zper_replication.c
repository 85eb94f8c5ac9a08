/*  =========================================================================
    zper_replication - the data path between cluster nodes

    Wire (all integers big-endian, docs/cluster.md "Replication wire"):

        REPLICA_EPOCH [topic][node:int32][leader_epoch:int64][last_epoch:int64]
            -> [100][topic][epoch:int64][end_offset:int64]
        REPLICA_FETCH [topic][node:int32][leader_epoch:int64][fetch_offset:int64]
                      [durable_offset:int64][known_hw:int64][max_bytes:int32]
            -> [100][topic][epoch][high_watermark][log_start][log_start_position]
               [records][epochs]
        records = ([first_offset:int64][timestamp:int64][count:int32][size:int32][bytes])*
        epochs  = ([epoch:int64][start_offset:int64])*
        errors:   [110][topic]  [112][topic][epoch]  [101][topic][start][start_position]
                  [103][topic]  [105][topic]

    Leader side. Per (led partition, follower node) the actor keeps where
    the follower fetches, what it reported durable in this epoch, when it
    was last caught up (Kafka's rule: a fetch at the leader's end, or at the
    end the leader had at its previous fetch, which keeps a follower of a
    busy partition caught up), and whether it did REPLICA_EPOCH in this
    epoch. The HW is the smallest durable end over confirmed ISR + wanted
    ISR (a member whose end is unknown holds it), capped by the leader's own
    durable end, moved only forwards and only while the confirmed ISR holds
    min_insync_replicas. A fetch with nothing to send and no HW news is
    parked (one per follower and partition) until the topic's visible note,
    a HW move, or cluster.fetch_wait_ms.

    Follower side. Per followed partition a small machine:

        NEED_EPOCH --send--> EPOCH_SENT --reply: s_follow_truncate--> NEED_FETCH
        NEED_FETCH --send--> FETCH_SENT --reply: s_follow_apply-----> NEED_FETCH (at once)
        any error reply: NEED_EPOCH after ZPER_REPLICATION_RETRY_MS
        a request unanswered fetch_wait_ms + ZPER_REPLICATION_GRACE_MS: the
        leader's DEALER is made anew (no stale reply can follow) and every
        partition on it asks again.

    The one thing to know: the follower's log is written only here and only
    under the writer lock (zper_cluster_follow_begin), epochs before records
    (write-ahead), so that a crash leaves a log whose epochs file covers it.
    ========================================================================= */

#include "zper_replication.h"
#include "zper_identity.h"
#include "zper_partition.h"
#include "zper_wire.h"
#include <assert.h>
#include <errno.h>

#define RECORD_HEADER_SIZE  (2 * ZPER_WIRE_INT64_SIZE + 2 * ZPER_WIRE_INT32_SIZE)
#define EPOCH_ENTRY_SIZE    (2 * ZPER_WIRE_INT64_SIZE)

//  ---- wire ----------------------------------------------------------------

typedef struct {
    bool fetch;                         //  REPLICA_FETCH, else REPLICA_EPOCH
    char topic [ZPER_TOPIC_MAX + 1];    //  "" when even the topic did not parse
    int node;
    int64_t leader_epoch;
    int64_t last_epoch;                 //  EPOCH
    int64_t fetch_offset;               //  FETCH, from here on
    int64_t durable_offset;
    int64_t known_hw;
    int32_t max_bytes;
} request_t;

typedef struct {
    int64_t first_offset;
    int64_t timestamp;
    int32_t count;
    int32_t size;
    const uint8_t *data;
} wire_record_t;

static zmsg_t *
s_request_encode (const request_t *request)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, request->fetch? "REPLICA_FETCH": "REPLICA_EPOCH");
    zmsg_addstr (msg, request->topic);
    zper_wire_add_int32 (msg, request->node);
    zper_wire_add_int64 (msg, request->leader_epoch);
    if (request->fetch) {
        zper_wire_add_int64 (msg, request->fetch_offset);
        zper_wire_add_int64 (msg, request->durable_offset);
        zper_wire_add_int64 (msg, request->known_hw);
        zper_wire_add_int32 (msg, request->max_bytes);
    }
    else
        zper_wire_add_int64 (msg, request->last_epoch);
    return msg;
}

//  Decode a request (without its routing id). Returns 0, or -1 for a
//  malformed one (request->topic then names the topic when that much
//  parsed, for the 103 reply).
static int
s_request_decode (zmsg_t *msg, request_t *request)
{
    memset (request, 0, sizeof *request);
    zframe_t *command = zmsg_first (msg);
    zframe_t *topic = zmsg_next (msg);
    if (!command || !topic || zframe_size (topic) == 0 || zframe_size (topic) > ZPER_TOPIC_MAX)
        return -1;
    memcpy (request->topic, zframe_data (topic), zframe_size (topic));
    request->topic [zframe_size (topic)] = 0;
    if (strlen (request->topic) != zframe_size (topic)
    ||  !zper_cluster_partition_name (request->topic, NULL, NULL)) {
        request->topic [0] = 0;
        return -1;
    }
    request->fetch = zframe_streq (command, "REPLICA_FETCH");
    if (!request->fetch && !zframe_streq (command, "REPLICA_EPOCH"))
        return -1;
    int32_t node;
    if (zmsg_size (msg) != (request->fetch? 8u: 5u)
    ||  zper_wire_frame_int32 (zmsg_next (msg), &node)
    ||  zper_wire_frame_int64 (zmsg_next (msg), &request->leader_epoch)
    ||  node < 1 || node > ZPER_CLUSTER_NODE_MAX)
        return -1;
    request->node = node;
    if (!request->fetch)
        return zper_wire_frame_int64 (zmsg_next (msg), &request->last_epoch);
    if (zper_wire_frame_int64 (zmsg_next (msg), &request->fetch_offset)
    ||  zper_wire_frame_int64 (zmsg_next (msg), &request->durable_offset)
    ||  zper_wire_frame_int64 (zmsg_next (msg), &request->known_hw)
    ||  zper_wire_frame_int32 (zmsg_next (msg), &request->max_bytes)
    ||  request->max_bytes <= 0)
        return -1;
    return 0;
}

//  The records of view as one frame of the records format.
static zframe_t *
s_records_encode (zper_view_t *view)
{
    int64_t first_offset, timestamp;
    size_t count, size, total = 0;
    const uint8_t *data;
    zper_view_rewind (view);
    while (zper_view_next_record (view, &first_offset, &timestamp, &count, &data, &size))
        total += RECORD_HEADER_SIZE + size;
    zframe_t *frame = zframe_new (NULL, total);
    uint8_t *cursor = zframe_data (frame);
    zper_view_rewind (view);
    while (zper_view_next_record (view, &first_offset, &timestamp, &count, &data, &size)) {
        zper_wire_put_int64 (cursor, first_offset);
        zper_wire_put_int64 (cursor + 8, timestamp);
        zper_wire_put_int32 (cursor + 16, (int32_t) count);
        zper_wire_put_int32 (cursor + 20, (int32_t) size);
        memcpy (cursor + RECORD_HEADER_SIZE, data, size);
        cursor += RECORD_HEADER_SIZE + size;
    }
    return frame;
}

//  The next record of a records frame at *cursor. Returns 1 (and moves
//  the cursor), 0 at the end, -1 when the frame is malformed.
static int
s_records_next (const uint8_t *data, size_t size, size_t *cursor, wire_record_t *record)
{
    if (*cursor == size)
        return 0;
    if (size - *cursor < RECORD_HEADER_SIZE)
        return -1;
    const uint8_t *header = data + *cursor;
    record->first_offset = zper_wire_get_int64 (header);
    record->timestamp = zper_wire_get_int64 (header + 8);
    record->count = zper_wire_get_int32 (header + 16);
    record->size = zper_wire_get_int32 (header + 20);
    if (record->count <= 0 || record->size <= 0 || record->first_offset < 0
    ||  (size_t) record->size > size - *cursor - RECORD_HEADER_SIZE)
        return -1;
    record->data = header + RECORD_HEADER_SIZE;
    *cursor += RECORD_HEADER_SIZE + (size_t) record->size;
    return 1;
}

//  ---- pure decisions (table-tested) ------------------------------------------

//  KIP-279: where a follower cuts its log, given the leader's answer to
//  REPLICA_EPOCH (leader_epoch: the largest leader epoch <= the follower's
//  latest, -1 none; leader_end: where it ends on the leader) and the
//  follower's own epochs (count entries, oldest first) and log end. The
//  follower's end for leader_epoch is the start of its next epoch after it,
//  or its log end; leader_epoch -1: the leader's answer alone.
static int64_t
s_truncation_point (int64_t leader_epoch, int64_t leader_end, const int64_t *epochs,
                    const int64_t *starts, size_t count, int64_t log_end)
{
    int64_t own_end = log_end;
    if (leader_epoch >= 0) {
        size_t index = 0;
        while (index < count && epochs [index] <= leader_epoch)
            index++;
        //  index: the first own entry above leader_epoch, whose start
        //  is where the own log stops agreeing
        if (index < count)
            own_end = starts [index];
    }
    int64_t point = leader_end < own_end? leader_end: own_end;
    return point < log_end? point: log_end;
}

//  The leader's next HW: the smallest durable end over the members (-1:
//  unknown, which holds it), capped by the leader's own, only forwards,
//  and only while the confirmed ISR holds min_isr.
static int64_t
s_high_watermark (int64_t current, int64_t leader_durable, const int64_t *member_durables,
                  size_t member_count, size_t isr_count, int min_isr)
{
    if ((int) isr_count < min_isr)
        return current;
    int64_t hw = leader_durable;
    for (size_t index = 0; index < member_count; index++) {
        if (member_durables [index] < 0)
            return current;
        if (member_durables [index] < hw)
            hw = member_durables [index];
    }
    return hw > current? hw: current;
}

//  ---- actor state --------------------------------------------------------------

typedef struct {
    int node;
    bool epoch_done;                    //  did REPLICA_EPOCH in this epoch
    int64_t fetch_offset;               //  -1 unknown
    int64_t durable_offset;             //  -1 unknown in this epoch
    int64_t caught_up_ms;               //  mono; starts at the epoch (grace)
    int64_t last_fetch_ms;              //  0 none yet
    int64_t last_fetch_leader_end;
    zframe_t *parked;                   //  routing id of the parked fetch, or NULL
    request_t parked_request;
    int64_t parked_until;
} follower_t;

//  A partition this node leads.
typedef struct {
    char topic [ZPER_TOPIC_MAX + 1];
    int64_t epoch;
    zper_partition_t *log;
    follower_t followers [ZPER_CLUSTER_REPLICAS_MAX];
    size_t follower_count;
    bool alive;                         //  still led at the last refresh
} led_t;

typedef struct {
    char endpoint [ZPER_CONFIG_STRING_MAX];
    zsock_t *dealer;
    size_t users;
} link_t;

typedef enum {
    FOLLOW_NEED_EPOCH,
    FOLLOW_EPOCH_SENT,
    FOLLOW_NEED_FETCH,
    FOLLOW_FETCH_SENT
} follow_state_t;

//  A partition this node follows.
typedef struct {
    char topic [ZPER_TOPIC_MAX + 1];
    int64_t epoch;
    int leader;
    link_t *link;
    follow_state_t state;
    int64_t due_ms;                     //  NEED_*: send then; *_SENT: give up then
    int64_t fetch_offset;               //  of the FETCH in flight
    bool reset_needed;                  //  own log cannot be cut to the leader's: fetch
                                        //  below its start, so its 101 resets the log
    int64_t known_hw;                   //  the leader's HW, as last heard
    size_t stale_replies;               //  replies still due to requests of a previous
                                        //  leader or epoch on the same socket: dropped
    bool alive;
} follow_t;

//  Last role and epoch seen of a partition: a change is told to its front worker.
typedef struct {
    zper_role_t role;
    int64_t epoch;
    bool alive;
} seen_t;

typedef enum {
    REFUSED_MALFORMED,
    REFUSED_NOT_LEADER,
    REFUSED_FENCED,
    REFUSED_OFFSET,
    REFUSED_NOT_REPLICA,
    REFUSED_STORAGE,
    FOLLOW_FAILED,
    COMMIT_DROPPED,
    CAUSE_COUNT
} cause_t;

static const char *s_cause_names [CAUSE_COUNT] = {
    "malformed request", "not the leader", "epoch fenced", "offset out of range",
    "node not a replica", "storage error", "follower could not apply a reply",
    "HW move not queued for a front worker (it is far behind)"
};

typedef struct {
    uint64_t count;
    int64_t logged_ms;
} refusals_t;

typedef struct {
    zper_broker_t *broker;
    zper_cluster_t *cluster;
    const zper_config_t *config;
    int node;
    zsock_t *pipe;
    zsock_t *router;                    //  leader side
    zsock_t *bus;                       //  visible notes of every writer
    zsock_t *visible;                   //  our own bus: HW moves
    zsock_t **commits;                  //  PUSH to each front worker
    size_t commit_count;
    zhashx_t *led;                      //  topic -> led_t
    zhashx_t *follows;                  //  topic -> follow_t
    zhashx_t *links;                    //  endpoint -> link_t
    zhashx_t *seen;                     //  topic -> seen_t
    uint64_t generation;
    bool refreshed;
    int64_t next_sweep_ms;
    int64_t epochs [ZPER_EPOCHS_MAX];   //  scratch for epoch lists
    int64_t starts [ZPER_EPOCHS_MAX];
    refusals_t refusals [CAUSE_COUNT];
} replication_t;

static void
s_free_item (void **item)
{
    freen (*item);
    *item = NULL;
}

//  Count a refusal or failure; logged at most once a second per cause.
static void
s_refused (replication_t *self, cause_t cause, const char *topic, int node)
{
    refusals_t *refusals = &self->refusals [cause];
    refusals->count++;
    int64_t now = zclock_mono ();
    if (now - refusals->logged_ms >= ZPER_LOG_INTERVAL_MS) {
        zsys_warning ("replication: %llu x %s (latest: %s, node %d)",
                      (unsigned long long) refusals->count, s_cause_names [cause],
                      *topic? topic: "?", node);
        refusals->count = 0;
        refusals->logged_ms = now;
    }
}

static bool
s_contains (const int *list, size_t count, int value)
{
    for (size_t index = 0; index < count; index++)
        if (list [index] == value)
            return true;
    return false;
}

static follower_t *
s_follower (led_t *led, int node)
{
    for (size_t index = 0; index < led->follower_count; index++)
        if (led->followers [index].node == node)
            return &led->followers [index];
    return NULL;
}

//  ISR proposal: the leader, then every replica of the members not lagging
//  (caught up within lag_ms), plus every replica that did REPLICA_EPOCH in
//  this epoch, is not lagging, and whose durable end reached HW and the
//  epoch's start. Returns the count written to isr.
static size_t
s_isr_propose (int leader, const int *replicas, size_t replica_count, const int *wanted,
               size_t wanted_count, const follower_t *followers, size_t follower_count,
               int64_t hw, int64_t epoch_start, int64_t now, int64_t lag_ms, int *isr)
{
    size_t count = 0;
    isr [count++] = leader;
    for (size_t index = 0; index < replica_count; index++) {
        int node = replicas [index];
        const follower_t *follower = NULL;
        for (size_t cursor = 0; cursor < follower_count; cursor++)
            if (followers [cursor].node == node)
                follower = &followers [cursor];
        if (node == leader || !follower || now - follower->caught_up_ms >= lag_ms)
            continue;
        bool joins = follower->epoch_done && follower->durable_offset >= 0
                  && follower->durable_offset >= hw && follower->durable_offset >= epoch_start;
        if (s_contains (wanted, wanted_count, node) || joins)
            isr [count++] = node;
    }
    return count;
}

static bool
s_same_set (const int *a, size_t a_count, const int *b, size_t b_count)
{
    if (a_count != b_count)
        return false;
    for (size_t index = 0; index < a_count; index++)
        if (!s_contains (b, b_count, a [index]))
            return false;
    return true;
}

//  Tell topic's front worker that its HW moved, or its role or epoch changed.
static void
s_commit_send (replication_t *self, const char *topic, int64_t hw)
{
    if (!self->commit_count)
        return;
    size_t index = zper_identity_route (topic, self->commit_count);
    void *socket = zsock_resolve (self->commits [index]);
    uint8_t value [ZPER_WIRE_INT64_SIZE];
    zper_wire_put_int64 (value, hw);
    if (zmq_send (socket, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (socket, value, sizeof value, ZMQ_DONTWAIT) == -1)
        s_refused (self, COMMIT_DROPPED, topic, self->node);
}

//  Move topic's HW forwards (never back: readers saw what is below it) and
//  tell readers, and for a led partition its front worker.
static void
s_hw_set (replication_t *self, const char *topic, zper_partition_t *log, int64_t hw, bool leader)
{
    int64_t current = zper_cluster_high_watermark (self->cluster, topic);
    if (hw <= current)
        return;
    zper_cluster_set_high_watermark (self->cluster, topic, hw);
    if (leader)
        s_commit_send (self, topic, hw);
    zper_bounds_t bounds;
    zper_partition_bounds (log, &bounds);
    zper_visible_note_t note = { .from_offset = current < 0? 0: current,
                                 .visible_offset = bounds.visible_offset,
                                 .visible_position = bounds.visible_position };
    snprintf (note.topic, sizeof note.topic, "%s", topic);
    zper_broker_note_send (self->visible, &note);
}

//  ---- leader side ---------------------------------------------------------------

static void
s_reply_status (replication_t *self, zframe_t *routing_id, uint8_t status, const char *topic,
                int64_t value, int64_t other, size_t integers)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addmem (reply, zframe_data (routing_id), zframe_size (routing_id));
    zper_wire_add_status (reply, status);
    if (*topic)
        zmsg_addstr (reply, topic);
    if (integers > 0)
        zper_wire_add_int64 (reply, value);
    if (integers > 1)
        zper_wire_add_int64 (reply, other);
    zmsg_send (&reply, self->router);
    zmsg_destroy (&reply);
}

//  The partition led under the request's epoch, or NULL after replying
//  110/112/103 (refusals counted). Fills info.
static led_t *
s_led_check (replication_t *self, zframe_t *routing_id, const request_t *request,
             zper_cluster_partition_t *info)
{
    led_t *led = (led_t *) zhashx_lookup (self->led, request->topic);
    if (!led || zper_cluster_partition (self->cluster, request->topic, info)
    ||  info->role != ZPER_ROLE_LEADER) {
        s_refused (self, REFUSED_NOT_LEADER, request->topic, request->node);
        s_reply_status (self, routing_id, ZPER_STATUS_NOT_LEADER, request->topic, 0, 0, 0);
        return NULL;
    }
    if (request->leader_epoch != info->epoch || led->epoch != info->epoch) {
        s_refused (self, REFUSED_FENCED, request->topic, request->node);
        s_reply_status (self, routing_id, ZPER_STATUS_FENCED, request->topic, info->epoch, 0, 1);
        return NULL;
    }
    if (!s_follower (led, request->node) || request->node == self->node) {
        s_refused (self, REFUSED_NOT_REPLICA, request->topic, request->node);
        s_reply_status (self, routing_id, ZPER_STATUS_INVALID_ARGUMENT, request->topic, 0, 0, 0);
        return NULL;
    }
    return led;
}

static void
s_epoch_request (replication_t *self, zframe_t *routing_id, const request_t *request)
{
    zper_cluster_partition_t info;
    led_t *led = s_led_check (self, routing_id, request, &info);
    if (!led)
        return;
    zper_epochs_t *epochs = zper_cluster_epochs (self->cluster, request->topic);
    if (!epochs) {
        s_refused (self, REFUSED_STORAGE, request->topic, request->node);
        s_reply_status (self, routing_id, ZPER_STATUS_STORAGE_ERROR, request->topic, 0, 0, 0);
        return;
    }
    zper_bounds_t bounds;
    zper_partition_bounds (led->log, &bounds);
    int64_t found;
    int64_t end = zper_epochs_end_offset (epochs, request->last_epoch, bounds.end_offset, &found);
    follower_t *follower = s_follower (led, request->node);
    follower->epoch_done = true;
    s_reply_status (self, routing_id, ZPER_STATUS_OK, request->topic, found, end, 2);
}

typedef enum {
    ANSWERED,                           //  records (maybe none), HW
    REFUSED,                            //  101 or 105: nothing learnt from it
    PARK                                //  nothing to send and no HW news: wait
} answer_t;

//  Answer a fetch of follower from the log: records from its offset, or
//  101/105. Unless force, a fetch with nothing to send and no HW above what
//  it knows is left unanswered (PARK).
static answer_t
s_fetch_answer (replication_t *self, led_t *led, zframe_t *routing_id, const request_t *request,
                bool force, bool *caught_up)
{
    zper_bounds_t bounds;
    zper_partition_bounds (led->log, &bounds);
    size_t max_bytes = (size_t) request->max_bytes;
    if ((int64_t) max_bytes > self->config->cluster_fetch_bytes)
        max_bytes = (size_t) self->config->cluster_fetch_bytes;
    zper_view_t *view = request->fetch_offset < bounds.start_offset
                      || request->fetch_offset > bounds.end_offset? NULL
                      : zper_partition_read_records (led->log, request->fetch_offset, max_bytes);
    if (!view) {
        bool storage = request->fetch_offset >= bounds.start_offset
                    && request->fetch_offset <= bounds.end_offset && errno == EBADMSG;
        s_refused (self, storage? REFUSED_STORAGE: REFUSED_OFFSET, request->topic, request->node);
        if (storage)
            s_reply_status (self, routing_id, ZPER_STATUS_STORAGE_ERROR, request->topic, 0, 0, 0);
        else
            s_reply_status (self, routing_id, ZPER_STATUS_INVALID_OFFSET, request->topic,
                            bounds.start_offset, bounds.start_position, 2);
        return REFUSED;
    }
    bool empty = zper_view_count (view) == 0;
    if (caught_up)
        *caught_up = empty || request->fetch_offset >= bounds.end_offset;
    int64_t hw = zper_cluster_high_watermark (self->cluster, led->topic);
    if (!force && empty && hw <= request->known_hw) {
        zper_view_destroy (&view);
        return PARK;
    }
    zper_epochs_t *leader_epochs = zper_cluster_epochs (self->cluster, led->topic);
    size_t count = leader_epochs? zper_epochs_list (leader_epochs, self->epochs, self->starts,
                                                    ZPER_EPOCHS_MAX): 0;
    zmsg_t *reply = zmsg_new ();
    zmsg_addmem (reply, zframe_data (routing_id), zframe_size (routing_id));
    zper_wire_add_status (reply, ZPER_STATUS_OK);
    zmsg_addstr (reply, led->topic);
    zper_wire_add_int64 (reply, led->epoch);
    zper_wire_add_int64 (reply, hw);
    zper_wire_add_int64 (reply, bounds.start_offset);
    zper_wire_add_int64 (reply, bounds.start_position);
    zframe_t *records = s_records_encode (view);
    zmsg_append (reply, &records);
    zframe_t *epochs = zframe_new (NULL, count * EPOCH_ENTRY_SIZE);
    for (size_t index = 0; index < count; index++) {
        zper_wire_put_int64 (zframe_data (epochs) + index * EPOCH_ENTRY_SIZE, self->epochs [index]);
        zper_wire_put_int64 (zframe_data (epochs) + index * EPOCH_ENTRY_SIZE + 8,
                             self->starts [index]);
    }
    zmsg_append (reply, &epochs);
    zper_view_destroy (&view);
    zmsg_send (&reply, self->router);
    zmsg_destroy (&reply);
    return ANSWERED;
}

static void
s_parked_drop (follower_t *follower)
{
    zframe_destroy (&follower->parked);
}

//  Answer the parked fetches of led that can be; expired_only: only those
//  whose wait is over (the timer's pass: data and HW moves wake the others).
static void
s_parked_wake (replication_t *self, led_t *led, bool expired_only, int64_t now)
{
    for (size_t index = 0; index < led->follower_count; index++) {
        follower_t *follower = &led->followers [index];
        bool expired = now >= follower->parked_until;
        if (follower->parked && (expired || !expired_only)
        &&  s_fetch_answer (self, led, follower->parked, &follower->parked_request, expired,
                            NULL) != PARK)
            s_parked_drop (follower);
    }
}

//  Recompute led's HW and wanted ISR from its followers' progress.
static void
s_led_update (replication_t *self, led_t *led, int64_t now)
{
    zper_cluster_partition_t info;
    if (zper_cluster_partition (self->cluster, led->topic, &info)
    ||  info.role != ZPER_ROLE_LEADER || info.epoch != led->epoch)
        return;
    zper_bounds_t bounds;
    zper_partition_bounds (led->log, &bounds);
    int members [2 * ZPER_CLUSTER_REPLICAS_MAX];
    int64_t durables [2 * ZPER_CLUSTER_REPLICAS_MAX];
    size_t member_count = 0;
    for (size_t index = 0; index < info.isr_count + info.isr_wanted_count; index++) {
        int node = index < info.isr_count? info.isr [index]
                                         : info.isr_wanted [index - info.isr_count];
        if (s_contains (members, member_count, node))
            continue;
        follower_t *follower = s_follower (led, node);
        members [member_count] = node;
        durables [member_count++] = node == self->node? bounds.durable_offset
                                  : follower? follower->durable_offset: -1;
    }
    int64_t current = info.high_watermark;
    int64_t hw = s_high_watermark (current, bounds.durable_offset, durables, member_count,
                                   info.isr_count, info.min_isr);
    if (hw > current) {
        s_hw_set (self, led->topic, led->log, hw, true);
        s_parked_wake (self, led, false, now);
    }
    int isr [ZPER_CLUSTER_REPLICAS_MAX + 1];
    size_t isr_count = s_isr_propose (self->node, info.replicas, info.replica_count,
                                      info.isr_wanted, info.isr_wanted_count, led->followers,
                                      led->follower_count, hw, info.epoch_start, now,
                                      self->config->cluster_replica_lag_ms, isr);
    if (isr_count <= ZPER_CLUSTER_REPLICAS_MAX
    &&  !s_same_set (isr, isr_count, info.isr_wanted, info.isr_wanted_count))
        zper_cluster_want_isr (self->cluster, led->topic, isr, isr_count);
}

static void
s_fetch_request (replication_t *self, zframe_t *routing_id, const request_t *request)
{
    zper_cluster_partition_t info;
    led_t *led = s_led_check (self, routing_id, request, &info);
    if (!led)
        return;
    follower_t *follower = s_follower (led, request->node);
    if (!follower->epoch_done) {
        s_refused (self, REFUSED_FENCED, request->topic, request->node);
        s_reply_status (self, routing_id, ZPER_STATUS_FENCED, request->topic, info.epoch, 0, 1);
        return;
    }
    //  A newer fetch of the same follower makes its parked one stale
    s_parked_drop (follower);
    int64_t now = zclock_mono ();
    zper_bounds_t bounds;
    zper_partition_bounds (led->log, &bounds);
    bool caught_up = false;
    answer_t answer = s_fetch_answer (self, led, routing_id, request, false, &caught_up);
    if (answer == REFUSED)
        return;
    //  Kafka's rule: at the leader's end now, or at the end it had at this
    //  follower's previous fetch (then caught up as of that fetch)
    if (caught_up)
        follower->caught_up_ms = now;
    else
    if (follower->last_fetch_ms && request->fetch_offset >= follower->last_fetch_leader_end
    &&  follower->last_fetch_ms > follower->caught_up_ms)
        follower->caught_up_ms = follower->last_fetch_ms;
    follower->last_fetch_ms = now;
    follower->last_fetch_leader_end = bounds.end_offset;
    follower->fetch_offset = request->fetch_offset;
    follower->durable_offset = request->durable_offset < request->fetch_offset
                             ? request->durable_offset: request->fetch_offset;
    zper_cluster_follower_progress (self->cluster, led->topic, request->node,
                                    follower->fetch_offset, follower->durable_offset,
                                    follower->caught_up_ms);
    if (answer == PARK) {
        follower->parked = zframe_dup (routing_id);
        follower->parked_request = *request;
        follower->parked_until = now + self->config->cluster_fetch_wait_ms;
    }
    //  The follower's progress may move the HW, which answers it if parked
    s_led_update (self, led, now);
}

static void
s_router_message (replication_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return;
    zframe_t *routing_id = zmsg_pop (msg);
    request_t request;
    if (!routing_id || zmsg_size (msg) == 0)
        ;                               //  nothing to answer
    else
    if (s_request_decode (msg, &request)) {
        s_refused (self, REFUSED_MALFORMED, request.topic, 0);
        s_reply_status (self, routing_id, ZPER_STATUS_INVALID_ARGUMENT, request.topic, 0, 0, 0);
    }
    else
    if (request.fetch)
        s_fetch_request (self, routing_id, &request);
    else
        s_epoch_request (self, routing_id, &request);
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
}

//  Led at a new epoch (or for the first time): every replica starts
//  unknown, with a fresh grace for the ISR, and must do REPLICA_EPOCH.
static void
s_led_reset (replication_t *self, led_t *led, const zper_cluster_partition_t *info, int64_t now)
{
    for (size_t index = 0; index < led->follower_count; index++) {
        follower_t *follower = &led->followers [index];
        if (follower->parked)
            s_reply_status (self, follower->parked, ZPER_STATUS_FENCED, led->topic, info->epoch,
                            0, 1);
        s_parked_drop (follower);
    }
    led->epoch = info->epoch;
    led->follower_count = 0;
    for (size_t index = 0; index < info->replica_count; index++)
        if (info->replicas [index] != self->node)
            led->followers [led->follower_count++] = (follower_t) {
                .node = info->replicas [index], .fetch_offset = -1, .durable_offset = -1,
                .caught_up_ms = now };
}

//  A reassignment may add replicas without a new epoch.
static void
s_led_replicas (led_t *led, const zper_cluster_partition_t *info, int64_t now)
{
    for (size_t index = 0; index < info->replica_count; index++)
        if (!s_follower (led, info->replicas [index])
        &&  led->follower_count < ZPER_CLUSTER_REPLICAS_MAX)
            led->followers [led->follower_count++] = (follower_t) {
                .node = info->replicas [index], .fetch_offset = -1, .durable_offset = -1,
                .caught_up_ms = now };
}

static void
s_led_destroy (void **item)
{
    led_t *led = (led_t *) *item;
    for (size_t index = 0; index < led->follower_count; index++)
        s_parked_drop (&led->followers [index]);
    freen (led);
    *item = NULL;
}

//  ---- follower side ------------------------------------------------------------

static zsock_t *
s_dealer_new (replication_t *self, const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_sndtimeo (dealer, 0);     //  a request that does not fit times out, then resent
    //  Cluster nodes share one server certificate (docs/cluster.md): a
    //  follower is a client of its own public key
    if (self->broker->security
    &&  zper_security_client (self->broker->security, dealer,
                              zper_security_public_key (self->broker->security)))
        zsys_error ("replication: cannot make a CURVE client for %s", endpoint);
    if (zsock_connect (dealer, "%s", endpoint))
        zsys_error ("replication: cannot connect to leader %s", endpoint);
    return dealer;
}

static link_t *
s_link_acquire (replication_t *self, const char *endpoint)
{
    link_t *link = (link_t *) zhashx_lookup (self->links, endpoint);
    if (!link) {
        link = (link_t *) zmalloc (sizeof (link_t));
        snprintf (link->endpoint, sizeof link->endpoint, "%s", endpoint);
        link->dealer = s_dealer_new (self, endpoint);
        zhashx_insert (self->links, endpoint, link);
    }
    link->users++;
    return link;
}

static void
s_link_release (replication_t *self, link_t **link_p)
{
    link_t *link = *link_p;
    if (link && --link->users == 0)
        zhashx_delete (self->links, link->endpoint);
    *link_p = NULL;
}

static void
s_link_destroy (void **item)
{
    link_t *link = (link_t *) *item;
    zsock_destroy (&link->dealer);
    freen (link);
    *item = NULL;
}

//  A request went unanswered: a new socket, so that no stale reply can
//  come, and every partition on it asks again.
static void
s_link_reset (replication_t *self, link_t *link, int64_t now)
{
    zsock_destroy (&link->dealer);
    link->dealer = s_dealer_new (self, link->endpoint);
    for (follow_t *follow = (follow_t *) zhashx_first (self->follows); follow;
         follow = (follow_t *) zhashx_next (self->follows))
        if (follow->link == link) {
            if (follow->state == FOLLOW_EPOCH_SENT)
                follow->state = FOLLOW_NEED_EPOCH;
            if (follow->state == FOLLOW_FETCH_SENT)
                follow->state = FOLLOW_NEED_FETCH;
            follow->due_ms = now;
            follow->stale_replies = 0;
        }
}

static void
s_follow_retry (follow_t *follow, follow_state_t state, int64_t now)
{
    follow->state = state;
    follow->due_ms = now + ZPER_REPLICATION_RETRY_MS;
}

//  Send the request follow's state calls for.
static void
s_follow_send (replication_t *self, follow_t *follow, int64_t now)
{
    zper_partition_t *log = zper_cluster_log_partition (self->cluster, follow->topic);
    zper_epochs_t *epochs = zper_cluster_epochs (self->cluster, follow->topic);
    if (!log || !epochs) {
        s_refused (self, FOLLOW_FAILED, follow->topic, follow->leader);
        s_follow_retry (follow, follow->state, now);
        return;
    }
    request_t request = { .fetch = follow->state == FOLLOW_NEED_FETCH, .node = self->node,
                          .leader_epoch = follow->epoch };
    snprintf (request.topic, sizeof request.topic, "%s", follow->topic);
    if (request.fetch) {
        zper_bounds_t bounds;
        zper_partition_bounds (log, &bounds);
        request.fetch_offset = follow->reset_needed? -1: bounds.end_offset;
        request.durable_offset = bounds.durable_offset;
        request.known_hw = follow->known_hw;
        request.max_bytes = self->config->cluster_fetch_bytes > INT32_MAX
                          ? INT32_MAX: (int32_t) self->config->cluster_fetch_bytes;
        follow->fetch_offset = request.fetch_offset;
        follow->state = FOLLOW_FETCH_SENT;
    }
    else {
        request.last_epoch = zper_epochs_latest (epochs);
        follow->state = FOLLOW_EPOCH_SENT;
    }
    zmsg_t *msg = s_request_encode (&request);
    zmsg_send (&msg, follow->link->dealer);
    zmsg_destroy (&msg);
    follow->due_ms = now + self->config->cluster_fetch_wait_ms + ZPER_REPLICATION_GRACE_MS;
}

//  After a cut: the follower's HW never stands above its log's end.
static void
s_follow_cap (replication_t *self, follow_t *follow, int64_t end)
{
    if (zper_cluster_high_watermark (self->cluster, follow->topic) > end)
        zper_cluster_set_high_watermark (self->cluster, follow->topic, end);
}

//  The leader's REPLICA_EPOCH answer: cut the log where it parts from the
//  leader's (KIP-279), and the epochs file with it. Returns 0, or -1.
static int
s_follow_truncate (replication_t *self, follow_t *follow, int64_t leader_epoch, int64_t leader_end)
{
    int64_t epoch;
    if (zper_cluster_follow_begin (self->cluster, follow->topic, &epoch))
        return -1;
    int rc = -1;
    zper_partition_t *log = zper_cluster_log_partition (self->cluster, follow->topic);
    zper_epochs_t *epochs = zper_cluster_epochs (self->cluster, follow->topic);
    int64_t end = -1;
    if (epoch != follow->epoch || !log || !epochs)
        goto done;
    zper_bounds_t bounds;
    zper_partition_bounds (log, &bounds);
    size_t count = zper_epochs_list (epochs, self->epochs, self->starts, ZPER_EPOCHS_MAX);
    int64_t point = s_truncation_point (leader_epoch, leader_end, self->epochs, self->starts,
                                        count, bounds.end_offset);
    follow->reset_needed = point < bounds.start_offset;
    if (follow->reset_needed) {
        rc = 0;
        goto done;
    }
    end = zper_partition_truncate (log, point);
    if (end < 0 || zper_epochs_truncate_from (epochs, end))
        goto done;
    rc = 0;
done:
    zper_cluster_follow_end (self->cluster, follow->topic);
    if (end >= 0)
        s_follow_cap (self, follow, end);
    return rc;
}

//  The leader says the fetch was below its log start: start the log again
//  where the leader's starts.
static int
s_follow_reset (replication_t *self, follow_t *follow, int64_t start, int64_t position)
{
    int64_t epoch;
    if (zper_cluster_follow_begin (self->cluster, follow->topic, &epoch))
        return -1;
    zper_partition_t *log = zper_cluster_log_partition (self->cluster, follow->topic);
    zper_epochs_t *epochs = zper_cluster_epochs (self->cluster, follow->topic);
    int rc = epoch == follow->epoch && log && epochs && start >= 0 && position >= 0
          && zper_partition_reset (log, start, position) == 0 && zper_epochs_clear (epochs) == 0
           ? 0: -1;
    zper_cluster_follow_end (self->cluster, follow->topic);
    if (rc == 0) {
        follow->reset_needed = false;
        s_follow_cap (self, follow, start);
        zsys_info ("replication: %s: log reset at the leader's start %lld", follow->topic,
                   (long long) start);
    }
    return rc;
}

//  A records reply: epochs first (write-ahead), then each record, then one
//  fdatasync; then the HW is the leader's, capped by what is durable here.
//  Returns 0, or -1 (the caller redoes REPLICA_EPOCH).
static int
s_follow_apply (replication_t *self, follow_t *follow, int64_t leader_hw, zframe_t *records,
                zframe_t *leader_epochs)
{
    if (zframe_size (leader_epochs) % EPOCH_ENTRY_SIZE
    ||  zframe_size (leader_epochs) > ZPER_EPOCHS_MAX * EPOCH_ENTRY_SIZE)
        return -1;
    int64_t epoch;
    if (zper_cluster_follow_begin (self->cluster, follow->topic, &epoch))
        return -1;
    int rc = -1;
    int64_t durable = -1;
    zper_partition_t *log = zper_cluster_log_partition (self->cluster, follow->topic);
    zper_epochs_t *epochs = zper_cluster_epochs (self->cluster, follow->topic);
    if (epoch != follow->epoch || !log || !epochs)
        goto done;
    zper_bounds_t bounds;
    zper_partition_bounds (log, &bounds);
    //  Whole frame checked first: a bad one changes nothing
    const uint8_t *data = zframe_data (records);
    size_t size = zframe_size (records), cursor = 0;
    wire_record_t record;
    int64_t records_end = bounds.end_offset;
    int more;
    while ((more = s_records_next (data, size, &cursor, &record)) == 1) {
        if (record.first_offset != records_end)
            goto done;
        records_end += record.count;
    }
    if (more < 0)
        goto done;
    int64_t latest = zper_epochs_latest (epochs);
    for (size_t index = 0; index < zframe_size (leader_epochs) / EPOCH_ENTRY_SIZE; index++) {
        const uint8_t *entry = zframe_data (leader_epochs) + index * EPOCH_ENTRY_SIZE;
        int64_t leader_epoch = zper_wire_get_int64 (entry);
        int64_t start = zper_wire_get_int64 (entry + 8);
        if (leader_epoch > latest && start < records_end) {
            if (zper_epochs_assign (epochs, leader_epoch, start))
                goto done;
            latest = leader_epoch;
        }
    }
    cursor = 0;
    while (s_records_next (data, size, &cursor, &record) == 1)
        if (zper_partition_append_record (log, record.first_offset, record.timestamp, record.data,
                                          (size_t) record.size, (size_t) record.count) < 0)
            goto done;
    durable = size? zper_partition_flush (log): bounds.durable_offset;
    rc = durable < 0? -1: 0;
done:
    zper_cluster_follow_end (self->cluster, follow->topic);
    if (rc == 0) {
        follow->known_hw = leader_hw;
        s_hw_set (self, follow->topic, log, leader_hw < durable? leader_hw: durable, false);
    }
    return rc;
}

//  A reply from a leader on link.
static void
s_link_message (replication_t *self, link_t *link)
{
    zmsg_t *msg = zmsg_recv (link->dealer);
    if (!msg)
        return;
    zframe_t *status = zmsg_first (msg);
    zframe_t *name = zmsg_next (msg);
    char topic [ZPER_TOPIC_MAX + 1];
    follow_t *follow = NULL;
    if (status && zframe_size (status) == 1 && name && zframe_size (name) <= ZPER_TOPIC_MAX) {
        memcpy (topic, zframe_data (name), zframe_size (name));
        topic [zframe_size (name)] = 0;
        follow = (follow_t *) zhashx_lookup (self->follows, topic);
    }
    //  Only the reply of the request in flight on this link counts
    bool stale = follow && follow->link == link && follow->stale_replies > 0;
    if (stale)
        follow->stale_replies--;
    if (!follow || follow->link != link || stale
    ||  (follow->state != FOLLOW_EPOCH_SENT && follow->state != FOLLOW_FETCH_SENT)) {
        zmsg_destroy (&msg);
        return;
    }
    int64_t now = zclock_mono ();
    uint8_t code = zframe_data (status) [0];
    int64_t first = 0, second = 0;
    zframe_t *third = zmsg_next (msg);
    zframe_t *fourth = zmsg_next (msg);
    bool integers = zper_wire_frame_int64 (third, &first) == 0
                 && zper_wire_frame_int64 (fourth, &second) == 0;
    if (code == ZPER_STATUS_OK && follow->state == FOLLOW_EPOCH_SENT && zmsg_size (msg) == 4
    &&  integers) {
        if (s_follow_truncate (self, follow, first, second) == 0) {
            follow->state = FOLLOW_NEED_FETCH;
            s_follow_send (self, follow, now);
        }
        else {
            s_refused (self, FOLLOW_FAILED, topic, follow->leader);
            s_follow_retry (follow, FOLLOW_NEED_EPOCH, now);
        }
    }
    else
    if (code == ZPER_STATUS_OK && follow->state == FOLLOW_FETCH_SENT && zmsg_size (msg) == 8
    &&  integers && first == follow->epoch) {
        zframe_t *log_start = zmsg_next (msg);
        zframe_t *log_position = zmsg_next (msg);
        zframe_t *records = zmsg_next (msg);
        zframe_t *epochs = zmsg_next (msg);
        (void) log_start;
        (void) log_position;
        if (s_follow_apply (self, follow, second, records, epochs) == 0) {
            follow->state = FOLLOW_NEED_FETCH;
            s_follow_send (self, follow, now);
        }
        else {
            s_refused (self, FOLLOW_FAILED, topic, follow->leader);
            s_follow_retry (follow, FOLLOW_NEED_EPOCH, now);
        }
    }
    else
    if (code == ZPER_STATUS_INVALID_OFFSET && follow->state == FOLLOW_FETCH_SENT && integers
    &&  follow->fetch_offset < first) {
        if (s_follow_reset (self, follow, first, second) == 0) {
            follow->state = FOLLOW_NEED_FETCH;
            s_follow_send (self, follow, now);
        }
        else
            s_follow_retry (follow, FOLLOW_NEED_EPOCH, now);
    }
    else
        //  110, 112, a fetch past the leader's end, anything else: the
        //  coordinator updates the table meanwhile; ask the epoch again
        s_follow_retry (follow, FOLLOW_NEED_EPOCH, now);
    zmsg_destroy (&msg);
}

static void
s_follow_destroy (void **item)
{
    freen (*item);
    *item = NULL;
}

//  ---- the table: what to lead and follow ---------------------------------------

//  A partition led: tracked from its first sight, reset at a new epoch.
static void
s_track_led (replication_t *self, const zper_cluster_partition_t *info, int64_t now)
{
    led_t *led = (led_t *) zhashx_lookup (self->led, info->topic);
    if (!led) {
        zper_partition_t *log = zper_cluster_log_partition (self->cluster, info->topic);
        if (!log)
            return;
        led = (led_t *) zmalloc (sizeof (led_t));
        snprintf (led->topic, sizeof led->topic, "%s", info->topic);
        led->log = log;
        led->epoch = -2;                //  below any epoch: reset below
        zhashx_insert (self->led, info->topic, led);
    }
    if (led->epoch != info->epoch)
        s_led_reset (self, led, info, now);
    s_led_replicas (led, info, now);
    led->alive = true;
}

//  A partition followed: a new leader, endpoint or epoch starts it over
//  with REPLICA_EPOCH.
static void
s_track_follow (replication_t *self, const zper_cluster_partition_t *info, int64_t now)
{
    follow_t *follow = (follow_t *) zhashx_lookup (self->follows, info->topic);
    if (!follow) {
        follow = (follow_t *) zmalloc (sizeof (follow_t));
        snprintf (follow->topic, sizeof follow->topic, "%s", info->topic);
        zhashx_insert (self->follows, info->topic, follow);
    }
    follow->alive = true;
    if (follow->link && follow->epoch == info->epoch && follow->leader == info->leader
    &&  streq (follow->link->endpoint, info->leader_endpoint))
        return;
    bool in_flight = follow->state == FOLLOW_EPOCH_SENT || follow->state == FOLLOW_FETCH_SENT;
    //  Acquired before the release, so the same leader keeps its socket:
    //  the reply to what was in flight will still come on it, and must
    //  not count
    link_t *next = s_link_acquire (self, info->leader_endpoint);
    if (next != follow->link)
        follow->stale_replies = 0;
    else
    if (in_flight)
        follow->stale_replies++;
    s_link_release (self, &follow->link);
    follow->link = next;
    follow->epoch = info->epoch;
    follow->leader = info->leader;
    follow->state = FOLLOW_NEED_EPOCH;
    follow->due_ms = now;
    follow->known_hw = -1;
}

//  A role or epoch change is told to the partition's front worker, which
//  then fails what it holds with 110 (zper_broker.h, ZPER_INPROC_COMMIT).
static void
s_track_seen (replication_t *self, const zper_cluster_partition_t *info)
{
    seen_t *seen = (seen_t *) zhashx_lookup (self->seen, info->topic);
    if (!seen) {
        seen = (seen_t *) zmalloc (sizeof (seen_t));
        seen->role = ZPER_ROLE_NONE;
        zhashx_insert (self->seen, info->topic, seen);
    }
    if (seen->role != info->role || seen->epoch != info->epoch)
        s_commit_send (self, info->topic, info->high_watermark);
    seen->role = info->role;
    seen->epoch = info->epoch;
    seen->alive = true;
}

//  Forget the partitions the last refresh did not find: led ones answer
//  their parked fetches 110, followed ones release their leader's socket,
//  and the front worker hears of each.
static void
s_forget_gone (replication_t *self)
{
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, (zlistx_destructor_fn *) zstr_free);
    for (led_t *led = (led_t *) zhashx_first (self->led); led;
         led = (led_t *) zhashx_next (self->led))
        if (!led->alive) {
            for (size_t index = 0; index < led->follower_count; index++)
                if (led->followers [index].parked)
                    s_reply_status (self, led->followers [index].parked, ZPER_STATUS_NOT_LEADER,
                                    led->topic, 0, 0, 0);
            zlistx_add_end (gone, strdup (led->topic));
        }
    for (char *topic = (char *) zlistx_first (gone); topic; topic = (char *) zlistx_next (gone))
        zhashx_delete (self->led, topic);
    zlistx_purge (gone);
    for (follow_t *follow = (follow_t *) zhashx_first (self->follows); follow;
         follow = (follow_t *) zhashx_next (self->follows))
        if (!follow->alive) {
            s_link_release (self, &follow->link);
            zlistx_add_end (gone, strdup (follow->topic));
        }
    for (char *topic = (char *) zlistx_first (gone); topic; topic = (char *) zlistx_next (gone))
        zhashx_delete (self->follows, topic);
    zlistx_purge (gone);
    for (seen_t *seen = (seen_t *) zhashx_first (self->seen); seen;
         seen = (seen_t *) zhashx_next (self->seen))
        if (!seen->alive)
            zlistx_add_end (gone, strdup ((const char *) zhashx_cursor (self->seen)));
    for (char *topic = (char *) zlistx_first (gone); topic; topic = (char *) zlistx_next (gone)) {
        s_commit_send (self, topic, -1);
        zhashx_delete (self->seen, topic);
    }
    zlistx_destroy (&gone);
}

//  Read the table again after its generation moved.
static void
s_refresh (replication_t *self, int64_t now)
{
    for (led_t *led = (led_t *) zhashx_first (self->led); led;
         led = (led_t *) zhashx_next (self->led))
        led->alive = false;
    for (follow_t *follow = (follow_t *) zhashx_first (self->follows); follow;
         follow = (follow_t *) zhashx_next (self->follows))
        follow->alive = false;
    for (seen_t *seen = (seen_t *) zhashx_first (self->seen); seen;
         seen = (seen_t *) zhashx_next (self->seen))
        seen->alive = false;
    zlistx_t *partitions = zper_cluster_partitions (self->cluster);
    for (zper_cluster_partition_t *info = (zper_cluster_partition_t *) zlistx_first (partitions);
         info; info = (zper_cluster_partition_t *) zlistx_next (partitions)) {
        s_track_seen (self, info);
        if (info->role == ZPER_ROLE_LEADER)
            s_track_led (self, info, now);
        else
        if (info->role == ZPER_ROLE_FOLLOWER && *info->leader_endpoint && info->leader > 0
        &&  info->leader != self->node)
            s_track_follow (self, info, now);
    }
    zlistx_destroy (&partitions);
    s_forget_gone (self);
}

//  Timers: the table's generation, parked fetches past their wait,
//  followers' due requests and timeouts, and the periodic HW/ISR sweep.
static void
s_tick (replication_t *self)
{
    int64_t now = zclock_mono ();
    uint64_t generation = zper_cluster_generation (self->cluster);
    if (!self->refreshed || generation != self->generation) {
        self->generation = generation;
        self->refreshed = true;
        s_refresh (self, now);
        self->next_sweep_ms = now;      //  a confirmed ISR may let the HW move
    }
    for (led_t *led = (led_t *) zhashx_first (self->led); led;
         led = (led_t *) zhashx_next (self->led)) {
        s_parked_wake (self, led, true, now);
        if (now >= self->next_sweep_ms)
            s_led_update (self, led, now);
    }
    if (now >= self->next_sweep_ms)
        self->next_sweep_ms = now + ZPER_REPLICATION_SWEEP_MS;
    //  A timeout resets its link, which touches every follow: collect first
    zlistx_t *stuck = zlistx_new ();
    for (follow_t *follow = (follow_t *) zhashx_first (self->follows); follow;
         follow = (follow_t *) zhashx_next (self->follows)) {
        if (now < follow->due_ms)
            continue;
        if (follow->state == FOLLOW_NEED_EPOCH || follow->state == FOLLOW_NEED_FETCH)
            s_follow_send (self, follow, now);
        else
        if (!zlistx_find (stuck, follow->link))
            zlistx_add_end (stuck, follow->link);
    }
    for (link_t *link = (link_t *) zlistx_first (stuck); link;
         link = (link_t *) zlistx_next (stuck)) {
        zsys_warning ("replication: leader %s did not answer: reconnecting", link->endpoint);
        s_link_reset (self, link, now);
    }
    zlistx_destroy (&stuck);
}

//  A visible note: a led topic may have data for its parked fetches, and
//  the leader's durable end may have moved its HW.
static void
s_notes (replication_t *self)
{
    int64_t now = zclock_mono ();
    zmsg_t *msg;
    for (size_t count = 0; count < ZPER_RELAY_NOTES_PER_WAKE && (msg = zmsg_recv (self->bus));
         count++) {                     //  the bus's receive timeout is 0
        zper_visible_note_t note;
        led_t *led = zper_broker_note_decode (msg, &note) == 0
                   ? (led_t *) zhashx_lookup (self->led, note.topic): NULL;
        if (led) {
            s_led_update (self, led, now);
            s_parked_wake (self, led, false, now);
        }
        zmsg_destroy (&msg);
    }
}

static int
s_start (replication_t *self, char *reason, size_t reason_size)
{
    if (!self->cluster) {
        snprintf (reason, reason_size, "cluster mode is off");
        return -1;
    }
    self->led = zhashx_new ();
    zhashx_set_destructor (self->led, s_led_destroy);
    self->follows = zhashx_new ();
    zhashx_set_destructor (self->follows, s_follow_destroy);
    self->links = zhashx_new ();
    zhashx_set_destructor (self->links, s_link_destroy);
    self->seen = zhashx_new ();
    zhashx_set_destructor (self->seen, s_free_item);
    self->bus = zper_broker_bus_subscriber (self->config, "");
    zsock_set_rcvtimeo (self->bus, 0);
    self->commit_count = (size_t) self->config->front_workers;
    self->commits = (zsock_t **) zmalloc (sizeof (zsock_t *) * (self->commit_count + 1));
    for (size_t index = 0; index < self->commit_count; index++) {
        self->commits [index] = zsock_new (ZMQ_PUSH);
        zsock_set_sndhwm (self->commits [index], ZPER_REPLICATION_COMMIT_HWM);
        zsock_set_linger (self->commits [index], 0);
        zsock_connect (self->commits [index], ZPER_INPROC_COMMIT, (int) index);
    }
    self->visible = zper_broker_bus_publisher (self->config->front_workers);
    if (!self->visible) {
        snprintf (reason, reason_size, "cannot bind the visible bus %d", self->config->front_workers);
        return -1;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    int64_t frame_limit = ZPER_REQUEST_FRAME_MAX;
    zmq_setsockopt (zsock_resolve (self->router), ZMQ_MAXMSGSIZE, &frame_limit, sizeof frame_limit);
    return zper_broker_bind (self->broker, self->router, "replication",
                             self->config->cluster_replication_bind, reason, reason_size);
}

static void
s_run (replication_t *self)
{
    int64_t next_tick = 0;
    size_t capacity = 0;
    zmq_pollitem_t *items = NULL;
    link_t **polled = NULL;
    while (true) {
        int64_t now = zclock_mono ();
        if (now >= next_tick) {
            s_tick (self);
            next_tick = now + ZPER_REPLICATION_TICK_MS;
        }
        size_t count = 3 + zhashx_size (self->links);
        if (count > capacity) {
            capacity = count * 2;
            items = (zmq_pollitem_t *) realloc (items, capacity * sizeof (zmq_pollitem_t));
            polled = (link_t **) realloc (polled, capacity * sizeof (link_t *));
            assert (items && polled);
        }
        items [0] = (zmq_pollitem_t) { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
        items [1] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        items [2] = (zmq_pollitem_t) { zsock_resolve (self->bus), 0, ZMQ_POLLIN, 0 };
        size_t index = 3;
        for (link_t *link = (link_t *) zhashx_first (self->links); link;
             link = (link_t *) zhashx_next (self->links), index++) {
            polled [index] = link;
            items [index] = (zmq_pollitem_t) { zsock_resolve (link->dealer), 0, ZMQ_POLLIN, 0 };
        }
        int timeout = (int) (next_tick > now? next_tick - now: 0);
        if (zmq_poll (items, (int) count, timeout) == -1) {
            if (zmq_errno () != EINTR)
                break;
            continue;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (self->pipe);
            bool terminated = !command || zper_broker_pipe_command (self->pipe, command);
            zstr_free (&command);
            if (terminated)
                break;
        }
        if (items [1].revents & ZMQ_POLLIN)
            s_router_message (self);
        if (items [2].revents & ZMQ_POLLIN)
            s_notes (self);
        //  A reply may reset or drop links: only those still present are read
        for (index = 3; index < count; index++)
            if ((items [index].revents & ZMQ_POLLIN)
            &&  zhashx_lookup (self->links, polled [index]->endpoint) == polled [index])
                s_link_message (self, polled [index]);
    }
    free (items);
    free (polled);
}

void
zper_replication_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    replication_t *self = (replication_t *) zmalloc (sizeof (replication_t));
    self->broker = broker;
    self->cluster = broker->cluster;
    self->config = broker->config;
    self->node = broker->cluster? zper_cluster_node (broker->cluster): 0;
    self->pipe = pipe;
    char reason [256];
    if (s_start (self, reason, sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (self);
    }
    zhashx_destroy (&self->led);
    zhashx_destroy (&self->follows);
    zhashx_destroy (&self->links);
    zhashx_destroy (&self->seen);
    for (size_t index = 0; index < self->commit_count; index++)
        zsock_destroy (&self->commits [index]);
    freen (self->commits);
    zsock_destroy (&self->router);
    zsock_destroy (&self->bus);
    zsock_destroy (&self->visible);
    freen (self);
}

//  --------------------------------------------------------------------------
//  Selftest: the wire and the pure decisions by table; then the actor in
//  this process over a table fed by hand (no etcd), the test playing node 2:
//  a follower of a partition node 1 leads, and the leader of one it follows.

static zmsg_t *
s_test_ask (zsock_t *dealer, const request_t *request, uint8_t status, size_t frames)
{
    zmsg_t *msg = s_request_encode (request);
    zmsg_send (&msg, dealer);
    zmsg_t *reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == frames);
    assert (zframe_size (zmsg_first (reply)) == 1 && zframe_data (zmsg_first (reply)) [0] == status);
    return reply;
}

static zframe_t *
s_test_frame (zmsg_t *msg, size_t index)
{
    zframe_t *frame = zmsg_first (msg);
    while (index--)
        frame = zmsg_next (msg);
    return frame;
}

static int64_t
s_test_int64 (zmsg_t *msg, size_t index)
{
    int64_t value;
    int rc = zper_wire_frame_int64 (s_test_frame (msg, index), &value);
    assert (rc == 0);
    return value;
}

//  The test as leader of topic: the actor's next request, decoded.
static zframe_t *
s_test_request (zsock_t *router, request_t *request, bool fetch)
{
    zmsg_t *msg = zmsg_recv (router);
    assert (msg);
    zframe_t *routing_id = zmsg_pop (msg);
    int rc = s_request_decode (msg, request);
    assert (rc == 0 && request->fetch == fetch && request->node == 1);
    zmsg_destroy (&msg);
    return routing_id;
}

static void
s_test_reply (zsock_t *router, zframe_t **routing_id, uint8_t status, const char *topic,
              const int64_t *values, size_t count, zframe_t *records, zframe_t *epochs)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, routing_id);
    zper_wire_add_status (reply, status);
    zmsg_addstr (reply, topic);
    for (size_t index = 0; index < count; index++)
        zper_wire_add_int64 (reply, values [index]);
    if (records) {
        zframe_t *copy = zframe_dup (records);
        zmsg_append (reply, &copy);
        copy = zframe_dup (epochs);
        zmsg_append (reply, &copy);
    }
    zmsg_send (&reply, router);
}

static void
s_test_wire (void)
{
    request_t fetch = { .fetch = true, .topic = "orders.3", .node = 2, .leader_epoch = 4,
                        .fetch_offset = 10, .durable_offset = 9, .known_hw = 8, .max_bytes = 1000 };
    request_t decoded;
    zmsg_t *msg = s_request_encode (&fetch);
    assert (zmsg_size (msg) == 8 && s_request_decode (msg, &decoded) == 0);
    assert (decoded.fetch && streq (decoded.topic, "orders.3") && decoded.node == 2);
    assert (decoded.leader_epoch == 4 && decoded.fetch_offset == 10);
    assert (decoded.durable_offset == 9 && decoded.known_hw == 8 && decoded.max_bytes == 1000);
    zmsg_addstr (msg, "extra");
    assert (s_request_decode (msg, &decoded) == -1 && streq (decoded.topic, "orders.3"));
    zmsg_destroy (&msg);
    request_t epoch = { .topic = "orders.3", .node = 2, .leader_epoch = 4, .last_epoch = -1 };
    msg = s_request_encode (&epoch);
    assert (zmsg_size (msg) == 5 && s_request_decode (msg, &decoded) == 0);
    assert (!decoded.fetch && decoded.last_epoch == -1 && decoded.leader_epoch == 4);
    zmsg_destroy (&msg);
    //  Not a partition name, a node out of range, no bytes to fetch: refused
    request_t bad = epoch;
    snprintf (bad.topic, sizeof bad.topic, "plain");
    msg = s_request_encode (&bad);
    assert (s_request_decode (msg, &decoded) == -1 && *decoded.topic == 0);
    zmsg_destroy (&msg);
    bad = epoch;
    bad.node = 0;
    msg = s_request_encode (&bad);
    assert (s_request_decode (msg, &decoded) == -1);
    zmsg_destroy (&msg);
    bad = fetch;
    bad.max_bytes = 0;
    msg = s_request_encode (&bad);
    assert (s_request_decode (msg, &decoded) == -1);
    zmsg_destroy (&msg);
    msg = zmsg_new ();
    zmsg_addstr (msg, "REPLICA_OTHER");
    zmsg_addstr (msg, "orders.3");
    assert (s_request_decode (msg, &decoded) == -1);
    zmsg_destroy (&msg);
}

static void
s_test_decisions (void)
{
    //  KIP-279: where a follower cuts, given the leader's (epoch, end)
    struct {
        const char *name;
        int64_t leader_epoch, leader_end;
        int64_t epochs [2], starts [2];
        size_t count;
        int64_t log_end, expected;
    } cases [] = {
        { "exact epoch, same end", 2, 10, { 1, 2 }, { 0, 5 }, 2, 10, 10 },
        { "follower ahead of the leader in its epoch", 2, 8, { 1, 2 }, { 0, 5 }, 2, 10, 8 },
        { "diverged: an own epoch the leader never had", 1, 6, { 1, 2 }, { 0, 5 }, 2, 10, 5 },
        { "diverged: the leader's epoch ended earlier", 1, 4, { 1, 2 }, { 0, 5 }, 2, 10, 4 },
        { "follower behind: nothing to cut", 3, 20, { 1, 2 }, { 0, 5 }, 2, 10, 10 },
        { "below every leader epoch", -1, 0, { 4, 0 }, { 3, 0 }, 1, 7, 0 },
        { "empty follower", -1, 5, { 0, 0 }, { 0, 0 }, 0, 0, 0 },
        { "no own epochs: its log end", 2, 10, { 0, 0 }, { 0, 0 }, 0, 6, 6 },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        int64_t point = s_truncation_point (cases [index].leader_epoch, cases [index].leader_end,
                                            cases [index].epochs, cases [index].starts,
                                            cases [index].count, cases [index].log_end);
        if (point != cases [index].expected)
            printf ("truncation case '%s': %lld\n", cases [index].name, (long long) point);
        assert (point == cases [index].expected);
    }

    //  HW: the smallest member, capped by the leader, forwards only, held
    //  by an unknown member and by an ISR under min_isr
    int64_t durables [] = { 5, 7 }, unknown [] = { 5, -1 }, behind [] = { 2 };
    assert (s_high_watermark (3, 9, durables, 2, 2, 2) == 5);
    assert (s_high_watermark (3, 4, durables, 2, 2, 2) == 4);
    assert (s_high_watermark (3, 9, durables, 2, 1, 2) == 3);
    assert (s_high_watermark (3, 9, unknown, 2, 2, 1) == 3);
    assert (s_high_watermark (3, 9, behind, 1, 1, 1) == 3);

    //  ISR: 2 joins (durable past HW and epoch start), 3 stays a member,
    //  4 lags too long and leaves; 5 never did REPLICA_EPOCH
    follower_t followers [] = {
        { .node = 2, .epoch_done = true, .durable_offset = 10, .caught_up_ms = 1000 },
        { .node = 3, .epoch_done = true, .durable_offset = 4, .caught_up_ms = 1000 },
        { .node = 4, .epoch_done = true, .durable_offset = 10, .caught_up_ms = 0 },
        { .node = 5, .epoch_done = false, .durable_offset = 10, .caught_up_ms = 1000 } };
    int replicas [] = { 1, 2, 3, 4, 5 }, wanted [] = { 1, 3, 4 }, isr [8];
    size_t count = s_isr_propose (1, replicas, 5, wanted, 3, followers, 4, 8, 6, 5000, 4500, isr);
    assert (count == 3 && isr [0] == 1 && isr [1] == 2 && isr [2] == 3);
    //  3 is no member and behind the HW: it does not join
    count = s_isr_propose (1, replicas, 5, wanted, 1, followers, 4, 8, 6, 5000, 4500, isr);
    assert (count == 2 && isr [1] == 2);
    //  below the epoch's start: 2 does not join either
    count = s_isr_propose (1, replicas, 5, wanted, 1, followers, 4, 8, 11, 5000, 4500, isr);
    assert (count == 1 && isr [0] == 1);
}

//  A leader's records copied into a follower's log, byte for byte.
static void
s_test_records (const char *folder, zper_partition_t **leader_p)
{
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.base_dir = folder;
    char path [256];
    snprintf (path, sizeof path, "%s/leader", folder);
    zper_partition_t *leader = zper_partition_open (path, &log_config);
    snprintf (path, sizeof path, "%s/follower", folder);
    zper_partition_t *follower = zper_partition_open (path, &log_config);
    assert (leader && follower);
    zper_frame_t frames [2] = { { (const uint8_t *) "key", 3 }, { (const uint8_t *) "one", 3 } };
    assert (zper_partition_append (leader, frames, 2, 0) == 0);
    assert (zper_partition_append (leader, frames, 1, 0) == 1);
    assert (zper_partition_flush (leader) == 2);
    assert (zper_partition_append (leader, frames + 1, 1, 0) == 2);
    assert (zper_partition_flush (leader) == 3);

    zper_view_t *view = zper_partition_read_records (leader, 0, 1 << 20);
    zframe_t *frame = s_records_encode (view);
    zper_view_destroy (&view);
    size_t cursor = 0, records = 0;
    wire_record_t record;
    while (s_records_next (zframe_data (frame), zframe_size (frame), &cursor, &record) == 1) {
        assert (record.first_offset == (records? 2: 0) && record.count == (records? 1: 2));
        assert (zper_partition_append_record (follower, record.first_offset, record.timestamp,
                                              record.data, (size_t) record.size,
                                              (size_t) record.count) == record.first_offset
                                                                      + record.count);
        records++;
    }
    assert (records == 2 && zper_partition_flush (follower) == 3);
    view = zper_partition_read_records (follower, 0, 1 << 20);
    zframe_t *copied = s_records_encode (view);
    zper_view_destroy (&view);
    assert (zframe_eq (frame, copied));
    //  A frame cut short is malformed, not a shorter record
    cursor = 0;
    assert (s_records_next (zframe_data (frame), zframe_size (frame) - 1, &cursor, &record) == 1);
    assert (s_records_next (zframe_data (frame), zframe_size (frame) - 1, &cursor, &record) == -1);
    zframe_destroy (&frame);
    zframe_destroy (&copied);
    zper_partition_destroy (&follower);
    *leader_p = leader;
}

static void
s_test_view (zper_cluster_t *cluster)
{
    zper_cluster_view_t *view = zper_cluster_view_new (7);
    const char *keys [][2] = {
        { "nodes/1", "{\"id\":1,\"front\":\"f\",\"rear\":\"r\","
                     "\"replication\":\"inproc://zper-repl-test-1\",\"relay\":\"l\",\"ack\":\"a\"}" },
        { "nodes/2", "{\"id\":2,\"front\":\"f\",\"rear\":\"r\","
                     "\"replication\":\"inproc://zper-repl-test-2\",\"relay\":\"l\",\"ack\":\"a\"}" },
        { "topics/a", "{\"partitions\":1,\"min_insync_replicas\":2,\"replicas\":[[1,2]]}" },
        { "topics/b", "{\"partitions\":1,\"min_insync_replicas\":1,\"replicas\":[[2,1]]}" },
        { "leaders/b/0", "{\"node\":2,\"epoch\":3}" },
        { "state/b/0", "{\"epoch\":3,\"leader\":2,\"isr\":[2,1]}" } };
    for (size_t index = 0; index < sizeof keys / sizeof keys [0]; index++) {
        int rc = zper_cluster_view_add (view, keys [index][0], keys [index][1],
                                        3 + (int64_t) index, 0);
        assert (rc == 0);
    }
    zper_cluster_view_finish (view);
    zper_cluster_apply_view (cluster, &view);
    int isr [] = { 1, 2 };
    int rc = zper_cluster_become_leader (cluster, "a.0", 1, isr, 2);
    assert (rc == 0);
}

//  Node 1 leads a.0: the test fetches it as node 2.
static void
s_test_leader (zper_cluster_t *cluster, zsock_t *bus, zsock_t *commit)
{
    zsock_t *dealer = zsock_new_dealer ("inproc://zper-repl-test-1");
    zsock_set_rcvtimeo (dealer, 5000);
    request_t fetch = { .fetch = true, .topic = "a.0", .node = 2, .leader_epoch = 1,
                        .max_bytes = 1 << 20 };
    request_t epoch = { .topic = "a.0", .node = 2, .leader_epoch = 1, .last_epoch = -1 };
    //  A fetch before REPLICA_EPOCH, a stale epoch, a partition led elsewhere, garbage
    zmsg_t *reply = s_test_ask (dealer, &fetch, ZPER_STATUS_FENCED, 3);
    assert (s_test_int64 (reply, 2) == 1);
    zmsg_destroy (&reply);
    request_t stale = epoch;
    stale.leader_epoch = 0;
    reply = s_test_ask (dealer, &stale, ZPER_STATUS_FENCED, 3);
    zmsg_destroy (&reply);
    request_t elsewhere = epoch;
    snprintf (elsewhere.topic, sizeof elsewhere.topic, "b.0");
    reply = s_test_ask (dealer, &elsewhere, ZPER_STATUS_NOT_LEADER, 2);
    zmsg_destroy (&reply);
    zmsg_t *garbage = zmsg_new ();
    zmsg_addstr (garbage, "REPLICA_EPOCH");
    zmsg_addstr (garbage, "a.0");
    zmsg_send (&garbage, dealer);
    reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == 2
            && zframe_data (zmsg_first (reply)) [0] == ZPER_STATUS_INVALID_ARGUMENT);
    zmsg_destroy (&reply);
    //  The leader's epochs: one entry (1, 0), below it for last_epoch -1
    reply = s_test_ask (dealer, &epoch, ZPER_STATUS_OK, 4);
    assert (s_test_int64 (reply, 2) == -1 && s_test_int64 (reply, 3) == 0);
    zmsg_destroy (&reply);

    //  Three messages written as the front worker would, then fetched
    zper_partition_t *log = zper_cluster_log_partition (cluster, "a.0");
    int64_t leader_epoch;
    assert (zper_cluster_lead_begin (cluster, "a.0", true, &leader_epoch) == 0);
    zper_frame_t frame = { (const uint8_t *) "m", 1 };
    for (int count = 0; count < 3; count++)
        assert (zper_partition_append (log, &frame, 1, 0) == count);
    assert (zper_partition_flush (log) == 3);
    zper_cluster_lead_end (cluster, "a.0");
    zper_visible_note_t note = { "a.0", 0, 3, 0 };
    zper_broker_note_send (bus, &note);
    reply = s_test_ask (dealer, &fetch, ZPER_STATUS_OK, 8);
    assert (s_test_int64 (reply, 2) == 1 && s_test_int64 (reply, 3) == 0);
    zframe_t *records = s_test_frame (reply, 6);
    zframe_t *epochs = s_test_frame (reply, 7);
    size_t cursor = 0;
    wire_record_t record;
    assert (s_records_next (zframe_data (records), zframe_size (records), &cursor, &record) == 1);
    assert (record.first_offset == 0 && record.count == 3);
    assert (zframe_size (epochs) == EPOCH_ENTRY_SIZE);
    assert (zper_wire_get_int64 (zframe_data (epochs)) == 1);
    zmsg_destroy (&reply);
    assert (zper_cluster_high_watermark (cluster, "a.0") == 0);

    //  The follower reports all three durable: the HW moves, the fetch is
    //  answered at once with it, the front worker is told
    fetch.fetch_offset = fetch.durable_offset = 3;
    reply = s_test_ask (dealer, &fetch, ZPER_STATUS_OK, 8);
    assert (s_test_int64 (reply, 3) == 3 && zframe_size (s_test_frame (reply, 6)) == 0);
    zmsg_destroy (&reply);
    assert (zper_cluster_high_watermark (cluster, "a.0") == 3);
    bool told = false;
    for (int count = 0; count < 10 && !told; count++) {
        zmsg_t *move = zmsg_recv (commit);
        assert (move && zmsg_size (move) == 2);
        told = zframe_streq (zmsg_first (move), "a.0") && s_test_int64 (move, 1) == 3;
        zmsg_destroy (&move);
    }
    assert (told);

    //  Long poll: nothing to send and no news parks the fetch until the
    //  next write's note (fetch_wait_ms is a minute here)
    fetch.known_hw = 3;
    zmsg_t *msg = s_request_encode (&fetch);
    zmsg_send (&msg, dealer);
    assert (zper_cluster_lead_begin (cluster, "a.0", true, &leader_epoch) == 0);
    assert (zper_partition_append (log, &frame, 1, 0) == 3);
    assert (zper_partition_flush (log) == 4);
    zper_cluster_lead_end (cluster, "a.0");
    note = (zper_visible_note_t) { "a.0", 3, 4, 0 };
    zper_broker_note_send (bus, &note);
    reply = zmsg_recv (dealer);
    assert (reply && zmsg_size (reply) == 8);
    records = s_test_frame (reply, 6);
    cursor = 0;
    assert (s_records_next (zframe_data (records), zframe_size (records), &cursor, &record) == 1);
    assert (record.first_offset == 3 && record.count == 1);
    zmsg_destroy (&reply);

    //  Past the leader's end: 101 with where its log starts
    fetch.fetch_offset = fetch.durable_offset = 99;
    reply = s_test_ask (dealer, &fetch, ZPER_STATUS_INVALID_OFFSET, 4);
    assert (s_test_int64 (reply, 2) == 0 && s_test_int64 (reply, 3) == 0);
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
}

//  Node 1 follows b.0, led by node 2: the test answers as that leader.
static void
s_test_follower (zper_cluster_t *cluster, zsock_t *router, zper_partition_t *source)
{
    request_t request;
    zframe_t *routing_id = s_test_request (router, &request, false);
    assert (streq (request.topic, "b.0") && request.leader_epoch == 3 && request.last_epoch == -1);
    int64_t answer [] = { -1, 0 };
    s_test_reply (router, &routing_id, ZPER_STATUS_OK, "b.0", answer, 2, NULL, NULL);
    routing_id = s_test_request (router, &request, true);
    assert (request.fetch_offset == 0 && request.durable_offset == 0 && request.known_hw == -1);

    //  Three messages in two records, leader epoch 3 from 0, HW 2
    zper_view_t *view = zper_partition_read_records (source, 0, 1 << 20);
    zframe_t *records = s_records_encode (view);
    zper_view_destroy (&view);
    zframe_t *epochs = zframe_new (NULL, EPOCH_ENTRY_SIZE);
    zper_wire_put_int64 (zframe_data (epochs), 3);
    zper_wire_put_int64 (zframe_data (epochs) + 8, 0);
    int64_t header [] = { 3, 2, 0, 0 };
    s_test_reply (router, &routing_id, ZPER_STATUS_OK, "b.0", header, 4, records, epochs);
    routing_id = s_test_request (router, &request, true);
    assert (request.fetch_offset == 3 && request.durable_offset == 3 && request.known_hw == 2);
    zper_partition_t *log = zper_cluster_log_partition (cluster, "b.0");
    zper_bounds_t bounds;
    zper_partition_bounds (log, &bounds);
    assert (bounds.end_offset == 3 && bounds.durable_offset == 3);
    assert (zper_cluster_high_watermark (cluster, "b.0") == 2);
    zper_epochs_t *own = zper_cluster_epochs (cluster, "b.0");
    assert (zper_epochs_latest (own) == 3 && zper_epochs_latest_start (own) == 0);
    view = zper_partition_read_records (log, 0, 1 << 20);
    zframe_t *copied = s_records_encode (view);
    zper_view_destroy (&view);
    assert (zframe_eq (records, copied));
    zframe_destroy (&copied);

    //  Fenced: it asks the epoch again; the leader's epoch 3 ended at 2,
    //  so it cuts its last record and fetches from there
    int64_t fenced [] = { 4 };
    s_test_reply (router, &routing_id, ZPER_STATUS_FENCED, "b.0", fenced, 1, NULL, NULL);
    routing_id = s_test_request (router, &request, false);
    assert (request.last_epoch == 3);
    int64_t diverged [] = { 3, 2 };
    s_test_reply (router, &routing_id, ZPER_STATUS_OK, "b.0", diverged, 2, NULL, NULL);
    routing_id = s_test_request (router, &request, true);
    assert (request.fetch_offset == 2 && request.durable_offset == 2);
    zper_partition_bounds (log, &bounds);
    assert (bounds.end_offset == 2 && zper_cluster_high_watermark (cluster, "b.0") == 2);

    //  Below the leader's retention: the log starts again where the
    //  leader's does, its epochs forgotten (the next reply brings them)
    int64_t retained [] = { 10, 500 };
    s_test_reply (router, &routing_id, ZPER_STATUS_INVALID_OFFSET, "b.0", retained, 2, NULL, NULL);
    routing_id = s_test_request (router, &request, true);
    assert (request.fetch_offset == 10 && request.durable_offset == 10);
    zper_partition_bounds (log, &bounds);
    assert (bounds.start_offset == 10 && bounds.end_offset == 10 && bounds.start_position == 500);
    assert (zper_epochs_latest (own) == -1);
    zframe_destroy (&routing_id);
    zframe_destroy (&records);
    zframe_destroy (&epochs);
}

//  Two nodes in this process, each with its own broker and table fed with
//  view_keys (front.workers differ, so that their actors' buses do too).
static void
s_test_nodes_open (const char *folder, const char *tag, zper_config_t *configs,
                   zper_broker_t *brokers, const char *view_keys [][2], size_t key_count,
                   bool verbose)
{
    for (int node = 0; node < 2; node++) {
        zper_config_t *config = &configs [node];
        zper_config_init (config);
        char name [64];
        snprintf (name, sizeof name, "zper-repl-%s-node-%d", tag, node + 1);
        zper_config_inproc (config, name);
        snprintf (config->base_dir, sizeof config->base_dir, "%s/%s%d", folder, tag, node + 1);
        config->front_workers = node + 1;
        int rc = zper_broker_open (&brokers [node], config, verbose);
        assert (rc == 0);
        snprintf (config->cluster_etcd, sizeof config->cluster_etcd, "http://127.0.0.1:1");
        snprintf (config->cluster_replication_bind, sizeof config->cluster_replication_bind,
                  "inproc://zper-repl-%s-%d", tag, node + 1);
        config->cluster_node = node + 1;
        brokers [node].cluster = zper_cluster_new (config, brokers [node].log);
        zper_cluster_view_t *view = zper_cluster_view_new (7);
        for (size_t index = 0; index < key_count; index++) {
            rc = zper_cluster_view_add (view, view_keys [index][0], view_keys [index][1], 3, 0);
            assert (rc == 0);
        }
        zper_cluster_view_finish (view);
        zper_cluster_apply_view (brokers [node].cluster, &view);
    }
}

static void
s_test_nodes_close (zper_broker_t *brokers, zactor_t **actors)
{
    for (int node = 0; node < 2; node++) {
        zactor_destroy (&actors [node]);
        zper_cluster_destroy (&brokers [node].cluster);
        zper_broker_close (&brokers [node]);
    }
}

static void
s_test_nodes_start (zper_broker_t *brokers, zactor_t **actors)
{
    for (int node = 0; node < 2; node++) {
        actors [node] = zper_broker_start (zper_replication_actor, &brokers [node], "replication");
        assert (actors [node]);
    }
}

//  Both nodes' HW reach hw, and their logs hold the same records.
static void
s_test_nodes_agree (zper_broker_t *brokers, const char *topic, int64_t hw)
{
    zper_cluster_t *leader = brokers [0].cluster, *follower = brokers [1].cluster;
    for (int tries = 0; zper_cluster_high_watermark (leader, topic) < hw
                     || zper_cluster_high_watermark (follower, topic) < hw; tries++) {
        assert (tries < 1000);
        zclock_sleep (10);
    }
    zper_view_t *view = zper_partition_read_records (zper_cluster_log_partition (leader, topic),
                                                     0, 1 << 20);
    zframe_t *written = s_records_encode (view);
    zper_view_destroy (&view);
    view = zper_partition_read_records (zper_cluster_log_partition (follower, topic), 0, 1 << 20);
    zframe_t *copied = s_records_encode (view);
    zper_view_destroy (&view);
    assert (zframe_eq (written, copied));
    zframe_destroy (&written);
    zframe_destroy (&copied);
}

#define TEST_NODE(id, tag) \
    "{\"id\":" #id ",\"front\":\"f\",\"rear\":\"r\",\"replication\":" \
    "\"inproc://zper-repl-" tag "-" #id "\",\"relay\":\"l\",\"ack\":\"a\"}"

//  Node 1 leads t.0: what it writes reaches node 2 byte for byte, and its
//  HW moves once node 2 holds it durably.
static void
s_test_pair (const char *folder, bool verbose)
{
    const char *keys [][2] = {
        { "nodes/1", TEST_NODE (1, "pair") }, { "nodes/2", TEST_NODE (2, "pair") },
        { "topics/t", "{\"partitions\":1,\"min_insync_replicas\":2,\"replicas\":[[1,2]]}" },
        { "leaders/t/0", "{\"node\":1,\"epoch\":1}" },
        { "state/t/0", "{\"epoch\":1,\"leader\":1,\"isr\":[1,2]}" } };
    zper_config_t configs [2];
    zper_broker_t brokers [2];
    zactor_t *actors [2];
    s_test_nodes_open (folder, "pair", configs, brokers, keys, 5, verbose);
    zper_cluster_t *leader = brokers [0].cluster, *follower = brokers [1].cluster;
    int isr [] = { 1, 2 };
    int rc = zper_cluster_become_leader (leader, "t.0", 1, isr, 2);
    assert (rc == 0);
    zsock_t *bus = zper_broker_bus_publisher (0);           //  node 1's front worker 0
    assert (bus);
    s_test_nodes_start (brokers, actors);

    zper_partition_t *log = zper_cluster_log_partition (leader, "t.0");
    int64_t epoch;
    assert (zper_cluster_lead_begin (leader, "t.0", true, &epoch) == 0 && epoch == 1);
    for (int count = 0; count < 5; count++) {
        char body [16];
        snprintf (body, sizeof body, "message %d", count);
        zper_frame_t frame = { (const uint8_t *) body, strlen (body) };
        assert (zper_partition_append (log, &frame, 1, 0) == count);
        if (count == 1)
            assert (zper_partition_flush (log) == 2);
    }
    assert (zper_partition_flush (log) == 5);
    zper_cluster_lead_end (leader, "t.0");
    zper_visible_note_t note = { "t.0", 0, 5, 0 };
    zper_broker_note_send (bus, &note);
    s_test_nodes_agree (brokers, "t.0", 5);
    zper_epochs_t *epochs = zper_cluster_epochs (follower, "t.0");
    assert (zper_epochs_latest (epochs) == 1 && zper_epochs_latest_start (epochs) == 0);
    //  Readers of the follower see what the HW passed
    zper_bounds_t bounds;
    zper_partition_bounds (zper_cluster_log_partition (follower, "t.0"), &bounds);
    assert (bounds.visible_offset == 5 && bounds.durable_offset == 5);
    char *status = zper_cluster_status_json (leader);
    assert (strstr (status, "\"2\":{\"fetch_offset\":5"));
    zstr_free (&status);
    s_test_nodes_close (brokers, actors);
    zsock_destroy (&bus);
}

//  Append count messages at timestamp 1000 to topic's log on cluster, as
//  one record.
static void
s_test_write (zper_cluster_t *cluster, const char *topic, const char *prefix, int count)
{
    zper_partition_t *log = zper_cluster_log_partition (cluster, topic);
    for (int index = 0; index < count; index++) {
        char body [32];
        snprintf (body, sizeof body, "%s %d", prefix, index);
        zper_frame_t frame = { (const uint8_t *) body, strlen (body) };
        assert (zper_partition_append (log, &frame, 1, 1000) >= 0);
    }
    assert (zper_partition_flush (log) >= 0);
}

//  A failover: node 1 led epoch 1 and wrote 7 messages, node 2 copied only
//  5 and leads epoch 2, where it wrote one. Node 1, following, cuts its two
//  unreplicated messages (KIP-279) and copies epoch 2's.
static void
s_test_failover (const char *folder, bool verbose)
{
    const char *keys [][2] = {
        { "nodes/1", TEST_NODE (1, "fail") }, { "nodes/2", TEST_NODE (2, "fail") },
        { "topics/t", "{\"partitions\":1,\"min_insync_replicas\":2,\"replicas\":[[2,1]]}" },
        { "leaders/t/0", "{\"node\":2,\"epoch\":2}" },
        { "state/t/0", "{\"epoch\":2,\"leader\":2,\"isr\":[2,1]}" } };
    zper_config_t configs [2];
    zper_broker_t brokers [2];
    zactor_t *actors [2];
    s_test_nodes_open (folder, "fail", configs, brokers, keys, 5, verbose);
    zper_cluster_t *old_leader = brokers [0].cluster, *new_leader = brokers [1].cluster;
    s_test_write (old_leader, "t.0", "first", 5);
    s_test_write (old_leader, "t.0", "unreplicated", 2);
    s_test_write (new_leader, "t.0", "first", 5);
    assert (zper_epochs_assign (zper_cluster_epochs (old_leader, "t.0"), 1, 0) == 0);
    assert (zper_epochs_assign (zper_cluster_epochs (new_leader, "t.0"), 1, 0) == 0);
    int isr [] = { 2, 1 };
    int rc = zper_cluster_become_leader (new_leader, "t.0", 2, isr, 2);
    assert (rc == 0);
    int64_t epoch;
    assert (zper_cluster_lead_begin (new_leader, "t.0", true, &epoch) == 0 && epoch == 2);
    s_test_write (new_leader, "t.0", "second", 1);
    zper_cluster_lead_end (new_leader, "t.0");
    s_test_nodes_start (brokers, actors);

    zper_broker_t ordered [2] = { brokers [1], brokers [0] };
    s_test_nodes_agree (ordered, "t.0", 6);
    zper_epochs_t *epochs = zper_cluster_epochs (old_leader, "t.0");
    assert (zper_epochs_latest (epochs) == 2 && zper_epochs_latest_start (epochs) == 5);
    zper_bounds_t bounds;
    zper_partition_bounds (zper_cluster_log_partition (old_leader, "t.0"), &bounds);
    assert (bounds.end_offset == 6);
    s_test_nodes_close (brokers, actors);
}

void
zper_replication_test (bool verbose)
{
    s_test_wire ();
    s_test_decisions ();
    char folder [] = "/tmp/zper-replication-test-XXXXXX";
    assert (mkdtemp (folder));
    zper_partition_t *source;
    s_test_records (folder, &source);

    zper_config_t config;
    zper_config_init (&config);
    zper_config_inproc (&config, "zper-repl-test");
    snprintf (config.base_dir, sizeof config.base_dir, "%s/broker", folder);
    config.front_workers = 1;
    zper_broker_t broker;
    assert (zper_broker_open (&broker, &config, verbose) == 0);
    snprintf (config.cluster_etcd, sizeof config.cluster_etcd, "http://127.0.0.1:1");
    snprintf (config.cluster_replication_bind, sizeof config.cluster_replication_bind,
              "inproc://zper-repl-test-1");
    config.cluster_node = 1;
    config.cluster_fetch_wait_ms = 60000;
    broker.cluster = zper_cluster_new (&config, broker.log);
    assert (broker.cluster);
    s_test_view (broker.cluster);
    zsock_t *bus = zper_broker_bus_publisher (0);           //  as front worker 0
    zsock_t *commit = zsock_new (ZMQ_PULL);
    int rc = zsock_bind (commit, ZPER_INPROC_COMMIT, 0);
    assert (bus && rc == 0);
    zsock_set_rcvtimeo (commit, 5000);
    zsock_t *router = zsock_new_router ("inproc://zper-repl-test-2");
    zsock_set_rcvtimeo (router, 5000);
    zactor_t *actor = zper_broker_start (zper_replication_actor, &broker, "replication");
    assert (actor);
    zstr_send (actor, "PING");
    char *pong = zstr_recv (actor);
    assert (pong && streq (pong, "PONG"));
    zstr_free (&pong);

    s_test_leader (broker.cluster, bus, commit);
    s_test_follower (broker.cluster, router, source);

    zactor_destroy (&actor);
    zsock_destroy (&router);
    zsock_destroy (&commit);
    zsock_destroy (&bus);
    zper_partition_destroy (&source);
    zper_cluster_destroy (&broker.cluster);
    zper_broker_close (&broker);
    s_test_pair (folder, verbose);
    s_test_failover (folder, verbose);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", folder);
    rc = system (command);
    assert (rc == 0);
}
