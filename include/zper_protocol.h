/*  =========================================================================
    zper_protocol.h - the broker protocol's numbers, shared by zperd and libzper

    Installed with zper.h: these are wire values (docs/protocol.md), so the
    broker and every client must agree on them, and they are defined here
    once. Nothing but constants.
    ========================================================================= */

#ifndef ZPER_PROTOCOL_H_INCLUDED
#define ZPER_PROTOCOL_H_INCLUDED

//  ---- write modes: the identity's mode byte (section 2) -------------------
#define ZPER_MODE_NONE          0   //  fire and forget, one ZeroMQ message per stored message
#define ZPER_MODE_ACK           1   //  the broker acknowledges each message once durable
#define ZPER_MODE_REQ           2   //  lock-step: each send waits for its acknowledgement
#define ZPER_MODE_BATCH_ACK     3   //  native batches, one acknowledgement per batch
#define ZPER_MODE_BATCH         4   //  native batches, no acknowledgement
#define ZPER_MODE_MAX           ZPER_MODE_BATCH

//  ---- reply status codes (section 4) --------------------------------------
#define ZPER_STATUS_OK                  100
#define ZPER_STATUS_INVALID_OFFSET      101
#define ZPER_STATUS_INVALID_COMMAND     102
#define ZPER_STATUS_INVALID_ARGUMENT    103
#define ZPER_STATUS_MESSAGE_TOO_LARGE   104
#define ZPER_STATUS_STORAGE_ERROR       105
#define ZPER_STATUS_TOPIC_LIMIT         106     //  max_topics reached: a new topic was refused
#define ZPER_STATUS_UNAVAILABLE         107     //  the topic exists but cannot be opened now: retry
#define ZPER_STATUS_SLOW_CLIENT         108     //  unread replies over front.reply_budget: read first
#define ZPER_STATUS_FORBIDDEN           109     //  the key (CURVE) has no grant for this topic
#define ZPER_STATUS_INTERNAL_ERROR      255

//  ---- client identity (section 1) -----------------------------------------
#define ZPER_TOPIC_MAX          64  //  topics in an identity: 1..64 ASCII letters and digits
#define ZPER_IDENTITY_UUID_SIZE 16

//  ---- symbolic offsets (OFFSET, relay RESUME, zper_consumer_seek) ----------
#define ZPER_OFFSET_LATEST      -1  //  the durable end: only messages written from now on
#define ZPER_OFFSET_EARLIEST    -2  //  the first retained message

#endif
