/*  =========================================================================
    zper_pool - worker actors with heartbeats

    A worker is alive if it sent a PONG within ZPER_HEARTBEAT_LIVENESS
    intervals: in answer to a PING, or on its own after a turn of work (a
    PING queued behind a long backlog of writes would arrive too late to
    tell a busy worker from a stuck one). The pool never restarts a worker: a worker that stopped
    answering is stuck inside a call (a hung disk, a bug) and cannot be
    stopped from outside its thread, so the manager decides what to do
    (docs/operations.md, "Supervision").
    ========================================================================= */

#include "zper_pool.h"
#include "zper_defaults.h"
#include <assert.h>

struct _zper_pool_t {
    size_t count;
    zactor_t **workers;
    int64_t *pong_ms;
};

zper_pool_t *
zper_pool_new (zactor_fn *actor, void *args_base, size_t args_size, size_t count)
{
    zper_pool_t *self = (zper_pool_t *) zmalloc (sizeof (zper_pool_t));
    self->workers = (zactor_t **) zmalloc (count * sizeof (zactor_t *));
    self->pong_ms = (int64_t *) zmalloc (count * sizeof (int64_t));
    self->count = count;
    for (size_t index = 0; index < count; index++) {
        self->workers [index] = zactor_new (actor, (char *) args_base + index * args_size);
        self->pong_ms [index] = zclock_mono ();
        if (!self->workers [index]) {
            zper_pool_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
zper_pool_destroy (zper_pool_t **self_p)
{
    assert (self_p);
    zper_pool_t *self = *self_p;
    if (self) {
        for (size_t index = 0; index < self->count; index++)
            zactor_destroy (&self->workers [index]);
        freen (self->workers);
        freen (self->pong_ms);
        freen (self);
        *self_p = NULL;
    }
}

size_t
zper_pool_size (zper_pool_t *self)
{
    return self->count;
}

zactor_t *
zper_pool_worker (zper_pool_t *self, size_t index)
{
    assert (index < self->count);
    return self->workers [index];
}

void
zper_pool_poll (zper_pool_t *self, zpoller_t *poller)
{
    for (size_t index = 0; index < self->count; index++)
        zpoller_add (poller, self->workers [index]);
}

bool
zper_pool_handle (zper_pool_t *self, void *which)
{
    for (size_t index = 0; index < self->count; index++)
        if (which == self->workers [index]) {
            char *answer = zstr_recv (which);
            if (answer && streq (answer, "PONG"))
                self->pong_ms [index] = zclock_mono ();
            zstr_free (&answer);
            return true;
        }
    return false;
}

bool
zper_pool_heartbeat (zper_pool_t *self, const char *name)
{
    int64_t now = zclock_mono ();
    bool alive = true;
    for (size_t index = 0; index < self->count; index++) {
        int64_t silent = now - self->pong_ms [index];
        if (silent > ZPER_HEARTBEAT_LIVENESS * ZPER_HEARTBEAT_INTERVAL_MS) {
            zsys_error ("%s: worker %zu has not answered for %lld ms", name, index, (long long) silent);
            alive = false;
        }
        zstr_send (self->workers [index], "PING");
    }
    return alive;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Answers PINGs when its argument is non-zero, stays silent otherwise
static void
s_echo_worker (zsock_t *pipe, void *args)
{
    bool answers = *(int *) args != 0;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        if (answers)
            zstr_send (pipe, "PONG");
        zstr_free (&command);
    }
}

void
zper_pool_test (bool verbose)
{
    int args [3] = { 1, 1, 1 };
    zper_pool_t *pool = zper_pool_new (s_echo_worker, args, sizeof args [0], 3);
    assert (pool && zper_pool_size (pool) == 3);
    zpoller_t *poller = zpoller_new (NULL);
    zper_pool_poll (pool, poller);
    assert (zper_pool_heartbeat (pool, "test"));
    for (int answers = 0; answers < 3; answers++) {
        void *which = zpoller_wait (poller, 1000);
        assert (which && zper_pool_handle (pool, which));
    }
    assert (!zper_pool_handle (pool, poller));
    zpoller_destroy (&poller);
    zper_pool_destroy (&pool);
    zper_pool_destroy (&pool);

    //  A worker that stops answering makes the pool report it after the
    //  liveness window
    int silent [2] = { 1, 0 };
    pool = zper_pool_new (s_echo_worker, silent, sizeof silent [0], 2);
    assert (zper_pool_heartbeat (pool, "test"));
    zclock_sleep (ZPER_HEARTBEAT_LIVENESS * ZPER_HEARTBEAT_INTERVAL_MS + 200);
    while (zsock_events (zactor_sock (zper_pool_worker (pool, 0))) & ZMQ_POLLIN)
        zper_pool_handle (pool, zper_pool_worker (pool, 0));
    if (verbose)
        zsys_info ("zper_pool: the next line reports the silent worker, as expected");
    assert (!zper_pool_heartbeat (pool, "test"));
    zper_pool_destroy (&pool);
}
