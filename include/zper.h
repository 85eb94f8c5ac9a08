/*  =========================================================================
    zper.h - the C client API of ZPER (libzper): producer and consumer

    The one public header of libzper. It needs CZMQ and nothing of ZPER's
    internals; build with `pkg-config --cflags --libs zper`.

    A producer writes to a broker's front socket, a consumer reads from its
    rear socket; both speak docs/protocol.md, so any ZeroMQ binding can do
    what this library does. Every call that talks to the broker is bounded
    in time: a broker that is down or silent is reported as an error (-1 or
    NULL, errno ETIMEDOUT or EHOSTUNREACH, and a one-line reason from
    zper_producer_error / zper_consumer_error) after the object's timeout,
    never by a hang. docs/client.md is the guide, with a complete example.

    A broker with security.curve = 1 takes CURVE clients only: give both
    objects the broker's public key and this client's certificate
    (zper_producer_set_curve, zper_consumer_set_curve; docs/security.md).
    ========================================================================= */

#ifndef ZPER_H_INCLUDED
#define ZPER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "zper_protocol.h"        //  modes, status codes, identity sizes, symbolic offsets

typedef struct _zper_producer_t zper_producer_t;
typedef struct _zper_consumer_t zper_consumer_t;
typedef struct _zper_cluster_producer_t zper_cluster_producer_t;

//  One acknowledgement, as given to an ack handler. status is
//  ZPER_STATUS_OK or the broker's error code. Modes 1 and 2 acknowledge one
//  message: id is its message id (its first frame), first_offset is -1 (the
//  reply does not carry it) and count is 1. Mode 3 acknowledges one batch:
//  id is the batch id (8 bytes, big-endian counter), first_offset the
//  logical offset of its first message and count its number of messages.
//  The id bytes are valid only during the handler call.
typedef struct {
    int status;
    const void *id;
    size_t id_size;
    int64_t first_offset;
    int32_t count;
} zper_ack_t;

typedef void (zper_ack_fn) (const zper_ack_t *ack, void *arg);

//  Where a topic stands (the BOUNDS reply). Readers see the logical offsets
//  [start_offset, durable_offset); positions are the legacy byte offsets of
//  the same two points. Timestamps are ms since the epoch, -1 when the topic
//  holds no message.
typedef struct {
    int64_t start_offset;
    int64_t durable_offset;
    int64_t start_position;
    int64_t durable_position;
    int64_t first_timestamp;
    int64_t last_timestamp;
} zper_topic_bounds_t;

//  ---- producer -------------------------------------------------------------

//  Create a producer of topic on the broker front at endpoint (e.g.
//  "tcp://127.0.0.1:5555") in one of the ZPER_MODE_ modes. The topic
//  travels in the socket identity (later revision: hash, mode, length,
//  topic, random uuid). Returns NULL with errno EINVAL for a bad topic,
//  mode or endpoint (tcp://HOST:PORT, ipc://PATH, inproc://NAME). The
//  producer connects at its first send, with every option set by then: a
//  broker that is not there shows up as an error of that send, after the
//  timeout.
zper_producer_t *
    zper_producer_new (const char *endpoint, const char *topic, int mode);

//  Flush an open batch and wait (at most the ack timeout) for outstanding
//  acknowledgements, then close. Messages still unsent after the timeout
//  are dropped. Idempotent; nulls *self_p.
void
    zper_producer_destroy (zper_producer_t **self_p);

//  Talk CURVE to a broker that has security.curve = 1. server_key is the
//  broker's public key: its 40 Z85 characters, or the path of its public
//  certificate file. cert_path is this client's certificate, as `zper
//  keygen` writes it: the public file, with the secret key in
//  cert_path_secret (which must not be readable by group or others).
//  Call before the first send (which connects: CURVE options count only
//  when set before the connect). Returns 0, or -1 with errno
//  EINVAL (a bad key or certificate) or EBUSY (a message was sent already)
//  and a one-line reason in zper_producer_error. A broker that refuses the
//  key shows as the first send's EHOSTUNREACH, whose reason says so.
int
    zper_producer_set_curve (zper_producer_t *self, const char *server_key, const char *cert_path);

//  How long a send may wait for the broker to accept a message (connection
//  and queue space); default ZPER_CLIENT_TIMEOUT_MS (1000 ms).
void
    zper_producer_set_timeout (zper_producer_t *self, int timeout_ms);

//  How long zper_producer_sync and a mode-2 send wait for durability
//  acknowledgements; default ZPER_CLIENT_ACK_TIMEOUT_MS (5000 ms), more
//  than the broker's default flush interval.
void
    zper_producer_set_ack_timeout (zper_producer_t *self, int timeout_ms);

//  Batch modes: send the open batch once it holds max_bytes of encoded
//  messages or max_messages messages, or once its first message is
//  linger_ms old (checked by every producer call: send, flush, poll).
//  A message larger than max_bytes travels alone in its own batch. Each
//  batch buffer is allocated max_bytes at once and handed to libzmq
//  without a copy. linger_ms is checked against the coarse monotonic
//  clock, so its precision is one kernel tick (1-4 ms).
//  Defaults: 256 KiB, 10000 messages, 10 ms.
void
    zper_producer_set_batch (zper_producer_t *self, size_t max_bytes, size_t max_messages,
                             int linger_ms);

//  Call handler (with arg) for every acknowledgement the producer receives,
//  in any call that receives them. NULL removes it.
void
    zper_producer_set_ack_handler (zper_producer_t *self, zper_ack_fn *handler, void *arg);

//  Send one message (all its frames; by convention the first is a message
//  id). Takes ownership of *msg_p and nulls it, whatever the result. In
//  modes 0 and 1 it is handed to ZeroMQ; in mode 2 the call waits for the
//  broker's acknowledgement; in modes 3 and 4 it is added to the open
//  batch, which is sent if full. Flow control: a send first waits while
//  ZPER_CLIENT_MAX_IN_FLIGHT (10,000) acks are owed in mode 1, or acks
//  that weigh ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT (8 MiB: each echoes
//  its message's first frame), ZPER_CLIENT_MAX_BATCHES_IN_FLIGHT (1,000)
//  in mode 3.
//  Returns 0, or -1 when the message could not be sent (errno
//  EHOSTUNREACH: no broker within the timeout; ETIMEDOUT: acks did not
//  come in time; EMSGSIZE or another status errno: the broker refused it
//  in mode 2, EACCES for 109 FORBIDDEN: this client's key may not write
//  the topic) with zper_producer_error saying why.
int
    zper_producer_send (zper_producer_t *self, zmsg_t **msg_p);

//  Send a message of one frame, copied from data. Same results as send.
int
    zper_producer_send_mem (zper_producer_t *self, const void *data, size_t size);

//  Batch modes: send the open batch now (no-op when empty or in other
//  modes). Returns 0 or -1 as send does; a batch that could not be sent
//  is dropped.
int
    zper_producer_flush (zper_producer_t *self);

//  Receive acknowledgements for up to timeout_ms (0: only those already
//  there) and send an open batch whose linger time has passed. Returns the
//  number of messages acknowledged by this call, or -1 if the broker
//  reported an error for one of them (see zper_producer_error).
int
    zper_producer_poll (zper_producer_t *self, int timeout_ms);

//  Flush, then wait until every message sent so far is acknowledged
//  (modes 1 and 3; other modes return after the flush). Returns 0, or -1
//  on timeout (ETIMEDOUT) or when the broker refused a message since the
//  previous sync (errno from its status, zper_producer_error says which).
int
    zper_producer_sync (zper_producer_t *self);

//  Messages acknowledged so far, messages sent and not yet acknowledged,
//  messages the broker refused.
int64_t
    zper_producer_acked (zper_producer_t *self);
int64_t
    zper_producer_unacked (zper_producer_t *self);
int64_t
    zper_producer_refused (zper_producer_t *self);

//  Mode 3: the highest logical offset acknowledged so far, -1 if none.
int64_t
    zper_producer_last_offset (zper_producer_t *self);

//  A one-line description of the last error (empty string if none).
const char *
    zper_producer_error (zper_producer_t *self);

//  ---- consumer -------------------------------------------------------------

//  Create a consumer on the broker rear at endpoint (e.g.
//  "tcp://127.0.0.1:5556") reading topic from the first retained message.
//  topic may be NULL for a consumer that only lists topics and stats.
//  Returns NULL with errno EINVAL for a bad topic or endpoint. The
//  consumer connects at its first request.
zper_consumer_t *
    zper_consumer_new (const char *endpoint, const char *topic);

//  Close at once (nothing is pending on a reader). Idempotent; nulls *self_p.
void
    zper_consumer_destroy (zper_consumer_t **self_p);

//  Talk CURVE to a broker that has security.curve = 1: server_key and
//  cert_path as for zper_producer_set_curve. May be called at any time:
//  the next request connects with it. Returns 0, or -1 with errno EINVAL
//  and a one-line reason in zper_consumer_error.
int
    zper_consumer_set_curve (zper_consumer_t *self, const char *server_key, const char *cert_path);

//  How long a request may wait for its reply beyond any long poll it asks
//  for; default ZPER_CLIENT_TIMEOUT_MS (1000 ms).
void
    zper_consumer_set_timeout (zper_consumer_t *self, int timeout_ms);

//  Largest batch one READ may return (always at least one whole message);
//  default ZPER_CLIENT_READ_BYTES (1 MiB).
void
    zper_consumer_set_max_bytes (zper_consumer_t *self, int max_bytes);

//  Position the consumer at a logical offset, or at ZPER_OFFSET_EARLIEST /
//  ZPER_OFFSET_LATEST (resolved by a BOUNDS request). Drops any messages
//  already fetched. Returns 0 or -1 (broker unreachable or an error reply).
int
    zper_consumer_seek (zper_consumer_t *self, int64_t offset);

//  Position the consumer at the first message whose timestamp is at or
//  after timestamp_ms (ms since the epoch), or at the durable end if there
//  is none (TIMEOFFSET). Returns 0 or -1.
int
    zper_consumer_seek_time (zper_consumer_t *self, int64_t timestamp_ms);

//  The offset of the next message the consumer will return
//  (ZPER_OFFSET_EARLIEST before a new consumer's first fetch or seek).
int64_t
    zper_consumer_position (zper_consumer_t *self);

//  Fetch the next batch of messages (one READ) into the consumer, waiting
//  up to max_wait_ms on the broker for new data when at the end of the
//  topic. Returns the number of messages fetched (0 when none came), or -1.
//  While fetched messages are still to be returned by recv, it asks
//  nothing and returns 0.
int
    zper_consumer_fetch (zper_consumer_t *self, int max_wait_ms);

//  The next message, as its original frames; the caller owns it. Fetches a
//  batch when none is buffered, waiting up to max_wait_ms for new data
//  (follow a topic by calling this in a loop). Returns NULL with errno
//  EAGAIN when no message came within max_wait_ms, or another errno on
//  error (see zper_consumer_error).
zmsg_t *
    zper_consumer_recv (zper_consumer_t *self, int max_wait_ms);

//  Logical offset and timestamp (ms since the epoch) of the message the
//  last zper_consumer_recv returned; -1 before the first.
int64_t
    zper_consumer_offset (zper_consumer_t *self);
int64_t
    zper_consumer_timestamp (zper_consumer_t *self);

//  Ask the broker where topic (NULL: the consumer's topic) stands. Returns
//  0 and fills bounds, or -1. An unknown topic reads as empty.
int
    zper_consumer_bounds (zper_consumer_t *self, const char *topic, zper_topic_bounds_t *bounds);

//  The broker's topics, sorted, as a list of strings the caller owns and
//  destroys (zlist_destroy), or NULL on error.
zlist_t *
    zper_consumer_topics (zper_consumer_t *self);

//  The broker's statistics as one JSON object (a fresh string the caller
//  frees with zstr_free), or NULL on error.
char *
    zper_consumer_stats (zper_consumer_t *self);

//  A one-line description of the last error (empty string if none).
const char *
    zper_consumer_error (zper_consumer_t *self);

//  ---- cluster administration (docs/cluster.md) ------------------------------
//  Requests to a cluster node's rear. On a single node each fails with
//  errno ENXIO (113 NO_CLUSTER: "not a cluster node, or etcd unreachable");
//  other refusals set errno from their status (EEXIST for 114
//  TOPIC_EXISTS, EINVAL for bad names or counts), the reason in
//  zper_consumer_error. Strings returned are the caller's (zstr_free).

//  METADATA: the cluster's nodes and topic layouts as one JSON object
//  (only topic when not NULL), or NULL.
char *
    zper_consumer_metadata (zper_consumer_t *self, const char *topic);

//  CREATE a clustered topic of partitions partitions of replicas replicas
//  each (0: the cluster's defaults) and min_isr in-sync replicas for an
//  acknowledgement (0: the default). Returns the layout as JSON, or NULL.
char *
    zper_consumer_create_topic (zper_consumer_t *self, const char *topic, int partitions,
                                int replicas, int min_isr);

//  REASSIGN partition of topic to the node ids in replicas ("1,2,4"). The
//  move happens in the background; METADATA shows "targets" until it is
//  done. Returns 0 once the target is recorded, or -1.
int
    zper_consumer_reassign (zper_consumer_t *self, const char *topic, int partition,
                            const char *replicas);

//  CLUSTER: this node's own view of the partitions it leads or follows,
//  as JSON, or NULL.
char *
    zper_consumer_cluster (zper_consumer_t *self);

//  ---- committed offsets and groups (docs/client.md, Groups) ------------------
//  COMMIT offset (the next offset to read) for (group, topic), topic a
//  stored topic ("orders.3"), as a standalone reader: taken only while the
//  group has no live members. Returns 0 once durable, or -1 (errno and
//  zper_consumer_error from the status).
int
    zper_consumer_commit (zper_consumer_t *self, const char *group, const char *topic,
                          int64_t offset);

//  COMMITTED: the offset committed for (group, topic), -1 when none, or
//  -2 on error.
int64_t
    zper_consumer_committed (zper_consumer_t *self, const char *group, const char *topic);

//  GROUPS: every consumer group (only group when not NULL) as one JSON
//  object: members, assignments, committed offsets and lag (docs/protocol.md
//  3.3). NULL on error; the caller frees it (zstr_free).
char *
    zper_consumer_groups (zper_consumer_t *self, const char *group);

//  ---- group consumer (docs/client.md, Groups) -------------------------------
//  A member of a consumer group reading topic T: the broker shares T's
//  partitions ("T.0".."T.n", or T alone) among the group's members. It
//  heartbeats from within recv (call recv at least every session timeout:
//  a member that does not is taken out of the group and its partitions
//  given to others), delivers messages of the partitions it holds, starting
//  at their committed offsets (the earliest retained when none), and
//  commits what it delivered: at least once. A partition taken away is
//  committed and let go before the broker gives it to another member.
typedef struct _zper_group_consumer_t zper_group_consumer_t;

//  A member of group reading topic at the broker's rear endpoint. It joins
//  on the first recv. Returns NULL on bad arguments or out of memory.
zper_group_consumer_t *
    zper_group_consumer_new (const char *endpoint, const char *group, const char *topic);

//  Commit what was delivered, leave the group, and destroy. Idempotent;
//  nulls *self_p.
void
    zper_group_consumer_destroy (zper_group_consumer_t **self_p);

//  CURVE, as zper_consumer_set_curve; before the first recv.
int
    zper_group_consumer_set_curve (zper_group_consumer_t *self, const char *server_key,
                                   const char *cert_path);

//  Session timeout asked of the broker (default ZPER_GROUP_SESSION_MS).
void
    zper_group_consumer_set_session (zper_group_consumer_t *self, int session_ms);

//  Auto-commit: every commit_ms, recv commits the offsets of the messages
//  it returned before this call (the application is done with them: at
//  least once). 0 commits at every recv ("commit after processing": at
//  most one message per partition is delivered again after a crash); -1
//  never (call zper_group_consumer_commit). Default ZPER_GROUP_COMMIT_INTERVAL_MS.
void
    zper_group_consumer_set_commit_interval (zper_group_consumer_t *self, int commit_ms);

//  How long a request to the broker may take (default ZPER_CLIENT_TIMEOUT_MS).
void
    zper_group_consumer_set_timeout (zper_group_consumer_t *self, int timeout_ms);

//  The next message of a partition this member holds, waiting up to
//  max_wait_ms, or NULL (nothing came, or an error: zper_group_consumer_error
//  is then non-empty). The message is the caller's.
zmsg_t *
    zper_group_consumer_recv (zper_group_consumer_t *self, int max_wait_ms);

//  The partition (stored topic) and offset of the message recv last returned.
const char *
    zper_group_consumer_topic (zper_group_consumer_t *self);
int64_t
    zper_group_consumer_offset (zper_group_consumer_t *self);
//  ... and its timestamp (ms since the epoch), as zper_consumer_timestamp.
int64_t
    zper_group_consumer_timestamp (zper_group_consumer_t *self);

//  Commit, now, the offsets after every message recv returned. Returns 0
//  or -1 (a member that lost a partition meanwhile gets -1 with errno
//  EBUSY for it: its next owner will deliver from the last commit).
int
    zper_group_consumer_commit (zper_group_consumer_t *self);

//  This member's id ("" before it joined), and the partitions it holds
//  now (a list the member owns; do not destroy).
const char *
    zper_group_consumer_member (zper_group_consumer_t *self);
zlistx_t *
    zper_group_consumer_assigned (zper_group_consumer_t *self);

//  A one-line description of the last error (empty string if none).
const char *
    zper_group_consumer_error (zper_group_consumer_t *self);

//  ---- cluster producer (docs/cluster.md) -----------------------------------
//  Writes a clustered topic T: partition i is the topic "T.i" on the node
//  that leads it. It asks METADATA of the first bootstrap node that
//  answers, then runs one zper_producer per partition on its leader's
//  front. It keeps every message until the leader acknowledges it; on
//  110 NOT_LEADER, 111 NOT_ENOUGH_REPLICAS, a timeout or a broken
//  connection it asks METADATA again (of any node), connects to the
//  current leader and sends again, in order, what is not acknowledged.
//  Delivery is AT LEAST ONCE: a message whose acknowledgement was lost
//  (the leader died after storing it, or gave up leadership while the
//  write waited for replicas) may be stored twice. Order is kept within
//  a partition. A message still unacknowledged after
//  ZPER_CLUSTER_PRODUCER_RETRIES metadata refreshes counts as refused.
//  Like zper_producer, no background thread: acks and retries happen in
//  the calls (send, sync).

//  Create a producer of clustered topic (its base name, without ".i")
//  through bootstrap, one or more rear endpoints separated by commas
//  ("tcp://10.0.0.1:5556,tcp://10.0.0.2:5556"), in ZPER_MODE_ACK (1) or
//  ZPER_MODE_BATCH_ACK (3). Asks METADATA at once: returns NULL with errno
//  EINVAL (bad arguments), ENXIO (no bootstrap node is in cluster mode),
//  ENOENT (the cluster has no such topic) or EHOSTUNREACH / ETIMEDOUT (no
//  bootstrap node answered).
zper_cluster_producer_t *
    zper_cluster_producer_new (const char *bootstrap, const char *topic, int mode);

//  Sync (at most its bounded retries), then close. Idempotent; nulls *self_p.
void
    zper_cluster_producer_destroy (zper_cluster_producer_t **self_p);

//  CURVE for every node (front and rear), as zper_producer_set_curve: the
//  cluster's nodes share the server key. Call right after _new. Returns 0
//  or -1 (EINVAL).
int
    zper_cluster_producer_set_curve (zper_cluster_producer_t *self, const char *server_key,
                                     const char *cert_path);

//  The time one connection, METADATA request or acknowledgement wait may
//  take before the producer refreshes and retries; default
//  ZPER_CLIENT_ACK_TIMEOUT_MS.
void
    zper_cluster_producer_set_timeout (zper_cluster_producer_t *self, int timeout_ms);

//  Send one message (all its frames; in mode 1 the first frame is its
//  message id) to the partition of key: zper_cluster_partition_for_key, or
//  the next partition round-robin when key is NULL. Takes ownership of
//  *msg_p and nulls it. Returns 0 (the message is queued or sent: its fate
//  is for sync to tell), or -1 with errno EINVAL (no frame).
int
    zper_cluster_producer_send (zper_cluster_producer_t *self, zmsg_t **msg_p, const void *key,
                                size_t key_size);

//  Read acknowledgements for up to timeout_ms (0: only those there), send
//  lingering batches and retry stale partitions whose backoff is over.
//  Returns the number of messages acknowledged by this call.
int
    zper_cluster_producer_poll (zper_cluster_producer_t *self, int timeout_ms);

//  Wait until every message sent so far is acknowledged or refused for
//  good, retrying as described above (bounded by the retries). Returns 0
//  when all were acknowledged, -1 when some were refused since the last
//  sync (zper_cluster_producer_error says the last reason).
int
    zper_cluster_producer_sync (zper_cluster_producer_t *self);

//  Messages acknowledged, messages refused for good, partitions of the topic.
int64_t
    zper_cluster_producer_acked (zper_cluster_producer_t *self);
int64_t
    zper_cluster_producer_refused (zper_cluster_producer_t *self);
int
    zper_cluster_producer_partitions (zper_cluster_producer_t *self);

//  A one-line description of the last error (empty string if none).
const char *
    zper_cluster_producer_error (zper_cluster_producer_t *self);

//  The partition of a key, the same in every client (docs/protocol.md):
//  FNV-1a 32-bit of the key bytes (offset basis 2166136261, prime
//  16777619) modulo partitions. "" -> 2166136261 % partitions.
int
    zper_cluster_partition_for_key (const void *key, size_t key_size, int partitions);

//  ---- helpers --------------------------------------------------------------

//  The hash byte of a client identity: Java's String.hashCode of topic,
//  low 8 bits ("test" -> 0x92). The broker ignores it; legacy code sends it.
uint8_t
    zper_topic_hash (const char *topic);

//  True if topic can travel in a client identity (1..64 letters, digits,
//  or a cluster partition's name: letters and digits, '.', 1..5 digits).
bool
    zper_topic_valid (const char *topic);

//  Name of a status code ("MESSAGE_TOO_LARGE"), "UNKNOWN" if not defined.
const char *
    zper_status_name (int status);

//  Self tests of the client classes
void
    zper_producer_test (bool verbose);
void
    zper_consumer_test (bool verbose);
void
    zper_cluster_producer_test (bool verbose);
void
    zper_group_consumer_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
