/*  =========================================================================
    zper_config - parse the seed's config format into zper_config_t

    One table (s_keys) names every key, its aliases, its type and bounds,
    and where it lands in the struct: parsing, "did you mean" suggestions
    and zper_config_print all walk that table, so a new key is one line.
    A key given twice (including through an alias, or cleanup_interval and
    retain_hours, which set the same retention) is an error: a config file
    that says two things means one of them is a mistake.
    ========================================================================= */

#include "zper_config.h"
#include "zper_metrics.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>

#define MS_PER_HOUR (3600LL * 1000)

typedef enum { TYPE_STRING, TYPE_ENDPOINT, TYPE_INT, TYPE_INT64, TYPE_UINT64, TYPE_HOURS, TYPE_VISIBILITY } type_t;

typedef struct {
    const char *name;
    const char *alias;                  //  later name, or NULL
    type_t type;
    size_t field;                       //  offsetof in zper_config_t
    int64_t minimum;
    int64_t maximum;
    int slot;                           //  keys sharing a slot set the same thing
} key_t_;

#define FIELD(member) offsetof (zper_config_t, member)

static const key_t_ s_keys [] = {
    { "base_dir",         NULL, TYPE_STRING,   FIELD (base_dir), 0, 0, 0 },
    { "segment_size",     NULL, TYPE_UINT64,   FIELD (segment_size), 1024, INT64_MAX, 1 },
    { "flush_messages",   NULL, TYPE_UINT64,   FIELD (flush_messages), 0, INT64_MAX, 2 },
    { "flush_interval",   NULL, TYPE_INT64,    FIELD (flush_interval_ms), 1, INT64_MAX, 3 },
    { "cleanup_interval", NULL, TYPE_INT64,    FIELD (retention_ms), 0, INT64_MAX, 4 },
    { "retain_hours",     NULL, TYPE_HOURS,    FIELD (retention_ms), 0, INT64_MAX / MS_PER_HOUR, 4 },
    { "retain_bytes",     NULL, TYPE_INT64,    FIELD (retention_bytes), -1, INT64_MAX, 5 },
    { "max_message",      NULL, TYPE_INT64,    FIELD (max_message), 1,
      (int64_t) ZPER_LOG_RECORD_MAX_BYTES, 6 },
    { "front.bind",       "writer.bind", TYPE_ENDPOINT, FIELD (front_bind), 0, 0, 7 },
    { "front.workers",    "writer.workers", TYPE_INT, FIELD (front_workers), 1, ZPER_CONFIG_WORKERS_MAX, 8 },
    { "front.io_threads", "writer.io_threads", TYPE_INT, FIELD (front_io_threads), 1,
      ZPER_CONFIG_IO_THREADS_MAX, 9 },
    { "rear.bind",        "reader.bind", TYPE_ENDPOINT, FIELD (rear_bind), 0, 0, 10 },
    { "rear.workers",     "reader.workers", TYPE_INT, FIELD (rear_workers), 1, ZPER_CONFIG_WORKERS_MAX, 11 },
    { "rear.io_threads",  "reader.io_threads", TYPE_INT, FIELD (rear_io_threads), 1,
      ZPER_CONFIG_IO_THREADS_MAX, 12 },
    { "ack.bind",         NULL, TYPE_ENDPOINT, FIELD (ack_bind), 0, 0, 13 },
    { "relay.bind",       NULL, TYPE_ENDPOINT, FIELD (relay_bind), 0, 0, 14 },
    { "relay.pub.bind",   NULL, TYPE_ENDPOINT, FIELD (relay_pub_bind), 0, 0, 15 },
    { "receive_hwm",      NULL, TYPE_INT,      FIELD (receive_hwm), 0, INT_MAX, 16 },
    { "send_buffer",      NULL, TYPE_INT,      FIELD (send_buffer), 0, INT_MAX, 17 },
    { "receive_buffer",   NULL, TYPE_INT,      FIELD (receive_buffer), 0, INT_MAX, 18 },
    { "visibility",       NULL, TYPE_VISIBILITY, FIELD (visibility), 0, 0, 19 },
    { "front.turn_bytes", "writer.turn_bytes", TYPE_INT64, FIELD (front_turn_bytes), 1024,
      INT64_MAX, 20 },
    { "front.turn_ms",    "writer.turn_ms", TYPE_INT64, FIELD (front_turn_ms), 1,
      ZPER_HEARTBEAT_INTERVAL_MS, 21 },
    { "front.reply_budget", "writer.reply_budget", TYPE_INT64, FIELD (front_reply_budget), 1024,
      INT64_MAX, 22 },
    { "front.queue_bytes", "writer.queue_bytes", TYPE_INT64, FIELD (front_queue_bytes), 1024,
      INT64_MAX, 29 },
    { "rear.output_budget", "reader.output_budget", TYPE_INT64, FIELD (rear_output_budget), 1024,
      INT64_MAX, 23 },
    { "relay.output_budget", NULL, TYPE_INT64, FIELD (relay_output_budget), 1024, INT64_MAX, 24 },
    { "relay.pub.output_budget", NULL, TYPE_INT64, FIELD (relay_pub_output_budget), 1024,
      INT64_MAX, 25 },
    { "ack.output_budget", NULL, TYPE_INT64, FIELD (ack_output_budget), 1024, INT64_MAX, 26 },
    { "max_open_partitions", NULL, TYPE_INT64, FIELD (max_open_partitions), 1, INT32_MAX, 27 },
    { "max_topics",       NULL, TYPE_INT64,    FIELD (max_topics), 1, INT64_MAX, 28 },
    { "security.curve",   NULL, TYPE_INT,      FIELD (security_curve), 0, 1, 30 },
    { "security.cert",    NULL, TYPE_STRING,   FIELD (security_cert), 0, 0, 31 },
    { "security.keys",    NULL, TYPE_STRING,   FIELD (security_keys), 0, 0, 32 },
    { "security.reload_ms", NULL, TYPE_INT64,  FIELD (security_reload_ms), 1,
      ZPER_SECURITY_RELOAD_MAX_MS, 33 },
    //  Cluster mode (docs/cluster.md); the keys that depend on each other
    //  are checked after the whole text (s_cluster_check)
    { "cluster.etcd",     NULL, TYPE_STRING,   FIELD (cluster_etcd), 0, 0, 34 },
    { "cluster.name",     NULL, TYPE_STRING,   FIELD (cluster_name), 0, 0, 35 },
    { "cluster.node",     NULL, TYPE_INT64,    FIELD (cluster_node), 1, ZPER_CLUSTER_NODE_MAX, 36 },
    { "cluster.replication.bind", NULL, TYPE_ENDPOINT, FIELD (cluster_replication_bind), 0, 0, 37 },
    { "cluster.advertise_host", NULL, TYPE_STRING, FIELD (cluster_advertise_host), 0, 0, 38 },
    { "cluster.lease_ttl", NULL, TYPE_INT64,   FIELD (cluster_lease_ttl), ZPER_LEASE_TTL_MIN_S,
      ZPER_LEASE_TTL_MAX_S, 39 },
    { "cluster.poll_ms",  NULL, TYPE_INT64,    FIELD (cluster_poll_ms), 1, INT32_MAX, 40 },
    { "cluster.replica_lag_ms", NULL, TYPE_INT64, FIELD (cluster_replica_lag_ms), 1, INT32_MAX, 41 },
    { "cluster.fetch_wait_ms", NULL, TYPE_INT64, FIELD (cluster_fetch_wait_ms), 1, INT32_MAX, 42 },
    { "cluster.fetch_bytes", NULL, TYPE_INT64, FIELD (cluster_fetch_bytes), 1024,
      (int64_t) ZPER_LOG_RECORD_MAX_BYTES, 43 },
    { "cluster.default_partitions", NULL, TYPE_INT64, FIELD (cluster_default_partitions), 1,
      ZPER_CLUSTER_PARTITIONS_MAX, 44 },
    { "cluster.default_replicas", NULL, TYPE_INT64, FIELD (cluster_default_replicas), 1,
      ZPER_CLUSTER_REPLICAS_MAX, 45 },
    { "cluster.max_partitions", NULL, TYPE_INT64, FIELD (cluster_max_partitions), 1, INT32_MAX, 46 },
    { "cluster.etcd_timeout_ms", NULL, TYPE_INT64, FIELD (cluster_etcd_timeout_ms), 1, INT32_MAX, 47 },
    //  Consumer groups and metrics
    { "groups.max_groups", NULL, TYPE_INT64,   FIELD (groups_max_groups), 1, INT32_MAX, 48 },
    { "groups.max_members", NULL, TYPE_INT64,  FIELD (groups_max_members), 1, INT32_MAX, 49 },
    { "groups.max_partitions", NULL, TYPE_INT64, FIELD (groups_max_partitions), 1, 65536, 50 },
    { "groups.max_offsets", NULL, TYPE_INT64,  FIELD (groups_max_offsets), 1, INT32_MAX, 51 },
    { "groups.min_session_ms", NULL, TYPE_INT64, FIELD (groups_min_session_ms), 1, INT32_MAX, 52 },
    { "groups.max_session_ms", NULL, TYPE_INT64, FIELD (groups_max_session_ms), 1, INT32_MAX, 53 },
    { "metrics.listen",   NULL, TYPE_STRING,   FIELD (metrics_listen), 0, 0, 54 },
    { "metrics.max_clients", NULL, TYPE_INT64, FIELD (metrics_max_clients), 1, 1024, 55 },
    { "metrics.max_peers", NULL, TYPE_INT64,   FIELD (metrics_max_peers), 0, 100000, 56 },
};
#define KEY_COUNT (sizeof s_keys / sizeof s_keys [0])
#define SLOT_COUNT 57

void
zper_config_init (zper_config_t *config)
{
    memset (config, 0, sizeof *config);
    snprintf (config->base_dir, sizeof config->base_dir, "%s", ZPER_DEFAULT_BASE_DIR);
    config->segment_size = ZPER_DEFAULT_SEGMENT_SIZE;
    config->flush_messages = ZPER_DEFAULT_FLUSH_MESSAGES;
    config->flush_interval_ms = ZPER_DEFAULT_FLUSH_INTERVAL_MS;
    config->retention_ms = ZPER_DEFAULT_CLEANUP_INTERVAL_MS;
    config->retention_bytes = ZPER_DEFAULT_RETENTION_BYTES;
    config->max_message = ZPER_DEFAULT_MAX_MESSAGE;
    snprintf (config->front_bind, sizeof config->front_bind, "%s", ZPER_DEFAULT_FRONT_BIND);
    config->front_workers = ZPER_DEFAULT_FRONT_WORKERS;
    config->front_io_threads = ZPER_DEFAULT_IO_THREADS;
    snprintf (config->rear_bind, sizeof config->rear_bind, "%s", ZPER_DEFAULT_REAR_BIND);
    config->rear_workers = ZPER_DEFAULT_REAR_WORKERS;
    config->rear_io_threads = ZPER_DEFAULT_IO_THREADS;
    snprintf (config->ack_bind, sizeof config->ack_bind, "%s", ZPER_DEFAULT_ACK_BIND);
    snprintf (config->relay_bind, sizeof config->relay_bind, "%s", ZPER_DEFAULT_RELAY_BIND);
    snprintf (config->relay_pub_bind, sizeof config->relay_pub_bind, "%s",
              ZPER_DEFAULT_RELAY_PUB_BIND);
    config->receive_hwm = ZPER_DEFAULT_RECEIVE_HWM;
    config->send_buffer = ZPER_DEFAULT_SOCKET_BUFFER;
    config->receive_buffer = ZPER_DEFAULT_SOCKET_BUFFER;
    config->visibility = ZPER_DEFAULT_VISIBILITY;
    config->max_open_partitions = ZPER_DEFAULT_MAX_OPEN_PARTITIONS;
    config->max_topics = ZPER_DEFAULT_MAX_TOPICS;
    config->front_turn_bytes = ZPER_DEFAULT_FRONT_TURN_BYTES;
    config->front_turn_ms = ZPER_DEFAULT_FRONT_TURN_MS;
    config->front_reply_budget = ZPER_DEFAULT_FRONT_REPLY_BUDGET;
    config->front_queue_bytes = ZPER_DEFAULT_FRONT_QUEUE_BYTES;
    config->rear_output_budget = ZPER_DEFAULT_REAR_OUTPUT_BUDGET;
    config->relay_output_budget = ZPER_DEFAULT_RELAY_OUTPUT_BUDGET;
    config->relay_pub_output_budget = ZPER_DEFAULT_RELAY_PUB_OUTPUT_BUDGET;
    config->ack_output_budget = ZPER_DEFAULT_ACK_OUTPUT_BUDGET;
    config->security_curve = ZPER_DEFAULT_SECURITY_CURVE;
    config->security_reload_ms = ZPER_SECURITY_RELOAD_MS;
    snprintf (config->cluster_name, sizeof config->cluster_name, "%s", ZPER_DEFAULT_CLUSTER_NAME);
    snprintf (config->cluster_replication_bind, sizeof config->cluster_replication_bind, "%s",
              ZPER_DEFAULT_REPLICATION_BIND);
    config->cluster_lease_ttl = ZPER_DEFAULT_LEASE_TTL_S;
    config->cluster_poll_ms = ZPER_DEFAULT_CLUSTER_POLL_MS;
    config->cluster_replica_lag_ms = ZPER_DEFAULT_REPLICA_LAG_MS;
    config->cluster_fetch_wait_ms = ZPER_DEFAULT_FETCH_WAIT_MS;
    config->cluster_fetch_bytes = ZPER_DEFAULT_FETCH_BYTES;
    config->cluster_default_partitions = ZPER_DEFAULT_CLUSTER_PARTITIONS;
    config->cluster_default_replicas = ZPER_DEFAULT_CLUSTER_REPLICAS;
    config->cluster_max_partitions = ZPER_DEFAULT_CLUSTER_MAX_PARTITIONS;
    config->cluster_etcd_timeout_ms = ZPER_DEFAULT_ETCD_TIMEOUT_MS;
    config->groups_max_groups = ZPER_DEFAULT_GROUPS_MAX_GROUPS;
    config->groups_max_members = ZPER_DEFAULT_GROUPS_MAX_MEMBERS;
    config->groups_max_partitions = ZPER_DEFAULT_GROUPS_MAX_PARTITIONS;
    config->groups_max_offsets = ZPER_DEFAULT_GROUPS_MAX_OFFSETS;
    config->groups_min_session_ms = ZPER_DEFAULT_GROUPS_MIN_SESSION_MS;
    config->groups_max_session_ms = ZPER_DEFAULT_GROUPS_MAX_SESSION_MS;
    snprintf (config->metrics_listen, sizeof config->metrics_listen, "%s", ZPER_DEFAULT_METRICS_LISTEN);
    config->metrics_max_clients = ZPER_DEFAULT_METRICS_MAX_CLIENTS;
    config->metrics_max_peers = ZPER_DEFAULT_METRICS_MAX_PEERS;
}

//  Edit distance, for "did you mean": keys are short, so the quadratic
//  table on the stack is fine.
static size_t
s_distance (const char *left, const char *right)
{
    size_t left_length = strlen (left), right_length = strlen (right);
    if (left_length > 64 || right_length > 64)
        return SIZE_MAX;
    size_t row [65];
    for (size_t column = 0; column <= right_length; column++)
        row [column] = column;
    for (size_t line = 1; line <= left_length; line++) {
        size_t diagonal = row [0];
        row [0] = line;
        for (size_t column = 1; column <= right_length; column++) {
            size_t above = row [column];
            size_t cost = left [line - 1] == right [column - 1]? 0: 1;
            size_t best = diagonal + cost;
            if (above + 1 < best)
                best = above + 1;
            if (row [column - 1] + 1 < best)
                best = row [column - 1] + 1;
            row [column] = best;
            diagonal = above;
        }
    }
    return row [right_length];
}

//  Is every character of abbreviation found in name, in order?
static bool
s_subsequence (const char *abbreviation, const char *name)
{
    for (; *name && *abbreviation; name++)
        if (*name == *abbreviation)
            abbreviation++;
    return *abbreviation == 0;
}

//  A near miss: a typo (at most 2 edits) or an abbreviation (flush_msgs).
static const char *
s_suggestion (const char *key)
{
    const char *best = NULL;
    size_t best_distance = SIZE_MAX;
    for (size_t index = 0; index < KEY_COUNT; index++) {
        const char *names [2] = { s_keys [index].name, s_keys [index].alias };
        for (int which = 0; which < 2; which++) {
            if (!names [which])
                continue;
            size_t distance = s_distance (key, names [which]);
            bool near = distance <= 2
                     || (s_subsequence (key, names [which]) && distance <= strlen (names [which]) / 2);
            if (near && distance < best_distance) {
                best_distance = distance;
                best = names [which];
            }
        }
    }
    return best;
}

static const key_t_ *
s_key_find (const char *name)
{
    for (size_t index = 0; index < KEY_COUNT; index++)
        if (streq (s_keys [index].name, name)
        || (s_keys [index].alias && streq (s_keys [index].alias, name)))
            return &s_keys [index];
    return NULL;
}

//  Parse a decimal integer with an optional Java long suffix. Returns 0 or
//  -1 (not a number, or out of int64 range).
static int
s_parse_integer (const char *text, int64_t *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (end == text || errno == ERANGE || !(isdigit ((unsigned char) *text) || *text == '-'))
        return -1;
    if (*end == 'L' || *end == 'l')
        end++;
    if (*end)
        return -1;
    *value = parsed;
    return 0;
}

static bool
s_endpoint_valid (const char *text)
{
    const char *schemes [] = { "tcp://", "ipc://", "inproc://", "ws://", NULL };
    for (int index = 0; schemes [index]; index++)
        if (strncmp (text, schemes [index], strlen (schemes [index])) == 0)
            return strlen (text) > strlen (schemes [index]);
    return false;
}

//  Store value under key; on failure write the problem (no location) to
//  problem and return -1.
static int
s_key_set (zper_config_t *config, const key_t_ *key, const char *value, char *problem,
           size_t problem_size)
{
    char *field = (char *) config + key->field;
    if (key->type == TYPE_STRING || key->type == TYPE_ENDPOINT) {
        if (!*value || strlen (value) >= ZPER_CONFIG_STRING_MAX) {
            snprintf (problem, problem_size, "%s must be a non-empty string under %d bytes",
                      key->name, ZPER_CONFIG_STRING_MAX);
            return -1;
        }
        if (key->type == TYPE_ENDPOINT && !s_endpoint_valid (value)) {
            snprintf (problem, problem_size,
                      "%s: '%.200s' is not an endpoint (expected tcp://host:port or ipc://path)",
                      key->name, value);
            return -1;
        }
        snprintf (field, ZPER_CONFIG_STRING_MAX, "%s", value);
        return 0;
    }
    if (key->type == TYPE_VISIBILITY) {
        if (streq (value, "written"))
            *(zper_visibility_t *) field = ZPER_VISIBILITY_WRITTEN;
        else
        if (streq (value, "durable"))
            *(zper_visibility_t *) field = ZPER_VISIBILITY_DURABLE;
        else {
            snprintf (problem, problem_size, "%s: '%.64s' is neither 'written' nor 'durable'",
                      key->name, value);
            return -1;
        }
        return 0;
    }
    int64_t number;
    if (s_parse_integer (value, &number) || number < key->minimum || number > key->maximum) {
        snprintf (problem, problem_size, "%s: '%.64s' is not an integer in [%lld, %lld]",
                  key->name, value, (long long) key->minimum, (long long) key->maximum);
        return -1;
    }
    switch (key->type) {
        case TYPE_INT:    *(int *) field = (int) number; break;
        case TYPE_INT64:
            if (key->field == FIELD (max_message))
                *(size_t *) field = (size_t) number;
            else
                *(int64_t *) field = number;
            break;
        case TYPE_UINT64: *(uint64_t *) field = (uint64_t) number; break;
        case TYPE_HOURS:  *(int64_t *) field = number * MS_PER_HOUR; break;
        default:          assert (false);
    }
    return 0;
}

//  Cut a value out of the text after '=': strip blanks and a trailing
//  comment; a quoted string keeps '#' and blanks and ends at its quote.
//  Returns 0 or -1 with problem set.
static int
s_value_extract (char *text, char **value, char *problem, size_t problem_size)
{
    while (isspace ((unsigned char) *text))
        text++;
    if (*text == '"') {
        char *close = strchr (text + 1, '"');
        if (!close) {
            snprintf (problem, problem_size, "unterminated quoted string");
            return -1;
        }
        char *rest = close + 1;
        while (isspace ((unsigned char) *rest))
            rest++;
        if (*rest && *rest != '#') {
            snprintf (problem, problem_size, "unexpected text after the quoted value: '%.64s'", rest);
            return -1;
        }
        *close = 0;
        *value = text + 1;
        return 0;
    }
    char *comment = strchr (text, '#');
    if (comment)
        *comment = 0;
    char *end = text + strlen (text);
    while (end > text && isspace ((unsigned char) end [-1]))
        *--end = 0;
    //  A quote inside a bare word is a typo, and no config text could print it back.
    if (strchr (text, '"')) {
        snprintf (problem, problem_size, "a quote inside an unquoted value: '%.64s'", text);
        return -1;
    }
    *value = text;
    return 0;
}

//  Parse one line (modified in place). Returns 0 or -1 with problem set.
static int
s_line_parse (zper_config_t *config, char *line, int *slot_lines, int line_number,
              char *problem, size_t problem_size)
{
    char *cursor = line;
    while (isspace ((unsigned char) *cursor))
        cursor++;
    if (*cursor == 0 || *cursor == '#')
        return 0;
    char *equals = strchr (cursor, '=');
    if (!equals) {
        snprintf (problem, problem_size, "expected 'key = value'");
        return -1;
    }
    *equals = 0;
    char *key_end = equals;
    while (key_end > cursor && isspace ((unsigned char) key_end [-1]))
        *--key_end = 0;
    const key_t_ *key = s_key_find (cursor);
    if (!key) {
        const char *suggestion = *cursor? s_suggestion (cursor): NULL;
        if (suggestion)
            snprintf (problem, problem_size, "unknown key '%.64s' (did you mean '%s'?)", cursor,
                      suggestion);
        else
            snprintf (problem, problem_size, "unknown key '%.64s'", cursor);
        return -1;
    }
    if (slot_lines [key->slot]) {
        snprintf (problem, problem_size, "'%.64s' sets what line %d already set", cursor,
                  slot_lines [key->slot]);
        return -1;
    }
    char *value;
    if (s_value_extract (equals + 1, &value, problem, problem_size)
    ||  s_key_set (config, key, value, problem, problem_size))
        return -1;
    slot_lines [key->slot] = line_number;
    return 0;
}

//  Where an endpoint's host starts and ends (tcp:// and ws:// only: the
//  others have no host). Returns false for other schemes.
static bool
s_endpoint_host (const char *endpoint, const char **host, const char **host_end)
{
    const char *schemes [] = { "tcp://", "ws://", NULL };
    for (int index = 0; schemes [index]; index++)
        if (strncmp (endpoint, schemes [index], strlen (schemes [index])) == 0) {
            *host = endpoint + strlen (schemes [index]);
            //  The port follows the last ':' (an IPv6 host holds some)
            *host_end = strrchr (*host, ':');
            if (!*host_end)
                *host_end = *host + strlen (*host);
            return true;
        }
    return false;
}

//  The keys of cluster mode that only make sense together: a node needs
//  an id, and its endpoints go into etcd for other nodes and clients to
//  dial, so a wildcard bind needs the host they should dial instead.
//  Returns 0 or -1 with problem set.
static int
s_cluster_check (const zper_config_t *config, char *problem, size_t problem_size)
{
    if (!*config->cluster_etcd)
        return 0;
    if (config->cluster_node < 1 || config->cluster_node > ZPER_CLUSTER_NODE_MAX) {
        snprintf (problem, problem_size, "cluster.etcd is set but cluster.node is not: give "
                  "this node an id 1..%d unique in its cluster", ZPER_CLUSTER_NODE_MAX);
        return -1;
    }
    if (*config->cluster_advertise_host)
        return 0;
    struct { const char *key; const char *endpoint; } binds [] = {
        { "front.bind", config->front_bind }, { "rear.bind", config->rear_bind },
        { "relay.bind", config->relay_bind }, { "ack.bind", config->ack_bind },
        { "cluster.replication.bind", config->cluster_replication_bind }
    };
    for (size_t index = 0; index < sizeof binds / sizeof binds [0]; index++) {
        const char *host, *host_end;
        if (!s_endpoint_host (binds [index].endpoint, &host, &host_end))
            continue;
        size_t length = (size_t) (host_end - host);
        if ((length == 1 && *host == '*') || (length == 7 && strncmp (host, "0.0.0.0", 7) == 0)) {
            snprintf (problem, problem_size, "%s = %.200s binds every interface: set "
                      "cluster.advertise_host to the host other nodes and clients reach this "
                      "node at", binds [index].key, binds [index].endpoint);
            return -1;
        }
    }
    return 0;
}

//  metrics.listen is "" (off) or host:port; checked here so that a typo
//  stops zperd at start-up with the file's name, not at the first scrape.
static int
s_metrics_check (const zper_config_t *config, char *problem, size_t problem_size)
{
    char reason [ZPER_CONFIG_LINE_MAX];
    if (!*config->metrics_listen
    ||  zper_metrics_listen_check (config->metrics_listen, reason, sizeof reason) == 0)
        return 0;
    snprintf (problem, problem_size, "metrics.listen: %.400s", reason);
    return -1;
}

int
zper_config_advertised (const zper_config_t *config, const char *endpoint, char *out,
                        size_t out_size)
{
    const char *host, *host_end;
    int written;
    if (*config->cluster_advertise_host && s_endpoint_host (endpoint, &host, &host_end))
        written = snprintf (out, out_size, "%.*s%s%s", (int) (host - endpoint), endpoint,
                            config->cluster_advertise_host, host_end);
    else
        written = snprintf (out, out_size, "%s", endpoint);
    return written < 0 || (size_t) written >= out_size? -1: 0;
}

int
zper_config_parse (zper_config_t *config, const char *name, const char *text,
                   char *error, size_t error_size)
{
    int slot_lines [SLOT_COUNT] = { 0 };
    char line [ZPER_CONFIG_LINE_MAX];
    char problem [ZPER_CONFIG_LINE_MAX];
    int line_number = 0;
    const char *cursor = text;
    while (*cursor) {
        line_number++;
        const char *end = strchr (cursor, '\n');
        size_t length = end? (size_t) (end - cursor): strlen (cursor);
        if (length >= sizeof line) {
            snprintf (error, error_size, "%s:%d: line longer than %d bytes", name, line_number,
                      ZPER_CONFIG_LINE_MAX - 1);
            return -1;
        }
        memcpy (line, cursor, length);
        line [length] = 0;
        if (length && line [length - 1] == '\r')
            line [length - 1] = 0;
        if (s_line_parse (config, line, slot_lines, line_number, problem, sizeof problem)) {
            snprintf (error, error_size, "%s:%d: %s", name, line_number, problem);
            return -1;
        }
        cursor = end? end + 1: cursor + length;
    }
    if (s_cluster_check (config, problem, sizeof problem)) {
        snprintf (error, error_size, "%s: %s", name, problem);
        return -1;
    }
    if (s_metrics_check (config, problem, sizeof problem)) {
        snprintf (error, error_size, "%s: %s", name, problem);
        return -1;
    }
    if (config->groups_min_session_ms > config->groups_max_session_ms) {
        snprintf (error, error_size, "%s: groups.min_session_ms (%lld) is above "
                  "groups.max_session_ms (%lld): lower the one or raise the other", name,
                  (long long) config->groups_min_session_ms,
                  (long long) config->groups_max_session_ms);
        return -1;
    }
    return 0;
}

int
zper_config_load (zper_config_t *config, const char *path, char *error, size_t error_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (error, error_size, "%s: cannot read: %s", path, strerror (errno));
        return -1;
    }
    char *text = (char *) zmalloc (ZPER_CONFIG_FILE_MAX + 1);
    size_t size = fread (text, 1, ZPER_CONFIG_FILE_MAX + 1, file);
    bool failed = ferror (file);
    fclose (file);
    int rc = -1;
    if (failed)
        snprintf (error, error_size, "%s: cannot read: %s", path, strerror (errno));
    else
    if (size > ZPER_CONFIG_FILE_MAX)
        snprintf (error, error_size, "%s: larger than %d bytes: not a config file?", path,
                  ZPER_CONFIG_FILE_MAX);
    else
    if (memchr (text, 0, size))
        snprintf (error, error_size, "%s: contains a NUL byte: not a config file?", path);
    else
        rc = zper_config_parse (config, path, text, error, error_size);
    freen (text);
    return rc;
}

void
zper_config_log_config (const zper_config_t *config, zper_log_config_t *log_config)
{
    zper_log_config_init (log_config);
    log_config->base_dir = config->base_dir;
    log_config->segment_size = config->segment_size;
    log_config->flush_messages = config->flush_messages;
    log_config->flush_interval_ms = config->flush_interval_ms;
    log_config->retention_ms = config->retention_ms;
    log_config->retention_bytes = config->retention_bytes;
    log_config->max_message = config->max_message;
    log_config->visibility = config->visibility;
    log_config->max_open_partitions = (size_t) config->max_open_partitions;
    log_config->max_topics = (size_t) config->max_topics;
}

void
zper_config_inproc (zper_config_t *config, const char *prefix)
{
    snprintf (config->front_bind, ZPER_CONFIG_STRING_MAX, "inproc://%s-front", prefix);
    snprintf (config->rear_bind, ZPER_CONFIG_STRING_MAX, "inproc://%s-rear", prefix);
    snprintf (config->ack_bind, ZPER_CONFIG_STRING_MAX, "inproc://%s-ack", prefix);
    snprintf (config->relay_bind, ZPER_CONFIG_STRING_MAX, "inproc://%s-relay", prefix);
    snprintf (config->relay_pub_bind, ZPER_CONFIG_STRING_MAX, "inproc://%s-relay-pub", prefix);
}

void
zper_config_print (const zper_config_t *config, FILE *stream)
{
    for (size_t index = 0; index < KEY_COUNT; index++) {
        const key_t_ *key = &s_keys [index];
        const char *field = (const char *) config + key->field;
        switch (key->type) {
            case TYPE_STRING:
            case TYPE_ENDPOINT:
                //  An unset path (security.cert) has no value a config file could give
                if (*field)
                    fprintf (stream, "%s = \"%s\"\n", key->name, field);
                else
                    fprintf (stream, "# %s is not set\n", key->name);
                break;
            case TYPE_INT:      fprintf (stream, "%s = %d\n", key->name, *(const int *) field); break;
            case TYPE_UINT64:
                fprintf (stream, "%s = %llu\n", key->name,
                         (unsigned long long) *(const uint64_t *) field);
                break;
            case TYPE_INT64:
                if (key->field == FIELD (cluster_node) && config->cluster_node == 0) {
                    fprintf (stream, "# %s is not set\n", key->name);
                    break;
                }
                fprintf (stream, "%s = %lld\n", key->name, key->field == FIELD (max_message)
                         ? (long long) *(const size_t *) field: (long long) *(const int64_t *) field);
                break;
            case TYPE_HOURS:    break;  //  shown as cleanup_interval, its slot's ms form
            case TYPE_VISIBILITY:
                fprintf (stream, "%s = %s\n", key->name,
                         *(const zper_visibility_t *) field == ZPER_VISIBILITY_WRITTEN
                         ? "written": "durable");
                break;
        }
    }
}

//  --------------------------------------------------------------------------
//  Selftest

static int
s_try (zper_config_t *config, const char *text, char *error)
{
    zper_config_init (config);
    return zper_config_parse (config, "test.conf", text, error, 256);
}

void
zper_config_test (bool verbose)
{
    zper_config_t config;
    char error [256];

    //  The seed's own example, verbatim
    const char *seed =
        "# common configuration\n"
        "base_dir = \"/data/zper\"         # data store base directory \n"
        "segment_size = 536870912        # segment file size 512M\n"
        "flush_messages = 10000          # flush every N messages\n"
        "flush_interval = 1000           # flush every N milliseconds\n"
        "cleanup_interval = 604800000L   # cleanuy segement every 1 week\n"
        "\n"
        "# front configuration\n"
        "front.bind = tcp://*:5555       # front bind address\n"
        "front.workers = 3               # number of worker threads\n"
        "front.io_threads = 1            # number of io threads\n"
        "rear.bind = tcp://*:5556\r\n"
        "rear.workers = 3                # number of worker threads\n"
        "rear.io_threads = 1             # number of io threads\n"
        "ack.bind = tcp://*:5557";
    assert (s_try (&config, seed, error) == 0);
    assert (streq (config.base_dir, "/data/zper"));
    assert (config.segment_size == 536870912ULL);
    assert (config.retention_ms == 604800000LL);
    assert (streq (config.front_bind, "tcp://*:5555"));
    assert (streq (config.rear_bind, "tcp://*:5556"));
    assert (streq (config.ack_bind, "tcp://*:5557"));
    assert (config.front_workers == 3 && config.rear_io_threads == 1);

    //  Later names, hours, quoted '#'
    assert (s_try (&config, "writer.workers = 5\nreader.bind = \"tcp://127.0.0.1:7\"\n"
                   "retain_hours = 2\nbase_dir = \"a # b\"\n", error) == 0);
    assert (config.front_workers == 5 && streq (config.rear_bind, "tcp://127.0.0.1:7"));
    assert (config.retention_ms == 2 * MS_PER_HOUR && streq (config.base_dir, "a # b"));

    //  Errors: one line naming file, line and problem
    assert (s_try (&config, "\nflush_msgs = 3\n", error) == -1);
    assert (streq (error, "test.conf:2: unknown key 'flush_msgs' (did you mean 'flush_messages'?)"));
    assert (s_try (&config, "wibble = 3\n", error) == -1);
    assert (streq (error, "test.conf:1: unknown key 'wibble'"));
    assert (s_try (&config, "front.workers = 0\n", error) == -1);
    assert (strstr (error, "test.conf:1: front.workers: '0' is not an integer"));
    assert (s_try (&config, "front.workers = 3x\n", error) == -1);
    //  A worker's turn must end well within a heartbeat interval
    assert (s_try (&config, "front.turn_ms = 1001\n", error) == -1);
    assert (s_try (&config, "front.turn_bytes = 10\n", error) == -1);
    assert (s_try (&config, "writer.reply_budget = 1048576\nfront.queue_bytes = 2048\n", error) == 0);
    assert (config.front_reply_budget == 1048576 && config.front_queue_bytes == 2048);
    assert (s_try (&config, "segment_size = -5\n", error) == -1);
    assert (s_try (&config, "groups.min_session_ms = 5000\ngroups.max_session_ms = 4000\n",
                   error) == -1);
    assert (strstr (error, "test.conf: groups.min_session_ms (5000) is above"));
    assert (s_try (&config, "groups.min_session_ms = 4000\ngroups.max_session_ms = 4000\n",
                   error) == 0);
    assert (s_try (&config, "segment_size = 99999999999999999999999\n", error) == -1);
    assert (s_try (&config, "front.bind = localhost:5555\n", error) == -1);
    assert (strstr (error, "not an endpoint"));
    assert (s_try (&config, "base_dir = \"open\n", error) == -1);
    assert (strstr (error, "unterminated"));
    assert (s_try (&config, "base_dir = \"a\" b\n", error) == -1);
    assert (s_try (&config, "just words\n", error) == -1);
    assert (strstr (error, "expected 'key = value'"));
    assert (s_try (&config, "base_dir =\n", error) == -1);
    assert (s_try (&config, "front.bind = tcp://*:1\nwriter.bind = tcp://*:2\n", error) == -1);
    assert (streq (error, "test.conf:2: 'writer.bind' sets what line 1 already set"));
    assert (s_try (&config, "cleanup_interval = 5\nretain_hours = 1\n", error) == -1);
    assert (s_try (&config, "= 5\n", error) == -1);
    assert (streq (error, "test.conf:1: unknown key ''"));
    assert (s_try (&config, "visibility = synced\n", error) == -1);
    assert (streq (error, "test.conf:1: visibility: 'synced' is neither 'written' nor 'durable'"));
    assert (s_try (&config, "visibility = durable\n", error) == 0
            && config.visibility == ZPER_VISIBILITY_DURABLE);

    //  Files
    assert (zper_config_load (&config, "no-such.conf", error, sizeof error) == -1);
    assert (strstr (error, "no-such.conf: cannot read"));
    FILE *file = fopen ("good.conf", "w");
    assert (file);
    fprintf (file, "max_message = 1024\nrelay.pub.bind = ipc://relay\nvisibility = durable\n");
    fclose (file);
    zper_config_init (&config);
    assert (zper_config_load (&config, "good.conf", error, sizeof error) == 0);
    assert (config.max_message == 1024 && streq (config.relay_pub_bind, "ipc://relay"));

    zper_config_inproc (&config, "test");
    assert (streq (config.relay_pub_bind, "inproc://test-relay-pub"));
    zper_log_config_t log_config;
    zper_config_log_config (&config, &log_config);
    assert (log_config.max_message == 1024 && streq (log_config.base_dir, config.base_dir));
    assert (log_config.visibility == ZPER_VISIBILITY_DURABLE);
    if (verbose)
        zper_config_print (&config, stdout);

    //  Security: off by default; its paths are plain strings, checked when
    //  the broker opens (zper_broker_open), not here
    zper_config_init (&config);
    assert (config.security_curve == 0 && config.security_reload_ms == ZPER_SECURITY_RELOAD_MS);
    assert (*config.security_cert == 0 && *config.security_keys == 0);
    assert (s_try (&config, "security.curve = 1\nsecurity.cert = \"/etc/zper/broker\"\n"
                   "security.keys = /etc/zper/keys\nsecurity.reload_ms = 250\n", error) == 0);
    assert (config.security_curve == 1 && streq (config.security_cert, "/etc/zper/broker"));
    assert (streq (config.security_keys, "/etc/zper/keys") && config.security_reload_ms == 250);
    assert (s_try (&config, "security.curve = 2\n", error) == -1);
    assert (s_try (&config, "security.reload_ms = 0\n", error) == -1);
    assert (s_try (&config, "security.curv = 1\n", error) == -1);
    assert (strstr (error, "did you mean 'security.curve'"));

    //  Cluster mode: off by default, every key with its default
    zper_config_init (&config);
    assert (*config.cluster_etcd == 0 && config.cluster_node == 0);
    assert (streq (config.cluster_name, ZPER_DEFAULT_CLUSTER_NAME));
    assert (streq (config.cluster_replication_bind, ZPER_DEFAULT_REPLICATION_BIND));
    assert (config.cluster_lease_ttl == ZPER_DEFAULT_LEASE_TTL_S
            && config.cluster_etcd_timeout_ms == ZPER_DEFAULT_ETCD_TIMEOUT_MS
            && config.cluster_default_partitions == ZPER_DEFAULT_CLUSTER_PARTITIONS);
    //  A single node with wildcard binds needs no advertised host
    assert (s_try (&config, "front.bind = tcp://*:5555\nrear.bind = tcp://0.0.0.0:5556\n",
                   error) == 0);
    assert (s_try (&config, "cluster.etcd = http://127.0.0.1:2379\ncluster.node = 7\n"
                   "cluster.name = east\ncluster.lease_ttl = 2\ncluster.poll_ms = 50\n"
                   "cluster.replication.bind = tcp://127.0.0.1:7000\n"
                   "cluster.default_replicas = 2\ncluster.fetch_bytes = 4096\n", error) == 0);
    assert (config.cluster_node == 7 && streq (config.cluster_name, "east"));
    assert (config.cluster_lease_ttl == 2 && config.cluster_poll_ms == 50);
    assert (config.cluster_default_replicas == 2 && config.cluster_fetch_bytes == 4096);
    assert (streq (config.cluster_replication_bind, "tcp://127.0.0.1:7000"));
    assert (s_try (&config, "cluster.etcd = http://127.0.0.1:2379\n", error) == -1);
    assert (strstr (error, "test.conf: cluster.etcd is set but cluster.node is not"));
    assert (s_try (&config, "cluster.node = 0\n", error) == -1);
    assert (s_try (&config, "cluster.node = 65536\n", error) == -1);
    assert (s_try (&config, "cluster.lease_ttl = 1\n", error) == -1);
    assert (strstr (error, "cluster.lease_ttl: '1' is not an integer in [2, 60]"));
    assert (s_try (&config, "cluster.lease_ttl = 61\n", error) == -1);
    assert (s_try (&config, "cluster.replication.bind = 5560\n", error) == -1);
    //  Metrics: off by default; the address must be host:port
    zper_config_init (&config);
    assert (*config.metrics_listen == 0);
    assert (s_try (&config, "metrics.listen = 127.0.0.1:9100\nmetrics.max_clients = 4\n", error) == 0);
    assert (streq (config.metrics_listen, "127.0.0.1:9100") && config.metrics_max_clients == 4);
    assert (s_try (&config, "metrics.listen = 9100\n", error) == -1);
    assert (strstr (error, "test.conf: metrics.listen: '9100' is not host:port"));
    assert (s_try (&config, "metrics.listen = example.com:9100\n", error) == -1);
    assert (s_try (&config, "metrics.max_clients = 0\n", error) == -1);
    const char *wildcard = "cluster.etcd = http://127.0.0.1:2379\ncluster.node = 1\n";
    char text [512];
    const char *binds [] = { "front.bind = tcp://*:5555", "rear.bind = tcp://0.0.0.0:5556",
                             "relay.bind = tcp://*:5558", "ack.bind = tcp://0.0.0.0:5557",
                             "cluster.replication.bind = tcp://*:5560", NULL };
    for (int index = 0; binds [index]; index++) {
        snprintf (text, sizeof text, "%s%s\n", wildcard, binds [index]);
        assert (s_try (&config, text, error) == -1);
        assert (strstr (error, "set cluster.advertise_host"));
        snprintf (text, sizeof text, "%s%s\ncluster.advertise_host = node1.example\n", wildcard,
                  binds [index]);
        assert (s_try (&config, text, error) == 0);
    }
    //  The advertised endpoints: the host replaced, the rest kept
    char endpoint [64];
    assert (zper_config_advertised (&config, "tcp://*:5560", endpoint, sizeof endpoint) == 0);
    assert (streq (endpoint, "tcp://node1.example:5560"));
    assert (zper_config_advertised (&config, "ws://0.0.0.0:80/zper", endpoint,
                                    sizeof endpoint) == 0);
    assert (streq (endpoint, "ws://node1.example:80/zper"));
    assert (zper_config_advertised (&config, "ipc://zper", endpoint, sizeof endpoint) == 0);
    assert (streq (endpoint, "ipc://zper"));
    assert (zper_config_advertised (&config, "tcp://*:5560", endpoint, 10) == -1);
    zper_config_init (&config);
    assert (zper_config_advertised (&config, "tcp://127.0.0.1:1", endpoint, sizeof endpoint) == 0);
    assert (streq (endpoint, "tcp://127.0.0.1:1"));
}
