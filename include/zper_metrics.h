/*  =========================================================================
    zper_metrics - a Prometheus endpoint: GET /metrics over HTTP

    Two halves. The server (libmicrohttpd, its own polling thread) answers
    GET /metrics with whatever text its render function returns, on the
    one host:port it was given. The renderers turn counters into the text
    exposition format 0.0.4: zper_metrics_from_stats for the broker's STATS
    object (docs/protocol.md 3.1; series in docs/operations.md, Metrics),
    zper_metrics_counters for a flat list (the Dafka store's).

    The one thing to know: render runs on libmicrohttpd's thread, at any
    time until _destroy returns, so what it reads must be thread-safe.
    ========================================================================= */

#ifndef ZPER_METRICS_H_INCLUDED
#define ZPER_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _zper_metrics_t zper_metrics_t;

//  The body of one scrape: a heap string the server frees (free), or NULL,
//  which is answered with 500. Called on the server's thread.
typedef char *(zper_metrics_render_fn) (void *argument);

//  Check that listen is "host:port": host an IPv4 literal or "localhost",
//  port 0..65535 (0: any free port, for tests). Returns 0, or -1 with a
//  one-line reason in reason (reason_size bytes, always terminated).
int
    zper_metrics_listen_check (const char *listen, char *reason, size_t reason_size);

//  Serve GET /metrics on listen (bound to that address only) with at most
//  max_clients connections at once; an idle connection is closed after
//  ZPER_METRICS_TIMEOUT_S. Other paths get 404, other methods 405.
//  Returns NULL when listen is malformed or cannot be bound;
//  zper_metrics_reason then says why, in one line.
zper_metrics_t *
    zper_metrics_new (const char *listen, int max_clients, zper_metrics_render_fn *render,
                      void *argument);

//  Why the calling thread's last zper_metrics_new returned NULL.
const char *
    zper_metrics_reason (void);

//  Stop serving: once this returns, render is no longer running or called.
//  Idempotent; nulls *self_p.
void
    zper_metrics_destroy (zper_metrics_t **self_p);

//  The port the server listens on (the one the kernel chose for port 0).
int
    zper_metrics_port (zper_metrics_t *self);

//  The STATS object (JSON text) as text format 0.0.4, with # HELP and
//  # TYPE for each series. Parts absent from stats are left out; returns
//  NULL only when stats_json is not a JSON object. Caller frees (free).
char *
    zper_metrics_from_stats (const char *stats_json);

//  One entry of a flat list of series without labels.
typedef struct {
    const char *name;                   //  full name, e.g. "zper_dafka_store_stored_total"
    const char *type;                   //  "counter" or "gauge"
    const char *help;                   //  one line
    uint64_t value;
} zper_metrics_counter_t;

//  count entries as text format 0.0.4. Caller frees (free).
char *
    zper_metrics_counters (const zper_metrics_counter_t *counters, size_t count);

//  Self test of this class
void
    zper_metrics_test (bool verbose);

#endif
