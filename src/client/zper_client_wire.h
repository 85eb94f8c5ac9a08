/*  =========================================================================
    zper_client_wire - what the producer and the consumer share (private)

    Big-endian integers in frames, status codes to errno, topic checks, and
    the one way every client call waits for the broker: zmq_poll against a
    deadline, so that no call can hang on a broker that is down.
    Not installed: libzper's public API is include/zper.h alone.
    ========================================================================= */

#ifndef ZPER_CLIENT_WIRE_H_INCLUDED
#define ZPER_CLIENT_WIRE_H_INCLUDED

#include "zper.h"
#include "zper_defaults.h"

//  Sizes of the integers of docs/protocol.md.
#define ZPER_WIRE_INT64_SIZE    8
#define ZPER_WIRE_INT32_SIZE    4
#define ZPER_WIRE_STATUS_SIZE   1

//  Store value big-endian into buffer (8 or 4 bytes).
void
    zper_client_put_int64 (uint8_t *buffer, int64_t value);
void
    zper_client_put_int32 (uint8_t *buffer, int32_t value);

//  Read a big-endian value from buffer (8 or 4 bytes).
int64_t
    zper_client_get_int64 (const uint8_t *buffer);
int32_t
    zper_client_get_int32 (const uint8_t *buffer);

//  A frame holding value big-endian, or the value of a frame that must be
//  exactly 8 bytes long (-1 with *valid false otherwise).
zframe_t *
    zper_client_int64_frame (int64_t value);
int64_t
    zper_client_frame_int64 (zframe_t *frame, bool *valid);

//  The errno that stands for a non-OK status (EMSGSIZE, ERANGE, ...).
int
    zper_client_status_errno (int status);

//  Wait until socket is readable, at most timeout_ms. Returns 1 when
//  readable, 0 on timeout, -1 when interrupted (errno EINTR).
int
    zper_client_wait_readable (zsock_t *socket, int timeout_ms);

//  A connected socket of type with the options every client uses: linger,
//  no queueing towards a peer that is not connected (so that a broker that
//  is down shows as a send timeout), the send timeout. identity may be NULL.
zsock_t *
    zper_client_socket (int type, const char *endpoint, zframe_t *identity, int linger_ms,
                        int send_timeout_ms);

//  Print a one-line message into error (ZPER_CLIENT_ERROR_MAX bytes).
void
    zper_client_error_set (char *error, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  For tests: a fresh string naming a loopback endpoint where nothing
//  listens. The port is below the kernel's ephemeral range, so a connect to
//  it can never be answered by a TCP self-connection.
char *
    zper_client_unused_endpoint (void);

//  Self test of this class
void
    zper_client_wire_test (bool verbose);

#endif
