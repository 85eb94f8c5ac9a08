/*  =========================================================================
    zper_client_wire - what the producer and the consumer share

    The one thing to know: every wait on the broker goes through
    zper_client_wait_readable with a finite timeout, and every socket is
    made by zper_client_socket with ZMQ_IMMEDIATE, so a send to a broker
    that is not connected fails after the send timeout instead of queueing
    forever. These two rules are what "a broker that is down is reported,
    never a hang" rests on.
    ========================================================================= */

#include "zper_client_wire.h"
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/socket.h>
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
        case ZPER_STATUS_INTERNAL_ERROR:    return "INTERNAL_ERROR";
        default:                            return "UNKNOWN";
    }
}

uint8_t
zper_topic_hash (const char *topic)
{
    //  Java's String.hashCode: h = 31 * h + c in 32-bit two's complement.
    //  Unsigned arithmetic wraps the same way without undefined behaviour.
    uint32_t hash = 0;
    for (const unsigned char *cursor = (const unsigned char *) topic; *cursor; cursor++)
        hash = 31 * hash + *cursor;
    return (uint8_t) (hash & 0xff);
}

bool
zper_topic_valid (const char *topic)
{
    if (!topic)
        return false;
    size_t length = strlen (topic);
    if (length == 0 || length > ZPER_TOPIC_MAX)
        return false;
    for (size_t index = 0; index < length; index++)
        if (!isalnum ((unsigned char) topic [index]) || (unsigned char) topic [index] > 0x7f)
            return false;
    return true;
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

zsock_t *
zper_client_socket (int type, const char *endpoint, zframe_t *identity, int linger_ms,
                    int send_timeout_ms)
{
    zsock_t *socket = zsock_new (type);
    if (!socket)
        return NULL;
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
    //  A plain socket, bound and never listening, closed synchronously: a
    //  ZeroMQ probe would keep listening a while after zsock_destroy, as
    //  libzmq closes its listener in the background.
    int spread = (ZPER_CLIENT_TEST_PORT_LAST - ZPER_CLIENT_TEST_PORT_FIRST) / 2;
    int port = ZPER_CLIENT_TEST_PORT_FIRST + (int) ((zclock_usecs () ^ getpid ()) % spread);
    int probe = socket (AF_INET, SOCK_STREAM, 0);
    assert (probe != -1);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    for (; port <= ZPER_CLIENT_TEST_PORT_LAST; port++) {
        address.sin_port = htons ((uint16_t) port);
        if (bind (probe, (struct sockaddr *) &address, sizeof address) == 0)
            break;
    }
    close (probe);
    assert (port <= ZPER_CLIENT_TEST_PORT_LAST);
    return zsys_sprintf ("tcp://127.0.0.1:%d", port);
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

    //  A wait on a socket nobody answers ends at its deadline.
    char *unused = zper_client_unused_endpoint ();
    zsock_t *lonely = zper_client_socket (ZMQ_DEALER, unused, NULL, 0, 0);
    zstr_free (&unused);
    assert (lonely);
    int64_t started = zclock_mono ();
    assert (zper_client_wait_readable (lonely, 50) == 0);
    assert (zclock_mono () - started >= 50);
    zsock_destroy (&lonely);
    assert (zper_client_socket (ZMQ_DEALER, "no-such-transport://x", NULL, 0, 0) == NULL);
}
