/*  =========================================================================
    zper_broker - what the broker's components share

    Every component (front, ack, rear, relay) is a zactor started with a
    pointer to one zper_broker_t, owned by the manager and valid until every
    component has stopped. Components talk to each other only over the
    inproc endpoints below, never by shared state other than the log and
    the stats and the ack subscriptions (all thread-safe).

        front worker N --PUSH acks--> ack --XPUB tcp: [topic][id][position]
                       \--PUB visible bus N--> rear workers, relay

    Each front worker publishes its own visible bus (the topics it owns),
    so a wake-up reaches readers straight from the thread that wrote the
    data; every reader subscribes to all of them.

    Every actor answers "PING" with "PONG" on its pipe (the manager's
    heartbeat) and stops on "$TERM".

    Security (security.curve = 1, docs/security.md): broker->security makes
    every network socket a CURVE server (zper_broker_bind), and every thread
    that reads requests off the network keeps its own zper_guard_t
    (zper_broker_guard_new), checks each message's key against the topic it
    names, and refreshes the guard from its loop (zper_broker_guard_tick).
    With security off, security is NULL, so are the guards, and no code
    path does anything more than test that pointer.
    ========================================================================= */

#ifndef ZPER_BROKER_H_INCLUDED
#define ZPER_BROKER_H_INCLUDED

#include <czmq.h>
#include "zper_config.h"
#include "zper_log.h"
#include "zper_stats.h"
#include "zper_pool.h"
#include "zper_subscriptions.h"
#include "zper_security.h"
#include "zper_guard.h"
#include "zper_gate.h"
#include "zper_cluster.h"
#include "zper_offsets.h"
#include "zper_groups.h"

//  Front workers push the acks of newly durable messages here (ack binds).
#define ZPER_INPROC_NOTES       "inproc://zper-notes"
//  Front worker N publishes "topic is visible up to N" here (the worker binds).
#define ZPER_INPROC_VISIBLE     "inproc://zper-visible-%d"
//  Cluster mode: the replication actor tells front worker N that a
//  partition's high-watermark moved, as [topic][hw:int64] (the worker binds PULL).
//  Sent also when the partition's role or epoch changes: the worker then
//  fails the replies it holds with 110 at once, not at its next write.
#define ZPER_INPROC_COMMIT      "inproc://zper-commit-%d"

typedef struct {
    const zper_config_t *config;
    zper_log_t *log;
    zper_stats_t *stats;
    bool verbose;                       //  zperd -v: log each client error and component event
    zper_subscriptions_t *acks_wanted;  //  what the ack socket's subscribers hold: the
                                        //  ack actor keeps it, front workers ask it
    zper_security_t *security;          //  CURVE and ZAP (security.curve = 1), else NULL
    zper_cluster_t *cluster;            //  cluster mode (cluster.etcd set, docs/cluster.md), else NULL
    zper_offsets_t *offsets;            //  consumer groups' committed offsets (base_dir/__consumer_offsets)
    zper_groups_t *groups;              //  consumer groups: members and assignments
} zper_broker_t;

//  A note on the visible bus: [topic][from:int64][visible:int64][position:int64]
//  [stamps: received_us:int64 noted_us:int64]: messages [from, visible) of
//  topic became visible to readers (written or durable, as the log's
//  visibility says); visible_position is the legacy byte position of
//  visible. The stamps time the hops (zper_hops.h): when the front received
//  the oldest write the note covers (0: not known) and when the note was
//  sent; zper_broker_note_stamps reads them.
typedef struct {
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    int64_t from_offset;
    int64_t visible_offset;
    int64_t visible_position;
} zper_visible_note_t;

//  Fill broker for config: start security when security.curve is 1 (its
//  certificate, zauth on its folder), open the log (recovering it), new
//  stats and an empty ack subscription set. Returns 0, or -1 after logging
//  one line naming the problem (a missing security key, a bad certificate,
//  the data folder); nothing is then left to close.
int
    zper_broker_open (zper_broker_t *self, const zper_config_t *config, bool verbose);

//  The STATS object (docs/protocol.md 3.1): zper_stats_json_filtered's
//  counters and topics (only those listed says yes to; all when NULL),
//  with the consumer groups as "groups" (zper_groups_json). What the rear
//  answers STATS with and what the metrics endpoint renders. Caller frees.
char *
    zper_broker_stats_json (zper_broker_t *self, zper_stats_topic_fn *listed, void *argument);

//  Close what zper_broker_open opened, once every component has stopped
//  (security last: their sockets are closed). Safe to call again.
void
    zper_broker_close (zper_broker_t *self);

//  Start an actor that reports its start-up on the pipe with "READY" or
//  "FAIL <reason>". Returns the running actor, or NULL after logging the
//  reason as "<name>: <reason>".
zactor_t *
    zper_broker_start (zactor_fn *actor, zper_broker_t *broker, const char *name);

//  What an actor sends on its pipe after start-up: READY, or FAIL with a
//  reason (the actor must then wait for $TERM).
void
    zper_broker_ready (zsock_t *pipe);
void
    zper_broker_fail (zsock_t *pipe, const char *format, ...);

//  Apply the config's socket options (receive HWM, kernel buffers; ROUTER
//  handover, so a reconnecting client keeps its identity) to a socket
//  facing the network, make it a CURVE server named name (for refusal
//  logs) when security is on, and bind it. Call from the socket's thread.
//  Returns 0, or -1 with a reason in reason.
int
    zper_broker_bind (zper_broker_t *self, zsock_t *socket, const char *name,
                      const char *endpoint, char *reason, size_t reason_size);

//  A guard for the calling thread over security.keys, or NULL when
//  security is off, or when the folder cannot be read (the caller must
//  then refuse everything: fail its start, or answer 109).
zper_guard_t *
    zper_broker_guard_new (zper_broker_t *self);

//  Check msg's key for access to topic (zper_guard_check), counting in
//  stats the connections a CUT verdict closed. FORBIDDEN is left to the
//  caller to count (a front write is counted with its 109 reply). guard
//  must not be NULL.
zper_guard_verdict_t
    zper_broker_guard_check (zper_broker_t *self, zper_guard_t *guard, zmq_msg_t *msg,
                             int access, const char *topic, size_t topic_size);

//  Refresh guard if due (zper_guard_refresh), counting what it cut.
//  Returns the milliseconds until it is due again, for a poll timeout, or
//  -1 when guard is NULL.
int
    zper_broker_guard_tick (zper_broker_t *self, zper_guard_t *guard);

//  Take one subscription message of an XPUB: through gate with security
//  on (counting refusals as forbidden, cuts as cut_off), else straight
//  into subscriptions.
void
    zper_broker_subscription_recv (zper_broker_t *self, void *xpub, zper_gate_t *gate,
                                   zper_guard_t *guard, zper_subscriptions_t *subscriptions);

//  The smaller of two poll timeouts, -1 meaning none.
int
    zper_broker_timeout_min (int timeout, int other);

//  Receive one message from socket as a zmsg, with its frame number index
//  (0: the first) also kept whole in kept (closed first; it keeps what
//  libzmq attached: the sender's key, for a guard). kept is left empty
//  when the message has no such frame. Returns NULL when nothing came.
zmsg_t *
    zper_broker_recv_keeping (zsock_t *socket, size_t index, zmq_msg_t *kept);

//  The visible bus of front worker index: a PUB that never drops (a reader
//  that missed a wake-up would wait for the next one). NULL when the
//  endpoint is taken (another broker in this process).
zsock_t *
    zper_broker_bus_publisher (int index);

//  A SUB on the visible buses of every front worker of config, for topics
//  starting with prefix ("" for all; NULL for none yet: the caller
//  subscribes when it needs notes); in cluster mode also on the
//  replication actor's, index config->front_workers.
zsock_t *
    zper_broker_bus_subscriber (const zper_config_t *config, const char *prefix);

//  Listening to the bus only while someone wants its notes (a rear worker
//  with a poll or a stream, the relay with a reader or a subscriber): the
//  bus carries a note per write group of every topic, and an idle
//  listener would wake for each. A subscription reaches the publishers
//  late (libzmq applies it at one of their later sends), so a note sent
//  meanwhile may be lost: ZPER_REAR_BUS_SETTLE_MS after subscribing, the
//  listener is told to look at the log itself once. It leaves
//  ZPER_REAR_BUS_LINGER_MS after it was last busy, so that a reader that
//  polls again and again does not subscribe each time.
typedef struct {
    uint64_t listening;                 //  0: not subscribed; else counts the subscribes
    uint64_t subscribes;
    int64_t settle_ms;                  //  when the last subscription surely holds; 0: done
    int64_t idle_since_ms;              //  subscribed and not busy since; 0: busy
} zper_bus_interest_t;

//  Subscribe bus to every note, or leave it, as busy says at monotonic
//  time now. Sets *settled when a new subscription holds from now on (the
//  caller looks at the log once). Returns the ms until this must run again
//  (settle or linger), or -1.
int64_t
    zper_broker_bus_interest (zper_bus_interest_t *self, zsock_t *bus, bool busy, int64_t now,
                              bool *settled);

//  Send a visible note on a bus (without allocating), and decode one.
//  Decoding returns 0, or -1 when msg is not a well-formed note.
void
    zper_broker_note_send (zsock_t *bus, const zper_visible_note_t *note);

//  Send a note whose oldest write the front received at received_us
//  (zper_hops_now; 0: not known); zper_broker_note_send sends 0. Read a
//  note's stamps (0 and 0 when it has none).
void
    zper_broker_note_send_stamped (zsock_t *bus, const zper_visible_note_t *note,
                                   int64_t received_us);
void
    zper_broker_note_stamps (zmsg_t *msg, int64_t *received_us, int64_t *noted_us);
int
    zper_broker_note_decode (zmsg_t *msg, zper_visible_note_t *note);

//  Handle a pipe command common to every actor: "PING" (answers PONG).
//  Returns true when the command was "$TERM".
bool
    zper_broker_pipe_command (zsock_t *pipe, const char *command);

//  Read and handle one command on the pipe of a component that runs a pool
//  of workers (front, rear): PING is answered only while every worker
//  answers, because a stuck worker is a stuck component; anything else as
//  zper_broker_pipe_command. name labels the log line of a silent worker.
//  Returns true on $TERM or when the pipe was interrupted.
bool
    zper_broker_pool_command (zsock_t *pipe, zper_pool_t *workers, const char *name);

//  For selftests: a client socket of type, with a later-revision identity
//  naming topic in mode, a 5 s receive timeout, connected to endpoint.
zsock_t *
    zper_broker_test_client (int type, const char *endpoint, const char *topic, uint8_t mode);

//  Self test of this class
void
    zper_broker_test (bool verbose);

#endif
