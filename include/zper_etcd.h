/*  =========================================================================
    zper_etcd - a small, blocking client of etcd's v3 API

    ZPER coordinates a cluster through etcd (Debian's etcd-server, v3 API)
    and speaks to it through etcd's JSON gateway: POST /v3/kv/range, put,
    deleterange, txn and /v3/lease/grant, keepalive, revoke, with keys and
    values in base64 and 64-bit integers as JSON strings. libcurl carries
    the requests, jansson reads and writes the JSON.

    Every call blocks for at most the timeout given to zper_etcd_new, per
    endpoint tried: a caller that must stay responsive (the coordinator
    keeps leases alive) bounds its own step that way. With several
    endpoints, a call that cannot reach one tries the next, and the one
    that answered is tried first next time.

    Not thread-safe: one zper_etcd_t per thread.
    ========================================================================= */

#ifndef ZPER_ETCD_H_INCLUDED
#define ZPER_ETCD_H_INCLUDED

#include <czmq.h>

typedef struct _zper_etcd_t zper_etcd_t;
typedef struct _zper_etcd_txn_t zper_etcd_txn_t;

//  One key-value pair, as a range returns it. value is NUL-terminated
//  (value_size excludes the NUL), so a JSON value can be read as a string.
typedef struct {
    char *key;
    char *value;
    size_t value_size;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;                  //  0: none
} zper_etcd_kv_t;

//  What a txn compare looks at, and how.
typedef enum {
    ZPER_ETCD_CREATE_REVISION,      //  0 when the key does not exist
    ZPER_ETCD_MOD_REVISION,         //  0 when the key does not exist
    ZPER_ETCD_VERSION               //  0 when the key does not exist
} zper_etcd_target_t;

typedef enum {
    ZPER_ETCD_EQUAL,
    ZPER_ETCD_GREATER,
    ZPER_ETCD_LESS,
    ZPER_ETCD_NOT_EQUAL
} zper_etcd_result_t;

//  A client of endpoints, "http://127.0.0.1:2379" or several separated by
//  commas, each call bounded by timeout_ms per endpoint. Connects lazily:
//  returns NULL only for an empty or malformed endpoint list.
zper_etcd_t *
    zper_etcd_new (const char *endpoints, int timeout_ms);

//  Idempotent; nulls *self_p.
void
    zper_etcd_destroy (zper_etcd_t **self_p);

//  The last failure, in one line for a log ("etcd http://127.0.0.1:2379:
//  Couldn't connect to server", "etcd: HTTP 400: ...").
const char *
    zper_etcd_error (zper_etcd_t *self);

//  Read key (prefix false) or every key starting with key (prefix true).
//  On success *kvs is a new list of zper_etcd_kv_t * (its destructor frees
//  them; the caller destroys the list), sorted by key, and *revision (if
//  not NULL) the store's revision the read saw. Returns 0, or -1.
int
    zper_etcd_get (zper_etcd_t *self, const char *key, bool prefix, zlistx_t **kvs,
                   int64_t *revision);

//  The store's current revision and how many keys start with prefix,
//  without reading them (a cheap "did anything change" poll). Returns 0,
//  or -1.
int
    zper_etcd_revision (zper_etcd_t *self, const char *prefix, int64_t *revision,
                        int64_t *count);

//  Put key = value (size bytes), attached to lease (0: none). Returns 0,
//  or -1.
int
    zper_etcd_put (zper_etcd_t *self, const char *key, const void *value, size_t size,
                   int64_t lease);

//  Delete key (or every key starting with it). Returns the number of keys
//  deleted, or -1.
int
    zper_etcd_delete (zper_etcd_t *self, const char *key, bool prefix);

//  Grant a lease of ttl_s seconds. Returns its id (> 0), or -1.
int64_t
    zper_etcd_lease_grant (zper_etcd_t *self, int64_t ttl_s);

//  Renew lease once. Returns its remaining TTL in seconds (> 0), 0 when
//  the lease has expired or does not exist (it cannot be renewed: grant a
//  new one), or -1 when etcd could not be reached.
int64_t
    zper_etcd_lease_keepalive (zper_etcd_t *self, int64_t lease);

//  Revoke lease, deleting every key attached to it. Returns 0, or -1.
int
    zper_etcd_lease_revoke (zper_etcd_t *self, int64_t lease);

//  A transaction: every compare must hold for the success operations to
//  run; otherwise the failure operations run. Build it, commit it, destroy it.
zper_etcd_txn_t *
    zper_etcd_txn_new (void);

void
    zper_etcd_txn_destroy (zper_etcd_txn_t **self_p);

//  Require target of key to compare with value (e.g. CREATE_REVISION
//  EQUAL 0: the key does not exist; MOD_REVISION EQUAL r: unchanged since
//  revision r).
void
    zper_etcd_txn_compare (zper_etcd_txn_t *self, const char *key, zper_etcd_target_t target,
                           zper_etcd_result_t result, int64_t value);

//  Operations run when the compares hold (on_success true), or when they
//  do not (false).
void
    zper_etcd_txn_put (zper_etcd_txn_t *self, bool on_success, const char *key,
                       const void *value, size_t size, int64_t lease);
void
    zper_etcd_txn_delete (zper_etcd_txn_t *self, bool on_success, const char *key);

//  Run the transaction. Returns 0 with *succeeded telling whether the
//  compares held, or -1 when etcd could not be reached or refused it (the
//  transaction may or may not have been applied: read again).
int
    zper_etcd_txn_commit (zper_etcd_t *self, zper_etcd_txn_t *txn, bool *succeeded);

//  For tests: start a real etcd (the Debian binary etcd, found on PATH or
//  at /usr/bin/etcd) on 127.0.0.1 at free ports, with its data in folder
//  (created), wait until it answers (at most 20 s), and return its client
//  endpoint in endpoint. Returns the child's pid, or -1 (binary missing,
//  or it did not come up: its log is folder/etcd.log).
int
    zper_etcd_test_start (const char *folder, char *endpoint, size_t endpoint_size);

//  Stop what zper_etcd_test_start started (SIGTERM, then SIGKILL after
//  5 s) and reap it.
void
    zper_etcd_test_stop (int pid);

//  Self test of this class (starts its own etcd)
void
    zper_etcd_test (bool verbose);

#endif
