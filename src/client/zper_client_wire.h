/*  =========================================================================
    zper_client_wire - what the producer and the consumer share (private)

    Status codes to errno, topic checks, and
    the one way every client call waits for the broker: zmq_poll against a
    deadline, so that no call can hang on a broker that is down.
    Not installed: libzper's public API is include/zper.h alone.
    ========================================================================= */

#ifndef ZPER_CLIENT_WIRE_H_INCLUDED
#define ZPER_CLIENT_WIRE_H_INCLUDED

#include "zper.h"
#include "zper_defaults.h"
#include "zper_wire.h"          //  integer frames, shared with the broker
#include "zper_identity.h"      //  the routing id that names the topic, shared too

//  The errno that stands for a non-OK status (EMSGSIZE, ERANGE, ...).
int
    zper_client_status_errno (int status);

//  Wait until socket is readable, at most timeout_ms. Returns 1 when
//  readable, 0 on timeout, -1 when interrupted (errno EINTR).
int
    zper_client_wait_readable (zsock_t *socket, int timeout_ms);

//  How a client talks to a broker with CURVE on: its own certificate (with
//  the secret key) and the broker's public key. Plaintext when cert is NULL.
typedef struct {
    zcert_t *cert;
    char server_key [41];               //  Z85
} zper_client_curve_t;

//  Load curve from server_key (Z85 or a certificate file) and cert_path
//  (a certificate with its secret). Returns 0, or -1 with a one-line
//  reason in error (ZPER_CLIENT_ERROR_MAX bytes); curve is unchanged then.
int
    zper_client_curve_load (zper_client_curve_t *curve, const char *server_key,
                            const char *cert_path, char *error);

//  Free what curve holds; it is plaintext again.
void
    zper_client_curve_reset (zper_client_curve_t *curve);

//  A connected socket of type with the options every client uses: linger,
//  no queueing towards a peer that is not connected (so that a broker that
//  is down shows as a send timeout), the send timeout, and CURVE when
//  curve holds a certificate. identity and curve may be NULL.
zsock_t *
    zper_client_socket (int type, const char *endpoint, zframe_t *identity, int linger_ms,
                        int send_timeout_ms, const zper_client_curve_t *curve);

//  Why no connection to endpoint came up, as a few words for an error line:
//  "is zperd running?", or what the handshake said (the broker speaks CURVE
//  and this client does not, refused this client's key, ...). Connects a
//  probe socket made like the client's, watched by a monitor, for at most
//  timeout_ms; for the failure path only. Returns a static string.
const char *
    zper_client_diagnose (const char *endpoint, const zper_client_curve_t *curve, int timeout_ms);

//  The words an error line adds after a status name, e.g. for 109 FORBIDDEN
//  " (forbidden: this client's key has no grant for the topic)"; "" if none.
const char *
    zper_client_status_hint (int status);

//  True if endpoint is one zmq_connect would take (tcp://HOST:PORT, ipc://,
//  inproc://), checked without connecting: a client connects only once it
//  has all its options (CURVE), so that a broker never sees a plaintext
//  attempt from a CURVE client.
bool
    zper_client_endpoint_valid (const char *endpoint);

//  Send request (destroyed) on *socket_p, made (connected to endpoint, with
//  curve) when NULL, and wait for the reply at most timeout_ms +
//  extra_wait_ms (a READ's long poll). Returns the reply without its status
//  frame, or NULL with errno, error and (when not NULL) *status_p set: the
//  refusing status, or -1 when no status came. Lazy pirate: on a timeout
//  the socket is destroyed, as its late reply would be taken for the next
//  request's (the protocol has no request ids).
zmsg_t *
    zper_client_request (zsock_t **socket_p, const char *endpoint, const zper_client_curve_t *curve,
                         int timeout_ms, int extra_wait_ms, zmsg_t **request_p, int *status_p,
                         char *error);

//  A READ record's header: offset, timestamp, size (docs/protocol.md 3).
#define ZPER_CLIENT_RECORD_HEADER_SIZE (2 * ZPER_WIRE_INT64_SIZE + ZPER_WIRE_INT32_SIZE)

//  Count the records of a READ batch, checking that each one's length fits
//  and holds whole ZMTP/2.0 frames. Returns the count, or -1.
int
    zper_client_batch_check (const uint8_t *data, size_t size);

//  The record at *cursor_p of a batch zper_client_batch_check accepted, as
//  a new message; sets *offset and *timestamp and moves *cursor_p past it.
zmsg_t *
    zper_client_record_decode (const uint8_t **cursor_p, int64_t *offset, int64_t *timestamp);

//  Print a one-line message into error (ZPER_CLIENT_ERROR_MAX bytes).
void
    zper_client_error_set (char *error, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  For tests: a fresh string naming a loopback endpoint where nothing
//  listens, on a port reserved to this process (zper_test_ports).
char *
    zper_client_unused_endpoint (void);

//  Self test of this class
void
    zper_client_wire_test (bool verbose);

#endif
