/*  =========================================================================
    zper_cmd_client_groups - the operator's views of a broker

        zper groups [--json]                 one line per consumer group
        zper groups describe G [--json]      a group's members and partitions
        zper top [--once] [--interval MS]    a live view of the broker's STATS

    Both only lay out what the broker computes already (GROUPS and STATS,
    docs/protocol.md 3.1 and 3.3): every number on screen is one a script
    can read from --json or zper stats. The one thing to know: zper top puts
    the terminal in a raw-ish mode (no echo, non-canonical) and every way out
    of its loop (q, a signal, the end of input, an error) passes through the
    one exit of s_top_live, which restores it; the signal handler only sets
    a flag, so nothing is done from inside the handler.
    ========================================================================= */

#include "zper_cli.h"
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define S_EXIT_OK           0
#define S_EXIT_FAILURE      1
#define S_SCREEN_WIDTH      80          //  when stdout is not a terminal
#define S_SCREEN_HEIGHT     24
#define S_NAME_WIDTH        24          //  columns of a name in zper groups
#define S_TOP_NAME_WIDTH    20          //  ... and in zper top, whose rows fit 80 columns
#define S_ANSI_CLEAR_HOME   "\033[H\033[2J"
#define S_ANSI_HIDE_CURSOR  "\033[?25l"
#define S_ANSI_SHOW_CURSOR  "\033[?25h"
#define S_DROPPED_SUFFIX    "_dropped"  //  the STATS counters that count lost messages

//  ---- reading the broker's JSON ------------------------------------------------
//  Missing fields read as 0 (or the fallback text): a broker older than this
//  tool leaves columns empty rather than breaking the view.

static int64_t
s_int (json_t *object, const char *key)
{
    return (int64_t) json_integer_value (json_object_get (object, key));
}

static double
s_number (json_t *object, const char *key)
{
    return json_number_value (json_object_get (object, key));
}

static const char *
s_text (json_t *object, const char *key, const char *fallback)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text? text: fallback;
}

//  A count, a rate or a size in at most 6 characters: 0.5, 999, 1.2K, 34.5M.
static const char *
s_scaled (double value, char *text, size_t size)
{
    static const char *units [] = { "", "K", "M", "G", "T", "P" };
    int unit = 0;
    while (value >= 1000 && unit < 5) {
        value /= 1000;
        unit++;
    }
    bool whole = unit == 0 && value == (double) (long long) value;
    snprintf (text, size, whole? "%.0f%s": "%.1f%s", value, units [unit]);
    return text;
}

//  An uptime as "2d 03:04:05" (no days part under a day).
static const char *
s_duration (int64_t milliseconds, char *text, size_t size)
{
    int64_t seconds = milliseconds / 1000;
    int64_t days = seconds / 86400;
    if (days)
        snprintf (text, size, "%lldd %02d:%02d:%02d", (long long) days, (int) (seconds % 86400 / 3600),
                  (int) (seconds % 3600 / 60), (int) (seconds % 60));
    else
        snprintf (text, size, "%02d:%02d:%02d", (int) (seconds / 3600), (int) (seconds % 3600 / 60),
                  (int) (seconds % 60));
    return text;
}

//  One entry of a ranked view: a member of a JSON object (name = its key)
//  or of a JSON array (name NULL), and what it is ranked by.
typedef struct {
    const char *name;
    json_t *value;
    double rank;
    size_t order;                   //  its place in the container: the last tie-break
} s_ranked_t;

//  Highest rank first; equal ranks by name, so the order is stable between refreshes.
static int
s_ranked_compare (const void *left, const void *right)
{
    const s_ranked_t *a = (const s_ranked_t *) left, *b = (const s_ranked_t *) right;
    if (a->rank != b->rank)
        return a->rank < b->rank? 1: -1;
    int names = a->name && b->name? strverscmp (a->name, b->name): 0;
    return names? names: a->order < b->order? -1: a->order > b->order;
}

//  The members of container (object or array) ranked by the sum of their
//  fields first and second (second may be NULL; no fields: by name alone).
//  Returns a fresh array (free it) of *count entries that borrow container.
static s_ranked_t *
s_rank (json_t *container, const char *first, const char *second, size_t *count)
{
    *count = json_is_object (container)? json_object_size (container): json_array_size (container);
    s_ranked_t *ranked = (s_ranked_t *) zmalloc ((*count + 1) * sizeof (s_ranked_t));
    size_t used = 0;
    if (json_is_object (container)) {
        const char *name;
        json_t *value;
        json_object_foreach (container, name, value)
            ranked [used] = (s_ranked_t) { name, value, 0, used }, used++;
    }
    else {
        size_t index;
        json_t *value;
        json_array_foreach (container, index, value)
            ranked [used] = (s_ranked_t) { NULL, value, 0, used }, used++;
    }
    for (size_t index = 0; index < used; index++)
        ranked [index].rank = (first? s_number (ranked [index].value, first): 0)
                            + (second? s_number (ranked [index].value, second): 0);
    qsort (ranked, used, sizeof (s_ranked_t), s_ranked_compare);
    return ranked;
}

//  ---- groups --------------------------------------------------------------------

#define S_GROUPS_HELP \
    "The consumer groups of the broker at --rear (docs/client.md, Groups).\n" \
    "  zper groups             one line per group: name, state, live members, partitions,\n" \
    "                          lag (messages not committed yet) and lag in seconds\n" \
    "  zper groups describe G  group G: its members (id, assigned partitions, seconds since\n" \
    "                          their last heartbeat), then one row per partition: owner,\n" \
    "                          committed offset, end, lag, lag in seconds\n" \
    "  --json                print the broker's GROUPS JSON instead (docs/protocol.md 3.3)\n"

//  What groups was asked to do
typedef struct {
    zper_cli_broker_t broker;
    bool as_json;
    const char *group;              //  describe's G; NULL lists them all
} s_groups_options_t;

//  Parse groups' or groups describe's options (verb says which). Returns 0,
//  ZPER_CLI_HELP_SHOWN, or the usage exit code.
static int
s_groups_parse (const char *verb, int argc, char *argv [], s_groups_options_t *options)
{
    enum { S_OPT_JSON = ZPER_CLI_OPT_END };
    static const struct option table [] = {
        { "json", no_argument, NULL, S_OPT_JSON }, ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    bool describe = streq (verb, "groups describe");
    const char *bad = NULL;
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        if (option == 'h') {
            printf ("usage: zper %s%s [--json] [options]\n" S_GROUPS_HELP ZPER_CLI_BROKER_HELP, verb,
                    describe? " G": "");
            return ZPER_CLI_HELP_SHOWN;
        }
        if (option == S_OPT_JSON)
            options->as_json = true;
        else
            rc = zper_cli_broker_option (verb, option, bad? bad: optarg, &options->broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, &options->broker);
    if (rc == 0 && describe && argc - optind != 1)
        rc = zper_cli_usage_error (verb, "needs one group name G");
    else
    if (rc == 0 && !describe && argc - optind != 0)
        rc = zper_cli_usage_error (verb, "unknown sub-verb '%s' (the only one is 'describe')",
                                   argv [optind]);
    if (rc == 0 && describe)
        options->group = argv [optind];
    return rc;
}

//  One line per group, by name.
static void
s_groups_print (json_t *groups)
{
    printf ("%-*s %-12s %7s %10s %12s %9s\n", S_NAME_WIDTH, "GROUP", "STATE", "MEMBERS",
            "PARTITIONS", "LAG", "LAG_S");
    size_t count;
    s_ranked_t *ranked = s_rank (groups, NULL, NULL, &count);
    for (size_t index = 0; index < count; index++) {
        json_t *group = ranked [index].value;
        printf ("%-*s %-12s %7zu %10zu %12lld %9.1f\n", S_NAME_WIDTH, ranked [index].name,
                s_text (group, "state", "-"), json_array_size (json_object_get (group, "members")),
                json_object_size (json_object_get (group, "partitions")),
                (long long) s_int (group, "lag"), s_int (group, "lag_ms") / 1000.0);
    }
    free (ranked);
}

//  Columns a member id takes in group's tables: the longest id there (ids
//  are up to ZPER_GROUP_MEMBER_ID_MAX bytes, mostly far shorter).
static int
s_id_width (json_t *group)
{
    size_t width = strlen ("MEMBER"), index;
    json_t *member;
    json_array_foreach (json_object_get (group, "members"), index, member)
        if (strlen (s_text (member, "id", "")) > width)
            width = strlen (s_text (member, "id", ""));
    return (int) width;
}

//  Group name's members, then its partitions in numeric order.
static void
s_describe_print (const char *name, json_t *group)
{
    printf ("group %s  topic %s  state %s  generation %lld  lag %lld  lag_s %.1f\n", name,
            s_text (group, "topic", "-"), s_text (group, "state", "-"),
            (long long) s_int (group, "generation"), (long long) s_int (group, "lag"),
            s_int (group, "lag_ms") / 1000.0);
    int id_width = s_id_width (group);
    printf ("\n%-*s %15s  %s\n", id_width, "MEMBER", "HEARTBEAT_AGO_S", "ASSIGNED");
    size_t index;
    json_t *member;
    json_array_foreach (json_object_get (group, "members"), index, member) {
        char assigned [1024];
        printf ("%-*s %15.1f  %s\n", id_width, s_text (member, "id", "?"),
                s_int (member, "last_heartbeat_ms_ago") / 1000.0,
                zper_cli_json_list (json_object_get (member, "assigned"), assigned, sizeof assigned));
    }
    printf ("\n%-*s %-*s %12s %12s %12s %9s\n", S_NAME_WIDTH, "PARTITION", id_width, "OWNER",
            "COMMITTED", "END", "LAG", "LAG_S");
    size_t count;
    s_ranked_t *partitions = s_rank (json_object_get (group, "partitions"), NULL, NULL, &count);
    for (index = 0; index < count; index++) {
        json_t *partition = partitions [index].value;
        printf ("%-*s %-*s %12lld %12lld %12lld %9.1f\n", S_NAME_WIDTH, partitions [index].name,
                id_width, s_text (partition, "owner", "-"),
                (long long) s_int (partition, "committed"), (long long) s_int (partition, "end"),
                (long long) s_int (partition, "lag"), s_int (partition, "lag_ms") / 1000.0);
    }
    free (partitions);
}

//  Ask GROUPS and print it. Returns an exit code.
static int
s_groups_show (const char *verb, s_groups_options_t *options)
{
    zper_consumer_t *consumer = zper_cli_rear_consumer (verb, &options->broker);
    if (!consumer)
        return S_EXIT_FAILURE;
    int rc = S_EXIT_FAILURE;
    char *text = zper_consumer_groups (consumer, options->group);
    json_t *groups = text? json_loads (text, 0, NULL): NULL;
    json_t *group = options->group? json_object_get (groups, options->group): NULL;
    if (!text)
        fprintf (stderr, "zper %s%s%s: %s\n", verb, options->group? " ": "",
                 options->group? options->group: "", zper_consumer_error (consumer));
    else
    if (!json_is_object (groups))
        fprintf (stderr, "zper %s: %s sent a malformed GROUPS reply\n", verb, options->broker.rear);
    else
    if (options->group && !json_is_object (group))
        fprintf (stderr, "zper %s: no group '%s' at %s (zper groups lists them)\n", verb,
                 options->group, options->broker.rear);
    else {
        if (options->as_json)
            printf ("%s\n", text);
        else
        if (options->group)
            s_describe_print (options->group, group);
        else
            s_groups_print (groups);
        rc = S_EXIT_OK;
    }
    json_decref (groups);
    zstr_free (&text);
    zper_consumer_destroy (&consumer);
    return rc;
}

int
zper_cmd_groups (int argc, char *argv [])
{
    const char *verb = "groups";
    if (argc > 1 && streq (argv [1], "describe")) {
        verb = "groups describe";
        argc--;
        argv++;
    }
    s_groups_options_t options = { .as_json = false, .group = NULL };
    zper_cli_broker_init (&options.broker);
    int rc = s_groups_parse (verb, argc, argv, &options);
    if (rc == 0)
        rc = s_groups_show (verb, &options);
    zper_cli_broker_free (&options.broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}

//  ---- top: one screen ------------------------------------------------------------
//  A screen is built as text first and written at once (no flicker); each
//  line is cut to the terminal's width so that none wraps and pushes the
//  view off the top, and lines past its height are not written.

typedef struct {
    zchunk_t *text;
    int width;
    int rows_left;
} s_screen_t;

static void
s_line (s_screen_t *screen, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_line (s_screen_t *screen, const char *format, ...)
{
    if (screen->rows_left <= 0)
        return;
    char line [1024];
    va_list arguments;
    va_start (arguments, format);
    vsnprintf (line, sizeof line, format, arguments);
    va_end (arguments);
    size_t size = strlen (line);
    if (size > (size_t) screen->width)
        size = (size_t) screen->width;
    zchunk_extend (screen->text, line, size);
    zchunk_extend (screen->text, "\n", 1);
    screen->rows_left--;
}

//  The header: where, since when, how much; then every drop counter.
static void
s_top_header (s_screen_t *screen, json_t *stats, const char *rear, bool live)
{
    json_t *topics = json_object_get (stats, "topics");
    json_t *connections = json_object_get (stats, "connections");
    double rates [4] = { 0 };           //  in msg/s, in B/s, out msg/s, out B/s
    const char *name;
    json_t *topic;
    json_object_foreach (topics, name, topic) {
        rates [0] += s_number (topic, "messages_per_second");
        rates [1] += s_number (topic, "bytes_per_second");
        rates [2] += s_number (topic, "messages_read_per_second");
        rates [3] += s_number (topic, "bytes_read_per_second");
    }
    char uptime [32], text [4][16];
    s_line (screen, "zper top  %s  up %s  topics %zu  connections %lld%s", rear,
            s_duration (s_int (stats, "uptime_ms"), uptime, sizeof uptime),
            json_object_size (topics), (long long) s_int (connections, "count"),
            live? "  q quits": "");
    s_line (screen, "in  %s msg/s  %s B/s    out %s msg/s  %s B/s",
            s_scaled (rates [0], text [0], sizeof text [0]), s_scaled (rates [1], text [1], sizeof text [1]),
            s_scaled (rates [2], text [2], sizeof text [2]), s_scaled (rates [3], text [3], sizeof text [3]));
    char drops [512] = "drops";
    size_t used = strlen (drops);
    json_t *value;
    json_object_foreach (json_object_get (stats, "counters"), name, value) {
        size_t size = strlen (name), suffix = strlen (S_DROPPED_SUFFIX);
        if (size > suffix && streq (name + size - suffix, S_DROPPED_SUFFIX) && used < sizeof drops)
            used += snprintf (drops + used, sizeof drops - used, "  %.*s %lld", (int) (size - suffix),
                              name, (long long) json_integer_value (value));
    }
    if (used < sizeof drops)
        snprintf (drops + used, sizeof drops - used, "  connections %lld",
                  (long long) s_int (connections, "dropped"));
    s_line (screen, "%s", drops);
}

//  How many rows each of the sections gets when they do not all fit:
//  one at a time to each in turn, so a long list cannot hide the others.
static void
s_share_rows (int rows, const size_t wanted [3], size_t given [3])
{
    for (int section = 0; section < 3; section++)
        given [section] = 0;
    bool more = true;
    while (rows > 0 && more) {
        more = false;
        for (int section = 0; section < 3 && rows > 0; section++)
            if (given [section] < wanted [section]) {
                given [section]++;
                rows--;
                more = true;
            }
    }
}

//  A section's title after a blank line.
static void
s_section_title (s_screen_t *screen, const char *title)
{
    s_line (screen, "%s", "");
    s_line (screen, "%s", title);
}

//  The last row of a section that did not fit: how many rows are not shown.
static void
s_section_more (s_screen_t *screen, size_t shown, size_t count)
{
    if (shown < count)
        s_line (screen, "  ... %zu more", count - shown);
}

//  The whole view of one STATS object; error (if any) is the last refresh's failure.
static void
s_top_render (s_screen_t *screen, json_t *stats, const char *rear, const char *error, bool live)
{
    s_top_header (screen, stats, rear, live);
    if (error)
        s_line (screen, "! %s", error);
    size_t count [3], shown [3];
    s_ranked_t *topics = s_rank (json_object_get (stats, "topics"), "messages_per_second",
                                 "messages_read_per_second", &count [0]);
    s_ranked_t *groups = s_rank (json_object_get (stats, "groups"), "lag", NULL, &count [1]);
    s_ranked_t *peers = s_rank (json_object_get (json_object_get (stats, "connections"), "peers"),
                                "queued_bytes", NULL, &count [2]);
    //  Each section has a blank line and a title: six rows
    s_share_rows (screen->rows_left - 6, count, shown);
    for (int section = 0; section < 3; section++)
        if (shown [section] && shown [section] < count [section])
            shown [section]--;          //  its last row says how many more there are
    char text [5][16];
    const int name = S_TOP_NAME_WIDTH;

    s_section_title (screen, "TOPIC                 IN_MSG/S OUT_MSG/S  IN_B/S OUT_B/S         END"
                     "    SIZE");
    for (size_t index = 0; index < shown [0]; index++) {
        json_t *topic = topics [index].value;
        s_line (screen, "%-*.*s %9s %9s %7s %7s %11lld %7s", name, name, topics [index].name,
                s_scaled (s_number (topic, "messages_per_second"), text [0], sizeof text [0]),
                s_scaled (s_number (topic, "messages_read_per_second"), text [1], sizeof text [1]),
                s_scaled (s_number (topic, "bytes_per_second"), text [2], sizeof text [2]),
                s_scaled (s_number (topic, "bytes_read_per_second"), text [3], sizeof text [3]),
                (long long) s_int (topic, "durable_offset"),
                s_scaled (s_number (topic, "size_bytes"), text [4], sizeof text [4]));
    }
    s_section_more (screen, shown [0], count [0]);
    s_section_title (screen, "GROUP                TOPIC            STATE       MEMBERS        LAG"
                     "    LAG_S");
    for (size_t index = 0; index < shown [1]; index++) {
        json_t *group = groups [index].value;
        s_line (screen, "%-*.*s %-16.16s %-11s %7zu %10lld %8.1f", name, name, groups [index].name,
                s_text (group, "topic", "-"), s_text (group, "state", "-"),
                json_array_size (json_object_get (group, "members")),
                (long long) s_int (group, "lag"), s_int (group, "lag_ms") / 1000.0);
    }
    s_section_more (screen, shown [1], count [1]);
    s_section_title (screen, "SOCKET     PEER                                   QUEUED  DROPPED");
    for (size_t index = 0; index < shown [2]; index++) {
        json_t *peer = peers [index].value;
        s_line (screen, "%-10s %-34.34s %10s %8lld", s_text (peer, "socket", "-"),
                s_text (peer, "peer", "-"),
                s_scaled (s_number (peer, "queued_bytes"), text [0], sizeof text [0]),
                (long long) s_int (peer, "dropped"));
    }
    s_section_more (screen, shown [2], count [2]);
    free (topics);
    free (groups);
    free (peers);
}

//  ---- top: the terminal ------------------------------------------------------------

//  Set by the signal handler only; the loop reads them.
static volatile sig_atomic_t s_top_stop = 0;
static volatile sig_atomic_t s_top_resized = 0;

static void
s_top_signal (int signal_number)
{
    if (signal_number == SIGWINCH)
        s_top_resized = 1;
    else
        s_top_stop = 1;
}

//  The terminal's size, or 80x24 when stdout is not one.
static void
s_screen_size (int *width, int *height)
{
    struct winsize size;
    bool known = ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col && size.ws_row;
    *width = known? size.ws_col: S_SCREEN_WIDTH;
    *height = known? size.ws_row: S_SCREEN_HEIGHT;
}

//  Ask STATS and parse it: a JSON object, or NULL with *error set (the
//  caller frees it).
static json_t *
s_top_stats (zper_consumer_t *consumer, char **error)
{
    char *text = zper_consumer_stats (consumer);
    json_t *stats = text? json_loads (text, 0, NULL): NULL;
    zstr_free (error);
    if (!text)
        *error = strdup (zper_consumer_error (consumer));
    else
    if (!json_is_object (stats)) {
        *error = strdup ("a malformed STATS reply");
        json_decref (stats);
        stats = NULL;
    }
    zstr_free (&text);
    return stats;
}

//  Draw one frame; live frames leave the last row free so nothing scrolls.
static void
s_top_draw (json_t *stats, const char *rear, const char *error, bool live)
{
    s_screen_t screen = { zchunk_new (NULL, 0), 0, 0 };
    s_screen_size (&screen.width, &screen.rows_left);
    if (live) {
        zchunk_extend (screen.text, S_ANSI_CLEAR_HOME, strlen (S_ANSI_CLEAR_HOME));
        screen.rows_left--;
    }
    s_top_render (&screen, stats, rear, error, live);
    fwrite (zchunk_data (screen.text), 1, zchunk_size (screen.text), stdout);
    fflush (stdout);
    zchunk_destroy (&screen.text);
}

//  Wait up to wait_ms for a key. Returns the key, 0 when none came (or a
//  signal came), -1 when the input ended or failed.
static int
s_top_key (int wait_ms)
{
    struct pollfd item = { STDIN_FILENO, POLLIN, 0 };
    int ready = poll (&item, 1, wait_ms > 0? wait_ms: 0);
    if (ready == -1)
        return errno == EINTR? 0: -1;
    if (ready == 0)
        return 0;
    unsigned char key;
    ssize_t size = read (STDIN_FILENO, &key, 1);
    if (size == 1)
        return key? key: ' ';
    return size == -1 && (errno == EINTR || errno == EAGAIN)? 0: -1;
}

//  The loop of the live view, in the terminal mode and signal handlers
//  s_top_live set up. Returns an exit code; a failure is explained in *error.
static int
s_top_loop (zper_consumer_t *consumer, const char *rear, int interval_ms, char **error)
{
    json_t *stats = NULL;
    int64_t next_refresh = 0;
    int rc = S_EXIT_OK;
    while (!s_top_stop) {
        if (zclock_mono () >= next_refresh || s_top_resized) {
            if (zclock_mono () >= next_refresh) {
                json_t *fresh = s_top_stats (consumer, error);
                if (fresh) {
                    json_decref (stats);
                    stats = fresh;
                }
                next_refresh = zclock_mono () + interval_ms;
            }
            s_top_resized = 0;
            if (!stats && !s_top_stop) {
                rc = S_EXIT_FAILURE;            //  never had a view: say why, not an empty screen
                break;
            }
            if (stats)
                s_top_draw (stats, rear, *error, true);
        }
        int key = s_top_key ((int) (next_refresh - zclock_mono ()));
        if (key == 'q' || key == 'Q')
            break;
        if (key == -1) {
            zstr_free (error);
            *error = strdup ("the terminal's input ended");
            rc = S_EXIT_FAILURE;
            break;
        }
    }
    json_decref (stats);
    if (rc == S_EXIT_OK)
        zstr_free (error);
    return rc;
}

//  The live view: terminal in no-echo, non-canonical mode, our signal
//  handlers in place; both are put back before returning, on every path.
static int
s_top_live (zper_consumer_t *consumer, const char *rear, int interval_ms)
{
    struct termios saved, raw;
    if (tcgetattr (STDIN_FILENO, &saved) == -1) {
        fprintf (stderr, "zper top: cannot read the terminal's mode: %s\n", strerror (errno));
        return S_EXIT_FAILURE;
    }
    raw = saved;
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
    raw.c_cc [VMIN] = 0;
    raw.c_cc [VTIME] = 0;
    //  CZMQ installs its own SIGINT handler when it starts; start it first so ours wins
    zsys_init ();
    struct sigaction action, previous [4];
    const int signals [4] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
    memset (&action, 0, sizeof action);
    action.sa_handler = s_top_signal;     //  no SA_RESTART: a signal wakes poll(2) at once
    sigemptyset (&action.sa_mask);
    for (int index = 0; index < 4; index++)
        sigaction (signals [index], &action, &previous [index]);
    s_top_stop = 0;
    char *error = NULL;
    int rc = S_EXIT_FAILURE;
    if (tcsetattr (STDIN_FILENO, TCSAFLUSH, &raw) == -1)
        error = zsys_sprintf ("cannot set the terminal's mode: %s", strerror (errno));
    else {
        fputs (S_ANSI_HIDE_CURSOR, stdout);
        rc = s_top_loop (consumer, rear, interval_ms, &error);
        fputs (S_ANSI_SHOW_CURSOR "\n", stdout);
        fflush (stdout);
        tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
    }
    for (int index = 0; index < 4; index++)
        sigaction (signals [index], &previous [index], NULL);
    if (error)
        fprintf (stderr, "zper top: %s\n", error);
    zstr_free (&error);
    return rc;
}

//  --once: one frame as plain text.
static int
s_top_once (zper_consumer_t *consumer, const char *rear)
{
    char *error = NULL;
    json_t *stats = s_top_stats (consumer, &error);
    if (stats)
        s_top_draw (stats, rear, NULL, false);
    else
        fprintf (stderr, "zper top: %s\n", error);
    json_decref (stats);
    zstr_free (&error);
    return stats? S_EXIT_OK: S_EXIT_FAILURE;
}

static int
s_top_usage (FILE *stream, int rc)
{
    fprintf (stream,
        "usage: zper top [--once] [--interval MS] [options]\n"
        "A live view of the broker at --rear, from its STATS, refreshed every interval: uptime,\n"
        "topics, connections, total rates in and out, the drop counters; then the topics by\n"
        "rate, the consumer groups by lag and the connections by queued bytes, as many rows of\n"
        "each as the terminal has room for. Press q (or Ctrl-C) to leave; the terminal is put\n"
        "back as it was.\n"
        "  --once                print one view as plain text and exit (for scripts; needs no\n"
        "                        terminal; 80x24 when stdout is not one)\n"
        "  --interval MS         refresh period (default " ZPER_CLI_STRING (ZPER_TOP_INTERVAL_MS) " ms)\n"
        ZPER_CLI_BROKER_HELP
        "Exit status: 0 left with q or a signal (or --once shown), 1 the broker did not answer,\n"
        "2 usage (a live view on something that is not a terminal is one).\n");
    return rc;
}

int
zper_cmd_top (int argc, char *argv [])
{
    enum { S_OPT_ONCE = ZPER_CLI_OPT_END, S_OPT_INTERVAL };
    static const struct option table [] = {
        { "once", no_argument, NULL, S_OPT_ONCE }, { "interval", required_argument, NULL, S_OPT_INTERVAL },
        ZPER_CLI_BROKER_OPTIONS, { NULL, 0, NULL, 0 }
    };
    const char *verb = "top", *bad = NULL;
    bool once = false;
    int64_t interval_ms = ZPER_TOP_INTERVAL_MS;
    zper_cli_broker_t broker;
    zper_cli_broker_init (&broker);
    int option, rc = 0;
    optind = 1;
    while (rc == 0 && (option = zper_cli_next_option (argc, argv, "h", table, &bad)) != -1) {
        if (option == 'h')
            rc = s_top_usage (stdout, ZPER_CLI_HELP_SHOWN);
        else
        if (option == S_OPT_ONCE)
            once = true;
        else
        if (option == S_OPT_INTERVAL) {
            if (zper_cli_parse_number (optarg, 1, &interval_ms) || interval_ms > INT32_MAX)
                rc = zper_cli_usage_error (verb, "--interval needs a positive number of ms, not '%s'",
                                           optarg);
        }
        else
            rc = zper_cli_broker_option (verb, option, bad? bad: optarg, &broker);
    }
    if (rc == 0)
        rc = zper_cli_broker_check (verb, &broker);
    if (rc == 0 && argc - optind != 0)
        rc = zper_cli_usage_error (verb, "takes no argument");
    if (rc == 0 && !once && !(isatty (STDIN_FILENO) && isatty (STDOUT_FILENO))) {
        fprintf (stderr, "zper top: not a terminal: use 'zper top --once' for one plain view\n");
        rc = ZPER_EXIT_USAGE;
    }
    zper_consumer_t *consumer = rc? NULL: zper_cli_rear_consumer (verb, &broker);
    if (rc == 0 && !consumer)
        rc = S_EXIT_FAILURE;
    if (consumer)
        rc = once? s_top_once (consumer, broker.rear): s_top_live (consumer, broker.rear, (int) interval_ms);
    zper_consumer_destroy (&consumer);
    zper_cli_broker_free (&broker);
    return rc == ZPER_CLI_HELP_SHOWN? S_EXIT_OK: rc;
}
