/*  =========================================================================
    zper_cmd_client - the client verbs of the zper tool

        zper produce TOPIC [FILE...]   one message per input line
        zper consume TOPIC             print messages, from an offset or a time,
                                       or as a member of a consumer group (--group)
        zper topics                    list the broker's (or the cluster's) topics
        zper topics create|reassign    clustered topics (docs/cluster.md)
        zper cluster status            nodes, partitions, leaders, ISR, lag
        zper offsets TOPIC             where a topic starts and ends
        zper stats                     the broker's statistics (JSON)
        zper keygen NAME               a CURVE certificate pair with topic grants

    Every verb is a thin shell over include/zper.h, so what the CLI does a
    program can do. The one thing to know: input is read with poll(2) on the
    file descriptor, not stdio, so that while input is idle the producer
    still sends a lingering batch and reads acknowledgements; a producer
    typed into by hand sees its lines stored without waiting for EOF.
    With --server-key and --cert (or ZPER_SERVER_KEY and ZPER_CERT in the
    environment) every verb talks CURVE to the broker (docs/security.md).
    Exit codes: 0 success, 1 failure (the broker or the data), 2 usage.
    The broker options and the option helpers every client verb file uses
    (tools/zper_cmd_client_*.c) are defined here, declared in tools/zper_cli.h.
    ========================================================================= */

#include "zper_cli.h"
#include "zper.h"
#include <getopt.h>
#include <stdarg.h>
#include <poll.h>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>
#include <jansson.h>

#define S_EXIT_OK       0
#define S_EXIT_FAILURE  1
#define S_EXIT_USAGE    2
//  Long options without a short letter (after the broker options' ids)
enum { S_OPT_FROM = ZPER_CLI_OPT_END, S_OPT_RAW, S_OPT_PRINT_OFFSET, S_OPT_PRINT_TIMESTAMP,
       S_OPT_CLUSTER, S_OPT_KEY, S_OPT_GROUP, S_OPT_COMMIT_INTERVAL, S_OPT_SESSION };
#define S_READ_CHUNK    65536       //  bytes produce reads from its input at a time

//  An environment variable's value, or NULL when unset or empty
static char *
s_env_dup (const char *name)
{
    const char *value = getenv (name);
    return value && *value? strdup (value): NULL;
}

void
zper_cli_broker_init (zper_cli_broker_t *broker)
{
    broker->front = strdup (ZPER_DEFAULT_FRONT_BIND);
    broker->rear = strdup (ZPER_DEFAULT_REAR_BIND);
    broker->timeout_ms = ZPER_CLIENT_TIMEOUT_MS;
    broker->server_key = s_env_dup (ZPER_CLI_ENV_SERVER_KEY);
    broker->cert = s_env_dup (ZPER_CLI_ENV_CERT);
}

void
zper_cli_broker_free (zper_cli_broker_t *broker)
{
    zstr_free (&broker->front);
    zstr_free (&broker->rear);
    zstr_free (&broker->server_key);
    zstr_free (&broker->cert);
}

//  The default endpoint with its host replaced: tcp://HOST:port.
static char *
s_with_host (const char *endpoint, const char *host)
{
    return zsys_sprintf ("tcp://%s%s", host, strrchr (endpoint, ':'));
}

//  One line on stderr: "zper VERB: what is wrong (try 'zper VERB --help')".
int
zper_cli_usage_error (const char *verb, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    fprintf (stderr, "zper %s: ", verb);
    vfprintf (stderr, format, arguments);
    fprintf (stderr, " (try 'zper %s --help')\n", verb);
    va_end (arguments);
    return S_EXIT_USAGE;
}

//  Parse a whole decimal number into *value. Returns 0 or -1.
const char *
zper_cli_json_list (json_t *array, char *text, size_t size)
{
    assert (size > 0);
    size_t used = 0, index;
    json_t *value;
    text [0] = 0;
    json_array_foreach (array, index, value) {
        if (used >= size)
            break;                      //  cut: the rest would not fit
        if (json_is_integer (value))
            used += snprintf (text + used, size - used, "%s%lld", index? ",": "",
                              (long long) json_integer_value (value));
        else
            used += snprintf (text + used, size - used, "%s%s", index? ",": "",
                              json_string_value (value)? json_string_value (value): "?");
    }
    if (!text [0])
        snprintf (text, size, "-");
    return text;
}

int
zper_cli_parse_number (const char *text, int64_t minimum, int64_t *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (errno || end == text || *end || parsed < minimum)
        return -1;
    *value = parsed;
    return 0;
}

//  Handle one of the common options. Returns 0, or the usage exit code.
int
zper_cli_broker_option (const char *verb, int option, const char *argument,
                        zper_cli_broker_t *broker)
{
    int64_t number;
    switch (option) {
        case ZPER_CLI_OPT_BROKER:
            zstr_free (&broker->front);
            zstr_free (&broker->rear);
            broker->front = s_with_host (ZPER_DEFAULT_FRONT_BIND, argument);
            broker->rear = s_with_host (ZPER_DEFAULT_REAR_BIND, argument);
            broker->rear_given = true;
            return 0;
        case ZPER_CLI_OPT_FRONT:
            zstr_free (&broker->front);
            broker->front = strdup (argument);
            return 0;
        case ZPER_CLI_OPT_REAR:
            zstr_free (&broker->rear);
            broker->rear = strdup (argument);
            broker->rear_given = true;
            return 0;
        case ZPER_CLI_OPT_TIMEOUT:
            if (zper_cli_parse_number (argument, 1, &number) || number > INT32_MAX)
                return zper_cli_usage_error (verb, "--timeout needs a positive number of ms, not '%s'",
                                      argument);
            broker->timeout_ms = (int) number;
            return 0;
        case ZPER_CLI_OPT_SERVER_KEY:
            zstr_free (&broker->server_key);
            broker->server_key = strdup (argument);
            return 0;
        case ZPER_CLI_OPT_CERT:
            zstr_free (&broker->cert);
            broker->cert = strdup (argument);
            return 0;
        default:
            return zper_cli_usage_error (verb, "unknown or incomplete option '%s'", argument);
    }
}

//  After the options: CURVE needs both halves. Returns 0 or the usage exit code.
int
zper_cli_broker_check (const char *verb, zper_cli_broker_t *broker)
{
    if (!broker->server_key != !broker->cert)
        return zper_cli_usage_error (verb, "%s needs %s too", broker->cert? "--cert": "--server-key",
                              broker->cert? "--server-key": "--cert");
    return 0;
}

//  Put CURVE on a new client object when asked to. Returns 0, or the
//  failure exit code after one line naming the problem.
static int
s_producer_curve (const char *verb, zper_cli_broker_t *broker, zper_producer_t *producer)
{
    if (!broker->cert || zper_producer_set_curve (producer, broker->server_key, broker->cert) == 0)
        return 0;
    fprintf (stderr, "zper %s: %s\n", verb, zper_producer_error (producer));
    return S_EXIT_FAILURE;
}

static int
s_consumer_curve (const char *verb, zper_cli_broker_t *broker, zper_consumer_t *consumer)
{
    if (!broker->cert || zper_consumer_set_curve (consumer, broker->server_key, broker->cert) == 0)
        return 0;
    fprintf (stderr, "zper %s: %s\n", verb, zper_consumer_error (consumer));
    return S_EXIT_FAILURE;
}

//  getopt_long with our own messages: returns the option, -1 at the end.
int
zper_cli_next_option (int argc, char *argv [], const char *letters, const struct option *options,
               const char **bad)
{
    opterr = 0;
    int option = getopt_long (argc, argv, letters, options, NULL);
    if (option == '?' || option == ':')
        *bad = argv [optind - 1];
    return option;
}

static bool
s_topic_ok (const char *verb, const char *topic)
{
    if (zper_topic_valid (topic))
        return true;
    fprintf (stderr, "zper %s: invalid topic '%s' (1..%d ASCII letters and digits, or a "
             "cluster partition 'name.N')\n", verb, topic, ZPER_TOPIC_MAX);
    return false;
}

//  ---- produce -------------------------------------------------------------------

//  A line reader over one file descriptor that never blocks longer than
//  the caller allows, so the producer can work while input is idle.
typedef struct {
    int fd;
    uint8_t *data;                  //  bytes read and not yet returned
    size_t size;
    size_t capacity;
    size_t start;                   //  where the next line begins in data
    bool eof;
} s_lines_t;

//  Read what is there into the buffer, waiting up to wait_ms for it.
//  Returns 1 when bytes (or the end) came, 0 if none, -1 on error.
static int
s_lines_fill (s_lines_t *lines, int wait_ms)
{
    memmove (lines->data, lines->data + lines->start, lines->size - lines->start);
    lines->size -= lines->start;
    lines->start = 0;
    struct pollfd item = { lines->fd, POLLIN, 0 };
    int ready = poll (&item, 1, wait_ms);
    if (ready <= 0)
        return ready == -1 && errno != EINTR? -1: 0;
    if (lines->capacity - lines->size < S_READ_CHUNK) {
        lines->capacity = lines->capacity * 2 + S_READ_CHUNK;
        lines->data = (uint8_t *) realloc (lines->data, lines->capacity);
        assert (lines->data);
    }
    ssize_t bytes = read (lines->fd, lines->data + lines->size, S_READ_CHUNK);
    if (bytes == -1)
        return errno == EINTR? 0: -1;
    lines->eof = bytes == 0;
    lines->size += (size_t) bytes;
    return 1;
}

//  The next line (without its newline) in *line/*size, valid until the
//  next call. Returns 1 for a line, 0 when no whole line came within
//  wait_ms, -1 at the end of input or on a read error (errno then set).
static int
s_lines_next (s_lines_t *lines, int wait_ms, const uint8_t **line, size_t *size)
{
    while (true) {
        uint8_t *begin = lines->data + lines->start;
        uint8_t *newline = lines->size? memchr (begin, '\n', lines->size - lines->start): NULL;
        if (newline || (lines->eof && lines->start < lines->size)) {
            *line = begin;
            *size = (size_t) ((newline? newline: lines->data + lines->size) - begin);
            lines->start = newline? (size_t) (newline - lines->data) + 1: lines->size;
            return 1;
        }
        if (lines->eof) {
            errno = 0;
            return -1;
        }
        int filled = s_lines_fill (lines, wait_ms);
        if (filled != 1)
            return filled;
    }
}

//  One line as a message, split into frames at separator (if any).
static zmsg_t *
s_line_msg (const uint8_t *line, size_t size, const char *separator)
{
    zmsg_t *msg = zmsg_new ();
    if (!separator) {
        zmsg_addmem (msg, line, size);
        return msg;
    }
    size_t separator_size = strlen (separator);
    const uint8_t *end = line + size;
    while (true) {
        const uint8_t *found = memmem (line, (size_t) (end - line), separator, separator_size);
        zmsg_addmem (msg, line, (size_t) ((found? found: end) - line));
        if (!found)
            break;
        line = found + separator_size;
    }
    return msg;
}

//  Send one line as a message, split into frames at separator (if any).
static int
s_send_line (zper_producer_t *producer, const uint8_t *line, size_t size, const char *separator)
{
    if (!separator)
        return zper_producer_send_mem (producer, line, size);
    zmsg_t *msg = s_line_msg (line, size, separator);
    return zper_producer_send (producer, &msg);
}

//  Send every line of fd. Returns 0, or -1 if a message failed; stops at
//  once (returning -1 with *fatal set) when the broker cannot be reached.
static int
s_produce_fd (zper_producer_t *producer, int fd, const char *separator, int idle_ms, bool *fatal)
{
    s_lines_t lines = { fd, (uint8_t *) malloc (S_READ_CHUNK), 0, S_READ_CHUNK, 0, false };
    assert (lines.data);
    const uint8_t *line;
    size_t size;
    int rc = 0, next;
    while (!*fatal && !zsys_interrupted && (next = s_lines_next (&lines, idle_ms, &line, &size)) != -1) {
        int sent = next == 1? s_send_line (producer, line, size, separator)
                            : zper_producer_poll (producer, 0);
        if (sent == -1) {
            fprintf (stderr, "zper: %s\n", zper_producer_error (producer));
            *fatal = errno == EHOSTUNREACH;
            rc = -1;
        }
    }
    if (lines.eof == false && !*fatal && !zsys_interrupted) {
        fprintf (stderr, "zper: cannot read input: %s\n", strerror (errno));
        rc = -1;
    }
    free (lines.data);
    return rc;
}

static int
s_produce_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper produce TOPIC [FILE...] [options]\n"
        "Send one message per line of the FILEs ('-' or none: stdin), without its newline.\n"
        "  -m, --mode N          0 no ack, 1 ack once durable (default), 2 lock-step (REQ)\n"
        "  -b, --batch           native batch write path (mode 3, or 4 with --mode 0)\n"
        "  -F, --frames-sep STR  split each line into frames at STR\n"
        "  --cluster             TOPIC is a clustered topic: write each partition's leader\n"
        "                        (asks METADATA at --rear; also chosen when --rear or --broker\n"
        "                        is given, TOPIC has no '.', and the cluster has TOPIC)\n"
        "  --key K               the partition of every line: FNV-1a of K (default: round-robin)\n"
        ZPER_CLI_BROKER_HELP
        "Exit status: 0 every message stored (or sent, in mode 0), 1 failure, 2 usage.\n");
    return rc;
}

//  Open each named input in turn and produce it; "-" is stdin.
static int
s_produce_inputs (zper_producer_t *producer, int count, char *names [], const char *separator,
                  int idle_ms)
{
    bool fatal = false;
    int rc = 0;
    for (int index = 0; index < (count? count: 1) && !fatal; index++) {
        const char *name = count? names [index]: "-";
        int fd = streq (name, "-")? STDIN_FILENO: open (name, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            fprintf (stderr, "zper produce: cannot open '%s': %s\n", name, strerror (errno));
            rc = -1;
            continue;
        }
        if (s_produce_fd (producer, fd, separator, idle_ms, &fatal) == -1)
            rc = -1;
        if (fd != STDIN_FILENO)
            close (fd);
    }
    if (!fatal && zper_producer_sync (producer) == -1) {
        fprintf (stderr, "zper: %s\n", zper_producer_error (producer));
        rc = -1;
    }
    return rc;
}

//  What produce was asked to do
typedef struct {
    zper_cli_broker_t broker;
    int64_t mode;
    bool batch;
    const char *separator;
    bool cluster;
    const char *key;
} s_produce_options_t;

//  Parse produce's options. Returns 0, ZPER_CLI_HELP_SHOWN or the usage exit code.
static int
s_produce_parse (int argc, char *argv [], s_produce_options_t *options)
{
    static const struct option table [] = {
        { "mode", required_argument, NULL, 'm' }, { "batch", no_argument, NULL, 'b' },
        { "frames-sep", required_argument, NULL, 'F' }, { "cluster", no_argument, NULL, S_OPT_CLUSTER },
        { "key", required_argument, NULL, S_OPT_KEY }, ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *bad = NULL;
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "m:bF:h", table, &bad)) != -1) {
        if (option == 'h')
            return s_produce_usage (stdout, ZPER_CLI_HELP_SHOWN);
        if (option == 'm' && (zper_cli_parse_number (optarg, 0, &options->mode) || options->mode > ZPER_MODE_REQ))
            rc = zper_cli_usage_error ("produce", "--mode must be 0, 1 or 2, not '%s'", optarg);
        else
        if (option == 'b')
            options->batch = true;
        else
        if (option == 'F' && !*optarg)
            rc = zper_cli_usage_error ("produce", "--frames-sep needs a separator");
        else
        if (option == 'F')
            options->separator = optarg;
        else
        if (option == S_OPT_CLUSTER)
            options->cluster = true;
        else
        if (option == S_OPT_KEY) {
            options->cluster = true;
            options->key = optarg;
        }
        else
        if (option != 'm')
            rc = zper_cli_broker_option ("produce", option, bad? bad: optarg, &options->broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check ("produce", &options->broker);
    if (rc == 0 && optind >= argc)
        rc = zper_cli_usage_error ("produce", "missing TOPIC");
    if (rc == 0 && options->batch && options->mode == ZPER_MODE_REQ)
        rc = zper_cli_usage_error ("produce", "--batch works with --mode 0 or 1");
    if (rc == 0 && options->cluster && options->mode != ZPER_MODE_ACK)
        rc = zper_cli_usage_error ("produce", "--cluster works with --mode 1 (and --batch)");
    if (rc == 0 && !s_topic_ok ("produce", argv [optind]))
        rc = S_EXIT_USAGE;
    return rc;
}

//  ---- produce --cluster ----

//  True if the node at the rear is a cluster node that has topic: then a
//  plain produce of topic goes through its partitions. Any failure (a
//  single node answers 113) means no.
static bool
s_cluster_has (zper_cli_broker_t *broker, const char *topic)
{
    if (!broker->rear_given || strchr (topic, '.'))
        return false;
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, NULL);
    if (!consumer)
        return false;
    zper_consumer_set_timeout (consumer, broker->timeout_ms);
    if (broker->cert)
        zper_consumer_set_curve (consumer, broker->server_key, broker->cert);
    char *metadata = zper_consumer_metadata (consumer, topic);
    json_t *root = metadata? json_loads (metadata, 0, NULL): NULL;
    bool found = json_object_get (json_object_get (root, "topics"), topic) != NULL;
    json_decref (root);
    zstr_free (&metadata);
    zper_consumer_destroy (&consumer);
    return found;
}

//  Send every line of fd through the cluster producer. Returns 0 or -1.
static int
s_cluster_produce_fd (zper_cluster_producer_t *producer, int fd, s_produce_options_t *options,
                      int idle_ms)
{
    s_lines_t lines = { fd, (uint8_t *) malloc (S_READ_CHUNK), 0, S_READ_CHUNK, 0, false };
    assert (lines.data);
    const uint8_t *line;
    size_t size;
    int next;
    size_t key_size = options->key? strlen (options->key): 0;
    while (!zsys_interrupted && (next = s_lines_next (&lines, idle_ms, &line, &size)) != -1) {
        if (next == 1) {
            zmsg_t *msg = s_line_msg (line, size, options->separator);
            zper_cluster_producer_send (producer, &msg, options->key, key_size);
        }
        else
            zper_cluster_producer_poll (producer, 0);
    }
    int rc = 0;
    if (lines.eof == false && !zsys_interrupted) {
        fprintf (stderr, "zper: cannot read input: %s\n", strerror (errno));
        rc = -1;
    }
    free (lines.data);
    return rc;
}

//  produce through the partitions' leaders (METADATA at --rear).
static int
s_produce_cluster (int argc, char *argv [], s_produce_options_t *options, int mode)
{
    const char *topic = argv [optind];
    if (strchr (topic, '.') || strlen (topic) > ZPER_CLUSTER_BASE_NAME_MAX)
        return zper_cli_usage_error ("produce", "--cluster needs a clustered topic's name, not '%s'", topic);
    zper_cluster_producer_t *producer = zper_cluster_producer_new (options->broker.rear, topic, mode);
    if (!producer) {
        if (errno == ENXIO)
            fprintf (stderr, "zper produce: %s is not a cluster node, or etcd unreachable\n",
                     options->broker.rear);
        else
        if (errno == EINVAL)
            fprintf (stderr, "zper produce: invalid rear endpoint '%s'\n", options->broker.rear);
        else
            fprintf (stderr, "zper produce: %s at %s: %s\n", topic, options->broker.rear,
                     errno == ENOENT? "no such clustered topic (zper topics create)": strerror (errno));
        return S_EXIT_FAILURE;
    }
    int rc = S_EXIT_OK;
    if (options->broker.cert
    &&  zper_cluster_producer_set_curve (producer, options->broker.server_key, options->broker.cert)) {
        fprintf (stderr, "zper produce: %s\n", zper_cluster_producer_error (producer));
        rc = S_EXIT_FAILURE;
    }
    //  Acks wait for the replicas: never less than the library's ack timeout
    zper_cluster_producer_set_timeout (producer, options->broker.timeout_ms > ZPER_CLIENT_ACK_TIMEOUT_MS?
                                                 options->broker.timeout_ms: ZPER_CLIENT_ACK_TIMEOUT_MS);
    int count = argc - optind - 1;
    for (int index = 0; rc == S_EXIT_OK && index < (count? count: 1); index++) {
        const char *name = count? argv [optind + 1 + index]: "-";
        int fd = streq (name, "-")? STDIN_FILENO: open (name, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            fprintf (stderr, "zper produce: cannot open '%s': %s\n", name, strerror (errno));
            rc = S_EXIT_FAILURE;
            continue;
        }
        int idle_ms = options->batch? ZPER_CLIENT_BATCH_LINGER_MS: ZPER_CLIENT_IDLE_POLL_MS;
        if (s_cluster_produce_fd (producer, fd, options, idle_ms) == -1)
            rc = S_EXIT_FAILURE;
        if (fd != STDIN_FILENO)
            close (fd);
    }
    if (zper_cluster_producer_sync (producer) == -1) {
        fprintf (stderr, "zper produce: %" PRId64 " message(s) refused: %s\n",
                 zper_cluster_producer_refused (producer), zper_cluster_producer_error (producer));
        rc = S_EXIT_FAILURE;
    }
    zper_cluster_producer_destroy (&producer);
    return rc;
}

int
zper_cmd_produce (int argc, char *argv [])
{
    s_produce_options_t options = { .mode = ZPER_MODE_ACK };
    zper_cli_broker_init (&options.broker);
    int rc = s_produce_parse (argc, argv, &options);
    int mode = (int) options.mode;
    if (options.batch)
        mode = mode == ZPER_MODE_NONE? ZPER_MODE_BATCH: ZPER_MODE_BATCH_ACK;
    if (rc == 0 && (options.cluster
                    || ((mode == ZPER_MODE_ACK || mode == ZPER_MODE_BATCH_ACK)
                        && s_cluster_has (&options.broker, argv [optind])))) {
        rc = s_produce_cluster (argc, argv, &options, mode);
        zper_cli_broker_free (&options.broker);
        return rc;
    }
    zper_producer_t *producer = rc? NULL: zper_producer_new (options.broker.front, argv [optind], mode);
    if (rc == 0 && !producer) {
        fprintf (stderr, "zper produce: invalid front endpoint '%s'\n", options.broker.front);
        rc = S_EXIT_USAGE;
    }
    if (producer)
        rc = s_producer_curve ("produce", &options.broker, producer);
    if (producer && rc == 0) {
        zper_producer_set_timeout (producer, options.broker.timeout_ms);
        //  While input is idle: send a lingering batch, read acks
        int idle_ms = options.batch? ZPER_CLIENT_BATCH_LINGER_MS: ZPER_CLIENT_IDLE_POLL_MS;
        rc = s_produce_inputs (producer, argc - optind - 1, argv + optind + 1, options.separator,
                               idle_ms) == 0? S_EXIT_OK: S_EXIT_FAILURE;
    }
    zper_producer_destroy (&producer);
    zper_cli_broker_free (&options.broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

//  ---- consume -------------------------------------------------------------------

//  How consume prints
typedef struct {
    bool raw;
    bool print_offset;
    bool print_timestamp;
    const char *separator;
} s_format_t;

//  Write bytes so that the line stays one printable line: backslash,
//  control and non-ASCII bytes are escaped C-style.
static void
s_print_escaped (const uint8_t *data, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        uint8_t byte = data [index];
        if (byte == '\\')
            fputs ("\\\\", stdout);
        else
        if (byte == '\t' || byte == '\n' || byte == '\r')
            printf ("\\%c", byte == '\t'? 't': byte == '\n'? 'n': 'r');
        else
        if (byte < 0x20 || byte > 0x7e)
            printf ("\\x%02x", byte);
        else
            putchar (byte);
    }
}

static void
s_print_message (int64_t offset, int64_t timestamp, zmsg_t *msg, const s_format_t *format)
{
    if (format->print_offset)
        printf ("%" PRId64 "\t", offset);
    if (format->print_timestamp)
        printf ("%" PRId64 "\t", timestamp);
    bool first = true;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg), first = false) {
        if (!first)
            fputs (format->separator, stdout);
        if (format->raw)
            fwrite (zframe_data (frame), 1, zframe_size (frame), stdout);
        else
            s_print_escaped (zframe_data (frame), zframe_size (frame));
    }
    putchar ('\n');
}

static int
s_consume_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper consume TOPIC [options]\n"
        "Print the topic's messages, one line each, frames joined by a separator.\n"
        "  --from WHERE          earliest (default), latest, OFFSET, or @TIMESTAMP_MS\n"
        "  -f, --follow          wait for new messages instead of stopping at the end\n"
        "  -n, --count N         stop after N messages\n"
        "  -F, --frames-sep STR  between frames (default: a tab)\n"
        "  --raw                 write bytes as they are (default: escape \\\\, \\t, \\n, \\r, \\xHH)\n"
        "  --print-offset        start each line with the message's offset and a tab\n"
        "  --print-timestamp     then its timestamp (ms since the epoch) and a tab\n"
        "  --group G             read as a member of consumer group G: the group's members share\n"
        "                        TOPIC's partitions (TOPIC.0..TOPIC.n); each starts at the group's\n"
        "                        committed offset (else the earliest) and what is printed is\n"
        "                        committed (at least once); not with --from. Without -f it stops\n"
        "                        once nothing came for " ZPER_CLI_STRING (ZPER_CLIENT_FOLLOW_WAIT_MS) " ms\n"
        "  --commit-interval MS  with --group: commit every MS ms (default "
        ZPER_CLI_STRING (ZPER_GROUP_COMMIT_INTERVAL_MS) "); 0: after every\n"
        "                        message (a crash prints at most one message per partition again)\n"
        "  --session MS          with --group: the broker gives this member's partitions to others\n"
        "                        when it was not heard from for MS ms (default "
        ZPER_CLI_STRING (ZPER_GROUP_SESSION_MS) ")\n"
        ZPER_CLI_BROKER_HELP);
    return rc;
}

//  Position consumer as --from says. Returns 0, -1 (broker), or 2 (usage).
static int
s_seek (zper_consumer_t *consumer, const char *from)
{
    int64_t value;
    int rc;
    if (streq (from, "earliest"))
        rc = zper_consumer_seek (consumer, ZPER_OFFSET_EARLIEST);
    else
    if (streq (from, "latest"))
        rc = zper_consumer_seek (consumer, ZPER_OFFSET_LATEST);
    else
    if (*from == '@' && zper_cli_parse_number (from + 1, 0, &value) == 0)
        rc = zper_consumer_seek_time (consumer, value);
    else
    if (zper_cli_parse_number (from, 0, &value) == 0)
        rc = zper_consumer_seek (consumer, value);
    else
        return zper_cli_usage_error ("consume", "--from must be earliest, latest, an offset or "
                              "@TIMESTAMP_MS, not '%s'", from);
    if (rc == -1)
        fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
    return rc;
}

//  Print messages until count (if >= 0) or the end (or forever if following).
static int
s_consume_loop (zper_consumer_t *consumer, int64_t count, bool follow, const s_format_t *format)
{
    for (int64_t printed = 0; count < 0 || printed < count; printed++) {
        zmsg_t *msg = zper_consumer_recv (consumer, follow? ZPER_CLIENT_FOLLOW_WAIT_MS: 0);
        while (!msg && errno == EAGAIN && follow && !zsys_interrupted)
            msg = zper_consumer_recv (consumer, ZPER_CLIENT_FOLLOW_WAIT_MS);
        if (!msg && (errno == EAGAIN || zsys_interrupted))
            return 0;
        if (!msg) {
            fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
            return -1;
        }
        s_print_message (zper_consumer_offset (consumer), zper_consumer_timestamp (consumer),
                         msg, format);
        zmsg_destroy (&msg);
        if (follow)
            fflush (stdout);
    }
    return 0;
}

//  What consume was asked to do
typedef struct {
    zper_cli_broker_t broker;
    s_format_t format;
    const char *from;
    bool from_given;
    bool follow;
    int64_t count;
    const char *group;              //  --group: a group consumer
    int64_t commit_ms;
    int64_t session_ms;
    bool group_option_given;        //  --commit-interval or --session
} s_consume_options_t;

//  A consume option's number of ms, at least minimum. Returns 0 or the usage exit code.
static int
s_parse_ms (const char *option, const char *text, int64_t minimum, int64_t *value)
{
    if (zper_cli_parse_number (text, minimum, value) == 0 && *value <= INT32_MAX)
        return 0;
    return zper_cli_usage_error ("consume", "%s needs a number of ms (>= %d), not '%s'", option,
                                 (int) minimum, text);
}

//  Parse consume's options. Returns 0, ZPER_CLI_HELP_SHOWN or the usage exit code.
static int
s_consume_parse (int argc, char *argv [], s_consume_options_t *options)
{
    static const struct option table [] = {
        { "from", required_argument, NULL, S_OPT_FROM }, { "follow", no_argument, NULL, 'f' },
        { "count", required_argument, NULL, 'n' }, { "frames-sep", required_argument, NULL, 'F' },
        { "raw", no_argument, NULL, S_OPT_RAW },
        { "print-offset", no_argument, NULL, S_OPT_PRINT_OFFSET },
        { "print-timestamp", no_argument, NULL, S_OPT_PRINT_TIMESTAMP },
        { "group", required_argument, NULL, S_OPT_GROUP },
        { "commit-interval", required_argument, NULL, S_OPT_COMMIT_INTERVAL },
        { "session", required_argument, NULL, S_OPT_SESSION },
        ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *bad = NULL;
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "fn:F:h", table, &bad)) != -1) {
        switch (option) {
            case 'h':                   return s_consume_usage (stdout, ZPER_CLI_HELP_SHOWN);
            case S_OPT_FROM:            options->from = optarg; options->from_given = true; break;
            case S_OPT_GROUP:           options->group = optarg; break;
            case S_OPT_COMMIT_INTERVAL:
                options->group_option_given = true;
                rc = s_parse_ms ("--commit-interval", optarg, 0, &options->commit_ms);
                break;
            case S_OPT_SESSION:
                options->group_option_given = true;
                rc = s_parse_ms ("--session", optarg, 1, &options->session_ms);
                break;
            case 'f':                   options->follow = true; break;
            case 'F':                   options->format.separator = optarg; break;
            case S_OPT_RAW:             options->format.raw = true; break;
            case S_OPT_PRINT_OFFSET:    options->format.print_offset = true; break;
            case S_OPT_PRINT_TIMESTAMP: options->format.print_timestamp = true; break;
            case 'n':
                if (zper_cli_parse_number (optarg, 0, &options->count))
                    rc = zper_cli_usage_error ("consume", "-n needs a count, not '%s'", optarg);
                break;
            default:
                rc = zper_cli_broker_option ("consume", option, bad? bad: optarg, &options->broker);
        }
    }
    if (rc == 0)
        rc = zper_cli_broker_check ("consume", &options->broker);
    if (rc == 0 && options->group && options->from_given)
        rc = zper_cli_usage_error ("consume", "--from makes no sense with --group: a group member "
                                   "starts where the group committed");
    if (rc == 0 && !options->group && options->group_option_given)
        rc = zper_cli_usage_error ("consume", "--commit-interval and --session need --group");
    if (rc == 0 && optind != argc - 1)
        rc = zper_cli_usage_error ("consume", optind >= argc? "missing TOPIC": "one TOPIC only");
    if (rc == 0 && !s_topic_ok ("consume", argv [optind]))
        rc = S_EXIT_USAGE;
    return rc;
}

//  As s_consume_loop, for a member of a group: every message printed is
//  flushed at once, as the next recv may commit it (a process killed after
//  that must have shown it).
static int
s_consume_group_loop (zper_group_consumer_t *consumer, int64_t count, bool follow,
                      const s_format_t *format)
{
    for (int64_t printed = 0; count < 0 || printed < count; printed++) {
        zmsg_t *msg = zper_group_consumer_recv (consumer, ZPER_CLIENT_FOLLOW_WAIT_MS);
        while (!msg && errno == EAGAIN && follow && !zsys_interrupted)
            msg = zper_group_consumer_recv (consumer, ZPER_CLIENT_FOLLOW_WAIT_MS);
        if (!msg && (errno == EAGAIN || zsys_interrupted))
            return 0;
        if (!msg) {
            fprintf (stderr, "zper: %s\n", zper_group_consumer_error (consumer));
            return -1;
        }
        s_print_message (zper_group_consumer_offset (consumer),
                         zper_group_consumer_timestamp (consumer), msg, format);
        zmsg_destroy (&msg);
        fflush (stdout);
    }
    return 0;
}

//  zper consume --group: returns the exit code.
static int
s_consume_group (const char *topic, s_consume_options_t *options)
{
    zper_cli_broker_t *broker = &options->broker;
    zper_group_consumer_t *consumer = zper_group_consumer_new (broker->rear, options->group, topic);
    if (!consumer) {
        fprintf (stderr, "zper consume: invalid group '%s' (1..%d letters, digits, '.', '_', '-') "
                 "or rear endpoint '%s'\n", options->group, ZPER_GROUP_NAME_MAX, broker->rear);
        return S_EXIT_USAGE;
    }
    int rc = S_EXIT_OK;
    if (broker->cert && zper_group_consumer_set_curve (consumer, broker->server_key, broker->cert)) {
        fprintf (stderr, "zper consume: %s\n", zper_group_consumer_error (consumer));
        rc = S_EXIT_FAILURE;
    }
    if (rc == S_EXIT_OK) {
        zper_group_consumer_set_timeout (consumer, broker->timeout_ms);
        zper_group_consumer_set_commit_interval (consumer, (int) options->commit_ms);
        zper_group_consumer_set_session (consumer, (int) options->session_ms);
        if (s_consume_group_loop (consumer, options->count, options->follow, &options->format))
            rc = S_EXIT_FAILURE;
    }
    zper_group_consumer_destroy (&consumer);        //  commits what was printed, leaves
    return rc;
}

int
zper_cmd_consume (int argc, char *argv [])
{
    s_consume_options_t options = { .format = { .separator = "\t" }, .from = "earliest", .count = -1,
                                    .commit_ms = ZPER_GROUP_COMMIT_INTERVAL_MS,
                                    .session_ms = ZPER_GROUP_SESSION_MS };
    zper_cli_broker_init (&options.broker);
    int rc = s_consume_parse (argc, argv, &options);
    if (rc == 0 && options.group) {
        rc = s_consume_group (argv [optind], &options);
        zper_cli_broker_free (&options.broker);
        return rc;
    }
    zper_consumer_t *consumer = rc? NULL: zper_consumer_new (options.broker.rear, argv [optind]);
    if (rc == 0 && !consumer) {
        fprintf (stderr, "zper consume: invalid rear endpoint '%s'\n", options.broker.rear);
        rc = S_EXIT_USAGE;
    }
    if (consumer)
        rc = s_consumer_curve ("consume", &options.broker, consumer);
    if (consumer && rc == 0) {
        zper_consumer_set_timeout (consumer, options.broker.timeout_ms);
        rc = s_seek (consumer, options.from);
        if (rc == 0)
            rc = s_consume_loop (consumer, options.count, options.follow, &options.format);
        if (rc == -1)
            rc = S_EXIT_FAILURE;
    }
    zper_consumer_destroy (&consumer);
    zper_cli_broker_free (&options.broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

//  ---- topics, offsets, stats ---------------------------------------------------

//  Parse the options of a verb that takes only the broker options and
//  topic_count topics. Returns 0, ZPER_CLI_HELP_SHOWN, or the usage exit code.
static int
s_parse_simple (int argc, char *argv [], int topic_count, const char *usage, zper_cli_broker_t *broker)
{
    static const struct option options [] = { ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 } };
    const char *verb = argv [0], *bad = NULL;
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", options, &bad)) != -1) {
        if (option == 'h') {
            printf ("usage: zper %s %s\n%s", verb, usage, ZPER_CLI_BROKER_HELP);
            return ZPER_CLI_HELP_SHOWN;
        }
        rc = zper_cli_broker_option (verb, option, bad? bad: optarg, broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, broker);
    if (rc == 0 && argc - optind != topic_count)
        rc = zper_cli_usage_error (verb, topic_count? "needs one TOPIC": "takes no argument");
    if (rc == 0 && topic_count && !s_topic_ok (verb, argv [optind]))
        rc = S_EXIT_USAGE;
    return rc;
}

//  Run a verb that asks the rear one thing: action prints the answer, or
//  the error, and returns 0 or -1.
static int
s_run_simple (int argc, char *argv [], int topic_count, const char *usage,
              int (*action) (zper_consumer_t *consumer, const char *topic))
{
    zper_cli_broker_t broker;
    zper_cli_broker_init (&broker);
    int rc = s_parse_simple (argc, argv, topic_count, usage, &broker);
    if (rc == 0) {
        zper_consumer_t *consumer = zper_consumer_new (broker.rear, NULL);
        if (consumer) {
            zper_consumer_set_timeout (consumer, broker.timeout_ms);
            rc = s_consumer_curve (argv [0], &broker, consumer);
            if (rc == 0)
                rc = action (consumer, topic_count? argv [optind]: NULL) == 0? S_EXIT_OK: S_EXIT_FAILURE;
            zper_consumer_destroy (&consumer);
        }
        else {
            fprintf (stderr, "zper %s: invalid rear endpoint '%s'\n", argv [0], broker.rear);
            rc = S_EXIT_USAGE;
        }
    }
    zper_cli_broker_free (&broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

static int s_print_cluster_topics (const char *metadata);

//  In cluster mode (METADATA answers) the cluster's topics with their
//  partitions; on a single node (113 NO_CLUSTER) the broker's topics.
static int
s_print_topics (zper_consumer_t *consumer, const char *unused)
{
    char *metadata = zper_consumer_metadata (consumer, NULL);
    if (metadata) {
        int rc = s_print_cluster_topics (metadata);
        zstr_free (&metadata);
        return rc;
    }
    if (errno != ENXIO) {
        fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
        return -1;
    }
    zlist_t *topics = zper_consumer_topics (consumer);
    if (!topics) {
        fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
        return -1;
    }
    for (char *topic = (char *) zlist_first (topics); topic; topic = (char *) zlist_next (topics))
        printf ("%s\n", topic);
    zlist_destroy (&topics);
    return 0;
}

static int s_topics_create (int argc, char *argv []);
static int s_topics_reassign (int argc, char *argv []);

#define S_TOPICS_HELP \
    "List the broker's topics, one per line; on a cluster node (docs/cluster.md) the\n" \
    "cluster's topics, one line per partition: leader, epoch, replicas, in-sync replicas.\n" \
    "  zper topics create NAME [--partitions P] [--replicas R] [--min-isr M]\n" \
    "  zper topics reassign NAME --partition I --replicas 1,2,4 [--wait]\n" \
    "  zper topics list       the same as zper topics\n"

int
zper_cmd_topics (int argc, char *argv [])
{
    if (argc > 1 && streq (argv [1], "create"))
        return s_topics_create (argc - 1, argv + 1);
    if (argc > 1 && streq (argv [1], "reassign"))
        return s_topics_reassign (argc - 1, argv + 1);
    if (argc > 1 && streq (argv [1], "list")) {
        argv [1] = (char *) "topics list";
        return s_run_simple (argc - 1, argv + 1, 0, "[options]\n" S_TOPICS_HELP, s_print_topics);
    }
    return s_run_simple (argc, argv, 0, "[list|create|reassign] [options]\n" S_TOPICS_HELP,
                         s_print_topics);
}

//  A timestamp as ms and, when there is one, as UTC ISO 8601.
static void
s_print_timestamp (const char *name, int64_t timestamp_ms)
{
    printf ("%-18s%" PRId64, name, timestamp_ms);
    time_t seconds = (time_t) (timestamp_ms / 1000);
    struct tm utc;
    if (timestamp_ms >= 0 && gmtime_r (&seconds, &utc)) {
        char text [32];
        strftime (text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
        printf ("  %s.%03dZ", text, (int) (timestamp_ms % 1000));
    }
    printf ("\n");
}

static int
s_print_offsets (zper_consumer_t *consumer, const char *topic)
{
    zper_topic_bounds_t bounds;
    if (zper_consumer_bounds (consumer, topic, &bounds) == -1) {
        fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
        return -1;
    }
    printf ("%-18s%s\n", "topic", topic);
    printf ("%-18s%" PRId64 "\n", "start_offset", bounds.start_offset);
    printf ("%-18s%" PRId64 "\n", "durable_offset", bounds.durable_offset);
    printf ("%-18s%" PRId64 "\n", "messages", bounds.durable_offset - bounds.start_offset);
    printf ("%-18s%" PRId64 "\n", "start_position", bounds.start_position);
    printf ("%-18s%" PRId64 "\n", "durable_position", bounds.durable_position);
    s_print_timestamp ("first_timestamp", bounds.first_timestamp);
    s_print_timestamp ("last_timestamp", bounds.last_timestamp);
    return 0;
}

int
zper_cmd_offsets (int argc, char *argv [])
{
    return s_run_simple (argc, argv, 1, "TOPIC [options]\n"
                         "Show where TOPIC starts and ends: logical offsets (readers see "
                         "[start_offset, durable_offset)),\nlegacy byte positions, and the "
                         "timestamps of its first and last messages (-1: none).\n",
                         s_print_offsets);
}

static int
s_print_stats (zper_consumer_t *consumer, const char *unused)
{
    char *json = zper_consumer_stats (consumer);
    if (!json) {
        fprintf (stderr, "zper: %s\n", zper_consumer_error (consumer));
        return -1;
    }
    printf ("%s\n", json);
    zstr_free (&json);
    return 0;
}

int
zper_cmd_stats (int argc, char *argv [])
{
    return s_run_simple (argc, argv, 0, "[options]\n"
                         "Print the broker's statistics: one JSON object (docs/protocol.md, STATS).\n",
                         s_print_stats);
}

//  ---- cluster (docs/cluster.md) ------------------------------------------------------
//  The admin verbs speak to one node's rear (--rear / --broker): METADATA,
//  CREATE, REASSIGN answer the same on every node (they read or write
//  etcd); cluster status then asks CLUSTER of every node METADATA names.

//  One line per partition of every cluster topic.
static int
s_print_cluster_topics (const char *metadata)
{
    json_t *root = json_loads (metadata, 0, NULL);
    json_t *topics = json_object_get (root, "topics");
    if (!json_is_object (topics)) {
        fprintf (stderr, "zper topics: a malformed METADATA reply\n");
        json_decref (root);
        return -1;
    }
    printf ("%-24s %9s %6s %6s %-14s %-14s %s\n", "TOPIC", "PARTITION", "LEADER", "EPOCH",
            "REPLICAS", "ISR", "TARGETS");
    const char *name;
    json_t *topic;
    json_object_foreach (topics, name, topic) {
        size_t index;
        json_t *partition;
        json_array_foreach (json_object_get (topic, "partition"), index, partition) {
            char replicas [128], isr [128], targets [128];
            zper_cli_json_list (json_object_get (partition, "replicas"), replicas, sizeof replicas);
            zper_cli_json_list (json_object_get (partition, "isr"), isr, sizeof isr);
            zper_cli_json_list (json_object_get (partition, "targets"), targets, sizeof targets);
            printf ("%-24s %9lld %6lld %6lld %-14s %-14s %s\n", name,
                    (long long) json_integer_value (json_object_get (partition, "id")),
                    (long long) json_integer_value (json_object_get (partition, "leader")),
                    (long long) json_integer_value (json_object_get (partition, "epoch")),
                    replicas, isr, targets);
        }
    }
    json_decref (root);
    return 0;
}

//  A consumer on the bootstrap rear with the common options, or NULL
//  after one line on stderr.
zper_consumer_t *
zper_cli_rear_consumer (const char *verb, zper_cli_broker_t *broker)
{
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, NULL);
    if (!consumer) {
        fprintf (stderr, "zper %s: invalid rear endpoint '%s'\n", verb, broker->rear);
        return NULL;
    }
    zper_consumer_set_timeout (consumer, broker->timeout_ms);
    if (s_consumer_curve (verb, broker, consumer) != 0)
        zper_consumer_destroy (&consumer);
    return consumer;
}

//  An admin request failed: one line, 113 said plainly.
static int
s_admin_failed (const char *verb, zper_consumer_t *consumer)
{
    if (errno == ENXIO)
        fprintf (stderr, "zper %s: not a cluster node, or etcd unreachable (%s)\n", verb,
                 zper_consumer_error (consumer));
    else
        fprintf (stderr, "zper %s: %s\n", verb, zper_consumer_error (consumer));
    return S_EXIT_FAILURE;
}

static int
s_create_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper topics create NAME [options]\n"
        "Create the clustered topic NAME (1..%d letters and digits): partitions NAME.0 ..\n"
        "NAME.P-1, each on R nodes. 0 or none: the cluster's defaults.\n"
        "  --partitions P        how many partitions (1..%d)\n"
        "  --replicas R          nodes holding each partition\n"
        "  --min-isr M           in-sync replicas an acknowledgement needs (default 2 when\n"
        "                        R >= 3, else 1)\n"
        ZPER_CLI_BROKER_HELP, ZPER_CLUSTER_BASE_NAME_MAX, ZPER_CLUSTER_PARTITIONS_MAX);
    return rc;
}

enum { S_OPT_PARTITIONS = 512, S_OPT_REPLICAS, S_OPT_MIN_ISR, S_OPT_PARTITION, S_OPT_WAIT,
       S_OPT_JSON };

//  A clustered topic's base name: letters and digits only.
static bool
s_base_name_ok (const char *verb, const char *name)
{
    if (zper_topic_valid (name) && !strchr (name, '.') && strlen (name) <= ZPER_CLUSTER_BASE_NAME_MAX)
        return true;
    fprintf (stderr, "zper %s: invalid topic '%s' (1..%d ASCII letters and digits)\n", verb, name,
             ZPER_CLUSTER_BASE_NAME_MAX);
    return false;
}

static int
s_topics_create (int argc, char *argv [])
{
    static const struct option table [] = {
        { "partitions", required_argument, NULL, S_OPT_PARTITIONS },
        { "replicas", required_argument, NULL, S_OPT_REPLICAS },
        { "min-isr", required_argument, NULL, S_OPT_MIN_ISR }, ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *verb = "topics create", *bad = NULL;
    int64_t counts [3] = { 0, 0, 0 };           //  partitions, replicas, min-isr
    zper_cli_broker_t broker;
    zper_cli_broker_init (&broker);
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        if (option == 'h') {
            rc = s_create_usage (stdout, ZPER_CLI_HELP_SHOWN);
            break;
        }
        if (option >= S_OPT_PARTITIONS && option <= S_OPT_MIN_ISR) {
            if (zper_cli_parse_number (optarg, 0, &counts [option - S_OPT_PARTITIONS])
            ||  counts [option - S_OPT_PARTITIONS] > INT32_MAX)
                rc = zper_cli_usage_error (verb, "--%s needs a number, not '%s'",
                                    table [option - S_OPT_PARTITIONS].name, optarg);
        }
        else
            rc = zper_cli_broker_option (verb, option, bad? bad: optarg, &broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, &broker);
    if (rc == 0 && argc - optind != 1)
        rc = zper_cli_usage_error (verb, "needs one topic NAME");
    if (rc == 0 && !s_base_name_ok (verb, argv [optind]))
        rc = S_EXIT_USAGE;
    zper_consumer_t *consumer = rc? NULL: zper_cli_rear_consumer (verb, &broker);
    if (rc == 0 && !consumer)
        rc = S_EXIT_FAILURE;
    if (consumer) {
        char *layout = zper_consumer_create_topic (consumer, argv [optind], (int) counts [0],
                                                   (int) counts [1], (int) counts [2]);
        if (layout) {
            printf ("%s\n", layout);
            zstr_free (&layout);
        }
        else
            rc = s_admin_failed (verb, consumer);
    }
    zper_consumer_destroy (&consumer);
    zper_cli_broker_free (&broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

static int
s_reassign_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper topics reassign NAME --partition I --replicas IDS [options]\n"
        "Move partition I of the clustered topic NAME to the nodes IDS ('1,2,4'). The new\n"
        "replicas copy the partition in the background; zper topics shows TARGETS until done.\n"
        "  --partition I         the partition (0..P-1)\n"
        "  --replicas IDS        the node ids, comma-separated, the preferred leader first\n"
        "  --wait                wait until the move is done (at most %d s)\n"
        ZPER_CLI_BROKER_HELP, ZPER_CLI_REASSIGN_WAIT_MS / 1000);
    return rc;
}

//  True until METADATA shows partition of topic on exactly the wanted
//  replicas ("3,2,1") with no targets left (the node asked may see etcd a
//  poll late, so "no targets" alone could be read before they appear);
//  false as well when METADATA cannot be had (*failed set).
static bool
s_reassign_pending (zper_consumer_t *consumer, const char *topic, int partition,
                    const char *wanted, bool *failed)
{
    char *metadata = zper_consumer_metadata (consumer, topic);
    *failed = metadata == NULL;
    json_t *root = metadata? json_loads (metadata, 0, NULL): NULL;
    zstr_free (&metadata);
    json_t *layout = json_object_get (json_object_get (json_object_get (root, "topics"), topic),
                                      "partition");
    bool pending = false;
    size_t index;
    json_t *entry;
    json_array_foreach (layout, index, entry)
        if (json_integer_value (json_object_get (entry, "id")) == partition) {
            char replicas [128];
            zper_cli_json_list (json_object_get (entry, "replicas"), replicas, sizeof replicas);
            pending = json_array_size (json_object_get (entry, "targets")) > 0
                   || strcmp (replicas, wanted) != 0;
        }
    json_decref (root);
    return pending;
}

static int
s_topics_reassign (int argc, char *argv [])
{
    static const struct option table [] = {
        { "partition", required_argument, NULL, S_OPT_PARTITION },
        { "replicas", required_argument, NULL, S_OPT_REPLICAS },
        { "wait", no_argument, NULL, S_OPT_WAIT }, ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *verb = "topics reassign", *bad = NULL, *replicas = NULL;
    int64_t partition = -1;
    bool wait = false;
    zper_cli_broker_t broker;
    zper_cli_broker_init (&broker);
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        if (option == 'h')
            rc = s_reassign_usage (stdout, ZPER_CLI_HELP_SHOWN);
        else
        if (option == S_OPT_PARTITION) {
            if (zper_cli_parse_number (optarg, 0, &partition) || partition >= ZPER_CLUSTER_PARTITIONS_MAX)
                rc = zper_cli_usage_error (verb, "--partition needs a partition number, not '%s'", optarg);
        }
        else
        if (option == S_OPT_REPLICAS)
            replicas = optarg;
        else
        if (option == S_OPT_WAIT)
            wait = true;
        else
            rc = zper_cli_broker_option (verb, option, bad? bad: optarg, &broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, &broker);
    if (rc == 0 && argc - optind != 1)
        rc = zper_cli_usage_error (verb, "needs one topic NAME");
    if (rc == 0 && (partition < 0 || !replicas))
        rc = zper_cli_usage_error (verb, "needs --partition I and --replicas IDS");
    if (rc == 0 && !s_base_name_ok (verb, argv [optind]))
        rc = S_EXIT_USAGE;
    zper_consumer_t *consumer = rc? NULL: zper_cli_rear_consumer (verb, &broker);
    if (rc == 0 && !consumer)
        rc = S_EXIT_FAILURE;
    if (consumer && zper_consumer_reassign (consumer, argv [optind], (int) partition, replicas) == -1)
        rc = s_admin_failed (verb, consumer);
    //  Bounded by ZPER_CLI_REASSIGN_WAIT_MS; a METADATA that fails is retried
    int64_t deadline = zclock_mono () + ZPER_CLI_REASSIGN_WAIT_MS;
    bool failed = false;
    while (consumer && rc == 0 && wait && !zsys_interrupted
    &&     (s_reassign_pending (consumer, argv [optind], (int) partition, replicas, &failed) || failed)) {
        if (zclock_mono () > deadline) {
            fprintf (stderr, "zper %s: %s.%d still moving after %d s\n", verb, argv [optind],
                     (int) partition, ZPER_CLI_REASSIGN_WAIT_MS / 1000);
            rc = S_EXIT_FAILURE;
        }
        else
            zclock_sleep (ZPER_CLI_REASSIGN_POLL_MS);
    }
    if (consumer && rc == 0)
        printf ("%s.%d: replicas %s%s\n", argv [optind], (int) partition, replicas,
                wait? "": " (moving in the background)");
    zper_consumer_destroy (&consumer);
    zper_cli_broker_free (&broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

//  cluster status: METADATA, then CLUSTER of every node, as
//  {"metadata":{..},"nodes":{"1":{..CLUSTER..} or {"error":".."}}}.
static json_t *
s_cluster_gather (zper_consumer_t *bootstrap, zper_cli_broker_t *broker)
{
    char *metadata = zper_consumer_metadata (bootstrap, NULL);
    json_t *merged = metadata? json_object (): NULL;
    if (merged) {
        json_object_set_new (merged, "metadata", json_loads (metadata, 0, NULL));
        json_object_set_new (merged, "nodes", json_object ());
    }
    zstr_free (&metadata);
    const char *id;
    json_t *node;
    json_object_foreach (json_object_get (json_object_get (merged, "metadata"), "nodes"), id, node) {
        const char *rear = json_string_value (json_object_get (node, "rear"));
        zper_consumer_t *consumer = rear? zper_consumer_new (rear, NULL): NULL;
        char *status = NULL;
        if (consumer) {
            zper_consumer_set_timeout (consumer, broker->timeout_ms);
            if (broker->cert)
                zper_consumer_set_curve (consumer, broker->server_key, broker->cert);
            status = zper_consumer_cluster (consumer);
        }
        json_t *view = status? json_loads (status, 0, NULL): NULL;
        if (!view)
            view = json_pack ("{s:s}", "error", consumer? zper_consumer_error (consumer): "no rear");
        json_object_set_new (json_object_get (merged, "nodes"), id, view);
        zstr_free (&status);
        zper_consumer_destroy (&consumer);
    }
    return merged;
}

static void
s_cluster_print (json_t *merged)
{
    json_t *metadata = json_object_get (merged, "metadata");
    json_t *views = json_object_get (merged, "nodes");
    const char *id;
    json_t *node;
    printf ("cluster %s, %zu node(s)\n", json_string_value (json_object_get (metadata, "cluster")),
            json_object_size (json_object_get (metadata, "nodes")));
    json_object_foreach (json_object_get (metadata, "nodes"), id, node) {
        const char *error = json_string_value (json_object_get (json_object_get (views, id), "error"));
        printf ("node %-5s front %s rear %s%s%s\n", id,
                json_string_value (json_object_get (node, "front")),
                json_string_value (json_object_get (node, "rear")),
                error? "  UNREACHABLE: ": "", error? error: "");
    }
    printf ("%-24s %9s %6s %6s %-14s %-14s %12s %12s %10s\n", "TOPIC", "PARTITION", "LEADER",
            "EPOCH", "REPLICAS", "ISR", "END", "HW", "MAX_LAG");
    const char *name;
    json_t *topic;
    json_object_foreach (json_object_get (metadata, "topics"), name, topic) {
        size_t index;
        json_t *partition;
        json_array_foreach (json_object_get (topic, "partition"), index, partition) {
            long long number = json_integer_value (json_object_get (partition, "id"));
            char leader [16], key [ZPER_TOPIC_MAX + 16], replicas [128], isr [128];
            snprintf (leader, sizeof leader, "%lld",
                      (long long) json_integer_value (json_object_get (partition, "leader")));
            snprintf (key, sizeof key, "%s.%lld", name, number);
            zper_cli_json_list (json_object_get (partition, "replicas"), replicas, sizeof replicas);
            zper_cli_json_list (json_object_get (partition, "isr"), isr, sizeof isr);
            //  end and HW as the leader sees them; lag: its slowest follower
            json_t *view = json_object_get (json_object_get (json_object_get (views, leader),
                                                             "partitions"), key);
            long long lag = -1;
            const char *follower;
            json_t *progress;
            json_object_foreach (json_object_get (view, "followers"), follower, progress)
                if (json_integer_value (json_object_get (progress, "lag")) > lag)
                    lag = json_integer_value (json_object_get (progress, "lag"));
            printf ("%-24s %9lld %6s %6lld %-14s %-14s %12lld %12lld %10lld\n", name, number, leader,
                    (long long) json_integer_value (json_object_get (partition, "epoch")),
                    replicas, isr,
                    view? (long long) json_integer_value (json_object_get (view, "end")): -1,
                    view? (long long) json_integer_value (json_object_get (view, "high_watermark")): -1,
                    lag);
        }
    }
}

static int
s_cluster_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper cluster status [options]\n"
        "Ask the node at --rear for the cluster's layout (METADATA), then every node for its\n"
        "own view (CLUSTER): prints the nodes, then one line per partition: topic, partition,\n"
        "leader, epoch, replicas, in-sync replicas, the leader's log end and high-watermark,\n"
        "and its slowest follower's lag (-1: none, or the leader did not answer).\n"
        "  --json                print the merged JSON {\"metadata\":..,\"nodes\":{id:CLUSTER}}\n"
        ZPER_CLI_BROKER_HELP);
    return rc;
}

int
zper_cmd_cluster (int argc, char *argv [])
{
    static const struct option table [] = {
        { "json", no_argument, NULL, S_OPT_JSON }, ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *verb = "cluster", *bad = NULL;
    bool as_json = false;
    zper_cli_broker_t broker;
    zper_cli_broker_init (&broker);
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        if (option == 'h')
            rc = s_cluster_usage (stdout, ZPER_CLI_HELP_SHOWN);
        else
        if (option == S_OPT_JSON)
            as_json = true;
        else
            rc = zper_cli_broker_option (verb, option, bad? bad: optarg, &broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, &broker);
    if (rc == 0 && (argc - optind != 1 || !streq (argv [optind], "status")))
        rc = zper_cli_usage_error (verb, "the only sub-verb is 'status'");
    zper_consumer_t *consumer = rc? NULL: zper_cli_rear_consumer ("cluster status", &broker);
    if (rc == 0 && !consumer)
        rc = S_EXIT_FAILURE;
    json_t *merged = consumer? s_cluster_gather (consumer, &broker): NULL;
    if (consumer && !merged)
        rc = s_admin_failed ("cluster status", consumer);
    if (merged && as_json) {
        char *text = json_dumps (merged, JSON_COMPACT);
        printf ("%s\n", text);
        free (text);
    }
    else
    if (merged)
        s_cluster_print (merged);
    json_decref (merged);
    zper_consumer_destroy (&consumer);
    zper_cli_broker_free (&broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

//  ---- keygen ----------------------------------------------------------------------
//  A certificate pair in CZMQ's format (zcert_save): NAME holds the public
//  key and the metadata, NAME_secret both keys. The grants are metadata
//  "write" and "read", which the broker's guard reads (include/zper_guard.h).
//  Both files are created here with O_EXCL, the secret one with mode 0600,
//  before CZMQ writes into them: no existing file is ever overwritten and
//  the secret is never readable by others, not even for a moment.

#define S_SECRET_SUFFIX     "_secret"
#define S_PATTERN_CHARS     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static int
s_keygen_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper keygen NAME [options]\n"
        "Write a CURVE certificate pair: NAME (the public key and the grants: copy it into the\n"
        "broker's security.keys folder) and NAME" S_SECRET_SUFFIX " (both keys, mode 0600: keep it\n"
        "private, give NAME to --cert). Prints the public key. Never overwrites a file.\n"
        "  --write PATTERNS      topics this key may write: comma-separated exact names or\n"
        "                        prefixes ending in * ('orders,logs.*'; '*': every topic)\n"
        "  --read PATTERNS       topics this key may read (same form)\n"
        "  --name TEXT           a name kept in the certificate (default: NAME's file name)\n"
        "  -h, --help            this help\n"
        "Without --write or --read the key is granted nothing for it. A broker's own certificate\n"
        "(security.cert) is made the same way; grants in it are not used.\n"
        "Exit status: 0 written, 1 a file exists or cannot be written, 2 usage.\n");
    return rc;
}

//  Check a comma-separated list of patterns and return it normalized
//  ("a, b*"), or NULL after a usage error line naming the bad one.
static char *
s_patterns (const char *option, const char *text)
{
    char *copy = strdup (text);
    char *normal = (char *) zmalloc (strlen (text) + 1 + strlen (text));
    char *saveptr = NULL;
    bool valid = true;
    size_t count = 0;
    for (char *item = strtok_r (copy, ",", &saveptr); item && valid;
         item = strtok_r (NULL, ",", &saveptr)) {
        while (*item == ' ' || *item == '\t')
            item++;
        size_t size = strlen (item);
        while (size && (item [size - 1] == ' ' || item [size - 1] == '\t'))
            item [--size] = 0;
        size_t name_size = size && item [size - 1] == '*'? size - 1: size;
        valid = size > 0 && strspn (item, S_PATTERN_CHARS) == name_size && name_size <= ZPER_TOPIC_NAME_MAX;
        if (!valid)
            zper_cli_usage_error ("keygen", "bad pattern '%s' in %s: a topic name, or a prefix and one "
                           "final *", item, option);
        else {
            if (count++)
                strcat (normal, ", ");
            strcat (normal, item);
        }
    }
    if (valid && count == 0) {
        zper_cli_usage_error ("keygen", "%s needs at least one pattern", option);
        valid = false;
    }
    free (copy);
    if (!valid)
        zstr_free (&normal);
    return normal;
}

//  Create path (it must not exist) with mode. Returns 0, or -1 after one
//  line on stderr.
static int
s_create_new (const char *path, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd == -1) {
        if (errno == EEXIST)
            fprintf (stderr, "zper keygen: %s exists: not overwritten (remove it or choose "
                     "another NAME)\n", path);
        else
            fprintf (stderr, "zper keygen: cannot create %s: %s\n", path, strerror (errno));
        return -1;
    }
    close (fd);
    return 0;
}

//  What keygen was asked to do
typedef struct {
    char *write;
    char *read;
    const char *name;
} s_keygen_options_t;

static int
s_keygen_parse (int argc, char *argv [], s_keygen_options_t *options)
{
    enum { S_OPT_WRITE = 512, S_OPT_READ, S_OPT_NAME };
    static const struct option table [] = {
        { "write", required_argument, NULL, S_OPT_WRITE }, { "read", required_argument, NULL, S_OPT_READ },
        { "name", required_argument, NULL, S_OPT_NAME }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *bad = NULL;
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        char **grant = option == S_OPT_WRITE? &options->write: &options->read;
        if (option == 'h')
            return s_keygen_usage (stdout, ZPER_CLI_HELP_SHOWN);
        else
        if (option == S_OPT_WRITE || option == S_OPT_READ) {
            zstr_free (grant);
            *grant = s_patterns (option == S_OPT_WRITE? "--write": "--read", optarg);
            rc = *grant? 0: S_EXIT_USAGE;
        }
        else
        if (option == S_OPT_NAME && !*optarg)
            rc = zper_cli_usage_error ("keygen", "--name needs a text");
        else
        if (option == S_OPT_NAME)
            options->name = optarg;
        else
            rc = zper_cli_usage_error ("keygen", "unknown or incomplete option '%s'", bad? bad: optarg);
    }
    if (rc == 0 && argc - optind != 1)
        rc = zper_cli_usage_error ("keygen", optind >= argc? "missing NAME": "one NAME only");
    if (rc == 0 && !*argv [optind])
        rc = zper_cli_usage_error ("keygen", "NAME is empty");
    return rc;
}

//  Write the pair; the files exist (empty) already. Returns 0 or -1.
static int
s_keygen_write (const char *path, const char *secret_path, const s_keygen_options_t *options)
{
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "zper keygen: cannot make a key pair (libzmq without CURVE?)\n");
        return -1;
    }
    char *copy = strdup (path);
    zcert_set_meta (cert, "name", "%s", options->name? options->name: basename (copy));
    free (copy);
    if (options->write)
        zcert_set_meta (cert, "write", "%s", options->write);
    if (options->read)
        zcert_set_meta (cert, "read", "%s", options->read);
    int rc = zcert_save_public (cert, path) == 0 && zcert_save_secret (cert, secret_path) == 0? 0: -1;
    if (rc == 0)
        printf ("%s\n", zcert_public_txt (cert));
    else
        fprintf (stderr, "zper keygen: cannot write %s: %s\n", path, strerror (errno));
    zcert_destroy (&cert);
    return rc;
}

int
zper_cmd_keygen (int argc, char *argv [])
{
    s_keygen_options_t options = { NULL, NULL, NULL };
    int rc = s_keygen_parse (argc, argv, &options);
    if (rc == 0) {
        const char *path = argv [optind];
        char *secret_path = zsys_sprintf ("%s" S_SECRET_SUFFIX, path);
        rc = S_EXIT_FAILURE;
        if (s_create_new (path, 0644) == 0) {
            if (s_create_new (secret_path, 0600) == 0) {
                rc = s_keygen_write (path, secret_path, &options) == 0? S_EXIT_OK: S_EXIT_FAILURE;
                if (rc != S_EXIT_OK)
                    unlink (secret_path);
            }
            if (rc != S_EXIT_OK)
                unlink (path);
        }
        zstr_free (&secret_path);
    }
    zstr_free (&options.write);
    zstr_free (&options.read);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}
