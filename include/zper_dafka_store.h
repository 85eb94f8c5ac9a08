/*  =========================================================================
    zper_dafka_store - a Dafka store: persists partitions, ACKs, serves FETCH

    The store is two Dafka peers in one actor, as on the wire: a writer
    (uuid W: PUB for FETCH and ACK; SUB#1 for DIRECT_RECORD to W, read
    first; SUB#2 for every RECORD and HEAD) and a reader (uuid R: XPUB for
    DIRECT_RECORD, DIRECT_HEAD, STORE_HELLO; SUB for FETCH, GET_HEADS and
    CONSUMER_HELLO to R). Each partition (topic x producer uuid) is a log
    partition store/db/<topic>/<producer uuid> whose logical offset is the
    Dafka sequence; names the log cannot hold as they are are encoded
    (docs/dafka.md, "Names on disk"). ACKs are cumulative and only for
    durable records. The store tracks at most store/max_partitions
    partitions at once and answers at most store/max_fetches FETCHes at
    once, a slice per turn. spec/dafka-wire.md sections 2 and 4;
    docs/dafka.md.
    ========================================================================= */

#ifndef ZPER_DAFKA_STORE_H_INCLUDED
#define ZPER_DAFKA_STORE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _zper_dafka_store_t zper_dafka_store_t;

//  What a store has done so far (monotonic counters).
typedef struct {
    uint64_t stored;                //  records appended
    uint64_t acked;                 //  ACK messages sent
    uint64_t served;                //  DIRECT_RECORDs sent in answer to FETCH
    uint64_t malformed;             //  messages dropped as malformed
    uint64_t refused;               //  HEAD/RECORDs whose names are too long once encoded,
                                    //  or whose partition on disk cannot be opened
    uint64_t table_full;            //  HEAD/RECORDs of new partitions refused: store/max_partitions
    uint64_t given_up;              //  partitions no longer fetched: silent for store/fetch_give_up
    uint64_t fetch_dropped;         //  FETCHes dropped: store/max_fetches answers were pending
    uint64_t forged;                //  with CURVE: RECORD/HEADs from a key their partition is not
                                    //  bound to (a forged producer uuid)
} zper_dafka_store_stats_t;

//  Start a store with the settings of config (beacon/..., store/...): opens
//  (and recovers) the log at store/db. Returns once the tower welcomed both
//  halves, or NULL (log cannot open, socket cannot bind, interrupted, the
//  metrics endpoint store/metrics/listen cannot listen: logged).
zper_dafka_store_t *
    zper_dafka_store_new (zconfig_t *config);

//  Stop the store: flush and close the log. Idempotent; nulls *self_p.
void
    zper_dafka_store_destroy (zper_dafka_store_t **self_p);

//  The writer's and the reader's uuids.
const char *
    zper_dafka_store_writer_uuid (zper_dafka_store_t *self);
const char *
    zper_dafka_store_reader_uuid (zper_dafka_store_t *self);

//  Copy the counters into stats.
void
    zper_dafka_store_stats (zper_dafka_store_t *self, zper_dafka_store_stats_t *stats);

//  The counters as Prometheus text (format 0.0.4, zper_dafka_store_* series;
//  docs/dafka.md, Metrics): what store/metrics/listen serves. Caller frees (free).
char *
    zper_dafka_store_metrics (zper_dafka_store_t *self);

//  The store's actor, to poll for its death (it never sends otherwise).
zactor_t *
    zper_dafka_store_actor (zper_dafka_store_t *self);

//  Self test of this class
void
    zper_dafka_store_test (bool verbose);

#endif
