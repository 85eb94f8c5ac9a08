/*  =========================================================================
    zper_groups - consumer groups: members, partition assignment, commits

    The one thing to know: a member HOLDS a partition from the answer that
    gave it until a heartbeat of that member no longer reports owning it
    (or the member leaves or expires). Nobody else is ever given a held
    partition, and that alone is the two-step handover: the round-robin
    target may say B, but B's answer leaves the partition out while A
    holds it. Holding counts what A was last told as well as what A last
    reported, because A may have started on a partition its last answer
    gave it before it could say so.

    A group lives in memory only while it has live members; what outlives
    them is in zper_offsets. So memory is bounded by groups.max_groups x
    groups.max_members x groups.max_partitions names, and an empty group
    shown by zper_groups_json is rebuilt from its committed offsets.

    Expiry is lazy: every call that touches a group first removes its
    members whose session ran out at now_ms; nothing runs in between.

    Lock order: groups, then the log, offsets or cluster (which never call
    back). A commit's fdatasync runs outside the groups lock, so one slow
    disk does not stop every other group's heartbeats.
    ========================================================================= */

#include "zper_groups.h"
#include "zper_partition.h"
#include "zper_protocol.h"
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>

typedef struct {
    char id [ZPER_GROUP_MEMBER_ID_MAX + 1];
    int64_t session_ms;
    int64_t heartbeat_ms;               //  wall clock of its last heartbeat
    zlistx_t *owned;                    //  partitions it last reported delivering
    zlistx_t *assigned;                 //  partitions its last answer gave it
    zlistx_t *target;                   //  partitions the round-robin gives it
} member_t;

typedef struct {
    char name [ZPER_GROUP_NAME_MAX + 1];
    char topic [ZPER_TOPIC_NAME_MAX + 1];   //  the base topic it consumes
    int32_t generation;
    zlistx_t *members;                  //  member_t *, in join order
    zlistx_t *partitions;               //  the topic's partitions, numeric order
    int64_t partitions_ms;              //  when partitions was looked up (0: never)
} group_t;

struct _zper_groups_t {
    pthread_mutex_t mutex;
    zper_log_t *log;
    zper_offsets_t *offsets;
    zper_cluster_t *cluster;
    int64_t max_groups;
    int64_t max_members;
    int64_t max_partitions;
    int64_t min_session_ms;
    int64_t max_session_ms;
    zhashx_t *groups;                   //  name -> group_t *: groups with live members
};

//  ---- lists of names --------------------------------------------------------

static int
s_compare_names (const void *first, const void *second)
{
    return strcmp ((const char *) first, (const char *) second);
}

static void
s_name_free (void **item)
{
    zstr_free ((char **) item);
}

static void *
s_name_copy (const void *item)
{
    return strdup ((const char *) item);
}

zlistx_t *
zper_groups_names_new (void)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_duplicator (names, s_name_copy);
    zlistx_set_destructor (names, s_name_free);
    zlistx_set_comparator (names, s_compare_names);
    return names;
}

//  A copy of names (NULL: an empty list), at most max of them.
static zlistx_t *
s_names_copy (zlistx_t *names, int64_t max)
{
    zlistx_t *copy = zper_groups_names_new ();
    if (names)
        for (const char *name = (const char *) zlistx_first (names);
             name && (int64_t) zlistx_size (copy) < max; name = (const char *) zlistx_next (names))
            zlistx_add_end (copy, (void *) name);
    return copy;
}

static bool
s_names_has (zlistx_t *names, const char *name)
{
    return names && zlistx_find (names, (void *) name) != NULL;
}

//  Same names in the same order (NULL is the empty list).
static bool
s_names_equal (zlistx_t *first, zlistx_t *second)
{
    size_t size = first? zlistx_size (first): 0;
    if (size != (second? zlistx_size (second): 0))
        return false;
    if (size == 0)
        return true;
    const char *one = (const char *) zlistx_first (first);
    const char *other = (const char *) zlistx_first (second);
    for (; one && other; one = (const char *) zlistx_next (first),
                         other = (const char *) zlistx_next (second))
        if (strcmp (one, other))
            return false;
    return true;
}

static json_t *
s_names_json (zlistx_t *names)
{
    json_t *array = json_array ();
    if (names)
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names))
            json_array_append_new (array, json_string (name));
    return array;
}

//  ---- members and groups ----------------------------------------------------

static member_t *
s_member_new (void)
{
    member_t *member = (member_t *) zmalloc (sizeof (member_t));
    zuuid_t *uuid = zuuid_new ();
    //  32 hex digits of randomness: an id nobody can guess or reuse by chance
    snprintf (member->id, sizeof member->id, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    for (char *cursor = member->id; *cursor; cursor++)
        *cursor = (char) tolower ((unsigned char) *cursor);
    member->owned = zper_groups_names_new ();
    member->assigned = zper_groups_names_new ();
    member->target = zper_groups_names_new ();
    return member;
}

static void
s_member_destroy (void **item)
{
    member_t *member = *(member_t **) item;
    if (member) {
        zlistx_destroy (&member->owned);
        zlistx_destroy (&member->assigned);
        zlistx_destroy (&member->target);
        free (member);
        *item = NULL;
    }
}

static group_t *
s_group_new (const char *name, const char *topic)
{
    group_t *group = (group_t *) zmalloc (sizeof (group_t));
    snprintf (group->name, sizeof group->name, "%s", name);
    snprintf (group->topic, sizeof group->topic, "%s", topic);
    group->members = zlistx_new ();
    zlistx_set_destructor (group->members, s_member_destroy);
    group->partitions = zper_groups_names_new ();
    return group;
}

static void
s_group_destroy (void **item)
{
    group_t *group = *(group_t **) item;
    if (group) {
        zlistx_destroy (&group->members);
        zlistx_destroy (&group->partitions);
        free (group);
        *item = NULL;
    }
}

static member_t *
s_member_find (group_t *group, const char *id)
{
    for (member_t *member = (member_t *) zlistx_first (group->members); member;
         member = (member_t *) zlistx_next (group->members))
        if (streq (member->id, id))
            return member;
    return NULL;
}

//  Does a live member other than member hold partition (owned as it last
//  reported, or given by its last answer)?
static member_t *
s_holder (group_t *group, member_t *member, const char *partition)
{
    for (member_t *other = (member_t *) zlistx_first (group->members); other;
         other = (member_t *) zlistx_next (group->members)) {
        if (other != member
        &&  (s_names_has (other->owned, partition) || s_names_has (other->assigned, partition)))
            return other;
    }
    return NULL;
}

//  Round-robin over members in join order: partition k goes to member
//  k mod n. Returns true when any member's target changed (the generation
//  then grows).
static bool
s_retarget (group_t *group)
{
    size_t count = zlistx_size (group->members);
    bool changed = false;
    size_t index = 0;
    for (member_t *member = (member_t *) zlistx_first (group->members); member;
         member = (member_t *) zlistx_next (group->members), index++) {
        zlistx_t *target = zper_groups_names_new ();
        size_t position = 0;
        for (const char *partition = (const char *) zlistx_first (group->partitions); partition;
             partition = (const char *) zlistx_next (group->partitions), position++)
            if (position % count == index)
                zlistx_add_end (target, (void *) partition);
        changed |= !s_names_equal (target, member->target);
        zlistx_destroy (&member->target);
        member->target = target;
    }
    return changed;
}

static void
s_retarget_bump (group_t *group)
{
    if (s_retarget (group))
        group->generation++;
}

//  Remove the members whose session ran out at now_ms. Returns true when
//  the group has no member left.
static bool
s_expire (group_t *group, int64_t now_ms)
{
    bool removed = false;
    member_t *member = (member_t *) zlistx_first (group->members);
    while (member) {
        if (now_ms - member->heartbeat_ms > member->session_ms) {
            zlistx_delete (group->members, zlistx_cursor (group->members));
            removed = true;
            member = (member_t *) zlistx_first (group->members);    //  the cursor is gone
        }
        else
            member = (member_t *) zlistx_next (group->members);
    }
    if (removed)
        s_retarget_bump (group);
    return zlistx_size (group->members) == 0;
}

//  The group by name with its expired members removed; NULL (and forgotten)
//  when it has no live member.
static group_t *
s_group_live (zper_groups_t *self, const char *name, int64_t now_ms)
{
    group_t *group = (group_t *) zhashx_lookup (self->groups, name);
    if (group && s_expire (group, now_ms)) {
        zhashx_delete (self->groups, name);
        group = NULL;
    }
    return group;
}

static void
s_expire_all (zper_groups_t *self, int64_t now_ms)
{
    zlistx_t *names = zper_groups_names_new ();
    for (void *group = zhashx_first (self->groups); group; group = zhashx_next (self->groups))
        zlistx_add_end (names, (void *) zhashx_cursor (self->groups));
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        s_group_live (self, name, now_ms);
    zlistx_destroy (&names);
}

//  ---- partitions of a topic -------------------------------------------------

typedef struct {
    int64_t index;
    const char *name;
} numbered_t;

static int
s_compare_numbered (const void *first, const void *second)
{
    const numbered_t *one = (const numbered_t *) first, *other = (const numbered_t *) second;
    if (one->index != other->index)
        return one->index < other->index? -1: 1;
    return strcmp (one->name, other->name);
}

//  The index of stored topic name as a partition of topic ("T.12" -> 12),
//  or -1 when it is not one.
static int64_t
s_partition_index (const char *name, const char *topic)
{
    size_t length = strlen (topic);
    if (strncmp (name, topic, length) || name [length] != '.' || name [length + 1] == 0)
        return -1;
    int64_t index = 0;
    for (const char *cursor = name + length + 1; *cursor; cursor++) {
        if (*cursor < '0' || *cursor > '9' || index > INT32_MAX)
            return -1;
        index = index * 10 + (*cursor - '0');
    }
    return index;
}

//  Cluster mode: the partitions etcd's layout gives topic. Returns 0, or
//  -1 when the layout does not know it.
static int
s_cluster_partitions (zper_groups_t *self, const char *topic, zlistx_t *partitions)
{
    char *text = zper_cluster_metadata_json (self->cluster, topic);
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    json_t *layout = json_object_get (json_object_get (root, "topics"), topic);
    json_int_t count = json_integer_value (json_object_get (layout, "partitions"));
    for (json_int_t index = 0; index < count && index < self->max_partitions; index++) {
        char name [ZPER_TOPIC_NAME_MAX + 32];
        snprintf (name, sizeof name, "%s.%lld", topic, (long long) index);
        if (zper_log_name_valid (name))
            zlistx_add_end (partitions, name);
    }
    json_decref (root);
    return count > 0? 0: -1;
}

//  The partitions of topic: T.<digits> stored topics in numeric order, else
//  T itself if it exists (cluster mode: etcd's layout first); at most
//  groups.max_partitions.
static zlistx_t *
s_partitions_of (zper_groups_t *self, const char *topic)
{
    zlistx_t *partitions = zper_groups_names_new ();
    if (self->cluster && s_cluster_partitions (self, topic, partitions) == 0)
        return partitions;
    zlist_t *topics = zper_log_topics (self->log);
    size_t count = 0, limit = zlist_size (topics);
    numbered_t *numbered = (numbered_t *) zmalloc ((limit + 1) * sizeof (numbered_t));
    bool exists = false;
    for (const char *name = (const char *) zlist_first (topics); name;
         name = (const char *) zlist_next (topics)) {
        int64_t index = s_partition_index (name, topic);
        if (index >= 0)
            numbered [count++] = (numbered_t) { index, name };
        exists |= streq (name, topic);
    }
    qsort (numbered, count, sizeof (numbered_t), s_compare_numbered);
    for (size_t index = 0; index < count && (int64_t) index < self->max_partitions; index++)
        zlistx_add_end (partitions, (void *) numbered [index].name);
    if (count == 0 && exists)
        zlistx_add_end (partitions, (void *) topic);
    free (numbered);
    zlist_destroy (&topics);
    return partitions;
}

//  Look the group's partitions up again when its cached list is older
//  than ZPER_GROUP_PARTITION_REFRESH_MS (or now_ms went back). Returns
//  true when the list changed.
static bool
s_refresh_partitions (zper_groups_t *self, group_t *group, int64_t now_ms)
{
    if (group->partitions_ms
    &&  now_ms >= group->partitions_ms
    &&  now_ms - group->partitions_ms < ZPER_GROUP_PARTITION_REFRESH_MS)
        return false;
    group->partitions_ms = now_ms? now_ms: 1;
    zlistx_t *partitions = s_partitions_of (self, group->topic);
    if (s_names_equal (partitions, group->partitions)) {
        zlistx_destroy (&partitions);
        return false;
    }
    zlistx_destroy (&group->partitions);
    group->partitions = partitions;
    return true;
}

//  ---- limits ----------------------------------------------------------------

//  Would a new group (one with neither live members nor offsets) pass
//  groups.max_groups? Groups with live members or offsets count: the
//  offsets' groups, plus the live ones that have none yet.
static bool
s_groups_full (zper_groups_t *self, const char *name, int64_t now_ms)
{
    if (zhashx_lookup (self->groups, name) || zper_offsets_has_group (self->offsets, name))
        return false;
    s_expire_all (self, now_ms);
    size_t count = zper_offsets_groups (self->offsets);
    for (void *group = zhashx_first (self->groups); group; group = zhashx_next (self->groups))
        if (!zper_offsets_has_group (self->offsets, (const char *) zhashx_cursor (self->groups)))
            count++;
    return (int64_t) count >= self->max_groups;
}

//  ---- public API ------------------------------------------------------------

zper_groups_t *
zper_groups_new (const zper_config_t *config, zper_log_t *log, zper_offsets_t *offsets,
                 zper_cluster_t *cluster)
{
    assert (config && log && offsets);
    zper_groups_t *self = (zper_groups_t *) zmalloc (sizeof (zper_groups_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->log = log;
    self->offsets = offsets;
    self->cluster = cluster;
    self->max_groups = config->groups_max_groups;
    self->max_members = config->groups_max_members;
    self->max_partitions = config->groups_max_partitions;
    self->min_session_ms = config->groups_min_session_ms;
    self->max_session_ms = config->groups_max_session_ms;
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_group_destroy);
    return self;
}

void
zper_groups_destroy (zper_groups_t **self_p)
{
    assert (self_p);
    zper_groups_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->groups);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

//  The heartbeat, under the lock.
static uint8_t
s_heartbeat (zper_groups_t *self, const char *name, const char *topic, const char *id,
             int64_t session_ms, zlistx_t *owned, int64_t now_ms, zper_groups_answer_t *answer)
{
    group_t *group = s_group_live (self, name, now_ms);
    if (group && strcmp (group->topic, topic))
        return ZPER_STATUS_INVALID_ARGUMENT;    //  a group consumes one topic at a time
    member_t *member;
    bool joined = *id == 0;
    if (joined) {
        if (!group) {
            if (s_groups_full (self, name, now_ms))
                return ZPER_STATUS_GROUP_LIMIT;
            group = s_group_new (name, topic);
            zhashx_insert (self->groups, name, group);
        }
        if ((int64_t) zlistx_size (group->members) >= self->max_members)
            return ZPER_STATUS_GROUP_LIMIT;
        member = s_member_new ();
        zlistx_add_end (group->members, member);
    }
    else {
        member = group? s_member_find (group, id): NULL;
        if (!member)
            return ZPER_STATUS_UNKNOWN_MEMBER;
    }
    member->session_ms = session_ms;
    member->heartbeat_ms = now_ms;
    zlistx_destroy (&member->owned);
    member->owned = s_names_copy (owned, self->max_partitions);

    bool changed = s_refresh_partitions (self, group, now_ms);
    if (changed || joined)
        s_retarget_bump (group);

    //  The target, less what another member still holds
    zlistx_destroy (&member->assigned);
    member->assigned = zper_groups_names_new ();
    zlistx_t *target = s_names_copy (member->target, self->max_partitions);
    for (const char *partition = (const char *) zlistx_first (target); partition;
         partition = (const char *) zlistx_next (target))
        if (!s_holder (group, member, partition))
            zlistx_add_end (member->assigned, (void *) partition);
    zlistx_destroy (&target);

    snprintf (answer->member, sizeof answer->member, "%s", member->id);
    answer->generation = group->generation;
    answer->heartbeat_ms = (int32_t) (session_ms / 3);
    answer->assigned = s_names_copy (member->assigned, self->max_partitions);
    return ZPER_STATUS_OK;
}

uint8_t
zper_groups_heartbeat (zper_groups_t *self, const char *group, const char *topic,
                       const char *member, int64_t session_ms, zlistx_t *owned,
                       int64_t now_ms, zper_groups_answer_t *answer)
{
    assert (self && group && topic && member && answer);
    memset (answer, 0, sizeof *answer);
    if (session_ms < self->min_session_ms || session_ms > self->max_session_ms)
        return ZPER_STATUS_INVALID_ARGUMENT;
    pthread_mutex_lock (&self->mutex);
    uint8_t status = s_heartbeat (self, group, topic, member, session_ms, owned, now_ms, answer);
    pthread_mutex_unlock (&self->mutex);
    return status;
}

uint8_t
zper_groups_leave (zper_groups_t *self, const char *name, const char *id, int64_t now_ms)
{
    assert (self && name && id);
    pthread_mutex_lock (&self->mutex);
    group_t *group = s_group_live (self, name, now_ms);
    member_t *member = group? s_member_find (group, id): NULL;
    if (member) {
        //  s_member_find left the cursor on it
        zlistx_delete (group->members, zlistx_cursor (group->members));
        if (zlistx_size (group->members) == 0)
            zhashx_delete (self->groups, name);
        else
            s_retarget_bump (group);
    }
    pthread_mutex_unlock (&self->mutex);
    return ZPER_STATUS_OK;
}

//  May this commit go ahead? Under the lock.
static uint8_t
s_commit_allowed (zper_groups_t *self, const char *name, const char *topic, const char *id,
                  int32_t generation, int64_t now_ms)
{
    group_t *group = s_group_live (self, name, now_ms);
    if (!id) {
        if (group)
            return ZPER_STATUS_NOT_ASSIGNED;    //  its members own its offsets now
        return s_groups_full (self, name, now_ms)? ZPER_STATUS_GROUP_LIMIT: ZPER_STATUS_OK;
    }
    member_t *member = group? s_member_find (group, id): NULL;
    if (!member)
        return ZPER_STATUS_UNKNOWN_MEMBER;
    //  A partition being taken away is still held, and its last commit is
    //  what lets the next owner start where this one stopped
    if (generation != group->generation
    ||  !(s_names_has (member->assigned, topic) || s_names_has (member->owned, topic)))
        return ZPER_STATUS_NOT_ASSIGNED;
    return ZPER_STATUS_OK;
}

uint8_t
zper_groups_commit (zper_groups_t *self, const char *group, const char *topic,
                    int64_t offset, const char *member, int32_t generation, int64_t now_ms)
{
    assert (self && group && topic);
    if (offset < 0)
        return ZPER_STATUS_INVALID_ARGUMENT;
    pthread_mutex_lock (&self->mutex);
    uint8_t status = s_commit_allowed (self, group, topic, member, generation, now_ms);
    pthread_mutex_unlock (&self->mutex);
    if (status != ZPER_STATUS_OK)
        return status;
    //  The end readers can read to; an unknown topic is empty and only takes 0
    int64_t end = 0;
    zper_partition_t *partition = zper_log_partition (self->log, topic, ZPER_PARTITION_DEFAULT,
                                                      false);
    if (!partition && errno != ENOENT)
        return ZPER_STATUS_UNAVAILABLE;
    if (partition) {
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        end = bounds.visible_offset;
    }
    if (offset > end)
        return ZPER_STATUS_INVALID_OFFSET;
    if (zper_offsets_commit (self->offsets, group, topic, offset, now_ms))
        return errno == EDQUOT? ZPER_STATUS_GROUP_LIMIT: ZPER_STATUS_STORAGE_ERROR;
    return ZPER_STATUS_OK;
}

//  ---- JSON ------------------------------------------------------------------

//  The committed topics of each group, gathered from the offsets.
static void
s_gather (const char *group, const char *topic, const zper_committed_t *committed,
          void *argument)
{
    zhashx_t *gathered = (zhashx_t *) argument;
    zlistx_t *topics = (zlistx_t *) zhashx_lookup (gathered, group);
    if (!topics) {
        topics = zper_groups_names_new ();
        zhashx_insert (gathered, group, topics);
    }
    zlistx_add_end (topics, (void *) topic);
}

static void
s_names_destroy (void **item)
{
    zlistx_destroy ((zlistx_t **) item);
}

//  The member of a live group that delivers partition: the one that
//  reported owning it, else the one its last answer gave it to.
static const char *
s_owner (group_t *group, const char *partition)
{
    const char *given = NULL;
    for (member_t *member = (member_t *) zlistx_first (group->members); member;
         member = (member_t *) zlistx_next (group->members)) {
        if (s_names_has (member->owned, partition))
            return member->id;
        if (!given && s_names_has (member->assigned, partition))
            given = member->id;
    }
    return given;
}

static const char *
s_state (group_t *group)
{
    if (!group)
        return "empty";
    for (member_t *member = (member_t *) zlistx_first (group->members); member;
         member = (member_t *) zlistx_next (group->members))
        if (!s_names_equal (member->assigned, member->target))
            return "rebalancing";
    return "stable";
}

//  One group's object without the lag (s_fill_lag adds it outside the
//  lock): partitions maps each partition to its owner. NULL when listed
//  refuses its topic.
static json_t *
s_group_json (group_t *group, const char *name, zlistx_t *committed, int64_t now_ms,
              zper_groups_topic_fn *listed, void *argument)
{
    //  An empty group's topic: its first committed partition's base
    char topic [ZPER_TOPIC_NAME_MAX + 1] = "";
    if (group)
        snprintf (topic, sizeof topic, "%s", group->topic);
    else
    if (committed && zlistx_first (committed)) {
        snprintf (topic, sizeof topic, "%s", (const char *) zlistx_first (committed));
        char *dot = strrchr (topic, '.');
        if (dot && dot > topic && dot [1] && strspn (dot + 1, "0123456789") == strlen (dot + 1))
            *dot = 0;
    }
    if (listed && *topic && !listed (topic, argument))
        return NULL;
    json_t *object = json_object ();
    json_object_set_new (object, "topic", *topic? json_string (topic): json_null ());
    json_object_set_new (object, "state", json_string (s_state (group)));
    json_object_set_new (object, "generation", json_integer (group? group->generation: 0));
    json_t *members = json_array ();
    if (group)
        for (member_t *member = (member_t *) zlistx_first (group->members); member;
             member = (member_t *) zlistx_next (group->members))
            json_array_append_new (members, json_pack ("{s:s, s:I, s:I, s:o, s:o}",
                "id", member->id, "session_ms", (json_int_t) member->session_ms,
                "last_heartbeat_ms_ago", (json_int_t) (now_ms > member->heartbeat_ms
                                                       ? now_ms - member->heartbeat_ms: 0),
                "assigned", s_names_json (member->assigned), "owned", s_names_json (member->owned)));
    json_object_set_new (object, "members", members);
    json_t *partitions = json_object ();
    zlistx_t *lists [2] = { group? group->partitions: NULL, committed };
    for (int which = 0; which < 2; which++) {
        if (!lists [which])
            continue;
        for (const char *partition = (const char *) zlistx_first (lists [which]); partition;
             partition = (const char *) zlistx_next (lists [which])) {
            if (json_object_get (partitions, partition) || (listed && !listed (partition, argument)))
                continue;
            const char *owner = group? s_owner (group, partition): NULL;
            json_object_set_new (partitions, partition, owner? json_string (owner): json_null ());
        }
    }
    json_object_set_new (object, "partitions", partitions);
    return object;
}

//  The timestamp of the message at offset of partition, or -1.
static int64_t
s_timestamp_at (zper_partition_t *partition, int64_t offset)
{
    zper_view_t *view = zper_partition_read (partition, offset, 1);
    zper_message_t message;
    int64_t timestamp = view && zper_view_next (view, &message)? message.timestamp: -1;
    zper_view_destroy (&view);
    return timestamp;
}

//  Replace each partition's owner by its committed offset, end, lag and
//  lag_ms, and add the group's lag (sum) and lag_ms (max).
static void
s_fill_lag (zper_groups_t *self, const char *name, json_t *object, int64_t now_ms)
{
    json_t *partitions = json_object_get (object, "partitions");
    int64_t group_lag = 0, group_lag_ms = 0;
    for (void *iterator = json_object_iter (partitions); iterator;
         iterator = json_object_iter_next (partitions, iterator)) {
        const char *topic = json_object_iter_key (iterator);
        zper_committed_t committed = { -1, 0 };
        zper_offsets_committed (self->offsets, name, topic, &committed);
        zper_bounds_t bounds = { 0 };
        zper_partition_t *partition = zper_log_partition (self->log, topic,
                                                          ZPER_PARTITION_DEFAULT, false);
        if (partition)
            zper_partition_bounds (partition, &bounds);
        int64_t from = committed.offset > bounds.start_offset? committed.offset: bounds.start_offset;
        int64_t lag = bounds.visible_offset > from? bounds.visible_offset - from: 0;
        int64_t lag_ms = 0;
        if (lag > 0) {
            int64_t timestamp = s_timestamp_at (partition, from);
            lag_ms = timestamp >= 0 && now_ms > timestamp? now_ms - timestamp: 0;
        }
        group_lag += lag;
        group_lag_ms = lag_ms > group_lag_ms? lag_ms: group_lag_ms;
        json_t *owner = json_incref (json_object_iter_value (iterator));
        json_object_iter_set_new (partitions, iterator, json_pack ("{s:I, s:I, s:I, s:I, s:o}",
            "committed", (json_int_t) committed.offset, "end", (json_int_t) bounds.visible_offset,
            "lag", (json_int_t) lag, "lag_ms", (json_int_t) lag_ms, "owner", owner));
    }
    json_object_set_new (object, "lag", json_integer (group_lag));
    json_object_set_new (object, "lag_ms", json_integer (group_lag_ms));
}

char *
zper_groups_json_filtered (zper_groups_t *self, const char *name, int64_t now_ms,
                           zper_groups_topic_fn *listed, void *argument)
{
    assert (self);
    json_t *root = json_object ();
    zhashx_t *gathered = zhashx_new ();
    zhashx_set_destructor (gathered, s_names_destroy);
    pthread_mutex_lock (&self->mutex);
    zper_offsets_each (self->offsets, name, s_gather, gathered);
    if (name)
        s_group_live (self, name, now_ms);
    else
        s_expire_all (self, now_ms);
    zlistx_t *names = zper_groups_names_new ();
    for (void *item = zhashx_first (gathered); item; item = zhashx_next (gathered))
        zlistx_add_end (names, (void *) zhashx_cursor (gathered));
    for (void *item = zhashx_first (self->groups); item; item = zhashx_next (self->groups)) {
        const char *key = (const char *) zhashx_cursor (self->groups);
        if ((!name || streq (name, key)) && !zhashx_lookup (gathered, key))
            zlistx_add_end (names, (void *) key);
    }
    zlistx_sort (names);
    for (const char *key = (const char *) zlistx_first (names); key;
         key = (const char *) zlistx_next (names)) {
        json_t *object = s_group_json ((group_t *) zhashx_lookup (self->groups, key), key,
                                       (zlistx_t *) zhashx_lookup (gathered, key), now_ms,
                                       listed, argument);
        if (object)
            json_object_set_new (root, key, object);
    }
    pthread_mutex_unlock (&self->mutex);
    zlistx_destroy (&names);
    zhashx_destroy (&gathered);
    //  Bounds and timestamps come from the log, which may open files: not
    //  under the lock every heartbeat needs
    const char *key;
    json_t *object;
    json_object_foreach (root, key, object)
        s_fill_lag (self, key, object, now_ms);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

char *
zper_groups_json (zper_groups_t *self, const char *group, int64_t now_ms)
{
    return zper_groups_json_filtered (self, group, now_ms, NULL, NULL);
}

//  --------------------------------------------------------------------------
//  Selftest

//  A heartbeat that must answer 100; returns the answer's assigned list
//  as one string "t.0,t.2" (caller frees), and the member id and generation.
static char *
s_test_beat (zper_groups_t *groups, const char *group, char *member, const char *owned,
             int64_t now_ms, int32_t *generation)
{
    zlistx_t *list = zper_groups_names_new ();
    char *copy = strdup (owned);
    for (char *name = strtok (copy, ","); name; name = strtok (NULL, ","))
        zlistx_add_end (list, name);
    free (copy);
    zper_groups_answer_t answer;
    uint8_t status = zper_groups_heartbeat (groups, group, "t", member, 3000, list, now_ms,
                                            &answer);
    assert (status == ZPER_STATUS_OK);
    assert (answer.heartbeat_ms == 1000);
    zlistx_destroy (&list);
    strcpy (member, answer.member);
    if (generation)
        *generation = answer.generation;
    char text [256] = "";
    for (const char *name = (const char *) zlistx_first (answer.assigned); name;
         name = (const char *) zlistx_next (answer.assigned))
        snprintf (text + strlen (text), sizeof text - strlen (text), "%s%s", *text? ",": "", name);
    zlistx_destroy (&answer.assigned);
    return strdup (text);
}

static void
s_test_expect (zper_groups_t *groups, const char *group, char *member, const char *owned,
               int64_t now_ms, const char *expected)
{
    char *assigned = s_test_beat (groups, group, member, owned, now_ms, NULL);
    if (!streq (assigned, expected)) {
        fprintf (stderr, "zper_groups: assigned '%s', expected '%s'\n", assigned, expected);
        assert (false);
    }
    free (assigned);
}

static void
s_test_append (zper_log_t *log, const char *topic, int count, int64_t timestamp_ms)
{
    zper_partition_t *partition = zper_log_partition (log, topic, ZPER_PARTITION_DEFAULT, true);
    assert (partition);
    zper_frame_t frame = { "payload", 7 };
    for (int index = 0; index < count; index++)
        assert (zper_partition_append (partition, &frame, 1, timestamp_ms) >= 0);
    assert (zper_partition_flush (partition) >= 0);
}

//  The parsed GROUPS object of group (asserts it is there).
static json_t *
s_test_json (zper_groups_t *groups, const char *group, int64_t now_ms)
{
    char *text = zper_groups_json (groups, group, now_ms);
    json_t *root = json_loads (text, 0, NULL);
    zstr_free (&text);
    json_t *object = json_incref (json_object_get (root, group));
    json_decref (root);
    assert (object);
    return object;
}

static bool
s_test_only_g (const char *topic, void *argument)
{
    return !streq (topic, "t.1");
}

void
zper_groups_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    config.groups_max_groups = 3;
    config.groups_max_members = 2;
    config.groups_min_session_ms = 1000;
    config.groups_max_session_ms = 3000;
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.base_dir = "groups-test";
    zper_log_t *log = zper_log_new (&log_config);
    assert (log);
    zper_offsets_t *offsets = zper_offsets_open ("groups-test/" ZPER_OFFSETS_FILE, 100);
    assert (offsets);
    //  Six partitions, numeric order (t.10 is not among them: sorted by
    //  number, it would come last), one message each
    for (int index = 0; index < 6; index++) {
        char topic [16];
        snprintf (topic, sizeof topic, "t.%d", index);
        s_test_append (log, topic, 1, 0);
    }
    s_test_append (log, "tx.1", 1, 0);          //  not a partition of t
    zper_groups_t *groups = zper_groups_new (&config, log, offsets, NULL);
    assert (groups);
    int64_t now = 1000000;

    //  A alone gets all six; B joins and gets nothing while A holds them
    char a [ZPER_GROUP_MEMBER_ID_MAX + 1] = "", b [ZPER_GROUP_MEMBER_ID_MAX + 1] = "";
    int32_t generation, first_generation;
    char *assigned = s_test_beat (groups, "g", a, "", now, &first_generation);
    assert (streq (assigned, "t.0,t.1,t.2,t.3,t.4,t.5"));
    free (assigned);
    assert (strlen (a) == 32 && strspn (a, "0123456789abcdef") == 32);
    assigned = s_test_beat (groups, "g", b, "", now, &generation);
    assert (streq (assigned, "") && generation == first_generation + 1 && strcmp (a, b));
    free (assigned);
    json_t *object = s_test_json (groups, "g", now);
    assert (streq (json_string_value (json_object_get (object, "state")), "rebalancing"));
    json_decref (object);
    //  Two steps: A is told its half, but B gets the rest only once A no
    //  longer reports them
    s_test_expect (groups, "g", a, "t.0,t.1,t.2,t.3,t.4,t.5", now, "t.0,t.2,t.4");
    s_test_expect (groups, "g", b, "", now, "");
    s_test_expect (groups, "g", a, "t.0,t.2,t.4,t.5", now, "t.0,t.2,t.4");
    s_test_expect (groups, "g", b, "", now, "t.1,t.3");
    s_test_expect (groups, "g", a, "t.0,t.2,t.4", now, "t.0,t.2,t.4");
    s_test_expect (groups, "g", b, "t.1,t.3", now, "t.1,t.3,t.5");
    object = s_test_json (groups, "g", now);
    assert (streq (json_string_value (json_object_get (object, "state")), "stable"));
    assert (json_integer_value (json_object_get (object, "generation")) == generation);
    assert (json_array_size (json_object_get (object, "members")) == 2);
    json_t *partition = json_object_get (json_object_get (object, "partitions"), "t.5");
    assert (streq (json_string_value (json_object_get (partition, "owner")), b));
    assert (json_integer_value (json_object_get (partition, "committed")) == -1);
    assert (json_integer_value (json_object_get (partition, "lag")) == 1);
    assert (json_integer_value (json_object_get (object, "lag")) == 6);
    assert (!json_object_get (json_object_get (object, "partitions"), "tx.1"));
    json_decref (object);

    //  Commits: member, generation and partition are checked
    assert (zper_groups_commit (groups, "g", "t.0", 1, a, generation, now) == ZPER_STATUS_OK);
    assert (zper_groups_commit (groups, "g", "t.0", 1, a, generation - 1, now)
            == ZPER_STATUS_NOT_ASSIGNED);
    assert (zper_groups_commit (groups, "g", "t.1", 1, a, generation, now)
            == ZPER_STATUS_NOT_ASSIGNED);
    assert (zper_groups_commit (groups, "g", "t.0", 1, "nosuch", generation, now)
            == ZPER_STATUS_UNKNOWN_MEMBER);
    assert (zper_groups_commit (groups, "g", "t.0", 2, a, generation, now)
            == ZPER_STATUS_INVALID_OFFSET);
    assert (zper_groups_commit (groups, "g", "t.0", -1, a, generation, now)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_groups_commit (groups, "g", "t.0", 0, NULL, 0, now) == ZPER_STATUS_NOT_ASSIGNED);
    zper_committed_t committed;
    assert (zper_offsets_committed (offsets, "g", "t.0", &committed) == 0);
    assert (committed.offset == 1 && committed.timestamp_ms == now);

    //  Statuses: a bad session, another topic, unknown member, max_members
    zper_groups_answer_t answer;
    assert (zper_groups_heartbeat (groups, "g", "t", a, 999, NULL, now, &answer)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_groups_heartbeat (groups, "g", "u", a, 3000, NULL, now, &answer)
            == ZPER_STATUS_INVALID_ARGUMENT);
    assert (zper_groups_heartbeat (groups, "g", "t", "nosuch", 3000, NULL, now, &answer)
            == ZPER_STATUS_UNKNOWN_MEMBER);
    assert (zper_groups_heartbeat (groups, "g", "t", "", 3000, NULL, now, &answer)
            == ZPER_STATUS_GROUP_LIMIT);

    //  A stops: after its session B holds all six, and A must rejoin
    s_test_expect (groups, "g", b, "t.1,t.3,t.5", now + 2000, "t.1,t.3,t.5");
    s_test_expect (groups, "g", b, "t.1,t.3,t.5", now + 3001, "t.0,t.1,t.2,t.3,t.4,t.5");
    assert (zper_groups_heartbeat (groups, "g", "t", a, 3000, NULL, now + 3001, &answer)
            == ZPER_STATUS_UNKNOWN_MEMBER);
    assert (zper_groups_commit (groups, "g", "t.0", 1, a, generation, now + 3001)
            == ZPER_STATUS_UNKNOWN_MEMBER);
    now += 3001;

    //  Filtered: t.1 is hidden, the rest shown
    char *text = zper_groups_json_filtered (groups, NULL, now, s_test_only_g, NULL);
    json_t *root = json_loads (text, 0, NULL);
    zstr_free (&text);
    json_t *partitions = json_object_get (json_object_get (root, "g"), "partitions");
    assert (json_object_get (partitions, "t.0") && !json_object_get (partitions, "t.1"));
    json_decref (root);

    //  max_groups counts groups with live members (g) or offsets (s)
    assert (zper_groups_commit (groups, "s", "t.0", 0, NULL, 0, now) == ZPER_STATUS_OK);
    char c [ZPER_GROUP_MEMBER_ID_MAX + 1] = "";
    s_test_expect (groups, "h", c, "", now, "t.0,t.1,t.2,t.3,t.4,t.5");
    assert (zper_groups_heartbeat (groups, "i", "t", "", 3000, NULL, now, &answer)
            == ZPER_STATUS_GROUP_LIMIT);
    assert (zper_groups_commit (groups, "i", "t.0", 0, NULL, 0, now) == ZPER_STATUS_GROUP_LIMIT);
    assert (zper_groups_commit (groups, "s", "t.1", 1, NULL, 0, now) == ZPER_STATUS_OK);
    assert (zper_groups_leave (groups, "h", c, now) == ZPER_STATUS_OK);
    assert (zper_groups_leave (groups, "h", c, now) == ZPER_STATUS_OK);
    assert (zper_groups_commit (groups, "i", "t.0", 0, NULL, 0, now) == ZPER_STATUS_OK);

    //  B leaves: the group is empty, its offsets stay
    assert (zper_groups_leave (groups, "g", b, now) == ZPER_STATUS_OK);
    object = s_test_json (groups, "g", now);
    assert (streq (json_string_value (json_object_get (object, "state")), "empty"));
    assert (streq (json_string_value (json_object_get (object, "topic")), "t"));
    assert (json_array_size (json_object_get (object, "members")) == 0);
    json_decref (object);
    text = zper_groups_json (groups, "nosuch", now);
    assert (streq (text, "{}"));
    zstr_free (&text);

    //  Lag: 100 messages written at 5,000; committed 40 -> lag 60, lag_ms
    //  from the message at offset 40; an unknown topic only takes 0
    s_test_append (log, "lagged", 100, 5000);
    assert (zper_groups_commit (groups, "s", "lagged", 40, NULL, 0, now) == ZPER_STATUS_OK);
    assert (zper_groups_commit (groups, "s", "nowhere", 1, NULL, 0, now)
            == ZPER_STATUS_INVALID_OFFSET);
    assert (zper_groups_commit (groups, "s", "nowhere", 0, NULL, 0, now) == ZPER_STATUS_OK);
    object = s_test_json (groups, "s", 8000);
    partition = json_object_get (json_object_get (object, "partitions"), "lagged");
    assert (json_integer_value (json_object_get (partition, "committed")) == 40);
    assert (json_integer_value (json_object_get (partition, "end")) == 100);
    assert (json_integer_value (json_object_get (partition, "lag")) == 60);
    assert (json_integer_value (json_object_get (partition, "lag_ms")) == 3000);
    assert (json_is_null (json_object_get (partition, "owner")));
    //  t.0 committed 0 (lag 1), t.1 committed 1 (lag 0), nowhere 0
    assert (json_integer_value (json_object_get (object, "lag")) == 61);
    assert (json_integer_value (json_object_get (object, "lag_ms")) == 3000);
    json_decref (object);

    zper_groups_destroy (&groups);
    zper_groups_destroy (&groups);
    zper_offsets_destroy (&offsets);
    zper_log_destroy (&log);
}
