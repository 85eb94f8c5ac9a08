/*  =========================================================================
    zper_guard - per-key topic permissions, checked on every message

    Two tables: the grants of every allowed key (reloaded when the folder's
    signature changes), and the connections seen, by fd, each with the key
    it authenticated and the peer address it had when first seen. The
    second table is what makes cutting off safe: an fd is shut down only if
    it is still a socket connected to that same address, so an fd libzmq
    closed and reused since is never touched.

    A key the guard does not know may be a key added since the last
    reload (zauth checks the folder on every handshake, the guard every
    reload_ms): before cutting anyone, the guard rescans the folder. A
    connection it cut is remembered, so what libzmq had already queued from
    it is dropped without rescanning for every message.
    ========================================================================= */

#include "zper_guard.h"
#include "zper_defaults.h"
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KEY_SIZE      40              //  a Z85 CURVE public key

typedef struct {
    char *text;
    size_t size;
    bool prefix;                        //  "text*": every topic starting with text
} pattern_t;

typedef struct {
    pattern_t *patterns [2];            //  [0] write, [1] read
    size_t counts [2];
} grant_t;

typedef struct {
    char key [S_KEY_SIZE + 1];
    struct sockaddr_storage peer;
    socklen_t peer_size;
    bool cut;                           //  shut down by this guard: drop what it still sends
} connection_t;

struct _zper_guard_t {
    char *keys_dir;
    int64_t reload_ms;
    int64_t checked_at;                 //  zclock_mono of the last folder check
    uint64_t signature;
    zhashx_t *grants;                   //  Z85 key -> grant_t
    zhashx_t *connections;              //  fd + 1 -> connection_t
    uint64_t cut;
    uint64_t forbidden;
};

//  ---- grants ----------------------------------------------------------------

static void
s_grant_destroy (grant_t **self_p)
{
    if (*self_p) {
        grant_t *self = *self_p;
        for (int which = 0; which < 2; which++) {
            for (size_t index = 0; index < self->counts [which]; index++)
                free (self->patterns [which][index].text);
            free (self->patterns [which]);
        }
        free (self);
        *self_p = NULL;
    }
}

//  "orders, logs.*" -> two patterns. Empty items are skipped.
static void
s_grant_parse (grant_t *self, int which, const char *text)
{
    if (!text)
        return;
    size_t capacity = 1;
    for (const char *cursor = text; *cursor; cursor++)
        capacity += *cursor == ',';
    self->patterns [which] = (pattern_t *) zmalloc (capacity * sizeof (pattern_t));
    const char *cursor = text;
    while (*cursor) {
        while (*cursor == ' ' || *cursor == '\t' || *cursor == ',')
            cursor++;
        const char *end = cursor;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > cursor && (last [-1] == ' ' || last [-1] == '\t'))
            last--;
        if (last > cursor) {
            pattern_t *pattern = &self->patterns [which][self->counts [which]++];
            pattern->prefix = last [-1] == '*';
            pattern->size = (size_t) (last - cursor) - pattern->prefix;
            pattern->text = (char *) zmalloc (pattern->size + 1);
            memcpy (pattern->text, cursor, pattern->size);
        }
        cursor = end;
    }
}

static bool
s_grant_allows (grant_t *self, int access, const char *topic, size_t topic_size, bool subscription)
{
    for (int which = 0; which < 2; which++) {
        if (!(access & (which == 0? ZPER_GUARD_WRITE: ZPER_GUARD_READ)))
            continue;
        for (size_t index = 0; index < self->counts [which]; index++) {
            pattern_t *pattern = &self->patterns [which][index];
            if (pattern->prefix) {
                if (topic_size >= pattern->size && memcmp (topic, pattern->text, pattern->size) == 0)
                    return true;
            }
            else
            if (!subscription && topic_size == pattern->size
            &&  memcmp (topic, pattern->text, topic_size) == 0)
                return true;
        }
    }
    return false;
}

//  ---- the folder ------------------------------------------------------------

static bool
s_is_secret (const char *path)
{
    size_t size = strlen (path);
    return size >= 7 && streq (path + size - 7, "_secret");
}

uint64_t
zper_guard_folder_signature (const char *folder)
{
    zdir_t *dir = zdir_new (folder, NULL);
    if (!dir)
        return 0;
    //  FNV-1a over name, size and nanosecond mtime of every file, in zdir's
    //  (sorted) order; 1 more so that an empty folder is not "unreadable"
    uint64_t hash = 14695981039346656037ULL;
    zfile_t **files = zdir_flatten (dir);
    for (size_t index = 0; files [index]; index++) {
        const char *name = zfile_filename (files [index], NULL);
        struct stat status;
        if (stat (name, &status))
            memset (&status, 0, sizeof status);
        int64_t fields [3] = { (int64_t) status.st_size, (int64_t) status.st_mtim.tv_sec,
                               (int64_t) status.st_mtim.tv_nsec };
        for (const char *cursor = name; *cursor; cursor++)
            hash = (hash ^ (uint8_t) *cursor) * 1099511628211ULL;
        const uint8_t *bytes = (const uint8_t *) fields;
        for (size_t byte = 0; byte < sizeof fields; byte++)
            hash = (hash ^ bytes [byte]) * 1099511628211ULL;
    }
    zdir_flatten_free (&files);
    zdir_destroy (&dir);
    return hash? hash: 1;
}

//  Read every certificate of the folder (as zauth does: every file but the
//  _secret ones, subfolders included) into a fresh grant table.
static void
s_load (zper_guard_t *self)
{
    zhashx_purge (self->grants);
    zdir_t *dir = zdir_new (self->keys_dir, NULL);
    if (!dir)
        return;
    zfile_t **files = zdir_flatten (dir);
    for (size_t index = 0; files [index]; index++) {
        const char *name = zfile_filename (files [index], NULL);
        if (!zfile_is_regular (files [index]) || s_is_secret (name))
            continue;
        zcert_t *cert = zcert_load (name);
        if (!cert)
            continue;
        const char *key = zcert_public_txt (cert);
        if (strlen (key) == S_KEY_SIZE && strspn (key, "0") != S_KEY_SIZE) {
            grant_t *grant = (grant_t *) zmalloc (sizeof (grant_t));
            s_grant_parse (grant, 0, zcert_meta (cert, "write"));
            s_grant_parse (grant, 1, zcert_meta (cert, "read"));
            zhashx_update (self->grants, key, grant);
        }
        zcert_destroy (&cert);
    }
    zdir_flatten_free (&files);
    zdir_destroy (&dir);
}

//  Rescan the folder; reload it if it changed. Returns true if it did.
static bool
s_reload_if_changed (zper_guard_t *self)
{
    self->checked_at = zclock_mono ();
    uint64_t signature = zper_guard_folder_signature (self->keys_dir);
    if (signature == self->signature)
        return false;
    self->signature = signature;
    s_load (self);
    return true;
}

//  ---- connections -----------------------------------------------------------

static size_t
s_fd_hash (const void *key)
{
    return (size_t) (uintptr_t) key;
}

static int
s_fd_compare (const void *one, const void *two)
{
    return (uintptr_t) one < (uintptr_t) two? -1: (uintptr_t) one > (uintptr_t) two;
}

//  True when fd is still a socket connected to the connection's peer.
static bool
s_still_connected (int fd, connection_t *connection)
{
    struct sockaddr_storage peer;
    socklen_t peer_size = sizeof peer;
    if (getpeername (fd, (struct sockaddr *) &peer, &peer_size))
        return false;
    return peer_size == connection->peer_size && memcmp (&peer, &connection->peer, peer_size) == 0;
}

//  Shut the connection down if it is still the one recorded. Returns true
//  if it did.
static bool
s_cut (zper_guard_t *self, int fd, connection_t *connection)
{
    bool cut = !connection->cut && s_still_connected (fd, connection);
    if (cut) {
        shutdown (fd, SHUT_RDWR);
        self->cut++;
    }
    connection->cut = true;
    return cut;
}

//  The record of the connection msg came on, made or renewed for key.
static connection_t *
s_connection (zper_guard_t *self, zmq_msg_t *msg, const char *key)
{
    const char *fd_text = zmq_msg_gets (msg, "__fd");       //  what ZMQ_SRCFD reads
    if (!fd_text)
        return NULL;
    int fd = atoi (fd_text);
    void *handle = (void *) (uintptr_t) (fd + 1);
    connection_t *connection = (connection_t *) zhashx_lookup (self->connections, handle);
    if (connection && streq (connection->key, key))
        return connection;
    if (!connection) {
        connection = (connection_t *) zmalloc (sizeof (connection_t));
        zhashx_insert (self->connections, handle, connection);
    }
    memset (connection, 0, sizeof *connection);
    snprintf (connection->key, sizeof connection->key, "%s", key);
    connection->peer_size = sizeof connection->peer;
    if (getpeername (fd, (struct sockaddr *) &connection->peer, &connection->peer_size))
        connection->peer_size = 0;      //  never matches: never shut down
    return connection;
}

//  ---- public ----------------------------------------------------------------

zper_guard_t *
zper_guard_new (const char *keys_dir, int64_t reload_ms)
{
    assert (keys_dir);
    zper_guard_t *self = (zper_guard_t *) zmalloc (sizeof (zper_guard_t));
    self->keys_dir = strdup (keys_dir);
    self->reload_ms = reload_ms > 0? reload_ms: ZPER_SECURITY_RELOAD_MS;
    self->grants = zhashx_new ();
    zhashx_set_destructor (self->grants, (zhashx_destructor_fn *) s_grant_destroy);
    self->connections = zhashx_new ();
    zhashx_set_key_hasher (self->connections, s_fd_hash);
    zhashx_set_key_comparator (self->connections, s_fd_compare);
    zhashx_set_key_duplicator (self->connections, NULL);
    zhashx_set_key_destructor (self->connections, NULL);
    zhashx_set_destructor (self->connections, (zhashx_destructor_fn *) zstr_free);
    if (!s_reload_if_changed (self))         //  signature 0: not a readable folder
        zper_guard_destroy (&self);
    return self;
}

void
zper_guard_destroy (zper_guard_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zper_guard_t *self = *self_p;
        zhashx_destroy (&self->grants);
        zhashx_destroy (&self->connections);
        free (self->keys_dir);
        free (self);
        *self_p = NULL;
    }
}

const char *
zper_guard_user (zmq_msg_t *msg)
{
    return zmq_msg_gets (msg, "User-Id");
}

static zper_guard_verdict_t
s_check (zper_guard_t *self, zmq_msg_t *msg, int access, const char *topic, size_t topic_size,
         bool subscription)
{
    const char *key = zper_guard_user (msg);
    if (!key)
        return ZPER_GUARD_ALLOWED;
    connection_t *connection = s_connection (self, msg, key);
    if (connection && connection->cut)
        return ZPER_GUARD_CUT;
    grant_t *grant = (grant_t *) zhashx_lookup (self->grants, key);
    if (!grant && s_reload_if_changed (self))
        grant = (grant_t *) zhashx_lookup (self->grants, key);
    if (!grant) {
        if (connection) {
            const char *fd_text = zmq_msg_gets (msg, "__fd");
            s_cut (self, atoi (fd_text), connection);
        }
        return ZPER_GUARD_CUT;
    }
    if (s_grant_allows (grant, access, topic, topic_size, subscription))
        return ZPER_GUARD_ALLOWED;
    self->forbidden++;
    return ZPER_GUARD_FORBIDDEN;
}

zper_guard_verdict_t
zper_guard_check (zper_guard_t *self, zmq_msg_t *msg, int access, const char *topic, size_t topic_size)
{
    assert (self);
    return s_check (self, msg, access, topic, topic_size, false);
}

zper_guard_verdict_t
zper_guard_check_prefix (zper_guard_t *self, zmq_msg_t *msg, int access,
                         const char *prefix, size_t prefix_size)
{
    assert (self);
    return s_check (self, msg, access, prefix, prefix_size, true);
}

int
zper_guard_refresh (zper_guard_t *self)
{
    assert (self);
    if (zclock_mono () - self->checked_at < self->reload_ms)
        return 0;
    s_reload_if_changed (self);
    //  Every pass also forgets the connections that closed, so the table
    //  holds at most one entry per open descriptor
    int cut = 0;
    zlist_t *closed = zlist_new ();
    for (connection_t *connection = (connection_t *) zhashx_first (self->connections);
         connection; connection = (connection_t *) zhashx_next (self->connections)) {
        const void *handle = zhashx_cursor (self->connections);
        int fd = (int) (uintptr_t) handle - 1;
        if (!s_still_connected (fd, connection))
            zlist_append (closed, (void *) handle);
        else
        if (!connection->cut && !zhashx_lookup (self->grants, connection->key))
            cut += s_cut (self, fd, connection);
    }
    for (void *handle = zlist_first (closed); handle; handle = zlist_next (closed))
        zhashx_delete (self->connections, handle);
    zlist_destroy (&closed);
    return cut;
}

uint64_t
zper_guard_cut_count (zper_guard_t *self)
{
    assert (self);
    return self->cut;
}

uint64_t
zper_guard_forbidden_count (zper_guard_t *self)
{
    assert (self);
    return self->forbidden;
}

//  ---- selftest ----------------------------------------------------------------

//  A client cert with grants, its public file saved in folder.
static zcert_t *
s_test_client (const char *folder, const char *name, const char *write, const char *read)
{
    zcert_t *cert = zcert_new ();
    if (write)
        zcert_set_meta (cert, "write", "%s", write);
    if (read)
        zcert_set_meta (cert, "read", "%s", read);
    char *path = zsys_sprintf ("%s/%s", folder, name);
    assert (zcert_save_public (cert, path) == 0);
    zstr_free (&path);
    return cert;
}

void
zper_guard_test (bool verbose)
{
    printf (" * zper_guard: ");
    assert (zper_guard_new ("no-such-folder", 1000) == NULL);
    assert (zsys_dir_create ("keys") == 0);
    zcert_t *server = zcert_new ();
    zcert_t *writer = s_test_client ("keys", "writer", "orders, logs.*", NULL);
    zcert_t *reader = s_test_client ("keys", "reader", NULL, "*");
    zcert_t *nobody = s_test_client ("keys", "nobody", NULL, NULL);

    //  Patterns, without sockets
    grant_t grant = { { NULL, NULL }, { 0, 0 } };
    s_grant_parse (&grant, 0, " orders ,, logs.* ,");
    assert (grant.counts [0] == 2);
    assert (s_grant_allows (&grant, ZPER_GUARD_WRITE, "orders", 6, false));
    assert (!s_grant_allows (&grant, ZPER_GUARD_WRITE, "orders2", 7, false));
    assert (!s_grant_allows (&grant, ZPER_GUARD_WRITE, "order", 5, false));
    assert (s_grant_allows (&grant, ZPER_GUARD_WRITE, "logs.app", 8, false));
    assert (s_grant_allows (&grant, ZPER_GUARD_WRITE, "logs.", 5, false));
    assert (!s_grant_allows (&grant, ZPER_GUARD_READ, "orders", 6, false));
    assert (!s_grant_allows (&grant, ZPER_GUARD_WRITE, "orders", 6, true));
    assert (s_grant_allows (&grant, ZPER_GUARD_WRITE, "logs.a", 6, true));
    assert (!s_grant_allows (&grant, ZPER_GUARD_WRITE, "logs", 4, true));
    for (size_t index = 0; index < grant.counts [0]; index++)
        free (grant.patterns [0][index].text);
    free (grant.patterns [0]);

    uint64_t signature = zper_guard_folder_signature ("keys");
    assert (signature && signature == zper_guard_folder_signature ("keys"));
    assert (zper_guard_folder_signature ("no-such-folder") == 0);

    //  Real CURVE connections through zauth: the guard reads User-Id
    zactor_t *auth = zactor_new (zauth, NULL);
    if (verbose)
        zstr_send (auth, "VERBOSE");
    zstr_sendx (auth, "CURVE", "keys", NULL);
    zsock_wait (auth);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_apply (server, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, "zper");
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_t *clients [3];
    zcert_t *certs [3] = { writer, reader, nobody };
    for (int index = 0; index < 3; index++) {
        clients [index] = zsock_new (ZMQ_DEALER);
        zcert_apply (certs [index], clients [index]);
        zsock_set_curve_serverkey (clients [index], zcert_public_txt (server));
        assert (zsock_connect (clients [index], "tcp://127.0.0.1:%d", port) == 0);
        zstr_send (clients [index], "hello");
    }
    zper_guard_t *guard = zper_guard_new ("keys", 100);
    assert (guard);
    for (int index = 0; index < 3; index++) {
        zmq_msg_t identity, body;
        zmq_msg_init (&identity);
        zmq_msg_init (&body);
        assert (zmq_msg_recv (&identity, zsock_resolve (router), 0) > 0);
        assert (zmq_msg_recv (&body, zsock_resolve (router), 0) == 5);
        const char *key = zper_guard_user (&identity);
        assert (key && strlen (key) == S_KEY_SIZE);
        if (streq (key, zcert_public_txt (writer))) {
            assert (zper_guard_check (guard, &identity, ZPER_GUARD_WRITE, "orders", 6) == ZPER_GUARD_ALLOWED);
            assert (zper_guard_check (guard, &body, ZPER_GUARD_WRITE, "other", 5) == ZPER_GUARD_FORBIDDEN);
            assert (zper_guard_check (guard, &body, ZPER_GUARD_READ, "orders", 6) == ZPER_GUARD_FORBIDDEN);
            assert (zper_guard_check (guard, &body, ZPER_GUARD_READ | ZPER_GUARD_WRITE, "orders", 6)
                    == ZPER_GUARD_ALLOWED);
        }
        else
        if (streq (key, zcert_public_txt (reader))) {
            assert (zper_guard_check (guard, &body, ZPER_GUARD_READ, "anything", 8) == ZPER_GUARD_ALLOWED);
            assert (zper_guard_check_prefix (guard, &body, ZPER_GUARD_READ, "", 0) == ZPER_GUARD_ALLOWED);
            assert (zper_guard_check (guard, &body, ZPER_GUARD_WRITE, "anything", 8) == ZPER_GUARD_FORBIDDEN);
        }
        else {
            assert (streq (key, zcert_public_txt (nobody)));
            assert (zper_guard_check (guard, &body, ZPER_GUARD_READ, "orders", 6) == ZPER_GUARD_FORBIDDEN);
        }
        zmq_msg_close (&identity);
        zmq_msg_close (&body);
    }
    assert (zper_guard_forbidden_count (guard) == 4);
    //  A plaintext (inproc) message has no User-Id: the socket decides
    zmq_msg_t plain;
    zmq_msg_init_size (&plain, 1);
    assert (zper_guard_check (guard, &plain, ZPER_GUARD_WRITE, "x", 1) == ZPER_GUARD_ALLOWED);
    zmq_msg_close (&plain);

    //  The writer's key leaves the folder: the next refresh cuts its
    //  connection, and zauth refuses its reconnection
    zmq_msg_t identity, body;
    zstr_send (clients [0], "before");
    zmq_msg_init (&identity);
    zmq_msg_init (&body);
    assert (zmq_msg_recv (&identity, zsock_resolve (router), 0) > 0);
    assert (zmq_msg_recv (&body, zsock_resolve (router), 0) == 6);
    assert (zper_guard_check (guard, &body, ZPER_GUARD_WRITE, "orders", 6) == ZPER_GUARD_ALLOWED);
    assert (unlink ("keys/writer") == 0);
    zclock_sleep (150);
    assert (zper_guard_refresh (guard) == 1);
    assert (zper_guard_cut_count (guard) == 1);
    //  What was already received from it is refused too
    assert (zper_guard_check (guard, &body, ZPER_GUARD_WRITE, "orders", 6) == ZPER_GUARD_CUT);
    zmq_msg_close (&identity);
    zmq_msg_close (&body);
    //  A guard that loaded the folder after the removal cuts at first sight
    zper_guard_t *fresh = zper_guard_new ("keys", 60000);
    zstr_send (clients [1], "reader");
    zmq_msg_init (&identity);
    assert (zmq_msg_recv (&identity, zsock_resolve (router), 0) > 0);
    assert (zper_guard_check (fresh, &identity, ZPER_GUARD_READ, "x", 1) == ZPER_GUARD_ALLOWED);
    zmq_msg_close (&identity);
    zmsg_t *msg = zmsg_recv (router);
    zmsg_destroy (&msg);
    zper_guard_destroy (&fresh);
    //  Nothing more arrives from the writer: its reconnections are refused
    zstr_send (clients [0], "refused");
    zstr_send (clients [1], "still here");
    zsock_set_rcvtimeo (router, 2000);
    msg = zmsg_recv (router);
    assert (msg);
    char *text = zframe_strdup (zmsg_last (msg));
    assert (streq (text, "still here"));
    zstr_free (&text);
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (router, 300);
    assert (zmsg_recv (router) == NULL);

    //  A key added after the guard loaded is known at its first message
    zcert_t *late = s_test_client ("keys", "late", "*", NULL);
    zsock_t *late_client = zsock_new (ZMQ_DEALER);
    zcert_apply (late, late_client);
    zsock_set_curve_serverkey (late_client, zcert_public_txt (server));
    assert (zsock_connect (late_client, "tcp://127.0.0.1:%d", port) == 0);
    zstr_send (late_client, "first");
    zsock_set_rcvtimeo (router, 5000);
    zmq_msg_init (&identity);
    assert (zmq_msg_recv (&identity, zsock_resolve (router), 0) > 0);
    assert (zper_guard_check (guard, &identity, ZPER_GUARD_WRITE, "t", 1) == ZPER_GUARD_ALLOWED);
    zmq_msg_close (&identity);
    msg = zmsg_recv (router);
    zmsg_destroy (&msg);

    zper_guard_destroy (&guard);
    zper_guard_destroy (&guard);
    zsock_destroy (&late_client);
    for (int index = 0; index < 3; index++)
        zsock_destroy (&clients [index]);
    zsock_destroy (&router);
    zactor_destroy (&auth);
    zcert_destroy (&late);
    zcert_destroy (&server);
    zcert_destroy (&writer);
    zcert_destroy (&reader);
    zcert_destroy (&nobody);
    printf ("OK\n");
}
