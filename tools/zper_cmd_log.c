/*  =========================================================================
    zper log - dump or verify the records of a log, read-only

    zper log verify PATH    check every record (magic, lengths, CRC-32C,
                            framing, offset/position/timestamp continuity),
                            every index and time entry, and the sequence of
                            segments; exit 0 if intact, 1 if not
    zper log dump [-m] PATH print one line per record (-m: and its messages)

    PATH is a segment file (.log), a partition folder, or any folder above
    partitions (a topic, a base_dir): every partition below it is checked.
    Nothing is written: run it after a crash, before restarting, to see
    what recovery will cut (docs/storage.md). No lock is taken either
    (zper_dir_lock.h): it reads beside a live broker or Dafka store.
    ========================================================================= */

#include "zper_cli.h"
#include "zper_log.h"
#include "zper_segment.h"
#include "zper_le.h"
#include "zper_zmtp.h"
#include <dirent.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#define DUMP_BODY_MAX   48              //  bytes of a frame shown by dump -m

typedef struct {
    bool dump;
    bool messages;
    const char *segment_path;
    FILE *index;                        //  entries checked in step with the records
    zper_index_entry_t entry;
    bool entry_loaded;
    uint64_t problems;
} walk_t;

static void
s_problem (walk_t *walk, const char *path, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    fprintf (stdout, "%s: ", path);
    vfprintf (stdout, format, arguments);
    fprintf (stdout, "\n");
    va_end (arguments);
    walk->problems++;
}

static bool
s_next_entry (walk_t *walk)
{
    uint8_t bytes [ZPER_INDEX_ENTRY_SIZE];
    walk->entry_loaded = walk->index && fread (bytes, 1, sizeof bytes, walk->index) == sizeof bytes;
    if (walk->entry_loaded) {
        walk->entry.offset = (int64_t) zper_le_get64 (bytes);
        walk->entry.position = (int64_t) zper_le_get64 (bytes + 8);
        walk->entry.file_position = zper_le_get64 (bytes + 16);
    }
    return walk->entry_loaded;
}

static void
s_print_frame (const zper_frame_t *frame)
{
    const uint8_t *bytes = (const uint8_t *) frame->data;
    size_t shown = frame->size < DUMP_BODY_MAX? frame->size: DUMP_BODY_MAX;
    bool printable = true;
    for (size_t index = 0; index < shown; index++)
        if (bytes [index] < 0x20 || bytes [index] > 0x7E)
            printable = false;
    printf (" [%zu]", frame->size);
    for (size_t index = 0; index < shown; index++)
        printable? printf ("%c", bytes [index]): printf ("%02x", bytes [index]);
    if (shown < frame->size)
        printf ("...");
}

static void
s_on_record (const zper_record_t *record, void *argument)
{
    walk_t *walk = (walk_t *) argument;
    if (walk->dump)
        printf ("byte %" PRIu64 ": offset %" PRId64 " +%" PRIu32 " position %" PRId64
                " bytes %" PRIu32 " timestamp %" PRId64 "\n", record->file_position,
                record->base_offset, record->message_count, record->base_position,
                record->payload_size, record->timestamp);
    if (walk->messages) {
        const uint8_t *cursor = record->payload;
        const uint8_t *end = cursor + record->payload_size;
        for (int64_t offset = record->base_offset; cursor < end; offset++) {
            printf ("  %" PRId64 ":", offset);
            bool more = true;
            zper_frame_t frame;
            while (more && zper_zmtp_decode (&cursor, end, &frame, &more) == 0)
                s_print_frame (&frame);
            printf ("\n");
        }
    }
    //  Index entries must name record starts, in order
    while (walk->entry_loaded && walk->entry.file_position < record->file_position) {
        s_problem (walk, walk->segment_path, "index entry for byte %" PRIu64
                   " is not a record start", walk->entry.file_position);
        s_next_entry (walk);
    }
    if (walk->entry_loaded && walk->entry.file_position == record->file_position) {
        if (walk->entry.offset != record->base_offset || walk->entry.position != record->base_position)
            s_problem (walk, walk->segment_path, "index entry for byte %" PRIu64
                       " names offset %" PRId64 ", the record holds %" PRId64,
                       record->file_position, walk->entry.offset, record->base_offset);
        s_next_entry (walk);
    }
}

//  The segment's file with another extension ("index", "timeindex")
static char *
s_sibling_path (walk_t *walk, const char *extension)
{
    int stem = (int) (strlen (walk->segment_path) - strlen ("log"));
    return zsys_sprintf ("%.*s%s", stem, walk->segment_path, extension);
}

//  Time entries: ordered, and naming offsets of this segment's valid records
static void
s_check_time_index (walk_t *walk, int64_t base_offset, const zper_scan_t *scan)
{
    char *path = s_sibling_path (walk, "timeindex");
    FILE *file = fopen (path, "rb");
    if (!file && scan->records > 0)
        s_problem (walk, path, "missing (recovery rebuilds it)");
    uint8_t bytes [ZPER_TIME_ENTRY_SIZE];
    int64_t previous_timestamp = INT64_MIN, previous_offset = INT64_MIN;
    for (uint64_t number = 0; file && fread (bytes, 1, sizeof bytes, file) == sizeof bytes; number++) {
        int64_t timestamp = (int64_t) zper_le_get64 (bytes);
        int64_t offset = (int64_t) zper_le_get64 (bytes + 8);
        if (timestamp < previous_timestamp || offset < previous_offset
        ||  offset < base_offset || offset >= scan->next_offset) {
            s_problem (walk, path, "time entry %" PRIu64 " (timestamp %" PRId64 ", offset %" PRId64
                       ") is out of order or outside the segment's records", number, timestamp, offset);
            break;
        }
        previous_timestamp = timestamp;
        previous_offset = offset;
    }
    if (file)
        fclose (file);
    free (path);
}

//  Check one segment; expectations carried from the previous one
static void
s_walk_segment (walk_t *walk, const char *dir, int64_t base_offset, zper_scan_t *carried)
{
    zper_segment_t *segment = zper_segment_load (dir, base_offset, -1, ZPER_LOG_INDEX_INTERVAL_BYTES);
    if (!segment) {
        s_problem (walk, dir, "cannot open segment %020" PRId64 ": %s", base_offset, strerror (errno));
        return;
    }
    walk->segment_path = zper_segment_path (segment);
    if (carried->next_offset >= 0 && base_offset != carried->next_offset)
        s_problem (walk, walk->segment_path, "starts at offset %" PRId64 ", the previous segment "
                   "ends at %" PRId64, base_offset, carried->next_offset);
    char *index_path = s_sibling_path (walk, "index");
    walk->index = fopen (index_path, "rb");
    if (!walk->index && zper_segment_file_size (segment) > 0)
        s_problem (walk, index_path, "missing (recovery rebuilds it)");
    free (index_path);
    s_next_entry (walk);
    if (walk->dump)
        printf ("%s: %" PRIu64 " bytes\n", walk->segment_path, zper_segment_file_size (segment));
    zper_scan_t scan;
    int64_t position = base_offset == carried->next_offset? carried->next_position: -1;
    if (zper_segment_scan (segment, 0, base_offset, position, carried->last_timestamp,
                           s_on_record, walk, &scan))
        s_problem (walk, walk->segment_path, "cannot read: %s", strerror (errno));
    else
    if (scan.status != ZPER_RECORD_END)
        s_problem (walk, walk->segment_path, "byte %" PRIu64 " (offset %" PRId64 "): %s; %" PRIu64
                   " bytes after it are not valid records", scan.valid_size, scan.next_offset,
                   zper_record_status_text (scan.status),
                   zper_segment_file_size (segment) - scan.valid_size);
    if (walk->entry_loaded)
        s_problem (walk, walk->segment_path, "index entries past the last valid record (from byte %"
                   PRIu64 ")", walk->entry.file_position);
    s_check_time_index (walk, base_offset, &scan);
    if (walk->index)
        fclose (walk->index);
    walk->index = NULL;
    walk->entry_loaded = false;
    *carried = scan;
    zper_segment_destroy (&segment);
}

static void
s_walk (walk_t *walk, const char *path);

//  A folder: a partition if it holds segments, else look below it
static void
s_walk_folder (walk_t *walk, const char *path)
{
    size_t count;
    int64_t *offsets = zper_segment_list (path, &count);
    if (!offsets) {
        s_problem (walk, path, "cannot read folder: %s", strerror (errno));
        return;
    }
    zper_scan_t carried = { .next_offset = -1, .next_position = -1, .last_timestamp = -1 };
    for (size_t index = 0; index < count; index++)
        s_walk_segment (walk, path, offsets [index], &carried);
    free (offsets);
    if (count > 0) {
        printf ("%s: %zu segments, offsets up to %" PRId64 "\n", path, count, carried.next_offset);
        return;
    }
    DIR *directory = opendir (path);
    struct dirent *entry;
    while (directory && (entry = readdir (directory)))
        if (zper_log_name_valid (entry->d_name)) {
            char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
            struct stat status;
            if (stat (child, &status) == 0 && S_ISDIR (status.st_mode))
                s_walk (walk, child);
            free (child);
        }
    if (directory)
        closedir (directory);
}

static void
s_walk (walk_t *walk, const char *path)
{
    struct stat status;
    if (stat (path, &status)) {
        s_problem (walk, path, "%s", strerror (errno));
        return;
    }
    if (S_ISDIR (status.st_mode)) {
        s_walk_folder (walk, path);
        return;
    }
    //  One segment file: its folder and its name
    const char *name = strrchr (path, '/');
    char *dir = name? strndup (path, (size_t) (name - path)): strdup (".");
    name = name? name + 1: path;
    if (strlen (name) != ZPER_SEGMENT_NAME_DIGITS + 4 || !streq (name + ZPER_SEGMENT_NAME_DIGITS, ".log"))
        s_problem (walk, path, "not a segment file (expected <20 digits>.log)");
    else {
        zper_scan_t carried = { .next_offset = -1, .next_position = -1, .last_timestamp = -1 };
        s_walk_segment (walk, dir, strtoll (name, NULL, 10), &carried);
    }
    free (dir);
}

static const char *s_usage =
    "usage: zper log verify PATH\n"
    "       zper log dump [-m] PATH\n";

static void
s_help (void)
{
    printf ("%s"
        "Check or print the records of a log, read-only. PATH is a segment file (.log), a\n"
        "partition folder, or any folder above partitions (a topic, a base_dir, a Dafka store's db).\n"
        "  verify    check every record (checksum, framing, offset/position/time continuity), the\n"
        "            indexes and the sequence of segments; exit 0 if intact, 1 if not\n"
        "  dump      print one line per record; -m: and its messages\n"
        "Nothing is written and the folder's lock is not taken, so it runs beside a live zperd\n"
        "(a record being written at that moment can show as an incomplete tail).\n", s_usage);
}

//  zper log [verify | dump [-m]] PATH; --help anywhere prints the help
//  (and is never taken for a PATH)
int
zper_cmd_log (int argc, char *argv [])
{
    walk_t walk = { 0 };
    for (int index = 1; index < argc; index++)
        if (streq (argv [index], "--help") || streq (argv [index], "-h")) {
            s_help ();
            return 0;
        }
    int argn = 1;
    if (argn < argc && streq (argv [argn], "dump"))
        walk.dump = true;
    else
    if (!(argn < argc && streq (argv [argn], "verify"))) {
        fprintf (stderr, "%s", s_usage);
        return 2;
    }
    argn++;
    if (walk.dump && argn < argc && streq (argv [argn], "-m")) {
        walk.messages = true;
        argn++;
    }
    if (argn + 1 != argc) {
        fprintf (stderr, "%s", s_usage);
        return 2;
    }
    s_walk (&walk, argv [argn]);
    if (walk.problems == 0)
        printf ("%s: intact\n", argv [argn]);
    else
        printf ("%s: %" PRIu64 " problem%s\n", argv [argn], walk.problems, walk.problems == 1? "": "s");
    return walk.problems? 1: 0;
}
