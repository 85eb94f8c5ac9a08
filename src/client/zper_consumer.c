/*  =========================================================================
    zper_consumer - read messages from a ZPER broker's rear

    A consumer is one DEALER socket and a position (the next logical offset
    to return). It speaks only the native commands of docs/protocol.md
    (READ, BOUNDS, TIMEOFFSET, TOPICS, STATS), which name the topic in a
    frame, so one consumer can also list and describe every topic.

    The one thing to know: the protocol has no request ids, so a reply that
    comes after its request timed out would be taken for the answer to the
    next request. A timeout therefore throws the socket away and the next
    request builds a new one (the "lazy pirate" pattern of the ZeroMQ guide).

    READ returns a batch of records [offset][timestamp][size][ZMTP/2.0
    frames]; the consumer keeps the batch frame and turns one record at a
    time into a zmsg_t, checking every length against what is left.

    The socket is made by the first request (and again after a timeout),
    so CURVE (zper_consumer_set_curve) is on it before it connects.
    ========================================================================= */

#include "zper_client_wire.h"
#include "zper_zmtp.h"

//  A READ record header: offset, timestamp, size.
#define ZPER_RECORD_HEADER_SIZE ZPER_CLIENT_RECORD_HEADER_SIZE

struct _zper_consumer_t {
    char *endpoint;
    char *topic;                    //  NULL for a consumer that only lists and describes
    zsock_t *socket;                //  NULL after a timeout, until the next request
    zper_client_curve_t curve;      //  plaintext until zper_consumer_set_curve
    int timeout_ms;
    int max_bytes;
    int64_t position;               //  offset of the next message to return, or a
                                    //  ZPER_OFFSET_ value not yet resolved
    zframe_t *batch;                //  the last READ's records
    const uint8_t *cursor;          //  the first record of batch not yet returned
    int64_t offset;                 //  of the message the last recv returned
    int64_t timestamp;
    char error [ZPER_CLIENT_ERROR_MAX];
};

zper_consumer_t *
zper_consumer_new (const char *endpoint, const char *topic)
{
    if (!zper_client_endpoint_valid (endpoint) || (topic && !zper_topic_valid (topic))) {
        errno = EINVAL;
        return NULL;
    }
    zper_consumer_t *self = (zper_consumer_t *) zmalloc (sizeof (zper_consumer_t));
    self->endpoint = strdup (endpoint);
    self->topic = topic? strdup (topic): NULL;
    self->timeout_ms = ZPER_CLIENT_TIMEOUT_MS;
    self->max_bytes = ZPER_CLIENT_READ_BYTES;
    self->position = ZPER_OFFSET_EARLIEST;      //  resolved by the first fetch
    self->offset = -1;
    self->timestamp = -1;
    return self;
}

void
zper_consumer_destroy (zper_consumer_t **self_p)
{
    assert (self_p);
    zper_consumer_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->socket);
        zper_client_curve_reset (&self->curve);
        zframe_destroy (&self->batch);
        free (self->endpoint);
        free (self->topic);
        free (self);
        *self_p = NULL;
    }
}

void
zper_consumer_set_timeout (zper_consumer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms;
    if (self->socket)
        zsock_set_sndtimeo (self->socket, timeout_ms);
}

int
zper_consumer_set_curve (zper_consumer_t *self, const char *server_key, const char *cert_path)
{
    assert (self);
    if (zper_client_curve_load (&self->curve, server_key, cert_path, self->error) == -1) {
        errno = EINVAL;
        return -1;
    }
    zsock_destroy (&self->socket);      //  the next request connects with CURVE
    return 0;
}

void
zper_consumer_set_max_bytes (zper_consumer_t *self, int max_bytes)
{
    assert (self);
    self->max_bytes = max_bytes > 0? max_bytes: 1;
}

//  ---- requests ----------------------------------------------------------------

//  Send request (destroyed) and return the reply without its status frame,
//  or NULL with errno and self->error set. The reply may take extra_wait_ms
//  more than the timeout (a READ's long poll).
static zmsg_t *
s_request (zper_consumer_t *self, zmsg_t **request_p, int extra_wait_ms)
{
    return zper_client_request (&self->socket, self->endpoint, &self->curve, self->timeout_ms,
                                extra_wait_ms, request_p, NULL, self->error);
}

//  A request [command][topic] (topic left out when NULL).
static zmsg_t *
s_request_new (const char *command, const char *topic)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, command);
    if (topic)
        zmsg_addstr (request, topic);
    return request;
}

static bool
s_has_topic (zper_consumer_t *self)
{
    if (self->topic)
        return true;
    zper_client_error_set (self->error, "this consumer was created without a topic");
    errno = EINVAL;
    return false;
}

static void
s_drop_batch (zper_consumer_t *self)
{
    zframe_destroy (&self->batch);
    self->cursor = NULL;
}

//  ---- positioning ---------------------------------------------------------------

int
zper_consumer_bounds (zper_consumer_t *self, const char *topic, zper_topic_bounds_t *bounds)
{
    assert (self);
    assert (bounds);
    if (!topic && !s_has_topic (self))
        return -1;
    zmsg_t *request = s_request_new ("BOUNDS", topic? topic: self->topic);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return -1;
    int64_t values [6];
    bool valid = zmsg_size (reply) == 6;
    for (int index = 0; index < 6 && valid; index++) {
        zframe_t *frame = zmsg_pop (reply);
        valid = zper_wire_frame_int64 (frame, &values [index]) == 0;
        zframe_destroy (&frame);
    }
    zmsg_destroy (&reply);
    if (!valid) {
        zper_client_error_set (self->error, "%s sent a malformed BOUNDS reply", self->endpoint);
        errno = EPROTO;
        return -1;
    }
    *bounds = (zper_topic_bounds_t) { values [0], values [1], values [2],
                                      values [3], values [4], values [5] };
    return 0;
}

int
zper_consumer_seek (zper_consumer_t *self, int64_t offset)
{
    assert (self);
    if (offset == ZPER_OFFSET_EARLIEST || offset == ZPER_OFFSET_LATEST) {
        zper_topic_bounds_t bounds;
        if (zper_consumer_bounds (self, NULL, &bounds) == -1)
            return -1;
        offset = offset == ZPER_OFFSET_EARLIEST? bounds.start_offset: bounds.durable_offset;
    }
    else
    if (offset < 0) {
        zper_client_error_set (self->error, "offset %" PRId64 " is negative", offset);
        errno = EINVAL;
        return -1;
    }
    s_drop_batch (self);
    self->position = offset;
    return 0;
}

int
zper_consumer_seek_time (zper_consumer_t *self, int64_t timestamp_ms)
{
    assert (self);
    if (!s_has_topic (self))
        return -1;
    zmsg_t *request = s_request_new ("TIMEOFFSET", self->topic);
    zper_wire_add_int64 (request, timestamp_ms);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return -1;
    int64_t offset = -1;
    bool valid = zmsg_size (reply) == 1 && zper_wire_frame_int64 (zmsg_first (reply), &offset) == 0;
    zmsg_destroy (&reply);
    if (!valid || offset < 0) {
        zper_client_error_set (self->error, "%s sent a malformed TIMEOFFSET reply", self->endpoint);
        errno = EPROTO;
        return -1;
    }
    s_drop_batch (self);
    self->position = offset;
    return 0;
}

int64_t
zper_consumer_position (zper_consumer_t *self)
{
    assert (self);
    return self->position;
}

//  ---- reading ---------------------------------------------------------------------

static bool
s_buffered (zper_consumer_t *self)
{
    return self->batch && self->cursor < zframe_data (self->batch) + zframe_size (self->batch);
}

int
zper_consumer_fetch (zper_consumer_t *self, int max_wait_ms)
{
    assert (self);
    if (!s_has_topic (self))
        return -1;
    if (s_buffered (self))
        return 0;
    if (max_wait_ms < 0)
        max_wait_ms = 0;
    if (self->position < 0 && zper_consumer_seek (self, self->position) == -1)
        return -1;
    zmsg_t *request = s_request_new ("READ", self->topic);
    zper_wire_add_int64 (request, self->position);
    uint8_t integer [ZPER_WIRE_INT32_SIZE];
    zper_wire_put_int32 (integer, self->max_bytes);
    zmsg_addmem (request, integer, sizeof integer);
    zper_wire_put_int32 (integer, max_wait_ms);
    zmsg_addmem (request, integer, sizeof integer);
    zmsg_t *reply = s_request (self, &request, max_wait_ms);
    if (!reply && errno == ERANGE)
        zper_client_error_set (self->error, "offset %" PRId64 " of topic '%s' is outside the "
                               "retained messages on %s (try --from earliest or latest)",
                               self->position, self->topic, self->endpoint);
    if (!reply)
        return -1;
    zframe_t *batch = zmsg_size (reply) == 1? zmsg_pop (reply): NULL;
    zmsg_destroy (&reply);
    int count = batch? zper_client_batch_check (zframe_data (batch), zframe_size (batch)): -1;
    if (count == -1) {
        zframe_destroy (&batch);
        zper_client_error_set (self->error, "%s sent a malformed READ reply", self->endpoint);
        errno = EPROTO;
        return -1;
    }
    s_drop_batch (self);
    self->batch = batch;
    self->cursor = zframe_data (batch);
    return count;
}

//  The next buffered record as a message (zper_client_batch_check vouched for it).
static zmsg_t *
s_next_record (zper_consumer_t *self)
{
    zmsg_t *msg = zper_client_record_decode (&self->cursor, &self->offset, &self->timestamp);
    self->position = self->offset + 1;
    return msg;
}

zmsg_t *
zper_consumer_recv (zper_consumer_t *self, int max_wait_ms)
{
    assert (self);
    if (!s_buffered (self)) {
        int fetched = zper_consumer_fetch (self, max_wait_ms);
        if (fetched == -1)
            return NULL;
        if (fetched == 0) {
            errno = EAGAIN;
            return NULL;
        }
    }
    return s_next_record (self);
}

int64_t
zper_consumer_offset (zper_consumer_t *self)
{
    assert (self);
    return self->offset;
}

int64_t
zper_consumer_timestamp (zper_consumer_t *self)
{
    assert (self);
    return self->timestamp;
}

//  ---- the broker ------------------------------------------------------------------

zlist_t *
zper_consumer_topics (zper_consumer_t *self)
{
    assert (self);
    zmsg_t *request = s_request_new ("TOPICS", NULL);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return NULL;
    zlist_t *topics = zlist_new ();
    zlist_autofree (topics);
    for (char *topic = zmsg_popstr (reply); topic; topic = zmsg_popstr (reply)) {
        zlist_append (topics, topic);
        zstr_free (&topic);
    }
    zmsg_destroy (&reply);
    return topics;
}

char *
zper_consumer_stats (zper_consumer_t *self)
{
    assert (self);
    zmsg_t *request = s_request_new ("STATS", NULL);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return NULL;
    char *json = zmsg_size (reply) == 1? zmsg_popstr (reply): NULL;
    zmsg_destroy (&reply);
    if (!json) {
        zper_client_error_set (self->error, "%s sent a malformed STATS reply", self->endpoint);
        errno = EPROTO;
    }
    return json;
}

//  ---- cluster administration (docs/cluster.md) ------------------------------------

//  A reply of one JSON text frame, as a fresh string; NULL (EPROTO) if not.
static char *
s_json_reply (zper_consumer_t *self, zmsg_t *reply, const char *command)
{
    if (!reply)
        return NULL;
    char *json = zmsg_size (reply) == 1? zmsg_popstr (reply): NULL;
    zmsg_destroy (&reply);
    if (!json) {
        zper_client_error_set (self->error, "%s sent a malformed %s reply", self->endpoint, command);
        errno = EPROTO;
    }
    return json;
}

static void
s_add_int32 (zmsg_t *request, int32_t value)
{
    uint8_t data [ZPER_WIRE_INT32_SIZE];
    zper_wire_put_int32 (data, value);
    zmsg_addmem (request, data, sizeof data);
}

char *
zper_consumer_metadata (zper_consumer_t *self, const char *topic)
{
    assert (self);
    zmsg_t *request = s_request_new ("METADATA", topic);
    return s_json_reply (self, s_request (self, &request, 0), "METADATA");
}

char *
zper_consumer_create_topic (zper_consumer_t *self, const char *topic, int partitions,
                            int replicas, int min_isr)
{
    assert (self);
    assert (topic);
    zmsg_t *request = s_request_new ("CREATE", topic);
    s_add_int32 (request, partitions);
    s_add_int32 (request, replicas);
    s_add_int32 (request, min_isr);
    return s_json_reply (self, s_request (self, &request, 0), "CREATE");
}

int
zper_consumer_reassign (zper_consumer_t *self, const char *topic, int partition,
                        const char *replicas)
{
    assert (self);
    assert (topic && replicas);
    zmsg_t *request = s_request_new ("REASSIGN", topic);
    s_add_int32 (request, partition);
    zmsg_addstr (request, replicas);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return -1;
    zmsg_destroy (&reply);
    return 0;
}

char *
zper_consumer_cluster (zper_consumer_t *self)
{
    assert (self);
    zmsg_t *request = s_request_new ("CLUSTER", NULL);
    return s_json_reply (self, s_request (self, &request, 0), "CLUSTER");
}

//  ---- committed offsets (docs/client.md, Groups) ----------------------------------

int
zper_consumer_commit (zper_consumer_t *self, const char *group, const char *topic, int64_t offset)
{
    assert (self);
    if (!group || !*group || !topic || !*topic || offset < 0) {
        zper_client_error_set (self->error, "COMMIT needs a group, a topic and an offset >= 0");
        errno = EINVAL;
        return -1;
    }
    zmsg_t *request = s_request_new ("COMMIT", group);
    zmsg_addstr (request, topic);
    zper_wire_add_int64 (request, offset);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return -1;
    zmsg_destroy (&reply);
    return 0;
}

int64_t
zper_consumer_committed (zper_consumer_t *self, const char *group, const char *topic)
{
    assert (self);
    if (!group || !*group || !topic || !*topic) {
        zper_client_error_set (self->error, "COMMITTED needs a group and a topic");
        errno = EINVAL;
        return -2;
    }
    zmsg_t *request = s_request_new ("COMMITTED", group);
    zmsg_addstr (request, topic);
    zmsg_t *reply = s_request (self, &request, 0);
    if (!reply)
        return -2;
    int64_t offset = -2, timestamp;
    bool valid = zmsg_size (reply) == 2
              && zper_wire_frame_int64 (zmsg_first (reply), &offset) == 0
              && zper_wire_frame_int64 (zmsg_next (reply), &timestamp) == 0 && offset >= -1;
    zmsg_destroy (&reply);
    if (!valid) {
        zper_client_error_set (self->error, "%s sent a malformed COMMITTED reply", self->endpoint);
        errno = EPROTO;
        return -2;
    }
    return offset;
}

char *
zper_consumer_groups (zper_consumer_t *self, const char *group)
{
    assert (self);
    zmsg_t *request = s_request_new ("GROUPS", group);
    return s_json_reply (self, s_request (self, &request, 0), "GROUPS");
}

const char *
zper_consumer_error (zper_consumer_t *self)
{
    assert (self);
    return self->error;
}

//  ---- selftest ----------------------------------------------------------------
//  A stand-in rear on a real socket serving topic "selftest": five messages
//  at offsets 0..4 with timestamps 1000, 1010, ... 1040; message N has the
//  frames "id-N" and "body" (message 2 adds an empty frame). Topic
//  "garbage" answers READ with a record whose length lies. The black-box
//  tests in tests/client do the same against a real zperd.

#define TEST_MESSAGES       5
#define TEST_FIRST_TIME     1000
#define TEST_TIME_STEP      10

static void
s_test_add_record (zchunk_t *batch, int64_t offset)
{
    char id [16];
    snprintf (id, sizeof id, "id-%d", (int) offset);
    zper_frame_t frames [3] = { { id, strlen (id) }, { "", 0 }, { "body", 4 } };
    if (offset != 2)
        frames [1] = frames [2];
    size_t frame_count = offset == 2? 3: 2;
    size_t size = zper_zmtp_message_size (frames, frame_count);
    uint8_t header [ZPER_RECORD_HEADER_SIZE];
    zper_wire_put_int64 (header, offset);
    zper_wire_put_int64 (header + ZPER_WIRE_INT64_SIZE, TEST_FIRST_TIME + offset * TEST_TIME_STEP);
    zper_wire_put_int32 (header + 2 * ZPER_WIRE_INT64_SIZE, (int32_t) size);
    zchunk_extend (batch, header, sizeof header);
    uint8_t encoded [64];
    zchunk_extend (batch, encoded, zper_zmtp_encode (frames, frame_count, encoded));
}

static void
s_test_read (zmsg_t *request, zmsg_t *reply)
{
    char *topic = zmsg_popstr (request);
    zframe_t *frame = zmsg_pop (request);
    int64_t offset = -1;                //  a malformed frame leaves it -1: INVALID_OFFSET
    zper_wire_frame_int64 (frame, &offset);
    zframe_destroy (&frame);
    frame = zmsg_pop (request);
    int32_t max_bytes = zper_wire_get_int32 (zframe_data (frame));
    zframe_destroy (&frame);
    zchunk_t *batch = zchunk_new (NULL, 0);
    if (streq (topic, "garbage")) {
        s_test_add_record (batch, 0);
        zchunk_data (batch) [2 * ZPER_WIRE_INT64_SIZE] = 0x7f;     //  a length past the end
    }
    if (offset < 0 || offset > TEST_MESSAGES)
        zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_INVALID_OFFSET }, 1);
    else {
        while (offset < TEST_MESSAGES && (zchunk_size (batch) == 0
                                          || (int32_t) zchunk_size (batch) < max_bytes))
            s_test_add_record (batch, offset++);
        zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_OK }, 1);
        zmsg_addmem (reply, zchunk_data (batch), zchunk_size (batch));
    }
    zchunk_destroy (&batch);
    zstr_free (&topic);
}

static void
s_test_answer (zmsg_t *request, zmsg_t *reply)
{
    char *command = zmsg_popstr (request);
    uint8_t ok = ZPER_STATUS_OK;
    if (streq (command, "READ"))
        s_test_read (request, reply);
    else
    if (streq (command, "BOUNDS")) {
        zmsg_addmem (reply, &ok, 1);
        int64_t values [6] = { 0, TEST_MESSAGES, 0, 42, TEST_FIRST_TIME,
                               TEST_FIRST_TIME + (TEST_MESSAGES - 1) * TEST_TIME_STEP };
        for (int index = 0; index < 6; index++)
            zper_wire_add_int64 (reply, values [index]);
    }
    else
    if (streq (command, "TIMEOFFSET")) {
        zframe_t *topic = zmsg_pop (request);
        zframe_t *frame = zmsg_pop (request);
        int64_t timestamp = zper_wire_get_int64 (zframe_data (frame));
        int64_t offset = (timestamp - TEST_FIRST_TIME + TEST_TIME_STEP - 1) / TEST_TIME_STEP;
        offset = offset < 0? 0: offset > TEST_MESSAGES? TEST_MESSAGES: offset;
        zmsg_addmem (reply, &ok, 1);
        zper_wire_add_int64 (reply, offset);
        zframe_destroy (&frame);
        zframe_destroy (&topic);
    }
    else
    if (streq (command, "TOPICS")) {
        zmsg_addmem (reply, &ok, 1);
        zmsg_addstr (reply, "garbage");
        zmsg_addstr (reply, "selftest");
    }
    else
    if (streq (command, "STATS")) {
        zmsg_addmem (reply, &ok, 1);
        zmsg_addstr (reply, "{\"topics\":2}");
    }
    else
    if (streq (command, "GROUPS")) {
        //  The group asked for, if any, comes back as the only key
        char *group = zmsg_popstr (request);
        zmsg_addmem (reply, &ok, 1);
        zmsg_addstrf (reply, group? "{\"%s\":{}}": "{}", group);
        zstr_free (&group);
    }
    else
    if (!streq (command, "SILENT"))
        zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_INVALID_COMMAND }, 1);
    zstr_free (&command);
}

static void
s_test_rear (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert (router);
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *request = zmsg_recv (router);
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &(zframe_t *) { zmsg_pop (request) });
        s_test_answer (request, reply);
        if (zmsg_size (reply) > 1)
            zmsg_send (&reply, router);
        zmsg_destroy (&reply);
        zmsg_destroy (&request);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_test_reading (const char *endpoint)
{
    zper_consumer_t *consumer = zper_consumer_new (endpoint, "selftest");
    assert (consumer);
    assert (zper_consumer_offset (consumer) == -1);
    zper_consumer_set_max_bytes (consumer, 1);          //  one message per READ
    for (int offset = 0; offset < TEST_MESSAGES; offset++) {
        zmsg_t *msg = zper_consumer_recv (consumer, 0);
        assert (msg);
        assert (zper_consumer_offset (consumer) == offset);
        assert (zper_consumer_timestamp (consumer) == TEST_FIRST_TIME + offset * TEST_TIME_STEP);
        assert (zmsg_size (msg) == (offset == 2? 3u: 2u));
        char *id = zmsg_popstr (msg);
        char expected [16];
        snprintf (expected, sizeof expected, "id-%d", offset);
        assert (streq (id, expected));
        zstr_free (&id);
        zmsg_destroy (&msg);
    }
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EAGAIN);

    zper_consumer_set_max_bytes (consumer, ZPER_CLIENT_READ_BYTES);
    assert (zper_consumer_seek (consumer, 3) == 0);
    assert (zper_consumer_fetch (consumer, 0) == 2);
    assert (zper_consumer_seek_time (consumer, TEST_FIRST_TIME + 15) == 0);
    assert (zper_consumer_position (consumer) == 2);
    zmsg_t *msg = zper_consumer_recv (consumer, 0);
    assert (msg && zper_consumer_offset (consumer) == 2);
    zmsg_destroy (&msg);
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);
    assert (zper_consumer_position (consumer) == TEST_MESSAGES);
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_EARLIEST) == 0);
    assert (zper_consumer_position (consumer) == 0);
    assert (zper_consumer_seek (consumer, -7) == -1 && errno == EINVAL);

    assert (zper_consumer_seek (consumer, TEST_MESSAGES + 1) == 0);
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == ERANGE);
    assert (strstr (zper_consumer_error (consumer), "outside the retained messages"));
    zper_consumer_destroy (&consumer);
    zper_consumer_destroy (&consumer);
    assert (consumer == NULL);
}

static void
s_test_describing (const char *endpoint)
{
    zper_consumer_t *consumer = zper_consumer_new (endpoint, NULL);
    zper_topic_bounds_t bounds;
    assert (zper_consumer_bounds (consumer, "selftest", &bounds) == 0);
    assert (bounds.start_offset == 0 && bounds.durable_offset == TEST_MESSAGES);
    assert (bounds.durable_position == 42 && bounds.first_timestamp == TEST_FIRST_TIME);
    assert (zper_consumer_bounds (consumer, NULL, &bounds) == -1 && errno == EINVAL);
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EINVAL);
    zlist_t *topics = zper_consumer_topics (consumer);
    assert (topics && zlist_size (topics) == 2);
    assert (streq ((char *) zlist_first (topics), "garbage"));
    zlist_destroy (&topics);
    char *stats = zper_consumer_stats (consumer);
    assert (stats && streq (stats, "{\"topics\":2}"));
    zstr_free (&stats);
    char *groups = zper_consumer_groups (consumer, NULL);
    assert (groups && streq (groups, "{}"));
    zstr_free (&groups);
    groups = zper_consumer_groups (consumer, "billing");
    assert (groups && streq (groups, "{\"billing\":{}}"));
    zstr_free (&groups);
    zper_consumer_destroy (&consumer);

    //  A batch whose record length lies is refused, not trusted.
    consumer = zper_consumer_new (endpoint, "garbage");
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EPROTO);
    zper_consumer_destroy (&consumer);
}

static void
s_test_unanswered (const char *endpoint)
{
    //  A broker that does not answer, then one that is not there at all.
    zper_consumer_t *consumer = zper_consumer_new (endpoint, "selftest");
    zper_consumer_set_timeout (consumer, 100);
    zmsg_t *request = s_request_new ("SILENT", NULL);
    assert (s_request (consumer, &request, 0) == NULL && errno == ETIMEDOUT);
    assert (strstr (zper_consumer_error (consumer), "no answer from"));
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);    //  a new socket works
    zper_consumer_destroy (&consumer);

    char *unused = zper_client_unused_endpoint ();
    consumer = zper_consumer_new (unused, "selftest");
    zper_consumer_set_timeout (consumer, 100);
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EHOSTUNREACH);
    assert (strstr (zper_consumer_error (consumer), unused));
    zper_consumer_destroy (&consumer);
    free (unused);
}

void
zper_consumer_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    assert (zper_consumer_new ("tcp://127.0.0.1:1", "no/slash") == NULL && errno == EINVAL);
    zactor_t *rear = zactor_new (s_test_rear, NULL);
    char *endpoint = zstr_recv (rear);
    s_test_reading (endpoint);
    s_test_describing (endpoint);
    s_test_unanswered (endpoint);
    zstr_free (&endpoint);
    zactor_destroy (&rear);
}
