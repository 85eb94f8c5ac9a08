/*  =========================================================================
    zper_stats - broker counters and per-topic rates

    Counts live in a hash of topic -> counts under one mutex. Rates are
    deltas between two manager ticks, so a reader of STATS sees the rate of
    the last full interval, not a noisy instant. Offsets and sizes are not
    duplicated here: the JSON reads them from the log's bounds when asked.
    ========================================================================= */

#include "zper_stats.h"
#include "zper_partition.h"
#include <assert.h>
#include <pthread.h>

typedef struct {
    uint64_t messages;
    uint64_t bytes;
    uint64_t messages_at_tick;
    uint64_t bytes_at_tick;
    double messages_per_second;
    double bytes_per_second;
    bool active;                        //  in zper_stats_t.active: written since the tick before last
} topic_counts_t;

struct _zper_stats_t {
    pthread_mutex_t mutex;
    zhashx_t *topics;                   //  name -> topic_counts_t
    zlist_t *active;                    //  topic_counts_t whose rate may not be 0: a tick visits
                                        //  these, not every topic (a broker may hold 100,000)
    uint64_t counters [ZPER_COUNTER_COUNT];
    int64_t started_ms;
    int64_t last_tick_ms;
};

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

void
zper_stats_written (zper_stats_t *self, const char *topic, uint64_t messages, uint64_t bytes)
{
    pthread_mutex_lock (&self->mutex);
    topic_counts_t *counts = (topic_counts_t *) zhashx_lookup (self->topics, topic);
    if (!counts) {
        counts = (topic_counts_t *) zmalloc (sizeof (topic_counts_t));
        zhashx_insert (self->topics, topic, counts);
    }
    counts->messages += messages;
    counts->bytes += bytes;
    if (!counts->active) {
        counts->active = true;
        zlist_append (self->active, counts);
    }
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
            counts->messages_per_second = (double) (counts->messages - counts->messages_at_tick) / seconds;
            counts->bytes_per_second = (double) (counts->bytes - counts->bytes_at_tick) / seconds;
            counts->active = counts->messages != counts->messages_at_tick;
            counts->messages_at_tick = counts->messages;
            counts->bytes_at_tick = counts->bytes;
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
        "\"first_timestamp\":%lld,\"last_timestamp\":%lld,\"size_bytes\":%llu,\"segments\":%zu}",
        name, (unsigned long long) counts->messages, (unsigned long long) counts->bytes,
        counts->messages_per_second, counts->bytes_per_second,
        (long long) bounds.start_offset, (long long) bounds.durable_offset,
        (long long) bounds.durable_offset - 1,
        (long long) bounds.start_position, (long long) bounds.durable_position,
        (long long) bounds.first_timestamp, (long long) bounds.last_timestamp,
        (unsigned long long) bounds.size_bytes, bounds.segment_count);
    zchunk_extend (json, text, strlen (text));
    zstr_free (&text);
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
    zlist_comparefn (names, (zlist_compare_fn *) strcmp);
    zchunk_t *json = zchunk_new (NULL, 0);
    pthread_mutex_lock (&self->mutex);
    //  Topics counted but not listed by the log yet are listed too
    for (void *counts = zhashx_first (self->topics); counts; counts = zhashx_next (self->topics)) {
        const char *name = (const char *) zhashx_cursor (self->topics);
        if (!zlist_exists (names, (void *) name))
            zlist_append (names, (void *) name);    //  autofree: the list copies it
    }
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
    zchunk_extend (json, "}}", 2);
    zlist_destroy (&names);
    char *result = zchunk_strdup (json);
    zchunk_destroy (&json);
    return result;
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
}
