/*  =========================================================================
    zper_security - CURVE on a process's sockets, and who was refused

    One thread, the watch, owns zauth and reads the monitor of every CURVE
    server socket. A handshake refusal shows in a monitor as an event that
    names no connection (HANDSHAKE_FAILED_*) followed by the DISCONNECTED
    event of the refused connection's fd; ACCEPTED gave that fd's peer
    address. So the watch counts the refusal at once and logs it, with the
    address, when the disconnect comes: once per address and cause, for at
    most ZPER_SECURITY_LOGGED_PEERS_MAX addresses (a scan from many
    addresses is then only counted).

    Components register their sockets from their own threads at start-up;
    the watch's pipe is not thread-safe, so registration holds a mutex.
    ========================================================================= */

#include "zper_security.h"
#include "zper_guard.h"
#include "zper_defaults.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KEY_SIZE      40
#define S_WATCHED_EVENTS (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_MONITOR_STOPPED \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct _zper_security_t {
    zcert_t *cert;
    char *keys_dir;
    int64_t reload_ms;
    bool verbose;
    zactor_t *watch;                    //  owns zauth, reads the monitors
    pthread_mutex_t watch_lock;         //  the watch's pipe is used from every component thread
    uint64_t refused [ZPER_REFUSED_COUNT];      //  atomic: written by the watch
};

//  ---- certificates and keys -------------------------------------------------

static bool
s_is_z85_key (const char *text)
{
    uint8_t binary [32];
    return text && strlen (text) == S_KEY_SIZE && zmq_z85_decode (binary, text) != NULL;
}

zcert_t *
zper_security_load_cert (const char *cert_path, char *error, size_t error_size)
{
    char secret_path [PATH_MAX];
    snprintf (secret_path, sizeof secret_path, "%s_secret", cert_path);
    struct stat status;
    errno = 0;
    if (stat (cert_path, &status) || !S_ISREG (status.st_mode)) {
        snprintf (error, error_size, "cannot read certificate %s: %s", cert_path,
                  errno? strerror (errno): "not a file");
        return NULL;
    }
    if (stat (secret_path, &status)) {
        snprintf (error, error_size, "certificate %s has no secret file %s (zper keygen writes both)",
                  cert_path, secret_path);
        return NULL;
    }
    if (status.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf (error, error_size, "%s is readable by others: chmod 600 it", secret_path);
        return NULL;
    }
    zcert_t *cert = zcert_load (cert_path);
    if (!cert || !s_is_z85_key (zcert_public_txt (cert)) || !s_is_z85_key (zcert_secret_txt (cert))
    ||  strspn (zcert_secret_txt (cert), "0") == S_KEY_SIZE) {
        snprintf (error, error_size, "%s is not a CZMQ certificate with a secret key", cert_path);
        zcert_destroy (&cert);
    }
    return cert;
}

int
zper_security_server_key (const char *key_or_path, char key [41], char *error, size_t error_size)
{
    //  A file first: a 40-character path ("/tmp/...") can be valid Z85 too
    if (s_is_z85_key (key_or_path) && !zsys_file_exists (key_or_path)) {
        memcpy (key, key_or_path, S_KEY_SIZE + 1);
        return 0;
    }
    zcert_t *cert = zsys_file_exists (key_or_path)? zcert_load (key_or_path): NULL;
    if (!cert || !s_is_z85_key (zcert_public_txt (cert))) {
        snprintf (error, error_size, "'%s' is neither a Z85 public key (40 characters) "
                  "nor a certificate file", key_or_path);
        zcert_destroy (&cert);
        return -1;
    }
    memcpy (key, zcert_public_txt (cert), S_KEY_SIZE + 1);
    zcert_destroy (&cert);
    return 0;
}

int
zper_security_client_cert (zsock_t *socket, zcert_t *cert, const char *server_key)
{
    if (!s_is_z85_key (server_key)) {
        errno = EINVAL;
        return -1;
    }
    zcert_apply (cert, socket);
    zsock_set_curve_serverkey (socket, server_key);
    return 0;
}

//  ---- the watch thread --------------------------------------------------------

typedef struct {
    zsock_t *pair;
    char *name;                         //  the component, for the log
    zhashx_t *peers;                    //  fd as text -> peer address of an accepted connection
    int pending;                        //  cause of a refusal not yet logged, or -1
} monitor_t;

static void
s_monitor_destroy (monitor_t **self_p)
{
    if (*self_p) {
        monitor_t *self = *self_p;
        zsock_destroy (&self->pair);
        zhashx_destroy (&self->peers);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

typedef struct {
    zper_security_t *security;
    zactor_t *auth;
    zpoller_t *poller;
    zlist_t *monitors;
    zhashx_t *logged;                   //  "cause address" already logged
    uint64_t signature;
} watch_t;

static void
s_peer_address (int fd, char *text, size_t text_size)
{
    struct sockaddr_storage peer;
    socklen_t peer_size = sizeof peer;
    char host [INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (getpeername (fd, (struct sockaddr *) &peer, &peer_size) == 0) {
        if (peer.ss_family == AF_INET) {
            struct sockaddr_in *ipv4 = (struct sockaddr_in *) &peer;
            inet_ntop (AF_INET, &ipv4->sin_addr, host, sizeof host);
            port = ntohs (ipv4->sin_port);
        }
        else
        if (peer.ss_family == AF_INET6) {
            struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *) &peer;
            inet_ntop (AF_INET6, &ipv6->sin6_addr, host, sizeof host);
            port = ntohs (ipv6->sin6_port);
        }
    }
    if (*host)
        snprintf (text, text_size, "%s:%d", host, port);
    else            //  the peer left before the watch read its address
        snprintf (text, text_size, "an address already gone");
}

static void
s_log_refusal (watch_t *self, monitor_t *monitor, const char *address)
{
    const char *cause = monitor->pending == ZPER_REFUSED_KEY? "unknown key"
                      : "not CURVE, or a failed handshake";
    //  Logged once per host, not per port: a client retries from new ports
    char host [INET6_ADDRSTRLEN + 8];
    snprintf (host, sizeof host, "%s", address);
    char *colon = strrchr (host, ':');
    if (colon)
        *colon = 0;
    char *entry = zsys_sprintf ("%s %s", cause, host);
    if (!zhashx_lookup (self->logged, entry)
    &&  zhashx_size (self->logged) < ZPER_SECURITY_LOGGED_PEERS_MAX) {
        zhashx_insert (self->logged, entry, (void *) 1);
        zsys_warning ("%s: refused a connection from %s: %s%s", monitor->name, address, cause,
                      zhashx_size (self->logged) == ZPER_SECURITY_LOGGED_PEERS_MAX?
                      " (more refusing peers are only counted in STATS)": "");
    }
    zstr_free (&entry);
}

//  One monitor event. Returns -1 when the monitored socket is gone.
static int
s_monitor_event (watch_t *self, monitor_t *monitor)
{
    zmsg_t *msg = zmsg_recv (monitor->pair);
    if (!msg)
        return -1;
    zframe_t *frame = zmsg_first (msg);
    int rc = 0;
    if (frame && zframe_size (frame) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy (&event, zframe_data (frame), sizeof event);
        memcpy (&value, zframe_data (frame) + 2, sizeof value);
        char handle [16];               //  the fd, as text
        snprintf (handle, sizeof handle, "%u", value);
        zper_security_t *security = self->security;
        switch (event) {
            case ZMQ_EVENT_ACCEPTED: {
                char address [INET6_ADDRSTRLEN + 16];
                s_peer_address ((int) value, address, sizeof address);
                zhashx_update (monitor->peers, handle, strdup (address));
                break;
            }
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                __atomic_add_fetch (&security->refused [ZPER_REFUSED_KEY], 1, __ATOMIC_RELAXED);
                monitor->pending = ZPER_REFUSED_KEY;
                break;
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                __atomic_add_fetch (&security->refused [ZPER_REFUSED_MECHANISM], 1, __ATOMIC_RELAXED);
                monitor->pending = ZPER_REFUSED_MECHANISM;
                break;
            case ZMQ_EVENT_DISCONNECTED: {
                char *address = (char *) zhashx_lookup (monitor->peers, handle);
                if (monitor->pending >= 0)
                    s_log_refusal (self, monitor, address? address: "an address already gone");
                monitor->pending = -1;
                zhashx_delete (monitor->peers, handle);
                break;
            }
            case ZMQ_EVENT_MONITOR_STOPPED:
                rc = -1;
                break;
        }
    }
    zmsg_destroy (&msg);
    return rc;
}

static void
s_auth_load (watch_t *self)
{
    zstr_sendx (self->auth, "CURVE", self->security->keys_dir, NULL);
    zsock_wait (self->auth);
    self->signature = zper_guard_folder_signature (self->security->keys_dir);
}

//  A pipe command. Returns -1 on $TERM.
static int
s_watch_command (watch_t *self, zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return -1;
    char *command = zmsg_popstr (msg);
    int rc = 0;
    if (streq (command, "WATCH")) {
        char *endpoint = zmsg_popstr (msg);
        monitor_t *monitor = (monitor_t *) zmalloc (sizeof (monitor_t));
        monitor->name = zmsg_popstr (msg);
        monitor->pending = -1;
        monitor->peers = zhashx_new ();
        zhashx_set_destructor (monitor->peers, (zhashx_destructor_fn *) zstr_free);
        monitor->pair = zsock_new (ZMQ_PAIR);
        int connected = zsock_connect (monitor->pair, "%s", endpoint);
        if (connected == 0) {
            zlist_append (self->monitors, monitor);
            zpoller_add (self->poller, monitor->pair);
        }
        else
            s_monitor_destroy (&monitor);
        zstr_free (&endpoint);
        zsock_signal (pipe, connected == 0? 0: 1);
    }
    else
    if (streq (command, "RELOAD")) {
        s_auth_load (self);
        zsock_signal (pipe, 0);
    }
    else
    if (streq (command, "$TERM"))
        rc = -1;
    zstr_free (&command);
    zmsg_destroy (&msg);
    return rc;
}

static void
s_watch (zsock_t *pipe, void *args)
{
    watch_t self = { .security = (zper_security_t *) args };
    self.auth = zactor_new (zauth, NULL);
    if (self.security->verbose)
        zstr_sendx (self.auth, "VERBOSE", NULL);
    s_auth_load (&self);
    self.poller = zpoller_new (pipe, NULL);
    self.monitors = zlist_new ();
    self.logged = zhashx_new ();
    zsock_signal (pipe, 0);

    int64_t next_check = zclock_mono () + self.security->reload_ms;
    while (true) {
        int64_t wait = next_check - zclock_mono ();
        zsock_t *which = (zsock_t *) zpoller_wait (self.poller, (int) (wait > 0? wait: 0));
        if (which == pipe) {
            if (s_watch_command (&self, pipe))
                break;
        }
        else
        if (which) {
            for (monitor_t *monitor = (monitor_t *) zlist_first (self.monitors); monitor;
                 monitor = (monitor_t *) zlist_next (self.monitors))
                if (monitor->pair == which) {
                    if (s_monitor_event (&self, monitor)) {
                        zpoller_remove (self.poller, monitor->pair);
                        zlist_remove (self.monitors, monitor);
                        s_monitor_destroy (&monitor);
                    }
                    break;
                }
        }
        else
        if (zpoller_terminated (self.poller))
            break;
        if (zclock_mono () >= next_check) {
            //  zauth's own check misses an edit within a second that keeps the size
            if (zper_guard_folder_signature (self.security->keys_dir) != self.signature)
                s_auth_load (&self);
            next_check = zclock_mono () + self.security->reload_ms;
        }
    }
    for (monitor_t *monitor = (monitor_t *) zlist_pop (self.monitors); monitor;
         monitor = (monitor_t *) zlist_pop (self.monitors))
        s_monitor_destroy (&monitor);
    zlist_destroy (&self.monitors);
    zhashx_destroy (&self.logged);
    zpoller_destroy (&self.poller);
    zactor_destroy (&self.auth);
}

//  ---- public ----------------------------------------------------------------

zper_security_t *
zper_security_new (const char *cert_path, const char *keys_dir, int64_t reload_ms, bool verbose,
                   char *error, size_t error_size)
{
    if (zper_guard_folder_signature (keys_dir) == 0) {
        snprintf (error, error_size, "allowed keys folder %s is not a readable folder", keys_dir);
        return NULL;
    }
    zcert_t *cert = zper_security_load_cert (cert_path, error, error_size);
    if (!cert)
        return NULL;
    zper_security_t *self = (zper_security_t *) zmalloc (sizeof (zper_security_t));
    self->cert = cert;
    self->keys_dir = strdup (keys_dir);
    self->reload_ms = reload_ms > 0? reload_ms: ZPER_SECURITY_RELOAD_MS;
    self->verbose = verbose;
    pthread_mutex_init (&self->watch_lock, NULL);
    self->watch = zactor_new (s_watch, self);
    if (!self->watch) {
        snprintf (error, error_size, "cannot start the security thread");
        zper_security_destroy (&self);
    }
    return self;
}

void
zper_security_destroy (zper_security_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zper_security_t *self = *self_p;
        zactor_destroy (&self->watch);
        pthread_mutex_destroy (&self->watch_lock);
        zcert_destroy (&self->cert);
        free (self->keys_dir);
        free (self);
        *self_p = NULL;
    }
}

int
zper_security_server (zper_security_t *self, zsock_t *socket, const char *name)
{
    assert (self);
    zcert_apply (self->cert, socket);
    zsock_set_curve_server (socket, 1);
    zsock_set_zap_domain (socket, ZPER_SECURITY_ZAP_DOMAIN);
    pthread_mutex_lock (&self->watch_lock);
    //  Named by a process-wide count: a security object made after another
    //  was destroyed may have its address, and inproc names outlive it
    static int s_monitors = 0;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://zper-security-monitor-%d",
              __atomic_fetch_add (&s_monitors, 1, __ATOMIC_RELAXED));
    int rc = zmq_socket_monitor (zsock_resolve (socket), endpoint, S_WATCHED_EVENTS);
    if (rc == 0) {
        zstr_sendx (self->watch, "WATCH", endpoint, name, NULL);
        rc = zsock_wait (self->watch) == 0? 0: -1;
    }
    pthread_mutex_unlock (&self->watch_lock);
    return rc;
}

int
zper_security_client (zper_security_t *self, zsock_t *socket, const char *server_key)
{
    assert (self);
    return zper_security_client_cert (socket, self->cert, server_key);
}

void
zper_security_reload (zper_security_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->watch_lock);
    zstr_send (self->watch, "RELOAD");
    zsock_wait (self->watch);
    pthread_mutex_unlock (&self->watch_lock);
}

const char *
zper_security_public_key (zper_security_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}

const char *
zper_security_keys_dir (zper_security_t *self)
{
    assert (self);
    return self->keys_dir;
}

uint64_t
zper_security_refused (zper_security_t *self, zper_refused_t cause)
{
    assert (self && cause < ZPER_REFUSED_COUNT);
    return __atomic_load_n (&self->refused [cause], __ATOMIC_RELAXED);
}

//  ---- selftest ----------------------------------------------------------------

static zsock_t *
s_test_dealer (zcert_t *cert, const char *server_key, int port)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (cert)
        assert (zper_security_client_cert (dealer, cert, server_key) == 0);
    zsock_set_rcvtimeo (dealer, 5000);
    zsock_set_linger (dealer, 0);
    assert (zsock_connect (dealer, "tcp://127.0.0.1:%d", port) == 0);
    return dealer;
}

static void
s_test_wait_refused (zper_security_t *self, zper_refused_t cause, uint64_t count)
{
    for (int tries = 0; zper_security_refused (self, cause) < count && tries < 500; tries++)
        zclock_sleep (10);
    assert (zper_security_refused (self, cause) == count);
}

void
zper_security_test (bool verbose)
{
    printf (" * zper_security: ");
    char error [256];
    assert (zsys_dir_create ("keys") == 0);
    zcert_t *server = zcert_new ();
    assert (zcert_save (server, "server.cert") == 0);
    zcert_t *client = zcert_new ();
    assert (zcert_save_public (client, "keys/client") == 0);
    assert (zcert_save (client, "client.cert") == 0);
    zcert_t *stranger = zcert_new ();

    //  Refusals that name the problem
    assert (!zper_security_new ("server.cert", "no-such-folder", 0, verbose, error, sizeof error));
    assert (strstr (error, "no-such-folder"));
    assert (!zper_security_new ("no-such.cert", "keys", 0, verbose, error, sizeof error));
    assert (strstr (error, "no-such.cert"));
    assert (chmod ("server.cert_secret", 0644) == 0);
    assert (!zper_security_new ("server.cert", "keys", 0, verbose, error, sizeof error));
    assert (strstr (error, "chmod 600"));
    assert (chmod ("server.cert_secret", 0600) == 0);
    //  A public file alone is not a certificate to serve with
    assert (!zper_security_load_cert ("keys/client", error, sizeof error));

    char key [41];
    assert (zper_security_server_key (zcert_public_txt (server), key, error, sizeof error) == 0);
    assert (streq (key, zcert_public_txt (server)));
    assert (zper_security_server_key ("server.cert", key, error, sizeof error) == 0);
    assert (streq (key, zcert_public_txt (server)));
    assert (zper_security_server_key ("short", key, error, sizeof error) == -1);
    assert (strstr (error, "short"));

    zper_security_t *security = zper_security_new ("server.cert", "keys", 50, verbose,
                                                   error, sizeof error);
    assert (security);
    assert (streq (zper_security_public_key (security), zcert_public_txt (server)));
    assert (streq (zper_security_keys_dir (security), "keys"));
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (zper_security_server (security, router, "test") == 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_set_rcvtimeo (router, 5000);

    //  An allowed key gets through, with its User-Id on every frame
    zsock_t *allowed = s_test_dealer (client, zcert_public_txt (server), port);
    zstr_send (allowed, "hello");
    zmsg_t *msg = zmsg_recv (router);
    assert (msg);
    const char *user = zframe_meta (zmsg_last (msg), "User-Id");
    assert (user && streq (user, zcert_public_txt (client)));
    zmsg_destroy (&msg);
    assert (zper_security_client_cert (allowed, client, "bad") == -1);

    //  A plaintext client and an unknown key are refused and counted
    zsock_t *plaintext = s_test_dealer (NULL, NULL, port);
    zstr_send (plaintext, "plain");
    s_test_wait_refused (security, ZPER_REFUSED_MECHANISM, 1);
    zsock_t *unknown = s_test_dealer (stranger, zcert_public_txt (server), port);
    zstr_send (unknown, "unknown");
    s_test_wait_refused (security, ZPER_REFUSED_KEY, 1);

    //  The stranger's key is added: zauth takes it without a restart
    assert (zcert_save_public (stranger, "keys/stranger") == 0);
    zsock_destroy (&unknown);
    unknown = s_test_dealer (stranger, zcert_public_txt (server), port);
    zstr_send (unknown, "now allowed");
    msg = zmsg_recv (router);
    assert (msg);
    char *text = zframe_strdup (zmsg_last (msg));
    assert (streq (text, "now allowed"));
    zstr_free (&text);
    zmsg_destroy (&msg);
    zper_security_reload (security);

    zsock_destroy (&plaintext);
    zsock_destroy (&unknown);
    zsock_destroy (&allowed);
    zsock_destroy (&router);
    zper_security_destroy (&security);
    zper_security_destroy (&security);
    zcert_destroy (&server);
    zcert_destroy (&client);
    zcert_destroy (&stranger);
    printf ("OK\n");
}
