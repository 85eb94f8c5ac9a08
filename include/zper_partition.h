/*  =========================================================================
    zper_partition - one append-only, replayable stream of messages

    A partition is a sequence of segments in one folder. Appends go into an
    open batch in memory; a write seals the batch into one record (one
    CRC-32C, one write); a flush also fdatasyncs the segment and moves the
    durable offset. Readers see up to the visible offset: the written end,
    or the durable end (config.visibility; docs/storage.md, "Visibility").
    Offsets are logical (0, 1, 2, ...); every message also has a legacy byte
    position: where its ZMTP/2.0 encoding starts in the stream of all
    messages' encodings since offset 0 (zper-wire.md). Both resolve cheaply.
    ========================================================================= */

#ifndef ZPER_PARTITION_H_INCLUDED
#define ZPER_PARTITION_H_INCLUDED

#include "zper_log.h"

//  Where a partition stands. Positions are legacy byte positions.
typedef struct {
    int64_t start_offset;           //  first retained message
    int64_t durable_offset;         //  every message below is fdatasync'd: what acks name
    int64_t visible_offset;         //  readers see [start, visible): the written end under
                                    //  ZPER_VISIBILITY_WRITTEN, durable_offset under DURABLE
    int64_t end_offset;             //  next offset to assign (>= visible_offset >= durable_offset)
    int64_t start_position;         //  legacy byte position of start_offset
    int64_t durable_position;       //  legacy byte position of durable_offset
    int64_t visible_position;       //  legacy byte position of visible_offset
    int64_t end_position;           //  legacy byte position of end_offset
    int64_t first_timestamp;        //  timestamp of start_offset's message, -1 if empty
    int64_t last_timestamp;         //  timestamp of the last visible message, -1 if none
    uint64_t size_bytes;            //  bytes of visible records in segment files
    size_t segment_count;           //  segments holding visible records
} zper_bounds_t;

//  One message, as a read returns it. data points into a mapping held by
//  the view the message came from, valid while that view lives.
typedef struct {
    int64_t offset;
    int64_t timestamp;              //  ms since the epoch, assigned at append
    int64_t position;               //  legacy byte position
    const uint8_t *data;            //  ZMTP/2.0 encoding of its frames
    size_t size;
    size_t frame_count;
} zper_message_t;

//  Open a partition stored in folder path (created if missing), recovering
//  it (docs/storage.md, "Recovery"). Returns NULL with errno on failure
//  (EINVAL: segment_size 0 or max_message above ZPER_LOG_RECORD_MAX_BYTES).
//  Normally reached through zper_log_partition; public for tools and tests.
zper_partition_t *
    zper_partition_open (const char *path, const zper_log_config_t *config);

//  Flush, write the checkpoint and clean-shutdown marker, close. Views
//  hold their own reference on their segment's mapping and stay valid after
//  the partition is destroyed. Idempotent; nulls *self_p.
void
    zper_partition_destroy (zper_partition_t **self_p);

//  Append one message of frame_count frames (empty frames and zero-length
//  bodies allowed; frame_count >= 1). timestamp_ms <= 0 means now; the
//  stored timestamp is max(previous, given), and every message of a record
//  carries the newest timestamp of its record (docs/storage.md). Returns
//  its offset, or -1 with errno: EINVAL (no frames), EMSGSIZE (larger than
//  max_message), ENOSPC/EIO/EFBIG (the open batch was full and writing it
//  failed: the log was cut back as zper_partition_write says, nothing
//  durable was damaged, later appends may succeed). The message becomes
//  visible to readers once written (ZPER_VISIBILITY_WRITTEN: by
//  zper_partition_write, a flush, or a full batch) or once durable
//  (ZPER_VISIBILITY_DURABLE: by a flush).
int64_t
    zper_partition_append (zper_partition_t *self, const zper_frame_t *frames, size_t frame_count,
                           int64_t timestamp_ms);

//  Append messages already in the storage encoding (whole ZMTP/2.0
//  messages, concatenated), as the native batch write path carries them.
//  Validates every frame and message size. Returns the offset of the first
//  message and sets *count to the number of messages, or -1 with errno
//  (EPROTO for a malformed encoding, plus those of zper_partition_append).
int64_t
    zper_partition_append_encoded (zper_partition_t *self, const void *data, size_t size,
                                   int64_t timestamp_ms, size_t *count);

//  Make every appended message durable now (seal, write, fdatasync; fsync
//  the folder if a segment was created); under ZPER_VISIBILITY_DURABLE this
//  is what makes messages visible. Returns the new durable offset, or -1
//  with errno, and the log stays consistent: if the write failed, as
//  zper_partition_write says; if the fdatasync failed (the kernel may have
//  dropped the pages), every message after the durable offset is discarded,
//  even ones readers already saw, and its offset is assigned again. Views
//  held across that cut keep their bytes unchanged.
int64_t
    zper_partition_flush (zper_partition_t *self);

//  Seal the open batch into a record and write it to the segment file,
//  without fdatasync. Under ZPER_VISIBILITY_WRITTEN this makes the messages
//  visible to readers (they survive a crash of the process, not a power
//  loss); the durable offset does not move. Returns the written end
//  (offset), or -1 with errno (ENOSPC, EIO, EFBIG): the failed record is cut
//  off, every message that was not yet written is discarded (its offsets are
//  assigned again), what was written before stays. A roll before the
//  record syncs the segment it closes: if that fails, the log is cut back to
//  the durable end, as a failed flush. bounds.end_offset tells where the log
//  ends after a failure.
int64_t
    zper_partition_write (zper_partition_t *self);

//  True if the flush policy says a flush is due at now_ms (flush_messages
//  unsynced messages, or the oldest unsynced one is flush_interval_ms old).
bool
    zper_partition_flush_due (zper_partition_t *self, int64_t now_ms);

//  Fill bounds: offsets, and sizes of the segments readers see. Returns 0.
int
    zper_partition_bounds (zper_partition_t *self, zper_bounds_t *bounds);

//  A zero-copy view of visible messages starting at logical offset, within
//  one segment, holding at most max_bytes of message encodings (but always
//  the first message whole, however large). offset == visible_offset gives
//  an empty view. Every record served has had its CRC checked. Returns NULL
//  with errno ERANGE when offset is outside [start_offset, visible_offset],
//  EBADMSG when the record holding it is corrupt.
zper_view_t *
    zper_partition_read (zper_partition_t *self, int64_t offset, size_t max_bytes);

//  Same, from a legacy byte position. NULL with errno ERANGE outside
//  [start_position, visible_position], EINVAL when position is not where a
//  message starts.
zper_view_t *
    zper_partition_read_position (zper_partition_t *self, int64_t position, size_t max_bytes);

//  Logical offset of the first visible message with timestamp >=
//  timestamp_ms (visible_offset if none). Uses the time index and a
//  bounded scan.
int64_t
    zper_partition_offset_for_time (zper_partition_t *self, int64_t timestamp_ms);

//  Legacy OFFSET semantics (zper-wire.md, like Kafka ListOffsets v0): the
//  legacy byte positions of the starts of visible segments whose first
//  message is at or before timestamp_ms, oldest first and newest last, at
//  most max (the newest ones when there are more). Returns the count written to
//  positions. (-1 latest and -2 earliest are resolved by the caller from
//  zper_partition_bounds.)
int
    zper_partition_segment_positions (zper_partition_t *self, int64_t timestamp_ms,
                                      int64_t *positions, int max);

//  Delete whole segments past retention (age or bytes), never the active
//  segment nor the one holding the durable end or any after it; a segment
//  still held by a view is unlinked but stays readable through that view.
//  Returns the number of segments deleted, or -1.
int
    zper_partition_retain (zper_partition_t *self, int64_t now_ms);

//  Bytes of records the recovery of zper_partition_open read: 0 after a
//  clean shutdown whose indexes are intact. For tests and tools.
uint64_t
    zper_partition_recovery_bytes (zper_partition_t *self);

//  TEST HOOK, never for production use: from now on every record write
//  fails with write_errno (after writing the record's header alone: a torn
//  record, as a full disk leaves) and every fdatasync (of a flush, a roll or a
//  checkpoint) with sync_errno; 0 turns a fault off. Lets tests prove the
//  ENOSPC/EIO behaviour of zper_partition_write and zper_partition_flush.
void
    zper_partition_set_fault (zper_partition_t *self, int write_errno, int sync_errno);

//  ---- replication (cluster mode, docs/cluster.md) ----------------------------

//  The partition's folder (where zper_epochs keeps its file).
const char *
    zper_partition_folder (zper_partition_t *self);

//  Cap what readers see at limit (the cluster's high-watermark): bounds'
//  visible_offset/visible_position/last_timestamp/size, zper_partition_read,
//  read_position, offset_for_time and segment_positions stop at
//  min(visible end, limit). INT64_MAX (the default) removes the cap. A
//  limit below the current one is allowed (a new follower's HW).
void
    zper_partition_set_visible_limit (zper_partition_t *self, int64_t limit);

//  A zero-copy view of whole records from offset, which must be where a
//  record starts, up to the written end (ignoring the visible limit and
//  visibility = durable), within one segment, at most max_bytes of
//  encodings but always one whole record. Walk it with
//  zper_view_next_record. offset == written end: an empty view. NULL with
//  errno ERANGE outside [start_offset, written end], EINVAL when offset is
//  not a record's start, EBADMSG when a record is corrupt.
zper_view_t *
    zper_partition_read_records (zper_partition_t *self, int64_t offset, size_t max_bytes);

//  Next record of a view made by zper_partition_read_records: its first
//  offset, its timestamp (every message of a record has it), its message
//  count and its messages' encodings (size bytes, contiguous, valid while
//  the view lives; lend them with zper_view_lend). Returns false at the end.
bool
    zper_view_next_record (zper_view_t *self, int64_t *first_offset, int64_t *timestamp,
                           size_t *count, const uint8_t **data, size_t *size);

//  Append a leader's record as one record of this log, byte for byte:
//  first_offset must equal the end offset (else -1, EINVAL), data holds
//  count whole message encodings (checked as zper_partition_append_encoded
//  does: EPROTO, EMSGSIZE), every message gets timestamp. The record is
//  written (not synced) before the call returns, so this log's record
//  boundaries are the leader's. Returns the new end offset, or -1 with
//  errno (and the log as zper_partition_write leaves it on failure).
int64_t
    zper_partition_append_record (zper_partition_t *self, int64_t first_offset,
                                  int64_t timestamp, const void *data, size_t size, size_t count);

//  Cut the log so that it ends at offset, or at the start of the record
//  holding offset when offset falls inside one: every later record and
//  segment is removed, indexes follow, and the cut is durable (fsync'd)
//  before the call returns. Views held across the cut keep their bytes.
//  offset >= end: nothing to do. Returns the new end offset, or -1 with
//  errno (ERANGE when offset is below start_offset: use reset).
int64_t
    zper_partition_truncate (zper_partition_t *self, int64_t offset);

//  Empty the partition and make it start at offset, whose legacy byte
//  position is position (a follower that fell behind its leader's
//  retention starts again at the leader's first retained message).
//  Durable before the call returns. Returns 0, or -1 with errno.
int
    zper_partition_reset (zper_partition_t *self, int64_t offset, int64_t position);

//  ---- zper_partition_lru: a bound on the partitions holding open files ----

//  A new lru letting at most max_open (>= 1) partitions hold open files at
//  once; past it, the least recently used idle ones have their files closed
//  (segment descriptors, mappings, index readers) and keep their state in
//  memory: their pointers stay valid and their next write or read reopens
//  the files (docs/storage.md, "Open partitions").
zper_partition_lru_t *
    zper_partition_lru_new (size_t max_open);

//  Destroy the lru, after every partition using it. Idempotent; nulls *self_p.
void
    zper_partition_lru_destroy (zper_partition_lru_t **self_p);

//  Put a partition under lru's bound (once, right after opening it). The
//  lru must outlive the partition.
void
    zper_partition_set_lru (zper_partition_t *self, zper_partition_lru_t *lru);

//  Close the files of up to ZPER_LOG_EVICT_ON_EMFILE idle partitions (for a
//  caller that ran out of descriptors). Returns how many were closed.
int
    zper_partition_lru_relieve (zper_partition_lru_t *self);

//  Partitions holding open files now, and evictions since the lru began.
void
    zper_partition_lru_counts (zper_partition_lru_t *self, size_t *open, uint64_t *closed);

//  Self test of this class
void
    zper_partition_test (bool verbose);

//  ---- zper_view: a held window onto visible messages ------------------------

//  Next message of the view, in offset order. Returns false at the end.
bool
    zper_view_next (zper_view_t *self, zper_message_t *message);

//  Rewind the view to its first message.
void
    zper_view_rewind (zper_view_t *self);

//  Number of messages and total bytes of their encodings in the view.
size_t
    zper_view_count (zper_view_t *self);
size_t
    zper_view_bytes (zper_view_t *self);

//  Lend bytes of this view (data, size: a message of the view, a frame of
//  one, or consecutive messages of one record) to a zmq_msg_t without
//  copying: the message keeps the mapping alive until libzmq frees it, even
//  after the view is destroyed. Returns 0, or -1 with errno EINVAL if the
//  bytes are not inside the view's mapping.
int
    zper_view_lend (zper_view_t *self, const void *data, size_t size, zmq_msg_t *msg);

//  Release the view. Idempotent; nulls *self_p.
void
    zper_view_destroy (zper_view_t **self_p);

#endif
