/*  =========================================================================
    zper_front_worker - append, flush, reply: one thread, its own topics

    The one thing to know is the group commit. The worker drains whatever
    hand-offs are queued (up to ZPER_FRONT_DRAIN_MAX, holding at most about
    ZPER_FRONT_GROUP_MESSAGES_MAX messages, front.turn_bytes bytes, or
    front.turn_ms of work), appends each run of messages of one topic with
    one call, then flushes every topic that either has a client waiting
    for a reply (modes 1, 2, 3), whose flush policy (flush_messages,
    flush_interval) is due, that holds ZPER_FRONT_GROUP_MESSAGES_MAX
    messages awaiting their acks, or every dirty topic once the worker
    holds front.turn_bytes unsynced, and only then replies and notifies
    the ack: one fdatasync covers everything that arrived meanwhile, and
    nothing is ever acknowledged before it is durable. Under
    ZPER_VISIBILITY_WRITTEN the other dirty topics are written (not
    synced) at the end of the turn and announced, so readers see new data
    within a turn, long before it is durable. Between groups
    the poll timeout is the earliest flush_interval deadline of a dirty
    topic, so a quiet topic still becomes durable within the interval.

    Heartbeats: a turn is bounded in messages, bytes and time, and one
    fdatasync covers at most about two turns of bytes, so the worker says
    PONG itself after each hand-off and each flush that ends a heartbeat
    interval: however large a client's legal burst, no step between two
    PONGs is longer than one bounded append or one bounded fdatasync.

    Nothing is allocated per message: what a flush owes is kept per topic
    in two packed buffers, the replies of modes 1-3 (and a record of each
    mode 4 batch, to count it if the disk refuses it), and the ack entries,
    built only while a subscriber of the ack socket wants the topic.

    Because the front routes by topic name, this thread is the only writer
    of its topics' partitions, so it can track each topic's end offset and
    next legacy byte position itself (the position every ack names).

    Cluster mode (broker->cluster, docs/cluster.md) adds three things. The
    worker appends, writes and flushes a partition only under the
    cluster's writer lock (zper_cluster_lead_begin), and only in the leader
    epoch it loaded the topic's state in: when the epoch moved, the
    replication actor may have cut or grown the log meanwhile, so what the
    worker held fails with 110 NOT_LEADER (whether those writes are stored
    is unknown: a new leader may keep them or not) and the state is read
    again from the log. And a flushed write's reply and acks wait in the
    topic's "committing" buffers until the partition's high-watermark
    passes it (the replication actor announces moves on the commit
    socket): then every in-sync replica holds it.
    ========================================================================= */

#include "zper_front.h"
#include "zper_ack.h"
#include "zper_partition.h"
#include "zper_wire.h"
#include "zper_hops.h"
#include <assert.h>
#include <errno.h>
#include <limits.h>

//  A write waiting for its topic's next flush, packed in topic->records,
//  followed by its routing id and id. A refused write of a loaded topic
//  waits there too, so that a client's replies keep the order of its writes.
typedef struct {
    int64_t offset;                     //  first logical offset
    int32_t count;                      //  messages
    uint32_t id_size;
    uint8_t mode;
    uint8_t flags;                      //  ZPER_FRONT_ENTRY_REQ
    uint8_t routing_id_size;
    uint8_t status;                     //  0: stored; else the refusal it waits to send
} record_t;

typedef struct {
    char name [ZPER_TOPIC_MAX + 1];
    size_t name_size;
    zper_partition_t *partition;
    int64_t durable_position;           //  legacy position as of our last flush
    int64_t visible_offset;             //  as announced on the bus
    int64_t end_offset;                 //  next offset the log assigns
    int64_t next_position;              //  legacy position of end_offset
    int64_t dirty_since_ms;             //  monotonic; 0: nothing unflushed
    bool unwritten;                     //  appended since the last write or flush
    bool client_waiting;                //  records owe a reply (modes 1, 2, 3)
    uint64_t pending_messages;          //  appended since the last flush
    zchunk_t *records;                  //  record_t + routing id + id, in append order
    zchunk_t *acks;                     //  [id size:u32][id][position:int64 BE] per message
    zper_subscriptions_cache_t acks_wanted;
    //  Cluster mode only
    int64_t epoch;                      //  leader epoch the state above was loaded in; -1 stale
    zchunk_t *ack_offsets;              //  int64_t per entry of acks: its message's offset
    //  Flushed, waiting for the high-watermark: a prefix leaves as it
    //  passes. Bounded by the writes in flight, as the replies are
    //  (front.reply_budget): a writer over it gets 108, not held here.
    zchunk_t *committing_records;
    zchunk_t *committing_acks;
    zchunk_t *committing_ack_offsets;
} topic_t;

typedef struct {
    zper_broker_t *broker;
    size_t index;
    zsock_t *pipe;
    atomic_size_t *queued_bytes;        //  hand-offs not yet taken (zper_front.h)
    zsock_t *replies;                   //  PUSH to the front thread
    zchunk_t *reply_pack;               //  replies owed, sent as one message (zper_front.h)
    zsock_t *notes;                     //  PUSH to ack
    zsock_t *bus;                       //  PUB: this worker's visible bus
    zsock_t *commit;                    //  cluster mode: PULL of high-watermark moves, else NULL
    zhashx_t *topics;                   //  name -> topic_t
    topic_t *last_topic;                //  of the previous entry: writes come in runs
    size_t group_messages;              //  messages appended in the current group
    size_t group_bytes;                 //  bytes of the hand-offs taken in the current group
    int64_t beat_ms;                    //  monotonic time of our last PONG
    uint8_t topic_refusal;              //  status for writes to the topic the log just refused
    int64_t topic_refusal_logged_ms;    //  monotonic; such refusals are logged once per interval
    int64_t group_taken_us;             //  zper_hops: the group's first hand-off taken, and
    int64_t group_received_us;          //  its oldest write received by the front; 0: none
} worker_t;

//  One entry of a hand-off, with its variable parts located.
typedef struct {
    zper_front_entry_t head;
    const uint8_t *routing_id;
    const uint8_t *topic;
    const uint8_t *id;                  //  head.id_size bytes
    const uint8_t *body;                //  head.data_size bytes in the data frame
} entry_t;

static void
s_topic_destroy (void **item)
{
    topic_t *topic = (topic_t *) *item;
    zchunk_destroy (&topic->records);
    zchunk_destroy (&topic->acks);
    zchunk_destroy (&topic->ack_offsets);
    zchunk_destroy (&topic->committing_records);
    zchunk_destroy (&topic->committing_acks);
    zchunk_destroy (&topic->committing_ack_offsets);
    freen (topic);
    *item = NULL;
}

static bool
s_mode_replies (uint8_t mode)
{
    return mode == ZPER_MODE_ACK || mode == ZPER_MODE_REQ || mode == ZPER_MODE_BATCH_ACK;
}

static bool
s_mode_batch (uint8_t mode)
{
    return mode == ZPER_MODE_BATCH_ACK || mode == ZPER_MODE_BATCH;
}

//  Add one frame to the reply pack.
static void
s_pack_frame (worker_t *self, const void *data, size_t size)
{
    uint32_t frame_size = (uint32_t) size;
    zchunk_extend (self->reply_pack, &frame_size, sizeof frame_size);
    zchunk_extend (self->reply_pack, data, size);
}

//  Send the replies packed so far to the front thread, as one message.
static void
s_pack_send (worker_t *self)
{
    if (zchunk_size (self->reply_pack) == 0)
        return;
    zmq_send (zsock_resolve (self->replies), zchunk_data (self->reply_pack),
              zchunk_size (self->reply_pack), 0);
    zchunk_set (self->reply_pack, NULL, 0);
}

//  Reply to a write (success when status is OK). Modes 0 and 4 never get
//  a reply; an error to mode 1/2 is [id][status], mode 3 gets its fixed
//  four frames (docs/protocol.md 2, 2.1). The reply joins the pack, which
//  leaves at the end of the turn, or now once it is large.
static void
s_reply (worker_t *self, const record_t *record, const uint8_t *routing_id, const uint8_t *id,
         uint8_t status)
{
    if (!s_mode_replies (record->mode))
        return;
    zper_stats_status (self->broker->stats, ZPER_STATS_FRONT, status);
    bool req = record->flags & ZPER_FRONT_ENTRY_REQ;
    bool ok = status == ZPER_STATUS_OK;
    uint8_t frames = 2 + (req? 1: 0) + (record->mode == ZPER_MODE_BATCH_ACK? 3: ok? 0: 1);
    zchunk_extend (self->reply_pack, &frames, 1);
    s_pack_frame (self, routing_id, record->routing_id_size);
    if (req)
        s_pack_frame (self, "", 0);
    if (record->mode == ZPER_MODE_BATCH_ACK) {
        uint8_t offset [ZPER_WIRE_INT64_SIZE], count [ZPER_WIRE_INT32_SIZE];
        zper_wire_put_int64 (offset, ok? record->offset: -1);
        zper_wire_put_int32 (count, ok? record->count: 0);
        s_pack_frame (self, &status, 1);
        s_pack_frame (self, id, record->id_size);
        s_pack_frame (self, offset, sizeof offset);
        s_pack_frame (self, count, sizeof count);
    }
    else {
        s_pack_frame (self, id, record->id_size);
        if (!ok)
            s_pack_frame (self, &status, 1);
    }
    if (zchunk_size (self->reply_pack) >= ZPER_FRONT_REPLY_PACK_BYTES)
        s_pack_send (self);
}

//  Walk packed records (a topic's records or committing_records):
//  returns the next one after *cursor (NULL to start), or NULL at the end.
static const uint8_t *
s_record_next (zchunk_t *records, const uint8_t *cursor, record_t *record,
               const uint8_t **routing_id, const uint8_t **id)
{
    const uint8_t *start = zchunk_data (records);
    const uint8_t *end = start + zchunk_size (records);
    if (!cursor)
        cursor = start;
    if (cursor >= end)
        return NULL;
    memcpy (record, cursor, sizeof *record);
    *routing_id = cursor + sizeof *record;
    *id = *routing_id + record->routing_id_size;
    return *id + record->id_size;
}

//  Send every reply records owe, in order: a stored write's success, or
//  the status it was refused or failed with.
static void
s_records_reply (worker_t *self, zchunk_t *records)
{
    record_t record;
    const uint8_t *routing_id, *id, *cursor = NULL;
    while ((cursor = s_record_next (records, cursor, &record, &routing_id, &id)))
        s_reply (self, &record, routing_id, id, record.status? record.status: ZPER_STATUS_OK);
}

//  Drop the first size bytes of chunk.
static void
s_chunk_consume (zchunk_t *chunk, size_t size)
{
    size_t left = zchunk_size (chunk) - size;
    memmove (zchunk_data (chunk), zchunk_data (chunk) + size, left);
    zchunk_set (chunk, NULL, left);
}

//  The bytes of the first count entries of packed acks.
static size_t
s_acks_bytes (zchunk_t *acks, size_t count)
{
    const uint8_t *start = zchunk_data (acks), *cursor = start;
    for (size_t index = 0; index < count; index++) {
        uint32_t id_size;
        memcpy (&id_size, cursor, sizeof id_size);
        cursor += sizeof id_size + id_size + ZPER_WIRE_INT64_SIZE;
    }
    return (size_t) (cursor - start);
}

//  Cluster mode: reply to the committing writes the high-watermark hw
//  passed (and to refusals queued behind them), and give ack the entries
//  of the messages below it, in order; the rest keeps waiting.
static void
s_commit_release (worker_t *self, topic_t *topic, int64_t hw)
{
    record_t record;
    const uint8_t *routing_id, *id, *next, *cursor = NULL;
    const uint8_t *start = zchunk_data (topic->committing_records), *released = start;
    while ((next = s_record_next (topic->committing_records, cursor, &record, &routing_id, &id))) {
        if (!record.status && record.offset + record.count > hw)
            break;
        s_reply (self, &record, routing_id, id, record.status? record.status: ZPER_STATUS_OK);
        released = cursor = next;
    }
    s_chunk_consume (topic->committing_records, (size_t) (released - start));
    const int64_t *offsets = (const int64_t *) zchunk_data (topic->committing_ack_offsets);
    size_t count = 0, total = zchunk_size (topic->committing_ack_offsets) / sizeof (int64_t);
    while (count < total && offsets [count] < hw)
        count++;
    if (count) {
        size_t bytes = s_acks_bytes (topic->committing_acks, count);
        void *socket = zsock_resolve (self->notes);
        zmq_send (socket, topic->name, topic->name_size, ZMQ_SNDMORE);
        zmq_send (socket, zchunk_data (topic->committing_acks), bytes, 0);
        s_chunk_consume (topic->committing_acks, bytes);
        s_chunk_consume (topic->committing_ack_offsets, count * sizeof (int64_t));
    }
}

//  topic's records are settled (flushed, or failed): reply to them now,
//  or in cluster mode queue them behind the committing ones, whose
//  replies must leave first, and reply to what the high-watermark hw
//  already passed.
static void
s_records_settle (worker_t *self, topic_t *topic, int64_t hw)
{
    if (!self->broker->cluster)
        s_records_reply (self, topic->records);
    else {
        zchunk_extend (topic->committing_records, zchunk_data (topic->records),
                       zchunk_size (topic->records));
        s_commit_release (self, topic, hw);
    }
    zchunk_set (topic->records, NULL, 0);
}

//  Every write of topic whose messages are not all below end failed: it is
//  counted and owes 105. Returns the number of their messages at or past
//  end. Replies keep the order of the writes: while a stored write before
//  them is kept (written, awaiting the flush), the failed ones wait in
//  place for that flush; else every reply the records owe leaves now.
static uint64_t
s_records_fail_from (worker_t *self, topic_t *topic, int64_t end)
{
    record_t record;
    const uint8_t *routing_id, *id, *next, *cursor = NULL;
    uint8_t *start = zchunk_data (topic->records);
    uint64_t lost = 0;
    bool kept = false;
    while ((next = s_record_next (topic->records, cursor, &record, &routing_id, &id))) {
        if (!record.status && record.offset + record.count <= end)
            kept = true;
        else
        if (!record.status) {
            zper_stats_count (self->broker->stats, ZPER_COUNTER_STORAGE_ERROR);
            int64_t from = record.offset > end? record.offset: end;
            lost += (uint64_t) (record.offset + record.count - from);
            record.status = ZPER_STATUS_STORAGE_ERROR;
            memcpy (start + (cursor? cursor - start: 0), &record, sizeof record);
        }
        cursor = next;
    }
    if (!kept) {
        s_records_settle (self, topic, self->broker->cluster
                          ? zper_cluster_high_watermark (self->broker->cluster, topic->name): 0);
        topic->client_waiting = false;
    }
    return lost;
}

//  Drop the ack entries at or past position.
static void
s_acks_cut (topic_t *topic, int64_t position)
{
    const uint8_t *start = zchunk_data (topic->acks);
    const uint8_t *cursor = start, *end = start + zchunk_size (topic->acks);
    size_t kept = 0;
    while (cursor < end) {
        uint32_t id_size;
        memcpy (&id_size, cursor, sizeof id_size);
        if (zper_wire_get_int64 (cursor + sizeof id_size + id_size) >= position)
            break;
        cursor += sizeof id_size + id_size + ZPER_WIRE_INT64_SIZE;
        kept++;
    }
    zchunk_set (topic->acks, NULL, (size_t) (cursor - start));
    if (topic->ack_offsets)
        zchunk_set (topic->ack_offsets, NULL, kept * sizeof (int64_t));
}

//  The disk refused (an append, a write or a flush): the log discarded the
//  messages it could not keep (every undurable one, or under visibility
//  written every unwritten one), so the writes that held them fail with
//  105 and the topic goes on from the log's end. Each failed write is
//  counted: for modes 0 and 4 the counter is the only trace of a loss.
static void
s_topic_fail (worker_t *self, topic_t *topic)
{
    zper_bounds_t bounds;
    zper_partition_bounds (topic->partition, &bounds);
    int64_t end = bounds.end_offset;
    //  The log may end past what we knew: an append that wrote a full
    //  batch of its own messages before a later one failed keeps those
    uint64_t lost = topic->end_offset > end? (uint64_t) (topic->end_offset - end): 0;
    uint64_t lost_in_records = s_records_fail_from (self, topic, end);
    //  The other lost messages were mode 0 writes, one message each
    for (uint64_t index = lost_in_records; index < lost; index++)
        zper_stats_count (self->broker->stats, ZPER_COUNTER_STORAGE_ERROR);
    s_acks_cut (topic, bounds.end_position);
    topic->end_offset = end;
    topic->next_position = bounds.end_position;
    topic->durable_position = bounds.durable_position;
    if (topic->visible_offset > end)
        topic->visible_offset = end;
    uint64_t kept = (uint64_t) (end - bounds.durable_offset);
    topic->pending_messages = kept;
    topic->unwritten = false;
    if (kept == 0)
        topic->dirty_since_ms = 0;
}

static topic_t *
s_topic_new (worker_t *self, const char *name)
{
    zper_partition_t *partition = zper_log_partition (self->broker->log, name,
                                                      ZPER_PARTITION_DEFAULT, true);
    if (!partition) {
        //  max_topics reached (no folder was made), out of descriptors even
        //  after the log closed idle partitions (retry later), or the disk
        int error = errno;
        self->topic_refusal = error == EDQUOT? ZPER_STATUS_TOPIC_LIMIT:
                              error == EMFILE || error == ENFILE || error == ENOMEM?
                                  ZPER_STATUS_UNAVAILABLE: ZPER_STATUS_STORAGE_ERROR;
        int64_t now = zclock_mono ();
        if (now - self->topic_refusal_logged_ms >= ZPER_LOG_INTERVAL_MS) {
            self->topic_refusal_logged_ms = now;
            zsys_error ("front: cannot open topic %s: %s", name,
                        error == EDQUOT? "max_topics reached": strerror (error));
        }
        return NULL;
    }
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    topic_t *topic = (topic_t *) zmalloc (sizeof (topic_t));
    snprintf (topic->name, sizeof topic->name, "%s", name);
    topic->name_size = strlen (name);
    topic->partition = partition;
    //  Whatever the log holds at open was recovered: it is durable
    topic->visible_offset = topic->end_offset = bounds.durable_offset;
    topic->next_position = topic->durable_position = bounds.durable_position;
    topic->records = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
    topic->acks = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
    if (self->broker->cluster) {
        topic->epoch = -1;              //  loaded again under the lock at the first append
        topic->ack_offsets = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
        topic->committing_records = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
        topic->committing_acks = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
        topic->committing_ack_offsets = zchunk_new (NULL, ZPER_FRONT_RECORDS_BYTES);
    }
    zhashx_insert (self->topics, name, topic);
    return topic;
}

//  Cluster mode: fail every write topic holds (appended, flushed or
//  committing) with 110 NOT_LEADER and drop its acks: the worker lost the
//  partition's leadership, or it changed epoch under it, so whether those
//  messages stay in the log is not this worker's to say. The state is
//  loaded again at the next append (s_topic_reload).
static void
s_topic_forget (worker_t *self, topic_t *topic)
{
    zchunk_t *lists [] = { topic->committing_records, topic->records };
    for (size_t list = 0; list < 2; list++) {
        record_t record;
        const uint8_t *routing_id, *id, *next, *cursor = NULL;
        uint8_t *start = zchunk_data (lists [list]);
        while ((next = s_record_next (lists [list], cursor, &record, &routing_id, &id))) {
            if (!record.status) {
                record.status = ZPER_STATUS_NOT_LEADER;
                memcpy (start + (cursor? cursor - start: 0), &record, sizeof record);
                zper_stats_count (self->broker->stats, ZPER_COUNTER_NOT_LEADER);
            }
            cursor = next;
        }
        s_records_reply (self, lists [list]);
        zchunk_set (lists [list], NULL, 0);
    }
    zchunk_set (topic->acks, NULL, 0);
    zchunk_set (topic->ack_offsets, NULL, 0);
    zchunk_set (topic->committing_acks, NULL, 0);
    zchunk_set (topic->committing_ack_offsets, NULL, 0);
    topic->epoch = -1;
    topic->pending_messages = 0;
    topic->dirty_since_ms = 0;
    topic->client_waiting = false;
    topic->unwritten = false;
}

//  Cluster mode, under the writer lock: topic is led in epoch, not the
//  one its state was loaded in (or it is new): fail what it holds, and
//  take its end and positions from the log as the last writer left it.
static void
s_topic_reload (worker_t *self, topic_t *topic, int64_t epoch)
{
    s_topic_forget (self, topic);
    zper_bounds_t bounds;
    zper_partition_bounds (topic->partition, &bounds);
    topic->end_offset = bounds.end_offset;
    topic->next_position = bounds.end_position;
    topic->durable_position = bounds.durable_position;
    topic->visible_offset = bounds.durable_offset;
    topic->pending_messages = (uint64_t) (bounds.end_offset - bounds.durable_offset);
    if (topic->pending_messages)
        topic->dirty_since_ms = zclock_mono ();
    topic->epoch = epoch;
}

//  Cluster mode: take topic's writer lock for a write or a flush, in the
//  epoch its state was loaded in. Returns 0 with the lock held; else -1,
//  having failed what topic holds.
static int
s_topic_lead (worker_t *self, topic_t *topic)
{
    int64_t epoch;
    uint8_t status = zper_cluster_lead_begin (self->broker->cluster, topic->name, false, &epoch);
    if (status == 0 && epoch == topic->epoch)
        return 0;
    if (status == 0)
        zper_cluster_lead_end (self->broker->cluster, topic->name);
    s_topic_forget (self, topic);
    return -1;
}

//  The topic an entry names, as a string.
static void
s_entry_topic_name (const entry_t *entry, char name [ZPER_TOPIC_MAX + 1])
{
    memcpy (name, entry->topic, entry->head.topic_size);
    name [entry->head.topic_size] = 0;
}

//  The loaded topic of an entry, or NULL; consecutive entries mostly
//  share one.
static topic_t *
s_topic_find (worker_t *self, const entry_t *entry)
{
    topic_t *topic = self->last_topic;
    if (topic && topic->name_size == entry->head.topic_size
    &&  memcmp (topic->name, entry->topic, topic->name_size) == 0)
        return topic;
    char name [ZPER_TOPIC_MAX + 1];
    s_entry_topic_name (entry, name);
    topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (topic)
        self->last_topic = topic;
    return topic;
}

//  The topic of an entry, opened (created) on first use; NULL if the log
//  cannot open it.
static topic_t *
s_topic_require (worker_t *self, const entry_t *entry)
{
    topic_t *topic = s_topic_find (self, entry);
    if (!topic) {
        char name [ZPER_TOPIC_MAX + 1];
        s_entry_topic_name (entry, name);
        //  In cluster mode only a partition this node leads gets a folder
        int64_t epoch;
        uint8_t status = self->broker->cluster
                       ? zper_cluster_lead_begin (self->broker->cluster, name, true, &epoch): 0;
        if (status) {
            self->topic_refusal = status;
            return NULL;
        }
        if (self->broker->cluster)
            zper_cluster_lead_end (self->broker->cluster, name);
        topic = s_topic_new (self, name);
        if (topic)
            self->last_topic = topic;
    }
    return topic;
}

//  Count a refused write under its status.
static void
s_count_status (worker_t *self, uint8_t status)
{
    zper_stats_count (self->broker->stats,
                      status == ZPER_STATUS_MESSAGE_TOO_LARGE? ZPER_COUNTER_TOO_LARGE:
                      status == ZPER_STATUS_INVALID_ARGUMENT? ZPER_COUNTER_BAD_WRITE:
                      status == ZPER_STATUS_SLOW_CLIENT? ZPER_COUNTER_SLOW_CLIENT:
                      status == ZPER_STATUS_FORBIDDEN? ZPER_COUNTER_FORBIDDEN:
                      status == ZPER_STATUS_TOPIC_LIMIT || status == ZPER_STATUS_UNAVAILABLE?
                          ZPER_COUNTER_TOPIC_REFUSED:
                      status == ZPER_STATUS_NOT_LEADER? ZPER_COUNTER_NOT_LEADER:
                      status == ZPER_STATUS_NOT_ENOUGH_REPLICAS? ZPER_COUNTER_NOT_ENOUGH_REPLICAS:
                          ZPER_COUNTER_STORAGE_ERROR);
}

//  Map an append's errno to a reply status and count it (for the first
//  write of the append); the disk refusing it fails the topic.
static uint8_t
s_append_status (worker_t *self, topic_t *topic, int error)
{
    uint8_t status = error == EMSGSIZE? ZPER_STATUS_MESSAGE_TOO_LARGE:
                     error == EPROTO || error == EINVAL? ZPER_STATUS_INVALID_ARGUMENT:
                                                         ZPER_STATUS_STORAGE_ERROR;
    if (status == ZPER_STATUS_STORAGE_ERROR) {
        zsys_error ("front: append to topic %s failed: %s", topic->name, strerror (error));
        s_topic_fail (self, topic);
    }
    s_count_status (self, status);
    return status;
}

//  The id a reply names: a batch's or a refused write's travels with its
//  entry, an accepted message's is its first frame, in its body.
static const uint8_t *
s_entry_id (const entry_t *entry, uint32_t *id_size)
{
    *id_size = entry->head.id_size;
    if (!entry->head.data_size || s_mode_batch (entry->head.mode))
        return entry->id;
    const uint8_t *cursor = entry->body;
    zper_frame_t frame;
    bool more;
    int rc = zper_zmtp_decode (&cursor, cursor + entry->head.data_size, &frame, &more);
    assert (rc == 0);                   //  the front encoded it
    *id_size = (uint32_t) frame.size;
    return (const uint8_t *) frame.data;
}

//  Queue what topic's next flush owes a write of mode 1-4.
static void
s_record_add (topic_t *topic, const entry_t *entry, int64_t offset, size_t count,
              uint8_t status)
{
    record_t record = { .offset = offset, .count = (int32_t) count, .mode = entry->head.mode,
                        .flags = entry->head.flags,
                        .routing_id_size = entry->head.routing_id_size, .status = status };
    const uint8_t *id = s_entry_id (entry, &record.id_size);
    zchunk_extend (topic->records, &record, sizeof record);
    zchunk_extend (topic->records, entry->routing_id, record.routing_id_size);
    zchunk_extend (topic->records, id, record.id_size);
    topic->client_waiting |= s_mode_replies (entry->head.mode);
}

//  Answer a write that is not stored, with status: in order with the
//  replies topic owes (when the topic is known), else at once.
static void
s_refuse (worker_t *self, topic_t *topic, const entry_t *entry, uint8_t status)
{
    if (!s_mode_replies (entry->head.mode))
        return;
    if (topic) {
        s_record_add (topic, entry, -1, 0, status);
        return;
    }
    record_t record = { .mode = entry->head.mode, .flags = entry->head.flags,
                        .routing_id_size = entry->head.routing_id_size };
    const uint8_t *id = s_entry_id (entry, &record.id_size);
    s_reply (self, &record, entry->routing_id, id, status);
}

//  True when anyone subscribed to the topic's acks (cached per topic).
static bool
s_acks_wanted (worker_t *self, topic_t *topic)
{
    return zper_subscriptions_wanted (self->broker->acks_wanted, topic->name, &topic->acks_wanted);
}

//  Keep what the flush owes a stored write: a record (modes 1-4: a reply,
//  or a batch to count), an ack entry per message when acks are wanted.
static void
s_owe (topic_t *topic, const entry_t *entry, int64_t offset, size_t count, int64_t position,
       bool acks)
{
    bool batch = s_mode_batch (entry->head.mode);
    if (entry->head.mode != ZPER_MODE_NONE)
        s_record_add (topic, entry, offset, count, 0);
    if (!acks)
        return;
    //  A batch's messages are walked to find each one's first frame
    const uint8_t *cursor = entry->body, *end = entry->body + entry->head.data_size;
    int64_t message_offset = offset;
    while (cursor < end) {
        if (topic->ack_offsets)         //  cluster mode: acks wait for the high-watermark
            zchunk_extend (topic->ack_offsets, &message_offset, sizeof message_offset);
        message_offset++;
        const uint8_t *start = cursor;
        zper_frame_t frame;
        bool more;
        int rc = zper_zmtp_decode (&cursor, end, &frame, &more);
        assert (rc == 0);               //  the log validated it
        uint32_t size = (uint32_t) frame.size;
        uint8_t wire_position [ZPER_WIRE_INT64_SIZE];
        zper_wire_put_int64 (wire_position, position);
        zchunk_extend (topic->acks, &size, sizeof size);
        zchunk_extend (topic->acks, frame.data, size);
        zchunk_extend (topic->acks, wire_position, sizeof wire_position);
        while (more) {
            rc = zper_zmtp_decode (&cursor, end, &frame, &more);
            assert (rc == 0);
        }
        position += cursor - start;
        if (!batch)
            break;
    }
}

//  A run: consecutive accepted messages (modes 0-2) of one topic, one
//  contiguous stretch of the data frame, appended with one call.
typedef struct {
    topic_t *topic;
    const uint8_t *entries;             //  first entry of the run
    size_t entry_count;
    bool replies;                       //  an entry of it is in mode 1 or 2
    const uint8_t *body;
    size_t size;
} run_t;

//  Locate the parts of the entry at cursor; body is where its data starts.
//  Returns the next entry.
static const uint8_t *
s_entry_read (const uint8_t *cursor, const uint8_t *body, entry_t *entry)
{
    memcpy (&entry->head, cursor, sizeof entry->head);
    entry->routing_id = cursor + sizeof entry->head;
    entry->topic = entry->routing_id + entry->head.routing_id_size;
    entry->id = entry->topic + entry->head.topic_size;
    entry->body = body;
    return cursor + zper_front_entry_size (&entry->head);
}

//  Append messages (a run, or one batch) to topic, the writer lock held
//  in cluster mode. Returns 0, or the status every write of them gets.
static uint8_t
s_append_locked (worker_t *self, topic_t *topic, const uint8_t *body, size_t size, int64_t now,
                 int64_t *offset, size_t *count)
{
    *offset = zper_partition_append_encoded (topic->partition, body, size, now, count);
    if (*offset < 0)
        return s_append_status (self, topic, errno);
    topic->end_offset = *offset + (int64_t) *count;
    topic->pending_messages += *count;
    topic->unwritten = true;
    self->group_messages += *count;
    if (!topic->dirty_since_ms)
        topic->dirty_since_ms = zclock_mono ();
    return 0;
}

//  Append messages to topic: in cluster mode only while this node leads
//  the partition with enough replicas in sync (else 110 or 111, counted
//  for the first write as s_append_locked counts its refusals).
static uint8_t
s_append (worker_t *self, topic_t *topic, const uint8_t *body, size_t size, int64_t now,
          int64_t *offset, size_t *count)
{
    zper_cluster_t *cluster = self->broker->cluster;
    if (!cluster)
        return s_append_locked (self, topic, body, size, now, offset, count);
    int64_t epoch;
    uint8_t status = zper_cluster_lead_begin (cluster, topic->name, true, &epoch);
    if (status) {
        s_count_status (self, status);
        return status;
    }
    if (epoch != topic->epoch)
        s_topic_reload (self, topic, epoch);
    status = s_append_locked (self, topic, body, size, now, offset, count);
    zper_cluster_lead_end (cluster, topic->name);
    return status;
}

//  Append a run and keep what its writes are owed. Without replies or
//  acks to build, its entries are not even looked at again.
static void
s_run_append (worker_t *self, run_t *run, int64_t now)
{
    if (!run->entry_count)
        return;
    topic_t *topic = run->topic;
    int64_t offset;
    size_t count;
    uint8_t status = s_append (self, topic, run->body, run->size, now, &offset, &count);
    bool acks = !status && s_acks_wanted (self, topic);
    if (status || run->replies || acks) {
        assert (status || count == run->entry_count);     //  the front encoded one each
        const uint8_t *cursor = run->entries, *body = run->body;
        for (size_t index = 0; index < run->entry_count; index++) {
            entry_t entry;
            cursor = s_entry_read (cursor, body, &entry);
            body += entry.head.data_size;
            if (status) {
                if (index)              //  s_append counted the first write
                    s_count_status (self, status);
                s_refuse (self, topic, &entry, status);
                continue;
            }
            if (entry.head.mode != ZPER_MODE_NONE || acks)
                s_owe (topic, &entry, offset + (int64_t) index, 1, topic->next_position, acks);
            topic->next_position += (int64_t) entry.head.data_size;
        }
    }
    else
        topic->next_position += (int64_t) run->size;
    memset (run, 0, sizeof *run);
}

//  Append one batch (modes 3, 4) and keep what it is owed.
static void
s_batch_append (worker_t *self, topic_t *topic, const entry_t *entry, int64_t now)
{
    int64_t offset;
    size_t count;
    uint8_t status = s_append (self, topic, entry->body, entry->head.data_size, now, &offset,
                               &count);
    if (status) {
        s_refuse (self, topic, entry, status);
        return;
    }
    s_owe (topic, entry, offset, count, topic->next_position, s_acks_wanted (self, topic));
    topic->next_position += (int64_t) entry->head.data_size;
}

//  Handle one write that does not join a run: refused, a batch, or one
//  whose topic (NULL) the log cannot open.
static void
s_entry_alone (worker_t *self, topic_t *topic, const entry_t *entry, int64_t now)
{
    uint8_t status = entry->head.status;
    if (!status && !topic)
        status = self->topic_refusal;           //  the topic cannot be opened
    if (status) {
        s_count_status (self, status);
        s_refuse (self, topic, entry, status);
    }
    else
        s_batch_append (self, topic, entry, now);
}

//  Take one hand-off [entries][data] (zper_front.h): one timestamp for
//  all of it, one append per run of messages of one topic.
static void
s_handoff (worker_t *self, zmq_msg_t *entries, zmq_msg_t *data)
{
    int64_t now = zclock_time ();
    const uint8_t *cursor = (const uint8_t *) zmq_msg_data (entries);
    const uint8_t *end = cursor + zmq_msg_size (entries);
    const uint8_t *body = (const uint8_t *) zmq_msg_data (data);
    run_t run = { NULL };
    if (end - cursor >= (ptrdiff_t) sizeof (zper_front_entry_t)) {
        int64_t taken = zper_hops_now ();
        int64_t received = zper_hops_widen (((const zper_front_entry_t *) cursor)->received_us,
                                            taken);
        zper_hops_record_at (ZPER_HOP_FRONT_TO_WORKER, received, taken);
        self->group_taken_us = self->group_taken_us? self->group_taken_us: taken;
        if (received && (!self->group_received_us || received < self->group_received_us))
            self->group_received_us = received;
    }
    while (cursor < end) {
        entry_t entry;
        const uint8_t *next = s_entry_read (cursor, body, &entry);
        body += entry.head.data_size;
        //  A refused write never opens (creates) its topic
        topic_t *topic = entry.head.status? s_topic_find (self, &entry)
                                          : s_topic_require (self, &entry);
        bool joins_run = topic && !entry.head.status && !s_mode_batch (entry.head.mode);
        if (joins_run && topic == run.topic) {
            run.entry_count++;
            run.size += entry.head.data_size;
            run.replies |= entry.head.mode != ZPER_MODE_NONE;
        }
        else {
            s_run_append (self, &run, now);
            if (joins_run)
                run = (run_t) { topic, cursor, 1, entry.head.mode != ZPER_MODE_NONE,
                                entry.body, entry.head.data_size };
            else
                s_entry_alone (self, topic, &entry, now);
        }
        cursor = next;
    }
    s_run_append (self, &run, now);
}

//  Tell the readers, on this worker's bus, that topic is visible up to
//  visible (when that moves it); give ack the packed entries of the
//  messages that just became durable, when there are any.
static void
s_note_send (worker_t *self, topic_t *topic, int64_t visible, zchunk_t *acks)
{
    if (visible > topic->visible_offset) {
        zper_visible_note_t note = { .from_offset = topic->visible_offset,
                                     .visible_offset = visible,
                                     .visible_position = topic->next_position };
        memcpy (note.topic, topic->name, topic->name_size + 1);
        zper_hops_record (ZPER_HOP_WORKER_TO_BUS, self->group_taken_us);
        zper_broker_note_send_stamped (self->bus, &note, self->group_received_us);
        topic->visible_offset = visible;
    }
    if (acks && zchunk_size (acks)) {
        void *socket = zsock_resolve (self->notes);
        zmq_send (socket, topic->name, topic->name_size, ZMQ_SNDMORE);
        zmq_send (socket, zchunk_data (acks), zchunk_size (acks), 0);
    }
}

//  Visibility written: write what topic appended (no sync) and announce
//  it, so readers see it now rather than after the next fdatasync.
//  Returns 0, or -1 when the write failed (the topic failed its writers).
static int
s_topic_write_locked (worker_t *self, topic_t *topic)
{
    int64_t written = zper_partition_write (topic->partition);
    if (written < 0) {
        zsys_error ("front: write of topic %s failed: %s", topic->name, strerror (errno));
        s_topic_fail (self, topic);
        return -1;
    }
    topic->unwritten = false;
    if (written > topic->visible_offset)
        s_note_send (self, topic, written, NULL);
    return 0;
}

//  In cluster mode, under the writer lock.
static int
s_topic_write (worker_t *self, topic_t *topic)
{
    if (!self->broker->cluster)
        return s_topic_write_locked (self, topic);
    if (s_topic_lead (self, topic))
        return -1;
    int rc = s_topic_write_locked (self, topic);
    zper_cluster_lead_end (self->broker->cluster, topic->name);
    return rc;
}

//  Make topic durable, then reply to its waiting clients and tell ack
//  (in cluster mode: once the high-watermark passes them). Under
//  visibility written, readers are told before the fdatasync.
static void
s_topic_flush_locked (worker_t *self, topic_t *topic)
{
    zper_cluster_t *cluster = self->broker->cluster;
    if (topic->unwritten && self->broker->config->visibility == ZPER_VISIBILITY_WRITTEN
    &&  s_topic_write_locked (self, topic))
        return;
    int64_t durable = zper_partition_flush (topic->partition);
    if (durable < 0) {
        zsys_error ("front: flush of topic %s failed: %s", topic->name, strerror (errno));
        s_topic_fail (self, topic);
        return;
    }
    assert (durable == topic->end_offset);  //  we are its only writer
    if (topic->pending_messages) {      //  not only refusals
        zper_stats_written (self->broker->stats, topic->name, topic->pending_messages,
                            (uint64_t) (topic->next_position - topic->durable_position));
        //  Readers stop at the high-watermark anyway (the visibility limit)
        s_note_send (self, topic, durable, cluster? NULL: topic->acks);
    }
    if (cluster) {
        zchunk_extend (topic->committing_acks, zchunk_data (topic->acks), zchunk_size (topic->acks));
        zchunk_extend (topic->committing_ack_offsets, zchunk_data (topic->ack_offsets),
                       zchunk_size (topic->ack_offsets));
        zchunk_set (topic->ack_offsets, NULL, 0);
    }
    s_records_settle (self, topic, cluster? zper_cluster_high_watermark (cluster, topic->name): 0);
    zchunk_set (topic->acks, NULL, 0);
    topic->durable_position = topic->next_position;
    topic->pending_messages = 0;
    topic->dirty_since_ms = 0;
    topic->client_waiting = false;
    topic->unwritten = false;
}

static void
s_topic_flush (worker_t *self, topic_t *topic)
{
    if (!self->broker->cluster)
        s_topic_flush_locked (self, topic);
    else
    if (s_topic_lead (self, topic) == 0) {
        s_topic_flush_locked (self, topic);
        zper_cluster_lead_end (self->broker->cluster, topic->name);
    }
}

//  Cluster mode: a partition's high-watermark moved, [topic][hw:int64]:
//  release what its committing writes were waiting for. The table's
//  high-watermark is read under the lock, in the epoch the worker loaded:
//  a move announced for an older epoch must not release this one's.
static void
s_commit_message (worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->commit);
    zframe_t *name = msg? zmsg_first (msg): NULL;
    if (name && zmsg_size (msg) == 2 && zframe_size (name) <= ZPER_TOPIC_MAX) {
        char topic_name [ZPER_TOPIC_MAX + 1];
        memcpy (topic_name, zframe_data (name), zframe_size (name));
        topic_name [zframe_size (name)] = 0;
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, topic_name);
        if (topic && topic->epoch >= 0
        &&  (zchunk_size (topic->committing_records) || zchunk_size (topic->committing_acks))
        &&  s_topic_lead (self, topic) == 0) {
            s_commit_release (self, topic,
                              zper_cluster_high_watermark (self->broker->cluster, topic->name));
            zper_cluster_lead_end (self->broker->cluster, topic->name);
        }
    }
    zmsg_destroy (&msg);
}

//  Say PONG when a heartbeat interval passed since the last one: called
//  between bounded steps of work, so a busy worker is seen alive.
static void
s_beat (worker_t *self)
{
    int64_t now = zclock_mono ();
    if (now - self->beat_ms >= ZPER_HEARTBEAT_INTERVAL_MS) {
        zstr_send (self->pipe, "PONG");
        self->beat_ms = now;
    }
}

//  Bytes appended to the worker's topics and not yet fdatasync'd.
static int64_t
s_unsynced_bytes (worker_t *self)
{
    int64_t unsynced = 0;
    for (topic_t *topic = (topic_t *) zhashx_first (self->topics); topic;
         topic = (topic_t *) zhashx_next (self->topics))
        unsynced += topic->next_position - topic->durable_position;
    return unsynced;
}

//  Flush every topic that must be: a client waits, the policy is due, the
//  worker holds front.turn_bytes unsynced (so no fdatasync, nor the
//  fsync of a segment roll, ever covers more than about two turns), or
//  (force) the worker is stopping; under visibility written, write the
//  other topics that appended. Returns the poll timeout until the next
//  flush_interval deadline (0 when a failed flush left writers waiting),
//  or -1 when nothing is left unflushed.
static int
s_flush_due (worker_t *self, bool force)
{
    int64_t now = zclock_mono ();
    int64_t wall_now = zclock_time ();
    int64_t interval = self->broker->config->flush_interval_ms;
    bool written_visible = self->broker->config->visibility == ZPER_VISIBILITY_WRITTEN;
    bool stopping = force;              //  no PONG then: the pipe waits for our end
    force |= s_unsynced_bytes (self) >= self->broker->config->front_turn_bytes;
    int64_t next_wait = -1;
    for (topic_t *topic = (topic_t *) zhashx_first (self->topics); topic;
         topic = (topic_t *) zhashx_next (self->topics)) {
        if (!topic->dirty_since_ms && !topic->client_waiting)
            continue;
        //  A flush also bounds its note: one ack entry per message at most
        if (force || topic->client_waiting || now - topic->dirty_since_ms >= interval
        ||  topic->pending_messages >= ZPER_FRONT_GROUP_MESSAGES_MAX
        ||  zper_partition_flush_due (topic->partition, wall_now)) {
            s_topic_flush (self, topic);
            if (!stopping)
                s_beat (self);
            //  Its write failed but kept what was written before: those
            //  writers (and the failed ones queued behind them) wait for
            //  the next flush, at once rather than at the next PING
            if (topic->client_waiting)
                next_wait = 0;
        }
        else {
            if (written_visible && topic->unwritten)
                s_topic_write (self, topic);
            //  As a wait, not a deadline: flush_interval may be INT64_MAX
            int64_t wait = interval - (now - topic->dirty_since_ms);
            if (topic->dirty_since_ms && (next_wait < 0 || wait < next_wait))
                next_wait = wait;
        }
    }
    return next_wait < 0? -1: (int) (next_wait < INT_MAX? next_wait: INT_MAX);
}

//  Handle one message from the pipe: a hand-off (two frames) or a
//  command (one). Returns true on $TERM.
static bool
s_pipe_message (worker_t *self)
{
    void *pipe = zsock_resolve (self->pipe);
    zmq_msg_t first, second;
    zmq_msg_init (&first);
    zmq_msg_init (&second);
    bool terminate = zmq_msg_recv (&first, pipe, 0) == -1;
    if (!terminate && zmq_msg_more (&first)) {
        terminate = zmq_msg_recv (&second, pipe, 0) == -1;
        if (!terminate) {
            s_handoff (self, &first, &second);
            //  Refused writes' ids count: they are replies to build
            size_t size = zmq_msg_size (&first) + zmq_msg_size (&second);
            self->group_bytes += size;
            atomic_fetch_sub (self->queued_bytes, size);
        }
    }
    else
    if (!terminate) {
        char command [ZPER_FRONT_COMMAND_MAX + 1];
        size_t size = zmq_msg_size (&first);
        size = size < ZPER_FRONT_COMMAND_MAX? size: ZPER_FRONT_COMMAND_MAX;
        memcpy (command, zmq_msg_data (&first), size);
        command [size] = 0;
        terminate = zper_broker_pipe_command (self->pipe, command);
    }
    zmq_msg_close (&first);
    zmq_msg_close (&second);
    return terminate;
}

//  Take one group of hand-offs: what is queued, until the group is large
//  enough in messages, bytes or time, for its flush and the next PING to
//  come soon. Returns true on $TERM.
static bool
s_group (worker_t *self)
{
    const zper_config_t *config = self->broker->config;
    int64_t deadline = zclock_mono () + config->front_turn_ms;
    self->group_messages = 0;
    self->group_bytes = 0;
    bool terminated = false;
    for (int drained = 0; drained < ZPER_FRONT_DRAIN_MAX && !terminated
                       && self->group_messages < ZPER_FRONT_GROUP_MESSAGES_MAX
                       && self->group_bytes < (size_t) config->front_turn_bytes
                       && zclock_mono () < deadline
                       && (zsock_events (self->pipe) & ZMQ_POLLIN); drained++) {
        terminated = s_pipe_message (self);
        if (!terminated)
            s_beat (self);
    }
    return terminated;
}

void
zper_front_worker_actor (zsock_t *pipe, void *args)
{
    zper_front_worker_args_t *arguments = (zper_front_worker_args_t *) args;
    worker_t self = { .broker = arguments->broker, .index = arguments->index, .pipe = pipe,
                      .queued_bytes = &arguments->queued_bytes, .topics = zhashx_new () };
    zhashx_set_destructor (self.topics, s_topic_destroy);
    self.replies = zsock_new_push (">" ZPER_INPROC_FRONT_REPLIES);
    self.reply_pack = zchunk_new (NULL, ZPER_FRONT_REPLY_PACK_BYTES);
    self.notes = zsock_new_push (">" ZPER_INPROC_NOTES);
    //  The ack actor bound its endpoint first and would have failed the
    //  broker's start if another broker ran in this process
    self.bus = zper_broker_bus_publisher ((int) self.index);
    assert (self.bus);
    //  No limit on replies: the front thread may be blocked handing us a
    //  write while we hand it replies, and a limit would deadlock the two.
    //  Replies are bounded anyway, by the writes in flight.
    zsock_set_sndhwm (self.replies, 0);
    //  Replies and notes of the last flush must outlive this thread
    zsock_set_linger (self.replies, ZPER_SHUTDOWN_LINGER_MS);
    zsock_set_linger (self.notes, ZPER_SHUTDOWN_LINGER_MS);
    zsock_set_linger (self.bus, ZPER_SHUTDOWN_LINGER_MS);
    if (self.broker->cluster) {
        self.commit = zsock_new (ZMQ_PULL);
        int rc = zsock_bind (self.commit, ZPER_INPROC_COMMIT, (int) self.index);
        assert (rc == 0);               //  as the bus: the ack actor's bind went first
        (void) rc;
    }
    zsock_signal (pipe, 0);

    bool terminated = false;
    int timeout = -1;
    while (!terminated) {
        zmq_pollitem_t items [] = { { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
                                    { self.commit? zsock_resolve (self.commit): NULL, 0,
                                      ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, self.commit? 2: 1, timeout) == -1 && zmq_errno () != EINTR)
            break;
        for (int drained = 0; self.commit && drained < ZPER_FRONT_DRAIN_MAX
                           && (zsock_events (self.commit) & ZMQ_POLLIN); drained++)
            s_commit_message (&self);
        terminated = s_group (&self);
        timeout = s_flush_due (&self, terminated);
        s_pack_send (&self);
        self.group_taken_us = self.group_received_us = 0;
        //  A PING waits behind every write queued before it; a worker that
        //  keeps finishing (bounded) turns is alive, so it says so itself.
        if (!terminated)
            s_beat (&self);
    }
    zhashx_destroy (&self.topics);
    zchunk_destroy (&self.reply_pack);
    zsock_destroy (&self.replies);
    zsock_destroy (&self.notes);
    zsock_destroy (&self.bus);
    zsock_destroy (&self.commit);
}
