/*  =========================================================================
    zper_dafka_proto - the Dafka wire codec, byte-compatible with zeromq/dafka

    One message = frame 0 [id][topic][0x00][version 0x01][fields] plus, for
    RECORD and DIRECT_RECORD only, the content as frame 1. The frame-0 topic
    is what ZeroMQ SUB sockets prefix-match on. spec/dafka-wire.md section 3
    is the normative layout; this module is the only place that knows it.

    Also here: the FETCH filter every FETCH sender goes through (spec
    section 4), because its count is part of the wire behaviour.
    ========================================================================= */

#ifndef ZPER_DAFKA_PROTO_H_INCLUDED
#define ZPER_DAFKA_PROTO_H_INCLUDED

#include <czmq.h>
#include "zper_guard.h"
#include <stdbool.h>
#include <stdint.h>
#include "zper_defaults.h"

//  Message ids (the first byte of frame 0, and of every subscription)
#define ZPER_DAFKA_RECORD           'M'
#define ZPER_DAFKA_DIRECT_RECORD    'D'
#define ZPER_DAFKA_FETCH            'F'
#define ZPER_DAFKA_ACK              'K'
#define ZPER_DAFKA_HEAD             'H'
#define ZPER_DAFKA_DIRECT_HEAD      'E'
#define ZPER_DAFKA_GET_HEADS        'G'
#define ZPER_DAFKA_CONSUMER_HELLO   'W'
#define ZPER_DAFKA_STORE_HELLO      'L'

#define ZPER_DAFKA_VERSION          1
#define ZPER_DAFKA_NONE             UINT64_MAX      //  "no sequence yet"
#define ZPER_DAFKA_UUID_SIZE        32              //  zuuid_str: upper-case hex

typedef struct _zper_dafka_msg_t zper_dafka_msg_t;
typedef struct _zper_dafka_fetch_filter_t zper_dafka_fetch_filter_t;

//  Create an empty message (id 0: set one before sending).
zper_dafka_msg_t *
    zper_dafka_msg_new (void);

//  Destroy the message. Idempotent; nulls *self_p.
void
    zper_dafka_msg_destroy (zper_dafka_msg_t **self_p);

//  Is id one of the nine Dafka message ids?
bool
    zper_dafka_msg_id_known (int id);

//  Decode a received multipart message into self; takes ownership of
//  *msg_p and nulls it. Returns 0, or -1 if the message is malformed
//  (zper_dafka_msg_reason says why); self's previous fields are replaced.
int
    zper_dafka_msg_decode (zper_dafka_msg_t *self, zmsg_t **msg_p);

//  Receive one whole multipart message from input and decode it. Returns 0;
//  -1 with errno EPROTO for a malformed message (already consumed), or -1
//  with libzmq's errno when nothing was received (EAGAIN, EINTR, ETERM).
int
    zper_dafka_msg_recv (zper_dafka_msg_t *self, zsock_t *input);

//  The receivers' hot path: as zper_dafka_msg_recv, but the content of a
//  RECORD/DIRECT_RECORD is received into *content (an initialised
//  zmq_msg_t, replaced; untouched for other ids) instead of a new zframe,
//  and flags may be ZMQ_DONTWAIT (-1 with errno EAGAIN when nothing waits),
//  so that a reader can drain a socket without polling it per message.
int
    zper_dafka_msg_recv_content (zper_dafka_msg_t *self, zsock_t *input, zmq_msg_t *content,
                                 int flags);

//  Send the message (frame 0, then the content for RECORD/DIRECT_RECORD;
//  an absent content goes as an empty frame). Fields not used by the id
//  are not sent. Returns 0 or -1 (EINVAL: topic or a string too long).
int
    zper_dafka_msg_send (zper_dafka_msg_t *self, zsock_t *output);

//  Same, for RECORD/DIRECT_RECORD whose content is a zmq_msg_t (e.g. one
//  lent from a log view without copying). The content message is sent and
//  reset in all cases.
int
    zper_dafka_msg_send_content (zper_dafka_msg_t *self, zsock_t *output, zmq_msg_t *content);

//  Encode frame 0 into a new frame (for tests, tools, and senders that
//  reuse one header). NULL on EINVAL.
zframe_t *
    zper_dafka_msg_encode_header (zper_dafka_msg_t *self);

//  Set the sequence in an encoded RECORD, DIRECT_RECORD or HEAD frame 0 of
//  size bytes: it is their last field, so a producer encodes its RECORD
//  header once and patches a copy per record.
void
    zper_dafka_msg_patch_sequence (void *header, size_t size, uint64_t sequence);

//  Why the last decode failed (a static string), or NULL.
const char *
    zper_dafka_msg_reason (zper_dafka_msg_t *self);

//  The CURVE public key (Z85) the last received message came with (the
//  "User-Id" zauth gives a CURVE connection), or "" when it came over a
//  plaintext connection or senders are not tracked. Not part of the wire
//  format: never sent.
const char *
    zper_dafka_msg_sender (zper_dafka_msg_t *self);

//  Read the sender's key of every message received into self from now on
//  (a property lookup per message: only CURVE nodes pay for it).
void
    zper_dafka_msg_track_sender (zper_dafka_msg_t *self, bool track);

//  With CURVE: every message received into self from now on is first
//  checked by guard (not owned; NULL: none): a message from a key no longer
//  in the allowed folder is dropped, whole, and its connection shut down
//  (zper_guard_check), and the next one is read instead.
void
    zper_dafka_msg_set_guard (zper_dafka_msg_t *self, zper_guard_t *guard);

//  Accessors. Strings are copied in and owned by the message; a setter
//  truncates nothing: the send fails with EINVAL if a string is longer than
//  the wire allows (255 bytes).
int
    zper_dafka_msg_id (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_id (zper_dafka_msg_t *self, int id);
const char *
    zper_dafka_msg_topic (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_topic (zper_dafka_msg_t *self, const char *topic);
const char *
    zper_dafka_msg_address (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_address (zper_dafka_msg_t *self, const char *address);
const char *
    zper_dafka_msg_subject (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_subject (zper_dafka_msg_t *self, const char *subject);
uint64_t
    zper_dafka_msg_sequence (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_sequence (zper_dafka_msg_t *self, uint64_t sequence);
uint32_t
    zper_dafka_msg_count (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_count (zper_dafka_msg_t *self, uint32_t count);

//  CONSUMER_HELLO subjects: the list is owned by the message (strings
//  autofreed); set takes ownership of *subjects_p and nulls it.
zlist_t *
    zper_dafka_msg_subjects (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_subjects (zper_dafka_msg_t *self, zlist_t **subjects_p);

//  Content of RECORD/DIRECT_RECORD: borrowed by the getter (NULL if none);
//  set takes ownership of *content_p and nulls it; take hands it over.
zframe_t *
    zper_dafka_msg_content (zper_dafka_msg_t *self);
void
    zper_dafka_msg_set_content (zper_dafka_msg_t *self, zframe_t **content_p);
zframe_t *
    zper_dafka_msg_take_content (zper_dafka_msg_t *self);

//  Print the message to stderr (debugging, verbose modes).
void
    zper_dafka_msg_print (zper_dafka_msg_t *self);

//  ---- FETCH filter (spec section 4, "FETCH") -------------------------------

//  The count a FETCH from sequence asks for: up to the next multiple of
//  ZPER_DAFKA_FETCH_BLOCK, i.e. 1..100000.
uint32_t
    zper_dafka_fetch_count (uint64_t sequence);

//  A filter remembering, per partition, the last (sequence block, second)
//  asked, so that each gap is asked about at most once per second.
zper_dafka_fetch_filter_t *
    zper_dafka_fetch_filter_new (void);
void
    zper_dafka_fetch_filter_destroy (zper_dafka_fetch_filter_t **self_p);

//  True if a FETCH of (subject, partition, sequence) may be sent at now_ms
//  (monotonic ms), and remembers it; false if an identical one was sent
//  within the same second.
bool
    zper_dafka_fetch_filter_allow (zper_dafka_fetch_filter_t *self, const char *subject,
                                   const char *partition, uint64_t sequence, int64_t now_ms);

//  Forget a partition (e.g. when it is complete) so memory stays bounded.
void
    zper_dafka_fetch_filter_forget (zper_dafka_fetch_filter_t *self, const char *subject,
                                    const char *partition);

//  Self test of this class
void
    zper_dafka_proto_test (bool verbose);

#endif
