/*  =========================================================================
    zper_rear_command - what each reader command answers

    Stateless: every function here turns one request into one reply,
    reading the log and nothing else; what outlives a request (streams,
    long polls) is the worker's business (zper_rear_worker.c). The one
    thing to know: arguments are checked for count and exact size before
    anything is read, and every failure has a status (docs/protocol.md 4),
    so a malformed request can never leave a reader waiting for an answer
    that does not come.

    The cluster commands (METADATA, CREATE, REASSIGN, CLUSTER) ask the
    node's cluster table (broker->cluster) instead of the log, and answer
    113 on a single node; CREATE and REASSIGN hold this worker for a few
    etcd round trips, which an admin command may.

    The consumer group commands (HEARTBEAT, LEAVE, COMMIT, COMMITTED,
    GROUPS) check their frames here and hand the rest to broker->groups,
    which keeps what outlives a request (members, assignments).

    Legacy offsets are byte positions (FETCH, OFFSET); native ones are
    logical offsets (READ, BOUNDS, TIMEOFFSET).

    Permissions (security on) are checked here, once the topic a command
    names is known and before the log is touched: so a refused reader
    learns nothing of the topic, not even whether it exists.

    Also here, as stateless as the commands: what the rear thread, its
    workers and the relay share to follow a topic (read on from a position,
    send a stored message lent from the log, pace the retries of a reader
    whose queue is full).
    ========================================================================= */

#include "zper_rear.h"
#include "zper_partition.h"
#include "zper_wire.h"
#include <assert.h>
#include <errno.h>

#define READ_RECORD_HEADER  20          //  offset:8 timestamp:8 size:4

static zper_rear_outcome_t
s_status (zper_rear_reply_t *reply, uint8_t status)
{
    zper_wire_add_status (reply->frames, status);
    return ZPER_REAR_ANSWERED;
}

//  The partition of a topic, or NULL: errno ENOENT if the topic has none
//  yet (an unknown topic reads as empty), any other if it exists but
//  cannot be opened now (s_unavailable).
static zper_partition_t *
s_partition (zper_broker_t *broker, const char *topic)
{
    return zper_log_partition (broker->log, topic, ZPER_PARTITION_DEFAULT, false);
}

//  True, with the reply's status 107 UNAVAILABLE, when s_partition just
//  gave NULL for a topic that exists but cannot be opened now (out of
//  descriptors even after the log closed idle partitions): its data must
//  never read as an unknown topic's empty answer.
static bool
s_unavailable (zper_partition_t *partition, zper_rear_reply_t *reply)
{
    if (partition || errno == ENOENT)
        return false;
    zper_wire_add_status (reply->frames, ZPER_STATUS_UNAVAILABLE);
    return true;
}

//  The topic of a request: the frame after the command (native), or the
//  routing id (legacy). Returns 0, or -1 if there is none or it is invalid.
static int
s_topic_frame (zframe_t *frame, char *topic)
{
    if (!frame || zframe_size (frame) == 0 || zframe_size (frame) > ZPER_TOPIC_NAME_MAX)
        return -1;
    memcpy (topic, zframe_data (frame), zframe_size (frame));
    topic [zframe_size (frame)] = 0;
    //  A NUL inside the frame would cut the name short: "te\0t" must not read topic "te".
    if (strlen (topic) != zframe_size (frame))
        return -1;
    return zper_log_name_valid (topic)? 0: -1;
}

static int
s_topic_identity (zframe_t *routing_id, char *topic)
{
    zper_identity_t identity;
    if (zper_identity_parse (zframe_data (routing_id), zframe_size (routing_id), &identity, NULL))
        return -1;
    strcpy (topic, identity.topic);
    return 0;
}

//  A view's messages as one FETCH super frame: lent when they lie end to
//  end in one mapping, copied when record headers separate them.
static void
s_super_frame (zper_view_t *view, zper_rear_reply_t *reply)
{
    zper_message_t message;
    const uint8_t *start = NULL, *end = NULL;
    bool contiguous = true;
    while (zper_view_next (view, &message)) {
        if (!start)
            start = message.data;
        else
        if (message.data != end)
            contiguous = false;
        end = message.data + message.size;
    }
    if (!start) {
        zmsg_addmem (reply->frames, NULL, 0);
        return;
    }
    if (contiguous && zper_view_lend (view, start, (size_t) (end - start), &reply->lent) == 0) {
        reply->has_lent = true;
        return;
    }
    zframe_t *frame = zframe_new (NULL, zper_view_bytes (view));
    uint8_t *target = zframe_data (frame);
    zper_view_rewind (view);
    while (zper_view_next (view, &message)) {
        memcpy (target, message.data, message.size);
        target += message.size;
    }
    zmsg_append (reply->frames, &frame);
}

//  One frame of a stored message as a zmq_msg_t: copied when libzmq would
//  store it inline anyway, else lent from the view's mapping.
static void
s_frame_msg (zper_view_t *view, const zper_frame_t *frame, zmq_msg_t *msg)
{
    if (frame->size > ZPER_REAR_COPY_FRAME_MAX
    &&  zper_view_lend (view, frame->data, frame->size, msg) == 0)
        return;
    zmq_msg_init_size (msg, frame->size);
    if (frame->size)
        memcpy (zmq_msg_data (msg), frame->data, frame->size);
}

void
zper_rear_send_frames (void *socket, zper_view_t *view, const zper_message_t *message,
                       zper_output_t *output)
{
    const uint8_t *cursor = message->data;
    for (size_t index = 0; index < message->frame_count; index++) {
        zper_frame_t frame = zper_rear_frame_next (message, &cursor);
        zmq_msg_t msg;
        s_frame_msg (view, &frame, &msg);
        bool last = index + 1 == message->frame_count;
        //  The last frame carries the charge: libzmq releases it last
        if (last && output)
            zper_output_charge_batched (output, &msg, message->size, message->frame_count + 1);
        if (zmq_msg_send (&msg, socket, last? 0: ZMQ_SNDMORE) == -1)
            zmq_msg_close (&msg);
    }
}

int
zper_rear_send_message (void *socket, const void *prefix, size_t prefix_size,
                        zper_view_t *view, const zper_message_t *message, zper_output_t *output)
{
    if (output && zper_output_full (output)) {
        errno = EAGAIN;                 //  zmq_errno () is errno
        return -1;
    }
    if (zmq_send (socket, prefix, prefix_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    //  Once the prefix is queued, the rest of the message is too
    zper_rear_send_frames (socket, view, message, output);
    return 0;
}

zper_view_t *
zper_rear_follow (zper_partition_t *partition, int64_t *offset, size_t max_bytes)
{
    zper_view_t *view = partition? zper_partition_read (partition, *offset, max_bytes): NULL;
    if (!view && partition && errno == ERANGE) {
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        if (*offset < bounds.start_offset) {
            *offset = bounds.start_offset;
            view = zper_partition_read (partition, *offset, max_bytes);
        }
    }
    if (view && zper_view_count (view) == 0)
        zper_view_destroy (&view);
    return view;
}

int64_t
zper_rear_retry_schedule (zper_rear_retry_t *retry, bool progress, int min_ms, int max_ms)
{
    retry->wait_ms = progress || retry->wait_ms == 0? min_ms
                   : retry->wait_ms * 2 < max_ms? retry->wait_ms * 2
                   : max_ms;
    retry->at_ms = zclock_mono () + retry->wait_ms;
    return retry->at_ms;
}

//  The status for a read the log refused.
static uint8_t
s_read_status (int error)
{
    return error == ERANGE || error == EINVAL? ZPER_STATUS_INVALID_OFFSET:
           error == EMFILE || error == ENFILE || error == ENOMEM? ZPER_STATUS_UNAVAILABLE:
                                                                ZPER_STATUS_INTERNAL_ERROR;
}

//  The logical offset of legacy position (a message boundary, or the
//  visible end). Bounds read after an empty read would not do: the end
//  may have moved on in between, and a stream started there would skip
//  what came. So the end is matched within one snapshot of the bounds,
//  and any other position is read. Returns 0, or -1 with errno as
//  zper_partition_read_position.
static int
s_offset_at (zper_partition_t *partition, int64_t position, int64_t *offset)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        if (position == bounds.visible_position) {
            *offset = bounds.visible_offset;
            return 0;
        }
        zper_view_t *view = zper_partition_read_position (partition, position, 1);
        if (!view)
            return -1;
        zper_message_t message;
        bool found = zper_view_next (view, &message);
        zper_view_destroy (&view);
        if (found) {
            *offset = message.offset;
            return 0;
        }
        //  Empty: the end reached position after the snapshot; ask again
    }
    errno = ERANGE;
    return -1;
}

//  The most a READ or FETCH reply holds: what the reader asked, at most its
//  output budget (a larger reply would only wait in the rear), and still
//  one whole message however large (the log's rule).
static size_t
s_reply_bytes (zper_broker_t *broker, int64_t max_bytes)
{
    int64_t budget = broker->config->rear_output_budget;
    return (size_t) (max_bytes < budget? max_bytes: budget);
}

//  FETCH [position:int64][max_bytes:int64]; max_bytes -1 streams.
static zper_rear_outcome_t
s_fetch (zper_broker_t *broker, const char *topic, zmsg_t *request, bool is_req,
         zper_rear_reply_t *reply, zper_rear_continuation_t *continuation)
{
    int64_t position, max_bytes;
    if (zmsg_size (request) != 3
    ||  zper_wire_frame_int64 (zmsg_next (request), &position)
    ||  zper_wire_frame_int64 (zmsg_next (request), &max_bytes)
    ||  max_bytes < -1 || (max_bytes == -1 && is_req))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zper_partition_t *partition = s_partition (broker, topic);
    if (s_unavailable (partition, reply))
        return ZPER_REAR_ANSWERED;
    if (partition && max_bytes > 0) {
        zper_view_t *view = zper_partition_read_position (partition, position,
                                                          s_reply_bytes (broker, max_bytes));
        if (!view)
            return s_status (reply, s_read_status (errno));
        zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
        s_super_frame (view, reply);
        zper_stats_read (broker->stats, topic, zper_view_count (view), zper_view_bytes (view));
        zper_view_destroy (&view);
        return ZPER_REAR_ANSWERED;
    }
    //  Resolve and validate the position even when no bytes are wanted
    int64_t first_offset = 0;
    if (partition) {
        if (s_offset_at (partition, position, &first_offset))
            return s_status (reply, s_read_status (errno));
    }
    else
    if (position != 0)
        return s_status (reply, ZPER_STATUS_INVALID_OFFSET);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    if (max_bytes == -1) {
        snprintf (continuation->topic, sizeof continuation->topic, "%s", topic);
        continuation->offset = first_offset;
        return ZPER_REAR_STREAM;
    }
    zmsg_addmem (reply->frames, NULL, 0);
    return ZPER_REAR_ANSWERED;
}

//  The values of an OFFSET reply, in the original server's shapes
//  (spec/zper-wire.md), legacy byte positions all:
//    -2  [first retained]
//    -1  [start of the newest segment holding data][read end]
//    t   [starts of the segments whose data begins at or before t...][read
//        end]: the newest max_entries values
//  written into positions (room for ZPER_OFFSET_DEFAULT_MAX_ENTRIES + 1).
//  Returns how many were written (the reply sends those from positions
//  [*first] on), or 0 when no retained data is as old as t (a NULL
//  partition, an unknown topic, holds none). The segment starts are taken
//  before the bounds: a segment can become visible in between, so the end
//  is never below a start listed.
static int
s_offset_positions (zper_partition_t *partition, int64_t timestamp, int32_t max_entries,
                    int64_t *positions, int *first)
{
    int count = 0;
    if (partition && timestamp != -2) {
        //  -1 wants the newest start (every segment begins before INT64_MAX);
        //  a time wants its starts, or at least one to know that data is that old
        int wanted = timestamp == -1 || max_entries == 0? 1: max_entries;
        count = zper_partition_segment_positions (partition, timestamp == -1? INT64_MAX: timestamp,
                                                  positions, wanted);
    }
    zper_bounds_t bounds = { 0 };
    if (partition)
        zper_partition_bounds (partition, &bounds);
    *first = 0;
    if (timestamp == -2)
        positions [count++] = bounds.start_position;
    else
    if (timestamp == -1) {
        if (count == 0)                 //  no data: the only segment starts where the data would
            positions [count++] = bounds.start_position;
        positions [count++] = bounds.visible_position;
    }
    else
    if (count > 0) {
        positions [count++] = bounds.visible_position;
        *first = count > max_entries? count - max_entries: 0;
    }
    return count;
}

//  OFFSET [timestamp:int64][max_entries:int32]? -> [100][position]... or
//  [101] when no retained data is that old (s_offset_positions)
static zper_rear_outcome_t
s_offset (zper_broker_t *broker, const char *topic, zmsg_t *request, zper_rear_reply_t *reply)
{
    int64_t timestamp;
    int32_t max_entries = ZPER_OFFSET_DEFAULT_MAX_ENTRIES;
    size_t size = zmsg_size (request);
    if (size < 2 || size > 3
    ||  zper_wire_frame_int64 (zmsg_next (request), &timestamp)
    ||  (size == 3 && zper_wire_frame_int32 (zmsg_next (request), &max_entries))
    ||  max_entries < 0)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    if (max_entries > ZPER_OFFSET_DEFAULT_MAX_ENTRIES)
        max_entries = ZPER_OFFSET_DEFAULT_MAX_ENTRIES;
    zper_partition_t *partition = s_partition (broker, topic);
    if (s_unavailable (partition, reply))
        return ZPER_REAR_ANSWERED;
    int64_t positions [ZPER_OFFSET_DEFAULT_MAX_ENTRIES + 1];
    int first;
    int count = s_offset_positions (partition, timestamp, max_entries, positions, &first);
    if (count == 0)
        return s_status (reply, ZPER_STATUS_INVALID_OFFSET);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    for (int index = first; index < count; index++)
        zper_wire_add_int64 (reply->frames, positions [index]);
    return ZPER_REAR_ANSWERED;
}

void
zper_rear_command_read (zper_broker_t *broker, const char *topic, int64_t offset,
                        int32_t max_bytes, zper_rear_reply_t *reply)
{
    zper_partition_t *partition = s_partition (broker, topic);
    if (s_unavailable (partition, reply))
        return;
    if (!partition) {
        zper_wire_add_status (reply->frames, offset == 0? ZPER_STATUS_OK: ZPER_STATUS_INVALID_OFFSET);
        if (offset == 0)
            zmsg_addmem (reply->frames, NULL, 0);
        return;
    }
    zper_view_t *view = zper_partition_read (partition, offset, s_reply_bytes (broker, max_bytes));
    if (!view) {
        zper_wire_add_status (reply->frames, s_read_status (errno));
        return;
    }
    size_t size = zper_view_bytes (view) + READ_RECORD_HEADER * zper_view_count (view);
    zframe_t *batch = zframe_new (NULL, size);
    uint8_t *target = zframe_data (batch);
    zper_message_t message;
    while (zper_view_next (view, &message)) {
        zper_wire_put_int64 (target, message.offset);
        zper_wire_put_int64 (target + 8, message.timestamp);
        zper_wire_put_int32 (target + 16, (int32_t) message.size);
        memcpy (target + READ_RECORD_HEADER, message.data, message.size);
        target += READ_RECORD_HEADER + message.size;
    }
    zper_stats_read (broker->stats, topic, zper_view_count (view), zper_view_bytes (view));
    zper_view_destroy (&view);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_append (reply->frames, &batch);
}

//  READ [topic][offset:int64][max_bytes:int32][max_wait_ms:int32]
static zper_rear_outcome_t
s_read (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply,
        zper_rear_continuation_t *continuation)
{
    int64_t offset;
    int32_t max_bytes, max_wait_ms;
    if (zmsg_size (request) != 5
    ||  s_topic_frame (zmsg_next (request), continuation->topic)
    ||  zper_wire_frame_int64 (zmsg_next (request), &offset)
    ||  zper_wire_frame_int32 (zmsg_next (request), &max_bytes)
    ||  zper_wire_frame_int32 (zmsg_next (request), &max_wait_ms)
    ||  max_bytes <= 0 || max_wait_ms < 0)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zper_partition_t *partition = s_partition (broker, continuation->topic);
    if (s_unavailable (partition, reply))
        return ZPER_REAR_ANSWERED;
    zper_bounds_t bounds = { 0 };
    if (partition)
        zper_partition_bounds (partition, &bounds);
    if (offset == bounds.visible_offset && max_wait_ms > 0) {
        continuation->offset = offset;
        continuation->max_bytes = max_bytes;
        continuation->deadline_ms = zclock_mono ()
            + (max_wait_ms < ZPER_REAR_READ_MAX_WAIT_MS? max_wait_ms: ZPER_REAR_READ_MAX_WAIT_MS);
        return ZPER_REAR_WAIT;
    }
    zper_rear_command_read (broker, continuation->topic, offset, max_bytes, reply);
    return ZPER_REAR_ANSWERED;
}

//  BOUNDS [topic]
static zper_rear_outcome_t
s_bounds (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    if (zmsg_size (request) != 2 || s_topic_frame (zmsg_next (request), topic))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zper_bounds_t bounds = { 0 };
    bounds.first_timestamp = bounds.last_timestamp = -1;
    zper_partition_t *partition = s_partition (broker, topic);
    if (s_unavailable (partition, reply))
        return ZPER_REAR_ANSWERED;
    if (partition)
        zper_partition_bounds (partition, &bounds);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    //  The end a reader can read to: the visible end (docs/protocol.md 3.1)
    int64_t values [] = { bounds.start_offset, bounds.visible_offset, bounds.start_position,
                          bounds.visible_position, bounds.first_timestamp, bounds.last_timestamp };
    for (size_t index = 0; index < sizeof values / sizeof values [0]; index++)
        zper_wire_add_int64 (reply->frames, values [index]);
    return ZPER_REAR_ANSWERED;
}

//  TIMEOFFSET [topic][timestamp_ms:int64]
static zper_rear_outcome_t
s_timeoffset (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    int64_t timestamp;
    if (zmsg_size (request) != 3 || s_topic_frame (zmsg_next (request), topic)
    ||  zper_wire_frame_int64 (zmsg_next (request), &timestamp))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zper_partition_t *partition = s_partition (broker, topic);
    if (s_unavailable (partition, reply))
        return ZPER_REAR_ANSWERED;
    int64_t offset = partition? zper_partition_offset_for_time (partition, timestamp): 0;
    if (offset < 0)
        return s_status (reply, ZPER_STATUS_INTERNAL_ERROR);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zper_wire_add_int64 (reply->frames, offset);
    return ZPER_REAR_ANSWERED;
}

//  Which topics a listing shows its asker: with security on, those its
//  key may read (a key that was cut off sees nothing: cut is set).
typedef struct {
    zper_broker_t *broker;
    zper_rear_access_t *access;
    bool cut;
} lister_t;

static bool
s_listed (const char *topic, void *argument)
{
    lister_t *lister = (lister_t *) argument;
    if (!lister->access || !lister->access->sender)
        return true;
    if (!lister->access->guard)
        return false;
    zper_guard_verdict_t verdict = zper_broker_guard_check (
        lister->broker, lister->access->guard, lister->access->sender, ZPER_GUARD_READ, topic,
        strlen (topic));
    lister->cut |= verdict == ZPER_GUARD_CUT;
    return verdict == ZPER_GUARD_ALLOWED;
}

//  TOPICS and STATS take no arguments.
static zper_rear_outcome_t
s_topics (zper_broker_t *broker, zmsg_t *request, zper_rear_access_t *access,
          zper_rear_reply_t *reply)
{
    if (zmsg_size (request) != 1)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    lister_t lister = { broker, access, false };
    zlist_t *topics = zper_log_topics (broker->log);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    for (char *topic = topics? (char *) zlist_first (topics): NULL; topic && !lister.cut;
         topic = (char *) zlist_next (topics))
        if (s_listed (topic, &lister))
            zmsg_addstr (reply->frames, topic);
    zlist_destroy (&topics);
    return lister.cut? ZPER_REAR_SILENT: ZPER_REAR_ANSWERED;
}

//  STATS: the broker's counters to every reader (security on: every
//  allowed key), its topics only to readers that may read them.
static zper_rear_outcome_t
s_stats (zper_broker_t *broker, zmsg_t *request, zper_rear_access_t *access,
         zper_rear_reply_t *reply)
{
    if (zmsg_size (request) != 1)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    lister_t lister = { broker, access, false };
    char *json = zper_broker_stats_json (broker, s_listed, &lister);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_addstr (reply->frames, json);
    zstr_free (&json);
    return lister.cut? ZPER_REAR_SILENT: ZPER_REAR_ANSWERED;
}

//  ---- consumer group commands (docs/protocol.md 3.3) ----------------------

//  A member id frame: 0..ZPER_GROUP_MEMBER_ID_MAX bytes without NUL (empty
//  only where allowed: a join). Returns 0 or -1.
static int
s_member_frame (zframe_t *frame, char *member, bool empty_allowed)
{
    if (!frame || zframe_size (frame) > ZPER_GROUP_MEMBER_ID_MAX
    ||  (zframe_size (frame) == 0 && !empty_allowed)
    ||  memchr (zframe_data (frame), 0, zframe_size (frame)))
        return -1;
    memcpy (member, zframe_data (frame), zframe_size (frame));
    member [zframe_size (frame)] = 0;
    return 0;
}

//  HEARTBEAT [group][topic][member][session_ms:int32][owned-partition]...
//  A group name follows a topic name's rules (ZPER_GROUP_NAME_MAX is
//  ZPER_TOPIC_NAME_MAX), so s_topic_frame checks both.
static zper_rear_outcome_t
s_heartbeat (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char group [ZPER_TOPIC_NAME_MAX + 1], topic [ZPER_TOPIC_NAME_MAX + 1];
    char member [ZPER_GROUP_MEMBER_ID_MAX + 1], partition [ZPER_TOPIC_NAME_MAX + 1];
    int32_t session_ms;
    size_t size = zmsg_size (request);
    if (size < 5 || (int64_t) (size - 5) > broker->config->groups_max_partitions
    ||  s_topic_frame (zmsg_next (request), group) || s_topic_frame (zmsg_next (request), topic)
    ||  s_member_frame (zmsg_next (request), member, true)
    ||  zper_wire_frame_int32 (zmsg_next (request), &session_ms))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zlistx_t *owned = zper_groups_names_new ();
    for (zframe_t *frame = zmsg_next (request); frame; frame = zmsg_next (request)) {
        if (s_topic_frame (frame, partition)) {
            zlistx_destroy (&owned);
            return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
        }
        zlistx_add_end (owned, partition);
    }
    zper_groups_answer_t answer;
    uint8_t status = zper_groups_heartbeat (broker->groups, group, topic, member, session_ms,
                                            owned, zclock_time (), &answer);
    zlistx_destroy (&owned);
    if (status != ZPER_STATUS_OK)
        return s_status (reply, status);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_addstr (reply->frames, answer.member);
    zper_wire_add_int32 (reply->frames, answer.generation);
    zper_wire_add_int32 (reply->frames, answer.heartbeat_ms);
    for (const char *name = (const char *) zlistx_first (answer.assigned); name;
         name = (const char *) zlistx_next (answer.assigned))
        zmsg_addstr (reply->frames, name);
    zlistx_destroy (&answer.assigned);
    return ZPER_REAR_ANSWERED;
}

//  LEAVE [group][member]
static zper_rear_outcome_t
s_leave (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char group [ZPER_TOPIC_NAME_MAX + 1], member [ZPER_GROUP_MEMBER_ID_MAX + 1];
    if (zmsg_size (request) != 3 || s_topic_frame (zmsg_next (request), group)
    ||  s_member_frame (zmsg_next (request), member, false))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    return s_status (reply, zper_groups_leave (broker->groups, group, member, zclock_time ()));
}

//  COMMIT [group][topic][offset:int64] ([member][generation:int32])?
//  Answers once the offset is durable (zper_offsets).
static zper_rear_outcome_t
s_commit (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char group [ZPER_TOPIC_NAME_MAX + 1], topic [ZPER_TOPIC_NAME_MAX + 1];
    char member [ZPER_GROUP_MEMBER_ID_MAX + 1];
    int64_t offset;
    int32_t generation = 0;
    size_t size = zmsg_size (request);
    if ((size != 4 && size != 6)
    ||  s_topic_frame (zmsg_next (request), group) || s_topic_frame (zmsg_next (request), topic)
    ||  zper_wire_frame_int64 (zmsg_next (request), &offset) || offset < 0
    ||  (size == 6 && (s_member_frame (zmsg_next (request), member, false)
                       || zper_wire_frame_int32 (zmsg_next (request), &generation))))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    return s_status (reply, zper_groups_commit (broker->groups, group, topic, offset,
                                                size == 6? member: NULL, generation,
                                                zclock_time ()));
}

//  COMMITTED [group][topic] -> [100][offset:int64][timestamp_ms:int64]
static zper_rear_outcome_t
s_committed (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    char group [ZPER_TOPIC_NAME_MAX + 1], topic [ZPER_TOPIC_NAME_MAX + 1];
    if (zmsg_size (request) != 3
    ||  s_topic_frame (zmsg_next (request), group) || s_topic_frame (zmsg_next (request), topic))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zper_committed_t committed = { -1, 0 };
    zper_offsets_committed (broker->offsets, group, topic, &committed);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zper_wire_add_int64 (reply->frames, committed.offset);
    zper_wire_add_int64 (reply->frames, committed.timestamp_ms);
    return ZPER_REAR_ANSWERED;
}

//  GROUPS [group]? -> [100][json]: with security on, only the groups (and
//  partitions) whose topics the asker's key may read.
static zper_rear_outcome_t
s_groups (zper_broker_t *broker, zmsg_t *request, zper_rear_access_t *access,
          zper_rear_reply_t *reply)
{
    char group [ZPER_TOPIC_NAME_MAX + 1];
    size_t size = zmsg_size (request);
    if ((size != 1 && size != 2) || (size == 2 && s_topic_frame (zmsg_next (request), group)))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    lister_t lister = { broker, access, false };
    char *json = zper_groups_json_filtered (broker->groups, size == 2? group: NULL,
                                            zclock_time (), s_listed, &lister);
    if (!json)
        return s_status (reply, ZPER_STATUS_INTERNAL_ERROR);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_addstr (reply->frames, json);
    zstr_free (&json);
    return lister.cut? ZPER_REAR_SILENT: ZPER_REAR_ANSWERED;
}

//  ---- cluster commands (docs/protocol.md 3.2): 113 on a single node ----

//  A text frame of 1..size-1 bytes without NUL, into text. Returns 0 or -1.
static int
s_text_frame (zframe_t *frame, char *text, size_t size)
{
    if (!frame || zframe_size (frame) == 0 || zframe_size (frame) >= size
    ||  memchr (zframe_data (frame), 0, zframe_size (frame)))
        return -1;
    memcpy (text, zframe_data (frame), zframe_size (frame));
    text [zframe_size (frame)] = 0;
    return 0;
}

//  A JSON reply the cluster built (NULL: it could not).
static zper_rear_outcome_t
s_json_reply (zper_rear_reply_t *reply, char *json)
{
    if (!json)
        return s_status (reply, ZPER_STATUS_INTERNAL_ERROR);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_addstr (reply->frames, json);
    freen (json);
    return ZPER_REAR_ANSWERED;
}

//  An admin command's refusal, with the cluster's reason in the log when
//  verbose (the reply is the status alone, as every other refusal).
static zper_rear_outcome_t
s_admin_refusal (zper_broker_t *broker, zper_rear_reply_t *reply, const char *command,
                 uint8_t status, const char *reason)
{
    if (broker->verbose)
        zsys_info ("rear: %s refused (%d): %s", command, status, reason);
    return s_status (reply, status);
}

//  METADATA [topic]
static zper_rear_outcome_t
s_metadata (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (!broker->cluster)
        return s_status (reply, ZPER_STATUS_NO_CLUSTER);
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    size_t size = zmsg_size (request);
    if ((size != 1 && size != 2)
    ||  (size == 2 && s_text_frame (zmsg_next (request), topic, sizeof topic)))
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    return s_json_reply (reply, zper_cluster_metadata_json (broker->cluster,
                                                            size == 2? topic: NULL));
}

//  CREATE [topic][partitions:int32][replicas:int32][min_isr:int32]. Blocks
//  this rear worker for a few etcd round trips (cluster.etcd_timeout_ms
//  each at most): an admin command, rare.
static zper_rear_outcome_t
s_create (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (!broker->cluster)
        return s_status (reply, ZPER_STATUS_NO_CLUSTER);
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    int32_t partitions, replicas, min_isr;
    if (zmsg_size (request) != 5 || s_text_frame (zmsg_next (request), topic, sizeof topic)
    ||  zper_wire_frame_int32 (zmsg_next (request), &partitions)
    ||  zper_wire_frame_int32 (zmsg_next (request), &replicas)
    ||  zper_wire_frame_int32 (zmsg_next (request), &min_isr) || min_isr < 0)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    char *layout = NULL;
    char reason [256] = "";
    uint8_t status = zper_cluster_create_topic (broker->cluster, topic, partitions, replicas,
                                                min_isr, &layout, reason, sizeof reason);
    if (status != ZPER_STATUS_OK) {
        freen (layout);
        return s_admin_refusal (broker, reply, "CREATE", status, reason);
    }
    return s_json_reply (reply, layout);
}

//  The replicas of a REASSIGN: "1,2,4", 1..ZPER_CLUSTER_REPLICAS_MAX
//  distinct node ids. Returns the count, or 0 when the text is not that.
static size_t
s_replica_list (const char *text, int *replicas)
{
    size_t count = 0;
    const char *cursor = text;
    while (true) {
        if (*cursor < '0' || *cursor > '9' || count == ZPER_CLUSTER_REPLICAS_MAX)
            return 0;
        long id = 0;
        while (*cursor >= '0' && *cursor <= '9' && id <= ZPER_CLUSTER_NODE_MAX)
            id = id * 10 + (*cursor++ - '0');
        if (id < 1 || id > ZPER_CLUSTER_NODE_MAX)
            return 0;
        for (size_t index = 0; index < count; index++)
            if (replicas [index] == (int) id)
                return 0;
        replicas [count++] = (int) id;
        if (*cursor == 0)
            return count;
        if (*cursor++ != ',')
            return 0;
    }
}

//  REASSIGN [topic][partition:int32][replicas:text]: records the target;
//  the move itself happens in the background. Blocks as CREATE does.
static zper_rear_outcome_t
s_reassign (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (!broker->cluster)
        return s_status (reply, ZPER_STATUS_NO_CLUSTER);
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    char text [ZPER_CLUSTER_REPLICAS_MAX * 6 + 1];      //  "65535," each
    int32_t partition;
    int replicas [ZPER_CLUSTER_REPLICAS_MAX];
    size_t count = 0;
    if (zmsg_size (request) != 4 || s_text_frame (zmsg_next (request), topic, sizeof topic)
    ||  zper_wire_frame_int32 (zmsg_next (request), &partition) || partition < 0
    ||  s_text_frame (zmsg_next (request), text, sizeof text)
    ||  (count = s_replica_list (text, replicas)) == 0)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    char reason [256] = "";
    uint8_t status = zper_cluster_reassign (broker->cluster, topic, partition, replicas, count,
                                            reason, sizeof reason);
    if (status != ZPER_STATUS_OK)
        return s_admin_refusal (broker, reply, "REASSIGN", status, reason);
    return s_status (reply, ZPER_STATUS_OK);
}

//  CLUSTER: this node's own view of the partitions it holds.
static zper_rear_outcome_t
s_cluster (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (!broker->cluster)
        return s_status (reply, ZPER_STATUS_NO_CLUSTER);
    if (zmsg_size (request) != 1)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    return s_json_reply (reply, zper_cluster_status_json (broker->cluster));
}

//  The topic a command names, into topic: a legacy FETCH or OFFSET its
//  identity's, a native READ, BOUNDS or TIMEOFFSET its first argument.
//  False when it names none, or none valid (the command answers 103).
//  Leaves request's cursor on the command.
static bool
s_named_topic (zframe_t *routing_id, zmsg_t *request, char *topic)
{
    zframe_t *command = zmsg_first (request);
    bool named = false;
    if (zframe_streq (command, "FETCH") || zframe_streq (command, "OFFSET"))
        named = s_topic_identity (routing_id, topic) == 0;
    else
    if (zframe_streq (command, "READ") || zframe_streq (command, "BOUNDS")
    ||  zframe_streq (command, "TIMEOFFSET"))
        named = s_topic_frame (zmsg_next (request), topic) == 0;
    else
    if (zframe_streq (command, "HEARTBEAT") || zframe_streq (command, "COMMIT")
    ||  zframe_streq (command, "COMMITTED")) {
        zmsg_next (request);            //  the group: the topic after it is what is read
        named = s_topic_frame (zmsg_next (request), topic) == 0;
    }
    zmsg_first (request);
    return named;
}

//  Whether the sender may read the topic its request names (always, with
//  security off, and for a request that names none). A worker without a
//  guard while security is on (its folder was unreadable) refuses.
static zper_guard_verdict_t
s_permission (zper_broker_t *broker, zframe_t *routing_id, zmsg_t *request,
              zper_rear_access_t *access)
{
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    if (!access || !access->sender || !s_named_topic (routing_id, request, topic))
        return ZPER_GUARD_ALLOWED;
    if (!access->guard)
        return ZPER_GUARD_FORBIDDEN;
    return zper_broker_guard_check (broker, access->guard, access->sender, ZPER_GUARD_READ, topic,
                                    strlen (topic));
}

zper_rear_outcome_t
zper_rear_command_execute (zper_broker_t *broker, zframe_t *routing_id, zmsg_t *request,
                           bool is_req, zper_rear_access_t *access, zper_rear_reply_t *reply,
                           zper_rear_continuation_t *continuation)
{
    zframe_t *command = zmsg_first (request);
    assert (command);
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    zper_rear_outcome_t outcome;
    zper_guard_verdict_t verdict = s_permission (broker, routing_id, request, access);
    if (verdict == ZPER_GUARD_CUT)
        return ZPER_REAR_SILENT;
    if (verdict == ZPER_GUARD_FORBIDDEN)
        outcome = s_status (reply, ZPER_STATUS_FORBIDDEN);
    else
    if (zframe_streq (command, "FETCH") || zframe_streq (command, "OFFSET")) {
        if (s_topic_identity (routing_id, topic))
            outcome = s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
        else
        if (zframe_streq (command, "FETCH"))
            outcome = s_fetch (broker, topic, request, is_req, reply, continuation);
        else
            outcome = s_offset (broker, topic, request, reply);
    }
    else
    if (zframe_streq (command, "READ"))
        outcome = s_read (broker, request, reply, continuation);
    else
    if (zframe_streq (command, "BOUNDS"))
        outcome = s_bounds (broker, request, reply);
    else
    if (zframe_streq (command, "TIMEOFFSET"))
        outcome = s_timeoffset (broker, request, reply);
    else
    if (zframe_streq (command, "TOPICS"))
        outcome = s_topics (broker, request, access, reply);
    else
    if (zframe_streq (command, "STATS"))
        outcome = s_stats (broker, request, access, reply);
    else
    if (zframe_streq (command, "METADATA"))
        outcome = s_metadata (broker, request, reply);
    else
    if (zframe_streq (command, "CREATE"))
        outcome = s_create (broker, request, reply);
    else
    if (zframe_streq (command, "REASSIGN"))
        outcome = s_reassign (broker, request, reply);
    else
    if (zframe_streq (command, "CLUSTER"))
        outcome = s_cluster (broker, request, reply);
    else
    if (zframe_streq (command, "HEARTBEAT"))
        outcome = s_heartbeat (broker, request, reply);
    else
    if (zframe_streq (command, "LEAVE"))
        outcome = s_leave (broker, request, reply);
    else
    if (zframe_streq (command, "COMMIT"))
        outcome = s_commit (broker, request, reply);
    else
    if (zframe_streq (command, "COMMITTED"))
        outcome = s_committed (broker, request, reply);
    else
    if (zframe_streq (command, "GROUPS"))
        outcome = s_groups (broker, request, access, reply);
    else
        outcome = s_status (reply, ZPER_STATUS_INVALID_COMMAND);

    zframe_t *status = zmsg_first (reply->frames);
    if (status && zframe_data (status) [0] != ZPER_STATUS_OK) {
        zper_stats_count (broker->stats, zframe_data (status) [0] == ZPER_STATUS_FORBIDDEN
                                         ? ZPER_COUNTER_FORBIDDEN: ZPER_COUNTER_BAD_REQUEST);
        if (broker->verbose) {
            char *name = zframe_strdup (command);
            zsys_info ("rear: %.32s (%zu frames) answered %d", name, zmsg_size (request),
                       zframe_data (status) [0]);
            zstr_free (&name);
        }
    }
    return outcome;
}
