/*  =========================================================================
    zper_rear_command - what each reader command answers

    Stateless: every function here turns one request into one reply,
    reading the log and nothing else; what outlives a request (streams,
    long polls) is the worker's business (zper_rear_worker.c). The one
    thing to know: arguments are checked for count and exact size before
    anything is read, and every failure has a status (docs/protocol.md 4),
    so a malformed request can never leave a reader waiting for an answer
    that does not come.

    Legacy offsets are byte positions (FETCH, OFFSET); native ones are
    logical offsets (READ, BOUNDS, TIMEOFFSET).

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

//  The partition of a topic, or NULL if the topic has none yet (an
//  unknown topic reads as empty).
static zper_partition_t *
s_partition (zper_broker_t *broker, const char *topic)
{
    return zper_log_partition (broker->log, topic, ZPER_PARTITION_DEFAULT, false);
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

//  Send one frame of a stored message: copied when libzmq would store it
//  inline anyway, else lent from the view's mapping.
static int
s_send_frame (void *socket, zper_view_t *view, const zper_frame_t *frame, int flags)
{
    if (frame->size > ZPER_REAR_COPY_FRAME_MAX) {
        zmq_msg_t lent;
        if (zper_view_lend (view, frame->data, frame->size, &lent) == 0) {
            if (zmq_msg_send (&lent, socket, flags) == -1) {
                zmq_msg_close (&lent);
                return -1;
            }
            return 0;
        }
    }
    return zmq_send (socket, frame->data, frame->size, flags) == -1? -1: 0;
}

int
zper_rear_send_message (void *socket, const void *prefix, size_t prefix_size,
                        zper_view_t *view, const zper_message_t *message)
{
    if (zmq_send (socket, prefix, prefix_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    //  Once the prefix is queued, the rest of the message is too
    const uint8_t *cursor = message->data, *end = message->data + message->size;
    for (size_t index = 0; index < message->frame_count; index++) {
        zper_frame_t frame;
        bool more;
        if (zper_zmtp_decode (&cursor, end, &frame, &more))
            frame = (zper_frame_t) { NULL, 0 };     //  the log checksummed it: cannot happen
        s_send_frame (socket, view, &frame, index + 1 < message->frame_count? ZMQ_SNDMORE: 0);
    }
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
    return error == ERANGE || error == EINVAL? ZPER_STATUS_INVALID_OFFSET: ZPER_STATUS_INTERNAL_ERROR;
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
    if (partition && max_bytes > 0) {
        zper_view_t *view = zper_partition_read_position (partition, position, (size_t) max_bytes);
        if (!view)
            return s_status (reply, s_read_status (errno));
        zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
        s_super_frame (view, reply);
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

//  OFFSET [timestamp:int64][max_entries:int32]?
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
    zper_bounds_t bounds = { 0 };
    if (partition)
        zper_partition_bounds (partition, &bounds);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    if (timestamp == -1 || timestamp == -2) {
        zper_wire_add_int64 (reply->frames,
                             timestamp == -1? bounds.visible_position: bounds.start_position);
        return ZPER_REAR_ANSWERED;
    }
    if (!partition || max_entries == 0)
        return ZPER_REAR_ANSWERED;
    int64_t positions [ZPER_OFFSET_DEFAULT_MAX_ENTRIES];
    int count = zper_partition_segment_positions (partition, timestamp, positions, max_entries);
    for (int index = 0; index < count; index++)
        zper_wire_add_int64 (reply->frames, positions [index]);
    return ZPER_REAR_ANSWERED;
}

void
zper_rear_command_read (zper_broker_t *broker, const char *topic, int64_t offset,
                        int32_t max_bytes, zper_rear_reply_t *reply)
{
    zper_partition_t *partition = s_partition (broker, topic);
    if (!partition) {
        zper_wire_add_status (reply->frames, offset == 0? ZPER_STATUS_OK: ZPER_STATUS_INVALID_OFFSET);
        if (offset == 0)
            zmsg_addmem (reply->frames, NULL, 0);
        return;
    }
    zper_view_t *view = zper_partition_read (partition, offset, (size_t) max_bytes);
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
    int64_t offset = partition? zper_partition_offset_for_time (partition, timestamp): 0;
    if (offset < 0)
        return s_status (reply, ZPER_STATUS_INTERNAL_ERROR);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zper_wire_add_int64 (reply->frames, offset);
    return ZPER_REAR_ANSWERED;
}

//  TOPICS and STATS take no arguments.
static zper_rear_outcome_t
s_topics (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (zmsg_size (request) != 1)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    zlist_t *topics = zper_log_topics (broker->log);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    for (char *topic = topics? (char *) zlist_first (topics): NULL; topic;
         topic = (char *) zlist_next (topics))
        zmsg_addstr (reply->frames, topic);
    zlist_destroy (&topics);
    return ZPER_REAR_ANSWERED;
}

static zper_rear_outcome_t
s_stats (zper_broker_t *broker, zmsg_t *request, zper_rear_reply_t *reply)
{
    if (zmsg_size (request) != 1)
        return s_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    char *json = zper_stats_json (broker->stats, broker->log);
    zper_wire_add_status (reply->frames, ZPER_STATUS_OK);
    zmsg_addstr (reply->frames, json);
    zstr_free (&json);
    return ZPER_REAR_ANSWERED;
}

zper_rear_outcome_t
zper_rear_command_execute (zper_broker_t *broker, zframe_t *routing_id, zmsg_t *request,
                           bool is_req, zper_rear_reply_t *reply,
                           zper_rear_continuation_t *continuation)
{
    zframe_t *command = zmsg_first (request);
    assert (command);
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    zper_rear_outcome_t outcome;
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
        outcome = s_topics (broker, request, reply);
    else
    if (zframe_streq (command, "STATS"))
        outcome = s_stats (broker, request, reply);
    else
        outcome = s_status (reply, ZPER_STATUS_INVALID_COMMAND);

    zframe_t *status = zmsg_first (reply->frames);
    if (status && zframe_data (status) [0] != ZPER_STATUS_OK) {
        zper_stats_count (broker->stats, ZPER_COUNTER_BAD_REQUEST);
        if (broker->verbose) {
            char *name = zframe_strdup (command);
            zsys_info ("rear: %.32s (%zu frames) answered %d", name, zmsg_size (request),
                       zframe_data (status) [0]);
            zstr_free (&name);
        }
    }
    return outcome;
}
