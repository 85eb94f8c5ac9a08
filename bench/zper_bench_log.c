/*  =========================================================================
    zper_bench_log - append rate of the log engine next to the disk's own
    rate, and start-up time after a clean and an unclean shutdown

    Usage: zper_bench_log [--quick] [--dir DIR] [--messages N] [--runs R]
                          [--batch N] [--log-gb G] [--keep]

    Appends: for 100 B and 1 KiB one-frame messages, the median of --runs
    runs of --messages appends each, (a) with the default flush policy
    (flush_messages / flush_interval, checked after every batch as the
    broker's timer would), (b) with a flush (fdatasync) per batch of
    --batch messages; and, measured in the same run over the same bytes
    (the messages' ZMTP/2.0 encodings, written per batch), (c) raw write()
    and (d) raw write() + fdatasync per batch. MB/s counts those encoded
    bytes. The ratios compare (a) with (c) and (b) with (d).

    Start-up: a partition of --log-gb GiB of 1 KiB messages is written and
    closed cleanly; then opened (clean start), then a child appends
    ZPER_BENCH_CRASH_BYTES more and dies without closing (unclean start),
    then the checkpoint is deleted (worst case: full scan). The page cache
    is left warm: these are CPU and syscall costs, not cold-disk reads.
    Files go under --dir (default ./zper-bench-log) and are removed unless
    --keep.
    ========================================================================= */

#include "zper_log.h"
#include "zper_partition.h"
#include "zper_crc32c.h"
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZPER_BENCH_MESSAGES     500000
#define ZPER_BENCH_RUNS         5
#define ZPER_BENCH_BATCH        100
#define ZPER_BENCH_CRASH_BYTES  (32LL * 1024 * 1024)
#define ZPER_BENCH_RESTART_BODY 1024
#define ZPER_BENCH_RUNS_MAX     64
#define QUICK_MESSAGES          2000
#define QUICK_LOG_BYTES         (4LL * 1024 * 1024)
#define QUICK_SEGMENT           (1024 * 1024)
#define MEBIBYTE                (1024.0 * 1024.0)
#define GIBIBYTE                (1024.0 * MEBIBYTE)

typedef struct {
    bool quick;
    bool keep;
    const char *dir;
    int64_t messages;
    int runs;
    int batch;
    double log_gb;
} options_t;

typedef enum { LOG_DEFAULT_POLICY, LOG_FLUSH_PER_BATCH, RAW_WRITE, RAW_WRITE_SYNC, MODES } bench_mode_t;

static const char *s_mode_names [MODES] = {
    "log, default flush policy", "log, flush per batch", "raw write()", "raw write()+fdatasync/batch"
};

static double
s_seconds (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static void
s_remove (const char *path)
{
    char *command = zsys_sprintf ("rm -rf '%s'", path);
    if (system (command) != 0)
        fprintf (stderr, "zper_bench_log: could not remove %s\n", path);
    free (command);
}

static void
s_config (const options_t *options, zper_log_config_t *config)
{
    zper_log_config_init (config);
    config->base_dir = options->dir;
    if (options->quick)
        config->segment_size = QUICK_SEGMENT;
}

//  Append messages of body_size bytes; returns seconds taken
static double
s_run_log (const options_t *options, size_t body_size, bool per_batch, const uint8_t *body)
{
    char *path = zsys_sprintf ("%s/append/0", options->dir);
    s_remove (path);
    zper_log_config_t config;
    s_config (options, &config);
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    zper_frame_t frame = { body, body_size };
    double start = s_seconds ();
    for (int64_t index = 0; index < options->messages; index++) {
        if (zper_partition_append (partition, &frame, 1, 0) < 0) {
            fprintf (stderr, "zper_bench_log: append failed: %s\n", strerror (errno));
            exit (1);
        }
        if ((index + 1) % options->batch == 0
        &&  (per_batch || zper_partition_flush_due (partition, zclock_time ())))
            assert (zper_partition_flush (partition) == index + 1);
    }
    assert (zper_partition_flush (partition) == options->messages);
    double seconds = s_seconds () - start;
    zper_partition_destroy (&partition);
    s_remove (path);
    free (path);
    return seconds;
}

//  write() the same encoded bytes per batch, with or without fdatasync
static double
s_run_raw (const options_t *options, size_t body_size, bool sync, const uint8_t *body)
{
    zper_frame_t frame = { body, body_size };
    size_t message_size = zper_zmtp_message_size (&frame, 1);
    size_t batch_size = message_size * (size_t) options->batch;
    uint8_t *batch = (uint8_t *) malloc (batch_size);
    for (int index = 0; index < options->batch; index++)
        zper_zmtp_encode (&frame, 1, batch + (size_t) index * message_size);
    char *path = zsys_sprintf ("%s/raw.dat", options->dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert (fd >= 0);
    double start = s_seconds ();
    for (int64_t done = 0; done < options->messages; done += options->batch) {
        //  Each batch is encoded again, as the log encodes each message
        for (int index = 0; index < options->batch; index++)
            zper_zmtp_encode (&frame, 1, batch + (size_t) index * message_size);
        if (write (fd, batch, batch_size) != (ssize_t) batch_size) {
            fprintf (stderr, "zper_bench_log: write failed: %s\n", strerror (errno));
            exit (1);
        }
        if (sync)
            assert (fdatasync (fd) == 0);
    }
    double seconds = s_seconds () - start;
    close (fd);
    unlink (path);
    free (path);
    free (batch);
    return seconds;
}

static int
s_compare_doubles (const void *first, const void *second)
{
    double a = *(const double *) first, b = *(const double *) second;
    return a < b? -1: a > b;
}

static double
s_median (double *values, int count)
{
    qsort (values, (size_t) count, sizeof (double), s_compare_doubles);
    return count % 2? values [count / 2]: (values [count / 2 - 1] + values [count / 2]) / 2;
}

//  Write back what earlier runs left dirty, so that no run pays for another
static void
s_settle (const options_t *options)
{
    int fd = open (options->dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs (fd);
        close (fd);
    }
}

static void
s_bench_appends (const options_t *options, size_t body_size, const uint8_t *body)
{
    double medians [MODES];
    for (int mode = 0; mode < MODES; mode++) {
        double seconds [ZPER_BENCH_RUNS_MAX];
        for (int run = 0; run < options->runs; run++) {
            s_settle (options);
            seconds [run] = mode == LOG_DEFAULT_POLICY? s_run_log (options, body_size, false, body)
                          : mode == LOG_FLUSH_PER_BATCH? s_run_log (options, body_size, true, body)
                          : s_run_raw (options, body_size, mode == RAW_WRITE_SYNC, body);
        }
        medians [mode] = s_median (seconds, options->runs);
    }
    zper_frame_t frame = { body, body_size };
    double bytes = (double) zper_zmtp_message_size (&frame, 1) * (double) options->messages;
    for (int mode = 0; mode < MODES; mode++) {
        printf ("%6zu  %-30s %12.0f %9.1f", body_size, s_mode_names [mode],
                (double) options->messages / medians [mode], bytes / MEBIBYTE / medians [mode]);
        if (mode == LOG_DEFAULT_POLICY)
            printf ("   %5.2f x raw write()", medians [RAW_WRITE] / medians [mode]);
        if (mode == LOG_FLUSH_PER_BATCH)
            printf ("   %5.2f x raw write()+fdatasync", medians [RAW_WRITE_SYNC] / medians [mode]);
        printf ("\n");
    }
}

//  Open the restart partition; print how long it took and what it read
static void
s_time_open (const options_t *options, const char *path, const char *label)
{
    zper_log_config_t config;
    s_config (options, &config);
    double start = s_seconds ();
    zper_partition_t *partition = zper_partition_open (path, &config);
    double seconds = s_seconds () - start;
    assert (partition);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    printf ("start-up %-32s %9.3f s   read %10.1f MiB of records   (log %.2f GiB, %zu segments, "
            "%" PRId64 " messages)\n", label, seconds,
            (double) zper_partition_recovery_bytes (partition) / MEBIBYTE,
            (double) bounds.size_bytes / GIBIBYTE, bounds.segment_count, bounds.durable_offset);
    zper_partition_destroy (&partition);
}

//  Append bytes worth of 1 KiB messages with the default policy
static void
s_fill (const options_t *options, zper_partition_t *partition, int64_t bytes, const uint8_t *body)
{
    zper_frame_t frame = { body, ZPER_BENCH_RESTART_BODY };
    int64_t count = bytes / ZPER_BENCH_RESTART_BODY;
    for (int64_t index = 0; index < count; index++) {
        assert (zper_partition_append (partition, &frame, 1, 0) >= 0);
        if ((index + 1) % options->batch == 0 && zper_partition_flush_due (partition, zclock_time ()))
            assert (zper_partition_flush (partition) >= 0);
    }
    assert (zper_partition_flush (partition) >= 0);
}

static void
s_bench_restart (const options_t *options, const uint8_t *body)
{
    int64_t log_bytes = options->quick? QUICK_LOG_BYTES: (int64_t) (options->log_gb * GIBIBYTE);
    char *path = zsys_sprintf ("%s/restart/0", options->dir);
    s_remove (path);
    zper_log_config_t config;
    s_config (options, &config);
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    double start = s_seconds ();
    s_fill (options, partition, log_bytes, body);
    printf ("filled %.2f GiB in %.1f s\n", (double) log_bytes / GIBIBYTE, s_seconds () - start);
    zper_partition_destroy (&partition);
    s_time_open (options, path, "after a clean shutdown");

    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        partition = zper_partition_open (path, &config);
        s_fill (options, partition, options->quick? QUICK_LOG_BYTES / 4: ZPER_BENCH_CRASH_BYTES, body);
        _exit (0);                      //  no close: an unclean shutdown
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status));
    s_time_open (options, path, "after a crash");

    char *checkpoint = zsys_sprintf ("%s/checkpoint", path);
    assert (unlink (checkpoint) == 0);
    s_time_open (options, path, "without checkpoint (full scan)");
    free (checkpoint);
    if (!options->keep)
        s_remove (path);
    free (path);
}

static int
s_usage (void)
{
    fprintf (stderr, "usage: zper_bench_log [--quick] [--dir DIR] [--messages N] [--runs R] "
                     "[--batch N] [--log-gb G] [--keep]\n");
    return 2;
}

int
main (int argc, char *argv [])
{
    options_t options = {
        .dir = "zper-bench-log", .messages = ZPER_BENCH_MESSAGES, .runs = ZPER_BENCH_RUNS,
        .batch = ZPER_BENCH_BATCH, .log_gb = 0
    };
    for (int argn = 1; argn < argc; argn++) {
        const char *value = argn + 1 < argc? argv [argn + 1]: NULL;
        if (streq (argv [argn], "--quick"))
            options.quick = true;
        else
        if (streq (argv [argn], "--keep"))
            options.keep = true;
        else
        if (!value)
            return s_usage ();
        else
        if (streq (argv [argn], "--dir"))
            options.dir = value;
        else
        if (streq (argv [argn], "--messages"))
            options.messages = atoll (value);
        else
        if (streq (argv [argn], "--runs"))
            options.runs = atoi (value);
        else
        if (streq (argv [argn], "--batch"))
            options.batch = atoi (value);
        else
        if (streq (argv [argn], "--log-gb"))
            options.log_gb = atof (value);
        else
            return s_usage ();
        if (!streq (argv [argn], "--quick") && !streq (argv [argn], "--keep"))
            argn++;
    }
    if (options.quick) {
        options.messages = QUICK_MESSAGES;
        options.runs = 1;
    }
    if (options.messages <= 0 || options.runs <= 0 || options.runs > ZPER_BENCH_RUNS_MAX
    ||  options.batch <= 0 || options.log_gb < 0)
        return s_usage ();
    options.messages -= options.messages % options.batch;   //  whole batches, for raw write()
    if (zsys_dir_create ("%s", options.dir)) {
        fprintf (stderr, "zper_bench_log: cannot create %s\n", options.dir);
        return 1;
    }
    uint8_t *body = (uint8_t *) malloc (ZPER_BENCH_RESTART_BODY);
    for (int index = 0; index < ZPER_BENCH_RESTART_BODY; index++)
        body [index] = (uint8_t) randof (256);

    printf ("%" PRId64 " messages per run, median of %d runs, batch %d, crc32c: %s\n",
            options.messages, options.runs, options.batch,
            zper_crc32c_hardware ()? "SSE4.2": "portable");
    printf ("%6s  %-30s %12s %9s\n", "body", "mode", "msg/s", "MB/s");
    s_bench_appends (&options, 100, body);
    s_bench_appends (&options, 1024, body);
    if (options.quick || options.log_gb > 0)
        s_bench_restart (&options, body);
    free (body);
    if (!options.keep)
        s_remove (options.dir);
    zsys_shutdown ();
    return 0;
}
