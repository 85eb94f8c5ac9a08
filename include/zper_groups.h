/*  =========================================================================
    zper_groups - consumer groups: members, partition assignment, commits

    The broker side of consumer groups (docs/protocol.md 3.3, docs/client.md
    Groups). A member heartbeats [group][topic][member][session][owned...]
    on the rear socket; the broker keeps the group's live members, shares
    the topic's partitions among them (round-robin over members in join
    order), and answers each heartbeat with the partitions that member may
    deliver now. A partition moves in two steps, so that two members never
    deliver it at once: its old owner is first told to let go (it stops,
    commits and reports it no longer owns it in its next heartbeat, or its
    session expires), only then is it given to the new owner. A member
    whose session expired is forgotten; its next heartbeat or commit gets
    115 UNKNOWN_MEMBER and it must rejoin with an empty member id.

    A topic's partitions are the stored topics "T.0".."T.n" (cluster mode:
    the n partitions etcd lists for T); a topic T with no such partitions
    is one partition, T itself. Committed offsets live in zper_offsets.

    Thread-safe: one mutex; every call takes now_ms (wall clock) so that
    expiry is decided by the caller's clock and tests can drive it.
    ========================================================================= */

#ifndef ZPER_GROUPS_H_INCLUDED
#define ZPER_GROUPS_H_INCLUDED

#include <czmq.h>
#include "zper_config.h"
#include "zper_log.h"
#include "zper_offsets.h"
#include "zper_cluster.h"

typedef struct _zper_groups_t zper_groups_t;

//  What a heartbeat answers (status 100): the member's id (new on a
//  join), the group's generation (it grows at every change of the
//  assignment), how often to heartbeat, and the partitions the member may
//  deliver now (a list of strings; the caller destroys it).
typedef struct {
    char member [ZPER_GROUP_MEMBER_ID_MAX + 1];
    int32_t generation;
    int32_t heartbeat_ms;
    zlistx_t *assigned;
} zper_groups_answer_t;

//  Groups over log (partition lists, ends and timestamps for lag) and
//  offsets; cluster, when not NULL, names the partitions of clustered
//  topics. Limits and sessions from config (groups.*). Returns NULL only
//  when out of memory.
zper_groups_t *
    zper_groups_new (const zper_config_t *config, zper_log_t *log, zper_offsets_t *offsets,
                     zper_cluster_t *cluster);

//  Destroy. Idempotent; nulls *self_p.
void
    zper_groups_destroy (zper_groups_t **self_p);

//  An empty list of partition names that copies and frees its names: what
//  a heartbeat's owned list is made of.
zlistx_t *
    zper_groups_names_new (void);

//  A member's heartbeat. member "" joins (a new id is made); owned lists
//  the partitions the member still delivers (NULL: none). Returns the
//  status: 100 with answer filled, 115 unknown member, 117 a limit
//  (groups.max_groups, max_members), 103 a bad session (outside
//  groups.min_session_ms..max_session_ms) or a topic other than the one
//  the group consumes.
uint8_t
    zper_groups_heartbeat (zper_groups_t *self, const char *group, const char *topic,
                           const char *member, int64_t session_ms, zlistx_t *owned,
                           int64_t now_ms, zper_groups_answer_t *answer);

//  A member leaves (after it stopped delivering and committed): its
//  partitions are free at once. Unknown members are ignored. Returns 100.
uint8_t
    zper_groups_leave (zper_groups_t *self, const char *group, const char *member,
                       int64_t now_ms);

//  Commit offset for (group, topic). member NULL is a standalone commit,
//  taken only while the group has no live members; otherwise member must
//  be live (else 115) and, in generation, hold topic (else 116): its last
//  answer gave it topic, or its last heartbeat reported owning it (a
//  partition being taken away takes its last commit). Returns 100, 101
//  (offset past the topic's read end), 103 (offset < 0), 105 (the disk
//  refused), 107 (the topic cannot be opened now), 117 (groups.max_offsets,
//  or a new group past groups.max_groups), 115 or 116.
uint8_t
    zper_groups_commit (zper_groups_t *self, const char *group, const char *topic,
                        int64_t offset, const char *member, int32_t generation,
                        int64_t now_ms);

//  One JSON object {"G": {...}} of every group (or only group; {} if it
//  has neither members nor offsets): state, generation, members, and per
//  partition committed offset, end, lag and lag_ms (docs/protocol.md 3.3).
//  Caller frees (zstr_free).
char *
    zper_groups_json (zper_groups_t *self, const char *group, int64_t now_ms);

//  Whether a topic is shown to the asker (security on: its key may read
//  it); the same shape as zper_stats_topic_fn.
typedef bool (zper_groups_topic_fn) (const char *topic, void *argument);

//  zper_groups_json showing only what listed says yes to (all when NULL):
//  a group whose topic it refuses is left out, and so is each partition it
//  refuses. Caller frees (zstr_free).
char *
    zper_groups_json_filtered (zper_groups_t *self, const char *group, int64_t now_ms,
                               zper_groups_topic_fn *listed, void *argument);

//  Self test of this class
void
    zper_groups_test (bool verbose);

#endif
