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
