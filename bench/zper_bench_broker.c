/*  =========================================================================
    zper_bench_broker - zperd and libzper measured against raw libzmq and
    the raw disk, every figure a ratio to a baseline of the same run

    Usage: zper_bench_broker [--quick] [--runs R] [--zperd PATH] [--dir DIR]
                             [--out DIR] [--log-gb G] [--only LIST]

    Scenarios (LIST: a comma list of raw, produce, consume, latency,
    hostile, restart, curve, scale; default all):
      raw       DEALER->ROUTER and PUSH->PULL over tcp loopback, in this
                process, one frame per message, with the message counts
                of the produce runs compared with them (s_counts);
                sequential write() of 400 MB + one fdatasync (disk
                bandwidth); 1000 x write() + fdatasync of 100 B, timed one
                by one (the durability floor of every latency figure).
      produce   1 and 4 producer threads (libzper), modes 0, 1, 2 and 3
                (native batches), 100 B / 1 KiB / 64 KiB one-frame
                messages, against a fresh zperd with the default flush
                policy and with flush_messages = 0 (a sync per write group),
                counts per size and mode from s_counts (0.5-1 s at the rate
                each path should reach). Modes 1-3 end when every message
                is acknowledged; mode 0 (no acks) with the sync policy when
                STATS counts every message durable, with the default policy
                when the broker's CPU time last advanced before that (its
                last append; the tail then waits idle up to flush_interval
                for its sync, the policy's latency, not the producer's
                throughput). Then durable.m3.p4.100.sync: 4 producers of
                native batches acked once durable, a sync per write group,
                each producer keeping its window of batches in flight (the
                1M msg/s target). With the default policy, modes 0, 1 and 3
                each run right after their twin, raw.twin.mM.pP.S: the raw
                DEALER->ROUTER with the scenario's size and count, the
                baseline of the scenario's ratio (adjacent, so that the
                host's drift over a run does not enter the ratio).
      consume   a topic of 100 B messages read from its start with the
                page cache warm: batched READ (zper_consumer_recv) and a
                legacy streaming FETCH on a raw DEALER (connected and
                answered first, then timed from FETCH to its last message
                with a bare zmq_msg_recv loop, as the raw receiver is).
      latency   a producer in mode 0 (no acks) and in mode 1 (acked once
                durable) paced at 1k/10k/100k msg/s against a broker with
                its default configuration (readers see written data); a
                reader follows the topic by READ long-poll or by the relay
                (latency.mM.PATH.RATE). The latency of a message is its
                receive time minus its SCHEDULED send time (no coordinated
                omission). Baselines: latency.raw.RATE, the same paced
                sender on a bare DEALER->ROUTER over tcp loopback (one
                hop); latency.proxy.RATE, through a bare forwarder thread
                with its own context (ROUTER in, PUSH out): the floor of
                any broker on this machine, before it does any work.
                Then latency_hops.json (under --out, a line per run): a
                fresh broker's STATS "hops" after the traffic of
                latency.m0.relay.10000, the time of each hop inside it.
                latency.m1.ack.RATE (1k, 10k): a raw mode-1 DEALER paced
                at RATE, ack receive time minus scheduled send time; its
                baseline raw.fdatasync (target: p99 <= 2x its p99), and
                latency.raw.fdatasync.RATE, the disk alone at that rate:
                records paced at RATE, each group that is due written and
                synced by one thread (sync end minus scheduled time).
      hostile   the hostile neighbour: a well-behaved producer (mode 1,
                100 B, a window of 100 acks owed) alone, then next to a
                silent streaming reader and a silent ack subscriber of
                another topic (on another front worker) and a writer of
                messages just under 8 MiB (max_message) into it; its throughput (hostile.neighbour,
                ratio to hostile.alone of the same run) and its p99 ack
                latency (time from its send to its reply), each run on a
                fresh broker with the default configuration. Between the
                two, hostile.writer: next to the writer alone, which
                tells what the shared disk costs from what the silent
                peers add.
      restart   a log of --log-gb GiB; time from exec of zperd to the
                first FETCH reply after a clean stop and after kill -9.
      curve     what CURVE costs (issue 13), at 100 B and 1 KiB, every
                count the mode-0 count of s_counts: curve.raw.dealer.S,
                a libzmq CURVE DEALER->ROUTER as zperd serves it (zauth
                on the allowed-keys folder, ZAP domain, socket monitor:
                zper_security_server), next to the plaintext
                raw.dealer.S (the raw group's, run here when raw is not
                wanted); then, each time against a plaintext broker
                (curve.off.X) and a security.curve = 1 broker
                (curve.on.X): X = mM.p1.S, one libzper producer in mode
                0, 1 and 3 (native batches: one CURVE box per batch);
                fetch_stream.S, a streaming FETCH of a topic of S-byte
                messages on a raw CURVE DEALER; read.S, the same topic by
                batched READ. curve.on.X has two ratios: to
                curve.raw.dealer.S (the table's, the >= 0.8x target) and
                to curve.off.X (the CURVE cost table after it). The
                certificates are made here, under --dir/curve.
      scale     the scale curves, mode 0, 100 B, the mode-0 count:
                scale.topics.N, one sender writing round robin over N =
                1, 10, 100, 1,000, 10,000 topics (N connections whose
                routing ids name the topics), ratio to scale.topics.1;
                scale.raw.topics.N, the same sender to a bare ROUTER
                (ratio to scale.raw.topics.1); scale.producers.P, P = 1,
                4, 16, 64 libzper producers of one topic, ratio to
                scale.producers.1 (s_scale_bench says how each ends).
                --quick: 1 and 10 topics, 1 and 4 producers.

    Every scenario runs --runs times; the runs are interleaved (run 1 of
    everything, then run 2...) so that noise from other processes spreads
    over all of them, and a ratio is taken within one run, then the
    median over the runs is reported with its range. Broker CPU is
    utime+stime from /proc/PID/stat, peak RSS its VmHWM (a fresh broker
    per scenario run); client CPU is this process's getrusage (all its
    threads, libzmq's I/O thread included) until the producers are done,
    so the bench's watching of a mode-0 broker is not in it. Both are
    also given per message (us/msg), the figures least moved by noise.

    Output: a table on stdout, a progress line on stderr, and under --out
    (default: the working directory) broker_runs.csv (every run) and
    broker_summary.csv (medians, ranges, ratios, CPU us per message; the
    last columns the ratio to the plaintext twin of a curve.on scenario),
    targets.csv (the targets of issues 4, 12 and 13, met or missed, each
    against its scenario's same-run, same-count baseline). --zperd: the broker to
    run (default: zperd in the folder above this program's, as laid out
    by the build). --dir:
    scratch folder for logs and data (default ./zper-bench-broker), removed
    at the end. --quick: tiny counts, one run, few scenarios, a few
    seconds, no timing assertions (ctest runs it as bench.broker_smoke).
    bench/run.sh drives the reported runs; BENCHMARKS.md has the figures.
    ========================================================================= */

#include "zper.h"
#include "zper_defaults.h"
#include "zper_identity.h"
#include "zper_security.h"
#include "zper_bench_proc.h"
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS_DEFAULT        3
#define RUNS_MAX            9
#define LOG_GB_DEFAULT      2.0
#define SCENARIOS_MAX       128
#define PRODUCERS_MAX       64          //  the scale group's largest producer count
#define BROKER_READY_MS     20000
#define BROKER_STOP_MS      60000
#define PORT_FIRST          10000   //  below the ephemeral range (32768+): no clash with client ports,
#define PORT_SPAN           (ZPER_TEST_PORT_FIRST - PORT_FIRST - 5)  //  nor with the ports tests reserve
#define PORT_ATTEMPTS       30
#define STATS_POLL_MS       20
#define CPU_POLL_MS        1
#define IDLE_GAP_MS         100
#define CLIENT_TIMEOUT_MS   5000
#define ACK_TIMEOUT_MS      60000
#define LATENCY_SIZE        100
#define LATENCY_WAIT_MS     200
#define CONSUME_SIZE        100
#define DURABLE_SIZE        100
#define DURABLE_PRODUCERS   4
#define RESTART_BODY        1024
#define HOSTILE_SIZE        100
#define HOSTILE_MESSAGES    50000
#define HOSTILE_WINDOW      100         //  acks the well-behaved producer owes before it waits
#define HOSTILE_BIG_SIZE    (ZPER_DEFAULT_MAX_MESSAGE - 64)     //  the neighbour's messages
#define HOSTILE_BIG_WINDOW  4           //  acks the neighbour's writer owes before it waits
#define HOSTILE_SILENT_BUFFER 4096      //  SO_RCVBUF of the silent sockets
#define FILL_BATCH_BYTES    (32 * 1024)
#define FILL_SYNC_MESSAGES  20000
#define DISK_CHUNK          (256 * 1024)
#define FETCH_PROBE_BYTES   65536
#define CURVE_PROBE_MS      200         //  a plaintext probe of a CURVE broker gives up then
#define EXIT_PORT_IN_USE    1
#define MEGABYTE            1e6
#define GIBIBYTE            (1024.0 * 1024.0 * 1024.0)

typedef struct {
    bool quick;
    int runs;
    double log_gb;
    char *zperd;
    const char *dir;
    const char *out;
    const char *only;
} options_t;

//  One measured run of one scenario
typedef struct {
    int64_t messages;
    double bytes;               //  payload bytes moved
    double seconds;
    double broker_cpu;          //  seconds, -1 when no broker
    double client_cpu;
    double broker_hwm_kb;       //  -1 when no broker
    double p50, p99, p999, max; //  microseconds, -1 when not a latency scenario
} result_t;

//  A scenario: its runs and the baseline its ratio is taken against
typedef struct {
    char name [64];
    char baseline [64];         //  empty: no ratio
    char plain [64];            //  curve.on: its plaintext twin, else empty
    bool by_bytes;              //  ratio of MB/s instead of msg/s
    size_t size;
    int count;                  //  runs done
    result_t runs [RUNS_MAX];
} scenario_t;

typedef struct {
    pid_t pid;
    char dir [256];
    char config [300];
    int port;
    bool curve;                 //  security.curve = 1, with the bench's certificates
    char front [64], rear [64], relay [64];
} broker_t;

//  The certificates of the curve scenarios, made once under --dir/curve:
//  the broker's (server), the bench's (client: every ZPER and raw CURVE
//  client of the bench), and the folder of allowed keys holding the
//  client's public certificate, which grants write and read on every topic
typedef struct {
    zcert_t *server;
    zcert_t *client;
    char server_path [300];
    char client_path [300];
    char keys_dir [300];
    zper_security_t *security;  //  the raw CURVE server's zauth and monitor, one per process
} curve_t;

static scenario_t s_scenarios [SCENARIOS_MAX];
static int s_scenario_count;
static int s_current_run;
static options_t s_options;
static curve_t s_curve;

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static double
s_self_cpu (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
}

static void
s_put_be64 (uint8_t *target, int64_t value)
{
    for (int index = 7; index >= 0; index--, value = (int64_t) ((uint64_t) value >> 8))
        target [index] = (uint8_t) value;
}

static void
s_progress (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    fprintf (stderr, "\r\033[K[run %d/%d] %s", s_current_run + 1, s_options.runs, text);
    fflush (stderr);
    free (text);
}

static bool
s_wanted (const char *group)
{
    if (!s_options.only)
        return true;
    char *list = zsys_sprintf (",%s,", s_options.only);
    char *item = zsys_sprintf (",%s,", group);
    bool found = strstr (list, item) != NULL;
    free (list);
    free (item);
    return found;
}

static void
s_remove_tree (const char *path)
{
    char *command = zsys_sprintf ("rm -rf '%s'", path);
    if (system (command) != 0)
        fprintf (stderr, "zper_bench_broker: could not remove %s\n", path);
    free (command);
}

//  Record a run of scenario name (created on first use); returns the scenario
static scenario_t *
s_record (const char *name, const char *baseline, bool by_bytes, size_t size, result_t *result)
{
    scenario_t *scenario = NULL;
    for (int index = 0; index < s_scenario_count && !scenario; index++)
        if (streq (s_scenarios [index].name, name))
            scenario = &s_scenarios [index];
    if (!scenario) {
        assert (s_scenario_count < SCENARIOS_MAX);
        scenario = &s_scenarios [s_scenario_count++];
        snprintf (scenario->name, sizeof scenario->name, "%s", name);
        snprintf (scenario->baseline, sizeof scenario->baseline, "%s", baseline? baseline: "");
        scenario->by_bytes = by_bytes;
        scenario->size = size;
    }
    assert (scenario->count < RUNS_MAX);
    scenario->runs [scenario->count++] = *result;
    return scenario;
}

//  Record a run of scenario name with a ratio to baseline and, when plain
//  is given, a second ratio to plain (a curve.on scenario's plaintext twin)
static void
s_record_versus (const char *name, const char *baseline, const char *plain, size_t size,
                 result_t *result)
{
    scenario_t *scenario = s_record (name, baseline, false, size, result);
    if (plain)
        snprintf (scenario->plain, sizeof scenario->plain, "%s", plain);
}

//  ---- CURVE certificates ---------------------------------------------------

//  Make the certificates of the curve scenarios under --dir/curve, as
//  `zper keygen` would: CZMQ certificate pairs, secret files 0600 (zperd
//  refuses any other mode), the client's public half in the allowed folder
static void
s_curve_certificates (void)
{
    char *dir = zsys_sprintf ("%s/curve", s_options.dir);
    s_remove_tree (dir);
    assert (mkdir (dir, 0700) == 0);
    snprintf (s_curve.keys_dir, sizeof s_curve.keys_dir, "%s/keys", dir);
    assert (mkdir (s_curve.keys_dir, 0700) == 0);
    snprintf (s_curve.server_path, sizeof s_curve.server_path, "%s/broker", dir);
    snprintf (s_curve.client_path, sizeof s_curve.client_path, "%s/bench", dir);
    s_curve.server = zcert_new ();
    s_curve.client = zcert_new ();
    zcert_set_meta (s_curve.client, "write", "*");
    zcert_set_meta (s_curve.client, "read", "*");
    char *allowed_path = zsys_sprintf ("%s/bench", s_curve.keys_dir);
    assert (zcert_save (s_curve.server, s_curve.server_path) == 0);
    assert (zcert_save (s_curve.client, s_curve.client_path) == 0);
    assert (zcert_save_public (s_curve.client, allowed_path) == 0);
    const char *paths [] = { s_curve.server_path, s_curve.client_path };
    for (size_t index = 0; index < sizeof paths / sizeof paths [0]; index++) {
        char *secret_path = zsys_sprintf ("%s_secret", paths [index]);
        assert (chmod (secret_path, 0600) == 0);
        free (secret_path);
    }
    free (allowed_path);
    free (dir);
    //  One per process, as in zperd (its zauth owns the process's ZAP endpoint)
    char error [256];
    s_curve.security = zper_security_new (s_curve.server_path, s_curve.keys_dir,
                                          ZPER_SECURITY_RELOAD_MS, false, error, sizeof error);
    if (!s_curve.security) {
        fprintf (stderr, "zper_bench_broker: %s\n", error);
        exit (1);
    }
}

static void
s_curve_destroy (void)
{
    zper_security_destroy (&s_curve.security);
    zcert_destroy (&s_curve.server);
    zcert_destroy (&s_curve.client);
}

//  Make a raw socket, before it connects, a CURVE client of the bench's
//  broker certificate, authenticated by the bench's own certificate
static void
s_curve_client (void *socket)
{
    const char *server_key = zcert_public_txt (s_curve.server);
    const char *public_key = zcert_public_txt (s_curve.client);
    const char *secret_key = zcert_secret_txt (s_curve.client);
    assert (zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, server_key, strlen (server_key)) == 0);
    assert (zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, public_key, strlen (public_key)) == 0);
    assert (zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, secret_key, strlen (secret_key)) == 0);
}

//  libzper clients of a broker: with CURVE when the broker has it on
static zper_consumer_t *
s_consumer_new (const broker_t *broker, const char *topic)
{
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, topic);
    assert (consumer);
    if (broker->curve && zper_consumer_set_curve (consumer, zcert_public_txt (s_curve.server),
                                                  s_curve.client_path)) {
        fprintf (stderr, "\nzper_bench_broker: %s\n", zper_consumer_error (consumer));
        exit (1);
    }
    return consumer;
}

static zper_producer_t *
s_producer_new (const char *front, const char *topic, int mode, bool curve)
{
    zper_producer_t *producer = zper_producer_new (front, topic, mode);
    assert (producer);
    if (curve && zper_producer_set_curve (producer, zcert_public_txt (s_curve.server),
                                          s_curve.client_path)) {
        fprintf (stderr, "\nzper_bench_broker: %s\n", zper_producer_error (producer));
        exit (1);
    }
    return producer;
}

static result_t
s_result_init (void)
{
    result_t result = { 0, 0, 0, -1, 0, -1, -1, -1, -1, -1 };
    return result;
}

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int
s_compare_int64 (const void *left, const void *right)
{
    int64_t a = *(const int64_t *) left, b = *(const int64_t *) right;
    return (a > b) - (a < b);
}

static double
s_percentile_us (const int64_t *sorted, int64_t count, double fraction)
{
    if (count == 0)
        return -1;
    int64_t index = (int64_t) (fraction * (double) (count - 1) + 0.5);
    return (double) sorted [index] / 1000.0;
}

//  Sort times (ns) and set the result's percentiles (us)
static void
s_percentiles (result_t *result, int64_t *times_ns, int64_t count)
{
    qsort (times_ns, (size_t) count, sizeof (int64_t), s_compare_int64);
    result->p50 = s_percentile_us (times_ns, count, 0.50);
    result->p99 = s_percentile_us (times_ns, count, 0.99);
    result->p999 = s_percentile_us (times_ns, count, 0.999);
    result->max = s_percentile_us (times_ns, count, 1.0);
}

//  ---- broker process ----------------------------------------------------

static double
s_broker_cpu (const broker_t *broker)
{
    return zper_bench_process_cpu (broker->pid);
}

static double
s_broker_hwm_kb (const broker_t *broker)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", (int) broker->pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [256];
    double kb = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "VmHWM:", 6) == 0)
            kb = atof (line + 6);
    fclose (file);
    return kb;
}

//  Write the broker's configuration: ports from broker->port up, data in
//  broker->dir/data; flush_messages < 0 keeps the default policy.
static void
s_broker_configure (broker_t *broker, int flush_messages)
{
    snprintf (broker->front, sizeof broker->front, "tcp://127.0.0.1:%d", broker->port);
    snprintf (broker->rear, sizeof broker->rear, "tcp://127.0.0.1:%d", broker->port + 1);
    snprintf (broker->relay, sizeof broker->relay, "tcp://127.0.0.1:%d", broker->port + 3);
    snprintf (broker->config, sizeof broker->config, "%s/zperd.conf", broker->dir);
    FILE *file = fopen (broker->config, "w");
    assert (file);
    fprintf (file, "base_dir = \"%s/data\"\nfront.bind = \"%s\"\nrear.bind = \"%s\"\n"
             "ack.bind = \"tcp://127.0.0.1:%d\"\nrelay.bind = \"%s\"\n"
             "relay.pub.bind = \"tcp://127.0.0.1:%d\"\n",
             broker->dir, broker->front, broker->rear, broker->port + 2, broker->relay,
             broker->port + 4);
    if (flush_messages >= 0)
        fprintf (file, "flush_messages = %d\n", flush_messages);
    if (broker->curve)
        fprintf (file, "security.curve = 1\nsecurity.cert = \"%s\"\nsecurity.keys = \"%s\"\n",
                 s_curve.server_path, s_curve.keys_dir);
    fclose (file);
}

//  Fork and exec zperd on broker->config; its stderr goes to zperd.log
static void
s_broker_spawn (broker_t *broker)
{
    char log_path [300];
    snprintf (log_path, sizeof log_path, "%s/zperd.log", broker->dir);
    broker->pid = fork ();
    assert (broker->pid >= 0);
    if (broker->pid == 0) {
        //  A bench that dies (an assert, a ctest timeout) takes its brokers along
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, STDERR_FILENO);
            dup2 (fd, STDOUT_FILENO);
        }
        execl (s_options.zperd, "zperd", "-c", broker->config, (char *) NULL);
        _exit (127);
    }
}

//  Wait until the rear answers BOUNDS. Returns 0, or the broker's exit
//  code if it died (EXIT_PORT_IN_USE: try other ports), or -1 on timeout.
static int
s_broker_wait_ready (broker_t *broker)
{
    int64_t deadline = zclock_mono () + BROKER_READY_MS;
    while (zclock_mono () < deadline) {
        int status;
        if (waitpid (broker->pid, &status, WNOHANG) == broker->pid) {
            broker->pid = 0;
            return WIFEXITED (status)? WEXITSTATUS (status): 128;
        }
        zper_consumer_t *probe = s_consumer_new (broker, NULL);
        zper_consumer_set_timeout (probe, 100);
        zper_topic_bounds_t bounds;
        int rc = zper_consumer_bounds (probe, "probe", &bounds);
        zper_consumer_destroy (&probe);
        if (rc == 0)
            return 0;
        zclock_sleep (10);
    }
    return -1;
}

//  A curve.on figure means something only if the broker does CURVE: a
//  plaintext client must get no answer from it
static void
s_broker_check_curve (const broker_t *broker)
{
    zper_consumer_t *probe = zper_consumer_new (broker->rear, NULL);
    zper_consumer_set_timeout (probe, CURVE_PROBE_MS);
    zper_topic_bounds_t bounds;
    int rc = zper_consumer_bounds (probe, "probe", &bounds);
    zper_consumer_destroy (&probe);
    if (rc == 0) {
        fprintf (stderr, "\nzper_bench_broker: zperd (%s) with security.curve = 1 answered a "
                 "plaintext client (see %s)\n", s_options.zperd, broker->config);
        exit (1);
    }
}

//  Start a fresh broker in a new folder under the bench dir; with curve,
//  security.curve = 1 and the certificates of s_curve_certificates
static void
s_broker_start (broker_t *broker, const char *name, int flush_messages, bool curve)
{
    memset (broker, 0, sizeof *broker);
    broker->curve = curve;
    snprintf (broker->dir, sizeof broker->dir, "%s/%s", s_options.dir, name);
    s_remove_tree (broker->dir);
    mkdir (broker->dir, 0755);
    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        broker->port = PORT_FIRST + (int) (random () % PORT_SPAN);
        s_broker_configure (broker, flush_messages);
        s_broker_spawn (broker);
        int rc = s_broker_wait_ready (broker);
        if (rc == 0 && curve)
            s_broker_check_curve (broker);
        if (rc == 0)
            return;
        if (rc != EXIT_PORT_IN_USE) {
            fprintf (stderr, "\nzper_bench_broker: zperd (%s) did not start (%d), see %s/zperd.log\n",
                     s_options.zperd, rc, broker->dir);
            exit (1);
        }
    }
    fprintf (stderr, "\nzper_bench_broker: no free ports for zperd\n");
    exit (1);
}

//  Send signal and wait for the broker to exit
static void
s_broker_stop (broker_t *broker, int signal)
{
    if (broker->pid <= 0)
        return;
    kill (broker->pid, signal);
    int64_t deadline = zclock_mono () + BROKER_STOP_MS;
    int status;
    while (waitpid (broker->pid, &status, WNOHANG) == 0) {
        if (zclock_mono () > deadline) {
            kill (broker->pid, SIGKILL);
            waitpid (broker->pid, &status, 0);
            break;
        }
        zclock_sleep (5);
    }
    broker->pid = 0;
}

static void
s_broker_destroy (broker_t *broker)
{
    s_broker_stop (broker, SIGTERM);
    s_remove_tree (broker->dir);
}

//  Messages the broker has appended to topic (STATS messages_written), -1
//  if the topic is not there yet
static int64_t
s_broker_written (zper_consumer_t *reader, const char *topic)
{
    char *json = zper_consumer_stats (reader);
    if (!json)
        return -1;
    char *key = zsys_sprintf ("\"%s\"", topic);
    char *entry = strstr (json, key);
    char *field = entry? strstr (entry, "\"messages_written\""): NULL;
    int64_t written = -1;
    if (field && (field = strchr (field, ':')))
        written = strtoll (field + 1, NULL, 10);
    free (key);
    zstr_free (&json);
    return written;
}

//  ---- raw baselines ---------------------------------------------------------

typedef struct {
    void *socket;
    int64_t messages;
    bool router;                //  each message has a routing id frame first
} raw_receiver_t;

static void *
s_raw_receive (void *args)
{
    raw_receiver_t *receiver = (raw_receiver_t *) args;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    for (int64_t index = 0; index < receiver->messages; index++) {
        if (receiver->router)
            assert (zmq_msg_recv (&frame, receiver->socket, 0) >= 0);
        assert (zmq_msg_recv (&frame, receiver->socket, 0) >= 0);
    }
    zmq_msg_close (&frame);
    return NULL;
}

//  N messages of size bytes from a sender to a receiver thread over tcp
//  loopback, no broker. Each end has its own context, so its own I/O
//  thread, as two processes would (libzmq's local_thr and remote_thr; a
//  producer and zperd): one shared I/O thread would carry both ends'
//  work and understate the transport. With curve the receiver is a CURVE
//  server made as zperd makes its sockets (s_curve.security: zauth on the
//  allowed folder in CZMQ's context, whose I/O thread is then the
//  receiver's, the ZAP domain, the refusal monitor) and the sender a
//  CURVE client with the bench's certificate.
static result_t
s_raw_transport (int sender_type, int receiver_type, size_t size, int64_t messages, bool curve)
{
    void *context = zmq_ctx_new ();
    void *receiver_context = curve? NULL: zmq_ctx_new ();
    zsock_t *curve_receiver = NULL;
    void *receiver_socket;
    if (curve) {
        curve_receiver = zsock_new (receiver_type);
        if (zper_security_server (s_curve.security, curve_receiver, "bench")) {
            fprintf (stderr, "\nzper_bench_broker: zper_security_server: %s\n", strerror (errno));
            exit (1);
        }
        receiver_socket = zsock_resolve (curve_receiver);
    }
    else
        receiver_socket = zmq_socket (receiver_context, receiver_type);
    void *sender_socket = zmq_socket (context, sender_type);
    if (curve)
        s_curve_client (sender_socket);
    assert (zmq_bind (receiver_socket, "tcp://127.0.0.1:*") == 0);
    char endpoint [256];
    size_t endpoint_size = sizeof endpoint;
    zmq_getsockopt (receiver_socket, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size);
    assert (zmq_connect (sender_socket, endpoint) == 0);
    uint8_t *body = (uint8_t *) calloc (1, size);
    //  Handshake first, so that connecting is not measured
    assert (zmq_send (sender_socket, body, size, 0) == (int) size);
    raw_receiver_t receiver = { receiver_socket, 1, receiver_type == ZMQ_ROUTER };
    s_raw_receive (&receiver);
    receiver.messages = messages;

    result_t result = s_result_init ();
    double cpu = s_self_cpu ();
    double start = s_now ();
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_receive, &receiver);
    for (int64_t index = 0; index < messages; index++)
        assert (zmq_send (sender_socket, body, size, 0) == (int) size);
    pthread_join (thread, NULL);
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.messages = messages;
    result.bytes = (double) messages * (double) size;
    free (body);
    int linger = 0;
    zmq_setsockopt (sender_socket, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (sender_socket);
    if (curve)
        zsock_destroy (&curve_receiver);
    else {
        zmq_close (receiver_socket);
        zmq_ctx_term (receiver_context);
    }
    zmq_ctx_term (context);
    return result;
}

//  write() bytes in chunks and fdatasync once at the end: the disk's
//  sequential write ceiling for the produce figures
static result_t
s_raw_disk (double bytes)
{
    char *path = zsys_sprintf ("%s/raw-disk.dat", s_options.dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert (fd >= 0);
    uint8_t *chunk = (uint8_t *) calloc (1, DISK_CHUNK);
    result_t result = s_result_init ();
    double cpu = s_self_cpu ();
    double start = s_now ();
    for (double done = 0; done < bytes; done += DISK_CHUNK)
        assert (write (fd, chunk, DISK_CHUNK) == DISK_CHUNK);
    assert (fdatasync (fd) == 0);
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.bytes = bytes;
    result.messages = (int64_t) (bytes / DISK_CHUNK);
    close (fd);
    unlink (path);
    free (chunk);
    free (path);
    return result;
}

//  write() + fdatasync of one small record, one at a time: what every
//  acknowledgement and every reader wake-up waits for, so the floor of
//  the latency figures (readers see durable messages only)
static result_t
s_raw_fdatasync (int64_t syncs)
{
    char *path = zsys_sprintf ("%s/raw-sync.dat", s_options.dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert (fd >= 0);
    int64_t *times_ns = (int64_t *) calloc ((size_t) syncs, sizeof (int64_t));
    uint8_t record [LATENCY_SIZE] = { 0 };
    result_t result = s_result_init ();
    double cpu = s_self_cpu ();
    double start = s_now ();
    for (int64_t index = 0; index < syncs; index++) {
        int64_t before = s_now_ns ();
        assert (write (fd, record, sizeof record) == (ssize_t) sizeof record);
        assert (fdatasync (fd) == 0);
        times_ns [index] = s_now_ns () - before;
    }
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.messages = syncs;
    result.bytes = (double) syncs * sizeof record;
    s_percentiles (&result, times_ns, syncs);
    close (fd);
    unlink (path);
    free (times_ns);
    free (path);
    return result;
}

//  ---- produce ------------------------------------------------------------

static const size_t s_sizes [] = { 100, 1024, 65536 };
#define SIZES (sizeof s_sizes / sizeof s_sizes [0])

//  Messages per run, per size and path: enough for 0.5-1 s at the rate the
//  path should reach (the targets of issue 4: mode 0 near the raw rate,
//  batches 1.5x it), so that a fast path is measured over more than its
//  start-up, and the whole default run stays under ~8 minutes. The raw
//  DEALER baseline runs with the same counts (per_message and batched) as
//  the scenarios whose targets are ratios to it; modes 1 and 2 (no ratio
//  target) send fewer and are compared by rate with the per-message run.
typedef struct {
    size_t size;
    int64_t per_message;        //  mode 0, raw DEALER and PUSH
    int64_t acked;              //  mode 1
    int64_t lock_step;          //  mode 2: one fdatasync per message
    int64_t batched;            //  mode 3, native batches
} counts_t;

static const counts_t s_counts [] = {
    { 100,   800000, 300000, 1000, 3000000 },
    { 1024,  160000, 100000,  500,  320000 },
    { 65536,   6000,   3000,  300,    6000 },
};
#define QUICK_DIVISOR       100     //  --quick: counts / this

static counts_t
s_counts_for (size_t size)
{
    counts_t counts = s_counts [0];
    for (size_t index = 0; index < sizeof s_counts / sizeof s_counts [0]; index++)
        if (s_counts [index].size == size)
            counts = s_counts [index];
    if (s_options.quick) {
        counts.per_message /= QUICK_DIVISOR;
        counts.acked /= QUICK_DIVISOR;
        counts.lock_step = counts.lock_step / QUICK_DIVISOR + 1;
        counts.batched /= QUICK_DIVISOR;
    }
    return counts;
}

static int64_t
s_messages_for_mode (size_t size, int mode)
{
    counts_t counts = s_counts_for (size);
    return mode == ZPER_MODE_REQ? counts.lock_step: mode == ZPER_MODE_ACK? counts.acked
         : mode == ZPER_MODE_BATCH_ACK? counts.batched: counts.per_message;
}

//  The raw DEALER->ROUTER baseline of a produce run: the one that sent the
//  same number of messages of this size (raw.dealer.S.nN for the batched
//  count), else raw.dealer.S (the per-message count)
static void
s_raw_name (char *name, size_t name_size, size_t size, int64_t messages)
{
    counts_t counts = s_counts_for (size);
    if (messages == counts.batched && counts.batched != counts.per_message)
        snprintf (name, name_size, "raw.dealer.%zu.n%" PRId64, size, messages);
    else
        snprintf (name, name_size, "raw.dealer.%zu", size);
}

typedef struct {
    const char *front;
    const char *topic;
    int mode;
    size_t size;
    int64_t messages;
    int rc;
    size_t batch_bytes;         //  modes 3, 4: max batch size, 0 for the default
    int64_t sync_every;         //  sync after this many messages, 0 only at the end
    bool curve;                 //  a CURVE client (the broker has security.curve = 1)
} producer_job_t;

static void *
s_producer_run (void *args)
{
    producer_job_t *job = (producer_job_t *) args;
    zper_producer_t *producer = s_producer_new (job->front, job->topic, job->mode, job->curve);
    zper_producer_set_timeout (producer, CLIENT_TIMEOUT_MS);
    zper_producer_set_ack_timeout (producer, ACK_TIMEOUT_MS);
    if (job->batch_bytes)
        zper_producer_set_batch (producer, job->batch_bytes, ZPER_CLIENT_BATCH_MESSAGES,
                                 ZPER_CLIENT_BATCH_LINGER_MS);
    uint8_t *body = (uint8_t *) calloc (1, job->size);
    job->rc = 0;
    for (int64_t index = 0; index < job->messages && job->rc == 0; index++) {
        job->rc = zper_producer_send_mem (producer, body, job->size);
        if (job->rc == 0 && job->sync_every && (index + 1) % job->sync_every == 0)
            job->rc = zper_producer_sync (producer);
    }
    if (job->rc == 0)
        job->rc = zper_producer_sync (producer);
    if (job->rc)
        fprintf (stderr, "\nzper_bench_broker: %s\n", zper_producer_error (producer));
    zper_producer_destroy (&producer);
    free (body);
    return NULL;
}

static double
s_wait_written (const broker_t *broker, const char *topic, int64_t messages, bool appended_only)
{
    zper_consumer_t *reader = s_consumer_new (broker, NULL);
    zper_consumer_set_timeout (reader, CLIENT_TIMEOUT_MS);
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    double last_cpu = -1, last_growth = s_now (), idle_since = -1;
    int64_t next_stats = 0;
    while (zclock_mono () < deadline) {
        double cpu = s_broker_cpu (broker);
        if (cpu != last_cpu) {
            if (idle_since < 0 && s_now () - last_growth > IDLE_GAP_MS / 1000.0)
                idle_since = last_growth;
            last_cpu = cpu;
            last_growth = s_now ();
        }
        if (zclock_mono () >= next_stats) {
            if (s_broker_written (reader, topic) >= messages)
                break;
            next_stats = zclock_mono () + STATS_POLL_MS;
        }
        zclock_sleep (CPU_POLL_MS);
    }
    zper_consumer_destroy (&reader);
    return !appended_only? s_now (): idle_since >= 0? idle_since: last_growth;
}

//  Send messages of size bytes in mode from `producers` threads to a fresh
//  broker (flush_messages 0 with sync_per_batch, CURVE with curve)
static result_t
s_produce_messages (int producers, int mode, size_t size, int64_t messages, bool sync_per_batch,
                    bool curve)
{
    broker_t broker;
    s_broker_start (&broker, "produce", sync_per_batch? 0: -1, curve);
    producer_job_t jobs [PRODUCERS_MAX];
    pthread_t threads [PRODUCERS_MAX];
    result_t result = s_result_init ();
    double broker_cpu = s_broker_cpu (&broker);
    double cpu = s_self_cpu ();
    double start = s_now ();
    for (int index = 0; index < producers; index++) {
        jobs [index] = (producer_job_t) { broker.front, "bench", mode, size,
                                          messages / producers, 0, 0, 0, curve };
        pthread_create (&threads [index], NULL, s_producer_run, &jobs [index]);
    }
    for (int index = 0; index < producers; index++)
        pthread_join (threads [index], NULL);
    //  The producers are done: what follows is the bench watching the broker
    result.client_cpu = s_self_cpu () - cpu;
    int64_t sent = (messages / producers) * producers;
    double end = mode == ZPER_MODE_NONE? s_wait_written (&broker, "bench", sent, !sync_per_batch)
                                       : s_now ();
    result.seconds = end - start;
    result.broker_cpu = s_broker_cpu (&broker) - broker_cpu;
    result.broker_hwm_kb = s_broker_hwm_kb (&broker);
    result.messages = sent;
    result.bytes = (double) sent * (double) size;
    for (int index = 0; index < producers; index++)
        if (jobs [index].rc) {
            fprintf (stderr, "\nzper_bench_broker: produce mode %d failed, run not recorded "
                     "(see %s/zperd.log)\n", mode, broker.dir);
            result.seconds = -1;
            break;
        }
    s_broker_destroy (&broker);
    return result;
}

static result_t
s_produce (int producers, int mode, size_t size, bool sync_per_batch)
{
    return s_produce_messages (producers, mode, size, s_messages_for_mode (size, mode),
                               sync_per_batch, false);
}

//  Fill topic with messages of size bytes through native batches (fast),
//  a sync every FILL_SYNC_MESSAGES. The broker handles a write group (up
//  to 1024 batches) as one step, with two note frames and one published
//  ack per message: a group of 100 B messages in 256 KiB batches (~2.5M
//  messages) keeps the front worker, then the ack thread, busy past the
//  manager's 3 s heartbeat deadline, and the broker stops itself
//  (BENCHMARKS.md, findings). Bounded groups keep the fill clear of that.
static void
s_fill (const broker_t *broker, const char *topic, size_t size, int64_t messages)
{
    producer_job_t job = { broker->front, topic, ZPER_MODE_BATCH_ACK, size, messages, 0,
                           FILL_BATCH_BYTES, FILL_SYNC_MESSAGES, broker->curve };
    s_producer_run (&job);
    assert (job.rc == 0);
}

//  ---- consume ------------------------------------------------------------

//  Batched READ through libzper from the first message to the end
static int64_t
s_consume_read (const broker_t *broker, const char *topic)
{
    zper_consumer_t *consumer = s_consumer_new (broker, topic);
    zper_consumer_set_timeout (consumer, CLIENT_TIMEOUT_MS);
    int64_t received = 0;
    zmsg_t *msg;
    while ((msg = zper_consumer_recv (consumer, 0))) {
        received++;
        zmsg_destroy (&msg);
    }
    if (errno != EAGAIN)
        fprintf (stderr, "\nzper_bench_broker: READ: %s\n", zper_consumer_error (consumer));
    zper_consumer_destroy (&consumer);
    return received;
}

//  A raw DEALER whose identity names topic and write mode; a CURVE client
//  with curve
static void *
s_topic_dealer_mode (void *context, const char *endpoint, const char *topic, int mode,
                     bool curve)
{
    void *dealer = zmq_socket (context, ZMQ_DEALER);
    uint8_t identity [3 + ZPER_TOPIC_MAX];
    size_t length = zper_identity_encode (topic, (uint8_t) mode, NULL, identity);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, identity, length);
    int linger = 0, reconnect_ms = 1;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms);
    if (curve)
        s_curve_client (dealer);
    assert (zmq_connect (dealer, endpoint) == 0);
    return dealer;
}

//  A raw DEALER whose identity names topic (legacy commands, relay)
static void *
s_topic_dealer (void *context, const char *endpoint, const char *topic)
{
    return s_topic_dealer_mode (context, endpoint, topic, ZPER_MODE_NONE, false);
}

//  Send FETCH position max_bytes (max_bytes -1: streaming)
static void
s_send_fetch (void *dealer, int64_t position, int64_t max_bytes)
{
    uint8_t position_bytes [8], max_bytes_bytes [8];
    s_put_be64 (position_bytes, position);
    s_put_be64 (max_bytes_bytes, max_bytes);
    zmq_send (dealer, "FETCH", 5, ZMQ_SNDMORE);
    zmq_send (dealer, position_bytes, 8, ZMQ_SNDMORE);
    zmq_send (dealer, max_bytes_bytes, 8, 0);
}

//  Receive one whole message; returns its first frame's first byte, or -1
static int
s_recv_status (void *dealer, int timeout_ms)
{
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    int status = -1;
    if (zmq_msg_recv (&frame, dealer, 0) >= 0) {
        status = zmq_msg_size (&frame)? *(uint8_t *) zmq_msg_data (&frame): 0;
        while (zmq_msg_more (&frame))
            zmq_msg_recv (&frame, dealer, 0);
    }
    zmq_msg_close (&frame);
    return status;
}

//  Legacy streaming FETCH from position 0 until messages have come. Timed
//  as the raw baseline is (s_raw_transport): the connection is made and
//  answers (FETCH 0 0 validates position 0) before the clock starts, the
//  clock stops at the last message, and each message costs the loop one
//  zmq_msg_recv per frame, nothing more. Fills result's seconds and CPU.
static int64_t
s_consume_stream (const broker_t *broker, const char *topic, int64_t messages,
                  result_t *result)
{
    void *context = zmq_ctx_new ();
    void *dealer = s_topic_dealer_mode (context, broker->rear, topic, ZPER_MODE_NONE,
                                        broker->curve);
    s_send_fetch (dealer, 0, 0);
    int64_t received = 0;
    if (s_recv_status (dealer, CLIENT_TIMEOUT_MS) != ZPER_STATUS_OK)
        messages = 0;
    double broker_cpu = s_broker_cpu (broker);
    double cpu = s_self_cpu ();
    double start = s_now ();
    s_send_fetch (dealer, 0, -1);
    if (messages && s_recv_status (dealer, CLIENT_TIMEOUT_MS) == ZPER_STATUS_OK) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        while (received < messages && zmq_msg_recv (&frame, dealer, 0) >= 0)
            if (!zmq_msg_more (&frame))
                received++;
        zmq_msg_close (&frame);
    }
    result->seconds = s_now () - start;
    result->client_cpu = s_self_cpu () - cpu;
    result->broker_cpu = s_broker_cpu (broker) - broker_cpu;
    zmq_close (dealer);
    zmq_ctx_term (context);
    return received;
}

//  A topic of messages of size bytes (the mode-0 count of s_counts) on a
//  fresh broker, CURVE with curve, read from its start by batched READ and
//  by a streaming FETCH: PREFIX.read.S and PREFIX.fetch_stream.S, with
//  ratios to baseline and, for curve.on, to the plaintext twins under
//  plain_prefix
static void
s_consume_topic (const char *prefix, size_t size, bool curve, const char *baseline,
                 const char *plain_prefix)
{
    broker_t broker;
    s_broker_start (&broker, "consume", -1, curve);
    int64_t messages = s_counts_for (size).per_message;
    s_progress ("%s: writing %" PRId64 " messages of %zu B", prefix, messages, size);
    s_fill (&broker, "consume", size, messages);
    s_consume_read (&broker, "consume");         //  warm the page cache and the broker
    for (int method = 0; method < 2; method++) {
        const char *path = method? "fetch_stream": "read";
        s_progress ("%s: %s of %zu B", prefix, method? "streaming FETCH": "batched READ", size);
        result_t result = s_result_init ();
        double broker_cpu = s_broker_cpu (&broker);
        double cpu = s_self_cpu ();
        double start = s_now ();
        int64_t received = method? s_consume_stream (&broker, "consume", messages, &result)
                                 : s_consume_read (&broker, "consume");
        if (!method) {                  //  a stream times itself, as raw does
            result.seconds = s_now () - start;
            result.client_cpu = s_self_cpu () - cpu;
            result.broker_cpu = s_broker_cpu (&broker) - broker_cpu;
        }
        result.broker_hwm_kb = s_broker_hwm_kb (&broker);
        result.messages = received;
        result.bytes = (double) received * (double) size;
        if (received != messages) {
            fprintf (stderr, "\nzper_bench_broker: %s.%s got %" PRId64 " of %" PRId64
                     ", run not recorded (see %s/zperd.log)\n", prefix, path, received, messages,
                     broker.dir);
            continue;
        }
        char name [64], plain [64];
        snprintf (name, sizeof name, "%s.%s.%zu", prefix, path, size);
        snprintf (plain, sizeof plain, "%s.%s.%zu", plain_prefix? plain_prefix: "", path, size);
        s_record_versus (name, baseline, plain_prefix? plain: NULL, size, &result);
    }
    s_broker_destroy (&broker);
}

static void
s_consume_bench (void)
{
    s_consume_topic ("consume", CONSUME_SIZE, false, "raw.dealer.100", NULL);
}

//  ---- latency ------------------------------------------------------------

typedef struct {
    const broker_t *broker;
    const char *topic;
    void *raw;                  //  raw baselines: a socket receiving [...][body]
    bool relay;                 //  relay ROUTER, else READ long-poll
    int64_t messages;
    int64_t *latencies_ns;
    int64_t received;
    atomic_int ready;           //  set once the reader is at the end of the topic
} latency_reader_t;

static void
s_latency_note (latency_reader_t *reader, const void *data, size_t size)
{
    int64_t scheduled;
    if (size < sizeof scheduled || reader->received >= reader->messages)
        return;
    memcpy (&scheduled, data, sizeof scheduled);
    reader->latencies_ns [reader->received++] = s_now_ns () - scheduled;
}

static void
s_latency_read (latency_reader_t *reader)
{
    zper_consumer_t *consumer = zper_consumer_new (reader->broker->rear, reader->topic);
    zper_consumer_set_timeout (consumer, CLIENT_TIMEOUT_MS);
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);
    atomic_store (&reader->ready, 1);
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    while (reader->received < reader->messages && zclock_mono () < deadline) {
        zmsg_t *msg = zper_consumer_recv (consumer, LATENCY_WAIT_MS);
        if (msg) {
            zframe_t *frame = zmsg_first (msg);
            s_latency_note (reader, zframe_data (frame), zframe_size (frame));
            zmsg_destroy (&msg);
        }
    }
    zper_consumer_destroy (&consumer);
}

static void
s_latency_relay (latency_reader_t *reader)
{
    void *context = zmq_ctx_new ();
    void *dealer = s_topic_dealer (context, reader->broker->relay, reader->topic);
    uint8_t offset [8];
    s_put_be64 (offset, ZPER_OFFSET_LATEST);
    zmq_send (dealer, "RESUME", 6, ZMQ_SNDMORE);
    zmq_send (dealer, offset, 8, 0);
    assert (s_recv_status (dealer, CLIENT_TIMEOUT_MS) == ZPER_STATUS_OK);
    atomic_store (&reader->ready, 1);
    int timeout = LATENCY_WAIT_MS;
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (reader->received < reader->messages && zclock_mono () < deadline)
        if (zmq_msg_recv (&frame, dealer, 0) >= 0) {
            s_latency_note (reader, zmq_msg_data (&frame), zmq_msg_size (&frame));
            while (zmq_msg_more (&frame))
                zmq_msg_recv (&frame, dealer, 0);
        }
    zmq_msg_close (&frame);
    zmq_close (dealer);
    zmq_ctx_term (context);
}

//  The raw baselines: each message's last frame, straight off a socket
static void
s_latency_raw (latency_reader_t *reader)
{
    int timeout = LATENCY_WAIT_MS;
    zmq_setsockopt (reader->raw, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    atomic_store (&reader->ready, 1);
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (reader->received < reader->messages && zclock_mono () < deadline)
        if (zmq_msg_recv (&frame, reader->raw, 0) >= 0) {
            while (zmq_msg_more (&frame) && zmq_msg_recv (&frame, reader->raw, 0) >= 0)
                ;
            s_latency_note (reader, zmq_msg_data (&frame), zmq_msg_size (&frame));
        }
    zmq_msg_close (&frame);
}

//  A bare forwarder, the least any broker does: [id][body] from a ROUTER,
//  body out on a PUSH, in its own thread and ZeroMQ context (as a broker
//  process has its own I/O thread). Ends when the ROUTER gets "$TERM".
typedef struct {
    void *router;
    void *push;
} forwarder_t;

static void *
s_forwarder (void *args)
{
    forwarder_t *forwarder = (forwarder_t *) args;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    while (zmq_msg_recv (&frame, forwarder->router, 0) >= 0) {
        if (!zmq_msg_more (&frame) || zmq_msg_recv (&frame, forwarder->router, 0) < 0)
            break;
        if (zmq_msg_size (&frame) == 5 && memcmp (zmq_msg_data (&frame), "$TERM", 5) == 0)
            break;
        zmq_msg_send (&frame, forwarder->push, 0);
    }
    zmq_msg_close (&frame);
    return NULL;
}

//  Bind a socket of type on a tcp loopback port; its endpoint in endpoint.
static void *
s_bound_socket (void *context, int type, char *endpoint, size_t endpoint_size)
{
    void *socket = zmq_socket (context, type);
    assert (zmq_bind (socket, "tcp://127.0.0.1:*") == 0);
    zmq_getsockopt (socket, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size);
    return socket;
}

static void *
s_latency_reader (void *args)
{
    latency_reader_t *reader = (latency_reader_t *) args;
    if (reader->raw)
        s_latency_raw (reader);
    else
    if (reader->relay)
        s_latency_relay (reader);
    else
        s_latency_read (reader);
    return NULL;
}

//  One paced send: through a producer, or on a raw socket.
typedef int (paced_send_fn) (void *sender, const void *body, size_t size);

static int
s_producer_send (void *producer, const void *body, size_t size)
{
    return zper_producer_send_mem ((zper_producer_t *) producer, body, size);
}

static int
s_socket_send (void *socket, const void *body, size_t size)
{
    return zmq_send (socket, body, size, 0) == (int) size? 0: -1;
}

//  Send messages at rate, each carrying its scheduled send time; every
//  message due is sent, then the thread sleeps until the next one is due.
static void
s_paced_send (paced_send_fn *send, void *sender, int64_t messages, int rate)
{
    uint8_t body [LATENCY_SIZE] = { 0 };
    int64_t start = s_now_ns ();
    int64_t interval = 1000000000LL / rate;
    for (int64_t index = 0; index < messages; ) {
        int64_t scheduled = start + index * interval;
        int64_t now = s_now_ns ();
        if (scheduled > now) {
            struct timespec until = { (time_t) (scheduled / 1000000000LL),
                                      (long) (scheduled % 1000000000LL) };
            clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
            continue;
        }
        memcpy (body, &scheduled, sizeof scheduled);
        assert (send (sender, body, sizeof body) == 0);
        index++;
    }
}

static double
s_latency_seconds (int rate)
{
    return s_options.quick? 0.2: rate >= 100000? 1.0: 2.0;
}

//  The baselines of the same run: a paced DEALER to a ROUTER over tcp
//  loopback, no broker (one hop), or through a bare forwarder in between
//  (the hops of a broker that does nothing: in, one thread, out)
static result_t
s_latency_raw_run (int rate, bool forward)
{
    int64_t messages = (int64_t) (rate * s_latency_seconds (rate));
    void *context = zmq_ctx_new ();
    void *forwarder_context = zmq_ctx_new ();
    char endpoint [256];
    forwarder_t forwarder = { NULL, NULL };
    void *receiver, *dealer = zmq_socket (context, ZMQ_DEALER);
    if (forward) {
        forwarder.push = s_bound_socket (forwarder_context, ZMQ_PUSH, endpoint, sizeof endpoint);
        receiver = zmq_socket (context, ZMQ_PULL);
        assert (zmq_connect (receiver, endpoint) == 0);
        forwarder.router = s_bound_socket (forwarder_context, ZMQ_ROUTER, endpoint,
                                           sizeof endpoint);
    }
    else
        receiver = s_bound_socket (context, ZMQ_ROUTER, endpoint, sizeof endpoint);
    assert (zmq_connect (dealer, endpoint) == 0);
    pthread_t forwarder_thread;
    if (forward)
        pthread_create (&forwarder_thread, NULL, s_forwarder, &forwarder);
    //  Handshake first, so that connecting is not measured
    assert (zmq_send (dealer, "", 0, 0) == 0);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    assert (zmq_msg_recv (&frame, receiver, 0) >= 0);
    while (zmq_msg_more (&frame))
        assert (zmq_msg_recv (&frame, receiver, 0) >= 0);
    zmq_msg_close (&frame);

    latency_reader_t reader = { .raw = receiver, .messages = messages };
    reader.latencies_ns = (int64_t *) calloc ((size_t) messages, sizeof (int64_t));
    pthread_t thread;
    pthread_create (&thread, NULL, s_latency_reader, &reader);
    while (!atomic_load (&reader.ready))
        zclock_sleep (1);
    result_t result = s_result_init ();
    double cpu = s_self_cpu ();
    double start = s_now ();
    s_paced_send (s_socket_send, dealer, messages, rate);
    pthread_join (thread, NULL);
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.messages = reader.received;
    result.bytes = (double) reader.received * LATENCY_SIZE;
    s_percentiles (&result, reader.latencies_ns, reader.received);
    free (reader.latencies_ns);
    if (forward) {
        assert (zmq_send (dealer, "$TERM", 5, 0) == 5);
        pthread_join (forwarder_thread, NULL);
    }
    int linger = 0;
    void *sockets [] = { dealer, receiver, forwarder.router, forwarder.push };
    for (size_t index = 0; index < sizeof sockets / sizeof sockets [0]; index++)
        if (sockets [index]) {
            zmq_setsockopt (sockets [index], ZMQ_LINGER, &linger, sizeof linger);
            zmq_close (sockets [index]);
        }
    zmq_ctx_term (context);
    zmq_ctx_term (forwarder_context);
    return result;
}

static result_t
s_latency (const broker_t *broker, const char *topic, int mode, bool relay, int rate)
{
    int64_t messages = (int64_t) (rate * s_latency_seconds (rate));
    latency_reader_t reader = { .broker = broker, .topic = topic, .relay = relay,
                                .messages = messages };
    reader.latencies_ns = (int64_t *) calloc ((size_t) messages, sizeof (int64_t));
    zper_producer_t *producer = zper_producer_new (broker->front, topic, mode);
    zper_producer_set_timeout (producer, CLIENT_TIMEOUT_MS);
    zper_producer_set_ack_timeout (producer, ACK_TIMEOUT_MS);
    //  One message first so that the producer is connected and the topic exists
    assert (zper_producer_send_mem (producer, "", 0) == 0 && zper_producer_sync (producer) == 0);

    pthread_t thread;
    pthread_create (&thread, NULL, s_latency_reader, &reader);
    while (!atomic_load (&reader.ready))
        zclock_sleep (1);
    result_t result = s_result_init ();
    double broker_cpu = s_broker_cpu (broker);
    double cpu = s_self_cpu ();
    double start = s_now ();
    s_paced_send (s_producer_send, producer, messages, rate);
    assert (zper_producer_sync (producer) == 0);
    pthread_join (thread, NULL);
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.broker_cpu = s_broker_cpu (broker) - broker_cpu;
    result.broker_hwm_kb = s_broker_hwm_kb (broker);
    result.messages = reader.received;
    result.bytes = (double) reader.received * LATENCY_SIZE;
    s_percentiles (&result, reader.latencies_ns, reader.received);
    if (reader.received != messages)
        fprintf (stderr, "\nzper_bench_broker: latency reader got %" PRId64 " of %" PRId64 "\n",
                 reader.received, messages);
    zper_producer_destroy (&producer);
    free (reader.latencies_ns);
    return result;
}

//  Take every acknowledgement waiting on a mode-1 DEALER, noting each
//  one's latency (now - the scheduled send time its id carries). Returns
//  the count taken; a refusal ([id][status]) fails the bench.
static int64_t
s_acks_take (void *dealer, int64_t *latencies_ns, int64_t taken, int64_t messages)
{
    int64_t count = 0;
    uint8_t id [LATENCY_SIZE];
    while (true) {
        int size = zmq_recv (dealer, id, sizeof id, ZMQ_DONTWAIT);
        if (size < 0)
            break;
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_size);
        assert (!more && size >= (int) sizeof (int64_t));      //  stored, not refused
        int64_t scheduled;
        memcpy (&scheduled, id, sizeof scheduled);
        if (taken + count < messages)
            latencies_ns [taken + count] = s_now_ns () - scheduled;
        count++;
    }
    return count;
}

//  latency.raw.fdatasync.RATE: the disk's floor for an ack at rate, with
//  no network and no threads. One thread appends LATENCY_SIZE-byte records
//  paced at rate and syncs whatever is due in one write and one fdatasync
//  (a group commit), sleeping until the next record is due; a record's
//  latency is the end of the fdatasync that covers it minus its SCHEDULED
//  time. What latency.m1.ack.RATE pays for the disk alone.
static result_t
s_raw_group_sync (int rate)
{
    int64_t records = (int64_t) (rate * s_latency_seconds (rate));
    char *path = zsys_sprintf ("%s/raw-group-sync.dat", s_options.dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert (fd >= 0);
    int64_t *times_ns = (int64_t *) calloc ((size_t) records, sizeof (int64_t));
    uint8_t *group = (uint8_t *) calloc ((size_t) records, LATENCY_SIZE);
    int64_t period_ns = 1000000000LL / rate, written = 0;
    result_t result = s_result_init ();
    double cpu = s_self_cpu ();
    int64_t start_ns = s_now_ns ();
    while (written < records) {
        int64_t due = (s_now_ns () - start_ns) / period_ns + 1;
        if (due > records)
            due = records;
        if (due <= written) {           //  sleep until the next record is due
            int64_t wake_ns = start_ns + written * period_ns;
            struct timespec wake = { wake_ns / 1000000000LL, wake_ns % 1000000000LL };
            clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL);
            continue;
        }
        size_t bytes = (size_t) (due - written) * LATENCY_SIZE;
        assert (write (fd, group, bytes) == (ssize_t) bytes);
        assert (fdatasync (fd) == 0);
        int64_t synced_ns = s_now_ns ();
        for (; written < due; written++)
            times_ns [written] = synced_ns - (start_ns + written * period_ns);
    }
    result.seconds = (double) (s_now_ns () - start_ns) / 1e9;
    result.client_cpu = s_self_cpu () - cpu;
    result.messages = records;
    result.bytes = (double) records * LATENCY_SIZE;
    s_percentiles (&result, times_ns, records);
    close (fd);
    unlink (path);
    free (group);
    free (times_ns);
    free (path);
    return result;
}

//  latency.m1.ack.RATE: a raw DEALER in mode 1 (acked once durable) paced
//  at rate; each message's latency is its ack's receive time minus its
//  SCHEDULED send time (the id, its only frame, carries it). One thread:
//  between sends it waits on the socket's descriptor with a nanosecond
//  timeout, so that an ack is timed when it arrives (a libzper producer
//  reads acks only now and then). The figure to hold against one
//  fdatasync of the same disk (raw.fdatasync, its baseline here).
static result_t
s_latency_ack (const broker_t *broker, const char *topic, int rate)
{
    int64_t messages = (int64_t) (rate * s_latency_seconds (rate));
    int64_t *latencies_ns = (int64_t *) calloc ((size_t) messages, sizeof (int64_t));
    void *context = zmq_ctx_new ();
    void *dealer = s_topic_dealer_mode (context, broker->front, topic, ZPER_MODE_ACK, false);
    int timeout = CLIENT_TIMEOUT_MS;
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    //  Connected, and the topic exists, before the clock starts
    uint8_t body [LATENCY_SIZE] = { 0 };
    assert (zmq_send (dealer, body, sizeof body, 0) == (int) sizeof body);
    assert (zmq_recv (dealer, body, sizeof body, 0) == (int) sizeof body);
    int descriptor;
    size_t descriptor_size = sizeof descriptor;
    zmq_getsockopt (dealer, ZMQ_FD, &descriptor, &descriptor_size);
    result_t result = s_result_init ();
    double broker_cpu = s_broker_cpu (broker);
    double cpu = s_self_cpu ();
    double start = s_now ();
    int64_t start_ns = s_now_ns (), interval = 1000000000LL / rate;
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    int64_t sent = 0, acked = 0;
    while (acked < messages && zclock_mono () < deadline) {
        acked += s_acks_take (dealer, latencies_ns, acked, messages);
        int64_t now = s_now_ns (), due = start_ns + sent * interval;
        if (sent < messages && due <= now) {
            memcpy (body, &due, sizeof due);
            assert (zmq_send (dealer, body, sizeof body, 0) == (int) sizeof body);
            sent++;
            continue;
        }
        //  ZMQ_FD is edge-triggered: wait only once the socket said no more
        uint32_t events = 0;
        size_t events_size = sizeof events;
        zmq_getsockopt (dealer, ZMQ_EVENTS, &events, &events_size);
        if (events & ZMQ_POLLIN)
            continue;
        int64_t wait = sent < messages? due - now: LATENCY_WAIT_MS * 1000000LL;
        struct timespec until = { (time_t) (wait / 1000000000LL), (long) (wait % 1000000000LL) };
        struct pollfd item = { descriptor, POLLIN, 0 };
        ppoll (&item, 1, &until, NULL);
    }
    result.seconds = s_now () - start;
    result.client_cpu = s_self_cpu () - cpu;
    result.broker_cpu = s_broker_cpu (broker) - broker_cpu;
    result.broker_hwm_kb = s_broker_hwm_kb (broker);
    int64_t timed = acked < messages? acked: messages;
    result.messages = timed;
    result.bytes = (double) timed * LATENCY_SIZE;
    s_percentiles (&result, latencies_ns, timed);
    if (acked != messages)
        fprintf (stderr, "\nzper_bench_broker: %" PRId64 " acks of %" PRId64 "\n", acked, messages);
    zmq_close (dealer);
    zmq_ctx_term (context);
    free (latencies_ns);
    return result;
}

//  latency_hops.json under --out, a line per run: the STATS "hops" of a
//  fresh broker after the traffic of latency.m0.relay.10000 (not recorded
//  again as a scenario): where that scenario's time goes inside the broker,
//  hop by hop (zper_hops.h). The first "}}" after "hops" ends its object.
static void
s_latency_hops (void)
{
    broker_t broker;
    s_broker_start (&broker, "latency_hops", -1, false);
    s_progress ("latency: hops of a mode 0 producer, relay at 10000 msg/s");
    s_latency (&broker, "lathops", ZPER_MODE_NONE, true, 10000);
    zper_consumer_t *reader = zper_consumer_new (broker.rear, "lathops");
    char *json = reader? zper_consumer_stats (reader): NULL;
    char *hops = json? strstr (json, "\"hops\":"): NULL;
    char *end = hops? strstr (hops, "}}"): NULL;
    char *path = zsys_sprintf ("%s/latency_hops.json", s_options.out);
    FILE *file = end? fopen (path, s_current_run? "a": "w"): NULL;
    if (file) {
        fprintf (file, "{\"run\":%d,%.*s}\n", s_current_run + 1, (int) (end + 2 - hops), hops);
        fclose (file);
    }
    zstr_free (&path);
    zstr_free (&json);
    zper_consumer_destroy (&reader);
    s_broker_destroy (&broker);
}

//  latency.mM.PATH.RATE: a producer in mode M (0: no acks, Kafka's acks=0;
//  1: acked once durable) paced at RATE, a reader on PATH (READ long-poll
//  or relay), against one broker with its default configuration (readers
//  see written data: visibility = written)
static void
s_latency_bench (void)
{
    static const int rates [] = { 1000, 10000, 100000 };
    static const int modes [] = { ZPER_MODE_NONE, ZPER_MODE_ACK };
    for (int forward = 0; forward < 2; forward++)
    for (size_t index = 0; index < sizeof rates / sizeof rates [0]; index++) {
        const char *how = forward? "proxy": "raw";
        s_progress ("latency: %s at %d msg/s", forward? "DEALER->forwarder->PULL"
                                                     : "raw DEALER->ROUTER", rates [index]);
        char name [64];
        snprintf (name, sizeof name, "latency.%s.%d", how, rates [index]);
        result_t result = s_latency_raw_run (rates [index], forward);
        s_record (name, NULL, false, LATENCY_SIZE, &result);
    }
    broker_t broker;
    s_broker_start (&broker, "latency", -1, false);
    for (size_t mode_index = 0; mode_index < sizeof modes / sizeof modes [0]; mode_index++)
    for (int path = 0; path < 2; path++)
    for (size_t index = 0; index < sizeof rates / sizeof rates [0]; index++) {
        const char *how = path? "relay": "read";
        int mode = modes [mode_index];
        s_progress ("latency: mode %d producer, %s at %d msg/s", mode, how, rates [index]);
        char topic [64], name [64];
        snprintf (topic, sizeof topic, "latm%d%s%d", mode, how, rates [index]);
        snprintf (name, sizeof name, "latency.m%d.%s.%d", mode, how, rates [index]);
        result_t result = s_latency (&broker, topic, mode, path == 1, rates [index]);
        s_record (name, NULL, false, LATENCY_SIZE, &result);
    }
    for (size_t index = 0; index < 2; index++) {      //  1k and 10k msg/s
        s_progress ("latency: paced group fdatasync at %d records/s", rates [index]);
        char topic [64], name [64];
        snprintf (name, sizeof name, "latency.raw.fdatasync.%d", rates [index]);
        result_t result = s_raw_group_sync (rates [index]);
        s_record (name, NULL, false, LATENCY_SIZE, &result);
        s_progress ("latency: mode 1 acks at %d msg/s", rates [index]);
        snprintf (topic, sizeof topic, "latm1ack%d", rates [index]);
        snprintf (name, sizeof name, "latency.m1.ack.%d", rates [index]);
        result = s_latency_ack (&broker, topic, rates [index]);
        s_record (name, "raw.fdatasync", false, LATENCY_SIZE, &result);
    }
    s_broker_destroy (&broker);
    s_latency_hops ();
}

//  ---- hostile neighbour --------------------------------------------------

//  Receive a mode 1 reply; returns its message id (our sequence number),
//  or -1 on a timeout or an error reply
static int64_t
s_recv_ack (void *dealer)
{
    int64_t id = -1;
    int size = zmq_recv (dealer, &id, sizeof id, 0);
    int more = 0;
    size_t more_size = sizeof more;
    zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_size);
    if (more)
        s_recv_status (dealer, 0);      //  [id][status]: an error reply
    return size == (int) sizeof id && !more? id: -1;
}

//  The well-behaved producer: mode 1 on a raw DEALER, HOSTILE_WINDOW acks
//  owed at most, each ack's latency from its message's send to its reply
static result_t
s_hostile_produce (const broker_t *broker, int64_t messages)
{
    void *context = zmq_ctx_new ();
    void *dealer = s_topic_dealer_mode (context, broker->front, "polite", ZPER_MODE_ACK,
                                        false);
    int timeout_ms = ACK_TIMEOUT_MS;
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    int64_t *sent_ns = (int64_t *) calloc ((size_t) messages, sizeof (int64_t));
    int64_t *latencies_ns = (int64_t *) calloc ((size_t) messages, sizeof (int64_t));
    uint8_t body [HOSTILE_SIZE] = { 0 };
    result_t result = s_result_init ();
    double broker_cpu = s_broker_cpu (broker), cpu = s_self_cpu (), start = s_now ();
    int64_t sent = 0, acked = 0;
    while (acked < messages) {
        for (; sent < messages && sent - acked < HOSTILE_WINDOW; sent++) {
            sent_ns [sent] = s_now_ns ();
            zmq_send (dealer, &sent, sizeof sent, ZMQ_SNDMORE);
            zmq_send (dealer, body, sizeof body, 0);
        }
        int64_t id = s_recv_ack (dealer);
        if (id < 0 || id >= sent)
            break;
        latencies_ns [acked++] = s_now_ns () - sent_ns [id];
    }
    result.seconds = acked == messages? s_now () - start: -1;
    result.client_cpu = s_self_cpu () - cpu;
    result.broker_cpu = s_broker_cpu (broker) - broker_cpu;
    result.broker_hwm_kb = s_broker_hwm_kb (broker);
    result.messages = acked;
    result.bytes = (double) acked * HOSTILE_SIZE;
    s_percentiles (&result, latencies_ns, acked);
    if (acked != messages)
        fprintf (stderr, "\nzper_bench_broker: hostile: %" PRId64 " of %" PRId64 " acked\n",
                 acked, messages);
    free (sent_ns);
    free (latencies_ns);
    zmq_close (dealer);
    zmq_ctx_term (context);
    return result;
}

typedef struct {
    const broker_t *broker;
    bool silent;                        //  with the silent reader and subscriber
    atomic_bool stop;
    atomic_int_fast64_t acked;          //  the neighbour's large messages acknowledged
} neighbour_t;

//  A socket that never reads, with a tiny kernel buffer and queue
static void *
s_silent_socket (void *context, int type)
{
    void *socket = zmq_socket (context, type);
    int buffer = HOSTILE_SILENT_BUFFER, hwm = 1, linger = 0;
    zmq_setsockopt (socket, ZMQ_RCVBUF, &buffer, sizeof buffer);
    zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
    return socket;
}

//  The hostile neighbour: a silent streaming reader and a silent ack
//  subscriber of topic "noisy", and a writer of messages just under
//  max_message into it, until told to stop. "noisy" lands on another
//  front worker than "polite" (with the default 3): one worker's topics
//  share its write groups and flushes by design, which is not what this
//  scenario measures.
static void *
s_hostile_neighbour (void *args)
{
    neighbour_t *neighbour = (neighbour_t *) args;
    void *context = zmq_ctx_new ();
    void *reader = s_silent_socket (context, ZMQ_DEALER);
    void *subscriber = s_silent_socket (context, ZMQ_SUB);
    if (neighbour->silent) {
        uint8_t identity [3 + ZPER_TOPIC_MAX];
        size_t length = zper_identity_encode ("noisy", ZPER_MODE_NONE, NULL, identity);
        zmq_setsockopt (reader, ZMQ_ROUTING_ID, identity, length);
        assert (zmq_connect (reader, neighbour->broker->rear) == 0);
        s_send_fetch (reader, 0, -1);
        zmq_setsockopt (subscriber, ZMQ_SUBSCRIBE, "noisy", 5);
        char ack_endpoint [64];
        snprintf (ack_endpoint, sizeof ack_endpoint, "tcp://127.0.0.1:%d",
                  neighbour->broker->port + 2);
        assert (zmq_connect (subscriber, ack_endpoint) == 0);
    }
    void *writer = s_topic_dealer_mode (context, neighbour->broker->front, "noisy",
                                        ZPER_MODE_ACK, false);
    int timeout_ms = ACK_TIMEOUT_MS;
    zmq_setsockopt (writer, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    uint8_t *body = (uint8_t *) calloc (1, HOSTILE_BIG_SIZE);
    int64_t sent = 0, acked = 0;
    while (!atomic_load (&neighbour->stop)) {
        for (; sent - acked < HOSTILE_BIG_WINDOW; sent++) {
            zmq_send (writer, &sent, sizeof sent, ZMQ_SNDMORE);
            zmq_send (writer, body, HOSTILE_BIG_SIZE, 0);
        }
        if (s_recv_ack (writer) < 0)
            break;
        atomic_store (&neighbour->acked, ++acked);
    }
    free (body);
    zmq_close (writer);
    zmq_close (subscriber);
    zmq_close (reader);
    zmq_ctx_term (context);
    return NULL;
}

//  The well-behaved producer next to a neighbour, once the neighbour's
//  writes flow; recorded as name, its ratio to hostile.alone
static void
s_hostile_beside (const broker_t *broker, const char *name, bool silent, int64_t messages)
{
    neighbour_t neighbour = { .broker = broker, .silent = silent };
    pthread_t thread;
    pthread_create (&thread, NULL, s_hostile_neighbour, &neighbour);
    int64_t deadline = zclock_mono () + ACK_TIMEOUT_MS;
    while (atomic_load (&neighbour.acked) < HOSTILE_BIG_WINDOW && zclock_mono () < deadline)
        zclock_sleep (1);
    result_t beside = s_hostile_produce (broker, messages);
    atomic_store (&neighbour.stop, true);
    pthread_join (thread, NULL);
    if (beside.seconds > 0)
        s_record (name, "hostile.alone", false, HOSTILE_SIZE, &beside);
}

//  hostile.alone, hostile.writer (next to the 8 MB writer only: what the
//  disk it shares costs) and hostile.neighbour (the writer and the silent
//  peers), on one fresh broker per run
static void
s_hostile_bench (void)
{
    int64_t messages = s_options.quick? 2000: HOSTILE_MESSAGES;
    broker_t broker;
    s_broker_start (&broker, "hostile", -1, false);
    s_progress ("hostile: a mode 1 producer of %d B alone", HOSTILE_SIZE);
    result_t alone = s_hostile_produce (&broker, messages);
    if (alone.seconds > 0)
        s_record ("hostile.alone", NULL, false, HOSTILE_SIZE, &alone);
    s_progress ("hostile: the same producer next to a writer of 8 MB messages");
    s_hostile_beside (&broker, "hostile.writer", false, messages);
    s_progress ("hostile: the same producer next to a silent reader and a writer of 8 MB");
    s_hostile_beside (&broker, "hostile.neighbour", true, messages);
    s_broker_destroy (&broker);
}

//  ---- restart ------------------------------------------------------------

//  Exec zperd on an existing log and time it until a FETCH of the first
//  message is answered. The FETCH is queued on a DEALER that reconnects
//  every ms, so it reaches the rear as soon as the rear listens.
static result_t
s_restart_once (broker_t *broker)
{
    void *context = zmq_ctx_new ();
    void *dealer = s_topic_dealer (context, broker->rear, "restart");
    result_t result = s_result_init ();
    double start = s_now ();
    s_broker_spawn (broker);
    s_send_fetch (dealer, 0, FETCH_PROBE_BYTES);
    int status = s_recv_status (dealer, BROKER_READY_MS);
    result.seconds = s_now () - start;
    result.broker_cpu = s_broker_cpu (broker);
    result.broker_hwm_kb = s_broker_hwm_kb (broker);
    result.messages = 1;
    if (status != ZPER_STATUS_OK) {
        fprintf (stderr, "\nzper_bench_broker: first FETCH after restart: status %d, run not "
                 "recorded\n", status);
        result.seconds = -1;
    }
    zmq_close (dealer);
    zmq_ctx_term (context);
    return result;
}

static void
s_restart_bench (broker_t *broker)
{
    s_progress ("restart: clean stop, then start");
    s_broker_stop (broker, SIGTERM);
    result_t result = s_restart_once (broker);
    if (result.seconds > 0)
        s_record ("restart.clean", NULL, false, RESTART_BODY, &result);

    //  Unsynced writes in flight when the broker dies
    s_progress ("restart: kill -9, then start");
    producer_job_t job = { broker->front, "restart", ZPER_MODE_BATCH, RESTART_BODY,
                           s_options.quick? 1000: 100000, 0, 0, 0, false };
    s_producer_run (&job);
    s_broker_stop (broker, SIGKILL);
    result = s_restart_once (broker);
    if (result.seconds > 0)
        s_record ("restart.kill9", NULL, false, RESTART_BODY, &result);
}

//  ---- scale ----------------------------------------------------------------

//  The scale curves (issue 16): mode 0 (no acks), 100 B, the mode-0 count,
//  a fresh broker per run with the default configuration.
//  scale.topics.N: one sender thread writes round robin over N topics,
//  each its own connection whose routing id names its topic as libzper
//  names it (docs/protocol.md 1-2). All N connections belong to one
//  DEALER: libzmq copies the socket's options into each connection when it
//  connects, so setting ZMQ_ROUTING_ID before each connect gives each its
//  identity (each connect names its own loopback source address: libzmq
//  connects a socket to one endpoint string once), and a DEALER sends
//  round robin over its connections, one message each. To the broker that
//  is N writers of N topics; to this process it is one descriptor per
//  topic instead of two (a socket's mailbox), which lets 10,000 topics fit
//  its descriptor limit. Connections, then each topic's first message
//  (its partition created), go SCALE_CREATE_STEP at a time, each step
//  waited for; then the run is timed. It ends when STATS counts every
//  message written, the end time being when the broker first went idle
//  (as mode 0 of the produce group: STATS of 10,000 topics is large, so it
//  is asked only once the broker is idle). Ratio: to scale.topics.1 of the
//  same run (the >= 0.5x target at 10,000). scale.create.N: topics per
//  second of those first messages. scale.raw.topics.N: the same sender and
//  DEALER to a bare ROUTER in a child process (its own descriptors), no
//  broker: what N connections cost the transport alone; ratio to
//  scale.raw.topics.1. scale.producers.P: P libzper producer threads (mode
//  0), one topic, the count split among them; ratio to scale.producers.1.
static const int s_scale_topics [] = { 1, 10, 100, 1000, 10000 };
static const int s_scale_producers [] = { 1, 4, 16, 64 };
#define SCALE_SIZE          100
#define SCALE_QUICK_STEPS   2           //  --quick: 1 and 10 topics, 1 and 4 producers
#define SCALE_CREATE_TIMEOUT_MS 300000  //  10,000 new topics took 85 s on a loaded 2-core VM
#define SCALE_CREATE_STEP   250         //  new topics the bench creates at a time
#define SCALE_CREATE_REPORTED 1000      //  scale.create.N from this many topics (CPU ticks are 10 ms)
#define SCALE_STATS_MAX_MS  1000        //  longest wait between two STATS while waiting
#define SCALE_SOURCES_PER_OCTET 200     //  loopback source addresses 127.1.x.1-200
#define SCALE_TOPIC_FORMAT  "scale%d"    //  topic names are letters and digits

//  Raise this process's descriptor limit to the hard one: 10,000 topics
//  are 10,000 connections
static void
s_scale_descriptors (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
}

//  Wait until the socket watched by monitor has count connections through
//  their handshake: a message queued on a connection that is refused (a
//  listen backlog overflows when thousands connect at once) and made again
//  can be lost. libzmq drops monitor events past its queue's limit, so a
//  quiet monitor (CLIENT_TIMEOUT_MS) ends the wait too.
static void
s_scale_connected (void *monitor, int count)
{
    int timeout = CLIENT_TIMEOUT_MS, connected = 0;
    zmq_setsockopt (monitor, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    while (connected < count) {
        zmq_msg_t event;
        zmq_msg_init (&event);
        int rc = zmq_msg_recv (&event, monitor, 0);
        if (rc >= (int) sizeof (uint16_t)) {
            uint16_t type;
            memcpy (&type, zmq_msg_data (&event), sizeof type);
            connected += type == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
        }
        bool quiet = rc == -1;
        while (rc != -1 && zmq_msg_more (&event))
            rc = zmq_msg_recv (&event, monitor, 0);         //  the event's address
        zmq_msg_close (&event);
        if (quiet)
            break;
    }
    if (connected < count)
        fprintf (stderr, "\nzper_bench_broker: scale: %d of %d connections seen up\n", connected,
                 count);
}

//  One DEALER with a connection per topic to endpoint, each connection's
//  routing id naming its topic (mode 0); returns once all are up
static void *
s_scale_dealer (void *context, const char *endpoint, int topics)
{
    void *dealer = zmq_socket (context, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    char monitor_endpoint [64];
    snprintf (monitor_endpoint, sizeof monitor_endpoint, "inproc://scale-monitor-%p", dealer);
    assert (zmq_socket_monitor (dealer, monitor_endpoint, ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0);
    void *monitor = zmq_socket (context, ZMQ_PAIR);
    assert (zmq_connect (monitor, monitor_endpoint) == 0);
    for (int index = 0; index < topics; index++) {
        char topic [32];
        snprintf (topic, sizeof topic, SCALE_TOPIC_FORMAT, index);
        uint8_t identity [3 + sizeof topic];
        size_t length = zper_identity_encode (topic, ZPER_MODE_NONE, NULL, identity);
        zmq_setsockopt (dealer, ZMQ_ROUTING_ID, identity, length);
        //  libzmq connects a socket to an endpoint once: each connection
        //  names its own loopback source address (any 127/8 reaches lo)
        char source_endpoint [300];
        snprintf (source_endpoint, sizeof source_endpoint, "tcp://127.1.%d.%d:0;%s",
                  index / SCALE_SOURCES_PER_OCTET, index % SCALE_SOURCES_PER_OCTET + 1,
                  endpoint + strlen ("tcp://"));
        if (zmq_connect (dealer, source_endpoint)) {
            fprintf (stderr, "\nzper_bench_broker: scale: connect %d: %s\n", index,
                     zmq_strerror (zmq_errno ()));
            exit (1);
        }
        //  In steps, each waited for: a listen backlog stays clear, and the
        //  monitor's events are read before its queue overflows
        if ((index + 1) % SCALE_CREATE_STEP == 0 || index + 1 == topics)
            s_scale_connected (monitor, index % SCALE_CREATE_STEP + 1);
    }
    zmq_socket_monitor (dealer, NULL, 0);
    zmq_close (monitor);
    return dealer;
}

//  Send messages of SCALE_SIZE bytes; the DEALER spreads them round robin
static void
s_scale_send (void *dealer, int64_t messages)
{
    uint8_t body [SCALE_SIZE] = { 0 };
    for (int64_t index = 0; index < messages; index++)
        assert (zmq_send (dealer, body, sizeof body, 0) == (int) sizeof body);
}

//  Messages the broker has written over all its topics (STATS), -1 when
//  it does not answer; *topics: how many topics hold any
static int64_t
s_broker_written_total (const broker_t *broker, int64_t *topics)
{
    zper_consumer_t *reader = s_consumer_new (broker, NULL);
    zper_consumer_set_timeout (reader, CLIENT_TIMEOUT_MS);
    char *json = zper_consumer_stats (reader);
    zper_consumer_destroy (&reader);
    if (!json)
        return -1;
    int64_t total = 0;
    *topics = 0;
    for (char *field = strstr (json, "\"messages_written\":"); field;
         field = strstr (field + 1, "\"messages_written\":")) {
        int64_t written = strtoll (strchr (field, ':') + 1, NULL, 10);
        total += written;
        *topics += written > 0;
    }
    zstr_free (&json);
    return total;
}

//  Wait until the broker has written messages in all (STATS counts a
//  message once its flush made it durable); returns when the broker first
//  went idle for IDLE_GAP_MS (its last append; the flush policy then syncs
//  the tail, as in s_wait_written). STATS is asked only once the broker is
//  idle, so that asking costs the run nothing, however many topics it lists.
//  STATS is asked less and less often (a STATS of thousands of topics
//  competes with their creation). *idle_cpu: the broker's CPU time at the
//  end; *topics: the topics written. Gives up after timeout_ms.
static double
s_scale_wait (const broker_t *broker, int64_t messages, int64_t timeout_ms, double *idle_cpu,
              int64_t *topics)
{
    int64_t deadline = zclock_mono () + timeout_ms, next_stats = 0, stats_every = STATS_POLL_MS;
    double last_cpu = s_broker_cpu (broker), last_growth = s_now (), idle_since = -1;
    while (zclock_mono () < deadline) {
        int status;
        if (waitpid (broker->pid, &status, WNOHANG) == broker->pid)
            return -1;                  //  it stopped itself: see its zperd.log
        double cpu = s_broker_cpu (broker);
        if (cpu != last_cpu) {
            last_cpu = cpu;
            last_growth = s_now ();
        }
        if (idle_since < 0 && s_now () - last_growth > IDLE_GAP_MS / 1000.0) {
            idle_since = last_growth;
            *idle_cpu = last_cpu;
        }
        if (idle_since >= 0 && zclock_mono () >= next_stats) {
            if (s_broker_written_total (broker, topics) >= messages)
                return idle_since;
            next_stats = zclock_mono () + stats_every;
            stats_every = stats_every * 2 < SCALE_STATS_MAX_MS? stats_every * 2: SCALE_STATS_MAX_MS;
        }
        zclock_sleep (CPU_POLL_MS);
    }
    return -1;
}

//  *create_seconds: how long the first message of every topic took (the
//  topics' creation), -1 if they did not all arrive
static result_t
s_scale_topics_run (int topics, int64_t messages, double *create_seconds)
{
    broker_t broker;
    s_broker_start (&broker, "scale", -1, false);
    void *context = zmq_ctx_new ();
    void *dealer = s_scale_dealer (context, broker.front, topics);
    *create_seconds = -1;
    double create_start = s_now (), created = 0, broker_cpu, end_cpu = -1;
    int64_t written_topics = 0;
    //  One message each (partitions and connections up), in steps: a
    //  worker that creates thousands of topics in one hand-off misses the
    //  broker's heartbeat deadline, and the broker stops itself
    for (int sent = 0; sent < topics && created >= 0; sent += SCALE_CREATE_STEP) {
        int step = topics - sent < SCALE_CREATE_STEP? topics - sent: SCALE_CREATE_STEP;
        s_scale_send (dealer, step);
        created = s_scale_wait (&broker, sent + step, SCALE_CREATE_TIMEOUT_MS, &broker_cpu,
                                &written_topics);
    }
    result_t result = s_result_init ();
    if (created < 0 || written_topics != topics)
        result.seconds = -1;            //  every topic must be its own connection's
    else
        *create_seconds = created - create_start;
    broker_cpu = s_broker_cpu (&broker);
    double cpu = s_self_cpu ();
    double start = s_now ();
    if (result.seconds == 0) {
        s_scale_send (dealer, messages);
        result.client_cpu = s_self_cpu () - cpu;
        double end = s_scale_wait (&broker, topics + messages, ACK_TIMEOUT_MS, &end_cpu,
                                   &written_topics);
        result.seconds = end < 0? -1: end - start;
    }
    result.broker_cpu = end_cpu - broker_cpu;       //  its appends, not the tail's sync
    result.broker_hwm_kb = s_broker_hwm_kb (&broker);
    result.messages = messages;
    result.bytes = (double) messages * SCALE_SIZE;
    if (result.seconds < 0)
        fprintf (stderr, "\nzper_bench_broker: scale: %d topics: not all written (%" PRId64
                 " topics), run not recorded (see %s/zperd.log)\n", topics, written_topics,
                 broker.dir);
    zmq_close (dealer);
    zmq_ctx_term (context);
    s_broker_destroy (&broker);
    return result;
}

//  The raw twin: the same DEALER to a bare ROUTER in a child process,
//  which reports over a pipe once it has every message
static result_t
s_scale_raw_run (int topics, int64_t messages)
{
    int ready [2], done [2];
    assert (pipe (ready) == 0 && pipe (done) == 0);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        void *context = zmq_ctx_new ();
        void *router = zmq_socket (context, ZMQ_ROUTER);
        assert (zmq_bind (router, "tcp://127.0.0.1:*") == 0);
        char endpoint [256];
        size_t endpoint_size = sizeof endpoint;
        zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size);
        assert (write (ready [1], endpoint, sizeof endpoint) == (ssize_t) sizeof endpoint);
        raw_receiver_t receiver = { router, topics, true };
        s_raw_receive (&receiver);
        char mark = 1;
        assert (write (done [1], &mark, 1) == 1);
        receiver.messages = messages;
        s_raw_receive (&receiver);
        assert (write (done [1], &mark, 1) == 1);
        _exit (0);
    }
    char endpoint [256], mark;
    assert (read (ready [0], endpoint, sizeof endpoint) == (ssize_t) sizeof endpoint);
    broker_t receiver = { .pid = child };
    void *context = zmq_ctx_new ();
    void *dealer = s_scale_dealer (context, endpoint, topics);
    s_scale_send (dealer, topics);
    assert (read (done [0], &mark, 1) == 1);
    result_t result = s_result_init ();
    double receiver_cpu = s_broker_cpu (&receiver);
    double cpu = s_self_cpu ();
    double start = s_now ();
    s_scale_send (dealer, messages);
    result.client_cpu = s_self_cpu () - cpu;
    assert (read (done [0], &mark, 1) == 1);
    result.seconds = s_now () - start;
    result.broker_cpu = s_broker_cpu (&receiver) - receiver_cpu;     //  the receiver's
    result.messages = messages;
    result.bytes = (double) messages * SCALE_SIZE;
    waitpid (child, NULL, 0);
    zmq_close (dealer);
    zmq_ctx_term (context);
    close (ready [0]), close (ready [1]), close (done [0]), close (done [1]);
    return result;
}

static void
s_scale_bench (void)
{
    s_scale_descriptors ();
    int64_t messages = s_counts_for (SCALE_SIZE).per_message;
    size_t steps = s_options.quick? SCALE_QUICK_STEPS: sizeof s_scale_topics / sizeof (int);
    for (size_t step = 0; step < steps; step++) {
        int topics = s_scale_topics [step];
        char name [64];
        s_progress ("scale: %d topic(s), raw DEALER->ROUTER", topics);
        result_t result = s_scale_raw_run (topics, messages);
        snprintf (name, sizeof name, "scale.raw.topics.%d", topics);
        s_record (name, "scale.raw.topics.1", false, SCALE_SIZE, &result);
        s_progress ("scale: %d topic(s), mode 0", topics);
        double create_seconds;
        result = s_scale_topics_run (topics, messages, &create_seconds);
        if (result.seconds > 0) {
            snprintf (name, sizeof name, "scale.topics.%d", topics);
            s_record (name, "scale.topics.1", false, SCALE_SIZE, &result);
        }
        if (create_seconds > 0 && topics >= SCALE_CREATE_REPORTED) {
            result_t created = s_result_init ();
            created.messages = topics;
            created.seconds = create_seconds;
            snprintf (name, sizeof name, "scale.create.%d", topics);
            s_record (name, NULL, false, SCALE_SIZE, &created);
        }
    }
    steps = s_options.quick? SCALE_QUICK_STEPS: sizeof s_scale_producers / sizeof (int);
    for (size_t step = 0; step < steps; step++) {
        int producers = s_scale_producers [step];
        s_progress ("scale: %d producer(s), mode 0", producers);
        result_t result = s_produce_messages (producers, ZPER_MODE_NONE, SCALE_SIZE, messages,
                                              false, false);
        if (result.seconds > 0) {
            char name [64];
            snprintf (name, sizeof name, "scale.producers.%d", producers);
            s_record (name, "scale.producers.1", false, SCALE_SIZE, &result);
        }
    }
}

//  ---- driver -------------------------------------------------------------

static void
s_raw_bench (void)
{
    for (size_t index = 0; index < SIZES; index++) {
        size_t size = s_sizes [index];
        counts_t counts = s_counts_for (size);
        char name [64], baseline [64];
        s_progress ("raw: DEALER->ROUTER %zu B x %" PRId64, size, counts.per_message);
        result_t result = s_raw_transport (ZMQ_DEALER, ZMQ_ROUTER, size, counts.per_message, false);
        s_raw_name (baseline, sizeof baseline, size, counts.per_message);
        s_record (baseline, NULL, false, size, &result);
        if (counts.batched != counts.per_message) {
            s_progress ("raw: DEALER->ROUTER %zu B x %" PRId64, size, counts.batched);
            result = s_raw_transport (ZMQ_DEALER, ZMQ_ROUTER, size, counts.batched, false);
            s_raw_name (name, sizeof name, size, counts.batched);
            s_record (name, NULL, false, size, &result);
        }
        s_progress ("raw: PUSH->PULL %zu B", size);
        result = s_raw_transport (ZMQ_PUSH, ZMQ_PULL, size, counts.per_message, false);
        snprintf (name, sizeof name, "raw.push.%zu", size);
        s_record (name, baseline, false, size, &result);
        if (s_options.quick)
            break;
    }
    s_progress ("raw: disk write");
    result_t result = s_raw_disk (s_options.quick? 4e6: 400e6);
    s_record ("raw.disk", NULL, true, DISK_CHUNK, &result);
    s_progress ("raw: write + fdatasync of %d B, one at a time", LATENCY_SIZE);
    result = s_raw_fdatasync (s_options.quick? 20: 1000);
    s_record ("raw.fdatasync", NULL, false, LATENCY_SIZE, &result);
}

//  Durable produce with many messages in flight: native batches acked once
//  durable, the broker syncing every write group (flush_messages 0), and
//  DURABLE_PRODUCERS producers, each keeping its window of
//  ZPER_CLIENT_MAX_BATCHES_IN_FLIGHT batches full
static void
s_durable_bench (void)
{
    s_progress ("durable: mode %d, %d producers, %d B, sync per write group",
                ZPER_MODE_BATCH_ACK, DURABLE_PRODUCERS, DURABLE_SIZE);
    result_t result = s_produce (DURABLE_PRODUCERS, ZPER_MODE_BATCH_ACK, DURABLE_SIZE, true);
    if (result.seconds <= 0)
        return;
    char name [64], baseline [64];
    snprintf (name, sizeof name, "durable.m%d.p%d.%d.sync", ZPER_MODE_BATCH_ACK,
              DURABLE_PRODUCERS, DURABLE_SIZE);
    s_raw_name (baseline, sizeof baseline, DURABLE_SIZE, result.messages);
    s_record (name, baseline, false, DURABLE_SIZE, &result);
}

//  The raw DEALER->ROUTER baseline of one produce scenario, run right
//  before it with the scenario's size and count, and named in baseline
//  (raw.twin.mM.pP.S). On a shared host the machine's speed drifts within
//  seconds: a run's raw group can be a minute away from the scenario, and
//  a ratio to it moved 3.7x across one run set (BENCHMARKS.md, run H)
static void
s_raw_twin (char *baseline, size_t baseline_size, int mode, int producers, size_t size)
{
    int64_t messages = s_messages_for_mode (size, mode);
    snprintf (baseline, baseline_size, "raw.twin.m%d.p%d.%zu", mode, producers, size);
    s_progress ("produce: raw DEALER->ROUTER %zu B x %" PRId64 ", twin of mode %d, %d producer(s)",
                size, messages, mode, producers);
    result_t result = s_raw_transport (ZMQ_DEALER, ZMQ_ROUTER, size, messages, false);
    s_record (baseline, NULL, false, size, &result);
}

static void
s_produce_bench (void)
{
    static const int modes [] = { ZPER_MODE_NONE, ZPER_MODE_ACK, ZPER_MODE_REQ, ZPER_MODE_BATCH_ACK };
    static const int producer_counts [] = { 1, 4 };
    for (size_t size_index = 0; size_index < SIZES; size_index++)
    for (int policy = 0; policy < 2; policy++)
    for (size_t count_index = 0; count_index < 2; count_index++)
    for (size_t mode_index = 0; mode_index < 4; mode_index++) {
        size_t size = s_sizes [size_index];
        if (s_options.quick && (size_index > 0 || count_index > 0))
            continue;
        int producers = producer_counts [count_index], mode = modes [mode_index];
        if (size == DURABLE_SIZE && producers == DURABLE_PRODUCERS && mode == ZPER_MODE_BATCH_ACK
        &&  policy == 1)
            continue;                   //  the durable scenario, below
        const char *policy_name = policy? "sync": "default";
        char name [64], baseline [64];
        bool twin = policy == 0 && mode != ZPER_MODE_REQ;      //  mode 2 has no ratio target
        if (twin)
            s_raw_twin (baseline, sizeof baseline, mode, producers, size);
        s_progress ("produce: mode %d, %d producer(s), %zu B, %s flush", mode, producers, size,
                    policy_name);
        result_t result = s_produce (producers, mode, size, policy == 1);
        if (result.seconds <= 0)
            continue;
        snprintf (name, sizeof name, "produce.m%d.p%d.%zu.%s", mode, producers, size, policy_name);
        if (!twin)
            s_raw_name (baseline, sizeof baseline, size, result.messages);
        s_record (name, baseline, false, size, &result);
    }
    s_durable_bench ();
}

//  What CURVE costs, at 100 B and 1 KiB, every count the mode-0 count of
//  s_counts (the raw baselines', so every ratio compares runs of the same
//  size and count). Each ZPER scenario runs against a plaintext broker,
//  then against a CURVE one, so that the twins of a ratio run side by side.
static void
s_curve_bench (void)
{
    static const size_t sizes [] = { 100, 1024 };
    static const int modes [] = { ZPER_MODE_NONE, ZPER_MODE_ACK, ZPER_MODE_BATCH_ACK };
    for (size_t size_index = 0; size_index < sizeof sizes / sizeof sizes [0]; size_index++) {
        size_t size = sizes [size_index];
        int64_t messages = s_counts_for (size).per_message;
        char raw [64], curve_raw [64], name [64], plain [64];
        s_raw_name (raw, sizeof raw, size, messages);
        snprintf (curve_raw, sizeof curve_raw, "curve.raw.dealer.%zu", size);
        result_t result;
        if (!s_wanted ("raw")) {
            s_progress ("curve: raw DEALER->ROUTER %zu B x %" PRId64, size, messages);
            result = s_raw_transport (ZMQ_DEALER, ZMQ_ROUTER, size, messages, false);
            s_record (raw, NULL, false, size, &result);
        }
        s_progress ("curve: raw CURVE DEALER->ROUTER %zu B x %" PRId64, size, messages);
        result = s_raw_transport (ZMQ_DEALER, ZMQ_ROUTER, size, messages, true);
        s_record (curve_raw, raw, false, size, &result);
        for (size_t mode_index = 0; mode_index < sizeof modes / sizeof modes [0]; mode_index++)
        for (int curve = 0; curve < 2; curve++) {
            int mode = modes [mode_index];
            s_progress ("curve: mode %d, 1 producer, %zu B, %s", mode, size,
                        curve? "CURVE": "plaintext");
            result = s_produce_messages (1, mode, size, messages, false, curve);
            if (result.seconds <= 0)
                continue;
            snprintf (name, sizeof name, "curve.%s.m%d.p1.%zu", curve? "on": "off", mode, size);
            snprintf (plain, sizeof plain, "curve.off.m%d.p1.%zu", mode, size);
            s_record_versus (name, curve? curve_raw: raw, curve? plain: NULL, size, &result);
        }
        for (int curve = 0; curve < 2; curve++)
            s_consume_topic (curve? "curve.on": "curve.off", size, curve, curve? curve_raw: raw,
                             curve? "curve.off": NULL);
        if (s_options.quick)
            break;
    }
}

static double
s_median (double *values, int count)
{
    for (int index = 1; index < count; index++)
        for (int other = index; other > 0 && values [other - 1] > values [other]; other--) {
            double swap = values [other];
            values [other] = values [other - 1];
            values [other - 1] = swap;
        }
    return count == 0? 0: count % 2? values [count / 2]
                     : (values [count / 2 - 1] + values [count / 2]) / 2;
}

//  The median over a scenario's runs of one double field of result_t
static double
s_median_field (const scenario_t *scenario, size_t field)
{
    double values [RUNS_MAX];
    for (int run = 0; run < scenario->count; run++)
        memcpy (&values [run], (const char *) &scenario->runs [run] + field, sizeof (double));
    return s_median (values, scenario->count);
}

static scenario_t *
s_find (const char *name)
{
    for (int index = 0; index < s_scenario_count; index++)
        if (streq (s_scenarios [index].name, name))
            return &s_scenarios [index];
    return NULL;
}

static double
s_rate (const scenario_t *scenario, int run)
{
    const result_t *result = &scenario->runs [run];
    if (result->seconds <= 0)
        return 0;
    return scenario->by_bytes? result->bytes / result->seconds / MEGABYTE
                             : (double) result->messages / result->seconds;
}

//  A scenario's figure in each run over that of baseline_name (its
//  baseline, or its plaintext twin) in the same run
static int
s_ratios (const scenario_t *scenario, const char *baseline_name, double *ratios)
{
    const scenario_t *baseline = *baseline_name? s_find (baseline_name): NULL;
    if (!baseline)
        return 0;
    int count = 0;
    for (int run = 0; run < scenario->count && run < baseline->count; run++)
        if (s_rate (baseline, run) > 0)
            ratios [count++] = s_rate (scenario, run) / s_rate (baseline, run);
    return count;
}

typedef struct {
    double rate, rate_min, rate_max, mb_s, ratio, ratio_min, ratio_max;
    double broker_cpu, client_cpu, hwm_kb, seconds, p50, p99, p999, max;
    double broker_us, client_us;        //  CPU microseconds per message, -1: no broker
    bool has_ratio;
    double plain_ratio, plain_ratio_min, plain_ratio_max;
    bool has_plain;                     //  a curve.on scenario whose twin was measured
} summary_t;

//  Median over the runs of a CPU field (seconds) per message, in us
static double
s_median_per_message (const scenario_t *scenario, size_t field)
{
    double values [RUNS_MAX];
    int count = 0;
    for (int run = 0; run < scenario->count; run++) {
        const result_t *result = &scenario->runs [run];
        double cpu;
        memcpy (&cpu, (const char *) result + field, sizeof cpu);
        if (cpu >= 0 && result->messages > 0)
            values [count++] = cpu / (double) result->messages * 1e6;
    }
    return count? s_median (values, count): -1;
}

static summary_t
s_summarize (const scenario_t *scenario)
{
    summary_t summary;
    double values [RUNS_MAX];
    int count = scenario->count;
    for (int run = 0; run < count; run++)
        values [run] = s_rate (scenario, run);
    summary.rate = s_median (values, count);
    summary.rate_min = values [0];
    summary.rate_max = values [count - 1];
    for (int run = 0; run < count; run++)
        values [run] = scenario->runs [run].seconds > 0
                     ? scenario->runs [run].bytes / scenario->runs [run].seconds / MEGABYTE: 0;
    summary.mb_s = s_median (values, count);
    summary.broker_cpu = s_median_field (scenario, offsetof (result_t, broker_cpu));
    summary.client_cpu = s_median_field (scenario, offsetof (result_t, client_cpu));
    summary.hwm_kb = s_median_field (scenario, offsetof (result_t, broker_hwm_kb));
    summary.seconds = s_median_field (scenario, offsetof (result_t, seconds));
    summary.p50 = s_median_field (scenario, offsetof (result_t, p50));
    summary.p99 = s_median_field (scenario, offsetof (result_t, p99));
    summary.p999 = s_median_field (scenario, offsetof (result_t, p999));
    summary.max = s_median_field (scenario, offsetof (result_t, max));
    summary.broker_us = s_median_per_message (scenario, offsetof (result_t, broker_cpu));
    summary.client_us = s_median_per_message (scenario, offsetof (result_t, client_cpu));
    int ratio_count = s_ratios (scenario, scenario->baseline, values);
    summary.has_ratio = ratio_count > 0;
    summary.ratio = s_median (values, ratio_count);
    summary.ratio_min = ratio_count? values [0]: 0;
    summary.ratio_max = ratio_count? values [ratio_count - 1]: 0;
    ratio_count = s_ratios (scenario, scenario->plain, values);
    summary.has_plain = ratio_count > 0;
    summary.plain_ratio = s_median (values, ratio_count);
    summary.plain_ratio_min = ratio_count? values [0]: 0;
    summary.plain_ratio_max = ratio_count? values [ratio_count - 1]: 0;
    return summary;
}

//  A figure for the table, "-" when not measured (negative); the text
//  lives for OPTIONAL_SLOTS calls, more than one table row makes
#define OPTIONAL_SLOTS      12
static const char *
s_optional (double value, int decimals)
{
    static char texts [OPTIONAL_SLOTS][32];
    static int next;
    char *text = texts [next++ % OPTIONAL_SLOTS];
    if (value < 0)
        snprintf (text, sizeof texts [0], "-");
    else
        snprintf (text, sizeof texts [0], "%.*f", decimals, value);
    return text;
}

static FILE *
s_open_output (const char *name)
{
    char *path = zsys_sprintf ("%s/%s", s_options.out, name);
    FILE *file = fopen (path, "w");
    if (!file) {
        fprintf (stderr, "zper_bench_broker: cannot write %s\n", path);
        exit (1);
    }
    free (path);
    return file;
}

static void
s_write_runs (void)
{
    FILE *file = s_open_output ("broker_runs.csv");
    fprintf (file, "scenario,run,size,messages,seconds,msg_per_s,mb_per_s,broker_cpu_s,"
                   "client_cpu_s,broker_hwm_kb,p50_us,p99_us,p999_us,max_us\n");
    for (int index = 0; index < s_scenario_count; index++) {
        const scenario_t *scenario = &s_scenarios [index];
        for (int run = 0; run < scenario->count; run++) {
            const result_t *r = &scenario->runs [run];
            fprintf (file, "%s,%d,%zu,%" PRId64 ",%.6f,%.1f,%.3f,%.3f,%.3f,%.0f,%.1f,%.1f,%.1f,%.1f\n",
                     scenario->name, run + 1, scenario->size, r->messages, r->seconds,
                     r->seconds > 0? (double) r->messages / r->seconds: 0,
                     r->seconds > 0? r->bytes / r->seconds / MEGABYTE: 0, r->broker_cpu,
                     r->client_cpu, r->broker_hwm_kb, r->p50, r->p99, r->p999, r->max);
        }
    }
    fclose (file);
}

static void
s_write_summary (void)
{
    FILE *file = s_open_output ("broker_summary.csv");
    fprintf (file, "scenario,baseline,runs,rate,rate_unit,rate_min,rate_max,mb_per_s,ratio,ratio_min,"
                   "ratio_max,broker_cpu_s,client_cpu_s,broker_hwm_kb,seconds,p50_us,p99_us,"
                   "p999_us,max_us,broker_us_per_msg,client_us_per_msg,plain,plain_ratio,"
                   "plain_ratio_min,plain_ratio_max\n");
    printf ("%-27s %10s %17s %7s %17s %8s %6s %6s %7s %7s %6s %7s %7s %7s %7s\n", "scenario",
            "median/s", "range", "MB/s", "ratio [range]", "seconds", "brkCPU", "cliCPU",
            "brk us/m", "cli us/m", "HWM MB", "p50 us", "p99 us", "p99.9us", "max us");
    for (int index = 0; index < s_scenario_count; index++) {
        const scenario_t *scenario = &s_scenarios [index];
        summary_t s = s_summarize (scenario);
        const char *unit = scenario->by_bytes? "MB/s": strncmp (scenario->name, "restart", 7) == 0
                         ? "1/s": "msg/s";
        fprintf (file, "%s,%s,%d,%.1f,%s,%.1f,%.1f,%.3f,%.4f,%.4f,%.4f,%.3f,%.3f,%.0f,%.6f,"
                       "%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%s,%.4f,%.4f,%.4f\n",
                 scenario->name, s.has_ratio? scenario->baseline: "", scenario->count, s.rate, unit,
                 s.rate_min, s.rate_max, s.mb_s, s.ratio, s.ratio_min, s.ratio_max, s.broker_cpu,
                 s.client_cpu, s.hwm_kb, s.seconds, s.p50, s.p99, s.p999, s.max, s.broker_us,
                 s.client_us, s.has_plain? scenario->plain: "", s.plain_ratio, s.plain_ratio_min,
                 s.plain_ratio_max);
        char range [40], ratio [40];
        snprintf (range, sizeof range, "%.0f-%.0f", s.rate_min, s.rate_max);
        if (s.has_ratio)
            snprintf (ratio, sizeof ratio, "%.2f [%.2f-%.2f]", s.ratio, s.ratio_min, s.ratio_max);
        else
            snprintf (ratio, sizeof ratio, "-");
        printf ("%-27s %10.0f %17s %7.1f %17s %8.3f %6s %6.2f %7s %7s %6s %7s %7s %7s %7s\n",
                scenario->name, s.rate, range, s.mb_s, ratio, s.seconds,
                s_optional (s.broker_cpu, 2), s.client_cpu, s_optional (s.broker_us, 3),
                s_optional (s.client_us, 3), s_optional (s.hwm_kb / 1024, 0),
                s_optional (s.p50, 0), s_optional (s.p99, 0), s_optional (s.p999, 0),
                s_optional (s.max, 0));
    }
    fclose (file);
}

//  The CURVE cost table: each curve.on scenario against the raw CURVE
//  transport and against its plaintext twin, with both twins' CPU per
//  message (where the difference goes: the broker or the client), and the
//  CPU the raw transport's two ends spend per message over what the
//  broker and client spend together: on two shared cores, the ceiling of
//  the throughput ratio, and a figure the machine's noise moves far less
static void
s_write_curve_table (void)
{
    bool header = false;
    for (int index = 0; index < s_scenario_count; index++) {
        const scenario_t *scenario = &s_scenarios [index];
        const scenario_t *twin = *scenario->plain? s_find (scenario->plain): NULL;
        if (!twin)
            continue;
        if (!header) {
            printf ("\nCURVE: each curve.on scenario / raw CURVE DEALER->ROUTER and / the same "
                    "scenario in plaintext, same run\n%-27s %10s %20s %20s %15s %15s %9s\n",
                    "scenario", "median/s", "/ raw CURVE [range]", "/ plaintext [range]",
                    "brk us/m on/off", "cli us/m on/off", "CPU ratio");
            header = true;
        }
        summary_t s = s_summarize (scenario), t = s_summarize (twin);
        const scenario_t *raw = s_find (scenario->baseline);
        double raw_us = raw? s_summarize (raw).client_us: -1;
        double cpu_ratio = raw_us > 0 && s.broker_us > 0? raw_us / (s.broker_us + s.client_us): -1;
        char versus_raw [40], versus_plain [40], broker [40], client [40];
        snprintf (versus_raw, sizeof versus_raw, "%.2f [%.2f-%.2f]", s.ratio, s.ratio_min,
                  s.ratio_max);
        snprintf (versus_plain, sizeof versus_plain, "%.2f [%.2f-%.2f]", s.plain_ratio,
                  s.plain_ratio_min, s.plain_ratio_max);
        snprintf (broker, sizeof broker, "%s/%s", s_optional (s.broker_us, 3),
                  s_optional (t.broker_us, 3));
        snprintf (client, sizeof client, "%s/%s", s_optional (s.client_us, 3),
                  s_optional (t.client_us, 3));
        printf ("%-27s %10.0f %20s %20s %15s %15s %9s\n", scenario->name, s.rate,
                s.has_ratio? versus_raw: "-", s.has_plain? versus_plain: "-", broker, client,
                s_optional (cpu_ratio, 2));
    }
}

//  Median over the runs of a scenario's MB/s over the lower of the raw
//  DEALER->ROUTER MB/s of the same size and count and the raw disk's, both
//  from the same run: "80% of raw libzmq or of raw disk write bandwidth,
//  whichever is lower". -1 when a baseline is missing.
static double
s_io_ratio (const scenario_t *scenario)
{
    const scenario_t *transport = s_find (scenario->baseline);
    const scenario_t *disk = s_find ("raw.disk");
    if (!transport || !disk)
        return -1;
    double ratios [RUNS_MAX];
    int count = 0;
    for (int run = 0; run < scenario->count && run < transport->count && run < disk->count; run++) {
        const result_t *t = &transport->runs [run];
        double transport_mb = t->seconds > 0? t->bytes / t->seconds / MEGABYTE: 0;
        double disk_mb = s_rate (disk, run);
        double ceiling = transport_mb < disk_mb? transport_mb: disk_mb;
        const result_t *r = &scenario->runs [run];
        if (ceiling > 0 && r->seconds > 0)
            ratios [count++] = r->bytes / r->seconds / MEGABYTE / ceiling;
    }
    return count? s_median (ratios, count): -1;
}

//  Median over the runs of a scenario's p99 over its baseline's p99 of the
//  same run (what a neighbour costs in latency). -1 without a baseline.
static double
s_p99_ratio_to (const scenario_t *scenario, const char *baseline_name)
{
    const scenario_t *baseline = *baseline_name? s_find (baseline_name): NULL;
    if (!baseline)
        return -1;
    double ratios [RUNS_MAX];
    int count = 0;
    for (int run = 0; run < scenario->count && run < baseline->count; run++)
        if (baseline->runs [run].p99 > 0)
            ratios [count++] = scenario->runs [run].p99 / baseline->runs [run].p99;
    return count? s_median (ratios, count): -1;
}

static double
s_p99_ratio (const scenario_t *scenario)
{
    return s_p99_ratio_to (scenario, scenario->baseline);
}

//  The issue's targets, met or missed, from the medians; a ratio is taken
//  run by run against the baseline of the same run with the same size and
//  message count (the scenario's baseline)
static void
s_write_targets (void)
{
    FILE *file = s_open_output ("targets.csv");
    fprintf (file, "target,scenario,figure,value,threshold,met\n");
    printf ("\n%-64s %14s %12s %s\n", "target", "value", "threshold", "result");
    struct { const char *target, *scenario, *figure; double threshold; bool below; } rows [] = {
        { "produce mode 0, 100 B, 1 producer / raw DEALER->ROUTER", "produce.m0.p1.100.default",
          "ratio", 0.80, false },
        { "native batches (mode 3), 100 B, 1 producer / raw DEALER msg/s",
          "produce.m3.p1.100.default", "ratio", 1.50, false },
        { "produce 1 KiB mode 0, 1 producer / min(raw DEALER, raw disk) MB/s",
          "produce.m0.p1.1024.default", "io_ratio", 0.80, false },
        { "produce 1 KiB mode 3, 1 producer / min(raw DEALER, raw disk) MB/s",
          "produce.m3.p1.1024.default", "io_ratio", 0.80, false },
        { "durable (mode 3, sync per group), 100 B, 4 producers, msg/s", "durable.m3.p4.100.sync",
          "msg/s", 1e6, false },
        { "consume 100 B, batched READ / raw DEALER", "consume.read.100", "ratio", 1.0, false },
        { "consume 100 B, streaming FETCH / raw DEALER", "consume.fetch_stream.100", "ratio", 1.0,
          false },
        { "latency 10k msg/s, raw DEALER->ROUTER, no broker, p99 (us)", "latency.raw.10000",
          "p99", 200, true },
        { "latency 10k msg/s, DEALER->bare forwarder->PULL, p99 (us)", "latency.proxy.10000",
          "p99", 200, true },
        { "latency 10k msg/s, mode 0 producer, READ long-poll, p99 (us)", "latency.m0.read.10000",
          "p99", 200, true },
        { "latency 10k msg/s, mode 0 producer, relay, p99 (us)", "latency.m0.relay.10000", "p99",
          200, true },
        { "latency 10k msg/s, mode 1 producer, READ long-poll, p99 (us)", "latency.m1.read.10000",
          "p99", 200, true },
        { "latency 10k msg/s, mode 1 producer, relay, p99 (us)", "latency.m1.relay.10000", "p99",
          200, true },
        { "latency 10k msg/s, mode 1 ack p99 / raw.fdatasync p99", "latency.m1.ack.10000",
          "p99_ratio", 2.0, true },
        { "latency 10k msg/s, mode 1 ack p99 / paced group fdatasync p99", "latency.m1.ack.10000",
          "p99_ratio_paced", 2.0, true },
        { "first FETCH after kill -9 (s)", "restart.kill9", "seconds", 1.0, true },
        { "hostile neighbour: producer msg/s beside it / alone", "hostile.neighbour", "ratio",
          0.80, false },
        { "hostile neighbour: producer p99 ack latency beside it / alone", "hostile.neighbour",
          "p99_ratio", 1.20, true },
        { "CURVE produce mode 0, 100 B, 1 producer / raw CURVE DEALER", "curve.on.m0.p1.100",
          "ratio", 0.80, false },
        { "CURVE produce mode 0, 1 KiB, 1 producer / raw CURVE DEALER", "curve.on.m0.p1.1024",
          "ratio", 0.80, false },
        { "CURVE produce mode 1, 100 B, 1 producer / raw CURVE DEALER", "curve.on.m1.p1.100",
          "ratio", 0.80, false },
        { "CURVE produce mode 1, 1 KiB, 1 producer / raw CURVE DEALER", "curve.on.m1.p1.1024",
          "ratio", 0.80, false },
        { "CURVE consume 100 B, streaming FETCH / raw CURVE DEALER", "curve.on.fetch_stream.100",
          "ratio", 0.80, false },
        { "CURVE consume 1 KiB, streaming FETCH / raw CURVE DEALER", "curve.on.fetch_stream.1024",
          "ratio", 0.80, false },
        { "CURVE consume 100 B, batched READ / raw CURVE DEALER", "curve.on.read.100", "ratio",
          0.80, false },
        { "CURVE consume 1 KiB, batched READ / raw CURVE DEALER", "curve.on.read.1024", "ratio",
          0.80, false },
    };
    for (size_t index = 0; index < sizeof rows / sizeof rows [0]; index++) {
        const scenario_t *scenario = s_find (rows [index].scenario);
        if (!scenario)
            continue;
        summary_t s = s_summarize (scenario);
        const char *figure = rows [index].figure;
        double value = streq (figure, "ratio")? (s.has_ratio? s.ratio: -1)
                     : streq (figure, "io_ratio")? s_io_ratio (scenario)
                     : streq (figure, "p99_ratio")? s_p99_ratio (scenario)
                     : streq (figure, "p99_ratio_paced")
                         ? s_p99_ratio_to (scenario, "latency.raw.fdatasync.10000")
                     : streq (figure, "p99")? s.p99
                     : streq (figure, "seconds")? s.seconds: s.rate;
        if (value < 0)
            continue;                   //  its baseline was not measured (--only)
        bool met = rows [index].below? value < rows [index].threshold
                                     : value >= rows [index].threshold;
        fprintf (file, "\"%s\",%s,%s,%.4f,%.4f,%s\n", rows [index].target, scenario->name, figure,
                 value, rows [index].threshold, met? "met": "missed");
        printf ("%-64s %14.3f %12.3f %s\n", rows [index].target, value, rows [index].threshold,
                met? "met": "MISSED");
    }
    fclose (file);
}

static int
s_arguments (int argc, char *argv [])
{
    s_options = (options_t) { false, RUNS_DEFAULT, LOG_GB_DEFAULT, NULL, "zper-bench-broker", ".",
                              NULL };
    for (int index = 1; index < argc; index++) {
        const char *argument = argv [index];
        const char *value = index + 1 < argc? argv [index + 1]: NULL;
        if (streq (argument, "--quick"))
            s_options.quick = true;
        else if (streq (argument, "--runs") && value)
            s_options.runs = atoi (argv [++index]);
        else if (streq (argument, "--log-gb") && value)
            s_options.log_gb = atof (argv [++index]);
        else if (streq (argument, "--zperd") && value)
            s_options.zperd = strdup (argv [++index]);
        else if (streq (argument, "--dir") && value)
            s_options.dir = argv [++index];
        else if (streq (argument, "--out") && value)
            s_options.out = argv [++index];
        else if (streq (argument, "--only") && value)
            s_options.only = argv [++index];
        else {
            fprintf (stderr, "Usage: zper_bench_broker [--quick] [--runs R] [--zperd PATH] "
                             "[--dir DIR] [--out DIR] [--log-gb G] [--only LIST]\n");
            return 2;
        }
    }
    if (s_options.runs < 1 || s_options.runs > RUNS_MAX || s_options.log_gb <= 0) {
        fprintf (stderr, "zper_bench_broker: --runs must be 1..%d and --log-gb > 0\n", RUNS_MAX);
        return 2;
    }
    if (s_options.quick) {
        s_options.runs = 1;
        s_options.log_gb = 0.01;
    }
    if (!s_options.zperd) {
        //  Built next to this program's folder: build/bench/zper_bench_broker, build/zperd
        char self [1024];
        ssize_t length = readlink ("/proc/self/exe", self, sizeof self - 1);
        self [length > 0? length: 0] = 0;
        char *slash = strrchr (self, '/');
        if (slash)
            *slash = 0;
        s_options.zperd = zsys_sprintf ("%s/../zperd", self);
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    int rc = s_arguments (argc, argv);
    if (rc >= 0)
        return rc;
    if (access (s_options.zperd, X_OK) != 0) {
        fprintf (stderr, "zper_bench_broker: no zperd at %s (use --zperd)\n", s_options.zperd);
        return 1;
    }
    signal (SIGPIPE, SIG_IGN);
    prctl (PR_SET_TIMERSLACK, 1UL);             //  paced sends wake on time
    srandom ((unsigned) getpid () ^ (unsigned) time (NULL));
    zsys_init ();
    mkdir (s_options.dir, 0755);
    double start = s_now ();

    if (s_wanted ("curve"))
        s_curve_certificates ();
    broker_t restart_broker = { 0 };
    if (s_wanted ("restart")) {
        s_broker_start (&restart_broker, "restart", -1, false);
        int64_t messages = (int64_t) (s_options.log_gb * GIBIBYTE / RESTART_BODY);
        s_progress ("restart: writing a %.2f GiB log", s_options.log_gb);
        producer_job_t job = { restart_broker.front, "restart", ZPER_MODE_BATCH_ACK, RESTART_BODY,
                               messages, 0, 0, FILL_SYNC_MESSAGES, false };
        s_producer_run (&job);
        assert (job.rc == 0);
    }
    for (s_current_run = 0; s_current_run < s_options.runs; s_current_run++) {
        if (s_wanted ("raw"))
            s_raw_bench ();
        if (s_wanted ("produce"))
            s_produce_bench ();
        if (s_wanted ("consume"))
            s_consume_bench ();
        if (s_wanted ("latency"))
            s_latency_bench ();
        if (s_wanted ("hostile"))
            s_hostile_bench ();
        if (s_wanted ("restart"))
            s_restart_bench (&restart_broker);
        if (s_wanted ("curve"))
            s_curve_bench ();
        if (s_wanted ("scale"))
            s_scale_bench ();
    }
    if (s_wanted ("restart"))
        s_broker_destroy (&restart_broker);
    fprintf (stderr, "\r\033[Kdone in %.0f s\n", s_now () - start);
    s_write_runs ();
    s_write_summary ();
    s_write_curve_table ();
    s_write_targets ();
    s_curve_destroy ();
    s_remove_tree (s_options.dir);
    free (s_options.zperd);
    return 0;
}
