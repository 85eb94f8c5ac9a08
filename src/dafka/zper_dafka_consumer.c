/*  =========================================================================
    zper_dafka_consumer - receives the records of Dafka topics, in order

    The actor owns an XPUB (FETCH, GET_HEADS, CONSUMER_HELLO out; store
    subscriptions in) and one SUB connected to every peer. Per partition it
    keeps the last sequence delivered and the highest sequence it knows
    exists (from RECORD, HEAD, DIRECT_HEAD). The one thing to know: whenever
    known > delivered, a FETCH from delivered+1 is due, and it is checked
    after every batch and on a timer until the gap closes. That is what
    keeps a late consumer going past the first 100,000 records with no
    producer left to send HEADs (a reference defect). Each gap is asked for
    once: while the last FETCH's range still covers the next sequence and
    its answer keeps arriving, nothing is re-sent; it is re-asked only after
    consumer/fetch_timeout without progress (a lost FETCH, an answer cut
    short at a store's durable end). Every FETCH is served in full by every
    store that has the data, so a re-send while the first answer is still
    on its way would be served twice.

    With CURVE (security/curve = 1) the SUB is bound as a CURVE server and
    announced, and the XPUB connects to every peer's announced endpoint as
    a CURVE client: so each message arrives with its sender's key. A
    partition's RECORDs and HEADs are taken only from the key the tower
    vouched for its producer's uuid (s_sender_owns); others are dropped and
    counted (forged). DIRECT_RECORD and DIRECT_HEAD come from stores (or the
    producer answering a FETCH) and are taken from any allowed key: stores
    must be trusted nodes (docs/dafka.md, Security).
    ========================================================================= */

#include "zper_dafka_consumer.h"
#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_security.h"
#include "zper_defaults.h"
#include <string.h>

typedef struct {
    char subject [ZPER_DAFKA_STRING_MAX + 1];
    char partition [ZPER_DAFKA_STRING_MAX + 1];
    uint64_t delivered;             //  last sequence delivered, ZPER_DAFKA_NONE before the first
    uint64_t known;                 //  highest sequence known to exist, or ZPER_DAFKA_NONE
    uint64_t asked_last;            //  last sequence the outstanding FETCH asks for, or NONE
    uint64_t progress_delivered;    //  delivered when the answer was last seen progressing...
    int64_t progress_ms;            //  ...and when (monotonic): the fetch timeout counts from here
    char key [41];                  //  with CURVE: the key its RECORDs and HEADs come from, or ""
} s_partition_t;

typedef struct {
    uint64_t delivered;
    uint64_t malformed;
    uint64_t forged;                //  RECORD/HEADs of a partition from a key not its own
} s_counters_t;

typedef struct {
    zsock_t *pipe;
    zloop_t *loop;
    zsock_t *xpub;
    zsock_t *sub;
    zper_dafka_beacon_t *beacon;
    zper_security_t *security;      //  CURVE when not NULL (the process's, counted)
    zper_guard_t *guard;            //  with CURVE: cuts off keys removed from the folder
    zper_dafka_msg_t *msg;
    zmq_msg_t content;              //  the last RECORD's content, handed on to the caller
    int64_t fetch_timeout_ms;       //  consumer/fetch_timeout: re-ask after this long without progress
    zhashx_t *topics;               //  subscribed topic -> itself
    zhashx_t *partitions;           //  "subject/partition" -> s_partition_t
    s_partition_t *last_used;       //  records come in runs of one partition: skip the lookup
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
    bool earliest;
    bool verbose;
    s_counters_t *counters;         //  shared with the caller's object, updated atomically
} s_consumer_t;

struct _zper_dafka_consumer_t {
    zactor_t *actor;
    int timeout_ms;                 //  the pipe's receive timeout, set when it changes
    char uuid [ZPER_DAFKA_UUID_SIZE + 1];
    s_counters_t counters;
};

typedef struct {
    zconfig_t *config;
    const char *uuid;
    s_counters_t *counters;
} s_arguments_t;

static void
s_count (uint64_t *counter)
{
    __atomic_add_fetch (counter, 1, __ATOMIC_RELAXED);
}

//  ---- requests -------------------------------------------------------------------

static void
s_send_addressed (s_consumer_t *self, int id, const char *topic)
{
    zper_dafka_msg_set_id (self->msg, id);
    zper_dafka_msg_set_topic (self->msg, topic);
    zper_dafka_msg_set_address (self->msg, self->uuid);
    zper_dafka_msg_send (self->msg, self->xpub);
}

static uint64_t
s_expected (s_partition_t *partition)
{
    return partition->delivered == ZPER_DAFKA_NONE? 0: partition->delivered + 1;
}

static bool
s_behind (s_partition_t *partition)
{
    return partition->known != ZPER_DAFKA_NONE
        && (partition->delivered == ZPER_DAFKA_NONE || partition->known > partition->delivered);
}

//  True while the answer to the partition's last FETCH may still be coming:
//  its range covers the next sequence wanted and delivery advanced (or the
//  FETCH went out) less than the fetch timeout ago.
static bool
s_fetch_pending (s_consumer_t *self, s_partition_t *partition, int64_t now_ms)
{
    if (partition->asked_last == ZPER_DAFKA_NONE || s_expected (partition) > partition->asked_last)
        return false;
    if (partition->delivered != partition->progress_delivered) {
        partition->progress_delivered = partition->delivered;
        partition->progress_ms = now_ms;
    }
    return now_ms - partition->progress_ms < self->fetch_timeout_ms;
}

static void
s_fetch_if_behind (s_consumer_t *self, s_partition_t *partition, int64_t now_ms)
{
    if (!s_behind (partition)) {
        //  Caught up: whatever is still on its way is a duplicate, and the
        //  next gap is a new one, asked for at once
        partition->asked_last = ZPER_DAFKA_NONE;
        return;
    }
    if (s_fetch_pending (self, partition, now_ms))
        return;
    uint64_t sequence = s_expected (partition);
    uint32_t count = zper_dafka_fetch_count (sequence);
    zper_dafka_msg_set_subject (self->msg, partition->subject);
    zper_dafka_msg_set_sequence (self->msg, sequence);
    zper_dafka_msg_set_count (self->msg, count);
    s_send_addressed (self, ZPER_DAFKA_FETCH, partition->partition);
    if (self->verbose)
        zsys_info ("dafka consumer: FETCH %s/%s from %" PRIu64 " count %" PRIu32
                   " (known %" PRIu64 ")", partition->subject, partition->partition, sequence,
                   count, partition->known);
    //  Producers answer count records, stores count + 1 (inclusive, as the
    //  reference): the narrower reading ends the range, so a producer's full
    //  answer never waits for the timeout; a store's extra record may then
    //  be served once more by the next FETCH
    partition->asked_last = sequence + count - 1;
    partition->progress_delivered = partition->delivered;
    partition->progress_ms = now_ms;
}

static void
s_fetch_all_behind (s_consumer_t *self)
{
    int64_t now_ms = zclock_mono ();
    for (s_partition_t *partition = (s_partition_t *) zhashx_first (self->partitions); partition;
         partition = (s_partition_t *) zhashx_next (self->partitions))
        s_fetch_if_behind (self, partition, now_ms);
}

static void
s_send_consumer_hello (s_consumer_t *self, const char *store)
{
    zlist_t *subjects = zlist_new ();
    if (self->earliest)
        for (void *topic = zhashx_first (self->topics); topic; topic = zhashx_next (self->topics))
            zlist_append (subjects, (void *) zhashx_cursor (self->topics));
    zper_dafka_msg_set_subjects (self->msg, &subjects);
    s_send_addressed (self, ZPER_DAFKA_CONSUMER_HELLO, store);
    zlist_t *none = zlist_new ();
    zper_dafka_msg_set_subjects (self->msg, &none);
}

//  ---- receiving --------------------------------------------------------------------

//  The partition a received message speaks of, created at the configured
//  reset point on first sight.
static s_partition_t *
s_partition (s_consumer_t *self, const char *subject, const char *producer, uint64_t sequence)
{
    s_partition_t *partition = self->last_used;
    if (!partition || !streq (partition->partition, producer) || !streq (partition->subject, subject)) {
        char key [2 * ZPER_DAFKA_STRING_MAX + 2];
        snprintf (key, sizeof key, "%s/%s", subject, producer);
        partition = (s_partition_t *) zhashx_lookup (self->partitions, key);
        if (!partition) {
            partition = (s_partition_t *) zmalloc (sizeof (s_partition_t));
            snprintf (partition->subject, sizeof partition->subject, "%s", subject);
            snprintf (partition->partition, sizeof partition->partition, "%s", producer);
            partition->delivered = self->earliest? ZPER_DAFKA_NONE: sequence - 1;
            partition->known = ZPER_DAFKA_NONE;
            partition->asked_last = ZPER_DAFKA_NONE;
            zhashx_insert (self->partitions, key, partition);
        }
    }
    self->last_used = partition;
    if (partition->known == ZPER_DAFKA_NONE || sequence > partition->known)
        partition->known = sequence;
    return partition;
}

static void
s_deliver (s_consumer_t *self, s_partition_t *partition)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    if (sequence != s_expected (partition))
        return;                     //  a duplicate, or a gap that s_fetch_if_behind asks for
    partition->delivered = sequence;
    zper_dafka_msg_set_id (self->msg, ZPER_DAFKA_RECORD);
    zper_dafka_msg_set_topic (self->msg, partition->subject);
    zper_dafka_msg_send_content (self->msg, self->pipe, &self->content);
    s_count (&self->counters->delivered);
}

//  The partition of (subject, producer) if there is one yet.
static s_partition_t *
s_partition_lookup (s_consumer_t *self, const char *subject, const char *producer)
{
    s_partition_t *partition = self->last_used;
    if (partition && streq (partition->partition, producer) && streq (partition->subject, subject))
        return partition;
    char key [2 * ZPER_DAFKA_STRING_MAX + 2];
    snprintf (key, sizeof key, "%s/%s", subject, producer);
    return (s_partition_t *) zhashx_lookup (self->partitions, key);
}

//  With CURVE, a partition's RECORDs and HEADs come from one key: the key
//  the tower vouched for the producer's uuid when the partition was first
//  heard of (the tower gives a uuid to the first key that announces it),
//  then the partition's own. A stream cannot be taken over by a peer
//  forging its uuid, nor claimed before its producer's first record. The
//  check comes before the partition is made or its sequence believed.
static bool
s_sender_owns (s_consumer_t *self, const char *subject, const char *producer)
{
    const char *sender = zper_dafka_msg_sender (self->msg);
    s_partition_t *partition = s_partition_lookup (self, subject, producer);
    const char *owner = partition && *partition->key? partition->key
                      : zper_dafka_beacon_vouched (self->beacon, producer);
    if (owner && streq (owner, sender))
        return true;
    s_count (&self->counters->forged);
    if (self->verbose)
        zsys_warning ("dafka consumer: dropped a %s of %s/%s from key %s (the uuid's key: %s)",
                      zper_dafka_msg_id (self->msg) == ZPER_DAFKA_HEAD? "HEAD": "RECORD",
                      subject, producer, sender, owner? owner: "none announced");
    return false;
}

static void
s_handle (s_consumer_t *self)
{
    int id = zper_dafka_msg_id (self->msg);
    const char *subject = zper_dafka_msg_subject (self->msg);
    bool subscribed = zhashx_lookup (self->topics, subject) != NULL;
    //  Topic-addressed messages must name the topic exactly: the wire's
    //  subscription is only a prefix match
    bool exact = streq (zper_dafka_msg_topic (self->msg), subject);
    if (id == ZPER_DAFKA_STORE_HELLO) {
        s_send_consumer_hello (self, zper_dafka_msg_address (self->msg));
        return;
    }
    if (!subscribed || ((id == ZPER_DAFKA_RECORD || id == ZPER_DAFKA_HEAD) && !exact))
        return;
    const char *producer = zper_dafka_msg_address (self->msg);
    bool owned = id == ZPER_DAFKA_RECORD || id == ZPER_DAFKA_HEAD;
    if (!owned && id != ZPER_DAFKA_DIRECT_RECORD && id != ZPER_DAFKA_DIRECT_HEAD)
        return;
    if (self->security && owned && !s_sender_owns (self, subject, producer))
        return;
    s_partition_t *partition = s_partition (self, subject, producer, zper_dafka_msg_sequence (self->msg));
    if (self->security && owned && !*partition->key)
        snprintf (partition->key, sizeof partition->key, "%s", zper_dafka_msg_sender (self->msg));
    if (id == ZPER_DAFKA_RECORD || id == ZPER_DAFKA_DIRECT_RECORD)
        s_deliver (self, partition);
}

static int
s_on_sub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_consumer_t *self = (s_consumer_t *) argument;
    //  Drains what is waiting (up to a batch) without polling per message
    for (int batch = 0; batch < ZPER_DAFKA_BATCH; batch++) {
        if (zper_dafka_msg_recv_content (self->msg, reader, &self->content, ZMQ_DONTWAIT) == 0)
            s_handle (self);
        else
        if (errno != EPROTO)
            break;
        else {
            s_count (&self->counters->malformed);
            if (self->verbose)
                zsys_warning ("dafka consumer: dropped a malformed message (%s)",
                              zper_dafka_msg_reason (self->msg));
        }
    }
    s_fetch_all_behind (self);
    return 0;
}

//  A store's SUB subscribing W+store on our XPUB: say hello to that store.
static int
s_on_xpub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_consumer_t *self = (s_consumer_t *) argument;
    zframe_t *event = zframe_recv (reader);
    if (event && zframe_size (event) > 2 && zframe_data (event) [0] == 1
    &&  zframe_data (event) [1] == ZPER_DAFKA_CONSUMER_HELLO
    &&  zframe_size (event) - 2 <= ZPER_DAFKA_STRING_MAX) {
        char store [ZPER_DAFKA_STRING_MAX + 1];
        memcpy (store, zframe_data (event) + 2, zframe_size (event) - 2);
        store [zframe_size (event) - 2] = 0;
        s_send_consumer_hello (self, store);
    }
    zframe_destroy (&event);
    return 0;
}

static int
s_on_fetch_timer (zloop_t *loop, int timer_id, void *argument)
{
    s_fetch_all_behind ((s_consumer_t *) argument);
    return 0;
}

//  An earliest consumer asks the stores for their heads again and again: a
//  producer that came and went while our SUB was not yet connected to it
//  left no RECORD or HEAD for us, and the stores are then the only ones who
//  can tell us that its partition exists.
static int
s_on_heads_timer (zloop_t *loop, int timer_id, void *argument)
{
    s_consumer_t *self = (s_consumer_t *) argument;
    for (void *topic = zhashx_first (self->topics); topic; topic = zhashx_next (self->topics))
        s_send_addressed (self, ZPER_DAFKA_GET_HEADS, (const char *) zhashx_cursor (self->topics));
    return 0;
}

static void
s_subscribe (s_consumer_t *self, const char *topic)
{
    if (zhashx_lookup (self->topics, topic))
        return;
    zhashx_insert (self->topics, topic, (void *) "subscribed");
    char subscription [ZPER_DAFKA_STRING_MAX + 2];
    snprintf (subscription, sizeof subscription, "%c%s", ZPER_DAFKA_RECORD, topic);
    zsock_set_subscribe (self->sub, subscription);
    subscription [0] = ZPER_DAFKA_HEAD;
    zsock_set_subscribe (self->sub, subscription);
    if (self->earliest)
        s_send_addressed (self, ZPER_DAFKA_GET_HEADS, topic);
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *argument)
{
    s_consumer_t *self = (s_consumer_t *) argument;
    char *verb = NULL, *topic = NULL;
    int rc = zsock_recv (pipe, "ss", &verb, &topic) == 0 && streq (verb, "SUBSCRIBE")? 0: -1;
    if (rc == 0)
        s_subscribe (self, topic);
    zstr_free (&verb);
    zstr_free (&topic);
    return rc;                      //  $TERM or anything unknown ends the actor
}

//  ---- the actor -------------------------------------------------------------------

static void
s_on_beacon_peer (void *owner, const char *endpoint, const char *key, bool connected)
{
    s_consumer_t *self = (s_consumer_t *) owner;
    if (self->security) {
        //  With CURVE the XPUB connects to the peer's listening SUB
        if (!connected)
            zsock_disconnect (self->xpub, "%s", endpoint);
        else
        if (zper_security_client (self->security, self->xpub, key) == 0)
            zsock_connect (self->xpub, "%s", endpoint);
        return;
    }
    if (connected)
        zsock_connect (self->sub, "%s", endpoint);
    else {
        //  Whole messages first: libzmq asserts (!_more, fq.cpp) when a
        //  multipart message is read from a pipe that a disconnect is
        //  tearing down (libzmq issue 3485)
        s_on_sub (self->loop, self->sub, self);
        zsock_disconnect (self->sub, "%s", endpoint);
    }
}

static s_consumer_t *
s_consumer_new (zsock_t *pipe, s_arguments_t *arguments)
{
    zconfig_t *config = arguments->config;
    s_consumer_t *self = (s_consumer_t *) zmalloc (sizeof (s_consumer_t));
    self->pipe = pipe;
    self->counters = arguments->counters;
    snprintf (self->uuid, sizeof self->uuid, "%s", arguments->uuid);
    self->earliest = !streq (zper_dafka_config_string (config, "consumer/offset/reset",
                                                       ZPER_DAFKA_OFFSET_RESET), "latest");
    self->verbose = zper_dafka_config_number (config, "consumer/verbose", 0) != 0;
    self->fetch_timeout_ms = zper_dafka_config_number (config, "consumer/fetch_timeout",
                                                       ZPER_DAFKA_FETCH_TIMEOUT_MS);
    self->msg = zper_dafka_msg_new ();
    zmq_msg_init (&self->content);
    self->topics = zhashx_new ();
    self->partitions = zhashx_new ();
    zhashx_set_destructor (self->partitions, (zhashx_destructor_fn *) zstr_free);
    self->loop = zloop_new ();
    int high_watermark = (int) zper_dafka_config_number (config, "consumer/high_watermark",
                                                         ZPER_DAFKA_HIGH_WATERMARK);
    self->xpub = zsock_new (ZMQ_XPUB);
    self->sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (self->xpub, 0);
    zsock_set_linger (self->sub, 0);
    zsock_set_xpub_verbose (self->xpub, 1);
    zsock_set_sndhwm (self->xpub, high_watermark);
    zsock_set_rcvhwm (self->sub, high_watermark);
    const char own [] = { ZPER_DAFKA_DIRECT_RECORD, ZPER_DAFKA_DIRECT_HEAD, ZPER_DAFKA_STORE_HELLO };
    for (size_t index = 0; index < sizeof own; index++) {
        char subscription [ZPER_DAFKA_UUID_SIZE + 2];
        snprintf (subscription, sizeof subscription, "%c%s", own [index], self->uuid);
        zsock_set_subscribe (self->sub, subscription);
    }
    if (zper_dafka_security_acquire (config, &self->security))
        return self;                //  no beacon: the start fails
    //  What is bound is what is announced: the XPUB, or with CURVE the SUB
    zsock_t *bound = self->security? self->sub: self->xpub;
    zper_dafka_msg_track_sender (self->msg, self->security != NULL);
    if (self->security) {
        self->guard = zper_dafka_security_guard (config, self->loop);
        zper_dafka_msg_set_guard (self->msg, self->guard);
        if (!self->guard || zper_security_server (self->security, bound, "dafka consumer"))
            return self;
    }
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    int port = zsock_bind (bound, "%s", bind);
    if (port > 0)
        self->beacon = zper_dafka_beacon_new (config, self->security, self->uuid, port,
                                              s_on_beacon_peer, self);
    else
        zsys_error ("dafka consumer: cannot bind %s", bind);
    zstr_free (&bind);
    return self;
}

static void
s_consumer_destroy (s_consumer_t **self_p)
{
    s_consumer_t *self = *self_p;
    zper_dafka_beacon_destroy (&self->beacon);
    zloop_destroy (&self->loop);
    zper_guard_destroy (&self->guard);
    zsock_destroy (&self->xpub);
    zsock_destroy (&self->sub);
    zper_dafka_security_release (&self->security);
    zhashx_destroy (&self->topics);
    zhashx_destroy (&self->partitions);
    zper_dafka_msg_destroy (&self->msg);
    zmq_msg_close (&self->content);
    free (self);
    *self_p = NULL;
}

static void
s_consumer_actor (zsock_t *pipe, void *argument)
{
    s_consumer_t *self = s_consumer_new (pipe, (s_arguments_t *) argument);
    zsock_signal (pipe, 0);         //  for zactor_new; the second signal is the welcome
    if (!self->beacon || zper_dafka_beacon_wait_welcome (self->beacon, pipe)) {
        zsock_signal (pipe, 1);
        s_consumer_destroy (&self);
        return;
    }
    zsock_signal (pipe, 0);
    zper_dafka_beacon_attach (self->beacon, self->loop);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_reader (self->loop, self->sub, s_on_sub, self);
    zloop_reader (self->loop, self->xpub, s_on_xpub, self);
    zloop_timer (self->loop, ZPER_DAFKA_FETCH_RETRY_MS, 0, s_on_fetch_timer, self);
    if (self->earliest)
        zloop_timer (self->loop, ZPER_DAFKA_HEADS_REFRESH_MS, 0, s_on_heads_timer, self);
    zloop_start (self->loop);
    s_consumer_destroy (&self);
}

zper_dafka_consumer_t *
zper_dafka_consumer_new (zconfig_t *config)
{
    zper_dafka_consumer_t *self = (zper_dafka_consumer_t *) zmalloc (sizeof (zper_dafka_consumer_t));
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->uuid, sizeof self->uuid, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    s_arguments_t arguments = { config, self->uuid, &self->counters };
    self->actor = zactor_new (s_consumer_actor, &arguments);
    self->timeout_ms = zsock_rcvtimeo (self->actor);
    if (zsock_wait (self->actor) != 0)
        zper_dafka_consumer_destroy (&self);
    return self;
}

void
zper_dafka_consumer_destroy (zper_dafka_consumer_t **self_p)
{
    if (self_p && *self_p) {
        zactor_destroy (&(*self_p)->actor);
        free (*self_p);
        *self_p = NULL;
    }
}

int
zper_dafka_consumer_subscribe (zper_dafka_consumer_t *self, const char *topic)
{
    if (!topic || !*topic || strlen (topic) > ZPER_DAFKA_STRING_MAX)
        return -1;
    return zsock_send (self->actor, "ss", "SUBSCRIBE", topic);
}

zper_dafka_msg_t *
zper_dafka_consumer_recv (zper_dafka_consumer_t *self, int timeout_ms)
{
    if (timeout_ms != self->timeout_ms) {
        zsock_set_rcvtimeo (self->actor, timeout_ms);
        self->timeout_ms = timeout_ms;
    }
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    if (zper_dafka_msg_recv (msg, zactor_sock (self->actor)))
        zper_dafka_msg_destroy (&msg);
    return msg;
}

const char *
zper_dafka_consumer_uuid (zper_dafka_consumer_t *self)
{
    return self->uuid;
}

void
zper_dafka_consumer_stats (zper_dafka_consumer_t *self, uint64_t *delivered, uint64_t *malformed)
{
    *delivered = __atomic_load_n (&self->counters.delivered, __ATOMIC_RELAXED);
    *malformed = __atomic_load_n (&self->counters.malformed, __ATOMIC_RELAXED);
}

uint64_t
zper_dafka_consumer_forged (zper_dafka_consumer_t *self)
{
    return __atomic_load_n (&self->counters.forged, __ATOMIC_RELAXED);
}

//  ---- selftest: earliest consumer, fed by FETCH from the producers alone -------

void
zper_dafka_consumer_test (bool verbose)
{
    zper_dafka_tower_t *tower;
    zconfig_t *config = zper_dafka_tower_test_start (NULL, &tower);
    zconfig_put (config, "producer/terminate_unacked", "1");
    zconfig_put (config, "consumer/offset/reset", "earliest");

    //  Two producers whose topics share a prefix; records published before
    //  the consumer exists are fetched from the producers' unacked records
    zper_dafka_producer_t *wanted = zper_dafka_producer_new (config, "zper.t");
    zper_dafka_producer_t *other = zper_dafka_producer_new (config, "zper.tt");
    assert (wanted && other);
    const int records = 500;
    for (int index = 0; index < records; index++) {
        zframe_t *content = zframe_new (NULL, sizeof (int));
        memcpy (zframe_data (content), &index, sizeof (int));
        zframe_t *noise = zframe_new ("noise", 5);
        assert (zper_dafka_producer_publish (wanted, &content) == 0);
        assert (zper_dafka_producer_publish (other, &noise) == 0);
    }
    zper_dafka_consumer_t *consumer = zper_dafka_consumer_new (config);
    assert (consumer);
    assert (zper_dafka_consumer_subscribe (consumer, "") == -1);
    assert (zper_dafka_consumer_subscribe (consumer, "zper.t") == 0);
    for (int expected = 0; expected < records; expected++) {
        zper_dafka_msg_t *record = zper_dafka_consumer_recv (consumer, 10000);
        assert (record);
        assert (streq (zper_dafka_msg_subject (record), "zper.t"));
        assert (streq (zper_dafka_msg_address (record), zper_dafka_producer_uuid (wanted)));
        assert (zper_dafka_msg_sequence (record) == (uint64_t) expected);
        int value;
        memcpy (&value, zframe_data (zper_dafka_msg_content (record)), sizeof (int));
        assert (value == expected);
        zper_dafka_msg_destroy (&record);
    }
    //  Live records follow in order; nothing of the prefixed topic arrives
    zframe_t *content = zframe_new ("live", 4);
    zper_dafka_producer_publish (wanted, &content);
    zper_dafka_msg_t *record = zper_dafka_consumer_recv (consumer, 10000);
    assert (record && zper_dafka_msg_sequence (record) == (uint64_t) records);
    zper_dafka_msg_destroy (&record);
    assert (zper_dafka_consumer_recv (consumer, 300) == NULL);
    uint64_t delivered, malformed;
    zper_dafka_consumer_stats (consumer, &delivered, &malformed);
    assert (delivered == (uint64_t) records + 1 && malformed == 0);

    zper_dafka_consumer_destroy (&consumer);
    zper_dafka_consumer_destroy (&consumer);
    zper_dafka_producer_destroy (&wanted);
    zper_dafka_producer_destroy (&other);
    zper_dafka_tower_destroy (&tower);
    zconfig_destroy (&config);
}
