/*  =========================================================================
    zper_dafka_beacon - a Dafka peer's discovery through the towers

    Every Dafka data socket (producer PUB, consumer XPUB, store writer PUB,
    store reader XPUB) has one beacon. The beacon's PUB connects to the
    tower XSUB (beacon/sub_address) and announces ["B", uuid, host, port];
    its SUB connects to the tower XPUB (beacon/pub_address), subscribes "W"
    and "B" and learns the other peers' endpoints. The owner is told each
    endpoint to connect to and, after beacon/timeout of silence, to
    disconnect from (spec/dafka-wire.md section 1).

    It is not an actor: it lives in its owner's zloop, so that connecting
    the owner's SUB sockets needs no cross-thread message.
    ========================================================================= */

#ifndef ZPER_DAFKA_BEACON_H_INCLUDED
#define ZPER_DAFKA_BEACON_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "zper_security.h"

typedef struct _zper_dafka_beacon_t zper_dafka_beacon_t;

//  Called when a peer endpoint appears (connected true) or goes silent.
//  With CURVE, key is the peer's public key as the tower authenticated it
//  (the server key to connect to endpoint with); NULL without CURVE.
typedef void (zper_dafka_beacon_peer_fn) (void *owner, const char *endpoint, const char *key,
                                          bool connected);

//  Create a beacon announcing uuid and port (the owner's bound data port;
//  with CURVE, its bound receiving port) with the settings of config
//  (beacon/...). security NULL: plaintext; else both sockets are CURVE
//  clients of security/tower_key. Sockets connect at once. Returns NULL if
//  an address or the tower key in config is invalid.
zper_dafka_beacon_t *
    zper_dafka_beacon_new (zconfig_t *config, zper_security_t *security, const char *uuid,
                           int port, zper_dafka_beacon_peer_fn *peer_fn, void *owner);

//  Destroy the beacon. Idempotent; nulls *self_p.
void
    zper_dafka_beacon_destroy (zper_dafka_beacon_t **self_p);

//  The address a data socket of this peer binds: "tcp://<beacon/address>:*",
//  so that what it advertises is exactly what listens; with no address set
//  that is loopback ("tcp://127.0.0.1:*"). Only a beacon/address set to ""
//  binds every interface ("tcp://*:*", the reference's default), and the
//  tower then picks the advertised host. Caller frees.
char *
    zper_dafka_beacon_bind_endpoint (zconfig_t *config);

//  Wait until the tower's welcome "W" arrived, serving beacons meanwhile.
//  Returns 0; -1 if a message arrived on pipe first (normally $TERM; it is
//  consumed) or the process was interrupted.
int
    zper_dafka_beacon_wait_welcome (zper_dafka_beacon_t *self, zsock_t *pipe);

//  Register the beacon's socket and its interval timer in loop.
int
    zper_dafka_beacon_attach (zper_dafka_beacon_t *self, zloop_t *loop);

//  With CURVE: the key the tower vouched for the live peer that announces
//  uuid (the tower gives a uuid to the first key that announces it), or
//  NULL (no such peer heard within beacon/timeout; always NULL without
//  CURVE). A scan of the live peers: for a partition's first message, not
//  for every message.
const char *
    zper_dafka_beacon_vouched (zper_dafka_beacon_t *self, const char *uuid);

//  Endpoints currently known (peers heard from within beacon/timeout).
size_t
    zper_dafka_beacon_peers (zper_dafka_beacon_t *self);

//  Self test of this class
void
    zper_dafka_beacon_test (bool verbose);

#endif
