/*  =========================================================================
    zper_recovery - the checkpoint of a partition, and its recovery at open

    The one thing to know: the checkpoint only ever names the durable end,
    and recovery trusts a file's bytes only as far as they validate, so it
    keeps every whole record that reached the segment file, synced or not:
    after a crash of the process nothing written is lost, whatever the
    visibility readers had (docs/storage.md, "Visibility").

    CHECKPOINT FILE (72 bytes, little-endian, replaced by rename):
        0..3    magic            0x4B43505A, "ZPCK" on disk
        4..7    crc              CRC-32C of bytes 8..71
        8..11   version          1
        12..15  flags            bit 0: clean shutdown
        16..23  segment          base offset of the active segment
        24..31  file_size        its size at the synced end
        32..39  next_offset      durable_offset at the synced end
        40..47  next_position    durable_position at the synced end
        48..55  index_size       its .index and .timeindex sizes, synced too
        56..63  timeindex_size
        64..71  last_timestamp   of the last durable message, -1 if none
    Written (clean = 0) right after open (unless recovery adopted it, below),
    before the first record write after a clean one, after a roll, every
    ZPER_LOG_CHECKPOINT_BYTES of synced records; and (clean = 1) by a clean
    close, after the last flush, unless the one on disk already names the
    end of the files (then recovery adopts it as it is: a partition of a
    log with many topics opens and closes without writing a byte).

    RECOVERY (zper_partition_open -> zper_recovery_load)

      zper_segment_list ----> s_checkpoint_read ----> s_recovery_start
                                                          |
    active segment sizes match (clean flag, or nothing written after it), earlier indexes trusted?
                 | yes                                    | no
                 v                                        v
           s_open_active: adopt               s_recover: scan from the checkpoint's synced
           the checkpoint                     end (or from the first earlier segment whose
           (reads no record)                  index is not trusted, or from the first
                 |                            segment without a checkpoint); cut at the first
                 |                            bad record; drop every later segment; rebuild
                 |                            index entries past that point
                 v                                        v
              zper_recovery_checkpoint_write (clean = 0): from now on a crash is noticed
              (after an adoption: before the first record write, s_write_batch_locked)
    ========================================================================= */

#include "zper_partition_internal.h"
#include "zper_crc32c.h"
#include "zper_le.h"
#include <inttypes.h>

#define CHECKPOINT_NAME         "checkpoint"
#define CHECKPOINT_TEMPORARY    "checkpoint.tmp"
#define CHECKPOINT_MAGIC        0x4B43505Au
#define CHECKPOINT_VERSION      1
#define CHECKPOINT_SIZE         72
#define CHECKPOINT_CLEAN        0x01

typedef struct {
    bool clean;
    int64_t segment;
    uint64_t file_size;
    int64_t next_offset;
    int64_t next_position;
    uint64_t index_size;
    uint64_t timeindex_size;
    int64_t last_timestamp;
} checkpoint_t;

//  ---- checkpoint ------------------------------------------------------------

static int
s_checkpoint_read (zper_partition_t *self, checkpoint_t *checkpoint)
{
    char *path = zsys_sprintf ("%s/" CHECKPOINT_NAME, self->path);
    uint8_t bytes [CHECKPOINT_SIZE];
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    free (path);
    ssize_t got = fd >= 0? read (fd, bytes, sizeof bytes): -1;
    if (fd >= 0)
        close (fd);
    if (got != CHECKPOINT_SIZE
    ||  zper_le_get32 (bytes) != CHECKPOINT_MAGIC
    ||  zper_le_get32 (bytes + 4) != zper_crc32c (bytes + 8, CHECKPOINT_SIZE - 8)
    ||  zper_le_get32 (bytes + 8) != CHECKPOINT_VERSION)
        return -1;
    checkpoint->clean = (zper_le_get32 (bytes + 12) & CHECKPOINT_CLEAN) != 0;
    checkpoint->segment = (int64_t) zper_le_get64 (bytes + 16);
    checkpoint->file_size = zper_le_get64 (bytes + 24);
    checkpoint->next_offset = (int64_t) zper_le_get64 (bytes + 32);
    checkpoint->next_position = (int64_t) zper_le_get64 (bytes + 40);
    checkpoint->index_size = zper_le_get64 (bytes + 48);
    checkpoint->timeindex_size = zper_le_get64 (bytes + 56);
    checkpoint->last_timestamp = (int64_t) zper_le_get64 (bytes + 64);
    if (checkpoint->next_offset < checkpoint->segment || checkpoint->next_position < 0)
        return -1;
    return 0;
}

int
zper_recovery_checkpoint_write (zper_partition_t *self, bool clean)
{
    zper_segment_t *active = self->segments [self->durable.segment_count - 1];
    if (zper_segment_sync_indexes (active))
        return -1;
    uint8_t bytes [CHECKPOINT_SIZE];
    zper_le_put32 (bytes, CHECKPOINT_MAGIC);
    zper_le_put32 (bytes + 8, CHECKPOINT_VERSION);
    zper_le_put32 (bytes + 12, clean? CHECKPOINT_CLEAN: 0);
    zper_le_put64 (bytes + 16, (uint64_t) zper_segment_base_offset (active));
    zper_le_put64 (bytes + 24, self->durable.file_size);
    zper_le_put64 (bytes + 32, (uint64_t) self->durable.offset);
    zper_le_put64 (bytes + 40, (uint64_t) self->durable.position);
    zper_le_put64 (bytes + 48, self->durable.index_size);
    zper_le_put64 (bytes + 56, self->durable.timeindex_size);
    zper_le_put64 (bytes + 64, (uint64_t) self->durable.timestamp);
    zper_le_put32 (bytes + 4, zper_crc32c (bytes + 8, CHECKPOINT_SIZE - 8));

    char *temporary = zsys_sprintf ("%s/" CHECKPOINT_TEMPORARY, self->path);
    char *final = zsys_sprintf ("%s/" CHECKPOINT_NAME, self->path);
    int rc = -1;
    int fd = open (temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        rc = write (fd, bytes, sizeof bytes) == (ssize_t) sizeof bytes? 0: -1;
        if (rc == 0 && self->fault_sync_errno) {
            errno = self->fault_sync_errno;
            rc = -1;
        }
        if (rc == 0)
            rc = fdatasync (fd);
        int saved = errno;
        close (fd);
        errno = saved;
    }
    if (rc == 0)
        rc = rename (temporary, final);
    if (rc == 0)
        rc = s_sync_directory (self->path);
    if (rc == 0) {
        self->checkpoint_bytes = 0;
        self->checkpoint_clean = clean;
        self->checkpoint_exact = self->written.offset == self->durable.offset;
    }
    free (temporary);
    free (final);
    return rc;
}

//  ---- opening and recovery --------------------------------------------------

static void
s_index_on_record (const zper_record_t *record, void *argument)
{
    zper_segment_t *segment = (zper_segment_t *) argument;
    //  A failed index write leaves the index short: the next open rebuilds it
    if (zper_segment_index_record (segment, record))
        zsys_warning ("zper log: cannot write index of %s: %s",
                      zper_segment_path (segment), strerror (errno));
}

//  Take the end of recovery as the written, visible and durable end, the
//  last segment active: everything recovery kept is on disk
static void
s_set_durable (zper_partition_t *self, int64_t offset, int64_t position, int64_t timestamp)
{
    self->end_offset = offset;
    self->end_position = position;
    self->end_timestamp = timestamp;
    s_end_of_active (self, offset, position, timestamp, &self->durable);
    self->visible = self->published = self->written = self->durable;
}

//  Scan segments from number first on, starting at file_position with
//  the given expectations; cut at the first bad record and drop what
//  follows it; rebuild index entries past index_size/timeindex_size.
static int
s_recover (zper_partition_t *self, size_t first, uint64_t file_position, int64_t next_offset,
           int64_t next_position, int64_t last_timestamp, uint64_t index_size,
           uint64_t timeindex_size)
{
    for (size_t number = first; number < self->segment_count; number++) {
        zper_segment_t *segment = self->segments [number];
        if (number > first && zper_segment_base_offset (segment) != next_offset) {
            zsys_warning ("zper log: %s does not follow offset %" PRId64 ": dropped",
                          zper_segment_path (segment), next_offset);
            s_segments_drop_from (self, number);
            break;
        }
        if (number > first)
            zper_segment_set_base_position (segment, next_position);
        if (zper_segment_truncate (segment, zper_segment_file_size (segment), index_size,
                                   timeindex_size, next_offset, last_timestamp))
            return -1;
        zper_scan_t scan;
        if (zper_segment_scan (segment, file_position, next_offset, next_position, last_timestamp,
                               s_index_on_record, segment, &scan))
            return -1;
        zper_segment_unmap (segment);
        self->recovery_bytes += scan.bytes_scanned;
        next_offset = scan.next_offset;
        next_position = scan.next_position;
        last_timestamp = scan.last_timestamp;
        if (scan.status != ZPER_RECORD_END) {
            zsys_warning ("zper log: %s: %s at byte %" PRIu64 " (offset %" PRId64
                          "): log truncated there", zper_segment_path (segment),
                          zper_record_status_text (scan.status), scan.valid_size, next_offset);
            if (zper_segment_truncate (segment, scan.valid_size, zper_segment_index_size (segment),
                                       zper_segment_timeindex_size (segment), next_offset,
                                       last_timestamp)
            ||  zper_segment_sync (segment))
                return -1;
            s_segments_drop_from (self, number + 1);
            break;
        }
        if (number + 1 < self->segment_count && zper_segment_seal (segment))
            return -1;
        file_position = 0;
        index_size = timeindex_size = 0;
    }
    if (s_sync_directory (self->path))
        return -1;
    if (next_position < 0)
        next_position = 0;              //  an empty first segment without index or checkpoint
    //  The active segment may have been sealed above: open it for writing
    zper_segment_t *active = s_active (self);
    if (zper_segment_truncate (active, zper_segment_file_size (active),
                               zper_segment_index_size (active),
                               zper_segment_timeindex_size (active), next_offset, last_timestamp))
        return -1;
    if (zper_segment_file_size (active) == 0)
        zper_segment_set_base_position (active, next_position);
    s_set_durable (self, next_offset, next_position, last_timestamp);
    return 0;
}

//  Where recovery must start: the first sealed segment whose indexes are
//  not trusted, else the checkpoint's synced end, else the first segment.
//  Returns the segment number, segment_count if the checkpoint can be
//  adopted as it is (a clean shutdown).
static size_t
s_recovery_start (zper_partition_t *self, const checkpoint_t *checkpoint, bool have_checkpoint)
{
    size_t last = self->segment_count - 1;
    //  Recovery scans from the checkpoint's segment on; without one, from the first
    size_t named = 0;
    bool found = false;
    for (size_t number = 0; have_checkpoint && number <= last; number++)
        if (zper_segment_base_offset (self->segments [number]) == checkpoint->segment) {
            named = number;
            found = true;
        }
    //  Segments before it are only read if their indexes cannot be trusted
    for (size_t number = 0; number < named; number++)
        if (!zper_segment_indexes_trusted (self->segments [number]))
            return number;
    zper_segment_t *active = self->segments [last];
    //  Sizes that match say the files end where the checkpoint does, clean
    //  or not: the checkpoint named the synced end of every record written
    //  then, and nothing was written after it
    if (found && named == last
    &&  zper_segment_file_size (active) == checkpoint->file_size
    &&  zper_segment_index_size (active) == checkpoint->index_size
    &&  zper_segment_timeindex_size (active) == checkpoint->timeindex_size)
        return self->segment_count;
    return named;
}

static int
    s_open_active (zper_partition_t *self, size_t start, const checkpoint_t *checkpoint,
                   bool have_checkpoint);

//  Legacy position after the last record of a sealed, trusted segment:
//  a bounded scan from its last index entry; -1 if it cannot be read
static int64_t
s_end_position (zper_segment_t *segment)
{
    zper_index_entry_t entry;
    zper_scan_t scan;
    uint64_t entries = zper_segment_index_size (segment) / ZPER_INDEX_ENTRY_SIZE;
    if (zper_segment_index_find (segment, false, INT64_MAX, entries, &entry)
    ||  zper_segment_scan (segment, entry.file_position, entry.offset, entry.position, -1,
                           NULL, NULL, &scan))
        return -1;
    return scan.next_position;
}

int
zper_recovery_load (zper_partition_t *self)
{
    zper_segment_remove_copies (self->path);
    size_t count;
    int64_t *offsets = zper_segment_list (self->path, &count);
    if (!offsets)
        return -1;
    checkpoint_t checkpoint = { 0 };
    bool have_checkpoint = s_checkpoint_read (self, &checkpoint) == 0;
    for (size_t index = 0; index < count; index++) {
        bool named = have_checkpoint && offsets [index] == checkpoint.segment;
        zper_segment_t *segment = zper_segment_load (self->path, offsets [index],
                                      named && checkpoint.file_size == 0? checkpoint.next_position: -1,
                                      ZPER_LOG_INDEX_INTERVAL_BYTES);
        if (!segment) {
            free (offsets);
            return -1;
        }
        s_segments_push (self, segment);
    }
    free (offsets);
    if (self->segment_count == 0) {
        //  A new partition: nothing is durable yet, so nothing needs a
        //  checkpoint or a synced folder until the first sync, which does
        //  both (rolled): a topic costs no fsync before its first write
        zper_segment_t *segment = zper_segment_create (self->path, 0, 0, ZPER_LOG_INDEX_INTERVAL_BYTES);
        if (!segment)
            return -1;
        s_segments_push (self, segment);
        s_set_durable (self, 0, 0, -1);
        self->rolled = true;
        self->checkpoint_exact = true;
        return 0;
    }
    size_t start = s_recovery_start (self, &checkpoint, have_checkpoint);
    int rc = s_open_active (self, start, &checkpoint, have_checkpoint);
    //  Descriptors and mappings of the checks: one set per segment is too many to keep
    for (size_t number = 0; number < self->segment_count; number++)
        zper_segment_unmap (self->segments [number]);
    return rc;
}

//  Adopt the checkpoint (start == segment_count) or recover from start
static int
s_open_active (zper_partition_t *self, size_t start, const checkpoint_t *checkpoint,
               bool have_checkpoint)
{
    if (start == self->segment_count) {
        //  Clean shutdown: adopt the checkpoint, read no record
        zper_segment_t *active = s_active (self);
        if (zper_segment_truncate (active, checkpoint->file_size, checkpoint->index_size,
                                   checkpoint->timeindex_size, checkpoint->next_offset,
                                   checkpoint->last_timestamp))
            return -1;
        s_set_durable (self, checkpoint->next_offset, checkpoint->next_position,
                       checkpoint->last_timestamp);
        self->checkpoint_exact = true;
        self->checkpoint_clean = checkpoint->clean;
        return 0;
    }
    zper_segment_t *segment = self->segments [start];
    bool from_checkpoint = have_checkpoint && zper_segment_base_offset (segment) == checkpoint->segment
                        && zper_segment_file_size (segment) >= checkpoint->file_size
                        && zper_segment_index_size (segment) >= checkpoint->index_size
                        && zper_segment_timeindex_size (segment) >= checkpoint->timeindex_size;
    if (from_checkpoint)
        return s_recover (self, start, checkpoint->file_size, checkpoint->next_offset,
                          checkpoint->next_position, checkpoint->last_timestamp,
                          checkpoint->index_size, checkpoint->timeindex_size);
    int64_t last_timestamp = -1;
    int64_t position = zper_segment_base_position (segment);
    if (start > 0) {
        zper_segment_t *previous = self->segments [start - 1];
        last_timestamp = zper_segment_last_timestamp (previous);
        if (position < 0)
            position = s_end_position (previous);
    }
    //  A position still unknown (-1) takes the first record's
    return s_recover (self, start, 0, zper_segment_base_offset (segment), position,
                      last_timestamp, 0, 0);
}
