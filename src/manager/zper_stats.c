/*  =========================================================================
    zper_stats - broker counters and per-topic rates

    Counts live in a hash of topic -> counts under one mutex. Rates are
    deltas between two manager ticks, so a reader of STATS sees the rate of
    the last full interval, not a noisy instant. Offsets and sizes are not
    duplicated here: the JSON reads them from the log's bounds when asked,
    and what is not the broker's alone (fsync latency, connections) from
    the process-wide records of the log and zper_output.
    ========================================================================= */

#include "zper_stats.h"
#include "zper_hops.h"
#include "zper_partition.h"
#include "zper_output.h"
#include "zper_protocol.h"
#include <jansson.h>
#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/resource.h>

//  A direction's count of one topic: messages and bytes, and their rate.
typedef struct {
    uint64_t messages;
    uint64_t bytes;
    uint64_t messages_at_tick;
    uint64_t bytes_at_tick;
    double messages_per_second;
    double bytes_per_second;
} flow_t;

typedef struct {
    flow_t written;
    flow_t read;
    uint64_t acks;
    bool active;                        //  in zper_stats_t.active: written or read since the tick
                                        //  before last
} topic_counts_t;

struct _zper_stats_t {
    pthread_mutex_t mutex;
    zhashx_t *topics;                   //  name -> topic_counts_t
    zlist_t *active;                    //  topic_counts_t whose rate may not be 0: a tick visits
                                        //  these, not every topic (a broker may hold 100,000)
    uint64_t counters [ZPER_COUNTER_COUNT];
    uint64_t statuses [ZPER_STATS_SOCKETS][256];    //  atomics: replies by status
    size_t max_peers;
    int64_t started_ms;
    int64_t last_tick_ms;
};

static const char *s_socket_names [ZPER_STATS_SOCKETS] = { "front", "rear" };

static const char *s_counter_names [ZPER_COUNTER_COUNT] = {
    "bad_identity", "bad_write", "too_large", "storage_error", "bad_request", "slow_client",
    "reply_dropped", "ack_dropped", "relay_pub_dropped", "rear_reply_dropped", "topic_refused",
    "forbidden", "cut_off", "auth_refused_mechanism", "auth_refused_key",
    "not_leader", "not_enough_replicas"
};

static void
s_counts_destroy (void **item)
{
    freen (*item);
    *item = NULL;
}

zper_stats_t *
zper_stats_new (void)
{
    zper_stats_t *self = (zper_stats_t *) zmalloc (sizeof (zper_stats_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->topics = zhashx_new ();
    zhashx_set_destructor (self->topics, s_counts_destroy);
    self->active = zlist_new ();
    self->max_peers = ZPER_DEFAULT_METRICS_MAX_PEERS;
    self->started_ms = zclock_time ();
    self->last_tick_ms = self->started_ms;
    return self;
}

void
zper_stats_destroy (zper_stats_t **self_p)
{
    assert (self_p);
    zper_stats_t *self = *self_p;
    if (self) {
        zlist_destroy (&self->active);
        zhashx_destroy (&self->topics);
        pthread_mutex_destroy (&self->mutex);
        freen (self);
        *self_p = NULL;
    }
}

//  The counts of topic, made on first use. Under the mutex.
static topic_counts_t *
s_topic_counts (zper_stats_t *self, const char *topic)
{
    topic_counts_t *counts = (topic_counts_t *) zhashx_lookup (self->topics, topic);
    if (!counts) {
        counts = (topic_counts_t *) zmalloc (sizeof (topic_counts_t));
        zhashx_insert (self->topics, topic, counts);
    }
    return counts;
}

//  Count messages in one direction of topic; its rate is due at the next tick.
static void
s_flow_add (zper_stats_t *self, const char *topic, bool read, uint64_t messages, uint64_t bytes)
{
    pthread_mutex_lock (&self->mutex);
    topic_counts_t *counts = s_topic_counts (self, topic);
    flow_t *flow = read? &counts->read: &counts->written;
    flow->messages += messages;
    flow->bytes += bytes;
    if (!counts->active) {
        counts->active = true;
        zlist_append (self->active, counts);
    }
    pthread_mutex_unlock (&self->mutex);
}

void
zper_stats_written (zper_stats_t *self, const char *topic, uint64_t messages, uint64_t bytes)
{
    s_flow_add (self, topic, false, messages, bytes);
}

void
zper_stats_read (zper_stats_t *self, const char *topic, uint64_t messages, uint64_t bytes)
{
    //  A read of nothing makes no entry: names readers ask for need not exist
    if (messages)
        s_flow_add (self, topic, true, messages, bytes);
}

void
zper_stats_acked (zper_stats_t *self, const char *topic, uint64_t acks)
{
    if (!acks)
        return;
    pthread_mutex_lock (&self->mutex);
    s_topic_counts (self, topic)->acks += acks;
    pthread_mutex_unlock (&self->mutex);
}

void
zper_stats_status (zper_stats_t *self, zper_stats_socket_t socket, uint8_t status)
{
    assert (socket < ZPER_STATS_SOCKETS);
    __atomic_add_fetch (&self->statuses [socket][status], 1, __ATOMIC_RELAXED);
}

uint64_t
zper_stats_statuses (zper_stats_t *self, zper_stats_socket_t socket, uint8_t status)
{
    assert (socket < ZPER_STATS_SOCKETS);
    return __atomic_load_n (&self->statuses [socket][status], __ATOMIC_RELAXED);
}

void
zper_stats_set_max_peers (zper_stats_t *self, size_t max_peers)
{
    pthread_mutex_lock (&self->mutex);
    self->max_peers = max_peers;
    pthread_mutex_unlock (&self->mutex);
}

void
zper_stats_count (zper_stats_t *self, zper_counter_t counter)
{
    zper_stats_add (self, counter, 1);
}

void
zper_stats_add (zper_stats_t *self, zper_counter_t counter, uint64_t amount)
{
    assert (counter < ZPER_COUNTER_COUNT);
    pthread_mutex_lock (&self->mutex);
    self->counters [counter] += amount;
    pthread_mutex_unlock (&self->mutex);
}

uint64_t
zper_stats_counter (zper_stats_t *self, zper_counter_t counter)
{
    assert (counter < ZPER_COUNTER_COUNT);
    pthread_mutex_lock (&self->mutex);
    uint64_t value = self->counters [counter];
    pthread_mutex_unlock (&self->mutex);
    return value;
}

void
zper_stats_set (zper_stats_t *self, zper_counter_t counter, uint64_t value)
{
    assert (counter < ZPER_COUNTER_COUNT);
    pthread_mutex_lock (&self->mutex);
    self->counters [counter] = value;
    pthread_mutex_unlock (&self->mutex);
}

//  A flow's rate over the last seconds; returns whether it moved.
static bool
s_flow_tick (flow_t *flow, double seconds)
{
    flow->messages_per_second = (double) (flow->messages - flow->messages_at_tick) / seconds;
    flow->bytes_per_second = (double) (flow->bytes - flow->bytes_at_tick) / seconds;
    bool moved = flow->messages != flow->messages_at_tick;
    flow->messages_at_tick = flow->messages;
    flow->bytes_at_tick = flow->bytes;
    return moved;
}

void
zper_stats_tick (zper_stats_t *self, int64_t now_ms)
{
    pthread_mutex_lock (&self->mutex);
    double seconds = (double) (now_ms - self->last_tick_ms) / 1000.0;
    if (seconds > 0) {
        //  A topic leaves the list at the tick that finds it unwritten:
        //  its rate is 0 from then on, until it is written again
        zlist_t *still = zlist_new ();
        topic_counts_t *counts;
        while ((counts = (topic_counts_t *) zlist_pop (self->active))) {
            counts->active = s_flow_tick (&counts->written, seconds)
                           | s_flow_tick (&counts->read, seconds);
            if (counts->active)
                zlist_append (still, counts);
        }
        zlist_destroy (&self->active);
        self->active = still;
        self->last_tick_ms = now_ms;
    }
    pthread_mutex_unlock (&self->mutex);
}

//  Append one topic's object to json (a zchunk used as a growing buffer).
static void
s_topic_json (zchunk_t *json, const char *name, topic_counts_t *counts, zper_log_t *log)
{
    zper_bounds_t bounds = { 0 };
    bounds.first_timestamp = bounds.last_timestamp = -1;
    zper_partition_t *partition = log?
        zper_log_partition (log, name, ZPER_PARTITION_DEFAULT, false): NULL;
    if (partition)
        zper_partition_bounds (partition, &bounds);
    topic_counts_t zero = { 0 };
    if (!counts)
        counts = &zero;
    char *text = zsys_sprintf (
        "\"%s\":{\"messages_written\":%llu,\"bytes_written\":%llu,"
        "\"messages_per_second\":%.1f,\"bytes_per_second\":%.1f,"
        "\"start_offset\":%lld,\"durable_offset\":%lld,\"last_offset\":%lld,"
        "\"start_position\":%lld,\"durable_position\":%lld,"
        "\"first_timestamp\":%lld,\"last_timestamp\":%lld,\"size_bytes\":%llu,\"segments\":%zu,"
        "\"messages_read\":%llu,\"bytes_read\":%llu,"
        "\"messages_read_per_second\":%.1f,\"bytes_read_per_second\":%.1f,\"acks\":%llu}",
        name, (unsigned long long) counts->written.messages,
        (unsigned long long) counts->written.bytes,
        counts->written.messages_per_second, counts->written.bytes_per_second,
        (long long) bounds.start_offset, (long long) bounds.durable_offset,
        (long long) bounds.durable_offset - 1,
        (long long) bounds.start_position, (long long) bounds.durable_position,
        (long long) bounds.first_timestamp, (long long) bounds.last_timestamp,
        (unsigned long long) bounds.size_bytes, bounds.segment_count,
        (unsigned long long) counts->read.messages, (unsigned long long) counts->read.bytes,
        counts->read.messages_per_second, counts->read.bytes_per_second,
        (unsigned long long) counts->acks);
    zchunk_extend (json, text, strlen (text));
    zstr_free (&text);
}

//  Append printf-formatted text to json.
static void
s_printf (zchunk_t *json, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    char *text = zsys_vprintf (format, arguments);
    va_end (arguments);
    zchunk_extend (json, text, strlen (text));
    zstr_free (&text);
}

//  "statuses": each socket's replies by status, only the codes seen.
static void
s_statuses_json (zper_stats_t *self, zchunk_t *json)
{
    s_printf (json, ",\"statuses\":{");
    for (int socket = 0; socket < ZPER_STATS_SOCKETS; socket++) {
        s_printf (json, "%s\"%s\":{", socket? ",": "", s_socket_names [socket]);
        const char *separator = "";
        for (int status = 0; status < 256; status++) {
            uint64_t count = zper_stats_statuses (self, (zper_stats_socket_t) socket,
                                                  (uint8_t) status);
            if (count) {
                s_printf (json, "%s\"%d\":%llu", separator, status, (unsigned long long) count);
                separator = ",";
            }
        }
        s_printf (json, "}");
    }
    s_printf (json, "}");
}

//  "fsync": the segment syncs' latency histogram, cumulative buckets.
static void
s_fsync_json (zchunk_t *json)
{
    zper_log_sync_histogram_t histogram;
    zper_log_sync_histogram (&histogram);
    s_printf (json, ",\"fsync\":{\"count\":%llu,\"sum_us\":%llu,\"buckets\":[",
              (unsigned long long) histogram.count, (unsigned long long) histogram.sum_us);
    for (size_t bucket = 0; bucket < ZPER_SYNC_HISTOGRAM_BUCKETS; bucket++)
        s_printf (json, "%s[%lld,%llu]", bucket? ",": "", (long long) histogram.bounds_us [bucket],
                  (unsigned long long) histogram.buckets [bucket]);
    s_printf (json, "]}");
}

//  "hops": where a message's time goes inside the broker (zper_hops.h),
//  {name: {count, p50_us, p99_us, max_us}}, -1 for a hop without samples.
static void
s_hops_json (zchunk_t *json)
{
    s_printf (json, ",\"hops\":{");
    for (int hop = 0; hop < ZPER_HOP_COUNT; hop++) {
        zper_hops_summary_t summary;
        zper_hops_summary ((zper_hop_t) hop, &summary);
        s_printf (json, "%s\"%s\":{\"count\":%llu,\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld}",
                  hop? ",": "", summary.name, (unsigned long long) summary.count,
                  (long long) summary.p50_us, (long long) summary.p99_us,
                  (long long) summary.max_us);
    }
    s_printf (json, "}");
}

//  Descriptors the process holds now: one readdir of /proc/self/fd, a few
//  microseconds for the thousand or so a broker holds (less the directory's
//  own descriptor and its "." and ".."). 0 where /proc is not mounted.
static size_t
s_open_descriptors (void)
{
    DIR *directory = opendir ("/proc/self/fd");
    if (!directory)
        return 0;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (directory)))
        if (entry->d_name [0] != '.')
            count++;
    closedir (directory);
    return count > 0? count - 1: 0;
}

//  "log": topics and partitions of log (0 without one), descriptors.
static void
s_log_json (zchunk_t *json, zper_log_t *log)
{
    size_t topics = 0, open_partitions = 0;
    uint64_t closed_partitions = 0;
    if (log)
        zper_log_counts (log, &topics, &open_partitions, &closed_partitions);
    struct rlimit limit = { 0 };
    getrlimit (RLIMIT_NOFILE, &limit);
    s_printf (json, ",\"log\":{\"topics\":%zu,\"open_partitions\":%zu,"
              "\"closed_partitions\":%llu,\"open_fds\":%zu,\"fd_limit\":%llu}",
              topics, open_partitions, (unsigned long long) closed_partitions,
              s_open_descriptors (), (unsigned long long) limit.rlim_cur);
}

//  "connections": every output budget of the process, the busiest listed.
static void
s_connections_json (zchunk_t *json, size_t max_peers)
{
    zper_output_totals_t totals;
    size_t listed;
    zper_output_peer_t *peers = zper_output_snapshot (&totals, max_peers, &listed);
    s_printf (json, ",\"connections\":{\"count\":%zu,\"queued_bytes\":%lld,\"dropped\":%llu,"
              "\"peers\":[", totals.count, (long long) totals.queued_bytes,
              (unsigned long long) totals.dropped);
    //  Labels hold only [A-Za-z0-9._*-] (zper_output_set_label): no escaping
    for (size_t index = 0; index < listed; index++)
        s_printf (json, "%s{\"socket\":\"%s\",\"peer\":\"%s\",\"queued_bytes\":%lld,"
                  "\"dropped\":%llu}", index? ",": "", peers [index].socket, peers [index].peer,
                  (long long) peers [index].queued_bytes,
                  (unsigned long long) peers [index].dropped);
    s_printf (json, "]}");
    free (peers);
}

char *
zper_stats_json (zper_stats_t *self, zper_log_t *log)
{
    return zper_stats_json_filtered (self, log, NULL, NULL);
}

char *
zper_stats_json_filtered (zper_stats_t *self, zper_log_t *log, zper_stats_topic_fn *listed,
                          void *argument)
{
    zlist_t *names = log? zper_log_topics (log): NULL;
    if (!names) {
        names = zlist_new ();
        zlist_autofree (names);
    }
    //  A set of the log's names: finding each counted topic in the list
    //  itself would cost topics x topics
    zhashx_t *logged = zhashx_new ();
    for (char *name = (char *) zlist_first (names); name; name = (char *) zlist_next (names))
        zhashx_insert (logged, name, name);
    zchunk_t *json = zchunk_new (NULL, 0);
    pthread_mutex_lock (&self->mutex);
    //  Topics counted but not listed by the log yet are listed too
    for (void *counts = zhashx_first (self->topics); counts; counts = zhashx_next (self->topics)) {
        const char *name = (const char *) zhashx_cursor (self->topics);
        if (!zhashx_lookup (logged, name))
            zlist_append (names, (void *) name);    //  autofree: the list copies it
    }
    zhashx_destroy (&logged);
    size_t max_peers = self->max_peers;
    char *head = zsys_sprintf ("{\"version\":\"%s\",\"uptime_ms\":%lld,\"counters\":{",
                               ZPER_VERSION_STRING, (long long) (zclock_time () - self->started_ms));
    zchunk_extend (json, head, strlen (head));
    zstr_free (&head);
    for (int counter = 0; counter < ZPER_COUNTER_COUNT; counter++) {
        char *text = zsys_sprintf ("%s\"%s\":%llu", counter? ",": "", s_counter_names [counter],
                                   (unsigned long long) self->counters [counter]);
        zchunk_extend (json, text, strlen (text));
        zstr_free (&text);
    }
    zchunk_extend (json, "},\"topics\":{", 12);
    bool first = true;
    for (const char *name = (const char *) zlist_first (names); name;
         name = (const char *) zlist_next (names)) {
        if (listed && !listed (name, argument))
            continue;
        if (!first)
            zchunk_extend (json, ",", 1);
        first = false;
        s_topic_json (json, name, (topic_counts_t *) zhashx_lookup (self->topics, name), log);
    }
    pthread_mutex_unlock (&self->mutex);
    zchunk_extend (json, "}", 1);
    s_statuses_json (self, json);
    s_fsync_json (json);
    s_hops_json (json);
    s_log_json (json, log);
    s_connections_json (json, max_peers);
    zchunk_extend (json, "}", 1);
    zlist_destroy (&names);
    char *result = zchunk_strdup (json);
    zchunk_destroy (&json);
    return result;
}

//  The integer at a path of objects ("log", "open_fds"), -1 when absent.
static json_int_t
s_test_integer (json_t *root, const char *first, const char *second, const char *third)
{
    json_t *value = json_object_get (root, first);
    if (second)
        value = json_object_get (value, second);
    if (third)
        value = json_object_get (value, third);
    return json_is_integer (value)? json_integer_value (value): -1;
}

//  Reads, acks, statuses, fsync, log and connections, parsed as JSON.
static void
s_test_additions (bool verbose)
{
    zper_log_config_t config;
    zper_log_config_init (&config);
    config.base_dir = "stats-log";
    zper_log_t *log = zper_log_new (&config);
    assert (log);
    zper_log_sync_histogram_t before;
    zper_log_sync_histogram (&before);
    zper_partition_t *partition = zper_log_partition (log, "gamma", ZPER_PARTITION_DEFAULT, true);
    assert (partition);
    zper_frame_t frame = { (const uint8_t *) "hello", 5 };
    assert (zper_partition_append (partition, &frame, 1, zclock_time ()) == 0);
    assert (zper_partition_flush (partition) == 1);

    zper_stats_t *stats = zper_stats_new ();
    zper_stats_read (stats, "gamma", 3, 21);
    zper_stats_read (stats, "gamma", 1, 7);
    zper_stats_read (stats, "nothing", 0, 0);     //  makes no entry
    zper_stats_acked (stats, "gamma", 2);
    zper_stats_status (stats, ZPER_STATS_FRONT, ZPER_STATUS_OK);
    zper_stats_status (stats, ZPER_STATS_FRONT, ZPER_STATUS_OK);
    zper_stats_status (stats, ZPER_STATS_REAR, ZPER_STATUS_INVALID_ARGUMENT);
    zper_stats_status (stats, ZPER_STATS_REAR, 255);
    assert (zper_stats_statuses (stats, ZPER_STATS_FRONT, ZPER_STATUS_OK) == 2);
    assert (zper_stats_statuses (stats, ZPER_STATS_REAR, ZPER_STATUS_OK) == 0);
    zper_stats_tick (stats, zclock_time () + 2000);
    zper_output_t *busy = zper_output_new (1000), *idle = zper_output_new (1000);
    zper_output_set_label_id (busy, "relay", "\xBE\xEF", 2);
    zper_output_set_label (idle, "ack", "*");
    zper_output_dropped (busy, 2);
    zper_stats_set_max_peers (stats, 1);

    char *text = zper_stats_json (stats, log);
    if (verbose)
        zsys_info ("%s", text);
    json_error_t error;
    json_t *root = json_loads (text, 0, &error);
    assert (root);                      //  one valid object
    assert (s_test_integer (root, "topics", "gamma", "messages_read") == 4);
    assert (s_test_integer (root, "topics", "gamma", "bytes_read") == 28);
    assert (s_test_integer (root, "topics", "gamma", "acks") == 2);
    assert (s_test_integer (root, "topics", "gamma", "messages_written") == 0);
    assert (!json_object_get (json_object_get (root, "topics"), "nothing"));
    //  The rate of the interval since the last tick: 4 messages in about 2 s
    json_t *rate = json_object_get (json_object_get (json_object_get (root, "topics"), "gamma"),
                                    "messages_read_per_second");
    assert (json_is_real (rate) && json_real_value (rate) > 1.0 && json_real_value (rate) < 2.1);
    assert (s_test_integer (root, "statuses", "front", "100") == 2);
    assert (s_test_integer (root, "statuses", "rear", "103") == 1);
    assert (s_test_integer (root, "statuses", "rear", "255") == 1);
    assert (s_test_integer (root, "statuses", "rear", "100") == -1);     //  only codes seen
    //  fsync: at least the flush above; cumulative buckets never decrease
    json_t *fsync = json_object_get (root, "fsync");
    json_int_t count = s_test_integer (fsync, "count", NULL, NULL);
    assert (count >= (json_int_t) before.count + 1);
    json_t *buckets = json_object_get (fsync, "buckets");
    assert (json_array_size (buckets) == ZPER_SYNC_HISTOGRAM_BUCKETS);
    json_int_t previous = 0;
    for (size_t index = 0; index < json_array_size (buckets); index++) {
        json_t *bucket = json_array_get (buckets, index);
        json_int_t cumulative = json_integer_value (json_array_get (bucket, 1));
        assert (cumulative >= previous && cumulative <= count);
        previous = cumulative;
    }
    assert (json_integer_value (json_array_get (json_array_get (buckets, 0), 0)) == 100);
    //  The log's counts and the process's descriptors
    assert (s_test_integer (root, "log", "topics", NULL) == 1);
    assert (s_test_integer (root, "log", "open_partitions", NULL) == 1);
    json_int_t open_fds = s_test_integer (root, "log", "open_fds", NULL);
    assert (open_fds > 0 && open_fds <= s_test_integer (root, "log", "fd_limit", NULL));
    //  Connections: both outputs counted, the busiest one listed (max_peers 1)
    json_t *connections = json_object_get (root, "connections");
    assert (s_test_integer (connections, "count", NULL, NULL) >= 2);
    assert (s_test_integer (connections, "dropped", NULL, NULL) >= 2);
    json_t *peers = json_object_get (connections, "peers");
    assert (json_array_size (peers) == 1);
    json_t *peer = json_array_get (peers, 0);
    assert (streq (json_string_value (json_object_get (peer, "socket")), "relay"));
    assert (streq (json_string_value (json_object_get (peer, "peer")), "BEEF"));
    assert (json_integer_value (json_object_get (peer, "dropped")) == 2);
    json_decref (root);
    zstr_free (&text);

    zper_output_destroy (&busy);
    zper_output_destroy (&idle);
    zper_stats_destroy (&stats);
    zper_log_destroy (&log);
}

static bool
s_test_beta_only (const char *topic, void *argument)
{
    return streq (topic, "beta");
}

void
zper_stats_test (bool verbose)
{
    zper_stats_t *stats = zper_stats_new ();
    zper_stats_written (stats, "alpha", 2, 20);
    zper_stats_written (stats, "alpha", 1, 10);
    zper_stats_count (stats, ZPER_COUNTER_TOO_LARGE);
    assert (zper_stats_counter (stats, ZPER_COUNTER_TOO_LARGE) == 1);
    assert (zper_stats_counter (stats, ZPER_COUNTER_BAD_IDENTITY) == 0);
    zper_stats_tick (stats, zclock_time () + 1000);
    char *json = zper_stats_json (stats, NULL);
    if (verbose)
        zsys_info ("%s", json);
    assert (strstr (json, "\"too_large\":1"));
    assert (strstr (json, "\"alpha\":{\"messages_written\":3,\"bytes_written\":30"));
    assert (json [0] == '{' && json [strlen (json) - 1] == '}');
    zstr_free (&json);
    //  A reader sees the counters, and the topics its key may read only
    zper_stats_written (stats, "beta", 1, 10);
    zper_stats_set (stats, ZPER_COUNTER_AUTH_REFUSED_KEY, 7);
    json = zper_stats_json_filtered (stats, NULL, s_test_beta_only, NULL);
    assert (strstr (json, "\"auth_refused_key\":7") && strstr (json, "\"forbidden\":0"));
    assert (strstr (json, "\"beta\":{") && !strstr (json, "\"alpha\""));
    assert (strstr (json, "\"topics\":{\"beta\":{"));
    zstr_free (&json);
    zper_stats_destroy (&stats);
    zper_stats_destroy (&stats);
    s_test_additions (verbose);
}
