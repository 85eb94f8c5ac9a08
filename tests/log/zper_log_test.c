/*  =========================================================================
    zper_log_test - black-box tests of the log engine: real files, real
    processes, real crashes

    Usage: zper_log_test CASE ZPER_CLI      (ctest runs one CASE per test)
    Every case works in a fresh folder under /tmp, uses only the public API
    and `zper log verify`, and removes its folder when it passes. Message
    contents are a function of their offset (s_frames), so any reader can
    check any message without a record of what was sent; offsets lost in a
    crash are reused for the same contents.
    ========================================================================= */

#include "zper_log.h"
#include "zper_partition.h"
#include "zper_segment.h"
#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAMES_MAX          3
#define FRAME_BODY_MAX      1000
#define CRASH_ITERATIONS    60
#define CRASH_RUN_MAX_MS    40          //  the child lives up to this long before SIGKILL
#define CRASH_BATCH_MAX     40          //  messages appended between two flushes
#define CRASH_FIRST_REPORT_MS 20000     //  a child that never reports in this long is broken
#define SMALL_SEGMENT       (64 * 1024) //  rolls often

static const char *s_cli;               //  path of the zper tool
static char s_folder [64];              //  this case's scratch folder

//  ---- messages whose contents follow from their offset ----------------------

static uint32_t
s_hash (int64_t offset, int salt)
{
    uint64_t value = (uint64_t) offset * 0x9E3779B97F4A7C15ull + (uint64_t) salt * 0xBF58476D1CE4E5B9ull;
    value ^= value >> 31;
    return (uint32_t) (value * 0x94D049BB133111EBull >> 32);
}

//  The frames of the message at offset (empty, short and long frames)
static size_t
s_frames (int64_t offset, zper_frame_t *frames, uint8_t storage [FRAMES_MAX][FRAME_BODY_MAX])
{
    size_t frame_count = 1 + s_hash (offset, 0) % FRAMES_MAX;
    for (size_t index = 0; index < frame_count; index++) {
        uint32_t hash = s_hash (offset, (int) index + 1);
        size_t size = hash % 5 == 0? 0: hash % 7 == 0? 256 + hash % 700: hash % 200;
        for (size_t byte = 0; byte < size; byte++)
            storage [index][byte] = (uint8_t) (offset * 31 + (int64_t) index * 7 + (int64_t) byte);
        frames [index].data = storage [index];
        frames [index].size = size;
    }
    return frame_count;
}

static int64_t
s_append (zper_partition_t *partition, int64_t offset, int64_t timestamp)
{
    zper_frame_t frames [FRAMES_MAX];
    uint8_t storage [FRAMES_MAX][FRAME_BODY_MAX];
    size_t frame_count = s_frames (offset, frames, storage);
    return zper_partition_append (partition, frames, frame_count, timestamp);
}

//  True if message is exactly the message of its offset
static bool
s_message_intact (const zper_message_t *message)
{
    zper_frame_t frames [FRAMES_MAX];
    uint8_t storage [FRAMES_MAX][FRAME_BODY_MAX];
    size_t frame_count = s_frames (message->offset, frames, storage);
    if (message->frame_count != frame_count
    ||  message->size != zper_zmtp_message_size (frames, frame_count))
        return false;
    const uint8_t *cursor = message->data;
    for (size_t index = 0; index < frame_count; index++) {
        zper_frame_t frame;
        bool more;
        if (zper_zmtp_decode (&cursor, message->data + message->size, &frame, &more)
        ||  more != (index + 1 < frame_count) || frame.size != frames [index].size
        ||  (frame.size && memcmp (frame.data, frames [index].data, frame.size)))
            return false;
    }
    return true;
}

//  Read every durable message and check it, its offset and its position;
//  returns the number read
static int64_t
s_check_all (zper_partition_t *partition)
{
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    int64_t offset = bounds.start_offset;
    int64_t position = bounds.start_position;
    while (offset < bounds.durable_offset) {
        zper_view_t *view = zper_partition_read (partition, offset, 64 * 1024);
        assert (view && zper_view_count (view) > 0);
        zper_message_t message;
        while (zper_view_next (view, &message)) {
            assert (message.offset == offset && message.position == position);
            assert (s_message_intact (&message));
            offset++;
            position += (int64_t) message.size;
        }
        zper_view_destroy (&view);
    }
    assert (position == bounds.durable_position);
    return offset - bounds.start_offset;
}

//  ---- helpers ----------------------------------------------------------------

static void
s_config (zper_log_config_t *config, uint64_t segment_size)
{
    zper_log_config_init (config);
    config->base_dir = s_folder;
    config->segment_size = segment_size;
}

static char *
s_path (const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    char *tail = zsys_vprintf (format, arguments);
    va_end (arguments);
    char *path = zsys_sprintf ("%s/%s", s_folder, tail);
    free (tail);
    return path;
}

//  Exit code of `zper log verify path`
static int
s_verify (const char *path)
{
    char *command = zsys_sprintf ("%s log verify %s > %s/verify.out 2>&1", s_cli, path, s_folder);
    int status = system (command);
    free (command);
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

static uint64_t
s_file_size (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0? (uint64_t) status.st_size: 0;
}

//  Append count messages from the end, flushing every per_flush, and
//  leave without closing (as a crash after the last flush would)
static void
s_fill_and_crash (const char *path, uint64_t segment_size, int64_t count, int64_t per_flush)
{
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        zper_log_config_t config;
        s_config (&config, segment_size);
        zper_partition_t *partition = zper_partition_open (path, &config);
        assert (partition);
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        for (int64_t offset = bounds.end_offset; offset < bounds.end_offset + count; offset++) {
            assert (s_append (partition, offset, 0) == offset);
            if ((offset + 1) % per_flush == 0)
                assert (zper_partition_flush (partition) == offset + 1);
        }
        assert (zper_partition_flush (partition) == bounds.end_offset + count);
        _exit (0);
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

//  Open, check everything, close cleanly; returns the durable offset
static int64_t
s_reopen_and_check (const char *path, uint64_t segment_size, uint64_t *recovery_bytes)
{
    zper_log_config_t config;
    s_config (&config, segment_size);
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    if (recovery_bytes)
        *recovery_bytes = zper_partition_recovery_bytes (partition);
    s_check_all (partition);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    zper_partition_destroy (&partition);
    return bounds.durable_offset;
}

static void
s_flip_bit (const char *path, uint64_t at)
{
    int fd = open (path, O_RDWR);
    assert (fd >= 0);
    uint8_t byte;
    assert (pread (fd, &byte, 1, (off_t) at) == 1);
    byte ^= 0x20;
    assert (pwrite (fd, &byte, 1, (off_t) at) == 1);
    close (fd);
}

static void
s_append_bytes (const char *path, const void *bytes, size_t size)
{
    int fd = open (path, O_WRONLY | O_APPEND);
    assert (fd >= 0 && write (fd, bytes, size) == (ssize_t) size);
    close (fd);
}

//  Path of the n-th segment file (0 = oldest) of a partition folder
static char *
s_segment_file (const char *path, size_t number, const char *extension)
{
    size_t count;
    int64_t *offsets = zper_segment_list (path, &count);
    assert (offsets && number < count);
    char *file = zsys_sprintf ("%s/%020" PRId64 ".%s", path, offsets [number], extension);
    free (offsets);
    return file;
}

static size_t
s_segment_count (const char *path)
{
    size_t count;
    free (zper_segment_list (path, &count));
    return count;
}

//  ---- crash: SIGKILL a writer at random points ---------------------------------

//  The child: append random batches forever, reporting each durable offset
static void
s_crash_child (const char *path, int report_fd, int iteration)
{
    zper_log_config_t config;
    s_config (&config, SMALL_SEGMENT);
    config.flush_messages = 1 + iteration % 11;
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    int64_t offset = bounds.end_offset;
    while (true) {
        int64_t batch = 1 + random () % CRASH_BATCH_MAX;
        for (int64_t index = 0; index < batch; index++, offset++)
            assert (s_append (partition, offset, 0) == offset);
        //  Two policies: an explicit flush per batch, or the flush timer's rule
        bool flush = iteration % 2 == 0 || zper_partition_flush_due (partition, zclock_time ());
        if (flush) {
            int64_t durable = zper_partition_flush (partition);
            assert (durable == offset);
            assert (write (report_fd, &durable, sizeof durable) == sizeof durable);
        }
    }
}

//  Read acknowledged offsets from the child until deadline; returns the highest
static int64_t
s_crash_collect (int report_fd, int64_t deadline, int64_t acknowledged)
{
    while (true) {
        int64_t wait = deadline - zclock_mono ();
        zmq_pollitem_t item = { NULL, report_fd, ZMQ_POLLIN, 0 };
        if (wait <= 0 || zmq_poll (&item, 1, wait) <= 0)
            return acknowledged;
        int64_t durable;
        ssize_t got = read (report_fd, &durable, sizeof durable);
        if (got != sizeof durable)
            return acknowledged;        //  a report is one 8-byte write: whole or none
        assert (durable >= acknowledged);
        acknowledged = durable;
    }
}

//  Wait (boundedly) for the child's first report
static int64_t
s_crash_first_report (int report_fd, int64_t acknowledged)
{
    int64_t durable;
    zmq_pollitem_t item = { NULL, report_fd, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, CRASH_FIRST_REPORT_MS) == 1
    &&  read (report_fd, &durable, sizeof durable) == sizeof durable) {
        assert (durable >= acknowledged);
        return durable;
    }
    return acknowledged;
}

static void
s_case_crash (void)
{
    char *path = s_path ("crash/0");
    int64_t acknowledged = 0;
    int iterations_with_acks = 0;
    for (int iteration = 0; iteration < CRASH_ITERATIONS; iteration++) {
        int report [2];
        assert (pipe (report) == 0);
        srandom ((unsigned) (getpid () + iteration));
        int64_t run_ms = 1 + random () % CRASH_RUN_MAX_MS;
        pid_t child = fork ();
        assert (child >= 0);
        if (child == 0) {
            close (report [0]);
            s_crash_child (path, report [1], iteration);
        }
        close (report [1]);
        int64_t before = acknowledged;
        //  Most runs are killed a random time after their first report, the
        //  others anywhere (even while recovering): a loaded machine must
        //  not turn the test into a test of start-up only
        bool after_first_report = iteration % 5 != 0;
        if (after_first_report)
            acknowledged = s_crash_first_report (report [0], acknowledged);
        acknowledged = s_crash_collect (report [0], zclock_mono () + run_ms, acknowledged);
        kill (child, SIGKILL);
        //  Reports already in the pipe were acknowledged before the kill
        acknowledged = s_crash_collect (report [0], zclock_mono () + 50, acknowledged);
        int status;
        assert (waitpid (child, &status, 0) == child);
        assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        close (report [0]);
        if (acknowledged > before)
            iterations_with_acks++;
        else
            assert (!after_first_report);

        //  Recovery keeps every acknowledged message, intact and in order
        zper_log_config_t config;
        s_config (&config, SMALL_SEGMENT);
        zper_partition_t *partition = zper_partition_open (path, &config);
        assert (partition);
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        assert (bounds.durable_offset >= acknowledged);
        assert (s_check_all (partition) == bounds.durable_offset);
        zper_partition_destroy (&partition);
        if (iteration % 10 == 9)
            assert (s_verify (path) == 0);
    }
    printf ("crash: %d iterations, %d with acknowledgements, %" PRId64 " messages acknowledged\n",
            CRASH_ITERATIONS, iterations_with_acks, acknowledged);
    assert (s_segment_count (path) > 1);
    free (path);
}

//  ---- disk refuses: a file size limit in a child process -----------------------

static void
s_case_file_size_limit (void)
{
    char *path = s_path ("limited/0");
    const rlim_t limit = 300 * 1024;
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        signal (SIGXFSZ, SIG_IGN);
        zper_log_config_t config;
        s_config (&config, 1024 * 1024);
        zper_partition_t *partition = zper_partition_open (path, &config);
        assert (partition);
        struct rlimit saved;
        assert (getrlimit (RLIMIT_FSIZE, &saved) == 0);
        struct rlimit small = { limit, saved.rlim_max };
        assert (setrlimit (RLIMIT_FSIZE, &small) == 0);
        int64_t offset = 0, durable = 0;
        while (true) {
            for (int index = 0; index < 20; index++, offset++)
                assert (s_append (partition, offset, 0) == offset);
            int64_t flushed = zper_partition_flush (partition);
            if (flushed < 0)
                break;
            durable = flushed;
        }
        assert (errno == EFBIG);
        //  Nothing durable lost; the undurable messages are gone; the file is cut back
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        assert (bounds.durable_offset == durable && bounds.end_offset == durable);
        char *segment = s_segment_file (path, 0, "log");
        assert (s_file_size (segment) == bounds.size_bytes && bounds.size_bytes <= limit);
        free (segment);
        assert (s_check_all (partition) == durable);
        //  Still refused while the limit holds, accepted once it is lifted
        for (int index = 0; index < 50; index++)
            assert (s_append (partition, durable + index, 0) == durable + index);
        assert (zper_partition_flush (partition) == -1 && errno == EFBIG);
        assert (setrlimit (RLIMIT_FSIZE, &saved) == 0);
        for (int index = 0; index < 50; index++)
            assert (s_append (partition, durable + index, 0) == durable + index);
        assert (zper_partition_flush (partition) == durable + 50);
        zper_partition_destroy (&partition);
        _exit (0);
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert (s_reopen_and_check (path, 1024 * 1024, NULL) > 50);
    assert (s_verify (path) == 0);
    free (path);
}

//  ---- disk refuses: the test hook, during a roll ---------------------------------

static void
s_case_injected_faults (void)
{
    char *path = s_path ("faults/0");
    zper_log_config_t config;
    s_config (&config, 4096);
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    int64_t offset = 0;
    for (; offset < 30; offset++)
        assert (s_append (partition, offset, 0) == offset);
    assert (zper_partition_flush (partition) == 30);
    zper_bounds_t before;
    zper_partition_bounds (partition, &before);
    //  Enough to roll: the roll succeeds, the write into the new segment fails
    const int errors [] = { EIO, ENOSPC };
    for (int index = 0; index < 2; index++) {
        //  The append that finds the open batch full, or else the flush, fails
        zper_partition_set_fault (partition, errors [index], 0);
        int64_t rc = 0;
        for (int count = 0; count < 40 && rc >= 0; count++)
            rc = s_append (partition, offset + count, 0);
        if (rc >= 0)
            rc = zper_partition_flush (partition);
        assert (rc == -1 && errno == errors [index]);
        zper_bounds_t after;
        zper_partition_bounds (partition, &after);
        assert (after.durable_offset == 30 && after.end_offset == 30);
        assert (after.segment_count == before.segment_count && after.size_bytes == before.size_bytes);
        assert (s_segment_count (path) == before.segment_count);
    }
    //  A failing fdatasync also discards, and the checkpoint survives it
    zper_partition_set_fault (partition, 0, EIO);
    assert (s_append (partition, offset, 0) == offset);
    assert (zper_partition_flush (partition) == -1 && errno == EIO);
    zper_partition_set_fault (partition, 0, 0);
    for (int count = 0; count < 40; count++)
        assert (s_append (partition, offset + count, 0) == offset + count);
    assert (zper_partition_flush (partition) == 70);
    assert (s_check_all (partition) == 70);
    zper_partition_destroy (&partition);
    assert (s_reopen_and_check (path, 4096, NULL) == 70);
    assert (s_verify (path) == 0);
    free (path);
}

//  ---- injected tails and corruption -------------------------------------------

#define TAIL_MESSAGES   300
#define TAIL_PER_FLUSH  10
#define TAIL_SEGMENT    (16 * 1024)

//  A crashed partition of TAIL_MESSAGES messages; returns the active segment file
static char *
s_crashed_partition (const char *path)
{
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    assert (s_segment_count (path) > 1);
    return s_segment_file (path, s_segment_count (path) - 1, "log");
}

static void
s_case_torn_tail (void)
{
    char *path = s_path ("torn/0");
    char *active = s_crashed_partition (path);
    uint64_t size = s_file_size (active);
    assert (truncate (active, (off_t) (size - 7)) == 0);
    assert (s_verify (path) == 1);
    //  The torn record (the last flush) is cut, everything before it kept
    int64_t durable = s_reopen_and_check (path, TAIL_SEGMENT, NULL);
    assert (durable == TAIL_MESSAGES - TAIL_PER_FLUSH);
    assert (s_file_size (active) < size - 7);
    assert (s_verify (path) == 0);
    free (active);
    free (path);
}

//  Damage past the last whole record (bytes that never formed a record):
//  verify reports it, recovery cuts the file back to its last record and
//  keeps every message.
static void
s_check_damage_past_end_is_cut (const char *name, void (*damage) (const char *active, uint64_t size))
{
    char *path = s_path (name);
    char *active = s_crashed_partition (path);
    uint64_t size = s_file_size (active);
    damage (active, size);
    assert (s_verify (path) == 1);
    assert (s_reopen_and_check (path, TAIL_SEGMENT, NULL) == TAIL_MESSAGES);
    assert (s_file_size (active) == size);
    assert (s_verify (path) == 0);
    free (active);
    free (path);
}

static void
s_append_garbage (const char *active, uint64_t size)
{
    uint8_t garbage [100];
    for (size_t index = 0; index < sizeof garbage; index++)
        garbage [index] = (uint8_t) (index * 37 + 11);
    s_append_bytes (active, garbage, sizeof garbage);
}

//  What a file system may show after a crash: the size grew, the data did not land
static void
s_extend_with_zeros (const char *active, uint64_t size)
{
    assert (truncate (active, (off_t) (size + 8192)) == 0);
}

static void
s_case_garbage_tail (void)
{
    s_check_damage_past_end_is_cut ("garbage/0", s_append_garbage);
}

static void
s_case_zero_filled_tail (void)
{
    s_check_damage_past_end_is_cut ("zeros/0", s_extend_with_zeros);
}

//  A flipped bit in the part recovery scans: that record and all after it go
static void
s_case_flipped_bit_after_checkpoint (void)
{
    char *path = s_path ("flipped/0");
    char *active = s_crashed_partition (path);
    size_t count = s_segment_count (path);
    size_t offsets_count;
    int64_t *offsets = zper_segment_list (path, &offsets_count);
    int64_t active_base = offsets [count - 1];
    free (offsets);
    uint64_t size = s_file_size (active);
    assert (size > 2 * ZPER_RECORD_HEADER_SIZE);
    s_flip_bit (active, size / 2);
    assert (s_verify (path) == 1);
    int64_t durable = s_reopen_and_check (path, TAIL_SEGMENT, NULL);
    assert (durable >= active_base && durable < TAIL_MESSAGES);
    assert (s_file_size (active) <= size / 2);
    assert (s_verify (path) == 0);
    free (active);
    free (path);
}

//  Without a checkpoint recovery scans everything: a flipped bit in the
//  middle of an old segment drops that record, the rest of its segment and
//  every later segment
static void
s_case_flipped_bit_without_checkpoint (void)
{
    char *path = s_path ("flipped-full/0");
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    size_t count;
    int64_t *offsets = zper_segment_list (path, &count);
    assert (count >= 3);
    int64_t second_base = offsets [1];
    free (offsets);
    char *first = s_segment_file (path, 0, "log");
    s_flip_bit (first, s_file_size (first) / 2);
    char *checkpoint = zsys_sprintf ("%s/checkpoint", path);
    assert (unlink (checkpoint) == 0);
    uint64_t scanned;
    int64_t durable = s_reopen_and_check (path, TAIL_SEGMENT, &scanned);
    assert (durable > 0 && durable < second_base);
    assert (scanned > 0);
    assert (s_segment_count (path) == 1);
    assert (s_verify (path) == 0);
    free (checkpoint);
    free (first);
    free (path);
}

//  After a clean shutdown nothing is read at start-up: a flipped bit in an
//  old record is not noticed by open, but a read refuses that record and
//  `zper log verify` reports it
static void
s_case_clean_restart_reads_no_record (void)
{
    char *path = s_path ("clean/0");
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    uint64_t scanned;
    assert (s_reopen_and_check (path, TAIL_SEGMENT, &scanned) == TAIL_MESSAGES);
    assert (scanned > 0);                       //  that open followed a crash
    char *first = s_segment_file (path, 0, "log");
    s_flip_bit (first, s_file_size (first) / 2);

    zper_log_config_t config;
    s_config (&config, TAIL_SEGMENT);
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition && zper_partition_recovery_bytes (partition) == 0);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == TAIL_MESSAGES);
    //  Reading forward from 0 stops at the corrupt record, with EBADMSG
    int64_t offset = 0;
    zper_view_t *view;
    while ((view = zper_partition_read (partition, offset, 4096))) {
        zper_message_t message;
        while (zper_view_next (view, &message)) {
            assert (s_message_intact (&message));
            offset++;
        }
        zper_view_destroy (&view);
        assert (offset < TAIL_MESSAGES);
    }
    assert (errno == EBADMSG);
    zper_partition_destroy (&partition);
    assert (s_verify (path) == 1);
    free (first);
    free (path);
}

//  A checkpoint that fails its CRC is no checkpoint: the whole partition is scanned
static void
s_case_corrupt_checkpoint_means_full_scan (void)
{
    char *path = s_path ("checkpoint/0");
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    assert (s_reopen_and_check (path, TAIL_SEGMENT, NULL) == TAIL_MESSAGES);
    char *checkpoint = zsys_sprintf ("%s/checkpoint", path);
    s_flip_bit (checkpoint, 20);
    uint64_t scanned;
    assert (s_reopen_and_check (path, TAIL_SEGMENT, &scanned) == TAIL_MESSAGES);
    zper_log_config_t config;
    s_config (&config, TAIL_SEGMENT);
    zper_partition_t *partition = zper_partition_open (path, &config);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (zper_partition_recovery_bytes (partition) == 0);   //  rewritten at open and close
    zper_partition_destroy (&partition);
    assert (scanned == bounds.size_bytes);
    free (checkpoint);
    free (path);
}

//  An unclean restart reads only what was written since the checkpoint
static void
s_case_crash_recovery_scans_from_checkpoint (void)
{
    char *path = s_path ("since/0");
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    assert (s_reopen_and_check (path, TAIL_SEGMENT, NULL) == TAIL_MESSAGES);
    zper_log_config_t config;
    s_config (&config, TAIL_SEGMENT);
    zper_partition_t *partition = zper_partition_open (path, &config);
    zper_bounds_t before;
    zper_partition_bounds (partition, &before);
    zper_partition_destroy (&partition);
    s_fill_and_crash (path, TAIL_SEGMENT, 20, 5);
    uint64_t scanned;
    assert (s_reopen_and_check (path, TAIL_SEGMENT, &scanned) == TAIL_MESSAGES + 20);
    partition = zper_partition_open (path, &config);
    zper_bounds_t after;
    zper_partition_bounds (partition, &after);
    zper_partition_destroy (&partition);
    assert (scanned > 0 && scanned <= after.size_bytes - before.size_bytes);
    free (path);
}

//  Indexes that cannot be trusted are rebuilt from their segment
static void
s_case_untrusted_index_is_rebuilt (void)
{
    char *path = s_path ("index/0");
    s_fill_and_crash (path, TAIL_SEGMENT, TAIL_MESSAGES, TAIL_PER_FLUSH);
    assert (s_reopen_and_check (path, TAIL_SEGMENT, NULL) == TAIL_MESSAGES);
    assert (s_segment_count (path) >= 3);
    char *missing = s_segment_file (path, 0, "index");
    assert (unlink (missing) == 0);
    char *beyond = s_segment_file (path, 1, "index");
    uint8_t entry [ZPER_INDEX_ENTRY_SIZE];
    memset (entry, 0x7F, sizeof entry);         //  points far past the end of the file
    s_append_bytes (beyond, entry, sizeof entry);
    assert (s_verify (path) == 1);
    uint64_t scanned;
    assert (s_reopen_and_check (path, TAIL_SEGMENT, &scanned) == TAIL_MESSAGES);
    assert (scanned > 0);
    assert (access (missing, F_OK) == 0);
    assert (s_verify (path) == 0);
    free (missing);
    free (beyond);
    free (path);
}

//  ---- roll boundaries and both kinds of position --------------------------------

#define ROLL_SEGMENT    4096
#define ROLL_BODY       975             //  long frame: 9 + 975 = 984, + 40 = a 1024-byte record

static void
s_roll_append (zper_partition_t *partition, int64_t offset, size_t size)
{
    uint8_t *body = (uint8_t *) malloc (size);
    memset (body, 'a' + (int) (offset % 26), size);
    zper_frame_t frame = { body, size };
    assert (zper_partition_append (partition, &frame, 1, 0) == offset);
    free (body);
}

//  Every message is found by its offset and by its position, the same bytes
static void
s_roll_check (zper_partition_t *partition, int64_t count)
{
    int64_t position = 0;
    for (int64_t offset = 0; offset < count; offset++) {
        zper_view_t *by_offset = zper_partition_read (partition, offset, 1);
        zper_view_t *by_position = zper_partition_read_position (partition, position, 1);
        zper_message_t first, second;
        assert (by_offset && zper_view_next (by_offset, &first));
        assert (by_position && zper_view_next (by_position, &second));
        assert (first.offset == offset && second.offset == offset && first.position == position);
        assert (first.size == second.size && memcmp (first.data, second.data, first.size) == 0);
        const uint8_t *cursor = first.data;
        zper_frame_t frame;
        bool more;
        assert (zper_zmtp_decode (&cursor, first.data + first.size, &frame, &more) == 0);
        assert (((const uint8_t *) frame.data) [0] == 'a' + offset % 26);
        if (first.size > 1)
            assert (zper_partition_read_position (partition, position + 1, 1) == NULL && errno == EINVAL);
        position += (int64_t) first.size;
        zper_view_destroy (&by_offset);
        zper_view_destroy (&by_position);
    }
}

static void
s_case_roll_boundaries (void)
{
    char *path = s_path ("roll/0");
    zper_log_config_t config;
    s_config (&config, ROLL_SEGMENT);
    zper_partition_t *partition = zper_partition_open (path, &config);
    //  Records of exactly a quarter segment: four fill a segment, the fifth rolls
    for (int64_t offset = 0; offset < 10; offset++) {
        s_roll_append (partition, offset, ROLL_BODY);
        assert (zper_partition_flush (partition) == offset + 1);
    }
    //  A record larger than a segment gets one of its own, and the next rolls again
    s_roll_append (partition, 10, 3 * ROLL_SEGMENT);
    assert (zper_partition_flush (partition) == 11);
    //  A batch of three is one record: never split, so it starts a segment
    for (int64_t offset = 11; offset < 14; offset++)
        s_roll_append (partition, offset, ROLL_BODY);
    assert (zper_partition_flush (partition) == 14);
    size_t count;
    int64_t *offsets = zper_segment_list (path, &count);
    const int64_t expected [] = { 0, 4, 8, 10, 11 };
    assert (count == 5);
    for (size_t index = 0; index < count; index++)
        assert (offsets [index] == expected [index]);
    free (offsets);
    char *file = s_segment_file (path, 0, "log");
    assert (s_file_size (file) == ROLL_SEGMENT);
    free (file);
    file = s_segment_file (path, 3, "log");
    assert (s_file_size (file) == ZPER_RECORD_HEADER_SIZE + 9 + 3 * ROLL_SEGMENT);
    free (file);
    file = s_segment_file (path, 4, "log");
    assert (s_file_size (file) == ZPER_RECORD_HEADER_SIZE + 3 * (9 + ROLL_BODY));
    free (file);
    //  A view never crosses a segment
    zper_view_t *view = zper_partition_read (partition, 2, 1 << 20);
    assert (view && zper_view_count (view) == 2);
    zper_view_destroy (&view);
    s_roll_check (partition, 14);
    zper_partition_destroy (&partition);

    partition = zper_partition_open (path, &config);
    assert (zper_partition_recovery_bytes (partition) == 0);
    s_roll_check (partition, 14);
    zper_partition_destroy (&partition);
    assert (s_verify (path) == 0);
    free (path);
}

//  ---- time lookups ----------------------------------------------------------------

#define TIME_MESSAGES   400

static int64_t
s_time_of (int64_t offset)
{
    return offset % 13 == 12? 500: 100000 + offset / 7 * 10;     //  some go backwards
}

static void
s_case_time_lookups (void)
{
    char *path = s_path ("time/0");
    zper_log_config_t config;
    s_config (&config, 4096);
    zper_partition_t *partition = zper_partition_open (path, &config);
    for (int64_t offset = 0; offset < TIME_MESSAGES; offset++) {
        assert (s_append (partition, offset, s_time_of (offset)) == offset);
        if (offset % 5 == 4)
            zper_partition_flush (partition);
    }
    assert (zper_partition_flush (partition) == TIME_MESSAGES);
    //  Collect every stored timestamp: never decreasing, never below the given one's max
    int64_t *stamps = (int64_t *) calloc (TIME_MESSAGES, sizeof (int64_t));
    int64_t newest_given = 0;
    for (int64_t offset = 0; offset < TIME_MESSAGES; offset++) {
        zper_view_t *view = zper_partition_read (partition, offset, 1);
        zper_message_t message;
        assert (view && zper_view_next (view, &message));
        stamps [offset] = message.timestamp;
        if (s_time_of (offset) > newest_given)
            newest_given = s_time_of (offset);
        assert (stamps [offset] >= newest_given);
        assert (offset == 0 || stamps [offset] >= stamps [offset - 1]);
        zper_view_destroy (&view);
    }
    for (int64_t time = 0; time <= stamps [TIME_MESSAGES - 1] + 20; time += time < 99990? 5000: 1) {
        int64_t expected = 0;
        while (expected < TIME_MESSAGES && stamps [expected] < time)
            expected++;
        assert (zper_partition_offset_for_time (partition, time) == expected);
    }
    //  Segment starts at or before a time, newest last, at most max
    size_t count;
    int64_t *offsets = zper_segment_list (path, &count);
    assert (count > 4);
    for (int64_t time = 99000; time <= stamps [TIME_MESSAGES - 1] + 20; time += 7) {
        size_t older = 0;
        while (older < count && stamps [offsets [older]] <= time)
            older++;
        int64_t positions [3];
        int written = zper_partition_segment_positions (partition, time, positions, 3);
        assert (written == (int) (older < 3? older: 3));
        for (int index = 0; index < written; index++) {
            zper_view_t *view = zper_partition_read (partition, offsets [older - written + index], 1);
            zper_message_t message;
            assert (view && zper_view_next (view, &message));
            assert (positions [index] == message.position);
            zper_view_destroy (&view);
        }
    }
    free (offsets);
    free (stamps);
    zper_partition_destroy (&partition);
    free (path);
}

//  ---- retention with a reader holding the oldest segment ---------------------------

static void
s_case_retention_with_held_reader (void)
{
    zper_log_config_t config;
    s_config (&config, 4096);
    config.retention_ms = 1000;
    zper_log_t *log = zper_log_new (&config);
    zper_partition_t *partition = zper_log_partition (log, "retained", "0", true);
    for (int64_t offset = 0; offset < 100; offset++) {
        assert (s_append (partition, offset, 1000 + offset) == offset);
        if (offset % 5 == 4)
            zper_partition_flush (partition);
    }
    assert (zper_partition_flush (partition) == 100);
    char *path = s_path ("retained/0");
    size_t before = s_segment_count (path);
    assert (before > 3);

    zper_view_t *view = zper_partition_read (partition, 0, 1 << 20);
    assert (view && zper_view_count (view) > 1);
    zper_message_t message;
    assert (zper_view_next (view, &message));
    zmq_msg_t lent;
    assert (zper_view_lend (view, message.data, message.size, &lent) == 0);
    //  Every segment is older than retention, but the active one stays
    assert (zper_log_retain (log, 1000000) == (int) before - 1);
    assert (s_segment_count (path) == 1);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.start_offset > 0 && bounds.durable_offset == 100);
    assert (zper_partition_read (partition, 0, 1) == NULL && errno == ERANGE);
    //  The held view still reads its (now unlinked) segment
    zper_view_rewind (view);
    size_t seen = 0;
    while (zper_view_next (view, &message)) {
        assert (message.offset == (int64_t) seen && s_message_intact (&message));
        seen++;
    }
    assert (seen == zper_view_count (view));
    zper_view_destroy (&view);
    zper_message_t held = { .offset = 0, .data = (const uint8_t *) zmq_msg_data (&lent),
                            .size = zmq_msg_size (&lent), .frame_count = 1 + s_hash (0, 0) % FRAMES_MAX };
    assert (s_message_intact (&held));
    zmq_msg_close (&lent);
    assert (s_check_all (partition) == 100 - bounds.start_offset);
    zper_log_destroy (&log);

    //  By size, through a new log that has not opened the partition yet
    s_fill_and_crash (path, 4096, 200, 5);
    config.retention_ms = -1;
    config.retention_bytes = 3 * 4096;
    log = zper_log_new (&config);
    assert (zper_log_retain (log, zclock_time ()) > 0);
    partition = zper_log_partition (log, "retained", "0", false);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.size_bytes <= 3 * 4096 + 4096);
    s_check_all (partition);
    zper_log_destroy (&log);
    free (path);
}

//  ---- names never escape base_dir ---------------------------------------------------

static void
s_case_bad_names_are_refused (void)
{
    zper_log_config_t config;
    s_config (&config, 4096);
    char *base = s_path ("base");
    config.base_dir = base;
    zper_log_t *log = zper_log_new (&config);
    char long_name [ZPER_TOPIC_NAME_MAX + 2];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    const char *names [] = { "../x", "a/b", "", ".", "..", "/etc", "caf\xc3\xa9", "tab\t", long_name, NULL };
    for (int index = 0; names [index]; index++) {
        assert (zper_log_partition (log, names [index], "0", true) == NULL && errno == EINVAL);
        assert (zper_log_partition (log, "ok", names [index], true) == NULL && errno == EINVAL);
    }
    long_name [ZPER_TOPIC_NAME_MAX] = 0;        //  249 bytes: the longest allowed
    assert (zper_log_partition (log, long_name, "0", true));
    zlist_t *topics = zper_log_topics (log);
    assert (zlist_size (topics) == 1 && streq ((char *) zlist_first (topics), long_name));
    zlist_destroy (&topics);
    zper_log_destroy (&log);
    //  Nothing was created beside base_dir
    char *escaped = s_path ("x");
    assert (access (escaped, F_OK) == -1);
    free (escaped);
    free (base);
}

//  ---- concurrency: readers, a flush timer and retention against a writer -----------

#define CONCURRENT_MESSAGES 20000

typedef struct {
    zper_partition_t *partition;
    volatile bool stop;
    uint64_t reads;
} concurrent_t;

static void *
s_concurrent_reader (void *argument)
{
    concurrent_t *shared = (concurrent_t *) argument;
    unsigned seed = (unsigned) (uintptr_t) &seed;
    while (!shared->stop) {
        zper_bounds_t bounds;
        zper_partition_bounds (shared->partition, &bounds);
        int64_t span = bounds.visible_offset - bounds.start_offset;
        int64_t offset = bounds.start_offset + (span > 0? rand_r (&seed) % span: 0);
        zper_view_t *view = zper_partition_read (shared->partition, offset, 16 * 1024);
        if (!view) {
            assert (errno == ERANGE);       //  retention went past it meanwhile
            continue;
        }
        zper_message_t message;
        while (zper_view_next (view, &message)) {
            assert (message.offset == offset++ && s_message_intact (&message));
            zmq_msg_t lent;
            assert (zper_view_lend (view, message.data, message.size, &lent) == 0);
            zmq_msg_close (&lent);
        }
        zper_view_destroy (&view);
        zper_partition_offset_for_time (shared->partition, zclock_time () - rand_r (&seed) % 100);
        shared->reads++;
    }
    return NULL;
}

static void *
s_concurrent_timer (void *argument)
{
    concurrent_t *shared = (concurrent_t *) argument;
    while (!shared->stop) {
        if (zper_partition_flush_due (shared->partition, zclock_time ()))
            assert (zper_partition_flush (shared->partition) >= 0);
        zper_partition_retain (shared->partition, zclock_time ());
        zclock_sleep (1);
    }
    return NULL;
}

static void
s_case_concurrent_readers_and_retention (void)
{
    char *path = s_path ("concurrent/0");
    zper_log_config_t config;
    s_config (&config, 8 * 1024);
    config.retention_bytes = 64 * 1024;
    config.flush_messages = 50;
    config.flush_interval_ms = 2;
    concurrent_t shared = { .partition = zper_partition_open (path, &config) };
    assert (shared.partition);
    pthread_t threads [3];
    assert (pthread_create (&threads [0], NULL, s_concurrent_reader, &shared) == 0);
    assert (pthread_create (&threads [1], NULL, s_concurrent_reader, &shared) == 0);
    assert (pthread_create (&threads [2], NULL, s_concurrent_timer, &shared) == 0);
    for (int64_t offset = 0; offset < CONCURRENT_MESSAGES; offset++)
        assert (s_append (shared.partition, offset, 0) == offset);
    assert (zper_partition_flush (shared.partition) == CONCURRENT_MESSAGES);
    shared.stop = true;
    for (int index = 0; index < 3; index++)
        pthread_join (threads [index], NULL);
    assert (shared.reads > 0);
    assert (zper_partition_retain (shared.partition, zclock_time ()) >= 0);
    zper_bounds_t bounds;
    zper_partition_bounds (shared.partition, &bounds);
    assert (bounds.start_offset > 0 && bounds.size_bytes <= 64 * 1024 + 8 * 1024);
    s_check_all (shared.partition);
    zper_partition_destroy (&shared.partition);
    assert (s_verify (path) == 0);
    assert (s_verify (s_folder) == 0);         //  a folder above partitions: every one below
    free (path);
}

//  ---- visibility: readers see written messages --------------------------------

#define WRITTEN_CRASH_ITERATIONS    20
#define SYNC_FAILURE_WRITES         2000
#define SYNC_FAILURE_EVERY          7       //  one flush in this many fails its fdatasync

//  The child: append random batches forever, writing each without a sync
//  and reporting the visible offset, what readers could have seen
static void
s_written_crash_child (const char *path, int report_fd)
{
    zper_log_config_t config;
    s_config (&config, SMALL_SEGMENT);
    config.visibility = ZPER_VISIBILITY_WRITTEN;
    zper_partition_t *partition = zper_partition_open (path, &config);
    assert (partition);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    int64_t offset = bounds.end_offset;
    while (true) {
        int64_t batch = 1 + random () % CRASH_BATCH_MAX;
        for (int64_t index = 0; index < batch; index++, offset++)
            assert (s_append (partition, offset, 0) == offset);
        assert (zper_partition_write (partition) == offset);
        zper_partition_bounds (partition, &bounds);
        assert (bounds.visible_offset == offset && bounds.durable_offset <= offset);
        assert (write (report_fd, &bounds.visible_offset, sizeof (int64_t)) == sizeof (int64_t));
    }
}

//  kill -9 of a writer that never flushes: every message readers could see
//  was in the page cache, so recovery finds it
static void
s_case_written_crash (void)
{
    char *path = s_path ("written-crash/0");
    int64_t seen = 0;
    for (int iteration = 0; iteration < WRITTEN_CRASH_ITERATIONS; iteration++) {
        int report [2];
        assert (pipe (report) == 0);
        srandom ((unsigned) (getpid () + iteration));
        pid_t child = fork ();
        assert (child >= 0);
        if (child == 0) {
            close (report [0]);
            s_written_crash_child (path, report [1]);
        }
        close (report [1]);
        int64_t before = seen;
        seen = s_crash_first_report (report [0], seen);
        int64_t run_ms = 1 + random () % CRASH_RUN_MAX_MS;
        seen = s_crash_collect (report [0], zclock_mono () + run_ms, seen);
        kill (child, SIGKILL);
        seen = s_crash_collect (report [0], zclock_mono () + 50, seen);
        int status;
        assert (waitpid (child, &status, 0) == child);
        assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        close (report [0]);
        assert (seen > before);

        zper_log_config_t config;
        s_config (&config, SMALL_SEGMENT);
        zper_partition_t *partition = zper_partition_open (path, &config);
        assert (partition);
        zper_bounds_t bounds;
        zper_partition_bounds (partition, &bounds);
        assert (bounds.durable_offset >= seen && bounds.visible_offset == bounds.durable_offset);
        assert (s_check_all (partition) == bounds.durable_offset);
        zper_partition_destroy (&partition);
    }
    printf ("written crash: %d iterations, %" PRId64 " messages seen and recovered\n",
            WRITTEN_CRASH_ITERATIONS, seen);
    assert (s_segment_count (path) > 1);
    assert (s_verify (path) == 0);
    free (path);
}

//  A reader that keeps its previous view (and a lent message of it) while
//  it reads the next one, and checks the held one again before letting go:
//  a cut of seen bytes must never change or pull them
static void *
s_holding_reader (void *argument)
{
    concurrent_t *shared = (concurrent_t *) argument;
    unsigned seed = (unsigned) (uintptr_t) &seed;
    zper_view_t *held = NULL;
    zmq_msg_t lent;
    zmq_msg_init (&lent);
    while (!shared->stop) {
        zper_bounds_t bounds;
        zper_partition_bounds (shared->partition, &bounds);
        int64_t span = bounds.visible_offset - bounds.durable_offset;
        int64_t offset = bounds.durable_offset + (span > 0? rand_r (&seed) % span: 0);
        zper_view_t *view = zper_partition_read (shared->partition, offset, 16 * 1024);
        if (!view) {
            assert (errno == ERANGE);       //  a failed sync took it back meanwhile
            continue;
        }
        zper_message_t message;
        while (zper_view_next (view, &message))
            assert (message.offset == offset++ && s_message_intact (&message));
        if (held) {
            zper_view_rewind (held);
            while (zper_view_next (held, &message))
                assert (s_message_intact (&message));
            zper_view_destroy (&held);
        }
        zmq_msg_close (&lent);
        zper_view_rewind (view);
        if (zper_view_next (view, &message))
            assert (zper_view_lend (view, message.data, message.size, &lent) == 0);
        else
            zmq_msg_init (&lent);
        held = view;
        shared->reads++;
    }
    zper_view_destroy (&held);
    zmq_msg_close (&lent);
    return NULL;
}

//  Readers hold views of written, unsynced messages while fdatasyncs fail
//  and cut the log back under them: no fault, no changed byte, and the
//  log ends consistent
static void
s_case_failed_syncs_keep_held_views_intact (void)
{
    char *path = s_path ("sync-failures/0");
    zper_log_config_t config;
    s_config (&config, 8 * 1024);
    config.visibility = ZPER_VISIBILITY_WRITTEN;
    concurrent_t shared = { .partition = zper_partition_open (path, &config) };
    assert (shared.partition);
    pthread_t threads [2];
    for (int index = 0; index < 2; index++)
        assert (pthread_create (&threads [index], NULL, s_holding_reader, &shared) == 0);
    int64_t offset = 0, failures = 0;
    for (int write = 0; write < SYNC_FAILURE_WRITES; write++) {
        int64_t batch = 1 + write % 5;
        for (int64_t index = 0; index < batch; index++, offset++)
            assert (s_append (shared.partition, offset, 0) == offset);
        assert (zper_partition_write (shared.partition) == offset);
        if (write % 3 != 2)
            continue;                   //  readers get a written tail to hold
        bool fail = write % (3 * SYNC_FAILURE_EVERY) == 2;
        zper_partition_set_fault (shared.partition, 0, fail? EIO: 0);
        int64_t durable = zper_partition_flush (shared.partition);
        zper_partition_set_fault (shared.partition, 0, 0);
        zper_bounds_t bounds;
        zper_partition_bounds (shared.partition, &bounds);
        if (fail) {
            assert (durable == -1 && errno == EIO);
            assert (bounds.end_offset == bounds.durable_offset);
            offset = bounds.end_offset;     //  offsets assigned again, to the same contents
            failures++;
        }
        else
            assert (durable == offset && bounds.durable_offset == offset);
        assert (bounds.visible_offset == bounds.end_offset);
    }
    assert (zper_partition_flush (shared.partition) == offset);
    shared.stop = true;
    for (int index = 0; index < 2; index++)
        pthread_join (threads [index], NULL);
    printf ("sync failures: %" PRId64 " failed syncs, %" PRIu64 " reads, %" PRId64 " messages\n",
            failures, shared.reads, offset);
    assert (shared.reads > 0 && failures > 0);
    assert (s_check_all (shared.partition) == offset);
    zper_partition_destroy (&shared.partition);
    assert (s_reopen_and_check (path, 8 * 1024, NULL) == offset);
    assert (s_verify (path) == 0);
    free (path);
}

//  ---- runner --------------------------------------------------------------------------

static const struct {
    const char *name;
    void (*run) (void);
} s_cases [] = {
    { "acknowledged_messages_survive_sigkill", s_case_crash },
    { "file_size_limit_fails_flush_then_recovers", s_case_file_size_limit },
    { "injected_errors_discard_undurable_messages", s_case_injected_faults },
    { "torn_tail_is_cut", s_case_torn_tail },
    { "garbage_tail_is_cut", s_case_garbage_tail },
    { "zero_filled_tail_is_cut", s_case_zero_filled_tail },
    { "flipped_bit_after_checkpoint_cuts_the_rest", s_case_flipped_bit_after_checkpoint },
    { "flipped_bit_without_checkpoint_drops_later_segments", s_case_flipped_bit_without_checkpoint },
    { "clean_restart_reads_no_record", s_case_clean_restart_reads_no_record },
    { "crash_recovery_scans_from_checkpoint", s_case_crash_recovery_scans_from_checkpoint },
    { "untrusted_index_is_rebuilt", s_case_untrusted_index_is_rebuilt },
    { "corrupt_checkpoint_means_full_scan", s_case_corrupt_checkpoint_means_full_scan },
    { "rolls_never_split_a_record", s_case_roll_boundaries },
    { "time_lookups_find_first_message_at_or_after", s_case_time_lookups },
    { "retention_keeps_held_views_readable", s_case_retention_with_held_reader },
    { "bad_names_are_refused", s_case_bad_names_are_refused },
    { "readers_run_during_appends_and_retention", s_case_concurrent_readers_and_retention },
    { "written_messages_survive_sigkill", s_case_written_crash },
    { "failed_syncs_keep_held_views_intact", s_case_failed_syncs_keep_held_views_intact },
    { NULL, NULL }
};

int
main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "usage: zper_log_test CASE ZPER_CLI\n");
        return 2;
    }
    s_cli = argv [2];
    for (int index = 0; s_cases [index].name; index++)
        if (streq (argv [1], s_cases [index].name)) {
            snprintf (s_folder, sizeof s_folder, "/tmp/zper-log-test-XXXXXX");
            assert (mkdtemp (s_folder));
            s_cases [index].run ();
            char *command = zsys_sprintf ("rm -rf %s", s_folder);
            int rc = system (command);
            free (command);
            zsys_shutdown ();
            return rc == 0? 0: 1;
        }
    fprintf (stderr, "zper_log_test: unknown case '%s'\n", argv [1]);
    return 2;
}
