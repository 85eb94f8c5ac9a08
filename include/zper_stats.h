/*  =========================================================================
    zper_stats - the broker's counters: per topic and broker-wide

    Front workers count what they store and what they refuse, the rear and
    relay what they send readers, the manager turns counts into rates on
    its timer, the rear serves it all as one JSON object (STATS,
    docs/protocol.md 3.1) with what the process knows besides: reply
    statuses, fdatasync latency, the log's descriptors and the connections'
    output budgets. Thread-safe: one mutex, held for a few additions at a
    time; reply statuses are atomics.
    ========================================================================= */

#ifndef ZPER_STATS_H_INCLUDED
#define ZPER_STATS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zper_log.h"

typedef struct _zper_stats_t zper_stats_t;

//  Broker-wide counters of refused input (names in the JSON in brackets).
typedef enum {
    ZPER_COUNTER_BAD_IDENTITY,          //  [bad_identity] writes from an unparsable identity
    ZPER_COUNTER_BAD_WRITE,             //  [bad_write] malformed writes (frames, batch encoding)
    ZPER_COUNTER_TOO_LARGE,             //  [too_large] frames or messages over max_message
    ZPER_COUNTER_STORAGE_ERROR,         //  [storage_error] appends or flushes the disk refused
    ZPER_COUNTER_BAD_REQUEST,           //  [bad_request] reader requests answered 101..103
    ZPER_COUNTER_SLOW_CLIENT,           //  [slow_client] writes refused with 108: their writer was over front.reply_budget
    ZPER_COUNTER_REPLY_DROPPED,         //  [reply_dropped] front replies dropped: their writer was over front.reply_budget
    ZPER_COUNTER_ACK_DROPPED,           //  [ack_dropped] acks a subscriber missed (its queue or
                                        //  ack.output_budget was full)
    ZPER_COUNTER_RELAY_PUB_DROPPED,     //  [relay_pub_dropped] relay PUB messages a subscriber
                                        //  missed (its queue or relay.pub.output_budget was full)
    ZPER_COUNTER_REAR_REPLY_DROPPED,    //  [rear_reply_dropped] replies to a reader that did not
                                        //  read (its queue or rear.output_budget was full)
    ZPER_COUNTER_TOPIC_REFUSED,         //  [topic_refused] writes refused with 106 (max_topics
                                        //  reached) or 107 (the topic cannot be opened now)
    ZPER_COUNTER_FORBIDDEN,             //  [forbidden] requests, writes and subscriptions outside
                                        //  their key's grant (109; refused subscriptions)
    ZPER_COUNTER_CUT_OFF,               //  [cut_off] connections closed because their key left
                                        //  security.keys
    ZPER_COUNTER_AUTH_REFUSED_MECHANISM,    //  [auth_refused_mechanism] handshakes refused: not
                                            //  CURVE (set from zper_security_refused)
    ZPER_COUNTER_AUTH_REFUSED_KEY,      //  [auth_refused_key] handshakes refused: unknown key
    ZPER_COUNTER_NOT_LEADER,            //  [not_leader] writes refused or failed with 110 (cluster
                                        //  mode: this node does not, or no longer, lead the partition)
    ZPER_COUNTER_NOT_ENOUGH_REPLICAS,   //  [not_enough_replicas] writes refused with 111 (cluster
                                        //  mode: the partition's ISR is below min_insync_replicas)
    ZPER_COUNTER_COUNT
} zper_counter_t;

//  The sockets whose replies are counted by status.
typedef enum {
    ZPER_STATS_FRONT,                   //  replies to writers (a mode 1/2 success counts as 100)
    ZPER_STATS_REAR,                    //  replies to reader commands
    ZPER_STATS_SOCKETS
} zper_stats_socket_t;

//  Create empty stats. Returns NULL only on allocation failure.
zper_stats_t *
    zper_stats_new (void);

//  Destroy. Idempotent; nulls *self_p.
void
    zper_stats_destroy (zper_stats_t **self_p);

//  Count messages and bytes (their storage encoding) durably written to topic.
void
    zper_stats_written (zper_stats_t *self, const char *topic, uint64_t messages, uint64_t bytes);

//  Count messages and bytes (their storage encoding) sent to readers of
//  topic: READ, FETCH, streaming FETCH, relay. Nothing for 0 messages.
void
    zper_stats_read (zper_stats_t *self, const char *topic, uint64_t messages, uint64_t bytes);

//  Count acks published for topic on the ack socket.
void
    zper_stats_acked (zper_stats_t *self, const char *topic, uint64_t acks);

//  Count one reply with status sent on socket, and read the count.
//  Lock-free: one atomic addition.
void
    zper_stats_status (zper_stats_t *self, zper_stats_socket_t socket, uint8_t status);
uint64_t
    zper_stats_statuses (zper_stats_t *self, zper_stats_socket_t socket, uint8_t status);

//  How many connections STATS lists one by one (the busiest; config
//  metrics.max_peers, ZPER_DEFAULT_METRICS_MAX_PEERS until set).
void
    zper_stats_set_max_peers (zper_stats_t *self, size_t max_peers);

//  Add one to a broker-wide counter, and read it.
void
    zper_stats_count (zper_stats_t *self, zper_counter_t counter);
//  Add amount to a broker-wide counter.
void
    zper_stats_add (zper_stats_t *self, zper_counter_t counter, uint64_t amount);
uint64_t
    zper_stats_counter (zper_stats_t *self, zper_counter_t counter);
//  Set a broker-wide counter kept elsewhere (the handshakes zper_security refused).
void
    zper_stats_set (zper_stats_t *self, zper_counter_t counter, uint64_t value);

//  Recompute per-topic rates over the time since the previous tick.
void
    zper_stats_tick (zper_stats_t *self, int64_t now_ms);

//  One JSON object: counters, for every topic of log its write and read
//  counts, rates, acks and bounds, reply statuses, fsync latency, the
//  log's counts and descriptors, connections (docs/protocol.md 3.1).
//  Caller frees the string (zstr_free).
char *
    zper_stats_json (zper_stats_t *self, zper_log_t *log);

//  Whether a topic is listed to the asker (its key may read it).
typedef bool (zper_stats_topic_fn) (const char *topic, void *argument);

//  The same JSON, listing only the topics listed says yes to (all when NULL).
char *
    zper_stats_json_filtered (zper_stats_t *self, zper_log_t *log, zper_stats_topic_fn *listed,
                              void *argument);

//  Self test of this class
void
    zper_stats_test (bool verbose);

#endif
