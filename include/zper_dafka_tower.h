/*  =========================================================================
    zper_dafka_tower - Dafka discovery: forwards beacons, carries no data

    An XSUB (tower/sub_address) receives the peers' beacons, an XPUB
    (tower/pub_address, welcome "W") forwards each as ["B", uuid,
    "tcp://host:port"] and forwards the peers' "B" subscriptions upstream.
    spec/dafka-wire.md section 1; docs/dafka.md "Addresses" says which host
    a peer is advertised with.
    ========================================================================= */

#ifndef ZPER_DAFKA_TOWER_H_INCLUDED
#define ZPER_DAFKA_TOWER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _zper_dafka_tower_t zper_dafka_tower_t;

//  Start a tower with the settings of config (tower/...). Returns NULL,
//  after logging which address failed, if a socket cannot bind.
zper_dafka_tower_t *
    zper_dafka_tower_new (zconfig_t *config);

//  Stop the tower and free it. Idempotent; nulls *self_p.
void
    zper_dafka_tower_destroy (zper_dafka_tower_t **self_p);

//  The tower's actor, to poll for its death (it never sends otherwise).
zactor_t *
    zper_dafka_tower_actor (zper_dafka_tower_t *self);

//  The ports the XSUB and XPUB are bound to (useful with "tcp://...:*").
int
    zper_dafka_tower_sub_port (zper_dafka_tower_t *self);
int
    zper_dafka_tower_pub_port (zper_dafka_tower_t *self);

//  Number of beacons forwarded and of malformed beacons dropped so far.
int
    zper_dafka_tower_stats (zper_dafka_tower_t *self, uint64_t *forwarded, uint64_t *dropped);

//  The host a peer is advertised with (exposed for tests): its configured
//  host if any, else the address it connected from, unless that is loopback
//  or unknown: then this machine's first non-loopback interface address if
//  it has one, else 127.0.0.1. Caller frees.
char *
    zper_dafka_tower_advertised_host (const char *configured_host, const char *peer_address);

//  For selftests: a tower on ephemeral loopback ports, and config (a new
//  one when NULL, else config with what it already holds, such as
//  security/*) whose beacon points at it (beacon/address 127.0.0.1, beacon
//  and HEAD intervals of 100 ms). Returns config. Caller destroys both.
zconfig_t *
    zper_dafka_tower_test_start (zconfig_t *config, zper_dafka_tower_t **tower_p);

//  Self test of this class
void
    zper_dafka_tower_test (bool verbose);

#endif
