/*  =========================================================================
    zper_segment - the on-disk format of the log: records, indexes, mappings

    A partition folder holds, per segment, three files named by the
    segment's first logical offset (20 decimal digits):

        00000000000000004096.log        records, back to back
        00000000000000004096.index      sparse offset index
        00000000000000004096.timeindex  sparse time index

    plus one `checkpoint` file (its layout is in zper_recovery.c).

    RECORD (a batch of one or more messages). Integers little-endian.

        bytes   field            meaning
        0..3    magic            0x3152505A, "ZPR1" on disk: format version 1
        4..7    crc              CRC-32C of bytes 8..39 and the payload
        8..11   payload_size     bytes of payload, >= 2 * message_count
        12..15  message_count    >= 1
        16..23  base_offset      logical offset of the first message
        24..31  base_position    legacy byte position of the first message
        32..39  timestamp        ms since the epoch; every message of the record
                                 carries it (the newest append time of the batch)
        40..    payload          the messages' ZMTP/2.0 encodings, concatenated

    The payload IS the legacy byte stream: message k of the record starts at
    legacy position base_position + (bytes of messages 0..k-1), and a legacy
    FETCH serves these bytes as they are.

    INDEX ENTRY (24 bytes): offset:int64, position:int64, file_position:uint64
    of a record start. TIME ENTRY (16 bytes): timestamp:int64, offset:int64:
    the message at offset has that timestamp.

    INVARIANTS
    (1) In a segment, record k+1 starts where record k ends; its base_offset
        is record k's base_offset + message_count and its base_position is
        record k's base_position + payload_size. The first record's
        base_offset is the segment's name. Across segments the same holds:
        segment n+1 is named by the offset that follows segment n's last.
    (2) Timestamps never decrease along a partition (appends store
        max(previous, given)), so both indexes are sorted by every field and
        lookups binary-search them.
    (3) A record is never split across segments. A segment rolls when the
        next record would take it past segment_size; batches are sealed
        before they outgrow a segment, so only a record of one message larger
        than segment_size is larger than a segment, and it is alone in its segment.
    (4) The first record of a segment always has an index entry and a time
        entry; then one of each per index_interval bytes of records. A sealed
        segment's last time entry is its newest timestamp (written at seal).
    (5) Index entries only ever point at record starts inside the file;
        when a file is cut back, its indexes are cut back with it.
    (6) Bytes below a partition's visible end (what readers may have seen:
        the written or the durable end) never change while the file exists,
        so a read-only mapping of them may be read without locks. A cut below
        the visible end (a failed sync) gives the segment a new file
        (zper_segment_cut_by_copy) and leaves the old one as it was.
        Mappings are reference counted: unlinking a file never pulls bytes
        from under a reader that still holds a mapping.
    (7) A record is accepted (scan, read) only if its magic, lengths, CRC,
        sequence (1) and message framing all check; readers verify the CRC
        of every record they serve.
    ========================================================================= */

#include "zper_segment.h"
#include "zper_crc32c.h"
#include "zper_le.h"
#include "zper_zmtp.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <czmq.h>
#include <dirent.h>

//  Field offsets in a record header
#define HEADER_MAGIC            0
#define HEADER_CRC              4
#define HEADER_PAYLOAD_SIZE     8
#define HEADER_MESSAGE_COUNT    12
#define HEADER_BASE_OFFSET      16
#define HEADER_BASE_POSITION    24
#define HEADER_TIMESTAMP        32
#define HEADER_CRC_FROM         8           //  the CRC covers the header from here on

//  The shortest ZMTP/2.0 message is one empty short frame
#define MESSAGE_SIZE_MIN        2

struct _zper_mapping_t {
    uint8_t *data;
    uint64_t size;
    int references;                         //  atomic
};

struct _zper_segment_t {
    char *log_path;
    char *index_path;
    char *timeindex_path;
    int64_t base_offset;
    int64_t base_position;
    uint64_t index_interval;                //  bytes of records between index entries
    //  Writing side, owned by the partition's writer (-1 when sealed, or
    //  while a writable segment's files are closed to save descriptors)
    bool writable;                          //  active: not sealed
    int data_fd;
    int index_fd;
    int timeindex_fd;
    uint64_t file_size;
    uint64_t index_size;
    uint64_t timeindex_size;
    uint64_t last_indexed_position;         //  file position of the last index entry
    int64_t next_offset;                    //  after the last record, or -1 if unknown
    int64_t last_timestamp;                 //  of the last record, -1 if none
    int64_t last_time_entry_offset;         //  offset of the last time entry, -1 if none
    //  Reading side, used under the partition's state lock
    int index_read_fd;
    int timeindex_read_fd;
    zper_mapping_t *mapping;
};

//  ---- records -------------------------------------------------------------

void
zper_record_encode_header (const zper_record_t *record, const void *payload, uint8_t *header)
{
    zper_le_put32 (header + HEADER_MAGIC, ZPER_RECORD_MAGIC);
    zper_le_put32 (header + HEADER_PAYLOAD_SIZE, record->payload_size);
    zper_le_put32 (header + HEADER_MESSAGE_COUNT, record->message_count);
    zper_le_put64 (header + HEADER_BASE_OFFSET, (uint64_t) record->base_offset);
    zper_le_put64 (header + HEADER_BASE_POSITION, (uint64_t) record->base_position);
    zper_le_put64 (header + HEADER_TIMESTAMP, (uint64_t) record->timestamp);
    uint32_t crc = zper_crc32c (header + HEADER_CRC_FROM, ZPER_RECORD_HEADER_SIZE - HEADER_CRC_FROM);
    crc = zper_crc32c_extend (crc, payload, record->payload_size);
    zper_le_put32 (header + HEADER_CRC, crc);
}

zper_record_status_t
zper_record_decode (const uint8_t *data, uint64_t available, zper_record_t *record)
{
    if (available == 0)
        return ZPER_RECORD_END;
    if (available >= sizeof (uint32_t) && zper_le_get32 (data + HEADER_MAGIC) != ZPER_RECORD_MAGIC)
        return ZPER_RECORD_BAD_MAGIC;
    if (available < ZPER_RECORD_HEADER_SIZE)
        return ZPER_RECORD_TORN;
    record->payload_size = zper_le_get32 (data + HEADER_PAYLOAD_SIZE);
    record->message_count = zper_le_get32 (data + HEADER_MESSAGE_COUNT);
    record->base_offset = (int64_t) zper_le_get64 (data + HEADER_BASE_OFFSET);
    record->base_position = (int64_t) zper_le_get64 (data + HEADER_BASE_POSITION);
    record->timestamp = (int64_t) zper_le_get64 (data + HEADER_TIMESTAMP);
    record->payload = data + ZPER_RECORD_HEADER_SIZE;
    if (record->message_count == 0 || record->payload_size > ZPER_LOG_RECORD_MAX_BYTES
    ||  record->payload_size / MESSAGE_SIZE_MIN < record->message_count
    ||  record->base_offset < 0 || record->base_position < 0)
        return ZPER_RECORD_BAD_LENGTH;
    if (record->payload_size > available - ZPER_RECORD_HEADER_SIZE)
        return ZPER_RECORD_TORN;
    return ZPER_RECORD_OK;
}

zper_record_status_t
zper_record_verify (const zper_record_t *record, const uint8_t *header)
{
    uint32_t crc = zper_crc32c (header + HEADER_CRC_FROM, ZPER_RECORD_HEADER_SIZE - HEADER_CRC_FROM);
    crc = zper_crc32c_extend (crc, record->payload, record->payload_size);
    if (crc != zper_le_get32 (header + HEADER_CRC))
        return ZPER_RECORD_BAD_CRC;
    const uint8_t *cursor = record->payload;
    const uint8_t *end = cursor + record->payload_size;
    for (uint32_t index = 0; index < record->message_count; index++) {
        int64_t length = zper_zmtp_message_length (cursor, (size_t) (end - cursor), NULL);
        if (length < 0)
            return ZPER_RECORD_BAD_MESSAGES;
        cursor += length;
    }
    return cursor == end? ZPER_RECORD_OK: ZPER_RECORD_BAD_MESSAGES;
}

const char *
zper_record_status_text (zper_record_status_t status)
{
    switch (status) {
        case ZPER_RECORD_OK:            return "valid record";
        case ZPER_RECORD_END:           return "end of file";
        case ZPER_RECORD_TORN:          return "torn record (runs past the end of the file)";
        case ZPER_RECORD_BAD_MAGIC:     return "no record header (garbage or zero-filled bytes)";
        case ZPER_RECORD_BAD_LENGTH:    return "impossible record length or message count";
        case ZPER_RECORD_BAD_CRC:       return "CRC-32C mismatch";
        case ZPER_RECORD_BAD_SEQUENCE:  return "offset, position or timestamp does not continue the log";
        case ZPER_RECORD_BAD_MESSAGES:  return "payload is not whole ZMTP/2.0 messages";
    }
    return "unknown status";
}

//  ---- mappings ------------------------------------------------------------

static zper_mapping_t *
s_mapping_new (int fd, uint64_t size)
{
    if (size == 0 || size > SIZE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    void *data = mmap (NULL, (size_t) size, PROT_READ, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED)
        return NULL;
    zper_mapping_t *self = (zper_mapping_t *) zmalloc (sizeof (zper_mapping_t));
    self->data = (uint8_t *) data;
    self->size = size;
    self->references = 1;
    return self;
}

zper_mapping_t *
zper_mapping_ref (zper_mapping_t *self)
{
    assert (self);
    __atomic_add_fetch (&self->references, 1, __ATOMIC_RELAXED);
    return self;
}

void
zper_mapping_unref (zper_mapping_t **self_p)
{
    assert (self_p);
    zper_mapping_t *self = *self_p;
    if (self && __atomic_sub_fetch (&self->references, 1, __ATOMIC_ACQ_REL) == 0) {
        munmap (self->data, (size_t) self->size);
        free (self);
    }
    *self_p = NULL;
}

const uint8_t *
zper_mapping_data (zper_mapping_t *self)
{
    return self->data;
}

uint64_t
zper_mapping_size (zper_mapping_t *self)
{
    return self->size;
}

//  ---- file helpers --------------------------------------------------------

//  pwrite all of size bytes, or -1 with errno (a short write that makes
//  no progress is ENOSPC, as the kernel would say on the next call)
static int
s_write_all (int fd, const void *data, size_t size, uint64_t at)
{
    const uint8_t *source = (const uint8_t *) data;
    while (size > 0) {
        ssize_t written = pwrite (fd, source, size, (off_t) at);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -1;
        if (written == 0) {
            errno = ENOSPC;
            return -1;
        }
        source += written;
        size -= (size_t) written;
        at += (uint64_t) written;
    }
    return 0;
}

static int
s_read_all (int fd, void *data, size_t size, uint64_t at)
{
    uint8_t *target = (uint8_t *) data;
    while (size > 0) {
        ssize_t got = pread (fd, target, size, (off_t) at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;            //  shorter than it said: cut under us
            return -1;
        }
        target += got;
        size -= (size_t) got;
        at += (uint64_t) got;
    }
    return 0;
}

static uint64_t
s_file_size (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0? (uint64_t) status.st_size: 0;
}

static void
s_close (int *fd_p)
{
    if (*fd_p >= 0)
        close (*fd_p);
    *fd_p = -1;
}

static void
s_decode_index_entry (const uint8_t *bytes, zper_index_entry_t *entry)
{
    entry->offset = (int64_t) zper_le_get64 (bytes);
    entry->position = (int64_t) zper_le_get64 (bytes + 8);
    entry->file_position = zper_le_get64 (bytes + 16);
}

//  ---- segments ------------------------------------------------------------

static int
s_compare_offsets (const void *first, const void *second)
{
    int64_t a = *(const int64_t *) first, b = *(const int64_t *) second;
    return a < b? -1: a > b;
}

//  True if name is a segment's base offset (20 digits) followed by suffix
static bool
s_segment_file_name (const char *name, const char *suffix)
{
    return strlen (name) == ZPER_SEGMENT_NAME_DIGITS + strlen (suffix)
        && strspn (name, "0123456789") == ZPER_SEGMENT_NAME_DIGITS
        && strcmp (name + ZPER_SEGMENT_NAME_DIGITS, suffix) == 0;
}

int64_t *
zper_segment_list (const char *path, size_t *count)
{
    DIR *directory = opendir (path);
    if (!directory)
        return NULL;
    size_t capacity = 16;
    int64_t *offsets = (int64_t *) malloc (capacity * sizeof (int64_t));
    assert (offsets);
    *count = 0;
    struct dirent *entry;
    while ((entry = readdir (directory))) {
        const char *name = entry->d_name;
        if (!s_segment_file_name (name, ".log"))
            continue;
        errno = 0;
        long long offset = strtoll (name, NULL, 10);
        if (errno)
            continue;                   //  beyond int64: never a name we wrote
        if (*count == capacity) {
            capacity *= 2;
            offsets = (int64_t *) realloc (offsets, capacity * sizeof (int64_t));
            assert (offsets);
        }
        offsets [(*count)++] = offset;
    }
    closedir (directory);
    qsort (offsets, *count, sizeof (int64_t), s_compare_offsets);
    return offsets;
}

void
zper_segment_remove_copies (const char *dir)
{
    DIR *directory = opendir (dir);
    if (!directory)
        return;                         //  then zper_segment_list fails and says why
    struct dirent *entry;
    while ((entry = readdir (directory)))
        if (s_segment_file_name (entry->d_name, ".log" ZPER_SEGMENT_COPY_SUFFIX))
            unlinkat (dirfd (directory), entry->d_name, 0);
    closedir (directory);
}

static zper_segment_t *
s_segment_new (const char *dir, int64_t base_offset, uint64_t index_interval)
{
    zper_segment_t *self = (zper_segment_t *) zmalloc (sizeof (zper_segment_t));
    self->log_path = zsys_sprintf ("%s/%020" PRId64 ".log", dir, base_offset);
    self->index_path = zsys_sprintf ("%s/%020" PRId64 ".index", dir, base_offset);
    self->timeindex_path = zsys_sprintf ("%s/%020" PRId64 ".timeindex", dir, base_offset);
    self->base_offset = base_offset;
    self->index_interval = index_interval;
    self->data_fd = self->index_fd = self->timeindex_fd = -1;
    self->index_read_fd = self->timeindex_read_fd = -1;
    self->next_offset = -1;
    self->last_timestamp = -1;
    self->last_time_entry_offset = -1;
    return self;
}

//  Open the three files for writing (creating the indexes if missing)
static int
s_open_for_writing (zper_segment_t *self, int data_flags)
{
    if (self->data_fd >= 0)
        return 0;
    self->data_fd = open (self->log_path, O_RDWR | O_CLOEXEC | data_flags, 0644);
    if (self->data_fd >= 0)
        self->index_fd = open (self->index_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->index_fd >= 0)
        self->timeindex_fd = open (self->timeindex_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->timeindex_fd >= 0) {
        self->writable = true;
        return 0;
    }
    int saved = errno;
    s_close (&self->data_fd);
    s_close (&self->index_fd);
    errno = saved;
    return -1;
}

//  The writing descriptors of a writable segment, reopened if
//  zper_segment_close_files closed them. 0, or -1 with errno (EBADF if the
//  segment is sealed, EMFILE when the process is out of descriptors).
static int
s_writer (zper_segment_t *self)
{
    if (self->data_fd >= 0)
        return 0;
    if (!self->writable) {
        errno = EBADF;
        return -1;
    }
    return s_open_for_writing (self, 0);
}

int
zper_segment_writer_open (zper_segment_t *self)
{
    return self->writable? s_writer (self): 0;
}

zper_segment_t *
zper_segment_create (const char *dir, int64_t base_offset, int64_t base_position,
                     uint64_t index_interval)
{
    zper_segment_t *self = s_segment_new (dir, base_offset, index_interval);
    self->base_position = base_position;
    self->next_offset = base_offset;
    if (s_open_for_writing (self, O_CREAT | O_EXCL)
    ||  ftruncate (self->index_fd, 0) || ftruncate (self->timeindex_fd, 0)) {
        int saved = errno;
        if (saved != EEXIST)            //  then the file is ours (O_EXCL): leave nothing behind
            zper_segment_remove (self);
        zper_segment_destroy (&self);
        errno = saved;
    }
    return self;
}

zper_segment_t *
zper_segment_load (const char *dir, int64_t base_offset, int64_t fallback_position,
                   uint64_t index_interval)
{
    zper_segment_t *self = s_segment_new (dir, base_offset, index_interval);
    struct stat status;
    if (stat (self->log_path, &status)) {
        zper_segment_destroy (&self);
        return NULL;
    }
    self->file_size = (uint64_t) status.st_size;
    self->index_size = s_file_size (self->index_path);
    self->timeindex_size = s_file_size (self->timeindex_path);
    self->base_position = fallback_position;
    if (self->index_size >= ZPER_INDEX_ENTRY_SIZE) {
        zper_index_entry_t first;
        if (zper_segment_index_find (self, false, base_offset, 1, &first) == 0
        &&  first.offset == base_offset)
            self->base_position = first.position;
    }
    return self;
}

void
zper_segment_destroy (zper_segment_t **self_p)
{
    assert (self_p);
    zper_segment_t *self = *self_p;
    if (self) {
        s_close (&self->data_fd);
        s_close (&self->index_fd);
        s_close (&self->timeindex_fd);
        zper_segment_unmap (self);
        free (self->log_path);
        free (self->index_path);
        free (self->timeindex_path);
        free (self);
        *self_p = NULL;
    }
}

int
zper_segment_remove (zper_segment_t *self)
{
    int rc = 0;
    if (unlink (self->log_path) && errno != ENOENT)
        rc = -1;
    if (unlink (self->index_path) && errno != ENOENT)
        rc = -1;
    if (unlink (self->timeindex_path) && errno != ENOENT)
        rc = -1;
    return rc;
}

void
zper_segment_set_base_position (zper_segment_t *self, int64_t base_position)
{
    self->base_position = base_position;
}

int64_t
zper_segment_base_offset (zper_segment_t *self)
{
    return self->base_offset;
}

int64_t
zper_segment_base_position (zper_segment_t *self)
{
    return self->base_position;
}

uint64_t
zper_segment_file_size (zper_segment_t *self)
{
    return self->file_size;
}

uint64_t
zper_segment_index_size (zper_segment_t *self)
{
    return self->index_size;
}

uint64_t
zper_segment_timeindex_size (zper_segment_t *self)
{
    return self->timeindex_size;
}

const char *
zper_segment_path (zper_segment_t *self)
{
    return self->log_path;
}

int
zper_segment_index_record (zper_segment_t *self, const zper_record_t *record)
{
    if (s_writer (self))
        return -1;
    if (self->index_size == 0
    ||  record->file_position - self->last_indexed_position >= self->index_interval) {
        uint8_t entry [ZPER_INDEX_ENTRY_SIZE];
        zper_le_put64 (entry, (uint64_t) record->base_offset);
        zper_le_put64 (entry + 8, (uint64_t) record->base_position);
        zper_le_put64 (entry + 16, record->file_position);
        uint8_t time_entry [ZPER_TIME_ENTRY_SIZE];
        zper_le_put64 (time_entry, (uint64_t) record->timestamp);
        zper_le_put64 (time_entry + 8, (uint64_t) record->base_offset);
        if (s_write_all (self->index_fd, entry, sizeof entry, self->index_size)
        ||  s_write_all (self->timeindex_fd, time_entry, sizeof time_entry, self->timeindex_size))
            return -1;
        self->index_size += sizeof entry;
        self->timeindex_size += sizeof time_entry;
        self->last_indexed_position = record->file_position;
        self->last_time_entry_offset = record->base_offset;
    }
    if (record->file_position == 0)
        self->base_position = record->base_position;
    self->next_offset = record->base_offset + record->message_count;
    self->last_timestamp = record->timestamp;
    return 0;
}

int
zper_segment_append (zper_segment_t *self, zper_record_t *record, const void *payload,
                     int fail_errno)
{
    if (s_writer (self))
        return -1;
    uint8_t header [ZPER_RECORD_HEADER_SIZE];
    zper_record_encode_header (record, payload, header);
    record->file_position = self->file_size;
    uint64_t total = ZPER_RECORD_HEADER_SIZE + (uint64_t) record->payload_size;
    if (fail_errno) {
        //  Test hook: leave a torn record behind, as a full disk would
        if (s_write_all (self->data_fd, header, sizeof header, self->file_size) == 0)
            self->file_size += sizeof header;
        errno = fail_errno;
        return -1;
    }
    struct iovec parts [2] = {
        { header, sizeof header }, { (void *) payload, record->payload_size }
    };
    ssize_t written = pwritev (self->data_fd, parts, 2, (off_t) self->file_size);
    if (written >= 0 && (uint64_t) written < total) {
        //  A short write (a file size limit, a full disk): finish or fail
        uint64_t done = (uint64_t) written;
        uint64_t at = self->file_size + done;
        int rc = 0;
        if (done < sizeof header) {
            rc = s_write_all (self->data_fd, header + done, sizeof header - done, at);
            at += sizeof header - done;
            done = sizeof header;
        }
        if (rc == 0)
            rc = s_write_all (self->data_fd, (const uint8_t *) payload + (done - sizeof header),
                              total - done, at);
        written = rc == 0? (ssize_t) total: -1;
    }
    if (written < 0)
        return -1;
    self->file_size += total;
    return zper_segment_index_record (self, record);
}

//  Every data sync of the process, for STATS: atomics, so that timing a
//  sync costs two clock reads and three additions, no lock. A bucket
//  counts the syncs above the bound before it, up to its own; the snapshot
//  makes them cumulative.
static const int64_t s_sync_bounds_us [ZPER_SYNC_HISTOGRAM_BUCKETS] = ZPER_SYNC_HISTOGRAM_BOUNDS_US;
static uint64_t s_sync_count;
static uint64_t s_sync_sum_us;
static uint64_t s_sync_buckets [ZPER_SYNC_HISTOGRAM_BUCKETS];

static int64_t
s_monotonic_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void
s_sync_record (int64_t elapsed_us)
{
    size_t bucket = 0;
    while (bucket < ZPER_SYNC_HISTOGRAM_BUCKETS && elapsed_us > s_sync_bounds_us [bucket])
        bucket++;
    //  count before the bucket: a reader that reads buckets first, then
    //  count, never sees a bucket ahead of count
    __atomic_add_fetch (&s_sync_count, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch (&s_sync_sum_us, (uint64_t) elapsed_us, __ATOMIC_RELAXED);
    if (bucket < ZPER_SYNC_HISTOGRAM_BUCKETS)
        __atomic_add_fetch (&s_sync_buckets [bucket], 1, __ATOMIC_SEQ_CST);
}

void
zper_segment_sync_histogram (zper_log_sync_histogram_t *histogram)
{
    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < ZPER_SYNC_HISTOGRAM_BUCKETS; bucket++) {
        cumulative += __atomic_load_n (&s_sync_buckets [bucket], __ATOMIC_SEQ_CST);
        histogram->buckets [bucket] = cumulative;
        histogram->bounds_us [bucket] = s_sync_bounds_us [bucket];
    }
    histogram->count = __atomic_load_n (&s_sync_count, __ATOMIC_SEQ_CST);
    histogram->sum_us = __atomic_load_n (&s_sync_sum_us, __ATOMIC_RELAXED);
}

int
zper_segment_sync (zper_segment_t *self)
{
    if (s_writer (self))
        return -1;
    int64_t started_us = s_monotonic_us ();
    int rc = fdatasync (self->data_fd);
    s_sync_record (s_monotonic_us () - started_us);
    return rc;
}

int
zper_segment_sync_indexes (zper_segment_t *self)
{
    if (s_writer (self))
        return -1;
    if (fdatasync (self->index_fd) || fdatasync (self->timeindex_fd))
        return -1;
    return 0;
}

int
zper_segment_seal (zper_segment_t *self)
{
    if (!self->writable)
        return 0;
    if (s_writer (self))
        return -1;
    if (self->next_offset > self->base_offset
    &&  self->last_time_entry_offset < self->next_offset - 1) {
        uint8_t time_entry [ZPER_TIME_ENTRY_SIZE];
        zper_le_put64 (time_entry, (uint64_t) self->last_timestamp);
        zper_le_put64 (time_entry + 8, (uint64_t) (self->next_offset - 1));
        if (s_write_all (self->timeindex_fd, time_entry, sizeof time_entry, self->timeindex_size))
            return -1;
        self->timeindex_size += sizeof time_entry;
        self->last_time_entry_offset = self->next_offset - 1;
    }
    if (zper_segment_sync_indexes (self))
        return -1;
    s_close (&self->data_fd);
    s_close (&self->index_fd);
    s_close (&self->timeindex_fd);
    self->writable = false;
    return 0;
}

//  Descriptors for reading the indexes. Readers (under the partition's
//  state lock) use descriptors of their own, opened on first use and kept
//  until zper_segment_unmap; the writer reads through its own descriptors.
static int
s_reader_fd (const char *path, int *fd_p)
{
    if (*fd_p < 0)
        *fd_p = open (path, O_RDONLY | O_CLOEXEC);
    return *fd_p;
}

static int
s_read_index_entry (int fd, uint64_t index, zper_index_entry_t *entry)
{
    uint8_t bytes [ZPER_INDEX_ENTRY_SIZE];
    if (fd < 0 || s_read_all (fd, bytes, sizeof bytes, index * sizeof bytes))
        return -1;
    s_decode_index_entry (bytes, entry);
    return 0;
}

//  Timestamp and offset of time entry number index
static int
s_read_time_entry (int fd, uint64_t index, int64_t *timestamp, int64_t *offset)
{
    uint8_t bytes [ZPER_TIME_ENTRY_SIZE];
    if (fd < 0 || s_read_all (fd, bytes, sizeof bytes, index * sizeof bytes))
        return -1;
    *timestamp = (int64_t) zper_le_get64 (bytes);
    *offset = (int64_t) zper_le_get64 (bytes + 8);
    return 0;
}

#define INDEX_READER(self)      s_reader_fd ((self)->index_path, &(self)->index_read_fd)
#define TIMEINDEX_READER(self)  s_reader_fd ((self)->timeindex_path, &(self)->timeindex_read_fd)

int
zper_segment_truncate (zper_segment_t *self, uint64_t file_size, uint64_t index_size,
                       uint64_t timeindex_size, int64_t next_offset, int64_t last_timestamp)
{
    index_size -= index_size % ZPER_INDEX_ENTRY_SIZE;
    timeindex_size -= timeindex_size % ZPER_TIME_ENTRY_SIZE;
    if (s_open_for_writing (self, 0))
        return -1;
    //  The sizes are taken even if the disk refuses to cut: writes then
    //  land at these positions, over whatever lies beyond them
    self->file_size = file_size;
    self->index_size = index_size;
    self->timeindex_size = timeindex_size;
    self->next_offset = next_offset;
    self->last_timestamp = last_timestamp;
    self->last_indexed_position = 0;
    self->last_time_entry_offset = -1;
    if (ftruncate (self->data_fd, (off_t) file_size)
    ||  ftruncate (self->index_fd, (off_t) index_size)
    ||  ftruncate (self->timeindex_fd, (off_t) timeindex_size))
        return -1;
    zper_index_entry_t entry;
    if (index_size > 0) {
        if (s_read_index_entry (self->index_fd, index_size / ZPER_INDEX_ENTRY_SIZE - 1, &entry))
            return -1;
        self->last_indexed_position = entry.file_position;
    }
    int64_t timestamp;
    if (timeindex_size > 0
    &&  s_read_time_entry (self->timeindex_fd, timeindex_size / ZPER_TIME_ENTRY_SIZE - 1,
                           &timestamp, &self->last_time_entry_offset))
        return -1;
    return 0;
}

int
zper_segment_cut_by_copy (zper_segment_t *self, uint64_t file_size)
{
    char *temporary = zsys_sprintf ("%s" ZPER_SEGMENT_COPY_SUFFIX, self->log_path);
    int source = open (self->log_path, O_RDONLY | O_CLOEXEC);
    int target = source >= 0? open (temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644): -1;
    int rc = target >= 0? 0: -1;
    loff_t copied = 0;
    while (rc == 0 && (uint64_t) copied < file_size) {
        ssize_t done = copy_file_range (source, &copied, target, NULL,
                                        (size_t) (file_size - (uint64_t) copied), 0);
        if (done == 0)
            errno = EIO;                //  the file is shorter than file_size
        if (done <= 0)
            rc = -1;
    }
    if (rc == 0)
        rc = fdatasync (target);
    //  rename replaces the name, never the old file's bytes (invariant 6)
    if (rc == 0)
        rc = rename (temporary, self->log_path);
    int saved = errno;
    if (rc && target >= 0)
        unlink (temporary);
    s_close (&source);
    s_close (&target);
    free (temporary);
    if (rc == 0) {
        //  data_fd is the old file's; zper_segment_truncate opens the new
        //  one, and the indexes with it (it opens all three once data_fd is closed)
        s_close (&self->data_fd);
        s_close (&self->index_fd);
        s_close (&self->timeindex_fd);
        self->file_size = file_size;
    }
    errno = saved;
    return rc;
}

bool
zper_segment_indexes_trusted (zper_segment_t *self)
{
    if (self->file_size == 0 || self->index_size == 0 || self->timeindex_size == 0
    ||  self->index_size % ZPER_INDEX_ENTRY_SIZE || self->timeindex_size % ZPER_TIME_ENTRY_SIZE)
        return false;
    zper_index_entry_t first, last;
    if (s_read_index_entry (INDEX_READER (self), 0, &first)
    ||  s_read_index_entry (INDEX_READER (self), self->index_size / ZPER_INDEX_ENTRY_SIZE - 1, &last))
        return false;
    int64_t first_timestamp, first_time_offset, last_timestamp, last_time_offset;
    if (s_read_time_entry (TIMEINDEX_READER (self), 0, &first_timestamp, &first_time_offset)
    ||  s_read_time_entry (TIMEINDEX_READER (self), self->timeindex_size / ZPER_TIME_ENTRY_SIZE - 1,
                           &last_timestamp, &last_time_offset))
        return false;
    return first.offset == self->base_offset && first.file_position == 0
        && last.offset >= first.offset && last.position >= first.position
        && last.file_position + ZPER_RECORD_HEADER_SIZE <= self->file_size
        && first_time_offset == self->base_offset
        && last_time_offset >= first_time_offset && last_timestamp >= first_timestamp;
}

int
zper_segment_scan (zper_segment_t *self, uint64_t file_position, int64_t next_offset,
                   int64_t next_position, int64_t min_timestamp, zper_record_fn *on_record,
                   void *argument, zper_scan_t *scan)
{
    memset (scan, 0, sizeof *scan);
    scan->status = ZPER_RECORD_END;
    scan->valid_size = file_position;
    scan->next_offset = next_offset;
    scan->next_position = next_position;
    scan->last_timestamp = min_timestamp;
    uint64_t size = self->file_size;
    if (file_position >= size)
        return 0;
    zper_mapping_t *mapping = zper_segment_map (self, size, 0);
    if (!mapping)
        return -1;
    const uint8_t *data = zper_mapping_data (mapping);
    while (scan->valid_size < size) {
        zper_record_t record;
        const uint8_t *header = data + scan->valid_size;
        uint64_t available = size - scan->valid_size;
        zper_record_status_t status = zper_record_decode (header, available, &record);
        if (status == ZPER_RECORD_OK
        &&  (record.base_offset != scan->next_offset
          || (scan->next_position >= 0 && record.base_position != scan->next_position)
          || record.timestamp < scan->last_timestamp))
            status = ZPER_RECORD_BAD_SEQUENCE;
        if (status == ZPER_RECORD_OK) {
            scan->bytes_scanned += ZPER_RECORD_HEADER_SIZE + record.payload_size;
            status = zper_record_verify (&record, header);
        }
        else
            scan->bytes_scanned += available < ZPER_RECORD_HEADER_SIZE? available: ZPER_RECORD_HEADER_SIZE;
        if (status != ZPER_RECORD_OK) {
            scan->status = status;
            break;
        }
        record.file_position = scan->valid_size;
        if (on_record)
            on_record (&record, argument);
        scan->valid_size += ZPER_RECORD_HEADER_SIZE + record.payload_size;
        scan->next_offset = record.base_offset + record.message_count;
        scan->next_position = record.base_position + record.payload_size;
        scan->last_timestamp = record.timestamp;
        scan->records++;
    }
    zper_mapping_unref (&mapping);
    return 0;
}

zper_mapping_t *
zper_segment_map (zper_segment_t *self, uint64_t needed, uint64_t reserve)
{
    if (self->mapping && zper_mapping_size (self->mapping) >= needed)
        return zper_mapping_ref (self->mapping);
    int fd = open (self->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    //  Mapping past the end of the file is allowed; reserving room lets
    //  the active segment grow without a new mapping per read
    zper_mapping_t *mapping = s_mapping_new (fd, reserve > needed? reserve: needed);
    if (!mapping && reserve > needed)
        mapping = s_mapping_new (fd, needed);
    int saved = errno;
    close (fd);
    errno = saved;
    if (!mapping)
        return NULL;
    zper_mapping_unref (&self->mapping);
    self->mapping = mapping;
    return zper_mapping_ref (mapping);
}

bool
zper_segment_unmap (zper_segment_t *self)
{
    bool had_mapping = self->mapping != NULL;
    zper_mapping_unref (&self->mapping);
    s_close (&self->index_read_fd);
    s_close (&self->timeindex_read_fd);
    return had_mapping;
}

void
zper_segment_close_files (zper_segment_t *self)
{
    s_close (&self->data_fd);
    s_close (&self->index_fd);
    s_close (&self->timeindex_fd);
    zper_segment_unmap (self);
}

bool
zper_segment_mapped (zper_segment_t *self)
{
    return self->mapping != NULL;
}

int
zper_segment_index_find (zper_segment_t *self, bool by_position, int64_t key,
                         uint64_t entry_count, zper_index_entry_t *entry)
{
    //  Invariant: entries below low have key <= wanted; entries from high on, key > wanted
    uint64_t low = 0, high = entry_count;
    bool found = false;
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        zper_index_entry_t candidate;
        if (s_read_index_entry (INDEX_READER (self), middle, &candidate))
            return -1;
        if ((by_position? candidate.position: candidate.offset) <= key) {
            *entry = candidate;
            found = true;
            low = middle + 1;
        }
        else
            high = middle;
    }
    if (!found) {
        errno = ERANGE;
        return -1;
    }
    return 0;
}

uint64_t
zper_segment_entries_below (zper_segment_t *self, bool time_index, int64_t offset,
                            uint64_t entry_count)
{
    //  Entries are sorted by offset (invariant 2): the first at or above it
    uint64_t low = 0, high = entry_count;
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        zper_index_entry_t entry;
        int64_t timestamp, entry_offset = INT64_MAX;
        if (time_index? s_read_time_entry (TIMEINDEX_READER (self), middle, &timestamp, &entry_offset)
                      : s_read_index_entry (INDEX_READER (self), middle, &entry))
            return low;
        if (!time_index)
            entry_offset = entry.offset;
        if (entry_offset < offset)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

int64_t
zper_segment_time_find (zper_segment_t *self, int64_t timestamp_ms, uint64_t entry_count)
{
    int64_t answer = self->base_offset;
    uint64_t low = 0, high = entry_count;
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        int64_t timestamp, offset;
        if (s_read_time_entry (TIMEINDEX_READER (self), middle, &timestamp, &offset))
            return answer;
        if (timestamp < timestamp_ms) {
            answer = offset;
            low = middle + 1;
        }
        else
            high = middle;
    }
    return answer;
}

//  Timestamp of time entry number index, read through a descriptor opened
//  for the occasion unless the segment has a reader's one: callers look at
//  many segments (retention, bounds) and must not leave one open on each
static int64_t
s_time_entry_timestamp (zper_segment_t *self, uint64_t index)
{
    int fd = self->timeindex_read_fd >= 0? self->timeindex_read_fd
           : open (self->timeindex_path, O_RDONLY | O_CLOEXEC);
    int64_t timestamp, offset;
    if (s_read_time_entry (fd, index, &timestamp, &offset))
        timestamp = -1;
    if (fd >= 0 && fd != self->timeindex_read_fd)
        close (fd);
    return timestamp;
}

int64_t
zper_segment_first_timestamp (zper_segment_t *self)
{
    return s_time_entry_timestamp (self, 0);
}

int64_t
zper_segment_last_timestamp (zper_segment_t *self)
{
    if (self->timeindex_size < ZPER_TIME_ENTRY_SIZE)
        return -1;
    return s_time_entry_timestamp (self, self->timeindex_size / ZPER_TIME_ENTRY_SIZE - 1);
}

//  ---- selftest ------------------------------------------------------------

//  Append a record of count one-frame messages of body_size bytes
static void
s_test_append (zper_segment_t *self, int64_t offset, int64_t position, int64_t timestamp,
               uint32_t count, size_t body_size, zper_record_t *record)
{
    uint8_t body [64];
    assert (body_size <= sizeof body);
    memset (body, 'x', body_size);
    zper_frame_t frame = { body, body_size };
    size_t message_size = zper_zmtp_message_size (&frame, 1);
    uint8_t payload [64 * 80];
    assert (message_size * count <= sizeof payload);
    for (uint32_t index = 0; index < count; index++)
        zper_zmtp_encode (&frame, 1, payload + index * message_size);
    record->base_offset = offset;
    record->base_position = position;
    record->timestamp = timestamp;
    record->message_count = count;
    record->payload_size = (uint32_t) (message_size * count);
    assert (zper_segment_append (self, record, payload, 0) == 0);
}

static void
s_test_count (const zper_record_t *record, void *argument)
{
    (*(uint64_t *) argument)++;
}

void
zper_segment_test (bool verbose)
{
    //  @selftest
    const uint64_t interval = 256;
    zper_segment_t *segment = zper_segment_create (".", 100, 5000, interval);
    assert (segment);
    assert (zper_segment_create (".", 100, 5000, interval) == NULL && errno == EEXIST);
    //  20 records of 4 messages of 30 bytes (32 encoded): 128 + 40 bytes each
    zper_record_t record;
    for (int index = 0; index < 20; index++)
        s_test_append (segment, 100 + index * 4, 5000 + index * 128, 1000 + index, 4, 30, &record);
    assert (zper_segment_file_size (segment) == 20 * 168);
    //  An index entry for the first record, then one per 256 bytes: every 2nd record
    assert (zper_segment_index_size (segment) == 10 * ZPER_INDEX_ENTRY_SIZE);
    uint64_t entries = zper_segment_index_size (segment) / ZPER_INDEX_ENTRY_SIZE;
    zper_index_entry_t entry;
    assert (zper_segment_index_find (segment, false, 107, entries, &entry) == 0);
    assert (entry.offset == 100 && entry.file_position == 0);
    assert (zper_segment_index_find (segment, false, 108, entries, &entry) == 0);
    assert (entry.offset == 108 && entry.position == 5256 && entry.file_position == 336);
    assert (zper_segment_index_find (segment, true, 5300, entries, &entry) == 0);
    assert (entry.offset == 108);
    assert (zper_segment_index_find (segment, false, 99, entries, &entry) == -1 && errno == ERANGE);
    assert (zper_segment_time_find (segment, 1000, 10) == 100);
    assert (zper_segment_time_find (segment, 1005, 10) == 116);    //  entry (1004, 116)
    assert (zper_segment_first_timestamp (segment) == 1000);

    //  Sealing adds the newest timestamp; the indexes are then trusted
    assert (zper_segment_seal (segment) == 0);
    assert (zper_segment_last_timestamp (segment) == 1019);
    assert (zper_segment_indexes_trusted (segment));
    zper_segment_destroy (&segment);
    zper_segment_destroy (&segment);

    //  Loading reads the base position from the index; a scan accepts all
    segment = zper_segment_load (".", 100, -1, interval);
    assert (segment && zper_segment_base_position (segment) == 5000);
    assert (zper_segment_indexes_trusted (segment));
    zper_scan_t scan;
    uint64_t seen = 0;
    assert (zper_segment_scan (segment, 0, 100, 5000, -1, s_test_count, &seen, &scan) == 0);
    assert (scan.status == ZPER_RECORD_END && scan.records == 20 && seen == 20);
    assert (scan.next_offset == 180 && scan.next_position == 5000 + 20 * 128);
    assert (scan.valid_size == 20 * 168 && scan.last_timestamp == 1019);
    //  A wrong expectation is a sequence error at the first record
    assert (zper_segment_scan (segment, 0, 101, 5000, -1, NULL, NULL, &scan) == 0);
    assert (scan.status == ZPER_RECORD_BAD_SEQUENCE && scan.valid_size == 0);

    //  A flipped bit in record 5 stops the scan there
    zper_segment_destroy (&segment);
    int fd = open ("00000000000000000100.log", O_RDWR);
    assert (fd >= 0);
    uint8_t byte;
    assert (pread (fd, &byte, 1, 5 * 168 + 60) == 1);
    byte ^= 0x04;
    assert (pwrite (fd, &byte, 1, 5 * 168 + 60) == 1);
    segment = zper_segment_load (".", 100, -1, interval);
    assert (zper_segment_scan (segment, 0, 100, 5000, -1, NULL, NULL, &scan) == 0);
    assert (scan.status == ZPER_RECORD_BAD_CRC && scan.records == 5 && scan.valid_size == 5 * 168);
    //  Zero bytes after the valid records: no header
    assert (ftruncate (fd, 5 * 168) == 0 && ftruncate (fd, 5 * 168 + 100) == 0);
    close (fd);
    zper_segment_destroy (&segment);
    segment = zper_segment_load (".", 100, -1, interval);
    assert (zper_segment_scan (segment, 0, 100, 5000, -1, NULL, NULL, &scan) == 0);
    assert (scan.status == ZPER_RECORD_BAD_MAGIC && scan.valid_size == 5 * 168);
    //  Index entries past the end make the indexes untrusted; truncating
    //  cuts the indexes with the file and opens the segment for writing
    assert (!zper_segment_indexes_trusted (segment));
    assert (zper_segment_truncate (segment, 5 * 168, 3 * ZPER_INDEX_ENTRY_SIZE,
                                   3 * ZPER_TIME_ENTRY_SIZE, 120, 1004) == 0);
    s_test_append (segment, 120, 5000 + 5 * 128, 1005, 4, 30, &record);
    assert (zper_segment_seal (segment) == 0);
    assert (zper_segment_indexes_trusted (segment));
    assert (zper_segment_last_timestamp (segment) == 1005);

    //  A cut by copy leaves mapped bytes as they were; the segment goes on
    //  in a new file holding the kept bytes
    uint64_t full_size = zper_segment_file_size (segment);
    zper_mapping_t *old = zper_segment_map (segment, full_size, 0);
    assert (old && zper_segment_unmap (segment));
    assert (zper_segment_cut_by_copy (segment, 168) == 0);
    assert (access ("00000000000000000100.log" ZPER_SEGMENT_COPY_SUFFIX, F_OK) == -1);
    assert (zper_segment_truncate (segment, 168, ZPER_INDEX_ENTRY_SIZE, ZPER_TIME_ENTRY_SIZE,
                                   104, 1000) == 0);
    s_test_append (segment, 104, 5000 + 128, 1001, 4, 31, &record);
    assert (zper_segment_file_size (segment) == 168 + 172);
    assert (zper_record_decode (zper_mapping_data (old) + 168, full_size - 168, &record)
            == ZPER_RECORD_OK && record.payload_size == 128);
    assert (zper_record_verify (&record, zper_mapping_data (old) + 168) == ZPER_RECORD_OK);
    zper_mapping_unref (&old);
    assert (zper_segment_cut_by_copy (segment, 1000) == -1 && errno == EIO);
    assert (zper_segment_file_size (segment) == 168 + 172);
    //  A crash during a cut by copy leaves the copy behind: listing the
    //  segments lists the segment once and changes nothing (tools list a
    //  live folder); recovery removes the copy
    int stray = open ("00000000000000000100.log" ZPER_SEGMENT_COPY_SUFFIX, O_WRONLY | O_CREAT, 0644);
    assert (stray >= 0);
    close (stray);
    size_t count;
    int64_t *offsets = zper_segment_list (".", &count);
    assert (offsets && count >= 1);
    size_t listed = 0;
    for (size_t index = 0; index < count; index++)
        listed += offsets [index] == 100;
    assert (listed == 1);
    free (offsets);
    assert (access ("00000000000000000100.log" ZPER_SEGMENT_COPY_SUFFIX, F_OK) == 0);
    zper_segment_remove_copies (".");
    assert (access ("00000000000000000100.log" ZPER_SEGMENT_COPY_SUFFIX, F_OK) == -1);
    assert (zper_segment_seal (segment) == 0);

    //  Mappings outlive the file and the segment
    zper_mapping_t *mapping = zper_segment_map (segment, zper_segment_file_size (segment), 0);
    assert (mapping && zper_segment_mapped (segment));
    assert (zper_segment_remove (segment) == 0);
    zper_segment_destroy (&segment);
    assert (zper_record_decode (zper_mapping_data (mapping), zper_mapping_size (mapping),
                                &record) == ZPER_RECORD_OK);
    assert (record.base_offset == 100 && record.message_count == 4);
    assert (zper_record_verify (&record, zper_mapping_data (mapping)) == ZPER_RECORD_OK);
    zper_mapping_unref (&mapping);
    zper_mapping_unref (&mapping);
    assert (access ("00000000000000000100.log", F_OK) == -1);

    //  Header checks refuse impossible counts before reading a payload
    uint8_t header [ZPER_RECORD_HEADER_SIZE];
    record.message_count = 3;
    record.payload_size = 5;
    zper_record_encode_header (&record, "\0\0\0\0\0", header);
    assert (zper_record_decode (header, sizeof header + 5, &record) == ZPER_RECORD_BAD_LENGTH);
    assert (zper_record_decode (header, 3, &record) == ZPER_RECORD_TORN);
    assert (streq (zper_record_status_text (ZPER_RECORD_BAD_CRC), "CRC-32C mismatch"));
    //  @end
}
