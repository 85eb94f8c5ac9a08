/*  =========================================================================
    zper_hops - where a message's time goes inside the broker, hop by hop

    The one thing to know: each hop is a fixed array of atomic counters, a
    log-linear histogram (SUB_BUCKETS = 8 buckets per power of two, so
    a percentile read from it is within one part in 8 of the true value), so recording is one clock reading and two relaxed atomic
    adds, with no lock and no allocation: cheap enough for every hand-off
    and every note, which is how the hops are sampled (a sample per turn of
    a thread, not per message, so a busy broker records less than one per
    message). The histograms are process-wide, as the log's fsync
    histogram is: every broker of a process (tests) adds to them.

    Who records what (zper_hops.h names the hops): the front thread stamps
    the first write of each hand-off (32 bits in its entry); the front
    worker records the hand-off's wait when it takes it and stamps its
    bus notes (zper_visible_note_t); the relay records the bus hop per note
    and, once a wake-up has sent something, its own share and the broker's
    whole share; a rear worker records the bus hop to a long poll's answer.
    ========================================================================= */

#include "zper_hops.h"
#include "zper_defaults.h"
#include <assert.h>
#include <stdatomic.h>
#include <time.h>

#define SUB_BITS        3               //  log2 of SUB_BUCKETS
#define SUB_BUCKETS     (1 << SUB_BITS)
#define BUCKETS         ((32 - SUB_BITS + 1) * SUB_BUCKETS)     //  up to 2^32 us

typedef struct {
    atomic_uint_fast64_t buckets [BUCKETS];
    atomic_uint_fast64_t count;
    atomic_int_fast64_t max_us;
} hop_t;

static hop_t s_hops [ZPER_HOP_COUNT];

static const char *s_names [ZPER_HOP_COUNT] = {
    "front_to_worker", "worker_to_bus", "bus_to_relay", "relay_send", "front_to_relay_send",
    "bus_to_read_reply"
};

//  Bucket of a value: values below SUB_BUCKETS each have their own; above,
//  each power of two [2^o, 2^(o+1)) is cut in SUB_BUCKETS equal parts.
static size_t
s_bucket (uint64_t value)
{
    if (value < SUB_BUCKETS)
        return (size_t) value;
    int octave = 63 - __builtin_clzll (value);
    size_t sub = (size_t) (value >> (octave - SUB_BITS)) & (SUB_BUCKETS - 1);
    size_t bucket = (size_t) (octave - SUB_BITS + 1) * SUB_BUCKETS + sub;
    return bucket < BUCKETS? bucket: BUCKETS - 1;
}

//  The middle of a bucket, as its percentiles report it.
static int64_t
s_bucket_value (size_t bucket)
{
    if (bucket < SUB_BUCKETS)
        return (int64_t) bucket;
    int octave = (int) (bucket / SUB_BUCKETS) + SUB_BITS - 1;
    int64_t width = (int64_t) 1 << (octave - SUB_BITS);
    int64_t lower = (int64_t) (SUB_BUCKETS + bucket % SUB_BUCKETS) * width;
    return lower + width / 2;
}

int64_t
zper_hops_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

uint32_t
zper_hops_stamp32 (void)
{
    uint32_t stamp = (uint32_t) zper_hops_now ();
    return stamp? stamp: 1;             //  0 means not taken
}

int64_t
zper_hops_widen (uint32_t stamp, int64_t now_us)
{
    return stamp? now_us - (int64_t) (uint32_t) ((uint32_t) now_us - stamp): 0;
}

void
zper_hops_record_at (zper_hop_t hop, int64_t since_us, int64_t now_us)
{
    assert (hop < ZPER_HOP_COUNT);
    if (since_us <= 0 || since_us > now_us)
        return;
    int64_t elapsed = now_us - since_us;
    hop_t *record = &s_hops [hop];
    atomic_fetch_add_explicit (&record->buckets [s_bucket ((uint64_t) elapsed)], 1,
                               memory_order_relaxed);
    atomic_fetch_add_explicit (&record->count, 1, memory_order_relaxed);
    int_fast64_t max = atomic_load_explicit (&record->max_us, memory_order_relaxed);
    while (elapsed > max
       && !atomic_compare_exchange_weak_explicit (&record->max_us, &max, elapsed,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void
zper_hops_record (zper_hop_t hop, int64_t since_us)
{
    if (since_us > 0)
        zper_hops_record_at (hop, since_us, zper_hops_now ());
}

void
zper_hops_summary (zper_hop_t hop, zper_hops_summary_t *summary)
{
    assert (hop < ZPER_HOP_COUNT && summary);
    hop_t *record = &s_hops [hop];
    uint64_t buckets [BUCKETS], count = 0;
    //  The buckets, not the count, are the truth: a sample recorded during
    //  the copy is in both or in neither
    for (size_t bucket = 0; bucket < BUCKETS; bucket++) {
        buckets [bucket] = atomic_load_explicit (&record->buckets [bucket], memory_order_relaxed);
        count += buckets [bucket];
    }
    *summary = (zper_hops_summary_t) { .name = s_names [hop], .count = count, .p50_us = -1,
                                       .p99_us = -1, .max_us = -1 };
    if (count == 0)
        return;
    uint64_t p50_rank = (count + 1) / 2, p99_rank = count - count / 100, seen = 0;
    for (size_t bucket = 0; bucket < BUCKETS; bucket++) {
        seen += buckets [bucket];
        if (summary->p50_us < 0 && seen >= p50_rank)
            summary->p50_us = s_bucket_value (bucket);
        if (summary->p99_us < 0 && seen >= p99_rank) {
            summary->p99_us = s_bucket_value (bucket);
            break;
        }
    }
    summary->max_us = atomic_load_explicit (&record->max_us, memory_order_relaxed);
}

//  --------------------------------------------------------------------------
//  Selftest

void
zper_hops_test (bool verbose)
{
    //  Buckets: every value below 2^32 lands in a bucket whose middle is
    //  within one part in SUB_BUCKETS of it, and buckets only grow
    size_t previous = 0;
    for (uint64_t value = 0; value < ((uint64_t) 1 << 32); value = value * 9 / 8 + 1) {
        size_t bucket = s_bucket (value);
        assert (bucket >= previous && bucket < BUCKETS);
        previous = bucket;
        int64_t middle = s_bucket_value (bucket);
        int64_t error = middle > (int64_t) value? middle - (int64_t) value: (int64_t) value - middle;
        assert (error * SUB_BUCKETS <= (int64_t) value + 1);
    }
    //  A stamp cut to 32 bits widens back to itself, across a wrap too
    int64_t now = zper_hops_now ();
    uint32_t stamp = zper_hops_stamp32 ();
    assert (zper_hops_widen (stamp, zper_hops_now ()) >= now - 1);
    assert (zper_hops_widen ((uint32_t) 0xfffffff0, ((int64_t) 1 << 32) + 0x10) == 0xfffffff0);
    assert (zper_hops_widen (0, now) == 0);

    //  A thousand samples of 100 us and ten of 10 ms: p50 ~100, p99 ~100,
    //  max 10 ms; stamps not taken or in the future are not samples
    zper_hops_summary_t before, after;
    zper_hops_summary (ZPER_HOP_BUS_TO_READ_REPLY, &before);
    for (int index = 0; index < 1000; index++)
        zper_hops_record_at (ZPER_HOP_BUS_TO_READ_REPLY, now - 100, now);
    for (int index = 0; index < 10; index++)
        zper_hops_record_at (ZPER_HOP_BUS_TO_READ_REPLY, now - 10000, now);
    zper_hops_record_at (ZPER_HOP_BUS_TO_READ_REPLY, 0, now);
    zper_hops_record_at (ZPER_HOP_BUS_TO_READ_REPLY, now + 5, now);
    zper_hops_summary (ZPER_HOP_BUS_TO_READ_REPLY, &after);
    assert (streq (after.name, "bus_to_read_reply"));
    assert (after.count == before.count + 1010);
    if (before.count == 0) {
        assert (after.p50_us >= 94 && after.p50_us <= 106);
        assert (after.p99_us >= 94 && after.p99_us <= 106);
    }
    assert (after.max_us >= 10000);
    zper_hops_record (ZPER_HOP_BUS_TO_READ_REPLY, zper_hops_now ());
    zper_hops_summary (ZPER_HOP_BUS_TO_READ_REPLY, &before);
    assert (before.count == after.count + 1);
    if (verbose)
        zsys_info ("zper_hops: buckets, 32-bit stamps, percentiles and max checked");
}
