/*  =========================================================================
    zper_protocol.h - the broker protocol's numbers, shared by zperd and libzper

    Installed with zper.h: these are wire values (docs/protocol.md), so the
    broker and every client must agree on them, and they are defined here
    once. Nothing but constants.
    ========================================================================= */

#ifndef ZPER_PROTOCOL_H_INCLUDED
#define ZPER_PROTOCOL_H_INCLUDED

//  ---- write modes: the identity's mode byte (section 2) -------------------
#define ZPER_MODE_NONE          0   //  fire and forget, one ZeroMQ message per stored message
#define ZPER_MODE_ACK           1   //  the broker acknowledges each message once durable
#define ZPER_MODE_REQ           2   //  lock-step: each send waits for its acknowledgement
#define ZPER_MODE_BATCH_ACK     3   //  native batches, one acknowledgement per batch
#define ZPER_MODE_BATCH         4   //  native batches, no acknowledgement
#define ZPER_MODE_MAX           ZPER_MODE_BATCH

//  ---- reply status codes (section 4) --------------------------------------
#define ZPER_STATUS_OK                  100
#define ZPER_STATUS_INVALID_OFFSET      101
#define ZPER_STATUS_INVALID_COMMAND     102
#define ZPER_STATUS_INVALID_ARGUMENT    103
#define ZPER_STATUS_MESSAGE_TOO_LARGE   104
#define ZPER_STATUS_STORAGE_ERROR       105
#define ZPER_STATUS_TOPIC_LIMIT         106     //  max_topics reached: a new topic was refused
#define ZPER_STATUS_UNAVAILABLE         107     //  the topic exists but cannot be opened now: retry
#define ZPER_STATUS_SLOW_CLIENT         108     //  unread replies over front.reply_budget: read first
#define ZPER_STATUS_FORBIDDEN           109     //  the key (CURVE) has no grant for this topic
#define ZPER_STATUS_NOT_LEADER          110     //  cluster: this node does not lead the partition: ask METADATA
#define ZPER_STATUS_NOT_ENOUGH_REPLICAS 111     //  cluster: ISR below min_insync_replicas: nothing stored
#define ZPER_STATUS_FENCED              112     //  cluster replication: the leader epochs differ
#define ZPER_STATUS_NO_CLUSTER          113     //  a cluster command on a single node, or etcd unreachable
#define ZPER_STATUS_TOPIC_EXISTS        114     //  CREATE of a topic that exists
#define ZPER_STATUS_UNKNOWN_MEMBER      115     //  groups: no such live member (session expired?): rejoin
#define ZPER_STATUS_NOT_ASSIGNED        116     //  groups: a commit for a partition not this member's now
#define ZPER_STATUS_GROUP_LIMIT         117     //  groups.max_* reached: the group, member or offset was refused
#define ZPER_STATUS_INTERNAL_ERROR      255

//  ---- client identity (section 1) -----------------------------------------
#define ZPER_TOPIC_MAX          64  //  topics in an identity: 1..64 ASCII letters and digits (+ ".N")
#define ZPER_IDENTITY_UUID_SIZE 16
#define ZPER_IDENTITY_PARTITION_DIGITS 5    //  a topic may end "." 1..5 digits: a cluster partition

//  ---- symbolic offsets (OFFSET, relay RESUME, zper_consumer_seek) ----------
#define ZPER_OFFSET_LATEST      -1  //  the durable end: only messages written from now on
#define ZPER_OFFSET_EARLIEST    -2  //  the first retained message

#endif
