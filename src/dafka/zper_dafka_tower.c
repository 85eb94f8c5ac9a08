/*  =========================================================================
    zper_dafka_tower - Dafka discovery: forwards beacons, carries no data

    The sockets are bound by zper_dafka_tower_new, in the caller's thread, so
    that a bad address is an immediate NULL, then handed to the actor. The
    one thing to know: the advertised address must be one the other peers
    can reach. A peer that configured beacon/address is taken at its word;
    a loopback connection is rewritten to this machine's outside address
    only when the machine has one (the reference always does, which breaks
    loopback-only machines).

    With CURVE (security/curve = 1) both sockets are CURVE servers behind
    zauth, so only allowed keys announce or listen, and each forwarded
    beacon carries the key the announcing peer authenticated with:
    ["B", uuid, endpoint, key]. Peers connect their data sockets to that
    endpoint with that key as the server key. A uuid belongs to the key of
    its first beacon: a beacon of that uuid from another key is dropped, so
    the key the tower vouches for a producer's uuid is the producer's, and
    nodes bind the producer's stream to it.
    ========================================================================= */

#include "zper_dafka_tower.h"
#include "zper_dafka_config.h"
#include "zper_dafka_security.h"
#include "zper_defaults.h"
#include <string.h>

#define S_BEACON_FRAMES     4       //  ["B", uuid, host, port]
#define S_LOOPBACK          "127.0.0.1"
#define S_HOST_MAX          256
#define S_KEY_SIZE          40      //  Z85 of a CURVE public key

//  With CURVE: who a uuid belongs to.
typedef struct {
    char key [S_KEY_SIZE + 1];
    int64_t heard;                  //  monotonic ms of its last beacon
} s_owner_t;

struct _zper_dafka_tower_t {
    zactor_t *actor;
    zsock_t *xsub;                  //  owned by the actor once it runs
    zsock_t *xpub;
    int sub_port;
    int pub_port;
    zper_security_t *security;      //  CURVE when not NULL (the process's, counted)
    zper_guard_t *guard;            //  with CURVE: cuts off keys removed from the folder (actor's)
    int64_t reload_ms;              //  how often the guard looks at the folder
    zhashx_t *owners;               //  with CURVE: uuid -> s_owner_t (actor's)
    int64_t silence_ms;             //  beacon/timeout: an owner silent this long may be forgotten
    size_t max_uuids;               //  tower/max_uuids: owners remembered at once
    int64_t next_log_ms;            //  dropped beacons are logged at most once per interval
    bool verbose;
    uint64_t forwarded;             //  written by the actor, read by stats
    uint64_t dropped;
};

char *
zper_dafka_tower_advertised_host (const char *configured_host, const char *peer_address)
{
    if (configured_host && *configured_host)
        return strdup (configured_host);
    bool loopback = !peer_address || !*peer_address || streq (peer_address, "::1")
                 || strncmp (peer_address, "127.", 4) == 0;
    if (!loopback)
        return strdup (peer_address);
    ziflist_t *interfaces = ziflist_new ();
    const char *outside = interfaces? ziflist_first (interfaces): NULL;
    char *host = strdup (outside? ziflist_address (interfaces): S_LOOPBACK);
    ziflist_destroy (&interfaces);
    return host;
}

static void
s_forget_silent (zper_dafka_tower_t *self, int64_t now)
{
    zlist_t *silent = zlist_new ();
    for (s_owner_t *owner = (s_owner_t *) zhashx_first (self->owners); owner;
         owner = (s_owner_t *) zhashx_next (self->owners))
        if (now - owner->heard > self->silence_ms)
            zlist_append (silent, (void *) zhashx_cursor (self->owners));
    for (void *uuid = zlist_first (silent); uuid; uuid = zlist_next (silent))
        zhashx_delete (self->owners, uuid);
    zlist_destroy (&silent);
}

//  With CURVE, may key announce uuid? It may if it was the first to. The
//  table holds at most tower/max_uuids: when it is full, the
//  uuids silent for beacon/timeout are forgotten, and if none is, a new
//  uuid's beacon is refused until one is.
static bool
s_owner_allows (zper_dafka_tower_t *self, const char *uuid, const char *key)
{
    int64_t now = zclock_mono ();
    s_owner_t *owner = (s_owner_t *) zhashx_lookup (self->owners, uuid);
    if (!owner && zhashx_size (self->owners) >= self->max_uuids)
        s_forget_silent (self, now);
    if (!owner && zhashx_size (self->owners) < self->max_uuids) {
        owner = (s_owner_t *) zmalloc (sizeof (s_owner_t));
        snprintf (owner->key, sizeof owner->key, "%s", key);
        zhashx_insert (self->owners, uuid, owner);
    }
    if (!owner || !streq (owner->key, key)) {
        if (now >= self->next_log_ms) {
            char printable [ZPER_DAFKA_LOG_NAME_MAX + 1];
            size_t length = 0;
            for (; uuid [length] && length < ZPER_DAFKA_LOG_NAME_MAX; length++)
                printable [length] = uuid [length] >= ' ' && uuid [length] <= '~'? uuid [length]: '?';
            printable [length] = 0;
            zsys_warning ("dafka tower: dropped a beacon of '%s' from key %s: %s", printable, key,
                          owner? "the uuid is another key's": "too many uuids announcing at once");
            self->next_log_ms = now + ZPER_LOG_INTERVAL_MS;
        }
        return false;
    }
    owner->heard = now;
    return true;
}

//  Reads one beacon with the Peer-Address of its first frame, forwards it.
static void
s_forward_beacon (zper_dafka_tower_t *self)
{
    zmq_msg_t frames [S_BEACON_FRAMES];
    int count = 0;
    bool oversized = false;         //  a frame no beacon field can be: the message is dropped
    char peer_address [S_HOST_MAX] = "";
    char key [S_KEY_SIZE + 1] = "";
    bool more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, zsock_resolve (self->xsub), 0) < 0)
            break;
        more = zmq_msg_more (&frame);
        const char *address = count == 0? zmq_msg_gets (&frame, "Peer-Address"): NULL;
        if (address)
            snprintf (peer_address, sizeof peer_address, "%s", address);
        const char *user = count == 0 && self->security? zmq_msg_gets (&frame, "User-Id"): NULL;
        if (user)
            snprintf (key, sizeof key, "%s", user);
        //  A key no longer allowed: the guard shuts its connection down
        if (user && zper_guard_check (self->guard, &frame, ZPER_GUARD_WRITE | ZPER_GUARD_READ,
                                      "", 0) == ZPER_GUARD_CUT)
            key [0] = 0;
        if (zmq_msg_size (&frame) >= S_HOST_MAX) {
            oversized = true;
            zmq_msg_close (&frame);
            zmq_msg_init (&frame);
        }
        if (count < S_BEACON_FRAMES)
            frames [count] = frame;
        else
            zmq_msg_close (&frame);
        count++;
    }
    int kept = count < S_BEACON_FRAMES? count: S_BEACON_FRAMES;
    char strings [S_BEACON_FRAMES][S_HOST_MAX];
    bool valid = count == S_BEACON_FRAMES && !oversized && zmq_msg_size (&frames [0]) == 1
              && *(char *) zmq_msg_data (&frames [0]) == 'B'
              && (!self->security || strlen (key) == S_KEY_SIZE);
    for (int index = 0; valid && index < S_BEACON_FRAMES; index++) {
        size_t size = zmq_msg_size (&frames [index]);
        memcpy (strings [index], zmq_msg_data (&frames [index]), size);
        strings [index][size] = 0;
    }
    if (valid && (!self->security || s_owner_allows (self, strings [1], key))) {
        char *host = zper_dafka_tower_advertised_host (strings [2], peer_address);
        bool ipv6 = strchr (host, ':') != NULL;
        char *endpoint = zsys_sprintf (ipv6? "tcp://[%s]:%s": "tcp://%s:%s", host, strings [3]);
        if (self->security)
            zsock_send (self->xpub, "ssss", "B", strings [1], endpoint, key);
        else
            zsock_send (self->xpub, "sss", "B", strings [1], endpoint);
        if (self->verbose)
            zsys_info ("dafka tower: %s at %s %s", strings [1], endpoint, key);
        zstr_free (&endpoint);
        zstr_free (&host);
        __atomic_add_fetch (&self->forwarded, 1, __ATOMIC_RELAXED);
    }
    else
        __atomic_add_fetch (&self->dropped, 1, __ATOMIC_RELAXED);
    for (int index = 0; index < kept; index++)
        zmq_msg_close (&frames [index]);
}

//  Subscriptions flow upstream so that beacons are sent at all; the
//  welcome subscription is the tower's own business and stays here.
//  With CURVE the guard sees each listener's subscriptions, so that it can
//  cut off a listener whose key leaves the folder.
static void
s_forward_subscription (zper_dafka_tower_t *self)
{
    zmq_msg_t subscription;
    zmq_msg_init (&subscription);
    if (zmq_msg_recv (&subscription, zsock_resolve (self->xpub), 0) >= 0
    &&  zmq_msg_size (&subscription) >= 2
    &&  ((char *) zmq_msg_data (&subscription)) [1] != ZPER_DAFKA_WELCOME [0]
    &&  (!self->guard || zper_guard_check (self->guard, &subscription, ZPER_GUARD_WRITE
                                           | ZPER_GUARD_READ, "", 0) != ZPER_GUARD_CUT))
        zmq_msg_send (&subscription, zsock_resolve (self->xsub), 0);
    zmq_msg_close (&subscription);
}

static void
s_tower_actor (zsock_t *pipe, void *argument)
{
    zper_dafka_tower_t *self = (zper_dafka_tower_t *) argument;
    zpoller_t *poller = zpoller_new (pipe, self->xsub, self->xpub, NULL);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, self->guard? (int) self->reload_ms: -1);
        if (self->guard)
            zper_guard_refresh (self->guard);
        if (which == self->xsub)
            s_forward_beacon (self);
        else
        if (which == self->xpub)
            s_forward_subscription (self);
        else
        if (which || zpoller_terminated (poller))
            break;                  //  $TERM on the pipe, or interrupted
    }
    zpoller_destroy (&poller);
}

zper_dafka_tower_t *
zper_dafka_tower_new (zconfig_t *config)
{
    zper_dafka_tower_t *self = (zper_dafka_tower_t *) zmalloc (sizeof (zper_dafka_tower_t));
    const char *sub_address = zper_dafka_config_string (config, "tower/sub_address",
                                                        ZPER_DAFKA_TOWER_SUB_ADDRESS);
    const char *pub_address = zper_dafka_config_string (config, "tower/pub_address",
                                                        ZPER_DAFKA_TOWER_PUB_ADDRESS);
    self->verbose = zper_dafka_config_number (config, "tower/verbose", 0) != 0;
    self->xsub = zsock_new (ZMQ_XSUB);
    self->xpub = zsock_new (ZMQ_XPUB);
    zsock_set_linger (self->xsub, 0);
    zsock_set_linger (self->xpub, 0);
    zsock_set_xpub_welcome_msg (self->xpub, ZPER_DAFKA_WELCOME);
    self->owners = zhashx_new ();
    zhashx_set_destructor (self->owners, (zhashx_destructor_fn *) zstr_free);
    self->silence_ms = zper_dafka_config_number (config, "beacon/timeout", ZPER_DAFKA_BEACON_TIMEOUT_MS);
    self->max_uuids = (size_t) zper_dafka_config_number (config, "tower/max_uuids",
                                                         ZPER_DAFKA_TOWER_MAX_UUIDS);
    self->max_uuids = self->max_uuids? self->max_uuids: SIZE_MAX;      //  0: no limit
    self->reload_ms = zper_dafka_config_number (config, "security/reload_ms", ZPER_SECURITY_RELOAD_MS);
    self->reload_ms = self->reload_ms > 0? self->reload_ms: ZPER_SECURITY_RELOAD_MS;
    if (zper_dafka_security_acquire (config, &self->security)
    ||  (self->security
    &&   (!(self->guard = zper_guard_new (zper_security_keys_dir (self->security), self->reload_ms))
    ||    zper_security_server (self->security, self->xsub, "dafka tower sub")
    ||    zper_security_server (self->security, self->xpub, "dafka tower pub")))) {
        zsys_error ("dafka tower: cannot set up CURVE (see above)");
        zper_dafka_tower_destroy (&self);
        return NULL;
    }
    self->sub_port = zsock_bind (self->xsub, "%s", sub_address);
    self->pub_port = zsock_bind (self->xpub, "%s", pub_address);
    if (self->sub_port < 0 || self->pub_port < 0) {
        zsys_error ("dafka tower: cannot bind %s", self->sub_port < 0? sub_address: pub_address);
        zper_dafka_tower_destroy (&self);
        return NULL;
    }
    self->actor = zactor_new (s_tower_actor, self);
    return self;
}

void
zper_dafka_tower_destroy (zper_dafka_tower_t **self_p)
{
    if (self_p && *self_p) {
        zper_dafka_tower_t *self = *self_p;
        zactor_destroy (&self->actor);
        zsock_destroy (&self->xsub);
        zsock_destroy (&self->xpub);
        zper_dafka_security_release (&self->security);
        zper_guard_destroy (&self->guard);
        zhashx_destroy (&self->owners);
        free (self);
        *self_p = NULL;
    }
}

zactor_t *
zper_dafka_tower_actor (zper_dafka_tower_t *self)
{
    return self->actor;
}

int
zper_dafka_tower_sub_port (zper_dafka_tower_t *self)
{
    return self->sub_port;
}

int
zper_dafka_tower_pub_port (zper_dafka_tower_t *self)
{
    return self->pub_port;
}

int
zper_dafka_tower_stats (zper_dafka_tower_t *self, uint64_t *forwarded, uint64_t *dropped)
{
    *forwarded = __atomic_load_n (&self->forwarded, __ATOMIC_RELAXED);
    *dropped = __atomic_load_n (&self->dropped, __ATOMIC_RELAXED);
    return 0;
}

//  ---- selftest ------------------------------------------------------------------

zconfig_t *
zper_dafka_tower_test_start (zconfig_t *config, zper_dafka_tower_t **tower_p)
{
    if (!config)
        config = zconfig_new ("root", NULL);
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
    *tower_p = tower;
    return config;
}

void
zper_dafka_tower_test (bool verbose)
{
    char *host = zper_dafka_tower_advertised_host ("10.1.2.3", "127.0.0.1");
    assert (streq (host, "10.1.2.3"));
    zstr_free (&host);
    host = zper_dafka_tower_advertised_host ("", "192.168.7.7");
    assert (streq (host, "192.168.7.7"));
    zstr_free (&host);
    host = zper_dafka_tower_advertised_host ("", "127.0.0.1");
    assert (strncmp (host, "127.", 4) != 0 || streq (host, S_LOOPBACK));
    zstr_free (&host);

    zper_dafka_tower_t *tower;
    zconfig_t *config = zper_dafka_tower_test_start (NULL, &tower);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zper_dafka_tower_sub_port (tower));
    zsock_t *beacon = zsock_new (ZMQ_PUB);
    zsock_connect (beacon, "%s", endpoint);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zper_dafka_tower_pub_port (tower));
    zsock_t *listener = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (listener, ZPER_DAFKA_WELCOME);
    zsock_set_subscribe (listener, "B");
    zsock_connect (listener, "%s", endpoint);
    zsock_set_rcvtimeo (listener, 5000);
    //  The welcome comes once the tower has read the subscription
    char *welcome = zstr_recv (listener);
    assert (welcome && streq (welcome, ZPER_DAFKA_WELCOME));
    zstr_free (&welcome);
    //  A malformed beacon is dropped; a good one is forwarded with its host
    char *kind = NULL, *uuid = NULL, *advertised = NULL;
    for (int attempt = 0; attempt < 50 && !advertised; attempt++) {
        zsock_send (beacon, "ss", "B", "short");
        char oversized [S_HOST_MAX + 1];
        memset (oversized, 'h', S_HOST_MAX);
        oversized [S_HOST_MAX] = 0;
        zsock_send (beacon, "ssss", "B", "PEER", oversized, "1234");
        zsock_send (beacon, "ssss", "B", "PEER", "127.0.0.1", "1234");
        zsock_set_rcvtimeo (listener, 100);
        zsock_recv (listener, "sss", &kind, &uuid, &advertised);
    }
    assert (advertised && streq (advertised, "tcp://127.0.0.1:1234") && streq (uuid, "PEER"));
    zstr_free (&kind); zstr_free (&uuid); zstr_free (&advertised);
    //  An empty host from loopback: the tower picks one the peers can reach
    char *expected_host = zper_dafka_tower_advertised_host ("", "127.0.0.1");
    char *expected = zsys_sprintf ("tcp://%s:4321", expected_host);
    zsock_send (beacon, "ssss", "B", "ANYWHERE", "", "4321");
    zsock_set_rcvtimeo (listener, 5000);
    while (true) {                  //  earlier attempts' PEER beacons may still be queued
        assert (zsock_recv (listener, "sss", &kind, &uuid, &advertised) == 0);
        if (streq (uuid, "ANYWHERE"))
            break;
        zstr_free (&kind); zstr_free (&uuid); zstr_free (&advertised);
    }
    assert (streq (advertised, expected));
    zstr_free (&kind); zstr_free (&uuid); zstr_free (&advertised);
    zstr_free (&expected);
    zstr_free (&expected_host);
    uint64_t forwarded, dropped;
    zper_dafka_tower_stats (tower, &forwarded, &dropped);
    assert (forwarded >= 1 && dropped >= 1);
    zsock_destroy (&listener);
    zsock_destroy (&beacon);
    zper_dafka_tower_destroy (&tower);
    zper_dafka_tower_destroy (&tower);
    zconfig_put (config, "tower/pub_address", "tcp://256.0.0.1:1");
    assert (zper_dafka_tower_new (config) == NULL);
    zconfig_destroy (&config);
}
