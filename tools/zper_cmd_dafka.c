/*  =========================================================================
    zper_cmd_dafka - the Dafka verbs of the zper tool

      zper tower          run a tower (discovery)
      zper store          run a store (persists, ACKs, serves FETCH)
      zper dafka-produce  publish stdin lines (or generated records) to a topic
      zper dafka-consume  print the records of topics

    The options follow the reference tools: -c FILE (CZMQ ZPL), --pub and
    --sub (the tower's bind addresses for `tower`, the tower's addresses to
    connect to for the others), --verbose, --from-beginning; plus --set
    PATH=VALUE for any config key. Every node prints one line of counters on
    stderr when it stops (SIGINT/SIGTERM, or the end of its work).
    ========================================================================= */

#include "zper_cli.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_store.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_consumer.h"
#include "zper_dafka_security.h"
#include <string.h>
#include <stdlib.h>
#include <malloc.h>

#define S_LINE_MAX          (64 * 1024)
#define S_HELP_SHOWN        1           //  s_parse: --help printed, exit 0
#define S_POLL_MS           200         //  how often an idle verb looks at the signal flag

typedef struct {
    const char *verb;
    const char *role;               //  config section for --verbose: tower, store, producer, consumer
    const char *usage;              //  the verb's own options and operands
    zconfig_t *config;
    zlist_t *operands;              //  topics
    bool from_beginning;
    int64_t count;                  //  dafka-produce: records to generate; dafka-consume: to read
    int64_t size;                   //  dafka-produce: bytes per generated record
    int64_t idle_ms;                //  dafka-consume: stop after this long without a record
    bool print_meta;                //  dafka-consume: topic, producer, sequence before content
} s_options_t;

static const char *s_common_usage =
    "  -c FILE          read settings from a CZMQ ZPL file (keys as in docs/dafka.md)\n"
    "  --pub ADDR       %s\n"
    "  --sub ADDR       %s\n"
    "  --set PATH=VAL   set any config key, e.g. --set beacon/address=192.0.2.7 (this host's\n"
    "                   address for peers on other machines; the default is 127.0.0.1)\n"
    "                   CURVE: --set security/curve=1 --set security/cert=NAME (this node's\n"
    "                   certificate from zper keygen NAME), with security/keys and\n"
    "                   security/tower_key in the file (docs/dafka.md, Security)\n"
    "  --verbose        log what the node does\n"
    "  --help           this text\n";

static void
s_usage (s_options_t *options, FILE *stream)
{
    bool tower = streq (options->verb, "tower");
    fprintf (stream, "usage: zper %s [options]%s\n", options->verb, options->usage);
    fprintf (stream, s_common_usage,
             tower? "bind the tower's XPUB here (default " ZPER_DAFKA_TOWER_PUB_ADDRESS ")"
                  : "the tower's XPUB to connect to (default " ZPER_DAFKA_BEACON_PUB_ADDRESS ")",
             tower? "bind the tower's XSUB here (default " ZPER_DAFKA_TOWER_SUB_ADDRESS ")"
                  : "the tower's XSUB to connect to (default " ZPER_DAFKA_BEACON_SUB_ADDRESS ")");
}

static bool
s_number (const char *text, int64_t *value)
{
    char *end = NULL;
    long long parsed = text? strtoll (text, &end, 10): -1;
    if (!text || *end || parsed < 0)
        return false;
    *value = parsed;
    return true;
}

//  Parses argv into options; returns 0, S_HELP_SHOWN or 2 (usage error).
static int
s_parse (s_options_t *options, int argc, char *argv [])
{
    const char *file = NULL;
    for (int index = 1; index < argc; index++)
        if (streq (argv [index], "-c") && index + 1 < argc)
            file = argv [++index];
    options->config = zper_dafka_config_load (file);
    options->operands = zlist_new ();
    if (!options->config)
        return 2;
    bool tower = streq (options->verb, "tower");
    for (int index = 1; index < argc; index++) {
        const char *option = argv [index];
        const char *value = index + 1 < argc? argv [index + 1]: NULL;
        bool takes_value = true;
        if (streq (option, "--help") || streq (option, "-h")) {
            s_usage (options, stdout);
            return S_HELP_SHOWN;
        }
        else
        if (streq (option, "-c") && value)
            ;
        else
        if (streq (option, "--pub") && value)
            zper_dafka_config_set (options->config, tower? "tower/pub_address": "beacon/pub_address", value);
        else
        if (streq (option, "--sub") && value)
            zper_dafka_config_set (options->config, tower? "tower/sub_address": "beacon/sub_address", value);
        else
        if (streq (option, "--set") && value && strchr (value, '=')) {
            char *path = strdup (value);
            char *equals = strchr (path, '=');
            *equals = 0;
            zper_dafka_config_set (options->config, path, equals + 1);
            free (path);
        }
        else
        if (streq (option, "--db") && value && streq (options->verb, "store"))
            zper_dafka_config_set (options->config, "store/db", value);
        else
        if (streq (option, "--metrics") && value && streq (options->verb, "store"))
            zper_dafka_config_set (options->config, "store/metrics/listen", value);
        else
        if (streq (option, "--count") && s_number (value, &options->count) && !tower)
            ;
        else
        if (streq (option, "--size") && s_number (value, &options->size))
            ;
        else
        if (streq (option, "--idle") && s_number (value, &options->idle_ms))
            ;
        else {
            takes_value = false;
            if (streq (option, "--verbose")) {
                char path [32];
                snprintf (path, sizeof path, "%s/verbose", options->role);
                zper_dafka_config_set (options->config, path, "1");
            }
            else
            if (streq (option, "--from-beginning"))
                options->from_beginning = true;
            else
            if (streq (option, "--meta"))
                options->print_meta = true;
            else
            if (*option != '-')
                zlist_append (options->operands, (void *) option);
            else {
                fprintf (stderr, "zper %s: unknown option or missing value: '%s' (try --help)\n",
                         options->verb, option);
                return 2;
            }
        }
        if (takes_value)
            index++;
    }
    if (options->from_beginning)
        zper_dafka_config_set (options->config, "consumer/offset/reset", "earliest");
    if (zper_dafka_config_check (options->config, "command line"))
        return 2;
    //  Every peer but the tower itself must know the tower's key in advance
    if (!tower && zper_dafka_security_on (options->config)
    &&  !zper_dafka_config_string (options->config, "security/tower_key", NULL)) {
        fprintf (stderr, "command line: security/tower_key: required with security/curve = 1 "
                 "(the tower's public key or certificate)\n");
        return 2;
    }
    return 0;
}

static void
s_options_destroy (s_options_t *options)
{
    zconfig_destroy (&options->config);
    zlist_destroy (&options->operands);
}

//  With CURVE, the handshakes this process refused, for the counter line
//  (read while its node still runs: the count goes with the last node).
static char *
s_refusals (void)
{
    uint64_t plaintext, unknown_key;
    if (!zper_dafka_security_refused (&plaintext, &unknown_key))
        return strdup ("");
    return zsys_sprintf (" refused_plaintext=%" PRIu64 " refused_unknown_key=%" PRIu64,
                         plaintext, unknown_key);
}

//  Blocks until SIGINT/SIGTERM or until actor ends.
static void
s_wait_for_signal (zactor_t *actor)
{
    zpoller_t *poller = zpoller_new (actor, NULL);
    while (!zsys_interrupted && !zpoller_wait (poller, S_POLL_MS) && !zpoller_terminated (poller))
        ;
    zpoller_destroy (&poller);
}

//  ---- tower, store ----------------------------------------------------------------------

int
zper_cmd_tower (int argc, char *argv [])
{
    s_options_t options = { .verb = "tower", .role = "tower", .usage = "" };
    int rc = s_parse (&options, argc, argv);
    if (rc == S_HELP_SHOWN) {
        s_options_destroy (&options);
        return 0;
    }
    zper_dafka_tower_t *tower = rc? NULL: zper_dafka_tower_new (options.config);
    if (!rc && !tower) {
        fprintf (stderr, "zper tower: cannot bind its sockets (see above)\n");
        rc = 1;
    }
    if (tower) {
        s_wait_for_signal (zper_dafka_tower_actor (tower));
        uint64_t forwarded, dropped;
        zper_dafka_tower_stats (tower, &forwarded, &dropped);
        char *refusals = s_refusals ();
        zper_dafka_tower_destroy (&tower);
        fprintf (stderr, "zper tower: forwarded=%" PRIu64 " dropped=%" PRIu64 "%s\n", forwarded,
                 dropped, refusals);
        zstr_free (&refusals);
    }
    s_options_destroy (&options);
    return rc;
}

//  A store receives and a producer keeps (until acknowledged) one
//  allocation per record: glibc would hand freed runs of them back to the
//  kernel and fault the pages in again for the next ones (about a fifth
//  of a store's CPU at 100 B). Keep freed memory in the heap, as zperd does.
static void
s_keep_freed_memory (void)
{
    mallopt (M_MMAP_THRESHOLD, ZPER_MALLOC_MMAP_THRESHOLD);
    mallopt (M_TRIM_THRESHOLD, ZPER_MALLOC_TRIM_THRESHOLD);
}

int
zper_cmd_store (int argc, char *argv [])
{
    s_options_t options = { .verb = "store", .role = "store", .usage = " [--db DIR] [--metrics HOST:PORT]\n"
        "  --db DIR         where the log lives (store/db, default storedb)\n"
        "  --metrics HOST:PORT\n"
        "                   serve Prometheus metrics on GET /metrics (store/metrics/listen)" };
    int rc = s_parse (&options, argc, argv);
    if (rc == S_HELP_SHOWN) {
        s_options_destroy (&options);
        return 0;
    }
    if (!rc)
        s_keep_freed_memory ();
    zper_dafka_store_t *store = rc? NULL: zper_dafka_store_new (options.config);
    if (!rc && !store) {
        fprintf (stderr, "zper store: could not start (no tower welcome, or see above)\n");
        rc = 1;
    }
    if (store) {
        printf ("zper store: writer %s reader %s\n", zper_dafka_store_writer_uuid (store),
                zper_dafka_store_reader_uuid (store));
        fflush (stdout);
        s_wait_for_signal (zper_dafka_store_actor (store));
        zper_dafka_store_stats_t stats;
        zper_dafka_store_stats (store, &stats);
        bool curve = zper_dafka_security_on (options.config);
        char *refusals = s_refusals ();
        zper_dafka_store_destroy (&store);
        //  With CURVE, forged= and the refused handshakes follow
        char *forged = curve? zsys_sprintf (" forged=%" PRIu64 "%s", stats.forged, refusals)
                            : strdup ("");
        fprintf (stderr, "zper store: stored=%" PRIu64 " acked=%" PRIu64 " served=%" PRIu64
                 " malformed=%" PRIu64 " refused=%" PRIu64 " table_full=%" PRIu64 " given_up=%"
                 PRIu64 " fetch_dropped=%" PRIu64 "%s\n", stats.stored, stats.acked, stats.served,
                 stats.malformed, stats.refused, stats.table_full, stats.given_up,
                 stats.fetch_dropped, forged);
        zstr_free (&forged);
        zstr_free (&refusals);
    }
    s_options_destroy (&options);
    return rc;
}

//  ---- dafka-produce ---------------------------------------------------------------------

//  A generated record: its index in decimal, padded with '.' to size bytes.
static zframe_t *
s_generated (int64_t index, int64_t size)
{
    char digits [32];
    int length = snprintf (digits, sizeof digits, "%" PRId64, index);
    size_t total = size > length? (size_t) size: (size_t) length;
    zframe_t *frame = zframe_new (NULL, total);
    memset (zframe_data (frame), '.', total);
    memcpy (zframe_data (frame), digits, length);
    return frame;
}

static int64_t
s_publish_input (zper_dafka_producer_t *producer, s_options_t *options)
{
    int64_t published = 0;
    if (options->count) {
        for (; published < options->count && !zsys_interrupted; published++) {
            zframe_t *record = s_generated (published, options->size);
            if (zper_dafka_producer_publish (producer, &record))
                break;
        }
        return published;
    }
    char *line = (char *) malloc (S_LINE_MAX);
    while (!zsys_interrupted && fgets (line, S_LINE_MAX, stdin)) {
        size_t length = strlen (line);
        if (length && line [length - 1] == '\n')
            length--;
        if (zper_dafka_producer_publish_data (producer, line, length))
            break;
        published++;
    }
    free (line);
    return published;
}

int
zper_cmd_dafka_produce (int argc, char *argv [])
{
    s_options_t options = { .verb = "dafka-produce", .role = "producer", .usage =
        " TOPIC  (one record per stdin line)\n"
        "  --count N        publish N generated records instead of stdin\n"
        "  --size BYTES     size of each generated record (its index, padded with '.')" };
    int rc = s_parse (&options, argc, argv);
    if (rc == S_HELP_SHOWN) {
        s_options_destroy (&options);
        return 0;
    }
    if (!rc && zlist_size (options.operands) != 1) {
        fprintf (stderr, "zper dafka-produce: expected one TOPIC (try --help)\n");
        rc = 2;
    }
    if (!rc)
        s_keep_freed_memory ();
    zper_dafka_producer_t *producer = rc? NULL:
        zper_dafka_producer_new (options.config, (char *) zlist_first (options.operands));
    if (!rc && !producer) {
        fprintf (stderr, "zper dafka-produce: could not start (bad topic, no tower welcome)\n");
        rc = 1;
    }
    if (producer) {
        printf ("zper dafka-produce: producer %s\n", zper_dafka_producer_uuid (producer));
        fflush (stdout);
        int64_t published = s_publish_input (producer, &options);
        //  Destroy waits for the ACKs (unless producer/terminate_unacked = 1)
        zper_dafka_producer_destroy (&producer);
        fprintf (stderr, "zper dafka-produce: published=%" PRId64 "%s\n", published,
                 zsys_interrupted? " (interrupted)": "");
        rc = zsys_interrupted? 1: 0;
    }
    s_options_destroy (&options);
    return rc;
}

//  ---- dafka-consume ---------------------------------------------------------------------

static void
s_print_record (zper_dafka_msg_t *record, bool print_meta)
{
    zframe_t *content = zper_dafka_msg_content (record);
    if (print_meta)
        printf ("%s\t%s\t%" PRIu64 "\t", zper_dafka_msg_subject (record),
                zper_dafka_msg_address (record), zper_dafka_msg_sequence (record));
    fwrite (zframe_data (content), 1, zframe_size (content), stdout);
    putchar ('\n');
}

int
zper_cmd_dafka_consume (int argc, char *argv [])
{
    s_options_t options = { .verb = "dafka-consume", .role = "consumer", .usage =
        " TOPIC...\n"
        "  --from-beginning read from sequence 0 of every partition (the stores)\n"
        "  --count N        exit after N records\n"
        "  --idle MS        exit after MS without a record\n"
        "  --meta           print topic, producer uuid and sequence before each record" };
    int rc = s_parse (&options, argc, argv);
    if (rc == S_HELP_SHOWN) {
        s_options_destroy (&options);
        return 0;
    }
    if (!rc && zlist_size (options.operands) == 0) {
        fprintf (stderr, "zper dafka-consume: expected at least one TOPIC (try --help)\n");
        rc = 2;
    }
    //  stdout carries the records: a log line (a refused CURVE handshake,
    //  say) must not land among them
    zsys_set_logstream (stderr);
    zper_dafka_consumer_t *consumer = rc? NULL: zper_dafka_consumer_new (options.config);
    if (!rc && !consumer) {
        fprintf (stderr, "zper dafka-consume: could not start (no tower welcome)\n");
        rc = 1;
    }
    if (consumer)
        fprintf (stderr, "zper dafka-consume: consumer %s\n", zper_dafka_consumer_uuid (consumer));
    for (char *topic = (char *) zlist_first (options.operands); consumer && topic;
         topic = (char *) zlist_next (options.operands))
        if (zper_dafka_consumer_subscribe (consumer, topic)) {
            fprintf (stderr, "zper dafka-consume: bad topic '%s' (1..255 bytes)\n", topic);
            rc = 2;
        }
    int64_t received = 0;
    int64_t last_record = zclock_mono ();
    while (consumer && !rc && !zsys_interrupted && (!options.count || received < options.count)
       &&  (!options.idle_ms || zclock_mono () - last_record < options.idle_ms)) {
        zper_dafka_msg_t *record = zper_dafka_consumer_recv (consumer, S_POLL_MS);
        if (record) {
            s_print_record (record, options.print_meta);
            zper_dafka_msg_destroy (&record);
            last_record = zclock_mono ();
            received++;
        }
        else
            fflush (stdout);        //  the stream paused: what was read is visible at once
    }
    fflush (stdout);
    if (consumer) {
        uint64_t delivered, malformed;
        zper_dafka_consumer_stats (consumer, &delivered, &malformed);
        char *forged = zper_dafka_security_on (options.config)?
            zsys_sprintf (" forged=%" PRIu64, zper_dafka_consumer_forged (consumer)): strdup ("");
        char *refusals = s_refusals ();
        zper_dafka_consumer_destroy (&consumer);
        fprintf (stderr, "zper dafka-consume: received=%" PRId64 " malformed=%" PRIu64 "%s%s\n",
                 received, malformed, forged, refusals);
        zstr_free (&forged);
        zstr_free (&refusals);
    }
    s_options_destroy (&options);
    return rc;
}
