/*  =========================================================================
    zper_gate - the subscriptions a CURVE XPUB lets through

    With security on, the broker's XPUB sockets (ack, relay PUB) run in
    ZMQ_XPUB_MANUAL mode: libzmq then applies no subscription by itself
    and passes every one up, from every subscriber, with the subscriber's
    key. The gate applies (ZMQ_SUBSCRIBE) only those the key's grant covers
    for every topic the prefix matches (zper_guard_check_prefix), and keeps
    the socket's zper_subscriptions_t as libzmq's own bookkeeping would.
    ========================================================================= */

#ifndef ZPER_GATE_H_INCLUDED
#define ZPER_GATE_H_INCLUDED

#include <czmq.h>
#include "zper_guard.h"
#include "zper_subscriptions.h"

typedef struct _zper_gate_t zper_gate_t;

//  A gate on xpub (a libzmq XPUB socket; set to manual mode here, so call
//  before it binds) feeding subscriptions, granting prefixes to keys with
//  access (a ZPER_GUARD_ mask). Neither is owned.
zper_gate_t *
    zper_gate_new (void *xpub, zper_subscriptions_t *subscriptions, int access);

//  Destroy. Idempotent; nulls *self_p.
void
    zper_gate_destroy (zper_gate_t **self_p);

//  Receive one message from the XPUB and apply it if guard allows (always
//  for an unsubscription). Returns the verdict: ALLOWED (applied, or not a
//  subscription at all), FORBIDDEN or CUT (not applied); or -1 when nothing
//  was received.
int
    zper_gate_recv (zper_gate_t *self, zper_guard_t *guard);

//  Self test of this class
void
    zper_gate_test (bool verbose);

#endif
