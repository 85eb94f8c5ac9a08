/*  =========================================================================
    zper_guard - per-key topic permissions, checked on every message

    ZAP decides who may connect; the guard decides what an authenticated
    key may do, message by message. libzmq tags every message received on
    a CURVE server socket with the client's key (the "User-Id" property
    zauth sets); the guard looks that key up in its own copy of the allowed
    folder and answers for a topic and an access.

    Grants are the certificate's metadata (docs/security.md):

        metadata
            write = "orders, logs.*"    #  exact names, or a prefix and *
            read = "*"

    A key without a "write" (or "read") entry is granted nothing for it.

    The guard reloads the folder when it changed (checked at most every
    reload_ms, by names, sizes and nanosecond modification times), so a
    grant changes for connected clients too. A key that left the folder is
    cut off: every connection the guard saw it on is shut down (the fd
    libzmq reports for the message; only if it still has the peer address
    the guard recorded, so a reused fd is never touched), and libzmq's
    reconnect then meets zauth's refusal.

    One guard per thread (not thread-safe). Memory: one entry per allowed
    key and per connection seen, at most the process's file descriptors.
    ========================================================================= */

#ifndef ZPER_GUARD_H_INCLUDED
#define ZPER_GUARD_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _zper_guard_t zper_guard_t;

//  What a key may do to a topic (a mask: ack subscriptions take either).
#define ZPER_GUARD_WRITE    1
#define ZPER_GUARD_READ     2

typedef enum {
    ZPER_GUARD_ALLOWED,                 //  go on
    ZPER_GUARD_FORBIDDEN,               //  the key's grant does not cover the topic: answer 109
    ZPER_GUARD_CUT,                     //  the key is no longer allowed: its connection was
                                        //  shut down; drop the message, send nothing
} zper_guard_verdict_t;

//  A guard over the certificates in keys_dir, rereading it at most every
//  reload_ms. Returns NULL when keys_dir cannot be read.
zper_guard_t *
    zper_guard_new (const char *keys_dir, int64_t reload_ms);

//  Destroy. Idempotent; nulls *self_p.
void
    zper_guard_destroy (zper_guard_t **self_p);

//  May the sender of msg (a data frame of a message received on a CURVE
//  server socket: not a ROUTER's routing-id frame, which libzmq 4.3 returns
//  without metadata once the socket was polled, nor anything passed on
//  over inproc, which drops it) have access (a ZPER_GUARD_ mask: any of its bits) to
//  topic (topic_size bytes)? A message without a User-Id (a plaintext
//  socket, inproc) is ALLOWED: security is the socket's, not the guard's.
zper_guard_verdict_t
    zper_guard_check (zper_guard_t *self, zmq_msg_t *msg, int access,
                      const char *topic, size_t topic_size);

//  The same for a subscription to prefix on a PUB endpoint: allowed only
//  when the grant covers every topic prefix can match (a "P*" pattern with
//  P a prefix of it, or "*"), since a subscription to "orders" also
//  receives "orders2". An exact name never grants a subscription.
zper_guard_verdict_t
    zper_guard_check_prefix (zper_guard_t *self, zmq_msg_t *msg, int access,
                             const char *prefix, size_t prefix_size);

//  Reload the folder if reload_ms passed and it changed, then cut off the
//  connections of keys no longer in it. Call from the owner's loop, at
//  least every reload_ms. Returns the number of connections cut.
int
    zper_guard_refresh (zper_guard_t *self);

//  Connections cut so far, and checks answered FORBIDDEN so far.
uint64_t
    zper_guard_cut_count (zper_guard_t *self);
uint64_t
    zper_guard_forbidden_count (zper_guard_t *self);

//  A number that changes when a file of folder is added, removed, resized
//  or modified (names, sizes, nanosecond mtimes); 0 when it cannot be read.
uint64_t
    zper_guard_folder_signature (const char *folder);

//  The Z85 key msg was sent with, or NULL (not a CURVE connection).
const char *
    zper_guard_user (zmq_msg_t *msg);

//  Self test of this class
void
    zper_guard_test (bool verbose);

#endif
