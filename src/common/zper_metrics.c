/*  =========================================================================
    zper_metrics - a Prometheus endpoint: GET /metrics over HTTP

    The server is libmicrohttpd with its internal polling thread: every
    request is answered on that one thread, so renders never overlap each
    other, but they do overlap the broker's threads (render must lock what
    it reads; the STATS JSON is built under the stats and log locks). The
    polling mode is MHD's automatic choice (epoll on Linux), not select:
    the broker holds thousands of descriptors, and select cannot watch one
    numbered over 1024.

    The renderer reads the STATS object as JSON, the same text the rear's
    STATS command answers, so the endpoint and STATS cannot disagree, and a
    part of STATS that is absent (an older broker, a module not built) is
    simply not rendered. A family's # HELP and # TYPE lines are written
    with its first sample, so a family without samples is left out whole.
    Numbers are integers in STATS; seconds are rendered from milliseconds
    and microseconds by exact decimal division, never through a double.
    ========================================================================= */

#include "zper_metrics.h"
#include "zper_defaults.h"
#include <czmq.h>
#include <microhttpd.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define S_PATH          "/metrics"
#define S_REASON_MAX    256

struct _zper_metrics_t {
    struct MHD_Daemon *daemon;
    zper_metrics_render_fn *render;
    void *argument;
    int port;
};

//  Per thread, so that two components starting at once keep their own.
static __thread char s_reason [S_REASON_MAX];

//  ---- listen address ----------------------------------------------------------------------------

//  Parse listen into address; on failure write why into reason.
static int
s_parse_listen (const char *listen, struct sockaddr_in *address, char *reason, size_t reason_size)
{
    memset (address, 0, sizeof *address);
    address->sin_family = AF_INET;
    const char *colon = listen? strrchr (listen, ':'): NULL;
    if (!colon || colon == listen) {
        snprintf (reason, reason_size, "'%s' is not host:port (e.g. 127.0.0.1:9100)",
                  listen? listen: "");
        return -1;
    }
    char host [INET_ADDRSTRLEN + 16];
    size_t host_size = (size_t) (colon - listen);
    if (host_size >= sizeof host) {
        snprintf (reason, reason_size, "'%s': the host must be an IPv4 address or localhost",
                  listen);
        return -1;
    }
    memcpy (host, listen, host_size);
    host [host_size] = 0;
    if (streq (host, "localhost"))
        strcpy (host, "127.0.0.1");
    if (inet_pton (AF_INET, host, &address->sin_addr) != 1) {
        snprintf (reason, reason_size, "'%s': the host must be an IPv4 address or localhost",
                  listen);
        return -1;
    }
    const char *port_text = colon + 1;
    long port = 0;
    bool digits = *port_text && strlen (port_text) <= 5;
    for (const char *digit = port_text; digits && *digit; digit++) {
        digits = *digit >= '0' && *digit <= '9';
        port = port * 10 + (*digit - '0');
    }
    if (!digits || port > 65535) {
        snprintf (reason, reason_size, "'%s': the port must be a number from 0 to 65535", listen);
        return -1;
    }
    address->sin_port = htons ((uint16_t) port);
    return 0;
}

int
zper_metrics_listen_check (const char *listen, char *reason, size_t reason_size)
{
    struct sockaddr_in address;
    return s_parse_listen (listen, &address, reason, reason_size);
}

//  ---- HTTP server -------------------------------------------------------------------------------

static enum MHD_Result
s_queue_text (struct MHD_Connection *connection, unsigned int status, const char *text)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), (void *) text, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

//  One request. A request is answered on its first call, before any body
//  it has: no path we serve takes one, and MHD discards what follows.
static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **state)
{
    zper_metrics_t *self = (zper_metrics_t *) cls;
    if (!streq (url, S_PATH))
        return s_queue_text (connection, MHD_HTTP_NOT_FOUND, "not found: try GET /metrics\n");
    if (!streq (method, MHD_HTTP_METHOD_GET) && !streq (method, MHD_HTTP_METHOD_HEAD))
        return s_queue_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    char *text = self->render (self->argument);
    if (!text)
        return s_queue_text (connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "the metrics could not be rendered\n");
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, S_CONTENT_TYPE);
    enum MHD_Result result = MHD_queue_response (connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return result;
}

//  MHD says only that it could not start; binding a socket the same way
//  tells which (the port is in use, the address is not this host's).
static void
s_bind_failure (const struct sockaddr_in *address, const char *listen)
{
    int probe = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int reuse = 1;
    int error = 0;
    if (probe >= 0) {
        setsockopt (probe, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
        if (bind (probe, (const struct sockaddr *) address, sizeof *address))
            error = errno;
        close (probe);
    }
    if (error)
        snprintf (s_reason, sizeof s_reason, "cannot listen on %s: %s", listen, strerror (error));
    else
        snprintf (s_reason, sizeof s_reason, "cannot start the HTTP server on %s", listen);
}

zper_metrics_t *
zper_metrics_new (const char *listen, int max_clients, zper_metrics_render_fn *render,
                  void *argument)
{
    assert (render);
    s_reason [0] = 0;
    struct sockaddr_in address;
    if (s_parse_listen (listen, &address, s_reason, sizeof s_reason))
        return NULL;
    if (max_clients < 1) {
        snprintf (s_reason, sizeof s_reason, "max_clients must be at least 1");
        return NULL;
    }
    zper_metrics_t *self = (zper_metrics_t *) zmalloc (sizeof (zper_metrics_t));
    self->render = render;
    self->argument = argument;
    //  No MHD_USE_ERROR_LOG: a client's bad request is not the operator's concern
    self->daemon = MHD_start_daemon (
        MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, s_answer, self,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) max_clients,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) ZPER_METRICS_TIMEOUT_S,
        MHD_OPTION_END);
    if (!self->daemon) {
        s_bind_failure (&address, listen);
        freen (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? info->port: ntohs (address.sin_port);
    return self;
}

const char *
zper_metrics_reason (void)
{
    return s_reason;
}

void
zper_metrics_destroy (zper_metrics_t **self_p)
{
    assert (self_p);
    zper_metrics_t *self = *self_p;
    if (self) {
        MHD_stop_daemon (self->daemon);     //  joins the polling thread
        freen (self);
        *self_p = NULL;
    }
}

int
zper_metrics_port (zper_metrics_t *self)
{
    return self->port;
}

//  ---- text format 0.0.4 -------------------------------------------------------------------------

//  Writes families one sample at a time; a family's header goes out with its first sample.
typedef struct {
    FILE *out;
    const char *name;
    const char *type;
    const char *help;
    bool announced;
} writer_t;

static void
s_family (writer_t *writer, const char *name, const char *type, const char *help)
{
    writer->name = name;
    writer->type = type;
    writer->help = help;
    writer->announced = false;
}

//  A label value: backslash, double quote and newline are escaped (the format's only three).
static void
s_label_value (FILE *out, const char *value)
{
    for (const char *character = value; *character; character++) {
        if (*character == '\\')
            fputs ("\\\\", out);
        else
        if (*character == '"')
            fputs ("\\\"", out);
        else
        if (*character == '\n')
            fputs ("\\n", out);
        else
            fputc (*character, out);
    }
}

//  One sample of the current family: name + suffix, labels as name/value
//  pairs ending with NULL, and the value's text.
static void
s_sample (writer_t *writer, const char *suffix, const char *value, ...)
{
    if (!writer->announced) {
        fprintf (writer->out, "# HELP %s %s\n# TYPE %s %s\n", writer->name, writer->help,
                 writer->name, writer->type);
        writer->announced = true;
    }
    fprintf (writer->out, "%s%s", writer->name, suffix);
    va_list pairs;
    va_start (pairs, value);
    bool labelled = false;
    for (const char *label = va_arg (pairs, const char *); label;
         label = va_arg (pairs, const char *)) {
        fprintf (writer->out, "%s%s=\"", labelled? ",": "{", label);
        s_label_value (writer->out, va_arg (pairs, const char *));
        fputc ('"', writer->out);
        labelled = true;
    }
    va_end (pairs);
    if (labelled)
        fputc ('}', writer->out);
    fprintf (writer->out, " %s\n", value);
}

#define S_VALUE_MAX 48

//  value / divisor as an exact decimal ("1.5" for 1500 / 1000); divisor a power of ten.
static void
s_decimal (char *text, size_t size, long long value, long long divisor)
{
    if (divisor == 1) {
        snprintf (text, size, "%lld", value);
        return;
    }
    unsigned long long magnitude = value < 0? - (unsigned long long) value: (unsigned long long) value;
    //  The fraction's digits, zero-padded to the divisor's zeros (at most 18)
    char fraction [20];
    int digits = 0;
    for (long long power = divisor; power > 1 && digits < 18; power /= 10)
        digits++;
    unsigned long long rest = magnitude % (unsigned long long) divisor;
    for (int index = digits - 1; index >= 0; index--, rest /= 10)
        fraction [index] = (char) ('0' + rest % 10);
    fraction [digits] = 0;
    snprintf (text, size, "%s%llu.%s", value < 0? "-": "", magnitude / (unsigned long long) divisor,
              fraction);
    char *end = text + strlen (text) - 1;
    while (*end == '0')
        *end-- = 0;
    if (*end == '.')
        *end = 0;
}

//  The text of a JSON number divided by divisor; false when value is not a number.
static bool
s_number (json_t *value, long long divisor, char *text, size_t size)
{
    if (json_is_integer (value))
        s_decimal (text, size, (long long) json_integer_value (value), divisor);
    else
    if (json_is_real (value))
        snprintf (text, size, "%.17g", json_real_value (value) / (double) divisor);
    else
        return false;
    return true;
}

//  root's member at a path of keys separated by '/' ("log/topics"), or NULL.
static json_t *
s_get (json_t *root, const char *path)
{
    char key [64];
    while (root && *path) {
        size_t size = strcspn (path, "/");
        if (size >= sizeof key)
            return NULL;
        memcpy (key, path, size);
        key [size] = 0;
        root = json_object_get (root, key);
        path += size + (path [size] == '/');
    }
    return root;
}

typedef struct {
    const char *name;
    const char *type;
    const char *help;
    const char *path;                   //  in the STATS object, or in each topic's object
    long long divisor;                  //  STATS unit per rendered unit (1000 for ms -> s)
} series_t;

//  Broker-wide values: one sample each, no labels.
static const series_t s_uptime =
    { "zper_uptime_seconds", "gauge", "Seconds since the broker started.", "uptime_ms", 1000 };
static const series_t s_scalars [] = {
    { "zper_log_topics", "gauge", "Topics in the log.", "log/topics", 1 },
    { "zper_log_open_partitions", "gauge", "Partitions whose segment files are open.",
      "log/open_partitions", 1 },
    { "zper_open_fds", "gauge", "File descriptors the broker has open.", "log/open_fds", 1 },
    { "zper_fd_limit", "gauge", "The broker's file descriptor limit (RLIMIT_NOFILE).",
      "log/fd_limit", 1 },
    { "zper_connections", "gauge",
      "Peers with an output budget (rear, relay, ack and relay.pub peers).", "connections/count", 1 },
};

//  One sample per topic, labelled topic.
static const series_t s_topic_series [] = {
    { "zper_topic_messages_in_total", "counter", "Messages durably written to the topic.",
      "messages_written", 1 },
    { "zper_topic_bytes_in_total", "counter",
      "Bytes (storage encoding) durably written to the topic.", "bytes_written", 1 },
    { "zper_topic_messages_out_total", "counter",
      "Messages of the topic sent to readers (READ, FETCH, streaming FETCH, relay).",
      "messages_read", 1 },
    { "zper_topic_bytes_out_total", "counter",
      "Bytes (encoded) of the topic sent to readers (READ, FETCH, streaming FETCH, relay).",
      "bytes_read", 1 },
    { "zper_topic_acks_total", "counter", "Ack PUB messages published for the topic.", "acks", 1 },
    { "zper_topic_end_offset", "gauge", "The topic's read end: the offset of its next durable message.",
      "durable_offset", 1 },
    { "zper_topic_start_offset", "gauge", "The topic's oldest offset still stored.",
      "start_offset", 1 },
    { "zper_topic_size_bytes", "gauge", "Bytes of the topic's segments on disk.", "size_bytes", 1 },
};

//  One sample per partition a group consumes or committed, labelled group and topic.
static const series_t s_group_series [] = {
    { "zper_group_lag_messages", "gauge",
      "Messages of the partition after the group's committed offset.", "lag", 1 },
    { "zper_group_lag_seconds", "gauge",
      "Age of the partition's oldest message the group has not committed (0 without lag).",
      "lag_ms", 1000 },
    { "zper_group_committed_offset", "gauge",
      "The group's committed offset on the partition (-1: none).", "committed", 1 },
};

static void
s_scalar (writer_t *writer, json_t *stats, const series_t *series)
{
    char value [S_VALUE_MAX];
    if (s_number (s_get (stats, series->path), series->divisor, value, sizeof value)) {
        s_family (writer, series->name, series->type, series->help);
        s_sample (writer, "", value, NULL);
    }
}

static void
s_topics (writer_t *writer, json_t *topics)
{
    for (size_t index = 0; index < sizeof s_topic_series / sizeof s_topic_series [0]; index++) {
        const series_t *series = &s_topic_series [index];
        s_family (writer, series->name, series->type, series->help);
        const char *name;
        json_t *topic;
        char value [S_VALUE_MAX];
        json_object_foreach (topics, name, topic)
            if (s_number (json_object_get (topic, series->path), series->divisor, value, sizeof value))
                s_sample (writer, "", value, "topic", name, NULL);
    }
}

//  statuses: {"front": {"100": n, ...}, "rear": {...}}
static void
s_replies (writer_t *writer, json_t *statuses)
{
    s_family (writer, "zper_replies_total", "counter",
              "Replies sent, by socket (front, rear) and status code (docs/protocol.md).");
    const char *socket_name;
    json_t *codes;
    json_object_foreach (statuses, socket_name, codes) {
        const char *status;
        json_t *count;
        char value [S_VALUE_MAX];
        json_object_foreach (codes, status, count)
            if (s_number (count, 1, value, sizeof value))
                s_sample (writer, "", value, "socket", socket_name, "status", status, NULL);
    }
}

static void
s_errors (writer_t *writer, json_t *counters)
{
    s_family (writer, "zper_errors_total", "counter",
              "Refused input and dropped output, by STATS counter (docs/protocol.md 3.1).");
    const char *name;
    json_t *count;
    char value [S_VALUE_MAX];
    json_object_foreach (counters, name, count)
        if (s_number (count, 1, value, sizeof value))
            s_sample (writer, "", value, "counter", name, NULL);
}

//  fsync: {"count": n, "sum_us": n, "buckets": [[le_us, cumulative count], ...]}
static void
s_fsync (writer_t *writer, json_t *fsync)
{
    json_t *buckets = json_object_get (fsync, "buckets");
    char count [S_VALUE_MAX], sum [S_VALUE_MAX];
    if (!json_is_array (buckets)
    ||  !s_number (json_object_get (fsync, "count"), 1, count, sizeof count)
    ||  !s_number (json_object_get (fsync, "sum_us"), 1000000, sum, sizeof sum))
        return;
    s_family (writer, "zper_fsync_seconds", "histogram",
              "fdatasync latency of segment syncs.");
    size_t index;
    json_t *bucket;
    json_array_foreach (buckets, index, bucket) {
        json_t *le_us = json_array_get (bucket, 0);
        char le [S_VALUE_MAX], value [S_VALUE_MAX];
        if (json_is_integer (le_us) && s_number (json_array_get (bucket, 1), 1, value, sizeof value)) {
            s_decimal (le, sizeof le, (long long) json_integer_value (le_us), 1000000);
            s_sample (writer, "_bucket", value, "le", le, NULL);
        }
    }
    s_sample (writer, "_bucket", count, "le", "+Inf", NULL);
    s_sample (writer, "_sum", sum, NULL);
    s_sample (writer, "_count", count, NULL);
}

//  peers: [{"socket", "peer", "queued_bytes", "dropped"}], the busiest first
static void
s_peers (writer_t *writer, json_t *peers)
{
    const char *names [] = { "zper_connection_queued_bytes", "zper_connection_dropped_total" };
    const char *types [] = { "gauge", "counter" };
    const char *helps [] = { "Bytes queued for the peer, not yet sent (its output budget's use).",
                             "Messages dropped for the peer: its output budget was full." };
    const char *fields [] = { "queued_bytes", "dropped" };
    for (int series = 0; series < 2; series++) {
        s_family (writer, names [series], types [series], helps [series]);
        size_t index;
        json_t *peer;
        char value [S_VALUE_MAX];
        json_array_foreach (peers, index, peer) {
            const char *socket_name = json_string_value (json_object_get (peer, "socket"));
            const char *peer_name = json_string_value (json_object_get (peer, "peer"));
            if (socket_name && peer_name
            &&  s_number (json_object_get (peer, fields [series]), 1, value, sizeof value))
                s_sample (writer, "", value, "socket", socket_name, "peer", peer_name, NULL);
        }
    }
}

//  groups: {"G": {"members": [...], "partitions": {"T.0": {"committed", "lag", "lag_ms"}}}}
static void
s_groups (writer_t *writer, json_t *groups)
{
    s_family (writer, "zper_group_members", "gauge", "Live members of the consumer group.");
    const char *group_name;
    json_t *group;
    char value [S_VALUE_MAX];
    json_object_foreach (groups, group_name, group) {
        json_t *members = json_object_get (group, "members");
        if (json_is_array (members)) {
            snprintf (value, sizeof value, "%zu", json_array_size (members));
            s_sample (writer, "", value, "group", group_name, NULL);
        }
    }
    for (size_t index = 0; index < sizeof s_group_series / sizeof s_group_series [0]; index++) {
        const series_t *series = &s_group_series [index];
        s_family (writer, series->name, series->type, series->help);
        json_object_foreach (groups, group_name, group) {
            const char *topic_name;
            json_t *partition;
            json_object_foreach (json_object_get (group, "partitions"), topic_name, partition)
                if (s_number (json_object_get (partition, series->path), series->divisor,
                              value, sizeof value))
                    s_sample (writer, "", value, "group", group_name, "topic", topic_name, NULL);
        }
    }
}

char *
zper_metrics_from_stats (const char *stats_json)
{
    json_t *stats = stats_json? json_loads (stats_json, 0, NULL): NULL;
    if (!json_is_object (stats)) {
        json_decref (stats);
        return NULL;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out) {
        json_decref (stats);
        return NULL;
    }
    writer_t writer = { .out = out };
    s_family (&writer, "zper_up", "gauge", "1: the broker answered this scrape.");
    s_sample (&writer, "", "1", NULL);
    s_scalar (&writer, stats, &s_uptime);
    s_topics (&writer, json_object_get (stats, "topics"));
    s_replies (&writer, json_object_get (stats, "statuses"));
    s_errors (&writer, json_object_get (stats, "counters"));
    s_fsync (&writer, json_object_get (stats, "fsync"));
    for (size_t index = 0; index < sizeof s_scalars / sizeof s_scalars [0]; index++)
        s_scalar (&writer, stats, &s_scalars [index]);
    s_peers (&writer, s_get (stats, "connections/peers"));
    s_groups (&writer, json_object_get (stats, "groups"));
    fclose (out);
    json_decref (stats);
    return text;
}

char *
zper_metrics_counters (const zper_metrics_counter_t *counters, size_t count)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    writer_t writer = { .out = out };
    for (size_t index = 0; index < count; index++) {
        char value [S_VALUE_MAX];
        snprintf (value, sizeof value, "%llu", (unsigned long long) counters [index].value);
        s_family (&writer, counters [index].name, counters [index].type, counters [index].help);
        s_sample (&writer, "", value, NULL);
    }
    fclose (out);
    return text;
}

//  ---- selftest ----------------------------------------------------------------------------------

#include <curl/curl.h>

typedef struct {
    int scrapes;
    bool fail;
} s_test_state_t;

static char *
s_test_render (void *argument)
{
    s_test_state_t *state = (s_test_state_t *) argument;
    if (state->fail)
        return NULL;
    state->scrapes++;
    return zsys_sprintf ("zper_test_scrapes %d\n", state->scrapes);
}

static size_t
s_test_write (char *data, size_t size, size_t count, void *argument)
{
    zchunk_extend ((zchunk_t *) argument, data, size * count);
    return size * count;
}

//  A request to the test server: returns the HTTP status (0: no answer) and the body in body.
static long
s_test_request_within (int port, const char *method, const char *path, char **body,
                       char **content_type, long timeout_s)
{
    CURL *curl = curl_easy_init ();
    assert (curl);
    char url [128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    zchunk_t *received = zchunk_new (NULL, 0);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_test_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, received);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    long status = 0;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    if (content_type) {
        char *type = NULL;
        curl_easy_getinfo (curl, CURLINFO_CONTENT_TYPE, &type);
        *content_type = type? strdup (type): NULL;
    }
    if (body)
        *body = zchunk_strdup (received);
    zchunk_destroy (&received);
    curl_easy_cleanup (curl);
    return status;
}

static long
s_test_request (int port, const char *method, const char *path, char **body, char **content_type)
{
    return s_test_request_within (port, method, path, body, content_type, 10);    //  bounds the test
}

//  A STATS object with every part the renderer reads, and the text it must give.
static const char *s_test_stats =
    "{\"version\":\"0.1.0\",\"uptime_ms\":61500,"
    "\"counters\":{\"bad_write\":2,\"too_large\":0},"
    "\"topics\":{\"a\":{\"messages_written\":10,\"bytes_written\":300,\"messages_per_second\":1.5,"
    "\"messages_read\":4,\"bytes_read\":120,\"acks\":10,\"start_offset\":0,\"durable_offset\":10,"
    "\"size_bytes\":4096},"
    "\"q\\\"b\\\\s\\nl\":{\"messages_written\":1,\"durable_offset\":1}},"
    "\"statuses\":{\"front\":{\"100\":10},\"rear\":{\"100\":3,\"101\":1}},"
    "\"fsync\":{\"count\":5,\"sum_us\":1250,\"buckets\":[[100,1],[250,4],[1000000,5]]},"
    "\"log\":{\"topics\":2,\"open_partitions\":2,\"closed_partitions\":0,\"open_fds\":40,"
    "\"fd_limit\":1024},"
    "\"connections\":{\"count\":1,\"queued_bytes\":7,\"dropped\":3,"
    "\"peers\":[{\"socket\":\"rear\",\"peer\":\"00ab\",\"queued_bytes\":7,\"dropped\":3}]},"
    "\"groups\":{\"g\":{\"topic\":\"a\",\"state\":\"stable\",\"generation\":1,"
    "\"members\":[{\"id\":\"m1\"}],"
    "\"partitions\":{\"a\":{\"committed\":4,\"end\":10,\"lag\":6,\"lag_ms\":2500,\"owner\":\"m1\"}},"
    "\"lag\":6,\"lag_ms\":2500}}}";

static const char *s_test_samples [] = {
    "zper_up 1",
    "zper_uptime_seconds 61.5",
    "zper_topic_messages_in_total{topic=\"a\"} 10",
    "zper_topic_messages_in_total{topic=\"q\\\"b\\\\s\\nl\"} 1",
    "zper_topic_bytes_in_total{topic=\"a\"} 300",
    "zper_topic_messages_out_total{topic=\"a\"} 4",
    "zper_topic_bytes_out_total{topic=\"a\"} 120",
    "zper_topic_acks_total{topic=\"a\"} 10",
    "zper_topic_end_offset{topic=\"a\"} 10",
    "zper_topic_end_offset{topic=\"q\\\"b\\\\s\\nl\"} 1",
    "zper_topic_start_offset{topic=\"a\"} 0",
    "zper_topic_size_bytes{topic=\"a\"} 4096",
    "zper_replies_total{socket=\"front\",status=\"100\"} 10",
    "zper_replies_total{socket=\"rear\",status=\"100\"} 3",
    "zper_replies_total{socket=\"rear\",status=\"101\"} 1",
    "zper_errors_total{counter=\"bad_write\"} 2",
    "zper_errors_total{counter=\"too_large\"} 0",
    "zper_fsync_seconds_bucket{le=\"0.0001\"} 1",
    "zper_fsync_seconds_bucket{le=\"0.00025\"} 4",
    "zper_fsync_seconds_bucket{le=\"1\"} 5",
    "zper_fsync_seconds_bucket{le=\"+Inf\"} 5",
    "zper_fsync_seconds_sum 0.00125",
    "zper_fsync_seconds_count 5",
    "zper_log_topics 2",
    "zper_log_open_partitions 2",
    "zper_open_fds 40",
    "zper_fd_limit 1024",
    "zper_connections 1",
    "zper_connection_queued_bytes{socket=\"rear\",peer=\"00ab\"} 7",
    "zper_connection_dropped_total{socket=\"rear\",peer=\"00ab\"} 3",
    "zper_group_members{group=\"g\"} 1",
    "zper_group_lag_messages{group=\"g\",topic=\"a\"} 6",
    "zper_group_lag_seconds{group=\"g\",topic=\"a\"} 2.5",
    "zper_group_committed_offset{group=\"g\",topic=\"a\"} 4",
    NULL
};

//  Families that must be typed, in the order they appear.
static const char *s_test_types [] = {
    "zper_up gauge", "zper_uptime_seconds gauge", "zper_topic_messages_in_total counter",
    "zper_topic_bytes_in_total counter", "zper_topic_messages_out_total counter",
    "zper_topic_bytes_out_total counter", "zper_topic_acks_total counter",
    "zper_topic_end_offset gauge", "zper_topic_start_offset gauge", "zper_topic_size_bytes gauge",
    "zper_replies_total counter", "zper_errors_total counter", "zper_fsync_seconds histogram",
    "zper_log_topics gauge", "zper_log_open_partitions gauge", "zper_open_fds gauge",
    "zper_fd_limit gauge", "zper_connections gauge", "zper_connection_queued_bytes gauge",
    "zper_connection_dropped_total counter", "zper_group_members gauge",
    "zper_group_lag_messages gauge", "zper_group_lag_seconds gauge",
    "zper_group_committed_offset gauge", NULL
};

static void
s_test_renderer (bool verbose)
{
    char *text = zper_metrics_from_stats (s_test_stats);
    assert (text);
    if (verbose)
        printf ("\n%s", text);
    //  Every line, in order: each family's HELP and TYPE, then its samples
    const char **sample = s_test_samples;
    const char **type = s_test_types;
    char *saved = NULL;
    for (char *line = strtok_r (text, "\n", &saved); line; line = strtok_r (NULL, "\n", &saved)) {
        if (strncmp (line, "# HELP ", 7) == 0)
            continue;
        if (strncmp (line, "# TYPE ", 7) == 0) {
            assert (*type && streq (line + 7, *type));
            type++;
            continue;
        }
        if (!*sample || !streq (line, *sample))
            fprintf (stderr, "\nunexpected sample line: '%s' (expected '%s')\n", line,
                     *sample? *sample: "nothing");
        assert (*sample && streq (line, *sample));
        sample++;
    }
    assert (*sample == NULL && *type == NULL);
    free (text);

    //  What STATS lacks is not rendered; a family without samples has no header
    text = zper_metrics_from_stats ("{\"uptime_ms\":999,\"topics\":{}}");
    assert (text);
    assert (streq (text, "# HELP zper_up 1: the broker answered this scrape.\n"
                         "# TYPE zper_up gauge\nzper_up 1\n"
                         "# HELP zper_uptime_seconds Seconds since the broker started.\n"
                         "# TYPE zper_uptime_seconds gauge\nzper_uptime_seconds 0.999\n"));
    free (text);
    assert (zper_metrics_from_stats ("[1]") == NULL);
    assert (zper_metrics_from_stats ("{not json") == NULL);

    zper_metrics_counter_t counters [] = {
        { "zper_test_total", "counter", "A test count.", 42 },
        { "zper_test_level", "gauge", "A test level.", 7 },
    };
    text = zper_metrics_counters (counters, 2);
    assert (streq (text, "# HELP zper_test_total A test count.\n# TYPE zper_test_total counter\n"
                         "zper_test_total 42\n# HELP zper_test_level A test level.\n"
                         "# TYPE zper_test_level gauge\nzper_test_level 7\n"));
    free (text);
}

static void
s_test_listen_check (void)
{
    char reason [S_REASON_MAX];
    assert (zper_metrics_listen_check ("127.0.0.1:9100", reason, sizeof reason) == 0);
    assert (zper_metrics_listen_check ("localhost:0", reason, sizeof reason) == 0);
    assert (zper_metrics_listen_check ("0.0.0.0:65535", reason, sizeof reason) == 0);
    const char *refused [] = { "", "9100", ":9100", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                               "127.0.0.1:91a0", "127.0.0.1:-1", "example.com:80", "[::1]:9100",
                               "127.0.0.1:9100:1", "127.0.0.1:0000009100", NULL };
    for (const char **listen = refused; *listen; listen++) {
        reason [0] = 0;
        assert (zper_metrics_listen_check (*listen, reason, sizeof reason) == -1);
        assert (*reason && !strchr (reason, '\n'));
    }
    assert (zper_metrics_new ("nowhere:80", 4, s_test_render, NULL) == NULL);
    assert (strstr (zper_metrics_reason (), "nowhere:80"));
}

static void
s_test_server (bool verbose)
{
    s_test_state_t state = { 0 };
    zper_metrics_t *metrics = zper_metrics_new ("127.0.0.1:0", 2, s_test_render, &state);
    assert (metrics);
    int port = zper_metrics_port (metrics);
    assert (port > 0);

    char *body, *content_type;
    assert (s_test_request (port, "GET", "/metrics", &body, &content_type) == 200);
    assert (streq (body, "zper_test_scrapes 1\n"));
    assert (content_type && strncmp (content_type, "text/plain; version=0.0.4", 25) == 0);
    zstr_free (&body);
    zstr_free (&content_type);
    //  Rendered again for every scrape
    assert (s_test_request (port, "GET", "/metrics", &body, NULL) == 200);
    assert (streq (body, "zper_test_scrapes 2\n"));
    zstr_free (&body);
    assert (s_test_request (port, "GET", "/nope", NULL, NULL) == 404);
    assert (s_test_request (port, "GET", "/metrics/", NULL, NULL) == 404);
    assert (s_test_request (port, "POST", "/metrics", NULL, NULL) == 405);
    assert (s_test_request (port, "DELETE", "/metrics", NULL, NULL) == 405);
    assert (state.scrapes == 2);
    state.fail = true;
    assert (s_test_request (port, "GET", "/metrics", NULL, NULL) == 500);

    //  The port is taken: the second server says so, in one line naming the address
    char listen [32];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    assert (zper_metrics_new (listen, 2, s_test_render, &state) == NULL);
    if (verbose)
        printf ("\n(expected) %s\n", zper_metrics_reason ());
    assert (strstr (zper_metrics_reason (), listen) && strstr (zper_metrics_reason (), "in use"));
    zper_metrics_destroy (&metrics);
    zper_metrics_destroy (&metrics);

    //  Bound to the given address only: 127.0.0.2 is loopback too, but not it
    metrics = zper_metrics_new ("127.0.0.2:0", 2, s_test_render, &state);
    if (metrics) {          //  some containers have no 127.0.0.2
        state.fail = false;
        assert (s_test_request (zper_metrics_port (metrics), "GET", "/metrics", NULL, NULL) == 0);
        zper_metrics_destroy (&metrics);
    }
}

//  max_clients connections at once: one more waits (MHD stops accepting at the limit)
//  and is served once a connection closes.
static void
s_test_connection_limit (void)
{
    s_test_state_t state = { 0 };
    zper_metrics_t *metrics = zper_metrics_new ("127.0.0.1:0", 1, s_test_render, &state);
    assert (metrics);
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) zper_metrics_port (metrics)) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int idle = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (idle >= 0);
    assert (connect (idle, (struct sockaddr *) &address, sizeof address) == 0);
    //  The idle connection was queued first, so it is the one MHD holds. The 2 s only bound
    //  the wait: a slow machine can make this pass wrongly, never fail wrongly.
    assert (s_test_request_within (zper_metrics_port (metrics), "GET", "/metrics", NULL, NULL, 2) == 0);
    assert (state.scrapes == 0);
    close (idle);
    //  (MHD may also answer the abandoned request, to a closed socket, first)
    assert (s_test_request (zper_metrics_port (metrics), "GET", "/metrics", NULL, NULL) == 200);
    assert (state.scrapes >= 1);
    zper_metrics_destroy (&metrics);
}

void
zper_metrics_test (bool verbose)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_test_renderer (verbose);
    s_test_listen_check ();
    s_test_server (verbose);
    s_test_connection_limit ();
    curl_global_cleanup ();
}
