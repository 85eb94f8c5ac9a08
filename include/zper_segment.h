/*  =========================================================================
    zper_segment - one segment of a partition: its record file, its two
    sparse indexes, and the shared read-only mappings readers hold

    Internal to the log engine (zper_partition drives it; `zper log` reads
    through it). The byte layout of records and index entries, and the
    invariants every function here keeps, are at the top of
    src/log/zper_segment.c and in docs/storage.md.

    Threads: a segment is not thread-safe; its partition serializes writers
    (io lock) and readers (state lock). A zper_mapping_t is: its reference
    count is atomic, and the bytes it maps never change below the visible
    end (invariant 6), so any thread may read them while it holds a reference.
    ========================================================================= */

#ifndef ZPER_SEGMENT_H_INCLUDED
#define ZPER_SEGMENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zper_defaults.h"
#include "zper_log.h"

#define ZPER_RECORD_MAGIC           0x3152505Au     //  "ZPR1" on disk: format version 1
#define ZPER_RECORD_HEADER_SIZE     40
#define ZPER_INDEX_ENTRY_SIZE       24
#define ZPER_TIME_ENTRY_SIZE        16
#define ZPER_SEGMENT_NAME_DIGITS    20
#define ZPER_SEGMENT_COPY_SUFFIX    ".copy"         //  a log file being cut by copy (a crash leaves
                                                    //  it behind: zper_segment_remove_copies)

typedef struct _zper_segment_t zper_segment_t;
typedef struct _zper_mapping_t zper_mapping_t;

//  A record (batch) as decoded from its header. payload points into the
//  bytes it was decoded from (a mapping), or is NULL when writing.
typedef struct {
    uint64_t file_position;         //  where its header starts in the segment file
    int64_t base_offset;            //  logical offset of its first message
    int64_t base_position;          //  legacy byte position of its first message
    int64_t timestamp;              //  ms; every message of the record carries it
    uint32_t message_count;
    uint32_t payload_size;          //  bytes of the messages' ZMTP/2.0 encodings
    const uint8_t *payload;
} zper_record_t;

//  Why a scan stopped (or why a record was refused).
typedef enum {
    ZPER_RECORD_OK = 0,
    ZPER_RECORD_END,                //  clean end: no byte after the last record
    ZPER_RECORD_TORN,               //  the header or payload runs past the end of the file
    ZPER_RECORD_BAD_MAGIC,          //  not a record header (garbage or zero-filled tail)
    ZPER_RECORD_BAD_LENGTH,         //  count or length impossible
    ZPER_RECORD_BAD_CRC,            //  checksum mismatch
    ZPER_RECORD_BAD_SEQUENCE,       //  offset, position or timestamp not continuing the log
    ZPER_RECORD_BAD_MESSAGES        //  payload is not message_count whole ZMTP/2.0 messages
} zper_record_status_t;

//  One entry of the offset index: a record start.
typedef struct {
    int64_t offset;                 //  the record's base_offset
    int64_t position;               //  the record's base_position
    uint64_t file_position;         //  the record's header in the .log file
} zper_index_entry_t;

//  What a scan found: where the valid records end and what comes next.
typedef struct {
    zper_record_status_t status;    //  ZPER_RECORD_END if every byte was a valid record
    uint64_t valid_size;            //  file size up to the end of the last valid record
    int64_t next_offset;            //  offset and position after the last valid record
    int64_t next_position;
    int64_t last_timestamp;         //  timestamp of the last valid record (or the one given)
    uint64_t records;               //  valid records seen
    uint64_t bytes_scanned;         //  bytes of records read (headers and payloads)
} zper_scan_t;

typedef void (zper_record_fn) (const zper_record_t *record, void *argument);

//  ---- records ------------------------------------------------------------

//  Write the header of record (its fields, the CRC over header and payload)
//  into header, ZPER_RECORD_HEADER_SIZE bytes.
void
    zper_record_encode_header (const zper_record_t *record, const void *payload, uint8_t *header);

//  Decode the record that starts at data, with available bytes after it,
//  checking what can be checked without reading the payload: magic, counts,
//  that the payload fits. Returns ZPER_RECORD_OK, or why not.
zper_record_status_t
    zper_record_decode (const uint8_t *data, uint64_t available, zper_record_t *record);

//  Check a decoded record's payload: CRC, and that it holds exactly
//  message_count whole messages. Returns ZPER_RECORD_OK or why not.
zper_record_status_t
    zper_record_verify (const zper_record_t *record, const uint8_t *header);

//  One-line description of a status, for messages.
const char *
    zper_record_status_text (zper_record_status_t status);

//  ---- mappings -----------------------------------------------------------

//  A new reference to mapping (same object).
zper_mapping_t *
    zper_mapping_ref (zper_mapping_t *self);

//  Drop a reference; the last one unmaps. Idempotent; nulls *self_p.
void
    zper_mapping_unref (zper_mapping_t **self_p);

//  The mapped bytes and how many there are.
const uint8_t *
    zper_mapping_data (zper_mapping_t *self);
uint64_t
    zper_mapping_size (zper_mapping_t *self);

//  ---- segments -----------------------------------------------------------

//  Base offsets of the segments in folder dir (files named by 20 digits
//  and ".log"), sorted; *count receives how many. Caller frees. NULL with
//  errno if the folder cannot be read. Changes nothing: tools may list the
//  folder of a running broker.
int64_t *
    zper_segment_list (const char *dir, size_t *count);

//  Remove what a crash during zper_segment_cut_by_copy left in folder dir
//  ("<segment>.log.copy": the segment's own file is whole, the rename never
//  happened). For recovery only: in a live folder a cut may be under way.
void
    zper_segment_remove_copies (const char *dir);

//  Create an empty segment (three new files) in folder dir. The new segment
//  is active: open for writing. Returns NULL with errno on failure (nothing
//  is left behind).
zper_segment_t *
    zper_segment_create (const char *dir, int64_t base_offset, int64_t base_position,
                         uint64_t index_interval);

//  Open the existing segment of dir whose file is named by base_offset, as
//  sealed (read-only). Reads the file size and the first index entries,
//  never records. base_position is taken from the first index entry when
//  there is one, else it is fallback_position. NULL with errno on failure.
zper_segment_t *
    zper_segment_load (const char *dir, int64_t base_offset, int64_t fallback_position,
                       uint64_t index_interval);

//  Close the segment's files and drop its cached mapping. Views keep their
//  own references. Idempotent; nulls *self_p.
void
    zper_segment_destroy (zper_segment_t **self_p);

//  Unlink the segment's three files (its mappings stay valid). 0 or -1.
int
    zper_segment_remove (zper_segment_t *self);

//  Set the legacy position of an empty segment's first message-to-be.
void
    zper_segment_set_base_position (zper_segment_t *self, int64_t base_position);

//  Accessors. file_size is the bytes written so far.
int64_t
    zper_segment_base_offset (zper_segment_t *self);
int64_t
    zper_segment_base_position (zper_segment_t *self);
uint64_t
    zper_segment_file_size (zper_segment_t *self);
uint64_t
    zper_segment_index_size (zper_segment_t *self);
uint64_t
    zper_segment_timeindex_size (zper_segment_t *self);
const char *
    zper_segment_path (zper_segment_t *self);

//  Append one record (header + payload, one write) at the end of the file
//  and its index entries when due. On -1 (errno) the file may hold part of
//  the record: the caller truncates. fail_errno != 0 is the test hook: the
//  write stops half-way and fails with that errno.
int
    zper_segment_append (zper_segment_t *self, zper_record_t *record, const void *payload,
                         int fail_errno);

//  Add the index entries record needs (sparse: first record of the segment,
//  then one per index_interval bytes). Used by append and by recovery.
int
    zper_segment_index_record (zper_segment_t *self, const zper_record_t *record);

//  fdatasync the record file, timed into the process's sync histogram.
//  0 or -1 with errno.
int
    zper_segment_sync (zper_segment_t *self);

//  The process's sync histogram (what zper_log_sync_histogram returns).
void
    zper_segment_sync_histogram (zper_log_sync_histogram_t *histogram);

//  Seal: add the final time index entry (the newest timestamp), sync both
//  indexes and close the writing descriptors. 0 or -1 with errno.
int
    zper_segment_seal (zper_segment_t *self);

//  fdatasync both index files (before a checkpoint names their sizes).
int
    zper_segment_sync_indexes (zper_segment_t *self);

//  Cut the segment back to these sizes (and open it for writing again if it
//  was sealed). 0 or -1 with errno.
//  next_offset and last_timestamp describe the last record kept (for the
//  final time entry of a later seal).
int
    zper_segment_truncate (zper_segment_t *self, uint64_t file_size, uint64_t index_size,
                           uint64_t timeindex_size, int64_t next_offset, int64_t last_timestamp);

//  Cut the log file back to file_size without changing a byte of it: copy
//  its first file_size bytes into a new file (fdatasync'd) that then takes
//  its name, so mappings of the old file (views, lent messages) keep every
//  byte they showed. For cuts below bytes readers may have mapped. Closes
//  the writing descriptors; follow with zper_segment_truncate (indexes, and
//  to open the new file for writing) and a sync of the folder. 0, or -1
//  with errno (the segment keeps its old file).
int
    zper_segment_cut_by_copy (zper_segment_t *self, uint64_t file_size);

//  Can the indexes of this sealed segment be trusted without reading its
//  records? (both files present, whole entries, first entry is the base,
//  last entry inside the file, time entries ordered.)
bool
    zper_segment_indexes_trusted (zper_segment_t *self);

//  Validate records from file_position on, expecting next_offset and
//  next_position (position -1: take the first record's), timestamps not
//  below min_timestamp. Calls on_record (if not NULL) for each valid record.
//  Stops at the end of the file or at the first invalid record. Fills scan.
//  0, or -1 with errno if the file cannot be read.
int
    zper_segment_scan (zper_segment_t *self, uint64_t file_position, int64_t next_offset,
                       int64_t next_position, int64_t min_timestamp, zper_record_fn *on_record,
                       void *argument, zper_scan_t *scan);

//  A reference to a read-only mapping of the file that covers at least
//  needed bytes (cached in the segment). A new mapping spans reserve bytes
//  if that is more (room for an active segment to grow into). NULL with
//  errno on failure.
zper_mapping_t *
    zper_segment_map (zper_segment_t *self, uint64_t needed, uint64_t reserve);

//  Drop the cached mapping and the reading descriptors (views keep their
//  mappings). Returns true if there was a mapping.
bool
    zper_segment_unmap (zper_segment_t *self);

//  Close every descriptor the segment holds and drop its cached mapping,
//  to bound the descriptors of a log with many partitions: a writable
//  (active) segment stays writable and reopens its files on the next
//  append, sync or seal; readers reopen theirs on the next map or lookup;
//  views keep their mappings. Bytes written and not yet synced stay in the
//  page cache: the fdatasync of the reopened descriptor covers them.
void
    zper_segment_close_files (zper_segment_t *self);

//  Reopen the writing descriptors of a writable segment whose files
//  zper_segment_close_files closed (nothing to do when open or sealed). 0,
//  or -1 with errno (EMFILE when the process is out of descriptors).
int
    zper_segment_writer_open (zper_segment_t *self);

//  True if the segment caches a mapping.
bool
    zper_segment_mapped (zper_segment_t *self);

//  Find the last index entry with offset <= offset (by_position false) or
//  position <= position (by_position true), among the first entry_count
//  entries. The first entry of a segment is its first record, so there is
//  one when entry_count > 0. 0, or -1 with errno.
int
    zper_segment_index_find (zper_segment_t *self, bool by_position, int64_t key,
                             uint64_t entry_count, zper_index_entry_t *entry);

//  How many of the first entry_count entries of the offset index (or of the
//  time index when time_index) name an offset below offset: the entries a
//  cut of the log at offset keeps. Stops early (a smaller count) when an
//  entry cannot be read.
uint64_t
    zper_segment_entries_below (zper_segment_t *self, bool time_index, int64_t offset,
                                uint64_t entry_count);

//  Offset of the last time index entry with timestamp < timestamp_ms among
//  the first entry_count entries; the segment's base offset if none.
int64_t
    zper_segment_time_find (zper_segment_t *self, int64_t timestamp_ms, uint64_t entry_count);

//  Timestamp of the first or the last time index entry, -1 if none. The
//  last one is the newest timestamp of a sealed segment (invariant 4).
int64_t
    zper_segment_first_timestamp (zper_segment_t *self);
int64_t
    zper_segment_last_timestamp (zper_segment_t *self);

//  Self test of this class
void
    zper_segment_test (bool verbose);

#endif
