/*  =========================================================================
    zper_security - CURVE on a process's sockets, and who was refused

    One per process that serves CURVE (zperd, a Dafka node): it holds the
    process's own certificate and runs CZMQ's zauth as the ZAP handler of
    the default context, with the folder of allowed client certificates.
    zauth's own check of the folder (newest mtime in seconds, file count,
    total size) misses an edit in the same second that keeps the size, so
    the monitor thread also compares the folder's signature (names, sizes,
    nanosecond mtimes: zper_guard_folder_signature) every reload_ms and
    makes zauth reload it when it changed; zper_security_reload (SIGHUP)
    does it at once.

    Every server socket made with zper_security_server is watched by one
    monitor thread, which counts the handshakes it refused (a plaintext or
    otherwise mismatched client; a key the folder does not hold) and logs
    each refusing peer once, with its address.

    Certificates are CZMQ's files (zcert_save): NAME holds the public key
    and the metadata, NAME_secret adds the secret key; docs/security.md.
    ========================================================================= */

#ifndef ZPER_SECURITY_H_INCLUDED
#define ZPER_SECURITY_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _zper_security_t zper_security_t;

//  Refused handshakes, by cause (zper_security_refused).
typedef enum {
    ZPER_REFUSED_MECHANISM,             //  not CURVE (a plaintext client), or a handshake that
                                        //  failed (wrong server key, a peer gone mid-handshake)
    ZPER_REFUSED_KEY,                   //  CURVE, but the key is not in the allowed folder
    ZPER_REFUSED_COUNT
} zper_refused_t;

//  Load this process's certificate (cert_path: the public file; its secret
//  is read from cert_path_secret, which must not be readable by group or
//  others) and start zauth on keys_dir (a folder that must exist).
//  Returns NULL after writing one line naming the problem in error.
zper_security_t *
    zper_security_new (const char *cert_path, const char *keys_dir, int64_t reload_ms,
                       bool verbose, char *error, size_t error_size);

//  Stop zauth and the monitor. Idempotent; nulls *self_p.
void
    zper_security_destroy (zper_security_t **self_p);

//  Make socket a CURVE server with this process's certificate, watched for
//  refusals under name (for the log). Call before binding, from the thread
//  that owns the socket. Returns 0, or -1 with errno.
int
    zper_security_server (zper_security_t *self, zsock_t *socket, const char *name);

//  Make socket a CURVE client with this process's certificate, of the
//  server whose public key (Z85, 40 characters) is server_key. Returns 0,
//  or -1 (EINVAL) when server_key is not a Z85 key.
int
    zper_security_client (zper_security_t *self, zsock_t *socket, const char *server_key);

//  Make socket a CURVE client with cert (a certificate with its secret)
//  of the server whose public key is server_key: for clients, which have
//  no zper_security_t. Returns 0, or -1 (EINVAL) when server_key is not Z85.
int
    zper_security_client_cert (zsock_t *socket, zcert_t *cert, const char *server_key);

//  Load a client's certificate with its secret key. Returns NULL after
//  writing one line naming the problem in error (missing file, no secret,
//  secret file readable by others).
zcert_t *
    zper_security_load_cert (const char *cert_path, char *error, size_t error_size);

//  Read a server public key given as the key itself (40 Z85 characters)
//  or as a path to a certificate file. Writes the Z85 key (41 bytes with
//  the null) to key. Returns 0, or -1 after writing the problem in error.
int
    zper_security_server_key (const char *key_or_path, char key [41],
                              char *error, size_t error_size);

//  Make zauth read the allowed folder again now. Thread-safe.
void
    zper_security_reload (zper_security_t *self);

//  This process's public key (Z85).
const char *
    zper_security_public_key (zper_security_t *self);

//  The folder of allowed client certificates.
const char *
    zper_security_keys_dir (zper_security_t *self);

//  Handshakes refused so far for cause, over every watched socket.
uint64_t
    zper_security_refused (zper_security_t *self, zper_refused_t cause);

//  Self test of this class
void
    zper_security_test (bool verbose);

#endif
