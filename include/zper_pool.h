/*  =========================================================================
    zper_pool - a fixed set of worker actors and their heartbeats

    The front and the rear each run N workers behind one socket thread.
    The pool starts them, pings them when the manager pings their owner,
    and says whether every worker answered within the liveness window, so
    that a stuck worker shows up as a stuck component.
    ========================================================================= */

#ifndef ZPER_POOL_H_INCLUDED
#define ZPER_POOL_H_INCLUDED

#include <czmq.h>

typedef struct _zper_pool_t zper_pool_t;

//  Start count actors running actor (args_base + index * args_size is
//  each one's argument). Returns the pool, or NULL if a thread failed to start.
zper_pool_t *
    zper_pool_new (zactor_fn *actor, void *args_base, size_t args_size, size_t count);

//  Stop every worker ($TERM, wait), free the pool. Idempotent; nulls *self_p.
void
    zper_pool_destroy (zper_pool_t **self_p);

//  Number of workers and the actor of one worker.
size_t
    zper_pool_size (zper_pool_t *self);
zactor_t *
    zper_pool_worker (zper_pool_t *self, size_t index);

//  Add every worker's pipe to poller.
void
    zper_pool_poll (zper_pool_t *self, zpoller_t *poller);

//  If which is one of the workers, read its message (a PONG) and return
//  true; otherwise return false.
bool
    zper_pool_handle (zper_pool_t *self, void *which);

//  Ping every worker. Returns true if each answered a ping within the
//  liveness window; logs "<name>: worker N has not answered" otherwise.
bool
    zper_pool_heartbeat (zper_pool_t *self, const char *name);

//  Self test of this class
void
    zper_pool_test (bool verbose);

#endif
