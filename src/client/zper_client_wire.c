/*  =========================================================================
    zper_client_wire - what the producer and the consumer share

    The one thing to know: every wait on the broker goes through
    zper_client_wait_readable with a finite timeout, and every socket is
    made by zper_client_socket with ZMQ_IMMEDIATE, so a send to a broker
    that is not connected fails after the send timeout instead of queueing
    forever. These two rules are what "a broker that is down is reported,
    never a hang" rests on.

    With ZMQ_IMMEDIATE a refused CURVE handshake looks exactly like a
    broker that is down: the send times out. Only when that happens does
    zper_client_diagnose connect a probe with a monitor and read what the
    handshake said; a monitor on every client socket would cost nothing
    while things work, but libzmq blocks its I/O thread on a monitor whose
    queue nobody reads, and a long-lived client may not read it for hours.
    ========================================================================= */

#include "zper_client_wire.h"
#include "zper_security.h"
#include "zper_test_ports.h"
#include "zper_zmtp.h"
#include <stdarg.h>
#include <unistd.h>

int
zper_client_status_errno (int status)
{
    switch (status) {
        case ZPER_STATUS_OK:                return 0;
        case ZPER_STATUS_INVALID_OFFSET:    return ERANGE;
        case ZPER_STATUS_INVALID_COMMAND:   return ENOTSUP;
        case ZPER_STATUS_INVALID_ARGUMENT:  return EINVAL;
        case ZPER_STATUS_MESSAGE_TOO_LARGE: return EMSGSIZE;
        case ZPER_STATUS_STORAGE_ERROR:     return EIO;
        case ZPER_STATUS_FORBIDDEN:         return EACCES;
        case ZPER_STATUS_NOT_LEADER:        return ESTALE;
        case ZPER_STATUS_NOT_ENOUGH_REPLICAS: return EAGAIN;
        case ZPER_STATUS_FENCED:            return ESTALE;
        case ZPER_STATUS_NO_CLUSTER:        return ENXIO;
        case ZPER_STATUS_TOPIC_EXISTS:      return EEXIST;
        case ZPER_STATUS_UNKNOWN_MEMBER:    return ENOENT;
        case ZPER_STATUS_NOT_ASSIGNED:      return EBUSY;
        case ZPER_STATUS_GROUP_LIMIT:       return EUSERS;
        default:                            return EPROTO;
    }
}

const char *
zper_status_name (int status)
{
    switch (status) {
        case ZPER_STATUS_OK:                return "OK";
        case ZPER_STATUS_INVALID_OFFSET:    return "INVALID_OFFSET";
        case ZPER_STATUS_INVALID_COMMAND:   return "INVALID_COMMAND";
        case ZPER_STATUS_INVALID_ARGUMENT:  return "INVALID_ARGUMENT";
        case ZPER_STATUS_MESSAGE_TOO_LARGE: return "MESSAGE_TOO_LARGE";
        case ZPER_STATUS_STORAGE_ERROR:     return "STORAGE_ERROR";
        case ZPER_STATUS_TOPIC_LIMIT:       return "TOPIC_LIMIT";
        case ZPER_STATUS_UNAVAILABLE:       return "UNAVAILABLE";
        case ZPER_STATUS_SLOW_CLIENT:       return "SLOW_CLIENT";
        case ZPER_STATUS_FORBIDDEN:         return "FORBIDDEN";
        case ZPER_STATUS_NOT_LEADER:        return "NOT_LEADER";
        case ZPER_STATUS_NOT_ENOUGH_REPLICAS: return "NOT_ENOUGH_REPLICAS";
        case ZPER_STATUS_FENCED:            return "FENCED";
        case ZPER_STATUS_NO_CLUSTER:        return "NO_CLUSTER";
        case ZPER_STATUS_TOPIC_EXISTS:      return "TOPIC_EXISTS";
        case ZPER_STATUS_UNKNOWN_MEMBER:    return "UNKNOWN_MEMBER";
        case ZPER_STATUS_NOT_ASSIGNED:      return "NOT_ASSIGNED";
        case ZPER_STATUS_GROUP_LIMIT:       return "GROUP_LIMIT";
        case ZPER_STATUS_INTERNAL_ERROR:    return "INTERNAL_ERROR";
        default:                            return "UNKNOWN";
    }
}

uint8_t
zper_topic_hash (const char *topic)
{
    return zper_identity_legacy_hash (topic);
}

bool
zper_topic_valid (const char *topic)
{
    if (!topic)
        return false;
    size_t length = strlen (topic);
    if (length == 0 || length > ZPER_TOPIC_MAX)
        return false;
    //  As the broker reads an identity (zper_identity.c): letters and
    //  digits, or a cluster partition's name "T.N" (N: 1..5 digits)
    size_t dot = 0;
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char) topic [index];
        if (byte == '.' && index > 0 && !dot)
            dot = index;
        else
        if (byte > 0x7f || !isalnum (byte) || (dot && !isdigit (byte)))
            return false;
    }
    size_t digits = dot? length - dot - 1: 0;
    return !dot || (digits >= 1 && digits <= ZPER_IDENTITY_PARTITION_DIGITS);
}

int
zper_client_wait_readable (zsock_t *socket, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (socket), 0, ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t remaining = deadline - zclock_mono ();
        int rc = zmq_poll (&item, 1, remaining > 0? (long) remaining: 0);
        if (rc > 0)
            return 1;
        if (rc == -1)
            return -1;
        if (remaining <= 0)
            return 0;
    }
}

const char *
zper_client_status_hint (int status)
{
    switch (status) {
        case ZPER_STATUS_FORBIDDEN:
            return " (forbidden: this client's key has no grant for the topic)";
        case ZPER_STATUS_NOT_LEADER:
            return " (this node does not lead the partition: ask METADATA for the leader)";
        case ZPER_STATUS_NOT_ENOUGH_REPLICAS:
            return " (fewer in-sync replicas than min_insync_replicas: nothing stored, retry)";
        case ZPER_STATUS_NO_CLUSTER:
            return " (not a cluster node, or etcd unreachable)";
        case ZPER_STATUS_TOPIC_EXISTS:
            return " (the topic exists already)";
        case ZPER_STATUS_UNKNOWN_MEMBER:
            return " (the member's session expired: it joins again)";
        case ZPER_STATUS_NOT_ASSIGNED:
            return " (the partition is no longer this member's: its next owner goes on from the last commit)";
        case ZPER_STATUS_GROUP_LIMIT:
            return " (groups.max_groups, max_members or max_offsets reached on the broker)";
        default:
            return "";
    }
}

int
zper_client_curve_load (zper_client_curve_t *curve, const char *server_key, const char *cert_path,
                        char *error)
{
    char key [41];
    if (!server_key || !cert_path) {
        zper_client_error_set (error, "CURVE needs both the server's key and a certificate");
        return -1;
    }
    if (zper_security_server_key (server_key, key, error, ZPER_CLIENT_ERROR_MAX) == -1)
        return -1;
    zcert_t *cert = zper_security_load_cert (cert_path, error, ZPER_CLIENT_ERROR_MAX);
    if (!cert)
        return -1;
    zper_client_curve_reset (curve);
    curve->cert = cert;
    memcpy (curve->server_key, key, sizeof key);
    return 0;
}

void
zper_client_curve_reset (zper_client_curve_t *curve)
{
    zcert_destroy (&curve->cert);
    memset (curve->server_key, 0, sizeof curve->server_key);
}

zsock_t *
zper_client_socket (int type, const char *endpoint, zframe_t *identity, int linger_ms,
                    int send_timeout_ms, const zper_client_curve_t *curve)
{
    zsock_t *socket = zsock_new (type);
    if (!socket)
        return NULL;
    //  CURVE options count only when set before the connect
    if (curve && curve->cert
    &&  zper_security_client_cert (socket, curve->cert, curve->server_key) == -1) {
        zsock_destroy (&socket);
        return NULL;
    }
    if (identity)
        zmq_setsockopt (zsock_resolve (socket), ZMQ_ROUTING_ID,
                        zframe_data (identity), zframe_size (identity));
    zsock_set_linger (socket, linger_ms);
    zsock_set_immediate (socket, 1);
    zsock_set_sndtimeo (socket, send_timeout_ms);
    if (zsock_connect (socket, "%s", endpoint) == -1) {
        zsock_destroy (&socket);
        errno = EINVAL;
        return NULL;
    }
    return socket;
}

//  ---- requests and READ batches -------------------------------------------------

//  Wait for the reply to the request just sent, at most wait_ms. On a
//  timeout or an interruption the socket is thrown away: its reply may
//  still come and must not be read as the next request's.
static zmsg_t *
s_await_reply (zsock_t **socket_p, const char *endpoint, const char *command, int wait_ms,
               char *error)
{
    int waited = zper_client_wait_readable (*socket_p, wait_ms);
    if (waited == 1)
        return zmsg_recv (*socket_p);
    zsock_destroy (socket_p);
    if (waited == 0) {
        zper_client_error_set (error, "no answer from %s to %s within %d ms "
                               "(is zperd running?)", endpoint, command, wait_ms);
        errno = ETIMEDOUT;
    }
    else {
        zper_client_error_set (error, "interrupted while waiting for %s to answer %s",
                               endpoint, command);
        errno = EINTR;
    }
    return NULL;
}

zmsg_t *
zper_client_request (zsock_t **socket_p, const char *endpoint, const zper_client_curve_t *curve,
                     int timeout_ms, int extra_wait_ms, zmsg_t **request_p, int *status_p,
                     char *error)
{
    int unused_status;
    if (!status_p)
        status_p = &unused_status;
    *status_p = -1;
    //  The command's name, for error messages
    zframe_t *name = zmsg_first (*request_p);
    char command [16];
    snprintf (command, sizeof command, "%.*s", (int) zframe_size (name), (char *) zframe_data (name));
    if (!*socket_p)
        *socket_p = zper_client_socket (ZMQ_DEALER, endpoint, NULL, 0, timeout_ms, curve);
    if (!*socket_p || zmsg_send (request_p, *socket_p) == -1) {
        zmsg_destroy (request_p);
        zper_client_error_set (error, "no connection to %s within %d ms (%s)", endpoint, timeout_ms,
                               zper_client_diagnose (endpoint, curve, timeout_ms));
        errno = EHOSTUNREACH;
        return NULL;
    }
    zmsg_t *reply = s_await_reply (socket_p, endpoint, command, timeout_ms + extra_wait_ms, error);
    if (!reply)
        return NULL;
    zframe_t *status = zmsg_pop (reply);
    int code = status && zframe_size (status) == ZPER_WIRE_STATUS_SIZE? *zframe_data (status): -1;
    zframe_destroy (&status);
    *status_p = code;
    if (code == ZPER_STATUS_OK)
        return reply;
    zmsg_destroy (&reply);
    if (code == -1)
        zper_client_error_set (error, "%s answered %s without a status", endpoint, command);
    else
        zper_client_error_set (error, "%s refused %s: %s%s", endpoint, command,
                               zper_status_name (code), zper_client_status_hint (code));
    errno = code == -1? EPROTO: zper_client_status_errno (code);
    return NULL;
}

int
zper_client_batch_check (const uint8_t *data, size_t size)
{
    const uint8_t *cursor = data, *end = data + size;
    int count = 0;
    while (cursor < end) {
        if ((size_t) (end - cursor) < ZPER_CLIENT_RECORD_HEADER_SIZE)
            return -1;
        int32_t length = zper_wire_get_int32 (cursor + 2 * ZPER_WIRE_INT64_SIZE);
        cursor += ZPER_CLIENT_RECORD_HEADER_SIZE;
        if (length <= 0 || (size_t) length > (size_t) (end - cursor)
        ||  zper_zmtp_message_length (cursor, (size_t) length, NULL) != length)
            return -1;
        cursor += length;
        count++;
    }
    return count;
}

zmsg_t *
zper_client_record_decode (const uint8_t **cursor_p, int64_t *offset, int64_t *timestamp)
{
    const uint8_t *cursor = *cursor_p;
    *offset = zper_wire_get_int64 (cursor);
    *timestamp = zper_wire_get_int64 (cursor + ZPER_WIRE_INT64_SIZE);
    int32_t length = zper_wire_get_int32 (cursor + 2 * ZPER_WIRE_INT64_SIZE);
    cursor += ZPER_CLIENT_RECORD_HEADER_SIZE;
    const uint8_t *end = cursor + length;
    zmsg_t *msg = zmsg_new ();
    zper_frame_t frame;
    bool more = true;
    while (more && zper_zmtp_decode (&cursor, end, &frame, &more) == 0)
        zmsg_addmem (msg, frame.data, frame.size);
    *cursor_p = end;
    return msg;
}

//  The handshake events a probe waits for: any of them says how it went.
#define S_PROBE_EVENTS  (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL \
                         | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH \
                         | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED)
#define S_NOT_RUNNING   "is zperd running?"
#define S_PROBE_HANGUPS 3               //  hang-ups during the handshake that decide

//  Words for the first event the probe's monitor reported (v1 event frame:
//  event:16, value:32, native order).
static const char *
s_probe_verdict (zframe_t *event, bool curve)
{
    uint16_t number;
    uint32_t value;
    memcpy (&number, zframe_data (event), sizeof number);
    memcpy (&value, zframe_data (event) + sizeof number, sizeof value);
    if (number == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return "the broker refused this client's key: is its public certificate in the "
               "broker's security.keys folder?";
    if (number == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
    &&  value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return curve? "the broker does not use CURVE: connect without a server key and certificate"
                    : "the broker uses CURVE: give its public key and this client's certificate "
                      "(docs/security.md)";
    if (number == ZMQ_EVENT_CONNECT_RETRIED || number == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        return S_NOT_RUNNING;
    //  A CURVE server that cannot open our HELLO (another server key) just
    //  hangs up, as the end of a failed handshake does.
    //  A CURVE broker may also hang up on a plaintext client before its
    //  greeting, with the mechanism, was read.
    return curve? "the broker closed the CURVE handshake: is the server key the broker's?"
                : "the broker closed the handshake: it probably uses CURVE (give its public key "
                  "and this client's certificate, docs/security.md)";
}

const char *
zper_client_diagnose (const char *endpoint, const zper_client_curve_t *curve, int timeout_ms)
{
    static int probes = 0;              //  distinct monitor endpoints in one process
    char monitor_endpoint [64];
    snprintf (monitor_endpoint, sizeof monitor_endpoint, "inproc://zper-client-probe-%d-%d",
              getpid (), __atomic_fetch_add (&probes, 1, __ATOMIC_RELAXED));
    zsock_t *probe = zsock_new (ZMQ_DEALER);
    zsock_t *events = zsock_new (ZMQ_PAIR);
    const char *verdict = S_NOT_RUNNING;
    if (!probe || !events
    ||  zmq_socket_monitor (zsock_resolve (probe), monitor_endpoint, S_PROBE_EVENTS) == -1
    ||  zsock_connect (events, "%s", monitor_endpoint) == -1)
        goto done;
    zsock_set_linger (probe, 0);
    if (curve && curve->cert)
        zper_security_client_cert (probe, curve->cert, curve->server_key);
    if (zsock_connect (probe, "%s", endpoint) == -1)
        goto done;
    //  A hang-up alone may be a reset that beat the broker's greeting (a
    //  busy machine): it decides only when it keeps happening.
    int64_t deadline = zclock_mono () + timeout_ms;
    int hangups = 0;
    bool decided = false;
    while (!decided && zper_client_wait_readable (events, (int) (deadline - zclock_mono ())) == 1) {
        zmsg_t *event = zmsg_recv (events);
        zframe_t *head = event? zmsg_first (event): NULL;
        if (head && zframe_size (head) == sizeof (uint16_t) + sizeof (uint32_t)) {
            uint16_t number;
            memcpy (&number, zframe_data (head), sizeof number);
            bool hangup = number == ZMQ_EVENT_DISCONNECTED
                       || number == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
            //  After a hang-up, a retry is libzmq reconnecting, not a refusal
            if (!(hangups && number == ZMQ_EVENT_CONNECT_RETRIED)) {
                verdict = s_probe_verdict (head, curve && curve->cert);
                decided = !hangup || ++hangups == S_PROBE_HANGUPS;
            }
        }
        zmsg_destroy (&event);
    }
done:
    if (probe)
        zmq_socket_monitor (zsock_resolve (probe), NULL, 0);
    zsock_destroy (&probe);
    zsock_destroy (&events);
    return verdict;
}

bool
zper_client_endpoint_valid (const char *endpoint)
{
    const char *address = endpoint? strstr (endpoint, "://"): NULL;
    if (!address || !address [3])
        return false;
    size_t transport = (size_t) (address - endpoint);
    address += 3;
    if ((transport == 3 && memcmp (endpoint, "ipc", 3) == 0)
    ||  (transport == 6 && memcmp (endpoint, "inproc", 6) == 0))
        return true;
    const char *port = strrchr (address, ':');
    return transport == 3 && memcmp (endpoint, "tcp", 3) == 0 && port && port > address
        && port [1] && strspn (port + 1, "0123456789") == strlen (port + 1);
}

void
zper_client_error_set (char *error, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    vsnprintf (error, ZPER_CLIENT_ERROR_MAX, format, arguments);
    va_end (arguments);
}

char *
zper_client_unused_endpoint (void)
{
    int port = zper_test_ports_reserve ();
    assert (port != -1);
    return zsys_sprintf ("tcp://127.0.0.1:%d", port);
}

//  What a probe tells about CURVE handshakes, against a CURVE ROUTER that
//  allows one key (zauth on a folder holding its certificate) and a
//  plaintext ROUTER; and the status 109 mapping.
static void
s_test_curve (void)
{
    assert (zper_client_status_errno (ZPER_STATUS_FORBIDDEN) == EACCES);
    assert (streq (zper_status_name (ZPER_STATUS_FORBIDDEN), "FORBIDDEN"));
    assert (strstr (zper_client_status_hint (ZPER_STATUS_FORBIDDEN), "forbidden"));
    assert (streq (zper_client_status_hint (ZPER_STATUS_MESSAGE_TOO_LARGE), ""));
    assert (streq (zper_status_name (ZPER_STATUS_NO_CLUSTER), "NO_CLUSTER"));
    assert (zper_client_status_errno (ZPER_STATUS_NO_CLUSTER) == ENXIO);
    assert (strstr (zper_client_status_hint (ZPER_STATUS_NO_CLUSTER), "not a cluster node"));

    char folder [] = "/tmp/zper-client-wire-test-XXXXXX";
    assert (mkdtemp (folder));
    char *keys = zsys_sprintf ("%s/keys", folder);
    char *allowed = zsys_sprintf ("%s/allowed", folder);
    char *stranger = zsys_sprintf ("%s/stranger", folder);
    assert (zsys_dir_create (keys) == 0);
    zcert_t *server_cert = zcert_new ();
    zcert_t *allowed_cert = zcert_new ();
    zcert_t *stranger_cert = zcert_new ();
    assert (zcert_save (allowed_cert, allowed) == 0);
    assert (zcert_save (stranger_cert, stranger) == 0);
    char *allowed_public = zsys_sprintf ("%s/allowed", keys);
    assert (zcert_save_public (allowed_cert, allowed_public) == 0);

    zper_client_curve_t curve = { NULL, "" }, wrong = { NULL, "" };
    char error [ZPER_CLIENT_ERROR_MAX];
    assert (zper_client_curve_load (&curve, "not a key", allowed, error) == -1);
    assert (strstr (error, "not a key"));
    assert (zper_client_curve_load (&curve, zcert_public_txt (server_cert), keys, error) == -1);
    assert (zper_client_curve_load (&curve, zcert_public_txt (server_cert), NULL, error) == -1);
    assert (curve.cert == NULL);
    assert (zper_client_curve_load (&curve, zcert_public_txt (server_cert), allowed, error) == 0);
    assert (curve.cert && streq (curve.server_key, zcert_public_txt (server_cert)));
    assert (zper_client_curve_load (&wrong, zcert_public_txt (stranger_cert), stranger, error) == 0);

    zactor_t *auth = zactor_new (zauth, NULL);
    assert (auth);
    assert (zstr_sendx (auth, "CURVE", keys, NULL) == 0);
    assert (zsock_wait (auth) == 0);
    zsock_t *server = zsock_new (ZMQ_ROUTER);
    zcert_apply (server_cert, server);
    zsock_set_curve_server (server, 1);
    zsock_set_zap_domain (server, "test");
    int port = zsock_bind (server, "tcp://127.0.0.1:*");
    assert (port > 0);
    char *endpoint = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    zsock_t *plain_server = zsock_new_router ("tcp://127.0.0.1:*");
    assert (plain_server);
    const char *plain_endpoint = zsock_endpoint (plain_server);

    //  The right key talks; the probe of a working broker blames nothing else.
    zsock_t *client = zper_client_socket (ZMQ_DEALER, endpoint, NULL, 0, 1000, &curve);
    assert (client && zstr_send (client, "hello") == 0);
    char *hello = zstr_recv (server);     //  [routing id] first
    zstr_free (&hello);
    hello = zstr_recv (server);
    assert (hello && streq (hello, "hello"));
    zstr_free (&hello);
    zsock_destroy (&client);
    assert (streq (zper_client_diagnose (endpoint, &curve, 5000), "is zperd running?"));

    //  A plaintext client; a key not in the folder; a wrong server key; CURVE
    //  towards a plaintext broker.
    assert (strstr (zper_client_diagnose (endpoint, NULL, 5000), "uses CURVE"));
    zper_client_curve_t unknown = { zcert_dup (stranger_cert), "" };
    strcpy (unknown.server_key, zcert_public_txt (server_cert));
    assert (strstr (zper_client_diagnose (endpoint, &unknown, 5000), "refused this client's key"));
    assert (strstr (zper_client_diagnose (endpoint, &wrong, 5000), "is the server key the broker's?"));
    assert (strstr (zper_client_diagnose (plain_endpoint, &curve, 5000), "does not use CURVE"));

    zper_client_curve_reset (&unknown);
    zper_client_curve_reset (&wrong);
    zper_client_curve_reset (&curve);
    assert (curve.cert == NULL);
    zsock_destroy (&plain_server);
    zsock_destroy (&server);
    zactor_destroy (&auth);
    zcert_destroy (&server_cert);
    zcert_destroy (&allowed_cert);
    zcert_destroy (&stranger_cert);
    zdir_t *dir = zdir_new (folder, NULL);
    zdir_remove (dir, true);
    zdir_destroy (&dir);
    zstr_free (&endpoint);
    zstr_free (&allowed_public);
    zstr_free (&stranger);
    zstr_free (&allowed);
    zstr_free (&keys);
}

void
zper_client_wire_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    //  Java's "test".hashCode () = 3556498 = 0x00364492, "topic1" -> ...e2
    assert (zper_topic_hash ("test") == 0x92);
    assert (zper_topic_hash ("topic1") == 0xe2);
    assert (zper_topic_valid ("topic1"));
    assert (!zper_topic_valid (""));
    assert (!zper_topic_valid ("bad-topic"));
    assert (zper_topic_valid ("orders.12") && zper_topic_valid ("a.0"));
    assert (!zper_topic_valid (".a") && !zper_topic_valid ("a.") && !zper_topic_valid ("a..1"));
    assert (!zper_topic_valid ("a.b") && !zper_topic_valid ("a.123456"));
    assert (!zper_topic_valid ("caf\xc3\xa9"));
    char long_topic [ZPER_TOPIC_MAX + 2];
    memset (long_topic, 'a', sizeof long_topic - 1);
    long_topic [sizeof long_topic - 1] = 0;
    assert (!zper_topic_valid (long_topic));
    long_topic [ZPER_TOPIC_MAX] = 0;
    assert (zper_topic_valid (long_topic));

    assert (zper_client_status_errno (ZPER_STATUS_MESSAGE_TOO_LARGE) == EMSGSIZE);
    assert (streq (zper_status_name (ZPER_STATUS_INVALID_OFFSET), "INVALID_OFFSET"));
    assert (streq (zper_status_name (7), "UNKNOWN"));
    assert (zper_client_status_errno (ZPER_STATUS_UNKNOWN_MEMBER) == ENOENT);
    assert (zper_client_status_errno (ZPER_STATUS_NOT_ASSIGNED) == EBUSY);
    assert (streq (zper_status_name (ZPER_STATUS_GROUP_LIMIT), "GROUP_LIMIT"));

    //  A READ batch: one record of two frames is taken; a length that lies is not
    uint8_t batch [ZPER_CLIENT_RECORD_HEADER_SIZE + 16];
    zper_frame_t frames [2] = { { "id", 2 }, { "body", 4 } };
    int32_t encoded = (int32_t) zper_zmtp_encode (frames, 2, batch + ZPER_CLIENT_RECORD_HEADER_SIZE);
    zper_wire_put_int64 (batch, 7);
    zper_wire_put_int64 (batch + ZPER_WIRE_INT64_SIZE, 1234);
    zper_wire_put_int32 (batch + 2 * ZPER_WIRE_INT64_SIZE, encoded);
    size_t size = ZPER_CLIENT_RECORD_HEADER_SIZE + (size_t) encoded;
    assert (zper_client_batch_check (batch, size) == 1);
    assert (zper_client_batch_check (batch, size - 1) == -1);
    assert (zper_client_batch_check (batch, 0) == 0);
    const uint8_t *cursor = batch;
    int64_t offset, timestamp;
    zmsg_t *record = zper_client_record_decode (&cursor, &offset, &timestamp);
    assert (offset == 7 && timestamp == 1234 && cursor == batch + size);
    assert (zmsg_size (record) == 2 && zframe_streq (zmsg_last (record), "body"));
    zmsg_destroy (&record);
    zper_wire_put_int32 (batch + 2 * ZPER_WIRE_INT64_SIZE, encoded + 1);
    assert (zper_client_batch_check (batch, size) == -1);

    //  A wait on a socket nobody answers ends at its deadline.
    char *unused = zper_client_unused_endpoint ();
    zsock_t *lonely = zper_client_socket (ZMQ_DEALER, unused, NULL, 0, 0, NULL);
    assert (lonely);
    int64_t started = zclock_mono ();
    assert (zper_client_wait_readable (lonely, 50) == 0);
    assert (zclock_mono () - started >= 50);
    zsock_destroy (&lonely);
    assert (zper_client_socket (ZMQ_DEALER, "no-such-transport://x", NULL, 0, 0, NULL) == NULL);
    assert (zper_client_endpoint_valid ("tcp://127.0.0.1:5555"));
    assert (zper_client_endpoint_valid ("tcp://broker.example:5555"));
    assert (zper_client_endpoint_valid ("ipc:///tmp/zper") && zper_client_endpoint_valid ("inproc://x"));
    assert (!zper_client_endpoint_valid ("nonsense") && !zper_client_endpoint_valid ("tcp://host"));
    assert (!zper_client_endpoint_valid ("tcp://host:port") && !zper_client_endpoint_valid ("tcp://:1"));
    assert (!zper_client_endpoint_valid ("no-such-transport://x") && !zper_client_endpoint_valid (NULL));
    assert (streq (zper_client_diagnose (unused, NULL, 5000), "is zperd running?"));
    zstr_free (&unused);
    s_test_curve ();
}
