/*  =========================================================================
    zper_dafka_producer - publishes records of one topic as one Dafka partition

    Publishing happens in the caller's thread: it sends the RECORD on the
    PUB itself, under a mutex it shares with the actor, so a record costs
    one libzmq send and no thread hand-off. The actor owns the rest: one
    SUB per peer endpoint (ACK and FETCH for its uuid), the beacon, the
    HEAD timer, and it sends HEAD and DIRECT_RECORD on the same PUB under
    the same mutex (a libzmq socket may be used from several threads when
    the uses are serialised by a full memory barrier). One SUB per peer,
    rather than one SUB connected to all, is what lets it count DISTINCT
    stores: ACK carries no sender on the wire, but the socket it arrived on
    names the store.

    Unacknowledged records sit in a ring indexed by sequence, so a FETCH of
    any sequence finds its own content (the reference's defect for
    sequences >= 256 cannot happen: there is no second lookup structure).
    The ring holds each content as a reference-counted zmq_msg_t over the
    caller's frame, so the PUB and the ring share one copy.

    With CURVE (security/curve = 1) the directions turn round, because only
    a CURVE server learns who sent a message: the producer binds one SUB as
    a CURVE server (ACK and FETCH for its uuid), announces that, and
    connects its PUB as a CURVE client to every peer's announced endpoint
    with the key the tower vouched for. ACKs then carry the store's key,
    and distinct stores are distinct keys (each store needs its own
    certificate for producer/min_acks to count it).
    ========================================================================= */

#include "zper_dafka_producer.h"
#include "zper_dafka_proto.h"
#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_security.h"
#include "zper_defaults.h"
#include <pthread.h>
#include <string.h>

#define S_RING_INITIAL  1024

//  What the caller's thread and the actor share; every field under mutex.
typedef struct {
    pthread_mutex_t mutex;
    zsock_t *pub;                   //  NULL once the actor has ended
    zmq_msg_t *ring;                //  unacked contents, ring [(first + n) % capacity]
    size_t capacity;
    size_t first;
    size_t count;
    uint64_t first_sequence;        //  sequence of ring [first]
    uint64_t next_sequence;
} s_shared_t;

typedef struct _s_producer_t s_producer_t;

//  A store as the producer counts it: a peer endpoint and its SUB, or with
//  CURVE a key (no SUB of its own: every ACK arrives on the listener).
typedef struct {
    s_producer_t *producer;
    zsock_t *sub;
    char *endpoint;                 //  the endpoint, or with CURVE the store's key
    uint64_t acked_until;           //  every sequence below is acked by this peer
} s_peer_t;

//  The actor's own state
struct _s_producer_t {
    zsock_t *pipe;
    zloop_t *loop;
    s_shared_t *shared;
    zper_dafka_beacon_t *beacon;
    zhashx_t *peers;                //  endpoint (with CURVE: key) -> s_peer_t
    zper_security_t *security;      //  CURVE when not NULL (the process's, counted)
    zper_guard_t *guard;            //  with CURVE: cuts off keys removed from the folder
    s_peer_t *listener;             //  with CURVE: the bound SUB every peer's PUB connects to
    zlist_t *retired;               //  s_peer_t gone silent, destroyed one beacon tick later
    zper_dafka_msg_t *msg;          //  reused for every send and receive
    char topic [ZPER_DAFKA_STRING_MAX + 1];
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
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
    s_shared_t shared;
    zframe_t *record_header;        //  this producer's RECORD frame 0, sequence patched per record
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
};

typedef struct {
    zconfig_t *config;
    const char *topic;
    char *uuid;
    s_shared_t *shared;
} s_arguments_t;

//  ---- the unacked ring (callers hold the mutex) ------------------------------------

static zmq_msg_t *
s_ring_get (s_shared_t *shared, uint64_t sequence)
{
    return &shared->ring [(shared->first + (sequence - shared->first_sequence)) % shared->capacity];
}

static zmq_msg_t *
s_ring_push (s_shared_t *shared)
{
    if (shared->count == shared->capacity) {
        size_t capacity = shared->capacity? shared->capacity * 2: S_RING_INITIAL;
        zmq_msg_t *ring = (zmq_msg_t *) zmalloc (capacity * sizeof (zmq_msg_t));
        for (size_t index = 0; index < shared->count; index++) {
            zmq_msg_init (&ring [index]);
            zmq_msg_move (&ring [index], &shared->ring [(shared->first + index) % shared->capacity]);
        }
        free (shared->ring);
        shared->ring = ring;
        shared->capacity = capacity;
        shared->first = 0;
    }
    return &shared->ring [(shared->first + shared->count++) % shared->capacity];
}

static void
s_ring_free_below (s_shared_t *shared, uint64_t sequence)
{
    while (shared->count && shared->first_sequence < sequence) {
        zmq_msg_close (&shared->ring [shared->first]);
        shared->first = (shared->first + 1) % shared->capacity;
        shared->first_sequence++;
        shared->count--;
    }
}

//  Sends frame 0 then a reference to content (the ring keeps its own).
static void
s_send_record (zsock_t *pub, zmq_msg_t *header, zmq_msg_t *content)
{
    void *handle = zsock_resolve (pub);
    zmq_msg_t reference;
    zmq_msg_init (&reference);
    zmq_msg_copy (&reference, content);
    if (zmq_msg_send (header, handle, ZMQ_SNDMORE) < 0)
        zmq_msg_close (header);
    else
    if (zmq_msg_send (&reference, handle, 0) < 0)
        zmq_msg_close (&reference);
}

//  ---- sending from the actor (under the mutex) --------------------------------------

static void
s_send (s_producer_t *self, int id, const char *topic, uint64_t sequence, zmq_msg_t *content)
{
    zper_dafka_msg_set_id (self->msg, id);
    zper_dafka_msg_set_topic (self->msg, topic);
    zper_dafka_msg_set_address (self->msg, self->uuid);
    zper_dafka_msg_set_subject (self->msg, self->topic);
    zper_dafka_msg_set_sequence (self->msg, sequence);
    if (!content) {
        zper_dafka_msg_send (self->msg, self->shared->pub);
        return;
    }
    zframe_t *header = zper_dafka_msg_encode_header (self->msg);
    if (header) {
        zmq_msg_t frame;
        zmq_msg_init_size (&frame, zframe_size (header));
        memcpy (zmq_msg_data (&frame), zframe_data (header), zframe_size (header));
        s_send_record (self->shared->pub, &frame, content);
        zframe_destroy (&header);
    }
}

//  HEAD (the last sequence published) every head_interval, from the first
//  record on (the caller says FIRST when it published sequence 0).
static int
s_on_head_timer (zloop_t *loop, int timer_id, void *argument)
{
    s_producer_t *self = (s_producer_t *) argument;
    pthread_mutex_lock (&self->shared->mutex);
    if (self->shared->next_sequence > 0)
        s_send (self, ZPER_DAFKA_HEAD, self->topic, self->shared->next_sequence - 1, NULL);
    pthread_mutex_unlock (&self->shared->mutex);
    return 0;
}

//  ---- acknowledgements (actor) -------------------------------------------------

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
    pthread_mutex_lock (&self->shared->mutex);
    s_ring_free_below (self->shared, points [self->min_acks - 1]);
    pthread_mutex_unlock (&self->shared->mutex);
    free (points);
}

//  STOP is answered (with a signal) once nothing is left unacknowledged, or
//  at once with producer/terminate_unacked = 1.
static void
s_answer_stop_when_done (s_producer_t *self)
{
    if (!self->terminating || self->stopped)
        return;
    pthread_mutex_lock (&self->shared->mutex);
    bool done = self->shared->count == 0 || self->terminate_unacked;
    pthread_mutex_unlock (&self->shared->mutex);
    if (done) {
        zsock_signal (self->pipe, 0);
        self->stopped = true;
    }
}

static void
s_answer_fetch (s_producer_t *self)
{
    s_shared_t *shared = self->shared;
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    uint64_t count = zper_dafka_msg_count (self->msg);
    char requester [ZPER_DAFKA_STRING_MAX + 1];
    snprintf (requester, sizeof requester, "%s", zper_dafka_msg_address (self->msg));
    if (!streq (zper_dafka_msg_subject (self->msg), self->topic))
        return;
    pthread_mutex_lock (&shared->mutex);
    if (shared->count && sequence >= shared->first_sequence && sequence < shared->next_sequence) {
        uint64_t end = sequence + count < shared->next_sequence? sequence + count: shared->next_sequence;
        for (uint64_t next = sequence; next < end; next++)
            s_send (self, ZPER_DAFKA_DIRECT_RECORD, requester, next, s_ring_get (shared, next));
    }
    pthread_mutex_unlock (&shared->mutex);
}

//  With CURVE, the store an ACK came from is its key; zauth admits only the
//  allowed folder's keys, which bounds this table.
static s_peer_t *
s_key_peer (s_producer_t *self, const char *key)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
    if (!peer) {
        peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
        peer->producer = self;
        peer->endpoint = strdup (key);
        zhashx_insert (self->peers, key, peer);
    }
    return peer;
}

//  Drains what is waiting on a peer's SUB (up to a batch) without polling
//  per message, then releases and checks STOP once for the batch.
static int
s_on_peer (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_peer_t *peer = (s_peer_t *) argument;
    s_producer_t *self = peer->producer;
    zmq_msg_t content;
    zmq_msg_init (&content);
    for (int batch = 0; batch < ZPER_DAFKA_BATCH; batch++) {
        if (zper_dafka_msg_recv_content (self->msg, reader, &content, ZMQ_DONTWAIT)) {
            if (errno != EPROTO)
                break;
            self->malformed++;
            continue;
        }
        int id = zper_dafka_msg_id (self->msg);
        if (id == ZPER_DAFKA_ACK && streq (zper_dafka_msg_subject (self->msg), self->topic)) {
            s_peer_t *store = self->security? s_key_peer (self, zper_dafka_msg_sender (self->msg)): peer;
            uint64_t acked_until = zper_dafka_msg_sequence (self->msg) + 1;
            if (acked_until > store->acked_until)
                store->acked_until = acked_until;
        }
        else
        if (id == ZPER_DAFKA_FETCH)
            s_answer_fetch (self);
    }
    zmq_msg_close (&content);
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

//  A SUB for what is addressed to this producer: ACK and FETCH of its uuid.
static zsock_t *
s_peer_sub (s_producer_t *self)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (sub, 0);
    char subscription [ZPER_DAFKA_UUID_SIZE + 2];
    snprintf (subscription, sizeof subscription, "%c%s", ZPER_DAFKA_ACK, self->uuid);
    zsock_set_subscribe (sub, subscription);
    subscription [0] = ZPER_DAFKA_FETCH;
    zsock_set_subscribe (sub, subscription);
    return sub;
}

//  A silent peer's socket is not destroyed at once: zloop may still call its
//  reader in the current iteration. Its reader is ended now, and the socket
//  destroyed at the next expiry tick, when zloop has rebuilt its poll set.
static void
s_on_beacon_peer (void *owner, const char *endpoint, const char *key, bool connected)
{
    s_producer_t *self = (s_producer_t *) owner;
    if (self->security) {
        //  The PUB is the caller's too: options and connections under the mutex
        pthread_mutex_lock (&self->shared->mutex);
        if (!connected)
            zsock_disconnect (self->shared->pub, "%s", endpoint);
        else
        if (zper_security_client (self->security, self->shared->pub, key) == 0)
            zsock_connect (self->shared->pub, "%s", endpoint);
        pthread_mutex_unlock (&self->shared->mutex);
        return;
    }
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
    peer->sub = s_peer_sub (self);
    zsock_connect (peer->sub, "%s", endpoint);
    zloop_reader (self->loop, peer->sub, s_on_peer, peer);
    zhashx_update (self->peers, endpoint, peer);
}

//  ---- the pipe ---------------------------------------------------------------------

//  Commands: FIRST (sequence 0 is out: start the HEAD timer), STOP
//  (answered once every record is acknowledged). Anything else, e.g.
//  zactor_destroy's $TERM, ends the actor.
static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *argument)
{
    s_producer_t *self = (s_producer_t *) argument;
    char *verb = zstr_recv (pipe);
    int rc = 0;
    if (verb && streq (verb, "FIRST"))
        zloop_timer (self->loop, (size_t) self->head_interval_ms, 0, s_on_head_timer, self);
    else
    if (verb && streq (verb, "STOP") && !self->stopped) {
        self->terminating = true;
        s_answer_stop_when_done (self);
    }
    else
        rc = -1;
    zstr_free (&verb);
    return rc;
}

//  ---- the actor -------------------------------------------------------------------

static s_producer_t *
s_producer_new (zsock_t *pipe, s_arguments_t *arguments)
{
    zconfig_t *config = arguments->config;
    s_producer_t *self = (s_producer_t *) zmalloc (sizeof (s_producer_t));
    self->pipe = pipe;
    self->shared = arguments->shared;
    snprintf (self->topic, sizeof self->topic, "%s", arguments->topic);
    snprintf (self->uuid, sizeof self->uuid, "%s", arguments->uuid);
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
    //  The caller does not publish before _new returned: no lock needed yet
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_set_linger (pub, 0);
    zsock_set_sndhwm (pub, (int) zper_dafka_config_number (config, "producer/high_watermark",
                                                           ZPER_DAFKA_HIGH_WATERMARK));
    self->shared->pub = pub;
    if (zper_dafka_security_acquire (config, &self->security))
        return self;                //  no beacon: the start fails
    //  What is bound is what is announced: the PUB, or with CURVE the
    //  listening SUB (the peers' PUBs connect to it)
    zsock_t *bound = pub;
    if (self->security) {
        self->listener = (s_peer_t *) zmalloc (sizeof (s_peer_t));
        self->listener->producer = self;
        self->listener->sub = bound = s_peer_sub (self);
        zper_dafka_msg_track_sender (self->msg, true);
        self->guard = zper_dafka_security_guard (config, self->loop);
        zper_dafka_msg_set_guard (self->msg, self->guard);
        if (!self->guard || zper_security_server (self->security, bound, "dafka producer"))
            return self;
    }
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    int port = zsock_bind (bound, "%s", bind);
    if (port > 0)
        self->beacon = zper_dafka_beacon_new (config, self->security, self->uuid, port,
                                              s_on_beacon_peer, self);
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
    zper_guard_destroy (&self->guard);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        zlist_append (self->retired, peer);
    zhashx_destroy (&self->peers);
    if (self->listener)
        zlist_append (self->retired, self->listener);
    s_purge_retired (self);
    zlist_destroy (&self->retired);
    pthread_mutex_lock (&self->shared->mutex);
    zsock_destroy (&self->shared->pub);         //  from now on, publish fails
    pthread_mutex_unlock (&self->shared->mutex);
    zper_dafka_security_release (&self->security);
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
    if (self->listener)
        zloop_reader (self->loop, self->listener->sub, s_on_peer, self->listener);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_start (self->loop);
    if (!self->stopped)
        zsock_signal (pipe, 0);     //  ended by an interrupt: release a waiting STOP
    if (self->verbose || self->malformed) {
        pthread_mutex_lock (&self->shared->mutex);
        zsys_info ("dafka producer %s: %" PRIu64 " published, %zu unacked, %" PRIu64 " malformed",
                   self->uuid, self->shared->next_sequence, self->shared->count, self->malformed);
        pthread_mutex_unlock (&self->shared->mutex);
    }
    s_producer_destroy (&self);
}

//  This producer's RECORD frame 0; only the sequence changes per record.
static zframe_t *
s_record_header (const char *topic, const char *uuid)
{
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_RECORD);
    zper_dafka_msg_set_topic (msg, topic);
    zper_dafka_msg_set_address (msg, uuid);
    zper_dafka_msg_set_subject (msg, topic);
    zframe_t *header = zper_dafka_msg_encode_header (msg);
    zper_dafka_msg_destroy (&msg);
    return header;
}

zper_dafka_producer_t *
zper_dafka_producer_new (zconfig_t *config, const char *topic)
{
    if (!topic || !*topic || strlen (topic) > ZPER_DAFKA_STRING_MAX)
        return NULL;
    zper_dafka_producer_t *self = (zper_dafka_producer_t *) zmalloc (sizeof (zper_dafka_producer_t));
    pthread_mutex_init (&self->shared.mutex, NULL);
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->uuid, sizeof self->uuid, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->record_header = s_record_header (topic, self->uuid);
    s_arguments_t arguments = { config, topic, self->uuid, &self->shared };
    self->actor = zactor_new (s_producer_actor, &arguments);
    zsock_set_sndtimeo (self->actor, ZPER_DAFKA_STOP_POLL_MS);
    if (zsock_wait (self->actor) != 0)
        zper_dafka_producer_destroy (&self);     //  the actor has ended: no STOP is sent
    return self;
}

//  Sends a command, waiting for room in slices of ZPER_DAFKA_STOP_POLL_MS
//  (the pipe's send timeout) so that an interrupt is never missed: an
//  actor ended by the interrupt would never drain the pipe.
static int
s_command (zper_dafka_producer_t *self, const char *verb)
{
    while (!zsys_interrupted) {
        if (zstr_send (self->actor, verb) == 0)
            return 0;
        if (zmq_errno () != EAGAIN)
            break;
    }
    return -1;
}

void
zper_dafka_producer_destroy (zper_dafka_producer_t **self_p)
{
    if (self_p && *self_p) {
        zper_dafka_producer_t *self = *self_p;
        //  The actor answers STOP once every record is acknowledged. After
        //  an interrupt there is no STOP: the signal flag ends its loop.
        pthread_mutex_lock (&self->shared.mutex);
        bool running = self->shared.pub != NULL;
        pthread_mutex_unlock (&self->shared.mutex);
        if (running && s_command (self, "STOP") == 0)
            zsock_wait (self->actor);
        zactor_destroy (&self->actor);
        s_ring_free_below (&self->shared, UINT64_MAX);
        free (self->shared.ring);
        pthread_mutex_destroy (&self->shared.mutex);
        zframe_destroy (&self->record_header);
        free (self);
        *self_p = NULL;
    }
}

static void
s_free_frame (void *data, void *hint)
{
    zframe_t *frame = (zframe_t *) hint;
    zframe_destroy (&frame);
}

//  Publishes the content of record (taken over, not copied) or else a copy
//  of data.
static int
s_publish (zper_dafka_producer_t *self, zframe_t *record, const void *data, size_t size)
{
    s_shared_t *shared = &self->shared;
    pthread_mutex_lock (&shared->mutex);
    if (!shared->pub || zsys_interrupted) {
        pthread_mutex_unlock (&shared->mutex);
        zframe_destroy (&record);
        return -1;
    }
    uint64_t sequence = shared->next_sequence++;
    if (shared->count == 0)
        shared->first_sequence = sequence;
    zmq_msg_t *content = s_ring_push (shared);
    if (record)
        zmq_msg_init_data (content, zframe_data (record), zframe_size (record), s_free_frame, record);
    else {
        zmq_msg_init_size (content, size);
        if (size)
            memcpy (zmq_msg_data (content), data, size);
    }
    zmq_msg_t header;
    size_t header_size = zframe_size (self->record_header);
    zmq_msg_init_size (&header, header_size);
    memcpy (zmq_msg_data (&header), zframe_data (self->record_header), header_size);
    zper_dafka_msg_patch_sequence (zmq_msg_data (&header), header_size, sequence);
    s_send_record (shared->pub, &header, content);
    pthread_mutex_unlock (&shared->mutex);
    return sequence == 0? s_command (self, "FIRST"): 0;
}

int
zper_dafka_producer_publish (zper_dafka_producer_t *self, zframe_t **content_p)
{
    zframe_t *record = *content_p;
    *content_p = NULL;
    return s_publish (self, record, NULL, 0);
}

int
zper_dafka_producer_publish_data (zper_dafka_producer_t *self, const void *data, size_t size)
{
    return s_publish (self, NULL, data, size);
}

const char *
zper_dafka_producer_uuid (zper_dafka_producer_t *self)
{
    return self->uuid;
}

int
zper_dafka_producer_stats (zper_dafka_producer_t *self, uint64_t *published, uint64_t *unacked)
{
    pthread_mutex_lock (&self->shared.mutex);
    int rc = self->shared.pub? 0: -1;
    *published = self->shared.next_sequence;
    *unacked = self->shared.count;
    pthread_mutex_unlock (&self->shared.mutex);
    return rc;
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
s_test_found (void *owner, const char *endpoint, const char *key, bool connected)
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
    zper_dafka_tower_t *tower;
    zconfig_t *config = zper_dafka_tower_test_start (NULL, &tower);
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
    store_beacon = zper_dafka_beacon_new (config, NULL, "FAKESTORE", store_port, s_test_found, found);
    zloop_t *loop = zloop_new ();
    zper_dafka_beacon_attach (store_beacon, loop);
    while (zlist_size (found) == 0) {
        zloop_timer (loop, 50, 1, s_test_stop, NULL);
        zloop_start (loop);
    }
    zsock_connect (store_sub, "%s", (char *) zlist_first (found));
    zclock_sleep (300);             //  both directions subscribed

    //  Odd records are copied from a buffer, even ones handed over as frames
    const int records = 300;
    for (int index = 0; index < records; index++) {
        if (index % 2)
            assert (zper_dafka_producer_publish_data (producer, &index, sizeof (int)) == 0);
        else {
            zframe_t *content = zframe_new (&index, sizeof (int));
            assert (zper_dafka_producer_publish (producer, &content) == 0);
            assert (content == NULL);
        }
    }
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    assert (s_test_expect (store_sub, msg, ZPER_DAFKA_RECORD));
    assert (streq (zper_dafka_msg_address (msg), uuid));
    assert (s_test_expect (store_sub, msg, ZPER_DAFKA_HEAD));
    assert (zper_dafka_msg_sequence (msg) == (uint64_t) (records - 1));

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
