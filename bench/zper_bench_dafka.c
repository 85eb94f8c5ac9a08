/*  =========================================================================
    zper_bench_dafka - Dafka rates next to raw libzmq PUB/SUB, run by run

    Usage: zper_bench_dafka [--quick] [--messages N] [--runs R] [--zper PATH]
                            [--only acked] [--dir DIR]

    For 100 B and 1 KiB records, over TCP on loopback, each run measures:
      (c) baselines: a raw libzmq PUB -> SUB of the same message count and
          size, and the same with each message shaped as a RECORD (frame 0
          of the size of the producer's RECORD frame 0, then the content):
          the transport's ceiling for a protocol of one RECORD per message.
          Sender and receiver each have their OWN context (own I/O thread),
          as a producer and a store in two processes have (until 2026-12-06
          both ends shared one context, whose one I/O thread carried both
          ends and understated the transport: 1.07-1.12x at 100 B, 1.4x at
          1 KiB, by issue 16's check);
      (a) producer -> store, all ACKed: a store process (`zper store`, as a
          user runs it, its own context) and a producer in this process,
          from the first publish until the store acknowledged every record,
          i.e. until every record is durable (fdatasync'd) under the
          default flush policy (store/flush_messages 10000,
          store/flush_interval 1000 ms);
      (b) live consumer: a consumer process (`zper dafka-consume`, joined
          before the first publish) with the store running alongside, from
          the first publish until the consumer has read every record.
    The tower lives in this process (it carries no data). The ratio of
    each Dafka rate is to the RECORD-shaped baseline of the same run and
    size; CPU is given per record: this process (producer, its I/O thread,
    the tower; for the baselines both ends) and the store, from
    /proc/PID/stat, with the context switches of both (every thread);
    for (a) also the time from the last publish to the last ACK (the
    store's backlog plus its flush of a paused input). The summary gives medians [ranges] over the runs, and the reference
    figure of the original C Dafka (quoted from issue 16, not measured).
    --zper: the zper tool that runs the store and consumer (default: zper
    in the folder above this program's, as laid out by the build). The
    store's log lives under --dir (default ./zper-bench-dafka), removed at
    the end. --only acked: the baselines and (a) only (for profiling).
    --quick: tiny counts, one run (ctest: bench.dafka_smoke). A/B against
    other code with the same binary: LD_LIBRARY_PATH=OTHER/build (its
    libzper, for the producer; libzper is found by RUNPATH, which the
    variable overrides) and --zper OTHER/build/zper (the store).
    ========================================================================= */

#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_proto.h"
#include "zper_bench_proc.h"
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_MESSAGES          200000
#define QUICK_MESSAGES          2000
#define RUNS_DEFAULT            3
#define RUNS_MAX                15
#define JOIN_MS                 1000        //  time for beacons to connect the peers
#define READY_MS                20000       //  a child node has this long to say it started
#define STOP_MS                 20000       //  ...and to stop after SIGTERM
#define DONE_MS                 120000      //  a scenario's records have this long to arrive
#define POLL_MS                 1
#define WARMUP_MS               10          //  baseline: a warm-up message until one arrives
#define MEGABYTE                1000000.0
#define S_HEADER_MAX            1024        //  room for any RECORD frame 0 of a short topic
#define S_PATH_MAX              1024

//  The original C Dafka (zeromq/dafka) on this machine kind, producer ->
//  store all acknowledged, as issue 16 quotes it: not measured here
#define REFERENCE_100           346000
#define REFERENCE_1024          101000

static const size_t s_sizes [] = { 100, 1024 };
#define SIZES                   (sizeof s_sizes / sizeof s_sizes [0])

enum { RAW_PLAIN, RAW_RECORD, DAFKA_ACKED, DAFKA_LIVE, SCENARIOS };
static const char *s_scenario_names [SCENARIOS] = {
    "raw libzmq PUB -> SUB", "raw libzmq, RECORD-shaped (2 frames)",
    "producer -> store, all ACKed", "producer -> live consumer"
};

typedef struct {
    int64_t messages;
    int runs;
    const char *dir;
    char zper [S_PATH_MAX];
    bool quick;
    bool skip_live;                 //  --only acked: scenario (b) is not run
} options_t;

//  One scenario of one run
typedef struct {
    double seconds;
    double local_cpu;               //  this process's CPU seconds
    double store_cpu;               //  the store's CPU seconds (Dafka scenarios)
    double local_switches;          //  this process's context switches
    double store_switches;          //  the store's, every thread
    double tail;                    //  (a): seconds from the last publish to the last ACK
} result_t;

//  A node run as its own process
typedef struct {
    pid_t pid;
    char out [S_PATH_MAX];          //  its stdout
    char err [S_PATH_MAX];          //  its stderr
} child_t;

static options_t s_options;
static child_t *s_running_store;    //  stopped by s_fail, so that no store outlives the bench
static zper_dafka_tower_t **s_running_tower;    //  destroyed by s_fail: a clean exit

static double
s_seconds (void)
{
    return zclock_usecs () / 1e6;
}

static void
s_self_usage (double *cpu, double *switches)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    *cpu = (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
    *switches = (double) (usage.ru_nvcsw + usage.ru_nivcsw);
}

//  Context switches of a process, summed over its threads (a process's own
//  status file counts its main thread only)
static double
s_child_switches (pid_t pid)
{
    char path [S_PATH_MAX];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir (path);
    if (!tasks)
        return -1;
    double switches = 0;
    struct dirent *entry;
    while ((entry = readdir (tasks))) {
        if (entry->d_name [0] == '.')
            continue;
        snprintf (path, sizeof path, "/proc/%d/task/%s/status", (int) pid, entry->d_name);
        FILE *file = fopen (path, "r");
        char line [256];
        while (file && fgets (line, sizeof line, file))
            if (strstr (line, "ctxt_switches:"))
                switches += atof (strchr (line, ':') + 1);
        if (file)
            fclose (file);
    }
    closedir (tasks);
    return switches;
}

//  ---- child nodes ----------------------------------------------------------------

//  Starts `zper VERB ARGS...` with its output in files under --dir; its
//  stdout is line-flushed by the tool, so readiness is a line in it.
//  A NULL out_path sends its stdout to a file under --dir.
static int
s_child_start (child_t *child, const char *name, const char *out_path, char *const argv [])
{
    if (out_path)
        snprintf (child->out, sizeof child->out, "%s", out_path);
    else
        snprintf (child->out, sizeof child->out, "%s/%s.out", s_options.dir, name);
    snprintf (child->err, sizeof child->err, "%s/%s.err", s_options.dir, name);
    fflush (stdout);
    child->pid = fork ();
    if (child->pid == 0) {
        //  Only async-signal-safe calls between fork and exec: other threads run
        int out = open (child->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open (child->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || dup2 (out, STDOUT_FILENO) < 0 || dup2 (err, STDERR_FILENO) < 0)
            _exit (127);
        execv (s_options.zper, argv);
        _exit (127);                //  the .err file stays empty: s_fail names the program
    }
    return child->pid > 0? 0: -1;
}

static bool
s_file_has (const char *path, const char *text)
{
    FILE *file = fopen (path, "r");
    char line [1024];
    bool found = false;
    while (file && !found && fgets (line, sizeof line, file))
        found = strstr (line, text) != NULL;
    if (file)
        fclose (file);
    return found;
}

//  Waits until the child printed text on stdout (0), or exited or took too
//  long (-1)
static int
s_child_wait_for (child_t *child, const char *text)
{
    int64_t deadline = zclock_mono () + READY_MS;
    while (zclock_mono () < deadline) {
        if (s_file_has (child->out, text))
            return 0;
        int status;
        if (waitpid (child->pid, &status, WNOHANG) == child->pid) {
            child->pid = 0;
            return -1;
        }
        zclock_sleep (10);
    }
    return -1;
}

//  Waits for the child to exit by itself, up to timeout_ms; 0 if it did
static int
s_child_join (child_t *child, int64_t timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    int status;
    while (child->pid && zclock_mono () < deadline) {
        if (waitpid (child->pid, &status, WNOHANG) == child->pid) {
            child->pid = 0;
            return WIFEXITED (status) && WEXITSTATUS (status) == 0? 0: -1;
        }
        zclock_sleep (POLL_MS);
    }
    return -1;
}

static void
s_child_stop (child_t *child)
{
    if (!child->pid)
        return;
    kill (child->pid, SIGTERM);
    if (s_child_join (child, STOP_MS) && child->pid) {
        kill (child->pid, SIGKILL);
        waitpid (child->pid, NULL, 0);
        child->pid = 0;
    }
}

static void
s_fail (const char *what, child_t *child)
{
    fprintf (stderr, "zper_bench_dafka: %s (%s; see %s)\n", what, s_options.zper,
             child? child->err: "above");
    if (child && child != s_running_store)
        s_child_stop (child);
    if (s_running_store)
        s_child_stop (s_running_store);
    if (s_running_tower)
        zper_dafka_tower_destroy (s_running_tower);
    exit (1);
}

//  ---- (c) raw baselines ------------------------------------------------------------

typedef struct {
    void *socket;
    int64_t messages;
    atomic_bool warm;               //  a warm-up message arrived: the subscription is in
} raw_receiver_t;

//  Warm-up messages are one byte in one frame, no measured message is: they
//  all come first on the one connection, and are skipped
static void *
s_raw_receive (void *argument)
{
    raw_receiver_t *receiver = (raw_receiver_t *) argument;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    for (int64_t index = 0; index < receiver->messages; ) {
        int size = zmq_msg_recv (&msg, receiver->socket, 0);
        assert (size >= 0);
        if (size == 1 && !zmq_msg_more (&msg)) {
            atomic_store (&receiver->warm, true);
            continue;
        }
        while (zmq_msg_more (&msg))         //  the rest of a RECORD-shaped message
            assert (zmq_msg_recv (&msg, receiver->socket, 0) >= 0);
        index++;
    }
    zmq_msg_close (&msg);
    return NULL;
}

//  header_size 0: plain messages of size bytes; else RECORD-shaped ones.
//  One context per end, so one I/O thread per end, as two processes have.
static result_t
s_bench_baseline (int64_t messages, size_t size, size_t header_size)
{
    void *sender_context = zmq_ctx_new ();
    void *receiver_context = zmq_ctx_new ();
    void *pub = zmq_socket (sender_context, ZMQ_PUB);
    void *sub = zmq_socket (receiver_context, ZMQ_SUB);
    int high_watermark = (int) messages + 1000, linger = 0;
    zmq_setsockopt (pub, ZMQ_SNDHWM, &high_watermark, sizeof high_watermark);
    zmq_setsockopt (pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (sub, ZMQ_RCVHWM, &high_watermark, sizeof high_watermark);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
    assert (zmq_bind (pub, "tcp://127.0.0.1:*") == 0);
    char endpoint [256];
    size_t endpoint_size = sizeof endpoint;
    zmq_getsockopt (pub, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size);
    assert (zmq_connect (sub, endpoint) == 0);
    raw_receiver_t receiver = { sub, messages, false };
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_receive, &receiver);
    //  Connected and subscribed before the clock starts
    while (!atomic_load (&receiver.warm)) {
        zmq_send (pub, "w", 1, 0);
        zclock_sleep (WARMUP_MS);
    }
    char *body = (char *) malloc (size);
    memset (body, 'x', size);
    char header [S_HEADER_MAX];
    memset (header, 'M', sizeof header);
    result_t result = { 0 };
    double cpu, switches;
    s_self_usage (&cpu, &switches);
    double start = s_seconds ();
    for (int64_t index = 0; index < messages; index++) {
        if (header_size)
            zmq_send (pub, header, header_size, ZMQ_SNDMORE);
        zmq_send (pub, body, size, 0);
    }
    pthread_join (thread, NULL);
    result.seconds = s_seconds () - start;
    double cpu_after, switches_after;
    s_self_usage (&cpu_after, &switches_after);
    result.local_cpu = cpu_after - cpu;
    result.local_switches = switches_after - switches;
    free (body);
    zmq_close (pub);
    zmq_close (sub);
    zmq_ctx_term (sender_context);
    zmq_ctx_term (receiver_context);
    return result;
}

//  The size of frame 0 of the RECORDs the producer publishes on topic
static size_t
s_record_header_size (const char *topic)
{
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_RECORD);
    zper_dafka_msg_set_topic (msg, topic);
    zper_dafka_msg_set_address (msg, "0123456789ABCDEF0123456789ABCDEF");     //  a uuid's size
    zper_dafka_msg_set_subject (msg, topic);
    zframe_t *header = zper_dafka_msg_encode_header (msg);
    size_t header_size = zframe_size (header);
    zframe_destroy (&header);
    zper_dafka_msg_destroy (&msg);
    return header_size;
}

//  ---- (a), (b) Dafka -------------------------------------------------------------

typedef struct {
    zper_dafka_tower_t *tower;
    zconfig_t *config;              //  this process's peers
    char pub [64];                  //  the tower's addresses, for the children
    char sub [64];
    child_t store;
    int run;
} dafka_t;

static void
s_topic (char *topic, size_t topic_size, const char *mode, int run, size_t size)
{
    snprintf (topic, topic_size, "%s-%d-%zu", mode, run, size);
}

static void
s_measure_begin (dafka_t *dafka, result_t *result, double *start)
{
    s_self_usage (&result->local_cpu, &result->local_switches);
    result->store_cpu = zper_bench_process_cpu (dafka->store.pid);
    result->store_switches = s_child_switches (dafka->store.pid);
    *start = s_seconds ();
}

static void
s_measure_end (dafka_t *dafka, result_t *result, double start)
{
    result->seconds = s_seconds () - start;
    double cpu, switches;
    s_self_usage (&cpu, &switches);
    result->local_cpu = cpu - result->local_cpu;
    result->local_switches = switches - result->local_switches;
    result->store_cpu = zper_bench_process_cpu (dafka->store.pid) - result->store_cpu;
    result->store_switches = s_child_switches (dafka->store.pid) - result->store_switches;
}

//  Publishes copies of one buffer, as the baseline sends it
static void
s_publish (zper_dafka_producer_t *producer, int64_t messages, size_t size)
{
    char *body = (char *) malloc (size);
    memset (body, 'x', size);
    for (int64_t index = 0; index < messages; index++)
        zper_dafka_producer_publish_data (producer, body, size);
    free (body);
}

//  A producer of topic that joined its peers, with messages of size bytes
//  published through it once the measure began
static zper_dafka_producer_t *
s_publish_measured (dafka_t *dafka, const char *topic, int64_t messages, size_t size,
                    result_t *result, double *start)
{
    zper_dafka_producer_t *producer = zper_dafka_producer_new (dafka->config, topic);
    assert (producer);
    zclock_sleep (JOIN_MS);
    s_measure_begin (dafka, result, start);
    s_publish (producer, messages, size);
    return producer;
}

//  (a) until every record is acknowledged by the store
static result_t
s_bench_acked (dafka_t *dafka, int64_t messages, size_t size)
{
    char topic [64];
    s_topic (topic, sizeof topic, "acked", dafka->run, size);
    result_t result = { 0 };
    double start;
    zper_dafka_producer_t *producer = s_publish_measured (dafka, topic, messages, size,
                                                          &result, &start);
    double published_at = s_seconds () - start;
    uint64_t published = 0, unacked = 1;
    int64_t deadline = zclock_mono () + DONE_MS;
    while ((published < (uint64_t) messages || unacked) && zclock_mono () < deadline) {
        zclock_sleep (POLL_MS);
        zper_dafka_producer_stats (producer, &published, &unacked);
    }
    if (unacked)
        s_fail ("the store did not acknowledge every record", &dafka->store);
    s_measure_end (dafka, &result, start);
    result.tail = result.seconds - published_at;
    zper_dafka_producer_destroy (&producer);
    return result;
}

//  (b) until a consumer process has read every record
static result_t
s_bench_live (dafka_t *dafka, int64_t messages, size_t size)
{
    char topic [64], count [32];
    s_topic (topic, sizeof topic, "live", dafka->run, size);
    snprintf (count, sizeof count, "%" PRId64, messages);
    //  From the beginning: a record published before its subscription
    //  arrived is fetched, not missed
    char *argv [] = { "zper", "dafka-consume", "--pub", dafka->pub, "--sub", dafka->sub,
                      "--set", "beacon/interval=100", "--from-beginning", "--count", count,
                      topic, NULL };
    child_t consumer;
    //  Its stdout carries the records: not to a file, whose writes would be measured
    if (s_child_start (&consumer, "consumer", "/dev/null", argv))
        s_fail ("cannot start the consumer", NULL);
    result_t result = { 0 };
    double start;
    zper_dafka_producer_t *producer = s_publish_measured (dafka, topic, messages, size,
                                                          &result, &start);
    if (s_child_join (&consumer, DONE_MS))
        s_fail ("the consumer did not read every record", &consumer);
    s_measure_end (dafka, &result, start);
    zper_dafka_producer_destroy (&producer);
    return result;
}

//  A tower here, a store process on it, and this process's peers' config
static void
s_dafka_start (dafka_t *dafka, int run)
{
    memset (dafka, 0, sizeof *dafka);
    dafka->run = run;
    zconfig_t *config = zconfig_new ("root", NULL);
    zconfig_put (config, "tower/sub_address", "tcp://127.0.0.1:*");
    zconfig_put (config, "tower/pub_address", "tcp://127.0.0.1:*");
    dafka->tower = zper_dafka_tower_new (config);
    assert (dafka->tower);
    s_running_tower = &dafka->tower;
    snprintf (dafka->sub, sizeof dafka->sub, "tcp://127.0.0.1:%d",
              zper_dafka_tower_sub_port (dafka->tower));
    snprintf (dafka->pub, sizeof dafka->pub, "tcp://127.0.0.1:%d",
              zper_dafka_tower_pub_port (dafka->tower));
    zconfig_put (config, "beacon/sub_address", dafka->sub);
    zconfig_put (config, "beacon/pub_address", dafka->pub);
    zconfig_put (config, "beacon/address", "127.0.0.1");
    zconfig_put (config, "beacon/interval", "100");
    dafka->config = config;
    char db [S_PATH_MAX];
    snprintf (db, sizeof db, "%s/storedb-%d", s_options.dir, run);
    char *argv [] = { "zper", "store", "--pub", dafka->pub, "--sub", dafka->sub, "--db", db,
                      "--set", "beacon/interval=100", NULL };
    s_running_store = &dafka->store;
    if (s_child_start (&dafka->store, "store", NULL, argv)
    ||  s_child_wait_for (&dafka->store, "zper store: writer"))
        s_fail ("the store did not start", &dafka->store);
}

static void
s_dafka_stop (dafka_t *dafka)
{
    s_child_stop (&dafka->store);
    s_running_store = NULL;
    s_running_tower = NULL;
    zper_dafka_tower_destroy (&dafka->tower);
    zconfig_destroy (&dafka->config);
}

//  ---- report ---------------------------------------------------------------------

static int
s_compare (const void *left, const void *right)
{
    double a = *(const double *) left, b = *(const double *) right;
    return a < b? -1: a > b? 1: 0;
}

//  Median of values [count] (sorted in place), range in low, high
static double
s_median (double *values, int count, double *low, double *high)
{
    qsort (values, count, sizeof (double), s_compare);
    *low = values [0];
    *high = values [count - 1];
    return count % 2? values [count / 2]: (values [count / 2 - 1] + values [count / 2]) / 2;
}

static void
s_report_run (int run, size_t size, int scenario, const result_t *result, const result_t *baseline)
{
    double rate = s_options.messages / result->seconds;
    printf ("%3d %6zu  %-38s %10.0f %8.1f", run, size, s_scenario_names [scenario], rate,
            rate * size / MEGABYTE);
    if (baseline)
        printf ("  %5.2f", baseline->seconds / result->seconds);
    else
        printf ("  %5s", "");
    printf ("  %6.2f %6.2f  %6.3f %6.3f", result->local_cpu * 1e6 / s_options.messages,
            result->store_cpu * 1e6 / s_options.messages,
            result->local_switches / s_options.messages,
            result->store_switches / s_options.messages);
    if (scenario == DAFKA_ACKED)
        printf ("  last ACK %.0f ms after the last publish", result->tail * 1000);
    printf ("\n");
    fflush (stdout);
}

//  Medians over the runs; ratios are taken run by run to that run's
//  RECORD-shaped baseline (plain PUB -> SUB: to the plain one)
static void
s_report_summary (result_t results [][SIZES][SCENARIOS], int runs)
{
    printf ("\nSummary: median [range] of %d run(s); ratio = rate / the same run's RECORD-shaped "
            "raw PUB -> SUB (for that baseline: / plain raw PUB -> SUB)\n", runs);
    printf ("%6s  %-38s %24s %18s %7s %7s %6s %6s\n", "size", "mode", "records/s", "ratio",
            "cli us", "sto us", "cli cs", "sto cs");
    for (size_t index = 0; index < SIZES; index++) {
        for (int scenario = 0; scenario < SCENARIOS; scenario++) {
            if (scenario == DAFKA_LIVE && s_options.skip_live)
                continue;
            double rates [RUNS_MAX], ratios [RUNS_MAX], local [RUNS_MAX], store [RUNS_MAX];
            double local_switches [RUNS_MAX], store_switches [RUNS_MAX];
            for (int run = 0; run < runs; run++) {
                result_t *result = &results [run][index][scenario];
                //  The RECORD-shaped baseline's own ratio: to plain messages
                int base = scenario == RAW_PLAIN || scenario == RAW_RECORD? RAW_PLAIN: RAW_RECORD;
                result_t *baseline = &results [run][index][base];
                rates [run] = s_options.messages / result->seconds;
                ratios [run] = baseline->seconds / result->seconds;
                local [run] = result->local_cpu * 1e6 / s_options.messages;
                store [run] = result->store_cpu * 1e6 / s_options.messages;
                local_switches [run] = result->local_switches / s_options.messages;
                store_switches [run] = result->store_switches / s_options.messages;
            }
            double rate_low, rate_high, ratio_low, ratio_high, ignore;
            double rate = s_median (rates, runs, &rate_low, &rate_high);
            double ratio = s_median (ratios, runs, &ratio_low, &ratio_high);
            printf ("%6zu  %-38s %8.0f [%6.0f-%6.0f] %5.2f [%4.2f-%4.2f] %7.2f %7.2f %6.3f %6.3f\n",
                    s_sizes [index], s_scenario_names [scenario], rate, rate_low, rate_high,
                    ratio, ratio_low, ratio_high, s_median (local, runs, &ignore, &ignore),
                    s_median (store, runs, &ignore, &ignore),
                    s_median (local_switches, runs, &ignore, &ignore),
                    s_median (store_switches, runs, &ignore, &ignore));
        }
        printf ("%6zu  %-38s %8d   (reference C Dafka, producer -> store all ACKed, on this "
                "machine kind, quoted from issue 16, not measured here)\n", s_sizes [index],
                "zeromq/dafka (reference)", s_sizes [index] == 100? REFERENCE_100: REFERENCE_1024);
    }
    printf ("cli us / sto us: CPU microseconds per record of this process (the producer and its "
            "I/O thread; for raw, both ends) and of the store process; cli cs / sto cs: their "
            "context switches per record\n");
}

static int
s_parse (options_t *options, int argc, char *argv [])
{
    for (int index = 1; index < argc; index++) {
        if (streq (argv [index], "--quick")) {
            options->quick = true;
            options->messages = QUICK_MESSAGES;
            options->runs = 1;
        }
        else
        if (streq (argv [index], "--messages") && index + 1 < argc)
            options->messages = atoll (argv [++index]);
        else
        if (streq (argv [index], "--runs") && index + 1 < argc)
            options->runs = atoi (argv [++index]);
        else
        if (streq (argv [index], "--dir") && index + 1 < argc)
            options->dir = argv [++index];
        else
        if (streq (argv [index], "--only") && index + 1 < argc && streq (argv [index + 1], "acked")) {
            options->skip_live = true;
            index++;
        }
        else
        if (streq (argv [index], "--zper") && index + 1 < argc)
            snprintf (options->zper, sizeof options->zper, "%s", argv [++index]);
        else {
            fprintf (stderr, "usage: zper_bench_dafka [--quick] [--messages N] [--runs R] "
                     "[--zper PATH] [--only acked] [--dir DIR]\n");
            return -1;
        }
    }
    if (!*options->zper) {
        char self [S_PATH_MAX - 16];
        ssize_t length = readlink ("/proc/self/exe", self, sizeof self - 1);
        self [length > 0? length: 0] = 0;
        char *slash = strrchr (self, '/');
        if (slash)
            *slash = 0;
        snprintf (options->zper, sizeof options->zper, "%s/../zper", self);
    }
    return options->messages > 0 && options->runs >= 1 && options->runs <= RUNS_MAX? 0: -1;
}

int
main (int argc, char *argv [])
{
    s_options = (options_t) { BENCH_MESSAGES, RUNS_DEFAULT, "zper-bench-dafka", "", false, false };
    if (s_parse (&s_options, argc, argv))
        return 2;
    zsys_dir_create ("%s", s_options.dir);
    printf ("%" PRId64 " records per scenario, %d run(s), TCP loopback, store: %s store (its own "
            "process), flush policy: log defaults\n", s_options.messages, s_options.runs,
            s_options.zper);
    printf ("%3s %6s  %-38s %10s %8s  %5s  %6s %6s  %6s %6s\n", "run", "size", "mode",
            "records/s", "MB/s", "ratio", "cli us", "sto us", "cli cs", "sto cs");
    static result_t results [RUNS_MAX][SIZES][SCENARIOS];
    for (int run = 0; run < s_options.runs; run++) {
        //  The baselines run before any Dafka peer of the run exists, so that
        //  none of their ephemeral ports is one a Dafka peer's SUB reconnects to
        for (size_t index = 0; index < SIZES; index++) {
            size_t size = s_sizes [index];
            char topic [64];
            s_topic (topic, sizeof topic, "acked", run, size);
            result_t *row = results [run][index];
            row [RAW_PLAIN] = s_bench_baseline (s_options.messages, size, 0);
            s_report_run (run, size, RAW_PLAIN, &row [RAW_PLAIN], NULL);
            row [RAW_RECORD] = s_bench_baseline (s_options.messages, size,
                                                 s_record_header_size (topic));
            s_report_run (run, size, RAW_RECORD, &row [RAW_RECORD], &row [RAW_PLAIN]);
        }
        dafka_t dafka;
        s_dafka_start (&dafka, run);
        for (size_t index = 0; index < SIZES; index++) {
            size_t size = s_sizes [index];
            result_t *row = results [run][index];
            row [DAFKA_ACKED] = s_bench_acked (&dafka, s_options.messages, size);
            s_report_run (run, size, DAFKA_ACKED, &row [DAFKA_ACKED], &row [RAW_RECORD]);
            if (s_options.skip_live)
                continue;
            row [DAFKA_LIVE] = s_bench_live (&dafka, s_options.messages, size);
            s_report_run (run, size, DAFKA_LIVE, &row [DAFKA_LIVE], &row [RAW_RECORD]);
        }
        s_dafka_stop (&dafka);
    }
    s_report_summary (results, s_options.runs);
    char *command = zsys_sprintf ("rm -rf '%s'", s_options.dir);
    if (system (command) != 0)
        fprintf (stderr, "zper_bench_dafka: could not remove %s\n", s_options.dir);
    zstr_free (&command);
    return 0;
}
