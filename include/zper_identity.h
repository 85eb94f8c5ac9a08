/*  =========================================================================
    zper_identity - the legacy client identity that carries a topic

    Writers, readers and relay readers put their topic in the ZeroMQ routing
    id (docs/protocol.md section 1). Two revisions exist on the wire:
        seed   [hash][toplen][topic][uuid:16]
        later  [hash][mode][toplen][topic][uuid:16]
    The client's hash byte is reported but never used for routing: the
    broker derives the worker from the topic name (zper_identity_route).
    ========================================================================= */

#ifndef ZPER_IDENTITY_H_INCLUDED
#define ZPER_IDENTITY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zper_defaults.h"

typedef enum {
    ZPER_IDENTITY_SEED = 1,             //  [hash][toplen][topic][uuid]
    ZPER_IDENTITY_LATER = 2             //  [hash][mode][toplen][topic][uuid]
} zper_identity_revision_t;

//  A parsed identity: a value, no allocation.
typedef struct {
    zper_identity_revision_t revision;
    uint8_t hash;                       //  as the client sent it (informational)
    uint8_t mode;                       //  0 for seed identities
    char topic [ZPER_TOPIC_MAX + 1];
    bool has_uuid;                      //  the 16-byte uuid follows the topic exactly
} zper_identity_t;

//  Parse a routing id. Returns 0 and fills identity, or -1 with *problem
//  (when not NULL) set to a static one-line reason: "too short", "topic
//  length 0", "topic length over 64", "topic byte not a letter or digit",
//  "mode over 4", ... The rule and tie-break are docs/protocol.md 1.1.
int
    zper_identity_parse (const void *data, size_t size, zper_identity_t *identity,
                         const char **problem);

//  Java String.hashCode of the topic, low byte: what legacy clients send
//  as the hash byte ("test" -> 0x92). For building identities in tests
//  and clients; the broker never routes by it.
uint8_t
    zper_identity_legacy_hash (const char *topic);

//  Which of worker_count workers owns this topic (FNV-1a of the name):
//  stable across clients, restarts and hash bytes.
size_t
    zper_identity_route (const char *topic, size_t worker_count);

//  Encode an identity of the later revision into buffer, which must hold
//  3 + strlen (topic) + 16 bytes: with the 16-byte uuid, or without one if
//  uuid is NULL (the broker takes both). Returns the size written.
size_t
    zper_identity_encode (const char *topic, uint8_t mode, const uint8_t *uuid, void *buffer);

//  Self test of this class
void
    zper_identity_test (bool verbose);

#endif
