/*  =========================================================================
    zper_identity - parse the legacy identity, both revisions

    The one thing to know: the two revisions are told apart by which
    length byte is consistent with the identity's length: a reading is
    valid only if the identity is exactly its header plus its topic, with
    or without the 16-byte uuid (docs/protocol.md 1.1). Unlike the
    original, trailing bytes are refused: with them a later-revision
    identity of a 65-byte topic would read as a valid seed identity of a
    one-letter topic, and the data would silently land in the wrong topic.
    The tie-break (the later revision wins, as the Java client sends it)
    can never fire: a valid seed reading needs byte 2, the later reading's
    topic length, to be a letter or digit (>= 0x30), so the later reading
    needs at least 51 bytes, while byte 1 must be a mode <= 4 for the
    later reading, which makes a seed identity at most 2 + 4 + 16 = 22.
    A cluster partition's topic ("orders.2") keeps that: its '.' (0x2e)
    is never its first byte.
    ========================================================================= */

#include "zper_identity.h"
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>

//  How far a candidate parse got: names the problem when both fail.
typedef enum {
    STAGE_HEADER = 1, STAGE_TOPIC_LENGTH, STAGE_TRUNCATED, STAGE_TOPIC_BYTES, STAGE_VALID
} stage_t;

typedef struct {
    stage_t stage;
    const char *problem;
    size_t topic_length;
} candidate_t;

//  Letters and digits, or a cluster partition's name: letters and digits,
//  '.', 1 to ZPER_IDENTITY_PARTITION_DIGITS digits ("orders.2"). The first
//  byte is always a letter or digit: the tie-break above relies on it.
static bool
s_topic_bytes_valid (const uint8_t *topic, size_t length)
{
    size_t dot = 0;                     //  where the '.' is; 0: none (never first)
    for (size_t index = 0; index < length; index++) {
        if (topic [index] == '.' && index > 0 && !dot)
            dot = index;
        else
        if (topic [index] > 0x7f || !isalnum (topic [index]) || (dot && !isdigit (topic [index])))
            return false;
    }
    size_t digits = dot? length - dot - 1: 0;
    return !dot || (digits >= 1 && digits <= ZPER_IDENTITY_PARTITION_DIGITS);
}

//  Check one revision: header_size is 2 (seed) or 3 (later); the topic
//  length byte is the last header byte.
static candidate_t
s_candidate (const uint8_t *bytes, size_t size, size_t header_size)
{
    candidate_t candidate = { STAGE_HEADER, "identity too short for its header", 0 };
    if (size < header_size)
        return candidate;
    candidate.stage = STAGE_TOPIC_LENGTH;
    size_t topic_length = bytes [header_size - 1];
    if (topic_length == 0)
        candidate.problem = "topic length 0";
    else
    if (topic_length >= 0x80)
        candidate.problem = "topic length byte >= 0x80";
    else
    if (topic_length > ZPER_TOPIC_MAX)
        candidate.problem = "topic length over 64";
    else
    if (header_size == 3 && bytes [1] > ZPER_MODE_MAX)
        candidate.problem = "write mode over 4";
    else
    if (header_size + topic_length > size) {
        candidate.stage = STAGE_TRUNCATED;
        candidate.problem = "identity shorter than its topic length";
    }
    else
    if (size != header_size + topic_length
    &&  size != header_size + topic_length + ZPER_IDENTITY_UUID_SIZE)
        candidate.problem = "identity length is not header + topic (+ 16-byte uuid)";
    else
    if (!s_topic_bytes_valid (bytes + header_size, topic_length)) {
        candidate.stage = STAGE_TOPIC_BYTES;
        candidate.problem = "topic byte not an ASCII letter or digit (or a partition's \".N\")";
    }
    else {
        candidate.stage = STAGE_VALID;
        candidate.problem = NULL;
        candidate.topic_length = topic_length;
    }
    return candidate;
}

int
zper_identity_parse (const void *data, size_t size, zper_identity_t *identity,
                     const char **problem)
{
    assert (identity);
    const uint8_t *bytes = (const uint8_t *) data;
    candidate_t seed = s_candidate (bytes, size, 2);
    candidate_t later = s_candidate (bytes, size, 3);

    bool seed_ok = seed.stage == STAGE_VALID;
    bool later_ok = later.stage == STAGE_VALID;
    if (!seed_ok && !later_ok) {
        //  Name the problem of the reading that got further (the later one
        //  on a tie: it is what clients send today), unless the identity
        //  cannot be a later one (too short, byte 1 not a mode)
        bool seed_meant = size < 3 || bytes [1] > ZPER_MODE_MAX;
        if (problem)
            *problem = seed_meant || seed.stage > later.stage? seed.problem: later.problem;
        return -1;
    }
    bool use_later = later_ok;
    size_t header_size = use_later? 3: 2;
    candidate_t *chosen = use_later? &later: &seed;

    memset (identity, 0, sizeof *identity);
    identity->revision = use_later? ZPER_IDENTITY_LATER: ZPER_IDENTITY_SEED;
    identity->hash = bytes [0];
    identity->mode = use_later? bytes [1]: 0;
    memcpy (identity->topic, bytes + header_size, chosen->topic_length);
    identity->has_uuid = size == header_size + chosen->topic_length + ZPER_IDENTITY_UUID_SIZE;
    if (problem)
        *problem = NULL;
    return 0;
}

uint8_t
zper_identity_legacy_hash (const char *topic)
{
    //  Java's int arithmetic wraps; unsigned arithmetic gives the same bits.
    uint32_t hash = 0;
    for (const char *cursor = topic; *cursor; cursor++)
        hash = hash * 31 + (uint8_t) *cursor;
    return (uint8_t) (hash & 0xff);
}

size_t
zper_identity_route (const char *topic, size_t worker_count)
{
    assert (worker_count > 0);
    uint32_t hash = 2166136261u;
    for (const char *cursor = topic; *cursor; cursor++)
        hash = (hash ^ (uint8_t) *cursor) * 16777619u;
    return hash % worker_count;
}

size_t
zper_identity_encode (const char *topic, uint8_t mode, const uint8_t *uuid, void *buffer)
{
    size_t topic_length = strlen (topic);
    assert (topic_length > 0 && topic_length <= ZPER_TOPIC_MAX);
    uint8_t *target = (uint8_t *) buffer;
    target [0] = zper_identity_legacy_hash (topic);
    target [1] = mode;
    target [2] = (uint8_t) topic_length;
    memcpy (target + 3, topic, topic_length);
    if (!uuid)
        return 3 + topic_length;
    memcpy (target + 3 + topic_length, uuid, ZPER_IDENTITY_UUID_SIZE);
    return 3 + topic_length + ZPER_IDENTITY_UUID_SIZE;
}

//  --------------------------------------------------------------------------
//  Selftest

static int
s_parse (const char *bytes, size_t size, zper_identity_t *identity, const char **problem)
{
    return zper_identity_parse (bytes, size, identity, problem);
}

void
zper_identity_test (bool verbose)
{
    zper_identity_t identity;
    const char *problem;
    const char *uuid = "0123456789abcdef";
    char buffer [128];

    assert (zper_identity_legacy_hash ("test") == 0x92);
    assert (zper_identity_legacy_hash ("topic1") == 0xE2);

    //  Later revision with uuid, as the Java client sends it
    size_t size = zper_identity_encode ("test", 1, (const uint8_t *) uuid, buffer);
    assert (size == 3 + 4 + 16);
    assert (s_parse (buffer, size, &identity, &problem) == 0);
    assert (identity.revision == ZPER_IDENTITY_LATER && identity.mode == 1);
    assert (streq (identity.topic, "test") && identity.has_uuid && identity.hash == 0x92);
    //  ... and without the uuid, as encoded with none
    assert (zper_identity_encode ("test", 1, NULL, buffer) == 7);
    assert (s_parse (buffer, 7, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_LATER && !identity.has_uuid);

    //  Seed revision with and without uuid: mode 0
    memcpy (buffer, "\x92\x04test", 6);
    memcpy (buffer + 6, uuid, 16);
    assert (s_parse (buffer, 22, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_SEED && identity.mode == 0);
    assert (streq (identity.topic, "test") && identity.has_uuid);
    assert (s_parse (buffer, 6, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_SEED && !identity.has_uuid);

    //  Seed topic of 2 letters: byte 1 (2) is also a plausible mode, but the
    //  later reading's length byte ('a' = 97) is over 64
    memcpy (buffer, "\x00\x02" "ab", 4);
    assert (s_parse (buffer, 4, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_SEED && streq (identity.topic, "ab"));

    //  Trailing bytes: [0][2]['1']['x' * 60] could read as seed "1x" or as
    //  later mode 2, topic of 49 'x'; only exact lengths are accepted
    memset (buffer, 'x', sizeof buffer);
    buffer [0] = 0; buffer [1] = 2; buffer [2] = '1';
    assert (s_parse (buffer, 2 + 2 + 16, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_SEED && streq (identity.topic, "1x"));
    assert (s_parse (buffer, 3 + 49, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_LATER && identity.mode == 2);
    assert (strlen (identity.topic) == 49 && !identity.has_uuid);
    assert (s_parse (buffer, 3 + 49 + 16, &identity, NULL) == 0);
    assert (identity.revision == ZPER_IDENTITY_LATER && identity.has_uuid);
    assert (s_parse (buffer, 60, &identity, &problem) == -1);
    assert (strstr (problem, "identity length"));
    assert (s_parse (buffer, 2 + 2 + 17, &identity, &problem) == -1);

    //  Malformed: every failure says why
    assert (s_parse ("", 0, &identity, &problem) == -1 && problem);
    assert (s_parse ("\x92", 1, &identity, &problem) == -1 && strstr (problem, "short"));
    assert (s_parse ("\x92\x00", 2, &identity, &problem) == -1 && strstr (problem, "length 0"));
    assert (s_parse ("\x92\x80test", 6, &identity, &problem) == -1);
    assert (strstr (problem, "0x80"));
    assert (s_parse ("\x92\x01\x80test", 7, &identity, &problem) == -1 && problem);
    assert (s_parse ("\x92\x41", 2, &identity, &problem) == -1 && strstr (problem, "over 64"));
    assert (s_parse ("\x92\x04te", 4, &identity, &problem) == -1);
    assert (strstr (problem, "shorter"));
    assert (s_parse ("\x92\x04te/t", 6, &identity, &problem) == -1);
    assert (strstr (problem, "letter or digit"));
    assert (s_parse ("\x92\x01\x04te.t", 7, &identity, &problem) == -1);
    assert (strstr (problem, "letter or digit"));
    assert (s_parse ("\x92\x09\x04test", 7, &identity, &problem) == -1);
    //  A cluster partition's name: letters and digits, '.', 1..5 digits
    const char *partitions [] = { "a.0", "orders.12", "Z9.99999", NULL };
    for (int index = 0; partitions [index]; index++) {
        size = zper_identity_encode (partitions [index], 1, (const uint8_t *) uuid, buffer);
        assert (s_parse (buffer, size, &identity, NULL) == 0);
        assert (streq (identity.topic, partitions [index]) && identity.has_uuid);
        //  ... in the seed revision too
        buffer [1] = (char) strlen (partitions [index]);
        memmove (buffer + 2, buffer + 3, size - 3);
        assert (s_parse (buffer, size - 1, &identity, NULL) == 0);
        assert (identity.revision == ZPER_IDENTITY_SEED);
        assert (streq (identity.topic, partitions [index]));
    }
    const char *not_partitions [] = { ".a", "a.", "a..1", "a.b", "a.123456", "a.1.2", ".1",
                                      "a.1b", NULL };
    for (int index = 0; not_partitions [index]; index++) {
        size = zper_identity_encode (not_partitions [index], 1, (const uint8_t *) uuid, buffer);
        assert (s_parse (buffer, size, &identity, &problem) == -1);
        assert (strstr (problem, "letter or digit"));
    }

    //  A 65-letter topic: length byte 65 is refused, and the seed reading
    //  (topic "A" = byte 65, then trailing bytes) is refused by its length
    memset (buffer, 'a', sizeof buffer);
    buffer [0] = 0; buffer [1] = 1; buffer [2] = 65;
    assert (s_parse (buffer, 3 + 65 + 16, &identity, &problem) == -1);
    assert (strstr (problem, "over 64"));
    //  A 64-letter topic is the longest accepted
    buffer [2] = 64;
    assert (s_parse (buffer, 3 + 64 + 16, &identity, NULL) == 0);
    assert (strlen (identity.topic) == 64);
    //  libzmq's generated routing ids (5 bytes, first 0) are not identities
    assert (s_parse ("\x00\x6b\x8b\x45\x67", 5, &identity, &problem) == -1);

    //  Routing is by topic, stable, and spreads topics over workers
    assert (zper_identity_route ("test", 1) == 0);
    assert (zper_identity_route ("test", 3) == zper_identity_route ("test", 3));
    bool used [3] = { false, false, false };
    for (int index = 0; index < 30; index++) {
        char topic [32];
        snprintf (topic, sizeof topic, "topic%d", index);
        used [zper_identity_route (topic, 3)] = true;
    }
    assert (used [0] && used [1] && used [2]);
    if (verbose)
        zsys_info ("zper_identity: both revisions, tie-break and malformed cases checked");
}
