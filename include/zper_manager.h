/*  =========================================================================
    zper_manager - the broker as a whole: start, supervise, stop

    The manager owns the log, the stats and the four components (ack,
    relay, rear, front). It heartbeats them, applies retention on a timer
    and turns counters into rates. docs/operations.md describes what it
    does when a component stops answering.
    ========================================================================= */

#ifndef ZPER_MANAGER_H_INCLUDED
#define ZPER_MANAGER_H_INCLUDED

#include <stdatomic.h>
#include "zper_broker.h"

typedef struct _zper_manager_t zper_manager_t;

//  Open the log and start every component (config is copied). Returns
//  NULL after logging one line naming what failed (a bind, the data folder).
zper_manager_t *
    zper_manager_new (const zper_config_t *config, bool verbose);

//  Supervise until *stop becomes non-zero (returns 0) or a component stops
//  answering its heartbeats (returns ZPER_EXIT_UNRESPONSIVE).
int
    zper_manager_run (zper_manager_t *self, atomic_int *stop);

//  Make zauth read security.keys now (zperd: SIGHUP), rather than at its
//  next check (security.reload_ms). The components' guards follow at their
//  own next check. Thread-safe. Does nothing (but log) with security off.
void
    zper_manager_reload (zper_manager_t *self);

//  Stop accepting (front first), let workers flush and reply, stop the
//  readers, checkpoint the log. Idempotent; nulls *self_p.
void
    zper_manager_destroy (zper_manager_t **self_p);

//  Self test of this class
void
    zper_manager_test (bool verbose);

#endif
