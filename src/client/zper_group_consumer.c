/*  =========================================================================
    zper_group_consumer - a member of a consumer group (docs/client.md, Groups)

    The broker shares a topic's partitions among a group's live members
    (docs/protocol.md 3.3); this object is one member. Everything happens
    inside recv, on the caller's thread: no background thread, so a member
    whose application stops calling recv stops heartbeating and is taken
    out of the group, which is what should happen to a stuck consumer.

    Two DEALER sockets to the rear: one for the group commands (HEARTBEAT,
    COMMIT, COMMITTED, BOUNDS, LEAVE), one for READ only. The rear answers a
    waiting READ at once when the same reader sends anything else (3.1), so
    a heartbeat on the READ socket would cut every long poll short.

    recv, in order:
      1. auto-commit when due (set_commit_interval): the offsets after the
         messages returned by EARLIER calls, which the application is done
         with; the message this call returns is committed by a later one.
      2. self-fencing: no answered heartbeat for a whole session means the
         broker has probably given our partitions to others: stop delivering
         all of them at once (no commit: it would be refused) and rejoin.
      3. heartbeat when due (every heartbeat_ms the broker names, and at once
         after a change). With auto-commit on, a heartbeat first commits what
         was delivered, so a partition the reply takes away has nothing left
         to commit: it is dropped (buffered records too) and the next
         heartbeat, sent at once, tells the broker it is free. New partitions
         start at their committed offset (the earliest retained when none).
         115 UNKNOWN_MEMBER: forget everything, rejoin with an empty id.
      4. a buffered record, else a round of READs with max_wait 0 over the
         partitions held (round robin), else one long poll of one partition,
         no longer than the next heartbeat, ZPER_GROUP_POLL_WAIT_MS or what
         is left of max_wait_ms.

    At least once: a crash redelivers what was returned after the last
    commit; with commit_ms 0, at most one message per partition. Memory is
    bounded by one READ reply (ZPER_CLIENT_READ_BYTES) per partition held.
    Every request is bounded by the timeout (lazy pirate: a late reply never
    reaches the next request, zper_client_request).
    ========================================================================= */

#include "zper_client_wire.h"
#include "zper_zmtp.h"             //  the selftest's stand-in rear encodes records

//  One partition this member holds
typedef struct {
    char *name;                     //  the stored topic, "orders.3"
    int64_t position;               //  next offset to READ; -1 until resolved
    int64_t delivered;              //  offset after the last message returned; -1 none
    int64_t committed;              //  what the broker holds; -1 none
    zframe_t *batch;                //  the last READ's records not yet returned
    const uint8_t *cursor;
} s_partition_t;

struct _zper_group_consumer_t {
    char *endpoint;
    char *group;
    char *topic;
    zper_client_curve_t curve;
    zsock_t *command_socket;        //  NULL until the first request, or after a timeout
    zsock_t *read_socket;
    int timeout_ms;
    int session_ms;
    int commit_ms;                  //  -1 never, 0 every recv
    char member [ZPER_GROUP_MEMBER_ID_MAX + 1];     //  "" until joined
    int32_t generation;
    int heartbeat_ms;
    int64_t heartbeat_due;          //  zclock_mono; 0: at once
    int64_t heartbeat_ok;           //  when the last answered heartbeat was sent
    int64_t commit_due;
    zlistx_t *partitions;           //  s_partition_t, the next to read first
    zlistx_t *assigned;             //  their names, for zper_group_consumer_assigned
    char current [ZPER_TOPIC_NAME_MAX + 1];         //  partition of the last message returned
    int64_t offset;
    int64_t timestamp;
    char error [ZPER_CLIENT_ERROR_MAX];
};

//  A group or topic name as the broker takes it: 1..249 of ALPHA / DIGIT /
//  "." / "_" / "-", not "." or "..".
static bool
s_name_valid (const char *name)
{
    size_t length = name? strlen (name): 0;
    if (length == 0 || length > ZPER_TOPIC_NAME_MAX || streq (name, ".") || streq (name, ".."))
        return false;
    return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
           == length;
}

static void
s_partition_destroy (void **item_p)
{
    s_partition_t *partition = (s_partition_t *) *item_p;
    if (partition) {
        zframe_destroy (&partition->batch);
        free (partition->name);
        free (partition);
        *item_p = NULL;
    }
}

static void *
s_name_dup (const void *name)
{
    return strdup ((const char *) name);
}

static void
s_name_free (void **name_p)
{
    free (*name_p);
    *name_p = NULL;
}

zper_group_consumer_t *
zper_group_consumer_new (const char *endpoint, const char *group, const char *topic)
{
    if (!zper_client_endpoint_valid (endpoint) || !s_name_valid (group) || !s_name_valid (topic)) {
        errno = EINVAL;
        return NULL;
    }
    zper_group_consumer_t *self = (zper_group_consumer_t *) zmalloc (sizeof (zper_group_consumer_t));
    self->endpoint = strdup (endpoint);
    self->group = strdup (group);
    self->topic = strdup (topic);
    self->timeout_ms = ZPER_CLIENT_TIMEOUT_MS;
    self->session_ms = ZPER_GROUP_SESSION_MS;
    self->commit_ms = ZPER_GROUP_COMMIT_INTERVAL_MS;
    self->partitions = zlistx_new ();
    zlistx_set_destructor (self->partitions, s_partition_destroy);
    self->assigned = zlistx_new ();
    zlistx_set_duplicator (self->assigned, s_name_dup);
    zlistx_set_destructor (self->assigned, s_name_free);
    self->offset = -1;
    self->timestamp = -1;
    return self;
}

void
zper_group_consumer_set_timeout (zper_group_consumer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms > 0? timeout_ms: 1;
    zsock_destroy (&self->command_socket);      //  the next request uses the new send timeout
    zsock_destroy (&self->read_socket);
}

int
zper_group_consumer_set_curve (zper_group_consumer_t *self, const char *server_key,
                               const char *cert_path)
{
    assert (self);
    if (zper_client_curve_load (&self->curve, server_key, cert_path, self->error) == -1) {
        errno = EINVAL;
        return -1;
    }
    zsock_destroy (&self->command_socket);      //  the next request connects with CURVE
    zsock_destroy (&self->read_socket);
    return 0;
}

void
zper_group_consumer_set_session (zper_group_consumer_t *self, int session_ms)
{
    assert (self);
    self->session_ms = session_ms;
}

void
zper_group_consumer_set_commit_interval (zper_group_consumer_t *self, int commit_ms)
{
    assert (self);
    self->commit_ms = commit_ms < 0? -1: commit_ms;
    self->commit_due = 0;
}

//  ---- requests ----------------------------------------------------------------

//  A request [command][group][topic], group or topic left out when NULL.
static zmsg_t *
s_request_new (const char *command, const char *group, const char *topic)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, command);
    if (group)
        zmsg_addstr (request, group);
    if (topic)
        zmsg_addstr (request, topic);
    return request;
}

//  A group command (or BOUNDS) on the command socket; *status_p as
//  zper_client_request says.
static zmsg_t *
s_command (zper_group_consumer_t *self, zmsg_t **request_p, int *status_p)
{
    return zper_client_request (&self->command_socket, self->endpoint, &self->curve,
                                self->timeout_ms, 0, request_p, status_p, self->error);
}

static zmsg_t *
s_malformed (zper_group_consumer_t *self, zmsg_t **reply_p, const char *command)
{
    zmsg_destroy (reply_p);
    zper_client_error_set (self->error, "%s sent a malformed %s reply", self->endpoint, command);
    errno = EPROTO;
    return NULL;
}

static bool
s_joined (zper_group_consumer_t *self)
{
    return self->member [0] != 0;
}

static void
s_assigned_refresh (zper_group_consumer_t *self)
{
    zlistx_purge (self->assigned);
    for (s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions); partition;
         partition = (s_partition_t *) zlistx_next (self->partitions))
        zlistx_add_end (self->assigned, partition->name);
}

static s_partition_t *
s_partition_find (zper_group_consumer_t *self, const char *name)
{
    for (s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions); partition;
         partition = (s_partition_t *) zlistx_next (self->partitions))
        if (streq (partition->name, name))
            return partition;
    return NULL;
}

static void
s_partition_drop (zper_group_consumer_t *self, s_partition_t *partition)
{
    void *handle = zlistx_find (self->partitions, partition);
    assert (handle);
    zlistx_delete (self->partitions, handle);
    s_assigned_refresh (self);
    self->heartbeat_due = 0;            //  tell the broker at once that it is free
}

//  Out of the group: deliver nothing, join again at the next heartbeat.
static void
s_forget (zper_group_consumer_t *self)
{
    zlistx_purge (self->partitions);
    zlistx_purge (self->assigned);
    self->member [0] = 0;
    self->generation = 0;
    self->heartbeat_due = 0;
}

//  ---- commits -------------------------------------------------------------------

//  Commit what was delivered of partition. Returns 0, or -1: errno EBUSY
//  (the partition is no longer ours: dropped), ENOENT (our session is
//  over: everything forgotten), or what the request failed with.
static int
s_commit_partition (zper_group_consumer_t *self, s_partition_t *partition)
{
    if (partition->delivered < 0 || partition->delivered <= partition->committed)
        return 0;
    zmsg_t *request = s_request_new ("COMMIT", self->group, partition->name);
    zper_wire_add_int64 (request, partition->delivered);
    zmsg_addstr (request, self->member);
    zper_wire_add_int32 (request, self->generation);
    int status;
    zmsg_t *reply = s_command (self, &request, &status);
    if (reply) {
        zmsg_destroy (&reply);
        partition->committed = partition->delivered;
        return 0;
    }
    if (status == ZPER_STATUS_NOT_ASSIGNED)
        s_partition_drop (self, partition);
    else
    if (status == ZPER_STATUS_UNKNOWN_MEMBER)
        s_forget (self);
    return -1;
}

//  Commit every partition's delivered offset. Stops at the first failure
//  that is not about one partition (a broker that is down is not waited for
//  once per partition). Returns 0 or -1 (errno of the first failure).
static int
s_commit_all (zper_group_consumer_t *self)
{
    int rc = 0, first_errno = 0;
    bool again = true;
    //  A refused partition is dropped from the list: walk it again (each
    //  pass commits or drops at least one partition, so this ends)
    while (again && s_joined (self)) {
        again = false;
        for (s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions); partition;
             partition = (s_partition_t *) zlistx_next (self->partitions)) {
            if (s_commit_partition (self, partition) == 0)
                continue;
            if (rc == 0)
                first_errno = errno;
            rc = -1;
            again = errno == EBUSY;
            break;
        }
    }
    if (rc == -1)
        errno = first_errno;
    return rc;
}

int
zper_group_consumer_commit (zper_group_consumer_t *self)
{
    assert (self);
    self->error [0] = 0;
    return s_joined (self)? s_commit_all (self): 0;
}

//  ---- heartbeats ------------------------------------------------------------------

//  Take the assignment of a heartbeat reply: drop the partitions no longer
//  ours, add the new ones (resolved at their first read).
static void
s_assignment_apply (zper_group_consumer_t *self, zmsg_t *reply)
{
    zhashx_t *assigned = zhashx_new ();
    for (zframe_t *frame = zmsg_first (reply); frame; frame = zmsg_next (reply)) {
        char *name = zframe_strdup (frame);
        zhashx_insert (assigned, name, (void *) 1);
        if (!s_partition_find (self, name) && s_name_valid (name)) {
            s_partition_t *partition = (s_partition_t *) zmalloc (sizeof (s_partition_t));
            partition->name = strdup (name);
            partition->position = -1;
            partition->delivered = -1;
            partition->committed = -1;
            zlistx_add_end (self->partitions, partition);
        }
        free (name);
    }
    zlist_t *revoked = zlist_new ();
    for (s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions); partition;
         partition = (s_partition_t *) zlistx_next (self->partitions))
        if (!zhashx_lookup (assigned, partition->name))
            zlist_append (revoked, partition);
    //  Usually committed already (s_heartbeat commits first). A refused
    //  commit has dropped the partition (116) or everything (115) itself.
    for (s_partition_t *partition = (s_partition_t *) zlist_first (revoked);
         partition && s_joined (self); partition = (s_partition_t *) zlist_next (revoked))
        if (self->commit_ms < 0 || s_commit_partition (self, partition) == 0
        ||  (errno != EBUSY && errno != ENOENT))
            s_partition_drop (self, partition);
    zlist_destroy (&revoked);
    zhashx_destroy (&assigned);
    s_assigned_refresh (self);
}

//  One HEARTBEAT (a join when not a member). Returns 0 or -1.
static int
s_heartbeat_once (zper_group_consumer_t *self, int *status)
{
    zmsg_t *request = s_request_new ("HEARTBEAT", self->group, self->topic);
    zmsg_addstr (request, self->member);
    zper_wire_add_int32 (request, self->session_ms);
    for (s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions); partition;
         partition = (s_partition_t *) zlistx_next (self->partitions))
        zmsg_addstr (request, partition->name);
    int64_t sent = zclock_mono ();
    zmsg_t *reply = s_command (self, &request, status);
    if (!reply)
        return -1;
    zframe_t *member = zmsg_pop (reply);
    zframe_t *generation = zmsg_pop (reply);
    zframe_t *heartbeat = zmsg_pop (reply);
    bool valid = member && zframe_size (member) > 0 && zframe_size (member) <= ZPER_GROUP_MEMBER_ID_MAX
              && generation && zframe_size (generation) == ZPER_WIRE_INT32_SIZE
              && heartbeat && zframe_size (heartbeat) == ZPER_WIRE_INT32_SIZE
              && zper_wire_get_int32 (zframe_data (heartbeat)) > 0;
    if (valid) {
        memcpy (self->member, zframe_data (member), zframe_size (member));
        self->member [zframe_size (member)] = 0;
        self->generation = zper_wire_get_int32 (zframe_data (generation));
        self->heartbeat_ms = zper_wire_get_int32 (zframe_data (heartbeat));
        self->heartbeat_ok = sent;
        self->heartbeat_due = sent + self->heartbeat_ms;
        s_assignment_apply (self, reply);
    }
    zframe_destroy (&member);
    zframe_destroy (&generation);
    zframe_destroy (&heartbeat);
    if (!valid)
        return s_malformed (self, &reply, "HEARTBEAT"), -1;
    zmsg_destroy (&reply);
    return 0;
}

//  Heartbeat (commit first when auto-committing); on 115, rejoin at once.
static int
s_heartbeat (zper_group_consumer_t *self)
{
    if (s_joined (self) && self->commit_ms >= 0 && s_commit_all (self) == -1
    &&  errno != EBUSY && errno != ENOENT)
        return -1;
    int status;
    int rc = s_heartbeat_once (self, &status);
    if (rc == -1 && status == ZPER_STATUS_UNKNOWN_MEMBER) {
        s_forget (self);
        rc = s_heartbeat_once (self, &status);
    }
    return rc;
}

//  ---- reading ---------------------------------------------------------------------

//  Where a partition starts for this group: its committed offset, else the
//  earliest retained. Returns 0 or -1.
static int
s_position_resolve (zper_group_consumer_t *self, s_partition_t *partition)
{
    zmsg_t *request = s_request_new ("COMMITTED", self->group, partition->name);
    zmsg_t *reply = s_command (self, &request, NULL);
    if (!reply)
        return -1;
    int64_t offset = -2;
    if (zmsg_size (reply) != 2 || zper_wire_frame_int64 (zmsg_first (reply), &offset) == -1
    ||  offset < -1)
        return s_malformed (self, &reply, "COMMITTED"), -1;
    zmsg_destroy (&reply);
    partition->committed = offset;
    if (offset >= 0) {
        partition->position = offset;
        return 0;
    }
    request = s_request_new ("BOUNDS", NULL, partition->name);
    reply = s_command (self, &request, NULL);
    if (!reply)
        return -1;
    int64_t start = -1;
    if (zmsg_size (reply) != 6 || zper_wire_frame_int64 (zmsg_first (reply), &start) == -1
    ||  start < 0)
        return s_malformed (self, &reply, "BOUNDS"), -1;
    zmsg_destroy (&reply);
    partition->position = start;
    return 0;
}

//  A position outside the retained messages (retention went past it): go
//  on from the first retained, or from the end if it was past the end.
static int
s_position_repair (zper_group_consumer_t *self, s_partition_t *partition)
{
    zmsg_t *request = s_request_new ("BOUNDS", NULL, partition->name);
    zmsg_t *reply = s_command (self, &request, NULL);
    if (!reply)
        return -1;
    int64_t start = -1, end = -1;
    if (zmsg_size (reply) != 6 || zper_wire_frame_int64 (zmsg_first (reply), &start) == -1
    ||  zper_wire_frame_int64 (zmsg_next (reply), &end) == -1 || start < 0 || end < start)
        return s_malformed (self, &reply, "BOUNDS"), -1;
    zmsg_destroy (&reply);
    partition->position = partition->position < start? start: end;
    return 0;
}

//  READ partition from its position, waiting up to wait_ms. Returns the
//  number of records now buffered, or -1.
static int
s_fetch (zper_group_consumer_t *self, s_partition_t *partition, int wait_ms)
{
    if (partition->position < 0 && s_position_resolve (self, partition) == -1)
        return -1;
    zmsg_t *request = s_request_new ("READ", NULL, partition->name);
    zper_wire_add_int64 (request, partition->position);
    zper_wire_add_int32 (request, ZPER_CLIENT_READ_BYTES);
    zper_wire_add_int32 (request, wait_ms);
    int status;
    zmsg_t *reply = zper_client_request (&self->read_socket, self->endpoint, &self->curve,
                                         self->timeout_ms, wait_ms, &request, &status, self->error);
    if (!reply && status == ZPER_STATUS_INVALID_OFFSET)
        return s_position_repair (self, partition) == 0? 0: -1;
    if (!reply)
        return -1;
    zframe_t *batch = zmsg_size (reply) == 1? zmsg_pop (reply): NULL;
    int count = batch? zper_client_batch_check (zframe_data (batch), zframe_size (batch)): -1;
    if (count == -1) {
        zframe_destroy (&batch);
        return s_malformed (self, &reply, "READ"), -1;
    }
    zmsg_destroy (&reply);
    zframe_destroy (&partition->batch);
    partition->batch = count? batch: NULL;
    partition->cursor = count? zframe_data (batch): NULL;
    if (!count)
        zframe_destroy (&batch);
    return count;
}

//  The next buffered record of the partition at the head of the list, or
//  NULL. A partition whose buffer runs out goes to the end of the list.
static zmsg_t *
s_take (zper_group_consumer_t *self)
{
    s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions);
    if (!partition || !partition->batch)
        return NULL;
    zmsg_t *msg = zper_client_record_decode (&partition->cursor, &self->offset, &self->timestamp);
    partition->position = self->offset + 1;
    partition->delivered = self->offset + 1;
    snprintf (self->current, sizeof self->current, "%s", partition->name);
    if (partition->cursor >= zframe_data (partition->batch) + zframe_size (partition->batch)) {
        zframe_destroy (&partition->batch);
        partition->cursor = NULL;
        zlistx_move_end (self->partitions, zlistx_cursor (self->partitions));
    }
    return msg;
}

//  One READ of each partition held, without waiting, from the head of the
//  list; the first that gives records stays at the head. Returns the
//  records buffered (0: none anywhere), or -1.
static int
s_read_round (zper_group_consumer_t *self)
{
    size_t partitions = zlistx_size (self->partitions);
    for (size_t index = 0; index < partitions; index++) {
        s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions);
        int count = s_fetch (self, partition, 0);
        if (count != 0)
            return count;
        zlistx_move_end (self->partitions, zlistx_cursor (self->partitions));
    }
    return 0;
}

static int
s_min (int64_t first, int64_t second)
{
    int64_t least = first < second? first: second;
    return least < 0? 0: (int) least;
}

zmsg_t *
zper_group_consumer_recv (zper_group_consumer_t *self, int max_wait_ms)
{
    assert (self);
    self->error [0] = 0;
    int64_t now = zclock_mono ();
    int64_t deadline = now + (max_wait_ms > 0? max_wait_ms: 0);
    if (s_joined (self) && self->commit_ms >= 0 && now >= self->commit_due) {
        if (s_commit_all (self) == -1 && errno != EBUSY && errno != ENOENT)
            return NULL;
        self->commit_due = now + self->commit_ms;
    }
    while (!zsys_interrupted) {
        now = zclock_mono ();
        if (s_joined (self) && now - self->heartbeat_ok >= self->session_ms)
            s_forget (self);            //  self-fencing: others may hold our partitions now
        if (now >= self->heartbeat_due && s_heartbeat (self) == -1)
            return NULL;
        zmsg_t *msg = s_take (self);
        if (msg)
            return msg;
        int count = s_read_round (self);
        if (count == -1)
            return NULL;
        if (count > 0)
            continue;
        now = zclock_mono ();
        int wait_ms = s_min (deadline - now, self->heartbeat_due - now);
        if (wait_ms > ZPER_GROUP_POLL_WAIT_MS)
            wait_ms = ZPER_GROUP_POLL_WAIT_MS;
        if (now >= deadline)
            break;
        if (zlistx_size (self->partitions) == 0)
            zclock_sleep (wait_ms);     //  none held (yet): the next heartbeat may bring some
        else {
            s_partition_t *partition = (s_partition_t *) zlistx_first (self->partitions);
            if (s_fetch (self, partition, wait_ms) == -1)
                return NULL;
            if (!partition->batch && zlistx_first (self->partitions) == partition)
                zlistx_move_end (self->partitions, zlistx_cursor (self->partitions));
        }
    }
    if (zsys_interrupted) {
        zper_client_error_set (self->error, "interrupted");
        errno = EINTR;
    }
    else
        errno = EAGAIN;
    return NULL;
}

const char *
zper_group_consumer_topic (zper_group_consumer_t *self)
{
    assert (self);
    return self->current;
}

int64_t
zper_group_consumer_offset (zper_group_consumer_t *self)
{
    assert (self);
    return self->offset;
}

int64_t
zper_group_consumer_timestamp (zper_group_consumer_t *self)
{
    assert (self);
    return self->timestamp;
}

const char *
zper_group_consumer_member (zper_group_consumer_t *self)
{
    assert (self);
    return self->member;
}

zlistx_t *
zper_group_consumer_assigned (zper_group_consumer_t *self)
{
    assert (self);
    return self->assigned;
}

const char *
zper_group_consumer_error (zper_group_consumer_t *self)
{
    assert (self);
    return self->error;
}

void
zper_group_consumer_destroy (zper_group_consumer_t **self_p)
{
    assert (self_p);
    zper_group_consumer_t *self = *self_p;
    if (!self)
        return;
    //  A broker that does not answer a commit will not answer LEAVE either
    bool reachable = true;
    if (s_joined (self) && self->commit_ms >= 0 && s_commit_all (self) == -1)
        reachable = errno == EBUSY || errno == ENOENT;
    if (s_joined (self) && reachable) {
        zmsg_t *request = s_request_new ("LEAVE", self->group, NULL);
        zmsg_addstr (request, self->member);
        zmsg_t *reply = s_command (self, &request, NULL);
        zmsg_destroy (&reply);
    }
    zsock_destroy (&self->command_socket);
    zsock_destroy (&self->read_socket);
    zper_client_curve_reset (&self->curve);
    zlistx_destroy (&self->partitions);
    zlistx_destroy (&self->assigned);
    free (self->endpoint);
    free (self->group);
    free (self->topic);
    free (self);
    *self_p = NULL;
}

//  ---- selftest ----------------------------------------------------------------
//  A stand-in rear on a real socket: group "grp" on topic "st" with the
//  partitions "st.0" and "st.1", three messages each (frames "st.K-N").
//  It assigns both partitions to whoever heartbeats, except those the test
//  REVOKEs through the actor's pipe; FORGET makes the next group command
//  answer 115. The black-box tests in tests/client run real brokers.

#define TEST_MESSAGES   3

typedef struct {
    zhashx_t *committed;            //  partition -> offset (int64_t, boxed)
    zhashx_t *revoked;
    bool forget;
    bool mute;                      //  heartbeats get no answer
    int members;                    //  ids handed out: "m1", "m2", ...
    int owned;                      //  partitions the last heartbeat listed
    char left [ZPER_GROUP_MEMBER_ID_MAX + 1];
} s_test_group_t;

static void
s_test_status (zmsg_t *reply, uint8_t status)
{
    zmsg_addmem (reply, &status, 1);
}

static void
s_test_read (zmsg_t *request, zmsg_t *reply)
{
    char *topic = zmsg_popstr (request);
    int64_t offset = -1;
    zframe_t *frame = zmsg_pop (request);
    zper_wire_frame_int64 (frame, &offset);
    zframe_destroy (&frame);
    if (offset < 0 || offset > TEST_MESSAGES)
        s_test_status (reply, ZPER_STATUS_INVALID_OFFSET);
    else {
        zchunk_t *batch = zchunk_new (NULL, 0);
        for (; offset < TEST_MESSAGES; offset++) {
            char body [32];
            snprintf (body, sizeof body, "%s-%d", topic, (int) offset);
            zper_frame_t frames [1] = { { body, strlen (body) } };
            uint8_t header [ZPER_CLIENT_RECORD_HEADER_SIZE], encoded [64];
            size_t size = zper_zmtp_encode (frames, 1, encoded);
            zper_wire_put_int64 (header, offset);
            zper_wire_put_int64 (header + ZPER_WIRE_INT64_SIZE, 1000 + offset);
            zper_wire_put_int32 (header + 2 * ZPER_WIRE_INT64_SIZE, (int32_t) size);
            zchunk_extend (batch, header, sizeof header);
            zchunk_extend (batch, encoded, size);
        }
        s_test_status (reply, ZPER_STATUS_OK);
        zmsg_addmem (reply, zchunk_data (batch), zchunk_size (batch));
        zchunk_destroy (&batch);
    }
    zstr_free (&topic);
}

static void
s_test_heartbeat (s_test_group_t *state, zmsg_t *request, zmsg_t *reply)
{
    char *member = zmsg_popstr (request);
    zframe_t *session = zmsg_pop (request);
    zframe_destroy (&session);
    state->owned = (int) zmsg_size (request);
    if (*member && state->forget) {
        state->forget = false;
        s_test_status (reply, ZPER_STATUS_UNKNOWN_MEMBER);
    }
    else {
        if (!*member) {
            zstr_free (&member);
            member = zsys_sprintf ("m%d", ++state->members);
        }
        s_test_status (reply, ZPER_STATUS_OK);
        zmsg_addstr (reply, member);
        zper_wire_add_int32 (reply, state->members);
        zper_wire_add_int32 (reply, 50);
        const char *partitions [] = { "st.0", "st.1" };
        for (int index = 0; index < 2; index++)
            if (!zhashx_lookup (state->revoked, partitions [index]))
                zmsg_addstr (reply, partitions [index]);
    }
    zstr_free (&member);
}

static void
s_test_commit (s_test_group_t *state, zmsg_t *request, zmsg_t *reply)
{
    char *topic = zmsg_popstr (request);
    zframe_t *frame = zmsg_pop (request);
    int64_t offset = -1;
    zper_wire_frame_int64 (frame, &offset);
    zframe_destroy (&frame);
    bool by_member = zmsg_size (request) == 2;
    if (by_member && state->forget) {
        state->forget = false;
        s_test_status (reply, ZPER_STATUS_UNKNOWN_MEMBER);
    }
    else
    if (by_member && zhashx_lookup (state->revoked, topic))
        s_test_status (reply, ZPER_STATUS_NOT_ASSIGNED);
    else {
        int64_t *boxed = (int64_t *) zmalloc (sizeof (int64_t));
        *boxed = offset;
        zhashx_update (state->committed, topic, boxed);
        s_test_status (reply, ZPER_STATUS_OK);
    }
    zstr_free (&topic);
}

static void
s_test_answer (s_test_group_t *state, zmsg_t *request, zmsg_t *reply)
{
    char *command = zmsg_popstr (request);
    char *group = streq (command, "READ") || streq (command, "BOUNDS")? NULL: zmsg_popstr (request);
    if (group && !streq (group, "grp"))
        s_test_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
    else
    if (streq (command, "READ"))
        s_test_read (request, reply);
    else
    if (streq (command, "BOUNDS")) {
        s_test_status (reply, ZPER_STATUS_OK);
        for (int index = 0; index < 6; index++)
            zper_wire_add_int64 (reply, index == 1? TEST_MESSAGES: 0);
    }
    else
    if (streq (command, "HEARTBEAT")) {
        char *topic = zmsg_popstr (request);
        if (streq (topic, "st"))
            s_test_heartbeat (state, request, reply);
        else
            s_test_status (reply, ZPER_STATUS_INVALID_ARGUMENT);
        zstr_free (&topic);
    }
    else
    if (streq (command, "COMMIT"))
        s_test_commit (state, request, reply);
    else
    if (streq (command, "COMMITTED")) {
        char *topic = zmsg_popstr (request);
        int64_t *offset = (int64_t *) zhashx_lookup (state->committed, topic);
        s_test_status (reply, ZPER_STATUS_OK);
        zper_wire_add_int64 (reply, offset? *offset: -1);
        zper_wire_add_int64 (reply, 0);
        zstr_free (&topic);
    }
    else
    if (streq (command, "LEAVE")) {
        char *member = zmsg_popstr (request);
        snprintf (state->left, sizeof state->left, "%s", member? member: "");
        s_test_status (reply, ZPER_STATUS_OK);
        zstr_free (&member);
    }
    else
        s_test_status (reply, ZPER_STATUS_INVALID_COMMAND);
    zstr_free (&group);
    zstr_free (&command);
}

//  Pipe commands: REVOKE partition, FORGET, MUTE and UNMUTE (heartbeats),
//  RESET (no commits, nothing revoked), OWNED (answers the count the last
//  heartbeat listed), LEFT (answers the member that left).
static bool
s_test_control (s_test_group_t *state, zsock_t *pipe)
{
    char *command = NULL, *argument = NULL;
    zstr_recvx (pipe, &command, &argument, NULL);
    bool running = command && !streq (command, "$TERM");
    if (running && streq (command, "REVOKE"))
        zhashx_insert (state->revoked, argument, (void *) 1);
    else
    if (running && streq (command, "FORGET"))
        state->forget = true;
    else
    if (running && (streq (command, "MUTE") || streq (command, "UNMUTE")))
        state->mute = streq (command, "MUTE");
    else
    if (running && streq (command, "RESET")) {
        zhashx_purge (state->committed);
        zhashx_purge (state->revoked);
    }
    else
    if (running && streq (command, "OWNED"))
        zstr_sendf (pipe, "%d", state->owned);
    else
    if (running && streq (command, "LEFT"))
        zstr_send (pipe, state->left);
    if (running)
        zsock_signal (pipe, 0);
    zstr_free (&command);
    zstr_free (&argument);
    return running;
}

static void
s_test_rear (zsock_t *pipe, void *args)
{
    s_test_group_t state = { zhashx_new (), zhashx_new (), false, false, 0, 0, "" };
    zhashx_set_destructor (state.committed, s_name_free);
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert (router);
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    bool running = true;
    while (running) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe)
            running = s_test_control (&state, pipe);
        else
        if (which == router) {
            zmsg_t *request = zmsg_recv (router);
            zmsg_t *reply = zmsg_new ();
            zmsg_append (reply, &(zframe_t *) { zmsg_pop (request) });
            if (state.mute && zframe_streq (zmsg_first (request), "HEARTBEAT"))
                zmsg_destroy (&reply);      //  as if lost: no member id handed out
            else {
                s_test_answer (&state, request, reply);
                zmsg_send (&reply, router);
            }
            zmsg_destroy (&request);
        }
        else
            running = false;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    zhashx_destroy (&state.committed);
    zhashx_destroy (&state.revoked);
}

//  Receive until a message comes (bounded), returning "partition-offset".
static char *
s_test_next (zper_group_consumer_t *consumer)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        zmsg_t *msg = zper_group_consumer_recv (consumer, 100);
        if (msg) {
            char *body = zmsg_popstr (msg);
            char *expected = zsys_sprintf ("%s-%d", zper_group_consumer_topic (consumer),
                                           (int) zper_group_consumer_offset (consumer));
            assert (streq (body, expected));
            assert (zper_group_consumer_timestamp (consumer) == 1000 + zper_group_consumer_offset (consumer));
            zstr_free (&expected);
            zmsg_destroy (&msg);
            return body;
        }
        assert (errno == EAGAIN && streq (zper_group_consumer_error (consumer), ""));
    }
    return NULL;
}

//  Call recv until condition holds (bounded).
#define S_TEST_UNTIL(consumer, condition) \
    for (int attempt = 0; attempt < 100 && !(condition); attempt++) \
        assert (zper_group_consumer_recv (consumer, 20) == NULL && errno == EAGAIN); \
    assert (condition)

static void
s_test_member (const char *endpoint, zactor_t *rear)
{
    //  A standalone commit first: the member starts st.1 after it
    zper_consumer_t *reader = zper_consumer_new (endpoint, NULL);
    assert (zper_consumer_commit (reader, "grp", "st.1", 1) == 0);
    assert (zper_consumer_committed (reader, "grp", "st.1") == 1);
    assert (zper_consumer_committed (reader, "grp", "st.0") == -1);
    assert (zper_consumer_commit (reader, "grp", "st.1", -1) == -1 && errno == EINVAL);
    assert (zper_consumer_committed (reader, "other", "st.1") == -2);

    zper_group_consumer_t *consumer = zper_group_consumer_new (endpoint, "grp", "st");
    assert (consumer);
    zper_group_consumer_set_commit_interval (consumer, 0);
    assert (streq (zper_group_consumer_member (consumer), ""));
    assert (zlistx_size (zper_group_consumer_assigned (consumer)) == 0);
    const char *expected [] = { "st.0-0", "st.0-1", "st.0-2", "st.1-1", "st.1-2" };
    char *first_of_st1 = NULL;
    for (int index = 0, seen_st0 = 0; index < 5; index++) {
        char *body = s_test_next (consumer);
        assert (body);
        //  Each partition in order; partitions may interleave
        if (strncmp (body, "st.0", 4) == 0)
            assert (streq (body, expected [seen_st0++]));
        else
        if (!first_of_st1)
            first_of_st1 = strdup (body);
        zstr_free (&body);
    }
    assert (first_of_st1 && streq (first_of_st1, "st.1-1"));
    free (first_of_st1);
    assert (streq (zper_group_consumer_member (consumer), "m1"));
    assert (zlistx_size (zper_group_consumer_assigned (consumer)) == 2);
    //  Commit after processing: the next recv commits what the last returned
    assert (zper_group_consumer_recv (consumer, 0) == NULL && errno == EAGAIN);
    assert (zper_consumer_committed (reader, "grp", "st.0") == TEST_MESSAGES);
    assert (zper_consumer_committed (reader, "grp", "st.1") == TEST_MESSAGES);

    //  A partition taken away is let go, and the next heartbeat says so
    zstr_sendx (rear, "REVOKE", "st.1", NULL);
    zsock_wait (rear);
    S_TEST_UNTIL (consumer, zlistx_size (zper_group_consumer_assigned (consumer)) == 1);
    assert (streq ((char *) zlistx_first (zper_group_consumer_assigned (consumer)), "st.0"));
    zclock_sleep (60);              //  past a heartbeat interval
    assert (zper_group_consumer_recv (consumer, 0) == NULL);
    zstr_sendx (rear, "OWNED", NULL);
    char *owned = zstr_recv (rear);
    zsock_wait (rear);
    assert (owned && streq (owned, "1"));
    zstr_free (&owned);

    //  115: forget everything and join again with a new id
    zstr_sendx (rear, "FORGET", NULL);
    zsock_wait (rear);
    S_TEST_UNTIL (consumer, streq (zper_group_consumer_member (consumer), "m2"));

    //  Self-fencing: no answered heartbeat for a session, nothing held
    zper_group_consumer_set_session (consumer, 300);
    zper_group_consumer_set_timeout (consumer, 100);
    S_TEST_UNTIL (consumer, zlistx_size (zper_group_consumer_assigned (consumer)) == 1);
    zstr_sendx (rear, "MUTE", NULL);
    zsock_wait (rear);
    for (int attempt = 0; attempt < 50 && zlistx_size (zper_group_consumer_assigned (consumer)); attempt++)
        assert (zper_group_consumer_recv (consumer, 20) == NULL
                && (errno == EAGAIN || errno == ETIMEDOUT));
    assert (zlistx_size (zper_group_consumer_assigned (consumer)) == 0);
    assert (streq (zper_group_consumer_member (consumer), ""));
    zstr_sendx (rear, "UNMUTE", NULL);
    zsock_wait (rear);
    S_TEST_UNTIL (consumer, streq (zper_group_consumer_member (consumer), "m3"));
    zper_group_consumer_destroy (&consumer);
    zper_group_consumer_destroy (&consumer);
    assert (consumer == NULL);
    zstr_sendx (rear, "LEFT", NULL);
    char *left = zstr_recv (rear);
    zsock_wait (rear);
    assert (left && streq (left, "m3"));
    zstr_free (&left);
    zper_consumer_destroy (&reader);
}

//  Manual commits: a partition taken before the commit is refused (EBUSY)
//  and let go; the others are committed.
static void
s_test_manual_commit (const char *endpoint, zactor_t *rear)
{
    zstr_sendx (rear, "RESET", NULL);
    zsock_wait (rear);
    zper_group_consumer_t *consumer = zper_group_consumer_new (endpoint, "grp", "st");
    zper_group_consumer_set_commit_interval (consumer, -1);
    for (int index = 0; index < 2 * TEST_MESSAGES; index++) {
        char *body = s_test_next (consumer);
        assert (body);
        zstr_free (&body);
    }
    zstr_sendx (rear, "REVOKE", "st.0", NULL);
    zsock_wait (rear);
    assert (zper_group_consumer_commit (consumer) == -1 && errno == EBUSY);
    assert (strstr (zper_group_consumer_error (consumer), "NOT_ASSIGNED"));
    assert (zlistx_size (zper_group_consumer_assigned (consumer)) == 1);
    assert (streq ((char *) zlistx_first (zper_group_consumer_assigned (consumer)), "st.1"));
    zper_consumer_t *reader = zper_consumer_new (endpoint, NULL);
    assert (zper_consumer_committed (reader, "grp", "st.0") == -1);
    assert (zper_consumer_committed (reader, "grp", "st.1") == TEST_MESSAGES);
    zper_consumer_destroy (&reader);
    zper_group_consumer_destroy (&consumer);
}

void
zper_group_consumer_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    assert (zper_group_consumer_new ("nonsense", "grp", "st") == NULL && errno == EINVAL);
    assert (zper_group_consumer_new ("tcp://127.0.0.1:1", NULL, "st") == NULL);
    assert (zper_group_consumer_new ("tcp://127.0.0.1:1", "..", "st") == NULL);
    assert (zper_group_consumer_new ("tcp://127.0.0.1:1", "a/b", "st") == NULL);
    assert (zper_group_consumer_new ("tcp://127.0.0.1:1", "grp", "") == NULL);
    zper_group_consumer_t *consumer = zper_group_consumer_new ("tcp://127.0.0.1:1", "my_group-1.x", "st");
    assert (consumer);
    assert (zper_group_consumer_set_curve (consumer, "not a key", "/no/such/cert") == -1);
    assert (*zper_group_consumer_error (consumer));
    assert (zper_group_consumer_offset (consumer) == -1);
    assert (zper_group_consumer_commit (consumer) == 0);     //  nothing delivered yet
    zper_group_consumer_destroy (&consumer);

    //  A broker that is not there: recv reports it within the timeout
    char *unused = zper_client_unused_endpoint ();
    consumer = zper_group_consumer_new (unused, "grp", "st");
    zper_group_consumer_set_timeout (consumer, 100);
    assert (zper_group_consumer_recv (consumer, 0) == NULL && errno == EHOSTUNREACH);
    assert (strstr (zper_group_consumer_error (consumer), unused));
    zper_group_consumer_destroy (&consumer);
    free (unused);

    zactor_t *rear = zactor_new (s_test_rear, NULL);
    char *endpoint = zstr_recv (rear);
    s_test_member (endpoint, rear);
    s_test_manual_commit (endpoint, rear);
    zstr_free (&endpoint);
    zactor_destroy (&rear);
}
