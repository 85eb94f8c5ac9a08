/*  =========================================================================
    zper_dafka_consumer - receives the records of Dafka topics, in order

    Delivers every record of each partition (topic x producer) exactly once
    and in sequence order, from consumer/offset/reset: "latest" (the first
    record or HEAD seen) or anything else = earliest (sequence 0, fetched
    from the stores). Gaps are fetched from the producer and the stores, on
    a timer until filled, so a consumer never stalls while a store has data.
    spec/dafka-wire.md sections 2 and 4.
    ========================================================================= */

#ifndef ZPER_DAFKA_CONSUMER_H_INCLUDED
#define ZPER_DAFKA_CONSUMER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "zper_dafka_proto.h"

typedef struct _zper_dafka_consumer_t zper_dafka_consumer_t;

//  Start a consumer with the settings of config (beacon/..., consumer/...).
//  Returns once the tower welcomed it, or NULL (socket cannot bind, or
//  interrupted before the welcome).
zper_dafka_consumer_t *
    zper_dafka_consumer_new (zconfig_t *config);

//  Stop the consumer; records not yet received are dropped. Idempotent;
//  nulls *self_p.
void
    zper_dafka_consumer_destroy (zper_dafka_consumer_t **self_p);

//  Subscribe to topic (exact name: "hel" does not receive "hello").
//  Returns 0, or -1 if the topic is not 1..255 bytes.
int
    zper_dafka_consumer_subscribe (zper_dafka_consumer_t *self, const char *topic);

//  Receive the next record, waiting at most timeout_ms (-1: forever). The
//  message is a RECORD: subject = topic, address = producer uuid
//  (partition), sequence, content. Caller destroys it. NULL on timeout,
//  interrupt, or when the consumer has stopped.
zper_dafka_msg_t *
    zper_dafka_consumer_recv (zper_dafka_consumer_t *self, int timeout_ms);

//  The consumer's uuid.
const char *
    zper_dafka_consumer_uuid (zper_dafka_consumer_t *self);

//  Records delivered and malformed messages dropped so far.
void
    zper_dafka_consumer_stats (zper_dafka_consumer_t *self, uint64_t *delivered, uint64_t *malformed);

//  With CURVE: RECORDs and HEADs dropped because their partition is bound
//  to another key (a forged producer uuid). 0 without CURVE.
uint64_t
    zper_dafka_consumer_forged (zper_dafka_consumer_t *self);

//  Self test of this class
void
    zper_dafka_consumer_test (bool verbose);

#endif
