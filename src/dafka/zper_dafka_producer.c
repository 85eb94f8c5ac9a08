/*  =========================================================================
    zper_dafka_producer - publishes records of one topic as one Dafka partition

    The actor owns a PUB (RECORD, HEAD, DIRECT_RECORD) and one SUB per peer
    endpoint (ACK and FETCH for its uuid). One SUB per peer, rather than one
    SUB connected to all, is what lets it count DISTINCT stores: ACK carries
    no sender on the wire, but the socket it arrived on names the store.

    Unacknowledged records sit in a ring indexed by sequence, so a FETCH of
    any sequence finds its own content (the reference's defect for
    sequences >= 256 cannot happen: there is no second lookup structure).
    ========================================================================= */

#include "zper_dafka_producer.h"
#include "zper_dafka_proto.h"
#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_defaults.h"
#include <string.h>

#define S_RING_INITIAL  1024

typedef struct _s_producer_t s_producer_t;

typedef struct {
    s_producer_t *producer;
    zsock_t *sub;
    char *endpoint;
    uint64_t acked_until;           //  every sequence below is acked by this peer
} s_peer_t;

struct _s_producer_t {
    zsock_t *pipe;
    zloop_t *loop;
    zsock_t *pub;
    zper_dafka_beacon_t *beacon;
    zhashx_t *peers;                //  endpoint -> s_peer_t
    zlist_t *retired;               //  s_peer_t gone silent, destroyed one beacon tick later
    zper_dafka_msg_t *msg;          //  reused for every send and receive
    char topic [ZPER_DAFKA_STRING_MAX + 1];
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
    zframe_t **ring;                //  unacked records, ring [(first + n) % capacity]
    size_t capacity;
    size_t first;
    size_t count;
    uint64_t first_sequence;        //  sequence of ring [first]
    uint64_t next_sequence;
    uint64_t min_acks;
    int64_t head_interval_ms;
    bool terminate_unacked;
    bool terminating;               //  STOP received: finishing the ACKs
    bool stopped;                   //  STOP answered: waiting for $TERM
    bool verbose;
    uint64_t malformed;
};

struct _zper_dafka_producer_t {
    zactor_t *actor;
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
};

typedef struct {
    zconfig_t *config;
    const char *topic;
    char *uuid;
} s_arguments_t;

//  ---- the unacked ring -----------------------------------------------------------

static zframe_t *
s_ring_get (s_producer_t *self, uint64_t sequence)
{
    return self->ring [(self->first + (sequence - self->first_sequence)) % self->capacity];
}

static void
s_ring_push (s_producer_t *self, zframe_t *record)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity * 2;
        zframe_t **ring = (zframe_t **) zmalloc (capacity * sizeof (zframe_t *));
        for (size_t index = 0; index < self->count; index++)
            ring [index] = self->ring [(self->first + index) % self->capacity];
        free (self->ring);
        self->ring = ring;
        self->capacity = capacity;
        self->first = 0;
    }
    self->ring [(self->first + self->count++) % self->capacity] = record;
}

static void
s_ring_free_below (s_producer_t *self, uint64_t sequence)
{
    while (self->count && self->first_sequence < sequence) {
        zframe_destroy (&self->ring [self->first]);
        self->first = (self->first + 1) % self->capacity;
        self->first_sequence++;
        self->count--;
    }
}

//  ---- sending ----------------------------------------------------------------------

static void
s_send (s_producer_t *self, int id, const char *topic, uint64_t sequence, zframe_t *content)
{
    zper_dafka_msg_set_id (self->msg, id);
    zper_dafka_msg_set_topic (self->msg, topic);
    zper_dafka_msg_set_address (self->msg, self->uuid);
    zper_dafka_msg_set_subject (self->msg, self->topic);
    zper_dafka_msg_set_sequence (self->msg, sequence);
    zmq_msg_t body;
    zmq_msg_init_size (&body, content? zframe_size (content): 0);
    if (content)
        memcpy (zmq_msg_data (&body), zframe_data (content), zframe_size (content));
    zper_dafka_msg_send_content (self->msg, self->pub, content? &body: NULL);
    zmq_msg_close (&body);
}

static int
s_on_head_timer (zloop_t *loop, int timer_id, void *argument)
{
    s_producer_t *self = (s_producer_t *) argument;
    s_send (self, ZPER_DAFKA_HEAD, self->topic, self->next_sequence - 1, NULL);
    return 0;
}

static void
s_publish (s_producer_t *self, zframe_t *record)
{
    uint64_t sequence = self->next_sequence++;
    if (self->count == 0)
        self->first_sequence = sequence;
    s_send (self, ZPER_DAFKA_RECORD, self->topic, sequence, record);
    s_ring_push (self, record);
    if (sequence == 0)
        zloop_timer (self->loop, (size_t) self->head_interval_ms, 0, s_on_head_timer, self);
}

//  ---- acknowledgements ----------------------------------------------------------

static int
s_compare_descending (const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *) left, b = *(const uint64_t *) right;
    return a < b? 1: a > b? -1: 0;
}

//  Everything below the min_acks-th highest per-store ack point is safe.
static void
s_release_acked (s_producer_t *self)
{
    size_t peers = zhashx_size (self->peers);
    if (peers < self->min_acks || peers == 0)
        return;
    uint64_t *points = (uint64_t *) zmalloc (peers * sizeof (uint64_t));
    size_t index = 0;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        points [index++] = peer->acked_until;
    qsort (points, peers, sizeof (uint64_t), s_compare_descending);
    s_ring_free_below (self, points [self->min_acks - 1]);
    free (points);
}

//  STOP is answered (with a signal) once nothing is left unacknowledged, or
//  at once with producer/terminate_unacked = 1.
static void
s_answer_stop_when_done (s_producer_t *self)
{
    if (self->terminating && !self->stopped && (self->count == 0 || self->terminate_unacked)) {
        zsock_signal (self->pipe, 0);
        self->stopped = true;
    }
}

static void
s_answer_fetch (s_producer_t *self)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    uint64_t count = zper_dafka_msg_count (self->msg);
    if (!streq (zper_dafka_msg_subject (self->msg), self->topic) || self->count == 0
    ||  sequence < self->first_sequence || sequence >= self->next_sequence)
        return;
    char requester [ZPER_DAFKA_STRING_MAX + 1];
    snprintf (requester, sizeof requester, "%s", zper_dafka_msg_address (self->msg));
    uint64_t end = sequence + count < self->next_sequence? sequence + count: self->next_sequence;
    for (uint64_t next = sequence; next < end; next++)
        s_send (self, ZPER_DAFKA_DIRECT_RECORD, requester, next, s_ring_get (self, next));
}

static int
s_on_peer (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_peer_t *peer = (s_peer_t *) argument;
    s_producer_t *self = peer->producer;
    for (int batch = 0; batch < ZPER_DAFKA_BATCH && (zsock_events (reader) & ZMQ_POLLIN); batch++) {
        if (zper_dafka_msg_recv (self->msg, reader)) {
            self->malformed++;
            continue;
        }
        int id = zper_dafka_msg_id (self->msg);
        if (id == ZPER_DAFKA_ACK && streq (zper_dafka_msg_subject (self->msg), self->topic)) {
            uint64_t acked_until = zper_dafka_msg_sequence (self->msg) + 1;
            if (acked_until > peer->acked_until)
                peer->acked_until = acked_until;
        }
        else
        if (id == ZPER_DAFKA_FETCH)
            s_answer_fetch (self);
    }
    s_release_acked (self);
    s_answer_stop_when_done (self);
    return 0;
}

static void
s_peer_destroy (s_peer_t **peer_p)
{
    if (*peer_p) {
        zsock_destroy (&(*peer_p)->sub);
        zstr_free (&(*peer_p)->endpoint);
        free (*peer_p);
        *peer_p = NULL;
    }
}

static void
s_purge_retired (s_producer_t *self)
{
    s_peer_t *peer;
    while ((peer = (s_peer_t *) zlist_pop (self->retired)))
        s_peer_destroy (&peer);
}

//  A silent peer's socket is not destroyed at once: zloop may still call its
//  reader in the current iteration. Its reader is ended now, and the socket
//  destroyed at the next expiry tick, when zloop has rebuilt its poll set.
static void
s_on_beacon_peer (void *owner, const char *endpoint, bool connected)
{
    s_producer_t *self = (s_producer_t *) owner;
    if (!connected) {
        s_purge_retired (self);
        s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, endpoint);
        if (peer) {
            zloop_reader_end (self->loop, peer->sub);
            zhashx_delete (self->peers, endpoint);
            zlist_append (self->retired, peer);
        }
        return;
    }
    if (zhashx_lookup (self->peers, endpoint))
        return;
    s_peer_t *peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
    peer->producer = self;
    peer->endpoint = strdup (endpoint);
    peer->sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (peer->sub, 0);
    char subscription [ZPER_DAFKA_UUID_SIZE + 2];
    snprintf (subscription, sizeof subscription, "%c%s", ZPER_DAFKA_ACK, self->uuid);
    zsock_set_subscribe (peer->sub, subscription);
    subscription [0] = ZPER_DAFKA_FETCH;
    zsock_set_subscribe (peer->sub, subscription);
    zsock_connect (peer->sub, "%s", endpoint);
    zloop_reader (self->loop, peer->sub, s_on_peer, peer);
    zhashx_update (self->peers, endpoint, peer);
}

//  ---- the pipe ---------------------------------------------------------------------

//  The pipe carries records as single frames, so publishing costs no more
//  than the frame; commands are two frames ["", verb]. A single frame after
//  STOP was answered (or after an interrupt) is zactor_destroy's $TERM.
static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *argument)
{
    s_producer_t *self = (s_producer_t *) argument;
    for (int batch = 0; batch < ZPER_DAFKA_BATCH && (zsock_events (pipe) & ZMQ_POLLIN); batch++) {
        zframe_t *frame = zframe_recv (pipe);
        if (!frame || ((self->stopped || zsys_interrupted) && !zframe_more (frame))) {
            zframe_destroy (&frame);
            return -1;
        }
        if (!zframe_more (frame)) {
            s_publish (self, frame);
            continue;
        }
        zframe_destroy (&frame);
        char *verb = zstr_recv (pipe);
        if (verb && streq (verb, "STATS"))
            zsock_send (pipe, "88", self->next_sequence, (uint64_t) self->count);
        else
        if (verb && streq (verb, "STOP")) {
            self->terminating = true;
            s_answer_stop_when_done (self);
        }
        zstr_free (&verb);
    }
    return 0;
}

//  ---- the actor -------------------------------------------------------------------

static s_producer_t *
s_producer_new (zsock_t *pipe, s_arguments_t *arguments)
{
    zconfig_t *config = arguments->config;
    s_producer_t *self = (s_producer_t *) zmalloc (sizeof (s_producer_t));
    self->pipe = pipe;
    snprintf (self->topic, sizeof self->topic, "%s", arguments->topic);
    snprintf (self->uuid, sizeof self->uuid, "%s", arguments->uuid);
    self->capacity = S_RING_INITIAL;
    self->ring = (zframe_t **) zmalloc (self->capacity * sizeof (zframe_t *));
    self->min_acks = zper_dafka_config_number (config, "producer/min_acks", ZPER_DAFKA_MIN_ACKS);
    self->min_acks = self->min_acks? self->min_acks: 1;
    self->head_interval_ms = zper_dafka_config_number (config, "producer/head_interval",
                                                       ZPER_DAFKA_HEAD_INTERVAL_MS);
    self->terminate_unacked = zper_dafka_config_number (config, "producer/terminate_unacked",
                                                        ZPER_DAFKA_TERMINATE_UNACKED) != 0;
    self->verbose = zper_dafka_config_number (config, "producer/verbose", 0) != 0;
    self->msg = zper_dafka_msg_new ();
    self->loop = zloop_new ();
    self->peers = zhashx_new ();
    self->retired = zlist_new ();
    self->pub = zsock_new (ZMQ_PUB);
    zsock_set_linger (self->pub, 0);
    zsock_set_sndhwm (self->pub, (int) zper_dafka_config_number (config, "producer/high_watermark",
                                                                 ZPER_DAFKA_HIGH_WATERMARK));
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    int port = zsock_bind (self->pub, "%s", bind);
    if (port > 0)
        self->beacon = zper_dafka_beacon_new (config, self->uuid, port, s_on_beacon_peer, self);
    else
        zsys_error ("dafka producer: cannot bind %s", bind);
    zstr_free (&bind);
    return self;
}

static void
s_producer_destroy (s_producer_t **self_p)
{
    s_producer_t *self = *self_p;
    zper_dafka_beacon_destroy (&self->beacon);
    zloop_destroy (&self->loop);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        zlist_append (self->retired, peer);
    zhashx_destroy (&self->peers);
    s_purge_retired (self);
    zlist_destroy (&self->retired);
    zsock_destroy (&self->pub);
    s_ring_free_below (self, UINT64_MAX);
    free (self->ring);
    zper_dafka_msg_destroy (&self->msg);
    free (self);
    *self_p = NULL;
}

static void
s_producer_actor (zsock_t *pipe, void *argument)
{
    //  zactor_new waits for a first signal; the caller's _new then waits for
    //  a second one that says whether the tower welcomed us
    s_producer_t *self = s_producer_new (pipe, (s_arguments_t *) argument);
    zsock_signal (pipe, 0);
    if (!self->beacon || zper_dafka_beacon_wait_welcome (self->beacon, pipe)) {
        zsock_signal (pipe, 1);
        s_producer_destroy (&self);
        return;
    }
    zsock_signal (pipe, 0);
    zper_dafka_beacon_attach (self->beacon, self->loop);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_start (self->loop);
    if (!self->stopped)
        zsock_signal (pipe, 0);     //  ended by an interrupt: release a waiting STOP
    if (self->verbose || self->malformed)
        zsys_info ("dafka producer %s: %" PRIu64 " published, %zu unacked, %" PRIu64 " malformed",
                   self->uuid, self->next_sequence, self->count, self->malformed);
    s_producer_destroy (&self);
}

//  Sends on the pipe, waiting for room in slices of ZPER_DAFKA_STOP_POLL_MS
//  (the actor's send timeout) so that an interrupt is never missed while
//  the pipe is full: an actor ended by the interrupt would never drain it.
static int
s_send_to_actor (zper_dafka_producer_t *self, zframe_t *frame, bool more)
{
    while (!zsys_interrupted) {
        if (zframe_send (&frame, self->actor, ZFRAME_REUSE | (more? ZFRAME_MORE: 0)) == 0)
            return 0;
        if (zmq_errno () != EAGAIN)
            break;
    }
    return -1;
}

static int
s_command (zper_dafka_producer_t *self, const char *verb)
{
    zframe_t *marker = zframe_new_empty ();
    zframe_t *command = zframe_from (verb);
    int rc = s_send_to_actor (self, marker, true) || s_send_to_actor (self, command, false)? -1: 0;
    zframe_destroy (&marker);
    zframe_destroy (&command);
    return rc;
}

zper_dafka_producer_t *
zper_dafka_producer_new (zconfig_t *config, const char *topic)
{
    if (!topic || !*topic || strlen (topic) > ZPER_DAFKA_STRING_MAX)
        return NULL;
    zper_dafka_producer_t *self = (zper_dafka_producer_t *) zmalloc (sizeof (zper_dafka_producer_t));
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->uuid, sizeof self->uuid, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    s_arguments_t arguments = { config, topic, self->uuid };
    self->actor = zactor_new (s_producer_actor, &arguments);
    zsock_set_sndtimeo (self->actor, ZPER_DAFKA_STOP_POLL_MS);
    if (zsock_wait (self->actor) != 0) {
        zactor_destroy (&self->actor);      //  not _destroy: there is nothing to STOP
        free (self);
        self = NULL;
    }
    return self;
}

void
zper_dafka_producer_destroy (zper_dafka_producer_t **self_p)
{
    if (self_p && *self_p) {
        //  STOP first, waiting for room in the pipe (zactor_destroy's own
        //  $TERM does not wait, and the queue may still be full of records);
        //  the actor answers once every record is acknowledged. After an
        //  interrupt there is no STOP: the signal flag ends the actor's loop.
        if (s_command (*self_p, "STOP") == 0)
            zsock_wait ((*self_p)->actor);
        zactor_destroy (&(*self_p)->actor);
        free (*self_p);
        *self_p = NULL;
    }
}

int
zper_dafka_producer_publish (zper_dafka_producer_t *self, zframe_t **content_p)
{
    int rc = s_send_to_actor (self, *content_p, false);
    zframe_destroy (content_p);
    return rc;
}

const char *
zper_dafka_producer_uuid (zper_dafka_producer_t *self)
{
    return self->uuid;
}

int
zper_dafka_producer_stats (zper_dafka_producer_t *self, uint64_t *published, uint64_t *unacked)
{
    if (s_command (self, "STATS"))
        return -1;
    return zsock_recv (self->actor, "88", published, unacked);
}

//  ---- selftest: a tower, the producer, and a raw socket playing a store ------

//  Receives the next Dafka message of id on socket (skipping others).
static bool
s_test_expect (zsock_t *socket, zper_dafka_msg_t *msg, int id)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline)
        if (zper_dafka_msg_recv (msg, socket) == 0 && zper_dafka_msg_id (msg) == id)
            return true;
    return false;
}

static void
s_test_found (void *owner, const char *endpoint, bool connected)
{
    if (connected)
        zlist_append ((zlist_t *) owner, (void *) endpoint);
}

static int
s_test_stop (zloop_t *loop, int timer_id, void *argument)
{
    return -1;
}

void
zper_dafka_producer_test (bool verbose)
{
    zconfig_t *config = zconfig_new ("root", NULL);
    zconfig_put (config, "tower/sub_address", "tcp://127.0.0.1:*");
    zconfig_put (config, "tower/pub_address", "tcp://127.0.0.1:*");
    zper_dafka_tower_t *tower = zper_dafka_tower_new (config);
    assert (tower);
    char address [64];
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", zper_dafka_tower_sub_port (tower));
    zconfig_put (config, "beacon/sub_address", address);
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", zper_dafka_tower_pub_port (tower));
    zconfig_put (config, "beacon/pub_address", address);
    zconfig_put (config, "beacon/address", "127.0.0.1");
    zconfig_put (config, "beacon/interval", "100");
    zconfig_put (config, "producer/head_interval", "100");
    zconfig_put (config, "producer/terminate_unacked", "1");

    //  The fake store: a PUB announced through the tower, a SUB on the producer
    zsock_t *store_pub = zsock_new (ZMQ_PUB);
    int store_port = zsock_bind (store_pub, "tcp://127.0.0.1:*");
    zper_dafka_beacon_t *store_beacon = NULL;
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, "zper.test");
    assert (producer);
    const char *uuid = zper_dafka_producer_uuid (producer);
    assert (strlen (uuid) == ZPER_DAFKA_UUID_SIZE);
    zsock_t *store_sub = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (store_sub, "");
    zsock_set_rcvtimeo (store_sub, 200);
    zlist_t *found = zlist_new ();
    zlist_autofree (found);
    store_beacon = zper_dafka_beacon_new (config, "FAKESTORE", store_port, s_test_found, found);
    zloop_t *loop = zloop_new ();
    zper_dafka_beacon_attach (store_beacon, loop);
    while (zlist_size (found) == 0) {
        zloop_timer (loop, 50, 1, s_test_stop, NULL);
        zloop_start (loop);
    }
    zsock_connect (store_sub, "%s", (char *) zlist_first (found));
    zclock_sleep (300);             //  both directions subscribed

    const int records = 300;
    for (int index = 0; index < records; index++) {
        zframe_t *content = zframe_new (NULL, sizeof (int));
        memcpy (zframe_data (content), &index, sizeof (int));
        assert (zper_dafka_producer_publish (producer, &content) == 0);
    }
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    assert (s_test_expect (store_sub, msg, ZPER_DAFKA_RECORD));
    assert (streq (zper_dafka_msg_address (msg), uuid));
    assert (s_test_expect (store_sub, msg, ZPER_DAFKA_HEAD));
    assert (zper_dafka_msg_sequence (msg) == records - 1);

    //  FETCH of 3 records from 257: the right contents (reference defect)
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_FETCH);
    zper_dafka_msg_set_topic (msg, uuid);
    zper_dafka_msg_set_address (msg, "FAKESTORE");
    zper_dafka_msg_set_subject (msg, "zper.test");
    zper_dafka_msg_set_sequence (msg, 257);
    zper_dafka_msg_set_count (msg, 3);
    zper_dafka_msg_send (msg, store_pub);
    for (int expected = 257; expected < 260; expected++) {
        assert (s_test_expect (store_sub, msg, ZPER_DAFKA_DIRECT_RECORD));
        assert (zper_dafka_msg_sequence (msg) == (uint64_t) expected);
        assert (streq (zper_dafka_msg_topic (msg), "FAKESTORE"));
        int value;
        memcpy (&value, zframe_data (zper_dafka_msg_content (msg)), sizeof (int));
        assert (value == expected);
    }
    //  A cumulative ACK releases the records
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_ACK);
    zper_dafka_msg_set_topic (msg, uuid);
    zper_dafka_msg_set_subject (msg, "zper.test");
    zper_dafka_msg_set_sequence (msg, records - 1);
    uint64_t published = 0, unacked = 1;
    for (int attempt = 0; attempt < 50 && unacked; attempt++) {
        zper_dafka_msg_send (msg, store_pub);
        zclock_sleep (50);
        assert (zper_dafka_producer_stats (producer, &published, &unacked) == 0);
    }
    assert (published == (uint64_t) records && unacked == 0);
    zper_dafka_msg_destroy (&msg);
    zper_dafka_producer_destroy (&producer);
    zper_dafka_producer_destroy (&producer);
    zloop_destroy (&loop);
    zper_dafka_beacon_destroy (&store_beacon);
    zlist_destroy (&found);
    zsock_destroy (&store_sub);
    zsock_destroy (&store_pub);
    zper_dafka_tower_destroy (&tower);
    zconfig_destroy (&config);
}
