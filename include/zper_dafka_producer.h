/*  =========================================================================
    zper_dafka_producer - publishes records of one topic as one Dafka partition

    The producer's uuid is its partition. Records go out as RECORD on a PUB;
    each is kept until producer/min_acks distinct stores ACKed it (default
    1), so that a consumer or store that missed it can FETCH it from here.
    HEAD (the last sequence published) goes out every producer/head_interval
    once the first record is out. spec/dafka-wire.md sections 2 and 4.
    ========================================================================= */

#ifndef ZPER_DAFKA_PRODUCER_H_INCLUDED
#define ZPER_DAFKA_PRODUCER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _zper_dafka_producer_t zper_dafka_producer_t;

//  Start a producer of topic with the settings of config (beacon/...,
//  producer/...). Returns once the tower welcomed it, or NULL if the topic
//  is not 1..255 bytes, a socket cannot bind, or it was interrupted.
zper_dafka_producer_t *
    zper_dafka_producer_new (zconfig_t *config, const char *topic);

//  Stop the producer. Unless producer/terminate_unacked is 1, first waits
//  until every record is acknowledged (or the process is interrupted).
//  Idempotent; nulls *self_p.
void
    zper_dafka_producer_destroy (zper_dafka_producer_t **self_p);

//  Publish one record; takes ownership of *content_p and nulls it. Sequences
//  are assigned in call order from 0. Sends from the caller's thread and
//  never blocks: a subscriber more than producer/high_watermark messages
//  behind misses RECORDs and FETCHes them from the producer. Returns 0, or
//  -1 if the process was interrupted (SIGINT/SIGTERM) or the producer has
//  stopped. Not to be called from several threads at once.
int
    zper_dafka_producer_publish (zper_dafka_producer_t *self, zframe_t **content_p);

//  Publish a copy of size bytes at data as one record; as _publish
//  otherwise (for callers that hold the content in their own buffer).
int
    zper_dafka_producer_publish_data (zper_dafka_producer_t *self, const void *data, size_t size);

//  The producer's uuid (its partition name), 32 upper-case hex characters.
const char *
    zper_dafka_producer_uuid (zper_dafka_producer_t *self);

//  Records published so far and records not yet acknowledged by enough
//  stores. Returns 0, or -1 if the producer has stopped.
int
    zper_dafka_producer_stats (zper_dafka_producer_t *self, uint64_t *published, uint64_t *unacked);

//  Self test of this class
void
    zper_dafka_producer_test (bool verbose);

#endif
