/*  =========================================================================
    zper_dafka_beacon - a Dafka peer's discovery through the towers

    The beacon keeps the endpoints it has heard of with the time each was
    last heard; a beacon interval timer both announces this peer and expires
    the silent ones. The one thing to know: the tower's messages are trusted
    no more than any other network input: a "B" message that is not exactly
    three frames, or whose endpoint is not a tcp:// address, is ignored.

    With CURVE (a zper_security_t given) both sockets are CURVE clients of
    the tower (security/tower_key), and the tower adds to each "B" the key
    it authenticated the announcing peer with: ["B", uuid, endpoint, key].
    That key is what the owner gives its data socket as the server key
    when it connects, so a peer can never announce someone else's key: a
    connection to an endpoint whose holder lacks the key's secret fails
    its handshake. An endpoint heard again with another key (a node
    restarted on the same port with a new certificate) is disconnected and
    connected again with the new one.
    ========================================================================= */

#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_security.h"
#include "zper_defaults.h"
#include <string.h>

#define S_FORWARD_FRAMES    3       //  ["B", uuid, endpoint] from the tower
#define S_CURVE_FRAMES      4       //  ["B", uuid, endpoint, key] from a CURVE tower
#define S_ENDPOINT_MAX      256
#define S_KEY_SIZE          40      //  Z85 of a CURVE public key

//  What the beacon knows of one endpoint.
typedef struct {
    int64_t heard;                  //  monotonic ms of its last beacon
    char key [S_KEY_SIZE + 1];      //  its CURVE key (the tower's word), "" without CURVE
    char *uuid;                     //  the uuid it announced last
} s_peer_t;

struct _zper_dafka_beacon_t {
    zsock_t *pub;                   //  to the tower XSUB
    zsock_t *sub;                   //  from the tower XPUB
    char *uuid;
    char *host;
    char port [16];
    int64_t interval_ms;
    int64_t timeout_ms;
    bool verbose;
    bool welcomed;
    zper_security_t *security;      //  CURVE when not NULL (not owned)
    zhashx_t *last_heard;           //  endpoint -> s_peer_t
    zper_dafka_beacon_peer_fn *peer_fn;
    void *owner;
};

static void
s_announce (zper_dafka_beacon_t *self)
{
    zsock_send (self->pub, "ssss", "B", self->uuid, self->host, self->port);
}

static void
s_peer_destroy (s_peer_t **peer_p)
{
    zstr_free (&(*peer_p)->uuid);
    free (*peer_p);
    *peer_p = NULL;
}

//  With CURVE, both sockets are clients of the tower's key.
static int
s_secure (zper_dafka_beacon_t *self, zconfig_t *config)
{
    char tower_key [S_KEY_SIZE + 1];
    if (!self->security)
        return 0;
    if (zper_dafka_security_tower_key (config, tower_key))
        return -1;
    return zper_security_client (self->security, self->pub, tower_key) == 0
        && zper_security_client (self->security, self->sub, tower_key) == 0? 0: -1;
}

zper_dafka_beacon_t *
zper_dafka_beacon_new (zconfig_t *config, zper_security_t *security, const char *uuid, int port,
                       zper_dafka_beacon_peer_fn *peer_fn, void *owner)
{
    zper_dafka_beacon_t *self = (zper_dafka_beacon_t *) zmalloc (sizeof (zper_dafka_beacon_t));
    self->security = security;
    self->uuid = strdup (uuid);
    self->host = strdup (zper_dafka_config_string (config, "beacon/address", ZPER_DAFKA_BEACON_ADDRESS));
    snprintf (self->port, sizeof self->port, "%d", port);
    self->interval_ms = zper_dafka_config_number (config, "beacon/interval", ZPER_DAFKA_BEACON_INTERVAL_MS);
    self->timeout_ms = zper_dafka_config_number (config, "beacon/timeout", ZPER_DAFKA_BEACON_TIMEOUT_MS);
    self->verbose = zper_dafka_config_number (config, "beacon/verbose", 0) != 0;
    self->peer_fn = peer_fn;
    self->owner = owner;
    self->last_heard = zhashx_new ();
    zhashx_set_destructor (self->last_heard, (zhashx_destructor_fn *) s_peer_destroy);
    const char *tower_sub = zper_dafka_config_string (config, "beacon/sub_address",
                                                      ZPER_DAFKA_BEACON_SUB_ADDRESS);
    const char *tower_pub = zper_dafka_config_string (config, "beacon/pub_address",
                                                      ZPER_DAFKA_BEACON_PUB_ADDRESS);
    self->pub = zsock_new (ZMQ_PUB);
    self->sub = zsock_new (ZMQ_SUB);
    if (self->interval_ms <= 0)
        self->interval_ms = ZPER_DAFKA_BEACON_INTERVAL_MS;
    if (!self->pub || !self->sub || s_secure (self, config)
    ||  zsock_connect (self->pub, "%s", tower_sub) || zsock_connect (self->sub, "%s", tower_pub)) {
        zsys_error ("dafka beacon: cannot connect to the tower at %s / %s", tower_sub, tower_pub);
        zper_dafka_beacon_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->pub, 0);
    zsock_set_subscribe (self->sub, ZPER_DAFKA_WELCOME);
    zsock_set_subscribe (self->sub, "B");
    s_announce (self);
    return self;
}

void
zper_dafka_beacon_destroy (zper_dafka_beacon_t **self_p)
{
    if (self_p && *self_p) {
        zper_dafka_beacon_t *self = *self_p;
        zsock_destroy (&self->pub);
        zsock_destroy (&self->sub);
        zhashx_destroy (&self->last_heard);
        zstr_free (&self->uuid);
        zstr_free (&self->host);
        free (self);
        *self_p = NULL;
    }
}

char *
zper_dafka_beacon_bind_endpoint (zconfig_t *config)
{
    const char *host = zper_dafka_config_string (config, "beacon/address", ZPER_DAFKA_BEACON_ADDRESS);
    return *host? zsys_sprintf ("tcp://%s:*", host): strdup ("tcp://*:*");
}

//  A new or refreshed peer endpoint. A new one is connected by the owner
//  and answered with an immediate beacon, so that it learns us as fast.
static void
s_heard (zper_dafka_beacon_t *self, const char *endpoint, const char *key, const char *uuid)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->last_heard, endpoint);
    if (peer && !streq (peer->key, key)) {
        self->peer_fn (self->owner, endpoint, self->security? peer->key: NULL, false);
        zhashx_delete (self->last_heard, endpoint);
        peer = NULL;
    }
    if (!peer) {
        peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
        snprintf (peer->key, sizeof peer->key, "%s", key);
        zhashx_insert (self->last_heard, endpoint, peer);
        if (self->verbose)
            zsys_info ("dafka beacon %s: peer %s %s", self->uuid, endpoint, key);
        self->peer_fn (self->owner, endpoint, self->security? peer->key: NULL, true);
        s_announce (self);
    }
    peer->heard = zclock_mono ();
    if (!peer->uuid || !streq (peer->uuid, uuid)) {
        zstr_free (&peer->uuid);
        peer->uuid = strdup (uuid);
    }
}

static bool
s_z85_key (const char *key)
{
    uint8_t binary [32];
    return strlen (key) == S_KEY_SIZE && zmq_z85_decode (binary, key) != NULL;
}

static int
s_handle (zper_dafka_beacon_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    if (!msg)
        return -1;
    char *kind = zmsg_popstr (msg);
    if (kind && streq (kind, ZPER_DAFKA_WELCOME))
        self->welcomed = true;
    else
    if (kind && streq (kind, "B")
    &&  zmsg_size (msg) == (self->security? S_CURVE_FRAMES: S_FORWARD_FRAMES) - 1) {
        char *uuid = zmsg_popstr (msg);
        char *endpoint = zmsg_popstr (msg);
        char *key = self->security? zmsg_popstr (msg): strdup ("");
        if (!streq (uuid, self->uuid) && strlen (endpoint) < S_ENDPOINT_MAX
        &&  strncmp (endpoint, "tcp://", 6) == 0 && strchr (endpoint + 6, ':')
        &&  (!self->security || s_z85_key (key)))
            s_heard (self, endpoint, key, uuid);
        zstr_free (&uuid);
        zstr_free (&endpoint);
        zstr_free (&key);
    }
    zstr_free (&kind);
    zmsg_destroy (&msg);
    return 0;
}

static void
s_expire (zper_dafka_beacon_t *self)
{
    int64_t now = zclock_mono ();
    zlist_t *silent = zlist_new ();
    zlist_autofree (silent);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->last_heard); peer;
         peer = (s_peer_t *) zhashx_next (self->last_heard))
        if (now - peer->heard > self->timeout_ms)
            zlist_append (silent, (void *) zhashx_cursor (self->last_heard));
    for (char *endpoint = (char *) zlist_first (silent); endpoint;
         endpoint = (char *) zlist_next (silent)) {
        s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->last_heard, endpoint);
        if (self->verbose)
            zsys_info ("dafka beacon %s: peer %s silent", self->uuid, endpoint);
        self->peer_fn (self->owner, endpoint, self->security? peer->key: NULL, false);
        zhashx_delete (self->last_heard, endpoint);
    }
    zlist_destroy (&silent);
}

int
zper_dafka_beacon_wait_welcome (zper_dafka_beacon_t *self, zsock_t *pipe)
{
    zpoller_t *poller = zpoller_new (self->sub, pipe, NULL);
    int64_t next_beacon = zclock_mono () + self->interval_ms;
    while (!self->welcomed && !zsys_interrupted) {
        void *which = zpoller_wait (poller, (int) self->interval_ms);
        if (which == pipe) {
            zmsg_t *command = zmsg_recv (pipe);
            zmsg_destroy (&command);
            break;
        }
        if (which == self->sub && s_handle (self) == 0 && self->welcomed) {
            //  With CURVE, the tower's paths both ways are up now: say who
            //  we are at once rather than an interval later, so that peers
            //  holding a stale connection to our port (its last holder's
            //  key) learn our key sooner. Without, beacons go as the
            //  reference sends them.
            if (self->security)
                s_announce (self);
            break;
        }
        if (zpoller_terminated (poller))
            break;
        if (zclock_mono () >= next_beacon) {
            s_announce (self);
            next_beacon = zclock_mono () + self->interval_ms;
        }
    }
    zpoller_destroy (&poller);
    return self->welcomed? 0: -1;
}

static int
s_on_socket (zloop_t *loop, zsock_t *reader, void *argument)
{
    zper_dafka_beacon_t *self = (zper_dafka_beacon_t *) argument;
    s_handle (self);
    return 0;
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *argument)
{
    zper_dafka_beacon_t *self = (zper_dafka_beacon_t *) argument;
    s_announce (self);
    s_expire (self);
    return 0;
}

int
zper_dafka_beacon_attach (zper_dafka_beacon_t *self, zloop_t *loop)
{
    if (zloop_reader (loop, self->sub, s_on_socket, self))
        return -1;
    return zloop_timer (loop, (size_t) self->interval_ms, 0, s_on_timer, self) < 0? -1: 0;
}

const char *
zper_dafka_beacon_vouched (zper_dafka_beacon_t *self, const char *uuid)
{
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->last_heard); peer;
         peer = (s_peer_t *) zhashx_next (self->last_heard))
        if (self->security && peer->uuid && streq (peer->uuid, uuid))
            return peer->key;
    return NULL;
}

size_t
zper_dafka_beacon_peers (zper_dafka_beacon_t *self)
{
    return zhashx_size (self->last_heard);
}

//  ---- selftest: a fake tower made of a bound SUB and PUB -------------------

static void
s_test_peer (void *owner, const char *endpoint, const char *key, bool connected)
{
    zlist_append ((zlist_t *) owner, (void *) (connected? endpoint: "gone"));
}

static int
s_test_stop (zloop_t *loop, int timer_id, void *argument)
{
    return -1;
}

static int
s_test_collect (zloop_t *loop, zsock_t *reader, void *argument)
{
    zmsg_t **announcement_p = (zmsg_t **) argument;
    zmsg_t *msg = zmsg_recv (reader);
    if (*announcement_p)
        zmsg_destroy (&msg);
    else
        *announcement_p = msg;
    return 0;
}

void
zper_dafka_beacon_test (bool verbose)
{
    zsock_t *tower_in = zsock_new (ZMQ_SUB);
    zsock_t *tower_out = zsock_new (ZMQ_XPUB);
    zsock_set_subscribe (tower_in, "");
    zsock_set_xpub_welcome_msg (tower_out, ZPER_DAFKA_WELCOME);
    int in_port = zsock_bind (tower_in, "tcp://127.0.0.1:*");
    int out_port = zsock_bind (tower_out, "tcp://127.0.0.1:*");
    assert (in_port > 0 && out_port > 0);
    zconfig_t *config = zconfig_new ("root", NULL);
    char address [64];
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", in_port);
    zconfig_put (config, "beacon/sub_address", address);
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", out_port);
    zconfig_put (config, "beacon/pub_address", address);
    //  No address set: loopback only; "" set explicitly: every interface
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    assert (streq (bind, "tcp://127.0.0.1:*"));
    zstr_free (&bind);
    zconfig_put (config, "beacon/address", "");
    bind = zper_dafka_beacon_bind_endpoint (config);
    assert (streq (bind, "tcp://*:*"));
    zstr_free (&bind);
    zconfig_put (config, "beacon/address", "127.0.0.1");
    zconfig_put (config, "beacon/interval", "50");
    zconfig_put (config, "beacon/timeout", "200");

    zlist_t *events = zlist_new ();
    zlist_autofree (events);
    zper_dafka_beacon_t *beacon = zper_dafka_beacon_new (config, NULL, "SELF", 4242, s_test_peer, events);
    assert (beacon);
    zsock_t *pipe = zsock_new_pair ("@inproc://zper-dafka-beacon-test");
    //  libzmq delivers an XPUB's welcome once the XPUB has read the subscription
    zsock_set_rcvtimeo (tower_out, 5000);
    char *subscription = zstr_recv (tower_out);
    assert (subscription && subscription [0] == 1);
    zstr_free (&subscription);
    assert (zper_dafka_beacon_wait_welcome (beacon, pipe) == 0);
    //  The beacon announces itself to the tower, host and port as text, every
    //  interval (the first one may be lost while the connection is made)
    zloop_t *loop = zloop_new ();
    assert (zper_dafka_beacon_attach (beacon, loop) == 0);
    zmsg_t *announcement = NULL;
    zloop_reader (loop, tower_in, s_test_collect, &announcement);
    int64_t deadline = zclock_mono () + 5000;
    while (!announcement && zclock_mono () < deadline) {
        zloop_timer (loop, 20, 1, s_test_stop, NULL);
        zloop_start (loop);
    }
    zloop_reader_end (loop, tower_in);
    assert (announcement && zmsg_size (announcement) == 4);
    char *kind = zmsg_popstr (announcement), *uuid = zmsg_popstr (announcement);
    char *host = zmsg_popstr (announcement), *port = zmsg_popstr (announcement);
    zmsg_destroy (&announcement);
    assert (streq (kind, "B") && streq (uuid, "SELF") && streq (host, "127.0.0.1")
            && streq (port, "4242"));
    zstr_free (&kind); zstr_free (&uuid); zstr_free (&host); zstr_free (&port);

    //  Garbage and its own echo are ignored; a peer is connected, then expires
    zsock_send (tower_out, "ss", "B", "only-two-frames");
    zsock_send (tower_out, "sss", "B", "SELF", "tcp://127.0.0.1:4242");
    zsock_send (tower_out, "sss", "B", "OTHER", "not-an-endpoint");
    zsock_send (tower_out, "sss", "B", "OTHER", "tcp://127.0.0.1:5999");
    deadline = zclock_mono () + 5000;
    while (zlist_size (events) < 2 && zclock_mono () < deadline) {
        zloop_timer (loop, 20, 1, s_test_stop, NULL);
        zloop_start (loop);
    }
    assert (zlist_size (events) == 2);
    assert (streq ((char *) zlist_first (events), "tcp://127.0.0.1:5999"));
    assert (streq ((char *) zlist_next (events), "gone"));
    assert (zper_dafka_beacon_peers (beacon) == 0);
    zloop_destroy (&loop);
    zlist_destroy (&events);
    zper_dafka_beacon_destroy (&beacon);
    zper_dafka_beacon_destroy (&beacon);
    zsock_destroy (&pipe);
    zconfig_destroy (&config);
    zsock_destroy (&tower_in);
    zsock_destroy (&tower_out);
}
