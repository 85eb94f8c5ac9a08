/*  =========================================================================
    zper_dafka_security - CURVE for Dafka nodes: the settings and the one
    zper_security_t a process shares

    security/curve = 1 turns CURVE on for every socket of a Dafka node: the
    tower's, the beacons' and the data sockets (docs/dafka.md, Security).
    The keys: security/cert (this node's certificate; its secret is
    security/cert + "_secret"), security/keys (the folder of the public
    certificates allowed to connect to this node), security/tower_key (the
    tower's public key, or the path of its public certificate) and
    security/reload_ms (how often the folder is checked for changes).

    libzmq has one ZAP handler per context, so every node of a process
    (a selftest runs a tower, stores, producers and consumers together)
    shares one zper_security_t: the first node to start creates it, the
    last one to stop destroys it, and all must name the same certificate
    and folder.
    ========================================================================= */

#ifndef ZPER_DAFKA_SECURITY_H_INCLUDED
#define ZPER_DAFKA_SECURITY_H_INCLUDED

#include "zper_security.h"
#include "zper_guard.h"

//  Is security/curve on in config?
bool
    zper_dafka_security_on (zconfig_t *config);

//  Check the security/ keys of config (a file named name): with curve on,
//  the certificate must load with its secret, the folder must exist, and a
//  tower_key given must be a key or a certificate. Returns 0, or -1 after
//  printing "name: KEY: problem".
int
    zper_dafka_security_check (zconfig_t *config, const char *name);

//  The process's security for config: NULL in *security_p when curve is
//  off. Returns 0, or -1 after logging why (the certificate or the folder
//  cannot be used, or another node of the process uses other ones). Each
//  successful acquire with a non-NULL result is paired with a release.
int
    zper_dafka_security_acquire (zconfig_t *config, zper_security_t **security_p);

//  Release what acquire gave. Idempotent; nulls *security_p.
void
    zper_dafka_security_release (zper_security_t **security_p);

//  The tower's public key (security/tower_key) into key. Returns 0, or -1
//  after logging why.
int
    zper_dafka_security_tower_key (zconfig_t *config, char key [41]);

//  With CURVE: a guard (zper_guard) over security/keys for one node's
//  thread, refreshed every security/reload_ms by a timer in loop, so that a
//  key removed from the folder has its connections to the node shut down
//  (zper_dafka_msg_set_guard drops what it sends). NULL when curve is off
//  or the folder cannot be read (logged). Destroy it after loop.
zper_guard_t *
    zper_dafka_security_guard (zconfig_t *config, zloop_t *loop);

//  Handshakes the process's CURVE server sockets refused so far, by
//  cause (plaintext or broken; unknown key). Both 0 while no node runs
//  with CURVE. Returns true when CURVE is in use.
bool
    zper_dafka_security_refused (uint64_t *plaintext, uint64_t *unknown_key);

//  Self test of this class
void
    zper_dafka_security_test (bool verbose);

#endif
