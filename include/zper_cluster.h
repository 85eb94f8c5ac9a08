/*  =========================================================================
    zper_cluster - what a cluster node knows, shared by its threads

    In cluster mode (cluster.etcd set, docs/cluster.md) a topic T is split
    into partitions, partition i being the ordinary log topic "T.i",
    replicated on some nodes. This table is the node's one picture of that:
    the live nodes and their endpoints, the topic layouts, and for every
    partition this node holds a replica of, its role (leader or follower),
    the leader epoch, the leader, the in-sync replicas and the
    high-watermark (HW). The coordinator (zper_coordinator.c, the node's
    etcd session) writes it; the front workers, the replication actor and
    the rear read it.

    The one thing to know is the writer lock. A partition is appended by
    its leader's front worker, or by the replication actor while this node
    follows: zper_cluster_lead_begin and zper_cluster_follow_begin take the
    partition's lock only when the role matches, and role changes take the
    same lock, so the log never has two writers and a worker that held a
    partition across a change finds the epoch it cached gone.

    Thread-safe. With cluster mode off there is no zper_cluster_t at all
    (broker->cluster is NULL).
    ========================================================================= */

#ifndef ZPER_CLUSTER_H_INCLUDED
#define ZPER_CLUSTER_H_INCLUDED

#include <czmq.h>
#include "zper_config.h"
#include "zper_log.h"
#include "zper_partition.h"
#include "zper_epochs.h"
#include "zper_protocol.h"

typedef struct _zper_cluster_t zper_cluster_t;
typedef struct _zper_cluster_view_t zper_cluster_view_t;

typedef enum {
    ZPER_ROLE_NONE,                 //  not a replica here (or not yet decided)
    ZPER_ROLE_LEADER,
    ZPER_ROLE_FOLLOWER
} zper_role_t;

//  A copy of what the node knows of one partition it holds a replica of.
typedef struct {
    char topic [ZPER_TOPIC_MAX + 1];            //  the log topic "T.i"
    zper_role_t role;
    int64_t epoch;                              //  leader epoch, -1 before the first leader
    int leader;                                 //  node id, -1 none
    char leader_endpoint [ZPER_CONFIG_STRING_MAX];  //  its replication endpoint ("" unknown)
    int replicas [ZPER_CLUSTER_REPLICAS_MAX];
    size_t replica_count;
    int isr [ZPER_CLUSTER_REPLICAS_MAX];        //  confirmed: as etcd holds it
    size_t isr_count;
    int isr_wanted [ZPER_CLUSTER_REPLICAS_MAX]; //  leader: what it asked the coordinator for
    size_t isr_wanted_count;
    int min_isr;
    int64_t high_watermark;                     //  readers and acks stop here
    int64_t epoch_start;                        //  leader: the offset its epoch began at
} zper_cluster_partition_t;

//  A table for config (cluster.node, cluster.* keys) over log. Returns
//  NULL when cluster mode is off (cluster.etcd empty).
zper_cluster_t *
    zper_cluster_new (const zper_config_t *config, zper_log_t *log);

//  Idempotent; nulls *self_p. Closes the epochs files it opened.
void
    zper_cluster_destroy (zper_cluster_t **self_p);

//  This node's id (cluster.node) and its config.
int
    zper_cluster_node (zper_cluster_t *self);
const zper_config_t *
    zper_cluster_config (zper_cluster_t *self);

//  Does log topic name "T.i" parse as partition index of base topic T
//  (T: 1..ZPER_CLUSTER_BASE_NAME_MAX letters/digits, index decimal without
//  leading zeros)? base must hold ZPER_CLUSTER_BASE_NAME_MAX + 1 bytes.
bool
    zper_cluster_partition_name (const char *topic, char *base, int *index);

//  ---- front workers (the leader's writer) ---------------------------------

//  Before a front worker appends to (appending true), or writes/flushes
//  (false), log topic: returns 0 with the partition's writer lock held
//  when this node leads it (and, when appending, its confirmed ISR holds
//  min_insync_replicas), setting *epoch; else the status for the writer
//  (ZPER_STATUS_NOT_LEADER, ZPER_STATUS_NOT_ENOUGH_REPLICAS) without the
//  lock. Release with zper_cluster_lead_end.
uint8_t
    zper_cluster_lead_begin (zper_cluster_t *self, const char *topic, bool appending,
                             int64_t *epoch);
void
    zper_cluster_lead_end (zper_cluster_t *self, const char *topic);

//  The partition's high-watermark (-1 when unknown: not a partition here).
int64_t
    zper_cluster_high_watermark (zper_cluster_t *self, const char *topic);

//  ---- replication actor ---------------------------------------------------

//  Bumped whenever a role, leader, epoch, ISR or layout changes: a reader
//  of the table that saw the same generation has nothing new to read.
uint64_t
    zper_cluster_generation (zper_cluster_t *self);

//  Copies of every partition this node holds a replica of (role LEADER or
//  FOLLOWER), as a new list of zper_cluster_partition_t * the caller
//  destroys (the list frees its items).
zlistx_t *
    zper_cluster_partitions (zper_cluster_t *self);

//  A copy of one partition. Returns 0, or -1 when this node holds no
//  replica of topic.
int
    zper_cluster_partition (zper_cluster_t *self, const char *topic,
                            zper_cluster_partition_t *partition);

//  The follower's writer lock: returns 0 with the lock held when this node
//  follows topic, with *epoch the leader epoch it follows, else -1.
int
    zper_cluster_follow_begin (zper_cluster_t *self, const char *topic, int64_t *epoch);
void
    zper_cluster_follow_end (zper_cluster_t *self, const char *topic);

//  The log partition of topic (created on first use) and its epochs file
//  (opened on first use, owned by the table). NULL with errno on failure.
zper_partition_t *
    zper_cluster_log_partition (zper_cluster_t *self, const char *topic);
zper_epochs_t *
    zper_cluster_epochs (zper_cluster_t *self, const char *topic);

//  Set topic's high-watermark (never backwards within an epoch) and cap
//  its log's visibility there (zper_partition_set_visible_limit).
void
    zper_cluster_set_high_watermark (zper_cluster_t *self, const char *topic, int64_t hw);

//  Leader: the ISR it wants (the coordinator makes etcd agree, then the
//  confirmed ISR follows).
void
    zper_cluster_want_isr (zper_cluster_t *self, const char *topic, const int *isr,
                           size_t count);

//  Leader: one follower's progress, for the CLUSTER command.
void
    zper_cluster_follower_progress (zper_cluster_t *self, const char *topic, int node,
                                    int64_t fetch_offset, int64_t durable_offset,
                                    int64_t caught_up_ms);

//  ---- rear (admin and metadata commands) ----------------------------------

//  The METADATA reply (docs/protocol.md): the cluster as this node knows
//  it, or only topic when not NULL. Caller frees.
char *
    zper_cluster_metadata_json (zper_cluster_t *self, const char *topic);

//  The CLUSTER reply: the partitions this node leads or follows, with the
//  followers' progress where it leads. Caller frees.
char *
    zper_cluster_status_json (zper_cluster_t *self);

//  Create topic name with partitions x replicas (<= 0: the config
//  defaults) and min_isr (0: 2 when replicas >= 3, else 1), placing
//  replicas round-robin over the live nodes, in etcd (its own connection:
//  call from any thread; blocks up to a few etcd timeouts). Returns
//  ZPER_STATUS_OK with *layout (the layout JSON, caller frees),
//  INVALID_ARGUMENT (bad name or counts, more replicas than live nodes),
//  TOPIC_EXISTS, or NO_CLUSTER (etcd unreachable), with a one-line
//  reason in reason.
uint8_t
    zper_cluster_create_topic (zper_cluster_t *self, const char *name, int partitions,
                               int replicas, int min_isr, char **layout, char *reason,
                               size_t reason_size);

//  Start moving partition of topic to the replicas listed: records the
//  target in etcd; the leader adds the new replicas, waits for them to be
//  in sync, then drops the others (docs/cluster.md, Reassignment).
//  Returns OK, INVALID_ARGUMENT, or NO_CLUSTER, with reason.
uint8_t
    zper_cluster_reassign (zper_cluster_t *self, const char *topic, int partition,
                           const int *replicas, size_t count, char *reason, size_t reason_size);

//  ---- coordinator (zper_coordinator.c) -------------------------------------
//  What etcd holds, as the coordinator read it, and the coordinator's
//  writes to the table.

//  A live node (a key under nodes/).
typedef struct {
    int id;
    char front [ZPER_CONFIG_STRING_MAX];
    char rear [ZPER_CONFIG_STRING_MAX];
    char replication [ZPER_CONFIG_STRING_MAX];
    char relay [ZPER_CONFIG_STRING_MAX];
    char ack [ZPER_CONFIG_STRING_MAX];
} zper_cluster_node_t;

//  One partition of a topic layout, with its leader key and state key.
typedef struct {
    char topic [ZPER_TOPIC_MAX + 1];            //  "T.i"
    char base [ZPER_CLUSTER_BASE_NAME_MAX + 1]; //  "T"
    int index;                                  //  i
    int partitions;                             //  of the topic
    int replicas [ZPER_CLUSTER_REPLICAS_MAX];
    size_t replica_count;
    int targets [ZPER_CLUSTER_REPLICAS_MAX];    //  a reassignment's new replicas
    size_t target_count;                        //  0: none under way
    int min_isr;
    int64_t topic_revision;                     //  mod_revision of topics/T
    int leader;                                 //  the leader key's node, -1 no key
    int64_t leader_epoch;
    int64_t leader_lease;
    int64_t leader_revision;                    //  mod_revision of leaders/T/i (0: none)
    bool has_state;                             //  state/T/i exists
    int64_t epoch;                              //  state: the latest epoch (0: never led)
    int isr [ZPER_CLUSTER_REPLICAS_MAX];        //  state: the ISR (a new partition: its replicas)
    size_t isr_count;
    int64_t state_revision;                     //  mod_revision of state/T/i (0: none)
} zper_cluster_slot_t;

//  A picture of etcd: nodes and slots, each sorted.
struct _zper_cluster_view_t {
    int64_t revision;
    zlistx_t *nodes;                            //  zper_cluster_node_t *
    zlistx_t *slots;                            //  zper_cluster_slot_t *, by topic then index
    zlistx_t *keys;                             //  leader and state keys, until _finish
    zhashx_t *by_topic;                         //  "T.i" -> its slot (not owned)
};

//  An empty view at revision; zper_cluster_view_add fills it from the
//  keys under the cluster's prefix.
zper_cluster_view_t *
    zper_cluster_view_new (int64_t revision);
void
    zper_cluster_view_destroy (zper_cluster_view_t **self_p);

//  Add one key of the prefix (key relative to it: "nodes/1", "topics/T",
//  "leaders/T/0", "state/T/0") to view. Returns 0, or -1 for a key or
//  value that does not parse (the caller logs it and goes on).
int
    zper_cluster_view_add (zper_cluster_view_t *self, const char *key, const char *value,
                           int64_t mod_revision, int64_t lease);

//  After every key was added: give each slot its leader and state (a
//  partition without a state key starts with epoch 0 and every replica in
//  sync). Sorts.
void
    zper_cluster_view_finish (zper_cluster_view_t *self);

//  The slot of topic "T.i" in view, or NULL; the node of id, or NULL.
zper_cluster_slot_t *
    zper_cluster_view_slot (zper_cluster_view_t *self, const char *topic);
zper_cluster_node_t *
    zper_cluster_view_node (zper_cluster_view_t *self, int id);

//  JSON of a topic layout (slots: its partitions, in order; min_isr from
//  the first) or of a partition's state, for etcd. Caller frees.
char *
    zper_cluster_layout_json (const zper_cluster_slot_t *slots, size_t count);
char *
    zper_cluster_state_json (int64_t epoch, int leader, const int *isr, size_t isr_count);

//  Replace the table's picture of etcd with view, which it takes over
//  (*view_p is nulled), then apply it: partitions this node leads whose
//  leader key no longer names it at its epoch become followers;
//  partitions led elsewhere are followed; partitions it no longer holds a
//  replica of are let go. Leadership is only gained through
//  zper_cluster_become_leader.
void
    zper_cluster_apply_view (zper_cluster_t *self, zper_cluster_view_t **view_p);

//  This node won topic's election at epoch with isr: under the writer
//  lock, record the epoch in its epochs file at the log's end and make it
//  the leader. Returns 0, or -1 (the epochs file could not be written:
//  the caller gives the leadership up).
int
    zper_cluster_become_leader (zper_cluster_t *self, const char *topic, int64_t epoch,
                                const int *isr, size_t isr_count);

//  Stop leading topic (NULL: every partition): the lease was lost, etcd
//  shows another leader, or a reassignment moved it away. It becomes a
//  follower of nobody until a view names a leader.
void
    zper_cluster_resign (zper_cluster_t *self, const char *topic);

//  Leader: the ISR etcd now holds for topic (after a successful CAS).
void
    zper_cluster_confirm_isr (zper_cluster_t *self, const char *topic, const int *isr,
                              size_t count);

//  Self test of this class
void
    zper_cluster_test (bool verbose);

#endif
