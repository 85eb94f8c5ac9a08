/*  =========================================================================
    zper_bench_dafka - Dafka rates next to raw libzmq PUB/SUB, in one run

    Usage: zper_bench_dafka [--quick] [--messages N] [--dir DIR]

    For 100 B and 1 KiB records, over TCP on loopback, in one process (a
    tower, a store, producers and a consumer as actors):
      (a) producer -> store, all ACKed: from the first publish until the
          store acknowledged every record, i.e. until every record is
          durable (fdatasync'd) under the default flush policy
          (store/flush_messages 10000, store/flush_interval 1000 ms);
      (b) live consumer: from the first publish until a consumer (latest,
          already joined) received every record, a store running alongside;
      (c) baselines: a raw libzmq PUB -> SUB of the same message count and
          size, received by another thread; and the same with each message
          shaped as a RECORD (frame 0 of a RECORD's size, then the content):
          the transport's ceiling for a protocol of one RECORD per message.
    The log lives under --dir (default ./zper-bench-dafka), removed at the end.
    ========================================================================= */

#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_store.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_consumer.h"
#include "zper_dafka_proto.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MESSAGES          200000
#define QUICK_MESSAGES          2000
#define JOIN_MS                 1000        //  time for beacons to connect the peers
#define POLL_MS                 1
#define MEGABYTE                1000000.0
#define S_HEADER_MAX            1024        //  room for any RECORD frame 0 of a short topic

static const size_t s_sizes [] = { 100, 1024 };

typedef struct {
    int64_t messages;
    const char *dir;
    bool quick;
} options_t;

static double
s_seconds (void)
{
    return zclock_usecs () / 1e6;
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

//  (a) seconds until every record is acknowledged by the store
static double
s_bench_acked (zconfig_t *config, int64_t messages, size_t size)
{
    char topic [32];
    snprintf (topic, sizeof topic, "acked-%zu", size);
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, topic);
    assert (producer);
    zclock_sleep (JOIN_MS);
    double start = s_seconds ();
    s_publish (producer, messages, size);
    uint64_t published = 0, unacked = 1;
    while (published < (uint64_t) messages || unacked) {
        zclock_sleep (POLL_MS);
        zper_dafka_producer_stats (producer, &published, &unacked);
    }
    double elapsed = s_seconds () - start;
    zper_dafka_producer_destroy (&producer);
    return elapsed;
}

//  (b) seconds until a live consumer received every record
static double
s_bench_live (zconfig_t *config, int64_t messages, size_t size)
{
    char topic [32];
    snprintf (topic, sizeof topic, "live-%zu", size);
    zper_dafka_consumer_t *consumer = zper_dafka_consumer_new (config);
    zper_dafka_consumer_subscribe (consumer, topic);
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, topic);
    assert (consumer && producer);
    zclock_sleep (JOIN_MS);
    double start = s_seconds ();
    s_publish (producer, messages, size);
    for (int64_t received = 0; received < messages; received++) {
        zper_dafka_msg_t *record = zper_dafka_consumer_recv (consumer, -1);
        assert (record);
        zper_dafka_msg_destroy (&record);
    }
    double elapsed = s_seconds () - start;
    zper_dafka_producer_destroy (&producer);
    zper_dafka_consumer_destroy (&consumer);
    return elapsed;
}

//  The size of frame 0 of the RECORDs s_bench_acked publishes
static size_t
s_record_header_size (size_t size)
{
    char topic [32];
    snprintf (topic, sizeof topic, "acked-%zu", size);
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

//  (c) the receiving half of the baselines
static void
s_baseline_receiver (zsock_t *pipe, void *argument)
{
    zsock_t *sub = (zsock_t *) argument;
    zsock_signal (pipe, 0);
    int64_t messages;
    zsock_recv (pipe, "8", &messages);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    for (int64_t index = 0; index < messages; index++)
        while (zmq_msg_recv (&msg, zsock_resolve (sub), 0) >= 0 && zmq_msg_more (&msg))
            ;                       //  the rest of a RECORD-shaped message
    zmq_msg_close (&msg);
    zsock_signal (pipe, 0);
    char *term = zstr_recv (pipe);
    zstr_free (&term);
}

//  header_size 0: plain messages of size bytes; else RECORD-shaped ones
static double
s_bench_baseline (int64_t messages, size_t size, size_t header_size)
{
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_sndhwm (pub, (int) messages);
    zsock_set_rcvhwm (sub, (int) messages);
    zsock_set_subscribe (sub, "");
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    zsock_connect (sub, "tcp://127.0.0.1:%d", port);
    zactor_t *receiver = zactor_new (s_baseline_receiver, sub);
    zclock_sleep (JOIN_MS);
    zsock_send (receiver, "8", messages);
    char *body = (char *) malloc (size);
    memset (body, 'x', size);
    char header [S_HEADER_MAX];
    memset (header, 'M', sizeof header);
    double start = s_seconds ();
    for (int64_t index = 0; index < messages; index++) {
        if (header_size)
            zmq_send (zsock_resolve (pub), header, header_size, ZMQ_SNDMORE);
        zmq_send (zsock_resolve (pub), body, size, 0);
    }
    zsock_wait (receiver);
    double elapsed = s_seconds () - start;
    free (body);
    zactor_destroy (&receiver);
    zsock_destroy (&sub);
    zsock_destroy (&pub);
    return elapsed;
}

static void
s_report (size_t size, const char *mode, int64_t messages, double seconds, double baseline)
{
    double rate = messages / seconds;
    printf ("%6zu  %-34s %12.0f %9.1f", size, mode, rate, rate * size / MEGABYTE);
    if (baseline > 0)
        printf ("   %5.2f x raw PUB/SUB", baseline / seconds);
    printf ("\n");
}

static int
s_parse (options_t *options, int argc, char *argv [])
{
    for (int index = 1; index < argc; index++) {
        if (streq (argv [index], "--quick")) {
            options->quick = true;
            options->messages = QUICK_MESSAGES;
        }
        else
        if (streq (argv [index], "--messages") && index + 1 < argc)
            options->messages = atoll (argv [++index]);
        else
        if (streq (argv [index], "--dir") && index + 1 < argc)
            options->dir = argv [++index];
        else {
            fprintf (stderr, "usage: zper_bench_dafka [--quick] [--messages N] [--dir DIR]\n");
            return -1;
        }
    }
    return options->messages > 0? 0: -1;
}

static zconfig_t *
s_config (zper_dafka_tower_t **tower_p, const char *dir)
{
    zconfig_t *config = zconfig_new ("root", NULL);
    zconfig_put (config, "tower/sub_address", "tcp://127.0.0.1:*");
    zconfig_put (config, "tower/pub_address", "tcp://127.0.0.1:*");
    *tower_p = zper_dafka_tower_new (config);
    assert (*tower_p);
    char address [64];
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", zper_dafka_tower_sub_port (*tower_p));
    zconfig_put (config, "beacon/sub_address", address);
    snprintf (address, sizeof address, "tcp://127.0.0.1:%d", zper_dafka_tower_pub_port (*tower_p));
    zconfig_put (config, "beacon/pub_address", address);
    zconfig_put (config, "beacon/address", "127.0.0.1");
    zconfig_put (config, "beacon/interval", "100");
    zconfig_put (config, "store/db", dir);
    return config;
}

int
main (int argc, char *argv [])
{
    options_t options = { BENCH_MESSAGES, "zper-bench-dafka", false };
    if (s_parse (&options, argc, argv))
        return 2;
    printf ("%" PRId64 " records per run, TCP loopback, store flush policy: log defaults\n",
            options.messages);
    printf ("%6s  %-34s %12s %9s\n", "size", "mode", "records/s", "MB/s");
    //  The baselines run before any Dafka peer exists, so that none of their
    //  ephemeral ports is one a Dafka peer's SUB still reconnects to
    double baselines [sizeof s_sizes / sizeof s_sizes [0]];
    for (size_t index = 0; index < sizeof s_sizes / sizeof s_sizes [0]; index++) {
        size_t size = s_sizes [index];
        baselines [index] = s_bench_baseline (options.messages, size, 0);
        s_report (size, "raw libzmq PUB -> SUB", options.messages, baselines [index], 0);
        s_report (size, "raw libzmq, RECORD-shaped (2 frames)", options.messages,
                  s_bench_baseline (options.messages, size, s_record_header_size (size)),
                  baselines [index]);
    }
    zper_dafka_tower_t *tower = NULL;
    zconfig_t *config = s_config (&tower, options.dir);
    zper_dafka_store_t *store = zper_dafka_store_new (config);
    assert (store);
    for (size_t index = 0; index < sizeof s_sizes / sizeof s_sizes [0]; index++) {
        size_t size = s_sizes [index];
        double baseline = baselines [index];
        s_report (size, "producer -> store, all ACKed", options.messages,
                  s_bench_acked (config, options.messages, size), baseline);
        s_report (size, "producer -> live consumer", options.messages,
                  s_bench_live (config, options.messages, size), baseline);
        fflush (stdout);
    }
    zper_dafka_store_destroy (&store);
    zper_dafka_tower_destroy (&tower);
    zconfig_destroy (&config);
    char *command = zsys_sprintf ("rm -rf '%s'", options.dir);
    if (system (command) != 0)
        fprintf (stderr, "zper_bench_dafka: could not remove %s\n", options.dir);
    zstr_free (&command);
    return 0;
}
