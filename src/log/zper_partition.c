/*  =========================================================================
    zper_partition - one append-only stream: batching, durability,
    visibility, reads, retention

    The one thing to know: the log has three ends behind the end offset
    assigned at append (the message sits in the open batch), each a
    log_end_t (offsets and the sizes of the files holding them):
        written   sealed into a record and written (page cache)
        visible   what readers see: written (ZPER_VISIBILITY_WRITTEN) or
                  durable (ZPER_VISIBILITY_DURABLE)
        durable   fdatasync'd: what acks and checkpoints name
    end >= written >= visible >= durable. s_write_batch_locked (a write, a
    full batch, a flush) moves written, and visible under WRITTEN;
    s_sync_locked (one sync covers every message written before it: group
    commit) moves durable, and visible under DURABLE. Readers only ever use
    visible; acks and checkpoints only durable. A failed record write cuts
    the files back to the written end (readers keep what they saw); a failed
    sync cuts them back to the durable end (the kernel may have dropped the
    pages), by copy where readers may hold the cut bytes (s_cut_back_locked).
    Either way every offset after the cut is assigned again.

    Cluster mode adds a cap on what readers see (the high-watermark): the
    write path publishes its end (`published`), and `visible` is that end
    capped at `limited`, the end at the last record start below the limit
    (s_publish_locked). Record reads (replication) see the written end, and
    truncate and reset cut the log where a leader says (docs/storage.md 8.1).

    Locks. `mutex` guards the in-memory state (segment list, end offset,
    visible and durable ends, open batch) and is only held for short steps,
    never across a write or sync. `io_mutex` serializes changes to files
    (record writes, syncs, rolls, truncation, retention, checkpoints) and
    guards the written end; it is taken before `mutex`, and the visible and
    durable ends only change with both held. So an fdatasync blocks neither
    readers nor appends into the open batch.

    Open files. A log may hold far more partitions than the process has
    descriptors, so partitions share an lru (zper_partition_lru_t): a
    partition that holds open files (its active segment's writing
    descriptors, the mappings and index readers of its mapped segments) is
    listed in it, newest use first; past max_open, the oldest idle ones
    have their files closed (s_lru_touch). What stays in memory is the
    small state above (offsets, ends, segment sizes): the pointer stays
    valid, and the next write or read reopens what it needs. A partition
    being evicted is held with both its locks, taken with trylock (one
    that is in use is not idle: it is skipped), so no lock is ever waited
    for in the wrong order. Views hold their own mappings and survive.

    The checkpoint file and recovery are in zper_recovery.c.
    ========================================================================= */

#include "zper_partition_internal.h"

struct _zper_view_t {
    zper_mapping_t *mapping;        //  NULL for an empty view
    const uint8_t *data;
    uint64_t first_record;          //  file position of the first message's record
    const uint8_t *first_message;
    int64_t first_offset;
    size_t count;
    size_t bytes;
    //  Iteration
    zper_record_t record;
    uint64_t record_position;
    const uint8_t *cursor;
    int64_t cursor_offset;
    int64_t cursor_position;
    size_t returned;                //  messages, or records of a record view
    size_t records;                 //  a record view (zper_partition_read_records): records
};

static int64_t s_flush_locked (zper_partition_t *self);
static int s_end_at_locked (zper_partition_t *self, int64_t offset, log_end_t *end);

//  Make end what the write path shows readers (the written or the durable
//  end); readers see it capped at the limited end. Caller holds both locks.
static void
s_publish_locked (zper_partition_t *self, log_end_t end)
{
    self->published = end;
    bool capped = self->visible_limit != INT64_MAX && end.offset > self->limited.offset;
    self->visible = capped? self->limited: end;
}

//  Find the limited end again: the written end moved and the limit was
//  beyond it. Caller holds io_mutex. Best effort: on failure the cap
//  stays where it was (readers see less, never more).
static void
s_limit_update_locked (zper_partition_t *self)
{
    if (self->visible_limit == INT64_MAX || self->limit_reached)
        return;
    bool reached = self->written.offset >= self->visible_limit;
    log_end_t limited;
    if (s_end_at_locked (self, reached? self->visible_limit: self->written.offset, &limited))
        return;
    pthread_mutex_lock (&self->mutex);
    self->limited = limited;
    self->limit_reached = reached;
    s_publish_locked (self, self->published);
    pthread_mutex_unlock (&self->mutex);
}

struct _zper_partition_lru_t {
    pthread_mutex_t mutex;
    zper_partition_t *newest;       //  partitions holding open files, by last use
    zper_partition_t *oldest;
    size_t count;
    size_t max_open;
    uint64_t closed;                //  evictions so far
};

//  ---- batches ---------------------------------------------------------------

static void
s_batch_reserve (batch_t *batch, size_t more)
{
    if (batch->size + more > batch->capacity) {
        size_t capacity = batch->capacity? batch->capacity: ZPER_LOG_INDEX_INTERVAL_BYTES;
        while (capacity < batch->size + more)
            capacity *= 2;
        batch->data = (uint8_t *) realloc (batch->data, capacity);
        assert (batch->data);
        batch->capacity = capacity;
    }
}

static void
s_batch_clear (batch_t *batch)
{
    batch->size = 0;
    batch->count = 0;
}

static void
s_batch_swap (batch_t *first, batch_t *second)
{
    batch_t saved = *first;
    *first = *second;
    *second = saved;
}

//  ---- open files: the lru ---------------------------------------------------

zper_partition_lru_t *
zper_partition_lru_new (size_t max_open)
{
    assert (max_open > 0);
    zper_partition_lru_t *self = (zper_partition_lru_t *) zmalloc (sizeof (zper_partition_lru_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->max_open = max_open;
    return self;
}

void
zper_partition_lru_destroy (zper_partition_lru_t **self_p)
{
    assert (self_p);
    zper_partition_lru_t *self = *self_p;
    if (self) {
        assert (self->count == 0);      //  its partitions were destroyed first
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

void
zper_partition_lru_counts (zper_partition_lru_t *self, size_t *open, uint64_t *closed)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    *open = self->count;
    *closed = self->closed;
    pthread_mutex_unlock (&self->mutex);
}

//  Caller holds lru->mutex
static void
s_lru_unlink (zper_partition_lru_t *lru, zper_partition_t *partition)
{
    if (partition->lru_newer)
        partition->lru_newer->lru_older = partition->lru_older;
    else
        lru->newest = partition->lru_older;
    if (partition->lru_older)
        partition->lru_older->lru_newer = partition->lru_newer;
    else
        lru->oldest = partition->lru_newer;
    partition->lru_newer = partition->lru_older = NULL;
    partition->lru_listed = false;
    lru->count--;
}

//  Caller holds lru->mutex
static void
s_lru_push_newest (zper_partition_lru_t *lru, zper_partition_t *partition)
{
    partition->lru_older = lru->newest;
    partition->lru_newer = NULL;
    if (lru->newest)
        lru->newest->lru_newer = partition;
    else
        lru->oldest = partition;
    lru->newest = partition;
    partition->lru_listed = true;
    lru->count++;
}

//  Close every file of the partition; what is in memory stays. Idle
//  buffers go too: an evicted partition keeps no batch memory. Caller
//  holds both locks.
static void
s_files_close_locked (zper_partition_t *self)
{
    for (size_t number = 0; number < self->segment_count; number++)
        zper_segment_close_files (self->segments [number]);
    self->mapped_count = 0;
    if (self->batch.size == 0) {
        free (self->batch.data);
        self->batch = (batch_t) { NULL };
    }
    free (self->writing.data);
    self->writing = (batch_t) { NULL };
}

//  Take up to wanted idle partitions off the old end of lru (never
//  except), locked for closing, into victims. Caller holds lru->mutex.
static size_t
s_lru_take_idle (zper_partition_lru_t *lru, zper_partition_t *except, size_t wanted,
                 zper_partition_t **victims)
{
    size_t taken = 0;
    zper_partition_t *candidate = lru->oldest;
    while (candidate && taken < wanted) {
        zper_partition_t *newer = candidate->lru_newer;
        if (candidate != except && pthread_mutex_trylock (&candidate->io_mutex) == 0) {
            if (pthread_mutex_trylock (&candidate->mutex) == 0) {
                s_lru_unlink (lru, candidate);
                victims [taken++] = candidate;
            }
            else
                pthread_mutex_unlock (&candidate->io_mutex);
        }
        candidate = newer;
    }
    lru->closed += taken;
    return taken;
}

static void
s_victims_close (zper_partition_t **victims, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        s_files_close_locked (victims [index]);
        pthread_mutex_unlock (&victims [index]->mutex);
        pthread_mutex_unlock (&victims [index]->io_mutex);
    }
}

//  The partition is about to use its files: list it as the newest, and
//  close the files of the oldest idle ones past max_open. The caller holds
//  one of the partition's locks, so no one closes its files under it.
static void
s_lru_touch (zper_partition_t *self)
{
    zper_partition_lru_t *lru = self->lru;
    if (!lru)
        return;
    zper_partition_t *victims [ZPER_LOG_EVICT_ON_EMFILE];
    pthread_mutex_lock (&lru->mutex);
    if (lru->newest != self) {
        if (self->lru_listed)
            s_lru_unlink (lru, self);
        s_lru_push_newest (lru, self);
    }
    size_t over = lru->count > lru->max_open? lru->count - lru->max_open: 0;
    size_t taken = s_lru_take_idle (lru, self, over < ZPER_LOG_EVICT_ON_EMFILE? over
                                               : ZPER_LOG_EVICT_ON_EMFILE, victims);
    pthread_mutex_unlock (&lru->mutex);
    s_victims_close (victims, taken);
}

//  The process ran out of descriptors (EMFILE, ENFILE) or mappings
//  (ENOMEM): close the files of up to ZPER_LOG_EVICT_ON_EMFILE idle
//  partitions of self's lru, so that one retry may succeed. Caller holds one
//  of self's locks. True if any was closed.
static bool
s_lru_relieve (zper_partition_t *self, int error)
{
    if (!self->lru || (error != EMFILE && error != ENFILE && error != ENOMEM))
        return false;
    zper_partition_t *victims [ZPER_LOG_EVICT_ON_EMFILE];
    pthread_mutex_lock (&self->lru->mutex);
    size_t taken = s_lru_take_idle (self->lru, self, ZPER_LOG_EVICT_ON_EMFILE, victims);
    pthread_mutex_unlock (&self->lru->mutex);
    s_victims_close (victims, taken);
    errno = error;
    return taken > 0;
}

int
zper_partition_lru_relieve (zper_partition_lru_t *self)
{
    assert (self);
    zper_partition_t *victims [ZPER_LOG_EVICT_ON_EMFILE];
    pthread_mutex_lock (&self->mutex);
    size_t taken = s_lru_take_idle (self, NULL, ZPER_LOG_EVICT_ON_EMFILE, victims);
    pthread_mutex_unlock (&self->mutex);
    s_victims_close (victims, taken);
    return (int) taken;
}

void
zper_partition_set_lru (zper_partition_t *self, zper_partition_lru_t *lru)
{
    assert (self && !self->lru);
    pthread_mutex_lock (&self->mutex);
    self->lru = lru;
    s_lru_touch (self);                 //  recovery left files open
    pthread_mutex_unlock (&self->mutex);
}

//  ---- opening and closing ----------------------------------------------------

zper_partition_t *
zper_partition_open (const char *path, const zper_log_config_t *config)
{
    assert (path && config);
    if (config->max_message > ZPER_LOG_RECORD_MAX_BYTES || config->segment_size == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (zsys_dir_create ("%s", path)) {
        if (errno == 0)
            errno = EACCES;
        return NULL;
    }
    zper_partition_t *self = (zper_partition_t *) zmalloc (sizeof (zper_partition_t));
    self->path = strdup (path);
    self->config = *config;
    self->config.base_dir = NULL;       //  not ours to keep
    pthread_mutex_init (&self->mutex, NULL);
    pthread_mutex_init (&self->io_mutex, NULL);
    self->pending_since = -1;
    self->visible_limit = INT64_MAX;
    if (zper_recovery_load (self)
    ||  (!self->checkpoint_exact && zper_recovery_checkpoint_write (self, false))) {
        int saved = errno;
        zper_partition_destroy (&self);
        errno = saved;
        return NULL;
    }
    self->opened = true;
    return self;
}

void
zper_partition_destroy (zper_partition_t **self_p)
{
    assert (self_p);
    zper_partition_t *self = *self_p;
    if (!self)
        return;
    if (self->lru) {
        pthread_mutex_lock (&self->lru->mutex);
        if (self->lru_listed)
            s_lru_unlink (self->lru, self);
        pthread_mutex_unlock (&self->lru->mutex);
    }
    if (self->opened) {
        pthread_mutex_lock (&self->io_mutex);
        //  After a failed flush the files end at a record boundary (the
        //  written or the durable end): consistent, so the shutdown is
        //  still clean; records written past the durable end make the
        //  sizes differ from the checkpoint's, so the next open scans them
        s_flush_locked (self);
        if (!self->checkpoint_exact && zper_recovery_checkpoint_write (self, true))
            zsys_warning ("zper log: %s: cannot write the checkpoint: %s (the next open "
                          "will scan from the last one)", self->path, strerror (errno));
        pthread_mutex_unlock (&self->io_mutex);
    }
    while (self->segment_count > 0)
        zper_segment_destroy (&self->segments [--self->segment_count]);
    free (self->segments);
    free (self->batch.data);
    free (self->writing.data);
    pthread_mutex_destroy (&self->mutex);
    pthread_mutex_destroy (&self->io_mutex);
    free (self->path);
    free (self);
    *self_p = NULL;
}

//  ---- writing -------------------------------------------------------------

//  Give the active segment a new file holding only its first file_size
//  bytes (readers may hold mappings of the bytes past it) and make readers
//  map the new file from now on. Caller holds io_mutex.
static int
s_cut_by_copy (zper_partition_t *self, zper_segment_t *active, uint64_t file_size)
{
    if (zper_segment_cut_by_copy (active, file_size)) {
        zsys_warning ("zper log: %s: cannot cut by copy: %s (cut in place: a reader still "
                      "holding the cut bytes may fault)", zper_segment_path (active),
                      strerror (errno));
        return -1;
    }
    pthread_mutex_lock (&self->mutex);
    s_mapped_forget (self, active);
    zper_segment_unmap (active);
    pthread_mutex_unlock (&self->mutex);
    return 0;
}

//  Cut the files back to end (the written or the durable end) and forget
//  every message after it: their offsets are assigned again. Bytes readers
//  may have seen (past the durable end, under WRITTEN visibility) are cut
//  by copy, never in place (invariant 6 of zper_segment.c). Caller holds
//  io_mutex. errno is kept: it says why the write or sync failed.
static void
s_cut_back_locked (zper_partition_t *self, log_end_t end)
{
    int saved = errno;
    pthread_mutex_lock (&self->mutex);
    //  Written, not visible: record reads (replication) see the written end
    bool seen_beyond = self->written.segment_count > end.segment_count
                    || (self->written.segment_count == end.segment_count
                     && self->written.file_size > end.file_size);
    bool dropped = self->segment_count > end.segment_count;
    s_segments_drop_from (self, end.segment_count);
    self->end_offset = end.offset;
    self->end_position = end.position;
    self->end_timestamp = end.timestamp;
    s_batch_clear (&self->batch);
    if (end.offset == self->durable.offset)
        self->pending_since = -1;       //  else the written tail still waits for its sync
    if (self->durable.offset > end.offset)
        self->durable = end;            //  only a truncate cuts below the durable end
    if (self->limited.offset > end.offset) {
        self->limited = end;
        self->limit_reached = false;
    }
    self->written = end;
    s_publish_locked (self, self->published.offset > end.offset? end: self->published);
    pthread_mutex_unlock (&self->mutex);

    s_batch_clear (&self->writing);
    self->checkpoint_exact = false;
    self->rolled = end.segment_count > self->durable.segment_count;
    zper_segment_t *active = s_active (self);
    if (seen_beyond && zper_segment_file_size (active) > end.file_size
    &&  s_cut_by_copy (self, active, end.file_size) == 0)
        dropped = true;                 //  a rename: the folder needs its sync
    //  Best effort: if the disk refuses even this, the sizes in memory are
    //  still those of end and the next write lands there
    if (zper_segment_truncate (active, end.file_size, end.index_size, end.timeindex_size,
                               end.offset, end.timestamp) == 0)
        zper_segment_sync (active);
    if (dropped && s_sync_directory (self->path))
        self->rolled = true;            //  the next sync retries it before durable moves
    errno = saved;
}

//  Seal the active segment and start a new one at the record to come.
//  Caller holds io_mutex.
static int
s_roll (zper_partition_t *self, int64_t base_offset, int64_t base_position)
{
    zper_segment_t *active = s_active (self);
    if (self->fault_sync_errno) {
        errno = self->fault_sync_errno;
        return -1;
    }
    if (zper_segment_sync (active) || zper_segment_seal (active))
        return -1;
    zper_segment_t *segment = zper_segment_create (self->path, base_offset, base_position,
                                                   ZPER_LOG_INDEX_INTERVAL_BYTES);
    if (!segment)
        return -1;
    pthread_mutex_lock (&self->mutex);
    s_segments_push (self, segment);
    pthread_mutex_unlock (&self->mutex);
    self->rolled = true;
    return 0;
}

//  Seal the open batch into a record and write it, rolling first if it
//  would take the segment past segment_size; under WRITTEN visibility,
//  publish it to readers. On failure, cut back: to the written end if the
//  record write failed, to the durable end if the roll (which syncs the
//  segment it closes) did. Caller holds io_mutex.
static int
s_write_batch_locked (zper_partition_t *self)
{
    pthread_mutex_lock (&self->mutex);
    assert (self->writing.size == 0);
    s_batch_swap (&self->batch, &self->writing);
    s_batch_clear (&self->batch);
    pthread_mutex_unlock (&self->mutex);
    batch_t *batch = &self->writing;
    if (batch->count == 0)
        return 0;
    //  The first change to the files after a clean checkpoint: say first
    //  that a crash from now on must be noticed (recovery scans)
    if (self->checkpoint_clean && zper_recovery_checkpoint_write (self, false)) {
        s_cut_back_locked (self, self->written);
        return -1;
    }
    self->checkpoint_exact = false;

    zper_record_t record = {
        .base_offset = batch->base_offset, .base_position = batch->base_position,
        .timestamp = batch->timestamp, .message_count = batch->count,
        .payload_size = (uint32_t) batch->size
    };
    uint64_t record_size = ZPER_RECORD_HEADER_SIZE + (uint64_t) batch->size;
    uint64_t file_size = zper_segment_file_size (s_active (self));
    if (file_size > 0 && file_size + record_size > self->config.segment_size
    &&  s_roll (self, record.base_offset, record.base_position)) {
        s_cut_back_locked (self, self->durable);
        return -1;
    }
    if (zper_segment_append (s_active (self), &record, batch->data, self->fault_write_errno)) {
        s_cut_back_locked (self, self->written);
        return -1;
    }
    log_end_t written;
    s_end_of_active (self, record.base_offset + record.message_count,
                     record.base_position + record.payload_size, record.timestamp, &written);
    pthread_mutex_lock (&self->mutex);
    self->written = written;
    if (self->config.visibility == ZPER_VISIBILITY_WRITTEN)
        s_publish_locked (self, written);
    pthread_mutex_unlock (&self->mutex);
    s_limit_update_locked (self);
    self->checkpoint_bytes += record_size;
    s_batch_clear (batch);
    if (batch->capacity > ZPER_LOG_BATCH_KEEP_BYTES) {
        //  Idle partitions (a Dafka store may hold thousands) keep no big buffer
        free (batch->data);
        batch->data = NULL;
        batch->capacity = 0;
    }
    return 0;
}

//  fdatasync what was written and publish it as durable (and, under
//  DURABLE visibility, to readers). Caller holds io_mutex.
static int
s_sync_locked (zper_partition_t *self)
{
    if (self->fault_sync_errno) {
        errno = self->fault_sync_errno;
        return -1;
    }
    if (zper_segment_sync (s_active (self)))
        return -1;
    if (self->rolled && s_sync_directory (self->path))
        return -1;
    pthread_mutex_lock (&self->mutex);
    self->durable = self->written;
    if (self->config.visibility == ZPER_VISIBILITY_DURABLE)
        s_publish_locked (self, self->durable);
    if (self->end_offset == self->durable.offset)
        self->pending_since = -1;
    pthread_mutex_unlock (&self->mutex);
    if (self->rolled || self->checkpoint_bytes >= ZPER_LOG_CHECKPOINT_BYTES) {
        //  The data is durable whatever happens here; a stale checkpoint
        //  only makes the next crash recovery scan more
        if (zper_recovery_checkpoint_write (self, false))
            zsys_warning ("zper log: %s: cannot write the checkpoint: %s",
                          self->path, strerror (errno));
        self->rolled = false;
    }
    return 0;
}

//  Caller holds io_mutex. Returns the durable offset or -1. A failed sync
//  cuts back to the durable end: the kernel may have dropped the pages.
static int64_t
s_flush_locked (zper_partition_t *self)
{
    if (s_write_batch_locked (self))
        return -1;
    if ((self->written.offset > self->durable.offset || self->rolled) && s_sync_locked (self)) {
        s_cut_back_locked (self, self->durable);
        return -1;
    }
    return self->durable.offset;
}

//  The writer is about to use the files: list the partition as the newest
//  in its lru and, if something waits to be written or synced, reopen the
//  active segment's descriptors now, retrying once after closing idle
//  partitions if the process is out of them (if that fails too, the write
//  fails with EMFILE as any failed write). Caller holds io_mutex.
static void
s_writer_ready_locked (zper_partition_t *self)
{
    s_lru_touch (self);
    pthread_mutex_lock (&self->mutex);
    bool pending = self->batch.count > 0 || self->written.offset > self->durable.offset;
    pthread_mutex_unlock (&self->mutex);
    if (pending && zper_segment_writer_open (s_active (self)) && s_lru_relieve (self, errno))
        zper_segment_writer_open (s_active (self));
}

int64_t
zper_partition_flush (zper_partition_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->io_mutex);
    s_writer_ready_locked (self);
    int64_t durable_offset = s_flush_locked (self);
    pthread_mutex_unlock (&self->io_mutex);
    return durable_offset;
}

int64_t
zper_partition_write (zper_partition_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->io_mutex);
    s_writer_ready_locked (self);
    int rc = s_write_batch_locked (self);
    int64_t written_offset = self->written.offset;
    pthread_mutex_unlock (&self->io_mutex);
    return rc? -1: written_offset;
}

//  The most bytes of encodings a batch may hold: a batch never makes a
//  record larger than a segment; only a single message larger than a
//  segment does (invariant 3)
static uint64_t
s_batch_limit (zper_partition_t *self)
{
    uint64_t limit = ZPER_LOG_BATCH_MAX_BYTES;
    if (self->config.segment_size < limit + ZPER_RECORD_HEADER_SIZE)
        limit = self->config.segment_size > ZPER_RECORD_HEADER_SIZE
              ? self->config.segment_size - ZPER_RECORD_HEADER_SIZE: 1;
    return limit;
}

//  Make room for encoded_size more bytes in the open batch, writing it
//  first if it is full. Returns 0 with mutex held, or -1.
static int
s_batch_open_locked (zper_partition_t *self, size_t encoded_size)
{
    uint64_t limit = s_batch_limit (self);
    if (encoded_size > ZPER_LOG_RECORD_MAX_BYTES) {
        errno = EMSGSIZE;               //  a body within max_message, but countless frames
        return -1;
    }
    while (true) {
        pthread_mutex_lock (&self->mutex);
        if (self->batch.size == 0 || self->batch.size + encoded_size <= limit)
            break;
        pthread_mutex_unlock (&self->mutex);
        if (zper_partition_write (self) == -1)
            return -1;                  //  the full batch could not be written
    }
    s_batch_reserve (&self->batch, encoded_size);
    return 0;
}

//  Account for count messages just encoded at the end of the open batch,
//  encoded_size bytes in all; give them their offsets and return the
//  first. now_ms is the wall clock. Releases mutex.
static int64_t
s_batch_commit_unlock (zper_partition_t *self, size_t encoded_size, size_t count,
                       int64_t timestamp_ms, int64_t now_ms)
{
    batch_t *batch = &self->batch;
    if (timestamp_ms <= 0)
        timestamp_ms = now_ms;
    if (timestamp_ms < self->end_timestamp)
        timestamp_ms = self->end_timestamp;     //  invariant (2): never backwards
    if (batch->count == 0) {
        batch->base_offset = self->end_offset;
        batch->base_position = self->end_position;
    }
    batch->size += encoded_size;
    batch->count += count;
    batch->timestamp = timestamp_ms;
    self->end_timestamp = timestamp_ms;
    int64_t offset = self->end_offset;
    self->end_offset += (int64_t) count;
    self->end_position += (int64_t) encoded_size;
    if (self->pending_since < 0)
        self->pending_since = now_ms;
    pthread_mutex_unlock (&self->mutex);
    return offset;
}

int64_t
zper_partition_append (zper_partition_t *self, const zper_frame_t *frames, size_t frame_count,
                       int64_t timestamp_ms)
{
    assert (self);
    if (!frames || frame_count == 0) {
        errno = EINVAL;
        return -1;
    }
    size_t body_size = 0;
    for (size_t index = 0; index < frame_count; index++)
        body_size += frames [index].size;
    if (body_size > self->config.max_message) {
        errno = EMSGSIZE;
        return -1;
    }
    size_t encoded_size = zper_zmtp_message_size (frames, frame_count);
    if (s_batch_open_locked (self, encoded_size))
        return -1;
    zper_zmtp_encode (frames, frame_count, self->batch.data + self->batch.size);
    return s_batch_commit_unlock (self, encoded_size, 1, timestamp_ms, zclock_time ());
}

//  Length of the encoded message at data, checking every frame and the
//  sum of frame sizes against max_message; -1 with errno if refused
static int64_t
s_encoded_message_length (zper_partition_t *self, const uint8_t *data, size_t size)
{
    const uint8_t *cursor = data;
    const uint8_t *end = data + size;
    size_t body_size = 0;
    bool more = true;
    while (more) {
        zper_frame_t frame;
        if (zper_zmtp_decode (&cursor, end, &frame, &more)) {
            errno = EPROTO;
            return -1;
        }
        body_size += frame.size;
        if (body_size > self->config.max_message) {
            errno = EMSGSIZE;
            return -1;
        }
    }
    return cursor - data;
}

int64_t
zper_partition_append_encoded (zper_partition_t *self, const void *data, size_t size,
                               int64_t timestamp_ms, size_t *count)
{
    assert (self && count);
    *count = 0;
    const uint8_t *bytes = (const uint8_t *) data;
    if (!data || size == 0) {
        errno = EPROTO;
        return -1;
    }
    //  Validate everything before appending anything
    for (size_t at = 0; at < size;) {
        int64_t length = s_encoded_message_length (self, bytes + at, size - at);
        if (length < 0)
            return -1;
        at += (size_t) length;
    }
    //  Then copy as many whole messages as the open batch takes at once,
    //  under one lock and one clock reading
    int64_t now = zclock_time ();
    int64_t first_offset = -1;
    for (size_t at = 0; at < size;) {
        size_t length = (size_t) zper_zmtp_message_length (bytes + at, size - at, NULL);
        if (s_batch_open_locked (self, length))
            return -1;
        uint64_t room = s_batch_limit (self) - self->batch.size;
        size_t span = length, messages = 1;
        while (at + span < size) {
            size_t next = (size_t) zper_zmtp_message_length (bytes + at + span,
                                                             size - at - span, NULL);
            if (span + next > room)
                break;
            span += next;
            messages++;
        }
        s_batch_reserve (&self->batch, span);
        memcpy (self->batch.data + self->batch.size, bytes + at, span);
        int64_t offset = s_batch_commit_unlock (self, span, messages, timestamp_ms, now);
        if (first_offset < 0)
            first_offset = offset;
        *count += messages;
        at += span;
    }
    return first_offset;
}

bool
zper_partition_flush_due (zper_partition_t *self, int64_t now_ms)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int64_t undurable = self->end_offset - self->durable.offset;
    bool due = undurable > 0
            && (self->config.flush_messages == 0
             || (uint64_t) undurable >= self->config.flush_messages
             || now_ms - self->pending_since >= self->config.flush_interval_ms);
    pthread_mutex_unlock (&self->mutex);
    return due;
}

void
zper_partition_set_fault (zper_partition_t *self, int write_errno, int sync_errno)
{
    pthread_mutex_lock (&self->io_mutex);
    self->fault_write_errno = write_errno;
    self->fault_sync_errno = sync_errno;
    pthread_mutex_unlock (&self->io_mutex);
}

uint64_t
zper_partition_recovery_bytes (zper_partition_t *self)
{
    return self->recovery_bytes;
}

//  ---- reading -------------------------------------------------------------

//  What a reader needs of one segment, taken under mutex
typedef struct {
    zper_mapping_t *mapping;
    uint64_t file_limit;            //  visible bytes of the segment
    uint64_t start;                 //  a record start at or before the wanted message
    int64_t offset_limit;           //  visible end offset
} segment_window_t;

//  Number of the segment holding key (an offset or a position) among the
//  visible ones. Caller holds mutex; key is inside the visible range.
static size_t
s_segment_find (zper_partition_t *self, bool by_position, int64_t key)
{
    size_t low = 0, high = self->visible.segment_count;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        zper_segment_t *segment = self->segments [middle];
        int64_t base = by_position? zper_segment_base_position (segment)
                                  : zper_segment_base_offset (segment);
        if (base <= key)
            low = middle;
        else
            high = middle;
    }
    return low;
}

static bool
s_is_visible_active (zper_partition_t *self, size_t number)
{
    return number == self->visible.segment_count - 1;
}

//  A mapping of segment number covering its visible bytes. Keeps at most
//  ZPER_LOG_MAPPED_SEGMENTS_MAX segments mapped; the FIFO holds exactly the
//  mapped segments (a failed map adds none: a segment listed twice would
//  stay listed after it is dropped). Caller holds mutex.
static zper_mapping_t *
s_map (zper_partition_t *self, size_t number, uint64_t file_limit)
{
    zper_segment_t *segment = self->segments [number];
    bool listed = zper_segment_mapped (segment);
    if (!listed && self->mapped_count == ZPER_LOG_MAPPED_SEGMENTS_MAX) {
        zper_segment_unmap (self->mapped [0]);
        s_mapped_forget (self, self->mapped [0]);
    }
    bool active = number == self->segment_count - 1;
    zper_mapping_t *mapping = zper_segment_map (segment, file_limit,
                                                active? self->config.segment_size: 0);
    if (mapping && !listed)
        self->mapped [self->mapped_count++] = segment;
    return mapping;
}

//  Fill window for the segment holding key: its mapping and the file
//  position of an indexed record at or before key. Caller holds mutex.
static int
s_window (zper_partition_t *self, bool by_position, int64_t key, segment_window_t *window)
{
    size_t number = s_segment_find (self, by_position, key);
    zper_segment_t *segment = self->segments [number];
    bool active = s_is_visible_active (self, number);
    window->file_limit = active? self->visible.file_size: zper_segment_file_size (segment);
    window->offset_limit = self->visible.offset;
    uint64_t entries = (active? self->visible.index_size: zper_segment_index_size (segment))
                     / ZPER_INDEX_ENTRY_SIZE;
    zper_index_entry_t entry;
    window->start = zper_segment_index_find (segment, by_position, key, entries, &entry) == 0
                  ? entry.file_position: 0;
    window->mapping = s_map (self, number, window->file_limit);
    return window->mapping? 0: -1;
}

//  Decode and (if verify) check the record at position of window;
//  -1 with errno EBADMSG if it is not a valid record
static int
s_record_at (segment_window_t *window, uint64_t position, bool verify, zper_record_t *record)
{
    const uint8_t *header = zper_mapping_data (window->mapping) + position;
    if (position >= window->file_limit
    ||  zper_record_decode (header, window->file_limit - position, record) != ZPER_RECORD_OK
    ||  (verify && zper_record_verify (record, header) != ZPER_RECORD_OK)) {
        errno = EBADMSG;
        return -1;
    }
    record->file_position = position;
    return 0;
}

static uint64_t
s_record_end (const zper_record_t *record)
{
    return record->file_position + ZPER_RECORD_HEADER_SIZE + record->payload_size;
}

static zper_view_t *
s_view_empty (void)
{
    return (zper_view_t *) zmalloc (sizeof (zper_view_t));
}

//  Measure the view from its first message: whole messages while they fit
//  in max_bytes (the first always), below offset_limit, in this segment
static int
s_view_measure (zper_view_t *view, segment_window_t *window, zper_record_t record,
                const uint8_t *message, int64_t offset, size_t max_bytes)
{
    while (offset < window->offset_limit) {
        const uint8_t *payload_end = record.payload + record.payload_size;
        if (message == payload_end) {
            //  A bad record ends the view before it (a read starting
            //  there fails), unless nothing comes before it
            uint64_t next = s_record_end (&record);
            if (next >= window->file_limit)
                break;
            if (s_record_at (window, next, true, &record))
                return view->count > 0? 0: -1;
            message = record.payload;
            continue;
        }
        size_t length = (size_t) zper_zmtp_message_length (message, (size_t) (payload_end - message), NULL);
        if (view->count > 0 && view->bytes + length > max_bytes)
            break;
        view->count++;
        view->bytes += length;
        message += length;
        offset++;
    }
    return 0;
}

//  Find the message at key (an offset, or a legacy position) in window:
//  a bounded scan of record headers from the indexed record to the one
//  holding key (whose CRC is then checked), then of messages inside it.
//  Fills record, *message and its *offset; 0, or -1 with errno
static int
s_locate (segment_window_t *window, bool by_position, int64_t key, zper_record_t *record,
          const uint8_t **message, int64_t *offset)
{
    uint64_t position = window->start;
    while (true) {
        if (s_record_at (window, position, false, record))
            return -1;
        int64_t record_end = by_position? record->base_position + record->payload_size
                                        : record->base_offset + record->message_count;
        if (key < record_end)
            break;
        position = s_record_end (record);
    }
    if (zper_record_verify (record, zper_mapping_data (window->mapping) + position)) {
        errno = EBADMSG;
        return -1;
    }
    const uint8_t *cursor = record->payload;
    const uint8_t *payload_end = record->payload + record->payload_size;
    int64_t message_offset = record->base_offset;
    int64_t message_position = record->base_position;
    while ((by_position? message_position: message_offset) < key) {
        int64_t length = zper_zmtp_message_length (cursor, (size_t) (payload_end - cursor), NULL);
        cursor += length;
        message_position += length;
        message_offset++;
    }
    if (by_position && message_position != key) {
        errno = EINVAL;                 //  not where a message starts
        return -1;
    }
    *message = cursor;
    *offset = message_offset;
    return 0;
}

//  A view of messages from key (an offset, or a legacy position)
static zper_view_t *
s_read (zper_partition_t *self, bool by_position, int64_t key, size_t max_bytes)
{
    pthread_mutex_lock (&self->mutex);
    zper_segment_t *first = self->segments [0];
    int64_t start = by_position? zper_segment_base_position (first): zper_segment_base_offset (first);
    int64_t end = by_position? self->visible.position: self->visible.offset;
    if (key < start || key > end) {
        pthread_mutex_unlock (&self->mutex);
        errno = ERANGE;
        return NULL;
    }
    if (key == end) {
        pthread_mutex_unlock (&self->mutex);
        return s_view_empty ();
    }
    s_lru_touch (self);
    segment_window_t window;
    int rc = s_window (self, by_position, key, &window);
    if (rc && s_lru_relieve (self, errno))
        rc = s_window (self, by_position, key, &window);
    pthread_mutex_unlock (&self->mutex);
    if (rc)
        return NULL;

    zper_record_t record;
    const uint8_t *message;
    int64_t offset;
    if (s_locate (&window, by_position, key, &record, &message, &offset)) {
        zper_mapping_unref (&window.mapping);
        return NULL;
    }
    zper_view_t *view = s_view_empty ();
    view->mapping = window.mapping;
    view->data = zper_mapping_data (window.mapping);
    view->first_record = record.file_position;
    view->first_message = message;
    view->first_offset = offset;
    if (s_view_measure (view, &window, record, message, offset, max_bytes))
        zper_view_destroy (&view);
    else
        zper_view_rewind (view);
    return view;
}

zper_view_t *
zper_partition_read (zper_partition_t *self, int64_t offset, size_t max_bytes)
{
    assert (self);
    return s_read (self, false, offset, max_bytes);
}

zper_view_t *
zper_partition_read_position (zper_partition_t *self, int64_t position, size_t max_bytes)
{
    assert (self);
    return s_read (self, true, position, max_bytes);
}

int
zper_partition_bounds (zper_partition_t *self, zper_bounds_t *bounds)
{
    assert (self && bounds);
    pthread_mutex_lock (&self->mutex);
    zper_segment_t *first = self->segments [0];
    bounds->start_offset = zper_segment_base_offset (first);
    bounds->start_position = zper_segment_base_position (first);
    bounds->durable_offset = self->durable.offset;
    bounds->durable_position = self->durable.position;
    bounds->visible_offset = self->visible.offset;
    bounds->visible_position = self->visible.position;
    bounds->end_offset = self->end_offset;
    bounds->end_position = self->end_position;
    bool empty = self->visible.offset == bounds->start_offset;
    bounds->first_timestamp = empty? -1: zper_segment_first_timestamp (first);
    bounds->last_timestamp = empty? -1: self->visible.timestamp;
    bounds->size_bytes = self->visible.file_size;
    for (size_t number = 0; number + 1 < self->visible.segment_count; number++)
        bounds->size_bytes += zper_segment_file_size (self->segments [number]);
    bounds->segment_count = self->visible.segment_count;
    pthread_mutex_unlock (&self->mutex);
    return 0;
}

//  Newest timestamp of visible segment number. Caller holds mutex.
static int64_t
s_newest_timestamp (zper_partition_t *self, size_t number)
{
    return s_is_visible_active (self, number)? self->visible.timestamp
         : zper_segment_last_timestamp (self->segments [number]);
}

int64_t
zper_partition_offset_for_time (zper_partition_t *self, int64_t timestamp_ms)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int64_t answer = self->visible.offset;
    //  First visible segment whose newest timestamp reaches timestamp_ms
    size_t low = 0, high = self->visible.segment_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s_newest_timestamp (self, middle) >= timestamp_ms)
            high = middle;
        else
            low = middle + 1;
    }
    if (low == self->visible.segment_count
    ||  self->visible.offset == zper_segment_base_offset (self->segments [0])) {
        pthread_mutex_unlock (&self->mutex);
        return answer;
    }
    s_lru_touch (self);
    zper_segment_t *segment = self->segments [low];
    uint64_t time_entries = (s_is_visible_active (self, low)? self->visible.timeindex_size
                             : zper_segment_timeindex_size (segment)) / ZPER_TIME_ENTRY_SIZE;
    int64_t before = zper_segment_time_find (segment, timestamp_ms, time_entries);
    segment_window_t window;
    int rc = s_window (self, false, before, &window);
    pthread_mutex_unlock (&self->mutex);
    if (rc)
        return answer;
    //  Bounded scan: from the indexed record at or before `before`
    zper_record_t record;
    for (uint64_t position = window.start;
         s_record_at (&window, position, false, &record) == 0 && record.base_offset < answer;
         position = s_record_end (&record))
        if (record.timestamp >= timestamp_ms) {
            answer = record.base_offset;
            break;
        }
    zper_mapping_unref (&window.mapping);
    return answer;
}

int
zper_partition_segment_positions (zper_partition_t *self, int64_t timestamp_ms,
                                  int64_t *positions, int max)
{
    assert (self && (positions || max <= 0));
    pthread_mutex_lock (&self->mutex);
    //  Segments whose first message is at or before timestamp_ms: a prefix
    size_t low = 0, high = self->visible.segment_count;
    if (self->visible.file_size == 0)
        high--;                         //  the empty active segment has no first message
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (zper_segment_first_timestamp (self->segments [middle]) <= timestamp_ms)
            low = middle + 1;
        else
            high = middle;
    }
    size_t count = max > 0 && low > (size_t) max? (size_t) max: (max > 0? low: 0);
    for (size_t index = 0; index < count; index++)
        positions [index] = zper_segment_base_position (self->segments [low - count + index]);
    pthread_mutex_unlock (&self->mutex);
    return (int) count;
}

int
zper_partition_retain (zper_partition_t *self, int64_t now_ms)
{
    assert (self);
    pthread_mutex_lock (&self->io_mutex);
    pthread_mutex_lock (&self->mutex);
    //  Candidates: every segment below the durable active one (a segment
    //  never goes while the checkpoint may still name it)
    size_t candidates = self->durable.segment_count - 1;
    if (self->visible_limit != INT64_MAX && candidates + 1 > self->limited.segment_count)
        candidates = self->limited.segment_count - 1;   //  nor what the cap still names
    size_t expired = 0;
    if (self->config.retention_ms > 0)
        while (expired < candidates
           &&  s_newest_timestamp (self, expired) < now_ms - self->config.retention_ms)
            expired++;
    if (self->config.retention_bytes >= 0) {
        uint64_t total = self->visible.file_size;
        for (size_t number = expired; number + 1 < self->visible.segment_count; number++)
            total += zper_segment_file_size (self->segments [number]);
        while (expired < candidates && total > (uint64_t) self->config.retention_bytes)
            total -= zper_segment_file_size (self->segments [expired++]);
    }
    zper_segment_t **removed = NULL;
    if (expired > 0) {
        removed = (zper_segment_t **) malloc (expired * sizeof (zper_segment_t *));
        assert (removed);
        memcpy (removed, self->segments, expired * sizeof (zper_segment_t *));
        memmove (self->segments, self->segments + expired,
                 (self->segment_count - expired) * sizeof (zper_segment_t *));
        self->segment_count -= expired;
        self->written.segment_count -= expired;
        self->visible.segment_count -= expired;
        self->published.segment_count -= expired;
        if (self->visible_limit != INT64_MAX)
            self->limited.segment_count -= expired;
        self->durable.segment_count -= expired;
        for (size_t index = 0; index < expired; index++)
            s_mapped_forget (self, removed [index]);
    }
    pthread_mutex_unlock (&self->mutex);
    int rc = 0;
    for (size_t index = 0; index < expired; index++) {
        //  Views hold their own mapping: their bytes stay valid (invariant 6)
        if (zper_segment_remove (removed [index]))
            rc = -1;
        zper_segment_destroy (&removed [index]);
    }
    free (removed);
    if (expired > 0 && s_sync_directory (self->path))
        rc = -1;
    pthread_mutex_unlock (&self->io_mutex);
    return rc? -1: (int) expired;
}

//  ---- replication ---------------------------------------------------------

const char *
zper_partition_folder (zper_partition_t *self)
{
    assert (self);
    return self->path;
}

//  Number of the segment holding offset among the first count ones.
//  Caller holds mutex.
static size_t
s_segment_of (zper_partition_t *self, int64_t offset, size_t count)
{
    size_t low = 0, high = count;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        if (zper_segment_base_offset (self->segments [middle]) <= offset)
            low = middle;
        else
            high = middle;
    }
    return low;
}

//  The end of the log at the last record start at or below offset, which
//  is in [start, written end]: what a cut there keeps (sizes of the files,
//  index entries, the timestamp of the record before). A cut at a
//  segment's start keeps the segment before it whole. Caller holds
//  io_mutex. 0, or -1 with errno.
static int
s_end_at_locked (zper_partition_t *self, int64_t offset, log_end_t *end)
{
    if (offset >= self->written.offset) {
        *end = self->written;
        return 0;
    }
    pthread_mutex_lock (&self->mutex);
    size_t number = s_segment_of (self, offset, self->written.segment_count);
    zper_segment_t *segment = self->segments [number];
    bool active = number == self->written.segment_count - 1;
    segment_window_t window;
    window.file_limit = active? self->written.file_size: zper_segment_file_size (segment);
    window.offset_limit = self->written.offset;
    uint64_t entries = (active? self->written.index_size: zper_segment_index_size (segment))
                     / ZPER_INDEX_ENTRY_SIZE;
    uint64_t time_entries = (active? self->written.timeindex_size
                             : zper_segment_timeindex_size (segment)) / ZPER_TIME_ENTRY_SIZE;
    s_lru_touch (self);
    window.mapping = s_map (self, number, window.file_limit);
    //  Walk from an indexed record before the one holding offset - 1, so
    //  that the record the cut keeps last (its timestamp) is seen; when the
    //  cut falls inside an indexed record, look again from the one before
    int64_t key = offset - 1;
    zper_record_t record = { 0 };
    int64_t timestamp = -1;
    bool passed = false;
    int rc = window.mapping? 0: -1;
    while (rc == 0 && offset > zper_segment_base_offset (segment)) {
        zper_index_entry_t entry;
        uint64_t position = zper_segment_index_find (segment, false, key, entries, &entry) == 0
                          ? entry.file_position: 0;
        passed = false;
        while ((rc = s_record_at (&window, position, false, &record)) == 0
           &&  record.base_offset + record.message_count <= offset) {
            timestamp = record.timestamp;
            passed = true;
            position = s_record_end (&record);
        }
        if (rc || passed || position == 0)
            break;
        key = record.base_offset - 1;
    }
    if (rc == 0 && (offset == zper_segment_base_offset (segment) || (!passed && record.file_position == 0))) {
        if (number > 0) {
            //  At the segment's start: the one before, whole
            zper_segment_t *before = self->segments [number - 1];
            *end = (log_end_t) {
                .offset = zper_segment_base_offset (segment),
                .position = zper_segment_base_position (segment),
                .timestamp = zper_segment_last_timestamp (before),
                .segment_count = number,
                .file_size = zper_segment_file_size (before),
                .index_size = zper_segment_index_size (before),
                .timeindex_size = zper_segment_timeindex_size (before)
            };
        }
        else
            *end = (log_end_t) {
                .offset = zper_segment_base_offset (segment),
                .position = zper_segment_base_position (segment),
                .timestamp = -1, .segment_count = 1
            };
    }
    else
    if (rc == 0)
        *end = (log_end_t) {
            .offset = record.base_offset, .position = record.base_position,
            .timestamp = timestamp, .segment_count = number + 1,
            .file_size = record.file_position,
            .index_size = zper_segment_entries_below (segment, false, record.base_offset, entries)
                        * ZPER_INDEX_ENTRY_SIZE,
            .timeindex_size = zper_segment_entries_below (segment, true, record.base_offset,
                                                          time_entries) * ZPER_TIME_ENTRY_SIZE
        };
    pthread_mutex_unlock (&self->mutex);
    zper_mapping_unref (&window.mapping);
    return rc;
}

void
zper_partition_set_visible_limit (zper_partition_t *self, int64_t limit)
{
    assert (self);
    pthread_mutex_lock (&self->io_mutex);
    bool reached = self->written.offset >= limit;
    log_end_t limited = self->written;
    if (limit != INT64_MAX && reached && s_end_at_locked (self, limit, &limited))
        zsys_warning ("zper log: %s: cannot find offset %" PRId64 " to cap readers at: %s "
                      "(the cap stays where it was)", self->path, limit, strerror (errno));
    else {
        pthread_mutex_lock (&self->mutex);
        self->visible_limit = limit;
        self->limited = limited;
        self->limit_reached = reached;
        s_publish_locked (self, self->published);
        pthread_mutex_unlock (&self->mutex);
    }
    pthread_mutex_unlock (&self->io_mutex);
}

zper_view_t *
zper_partition_read_records (zper_partition_t *self, int64_t offset, size_t max_bytes)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    log_end_t written = self->written;
    int64_t start = zper_segment_base_offset (self->segments [0]);
    if (offset < start || offset > written.offset) {
        pthread_mutex_unlock (&self->mutex);
        errno = ERANGE;
        return NULL;
    }
    if (offset == written.offset) {
        pthread_mutex_unlock (&self->mutex);
        return s_view_empty ();
    }
    s_lru_touch (self);
    size_t number = s_segment_of (self, offset, written.segment_count);
    zper_segment_t *segment = self->segments [number];
    bool active = number == written.segment_count - 1;
    segment_window_t window;
    window.file_limit = active? written.file_size: zper_segment_file_size (segment);
    window.offset_limit = written.offset;
    uint64_t entries = (active? written.index_size: zper_segment_index_size (segment))
                     / ZPER_INDEX_ENTRY_SIZE;
    zper_index_entry_t entry;
    window.start = zper_segment_index_find (segment, false, offset, entries, &entry) == 0
                 ? entry.file_position: 0;
    window.mapping = s_map (self, number, window.file_limit);
    if (!window.mapping && s_lru_relieve (self, errno))
        window.mapping = s_map (self, number, window.file_limit);
    pthread_mutex_unlock (&self->mutex);
    if (!window.mapping)
        return NULL;

    zper_record_t record;
    const uint8_t *message;
    int64_t found;
    int rc = s_locate (&window, false, offset, &record, &message, &found);
    if (rc == 0 && record.base_offset != offset) {
        errno = EINVAL;                 //  inside a record
        rc = -1;
    }
    if (rc) {
        zper_mapping_unref (&window.mapping);
        return NULL;
    }
    zper_view_t *view = s_view_empty ();
    view->mapping = window.mapping;
    view->data = zper_mapping_data (window.mapping);
    view->first_record = record.file_position;
    view->first_message = record.payload;
    view->first_offset = offset;
    //  Whole records while they fit (the first always); a bad one ends the view
    while (true) {
        view->records++;
        view->count += record.message_count;
        view->bytes += record.payload_size;
        uint64_t next = s_record_end (&record);
        zper_record_t following;
        if (next >= window.file_limit
        ||  s_record_at (&window, next, true, &following)
        ||  view->bytes + following.payload_size > max_bytes)
            break;
        record = following;
    }
    zper_view_rewind (view);
    return view;
}

bool
zper_view_next_record (zper_view_t *self, int64_t *first_offset, int64_t *timestamp,
                       size_t *count, const uint8_t **data, size_t *size)
{
    assert (self);
    if (self->returned == self->records)
        return false;
    if (self->returned > 0) {
        self->record_position += ZPER_RECORD_HEADER_SIZE + self->record.payload_size;
        zper_record_decode (self->data + self->record_position, UINT64_MAX / 2, &self->record);
    }
    *first_offset = self->record.base_offset;
    *timestamp = self->record.timestamp;
    *count = self->record.message_count;
    *data = self->record.payload;
    *size = self->record.payload_size;
    self->returned++;
    return true;
}

int64_t
zper_partition_append_record (zper_partition_t *self, int64_t first_offset,
                              int64_t timestamp, const void *data, size_t size, size_t count)
{
    assert (self);
    const uint8_t *bytes = (const uint8_t *) data;
    if (!data || size == 0 || count == 0) {
        errno = EPROTO;
        return -1;
    }
    size_t messages = 0;
    for (size_t at = 0; at < size; messages++) {
        int64_t length = s_encoded_message_length (self, bytes + at, size - at);
        if (length < 0)
            return -1;
        at += (size_t) length;
    }
    if (messages != count || size > ZPER_LOG_RECORD_MAX_BYTES) {
        errno = messages != count? EPROTO: EMSGSIZE;
        return -1;
    }
    pthread_mutex_lock (&self->io_mutex);
    s_writer_ready_locked (self);
    int64_t result = -1;
    //  Seal what the open batch holds first: this record must be alone in its own
    if (s_write_batch_locked (self))
        goto exit;
    pthread_mutex_lock (&self->mutex);
    if (first_offset != self->end_offset || timestamp < self->end_timestamp) {
        pthread_mutex_unlock (&self->mutex);
        errno = EINVAL;
        goto exit;
    }
    s_batch_reserve (&self->batch, size);
    memcpy (self->batch.data, bytes, size);
    s_batch_commit_unlock (self, size, count, timestamp, zclock_time ());
    if (s_write_batch_locked (self) == 0)
        result = self->written.offset;
exit:
    pthread_mutex_unlock (&self->io_mutex);
    return result;
}

int64_t
zper_partition_truncate (zper_partition_t *self, int64_t offset)
{
    assert (self);
    pthread_mutex_lock (&self->io_mutex);
    s_writer_ready_locked (self);
    int64_t result = -1;
    //  What the open batch holds is written first, so that a cut inside
    //  it has a record start to go to
    if (s_write_batch_locked (self))
        goto exit;
    pthread_mutex_lock (&self->mutex);
    int64_t start = zper_segment_base_offset (self->segments [0]);
    pthread_mutex_unlock (&self->mutex);
    if (offset < start) {
        errno = ERANGE;
        goto exit;
    }
    log_end_t end;
    if (offset >= self->written.offset) {
        result = self->written.offset;
        goto exit;
    }
    if (s_end_at_locked (self, offset, &end))
        goto exit;
    //  The cut of a failed sync, below the durable end too: bytes readers
    //  (or record readers) hold are cut by copy; s_cut_back_locked keeps
    //  errno, so clear it to tell its own failures
    errno = 0;
    s_cut_back_locked (self, end);
    pthread_mutex_lock (&self->mutex);
    self->pending_since = -1;
    pthread_mutex_unlock (&self->mutex);
    //  Durable before returning, as a flush: the segment, the folder (the
    //  cut may have removed segments), and a checkpoint naming the new end
    //  (written when the folder changed), so that a crash now recovers the
    //  cut log. When the cut is above the durable end, what lies between
    //  becomes durable here.
    self->rolled = true;
    if (s_sync_locked (self))
        goto exit;
    result = end.offset;
exit:
    pthread_mutex_unlock (&self->io_mutex);
    return result;
}

int
zper_partition_reset (zper_partition_t *self, int64_t offset, int64_t position)
{
    assert (self && offset >= 0 && position >= 0);
    pthread_mutex_lock (&self->io_mutex);
    //  One empty segment named by offset starts the log, every other goes
    //  (views keep their mappings): its name and the checkpoint (which
    //  names its position) are what a reopen finds. It is made first, so
    //  that a failure changes nothing, unless a segment already has its name
    pthread_mutex_lock (&self->mutex);
    bool taken = false;
    for (size_t number = 0; number < self->segment_count; number++)
        taken = taken || zper_segment_base_offset (self->segments [number]) == offset;
    if (taken)
        s_segments_drop_from (self, 0);
    pthread_mutex_unlock (&self->mutex);
    int rc = -1;
    zper_segment_t *segment = zper_segment_create (self->path, offset, position,
                                                   ZPER_LOG_INDEX_INTERVAL_BYTES);
    if (!segment && !taken) {
        pthread_mutex_unlock (&self->io_mutex);
        return -1;
    }
    if (!segment) {
        //  The log must keep a segment, and an empty one named by the old
        //  start would lie about offsets: fatal for the partition
        zsys_error ("zper log: %s: cannot create segment %" PRId64 " to reset the log: %s",
                    self->path, offset, strerror (errno));
        assert (segment);
    }
    pthread_mutex_lock (&self->mutex);
    s_segments_drop_from (self, 0);
    s_segments_push (self, segment);
    log_end_t end;
    //  An empty log: the leader's timestamps need not follow the old ones
    s_end_of_active (self, offset, position, -1, &end);
    self->end_offset = offset;
    self->end_position = position;
    self->end_timestamp = -1;
    s_batch_clear (&self->batch);
    self->pending_since = -1;
    self->written = self->durable = end;
    self->limited = end;
    self->limit_reached = false;
    s_publish_locked (self, end);
    pthread_mutex_unlock (&self->mutex);
    s_batch_clear (&self->writing);
    self->checkpoint_exact = false;
    self->checkpoint_clean = false;
    self->rolled = false;
    if (s_sync_directory (self->path) == 0 && zper_recovery_checkpoint_write (self, false) == 0)
        rc = 0;
    pthread_mutex_unlock (&self->io_mutex);
    return rc;
}

//  ---- views ---------------------------------------------------------------

bool
zper_view_next (zper_view_t *self, zper_message_t *message)
{
    assert (self);
    if (self->returned == self->count)
        return false;
    while (self->cursor == self->record.payload + self->record.payload_size) {
        //  Next record: measured (and verified) when the view was made
        self->record_position += ZPER_RECORD_HEADER_SIZE + self->record.payload_size;
        zper_record_decode (self->data + self->record_position, UINT64_MAX / 2, &self->record);
        self->cursor = self->record.payload;
        self->cursor_offset = self->record.base_offset;
        self->cursor_position = self->record.base_position;
    }
    size_t frame_count;
    int64_t length = zper_zmtp_message_length (self->cursor,
                         (size_t) (self->record.payload + self->record.payload_size - self->cursor),
                         &frame_count);
    assert (length > 0);
    message->offset = self->cursor_offset++;
    message->timestamp = self->record.timestamp;
    message->position = self->cursor_position;
    message->data = self->cursor;
    message->size = (size_t) length;
    message->frame_count = frame_count;
    self->cursor += length;
    self->cursor_position += length;
    self->returned++;
    return true;
}

void
zper_view_rewind (zper_view_t *self)
{
    assert (self);
    self->returned = 0;
    if (!self->mapping)
        return;
    self->record_position = self->first_record;
    zper_record_decode (self->data + self->first_record, UINT64_MAX / 2, &self->record);
    self->cursor = self->first_message;
    self->cursor_offset = self->first_offset;
    self->cursor_position = self->record.base_position + (self->first_message - self->record.payload);
}

size_t
zper_view_count (zper_view_t *self)
{
    assert (self);
    return self->count;
}

size_t
zper_view_bytes (zper_view_t *self)
{
    assert (self);
    return self->bytes;
}

static void
s_lent_free (void *data, void *hint)
{
    zper_mapping_t *mapping = (zper_mapping_t *) hint;
    zper_mapping_unref (&mapping);
}

int
zper_view_lend (zper_view_t *self, const void *data, size_t size, zmq_msg_t *msg)
{
    assert (self && msg);
    const uint8_t *bytes = (const uint8_t *) data;
    if (!self->mapping || bytes < self->data
    ||  bytes + size > self->data + zper_mapping_size (self->mapping)) {
        errno = EINVAL;
        return -1;
    }
    zper_mapping_t *reference = zper_mapping_ref (self->mapping);
    if (zmq_msg_init_data (msg, (void *) data, size, s_lent_free, reference)) {
        zper_mapping_unref (&reference);
        return -1;
    }
    return 0;
}

void
zper_view_destroy (zper_view_t **self_p)
{
    assert (self_p);
    zper_view_t *self = *self_p;
    if (self) {
        zper_mapping_unref (&self->mapping);
        free (self);
        *self_p = NULL;
    }
}

//  ---- selftest ------------------------------------------------------------

//  Append message number of the test: frames "m<number>" and an empty one
static int64_t
s_test_append (zper_partition_t *partition, int number, int64_t timestamp)
{
    char body [32];
    snprintf (body, sizeof body, "m%d", number);
    zper_frame_t frames [] = { { body, strlen (body) }, { NULL, 0 } };
    return zper_partition_append (partition, frames, 2, timestamp);
}

//  Check that message carries test message number
static void
s_test_check (const zper_message_t *message, int number)
{
    char body [32];
    snprintf (body, sizeof body, "m%d", number);
    const uint8_t *cursor = message->data;
    zper_frame_t frame;
    bool more;
    assert (message->offset == number && message->frame_count == 2);
    assert (zper_zmtp_decode (&cursor, message->data + message->size, &frame, &more) == 0);
    assert (more && frame.size == strlen (body) && memcmp (frame.data, body, frame.size) == 0);
    assert (zper_zmtp_decode (&cursor, message->data + message->size, &frame, &more) == 0);
    assert (!more && frame.size == 0);
}

//  Read every visible message from offset 0 and check it
static void
s_test_read_all_visible (zper_partition_t *partition, int expected)
{
    int64_t offset = 0;
    while (offset < expected) {
        zper_view_t *view = zper_partition_read (partition, offset, 100);
        assert (view && zper_view_count (view) > 0);
        zper_message_t message;
        while (zper_view_next (view, &message))
            s_test_check (&message, (int) offset++);
        zper_view_destroy (&view);
    }
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.visible_offset == expected);
}

//  Same, and every visible message is durable
static void
s_test_read_all (zper_partition_t *partition, int expected)
{
    s_test_read_all_visible (partition, expected);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == expected);
}

//  Messages [from, to) are exactly what a read from `from` returns
static void
s_test_read_range (zper_partition_t *partition, int from, int to)
{
    zper_view_t *view = zper_partition_read (partition, from, SIZE_MAX);
    assert (view && zper_view_count (view) == (size_t) (to - from));
    zper_message_t message;
    for (int number = from; zper_view_next (view, &message); number++)
        s_test_check (&message, number);
    zper_view_destroy (&view);
}

static void
s_test_bounds (zper_partition_t *partition, int64_t durable, int64_t visible, int64_t end)
{
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.durable_offset == durable && bounds.visible_offset == visible);
    assert (bounds.end_offset == end);
    assert (bounds.durable_position <= bounds.visible_position);
    //  Every message has a non-empty encoding: positions move with offsets
    assert (bounds.visible_position <= bounds.end_position);
    assert ((bounds.end_offset == bounds.visible_offset)
         == (bounds.end_position == bounds.visible_position));
}

//  Under DURABLE visibility, written messages stay invisible until synced
static void
s_test_visibility_durable (zper_log_config_t config)
{
    config.visibility = ZPER_VISIBILITY_DURABLE;
    zper_partition_t *partition = zper_partition_open ("durable/0", &config);
    assert (partition);
    for (int number = 0; number < 3; number++)
        assert (s_test_append (partition, number, 0) == number);
    assert (zper_partition_write (partition) == 3);
    s_test_bounds (partition, 0, 0, 3);
    s_test_read_range (partition, 0, 0);
    assert (zper_partition_read (partition, 1, 100) == NULL && errno == ERANGE);
    assert (zper_partition_offset_for_time (partition, 0) == 0);
    assert (zper_partition_flush (partition) == 3);
    s_test_bounds (partition, 3, 3, 3);
    s_test_read_range (partition, 0, 3);
    //  A failed write keeps what was written before; a flush makes it visible
    assert (s_test_append (partition, 3, 0) == 3);
    assert (zper_partition_write (partition) == 4);
    zper_partition_set_fault (partition, ENOSPC, 0);
    assert (s_test_append (partition, 4, 0) == 4);
    assert (zper_partition_write (partition) == -1 && errno == ENOSPC);
    s_test_bounds (partition, 3, 3, 4);
    zper_partition_set_fault (partition, 0, 0);
    assert (zper_partition_flush (partition) == 4);
    s_test_read_range (partition, 0, 4);
    zper_partition_destroy (&partition);
}

//  Descriptors open in this process (a cut by copy must not leak any)
static int
s_test_open_descriptors (void)
{
    int count = 0;
    for (int fd = 0; fd < 4096; fd++)
        count += fcntl (fd, F_GETFD) != -1;
    return count;
}

//  Under WRITTEN visibility (the default), a write makes messages visible
//  and a flush makes them durable; a failed write keeps what readers saw,
//  a failed sync takes back everything past the durable end without
//  changing a byte under a view that holds it
static void
s_test_visibility_written (zper_log_config_t config)
{
    config.visibility = ZPER_VISIBILITY_WRITTEN;
    int descriptors = s_test_open_descriptors ();
    zper_partition_t *partition = zper_partition_open ("written/0", &config);
    assert (partition);
    //  Enough writes to roll a few segments before any sync
    for (int number = 0; number < 100; number++) {
        assert (s_test_append (partition, number, 1000 + number) == number);
        if (number % 10 == 9)
            assert (zper_partition_write (partition) == number + 1);
    }
    s_test_bounds (partition, 0, 100, 100);
    s_test_read_all_visible (partition, 100);
    assert (zper_partition_offset_for_time (partition, 1050) == 50);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.segment_count > 1 && bounds.last_timestamp == 1099);
    assert (zper_partition_flush (partition) == 100);
    s_test_bounds (partition, 100, 100, 100);

    //  A failed write: nothing already written is taken back
    for (int number = 100; number < 105; number++)
        assert (s_test_append (partition, number, 0) == number);
    assert (zper_partition_write (partition) == 105);
    zper_partition_set_fault (partition, EIO, 0);
    assert (s_test_append (partition, 105, 0) == 105);
    assert (zper_partition_write (partition) == -1 && errno == EIO);
    assert (s_test_append (partition, 105, 0) == 105);  //  its offset is assigned again
    assert (zper_partition_flush (partition) == -1 && errno == EIO);
    s_test_bounds (partition, 100, 105, 105);
    s_test_read_range (partition, 100, 105);

    //  A failed sync: back to the durable end, a held view keeps its bytes
    zper_partition_set_fault (partition, 0, EIO);
    zper_view_t *held = zper_partition_read (partition, 100, SIZE_MAX);
    assert (held && zper_view_count (held) == 5);
    zper_message_t message;
    assert (zper_view_next (held, &message));
    uint8_t saved [32];
    assert (message.size <= sizeof saved);
    memcpy (saved, message.data, message.size);
    assert (zper_partition_flush (partition) == -1 && errno == EIO);
    s_test_bounds (partition, 100, 100, 100);
    assert (zper_partition_read (partition, 101, 100) == NULL && errno == ERANGE);
    zper_partition_set_fault (partition, 0, 0);
    //  Offset 100 is assigned again, to other contents, written over the cut
    zper_frame_t other = { "replacement of message 100", 26 };
    assert (zper_partition_append (partition, &other, 1, 0) == 100);
    assert (zper_partition_flush (partition) == 101);
    assert (memcmp (message.data, saved, message.size) == 0);
    s_test_check (&message, 100);
    while (zper_view_next (held, &message))
        ;
    zper_view_destroy (&held);
    //  Readers map the new file, not the one the cut left to the view
    zper_view_t *view = zper_partition_read (partition, 100, 100);
    assert (view && zper_view_next (view, &message) && message.size == 2 + other.size);
    assert (memcmp (message.data + 2, other.data, other.size) == 0);
    zper_view_destroy (&view);
    zper_partition_destroy (&partition);
    assert (s_test_open_descriptors () == descriptors);
    //  The files hold exactly the durable log; a copy a crash during a cut
    //  left behind is removed at open
    const char *stray = "written/0/00000000000000000000.log" ZPER_SEGMENT_COPY_SUFFIX;
    int stray_fd = open (stray, O_WRONLY | O_CREAT, 0644);
    assert (stray_fd >= 0);
    close (stray_fd);
    partition = zper_partition_open ("written/0", &config);
    assert (partition && zper_partition_recovery_bytes (partition) == 0);
    assert (access (stray, F_OK) == -1);
    s_test_bounds (partition, 101, 101, 101);
    view = zper_partition_read (partition, 100, 100);
    assert (view && zper_view_next (view, &message) && message.size == 2 + other.size);
    assert (memcmp (message.data + 2, other.data, other.size) == 0);
    zper_view_destroy (&view);

    //  A roll syncs the segment it closes: when that fails, the written
    //  tail is taken back as by a failed flush
    zper_partition_bounds (partition, &bounds);
    zper_partition_set_fault (partition, 0, EIO);
    int64_t written = 0;
    for (int number = 101; number < 200 && written >= 0; number++) {
        assert (s_test_append (partition, number, 0) == number);
        written = zper_partition_write (partition);
    }
    assert (written == -1 && errno == EIO);
    s_test_bounds (partition, 101, 101, 101);
    zper_bounds_t after;
    zper_partition_bounds (partition, &after);
    assert (after.segment_count == bounds.segment_count && after.size_bytes == bounds.size_bytes);
    zper_partition_set_fault (partition, 0, 0);
    assert (s_test_append (partition, 101, 0) == 101);
    assert (zper_partition_flush (partition) == 102);
    s_test_read_range (partition, 101, 102);
    zper_partition_destroy (&partition);
}

//  ---- selftest: replication -----------------------------------------------

//  Records of a and b from offset to the written end are the same: first
//  offsets, timestamps, counts and bytes
static void
s_test_same_records (zper_partition_t *a, zper_partition_t *b, int64_t offset)
{
    zper_bounds_t bounds_a, bounds_b;
    zper_partition_bounds (a, &bounds_a);
    zper_partition_bounds (b, &bounds_b);
    assert (bounds_a.end_offset == bounds_b.end_offset);
    assert (bounds_a.end_position == bounds_b.end_position);
    while (offset < bounds_a.end_offset) {
        zper_view_t *view_a = zper_partition_read_records (a, offset, 1);
        zper_view_t *view_b = zper_partition_read_records (b, offset, 1);
        assert (view_a && view_b);
        int64_t first_a, first_b, timestamp_a, timestamp_b;
        size_t count_a, count_b, size_a, size_b;
        const uint8_t *data_a, *data_b;
        assert (zper_view_next_record (view_a, &first_a, &timestamp_a, &count_a, &data_a, &size_a));
        assert (zper_view_next_record (view_b, &first_b, &timestamp_b, &count_b, &data_b, &size_b));
        assert (first_a == offset && first_b == offset && timestamp_a == timestamp_b);
        assert (count_a == count_b && size_a == size_b && memcmp (data_a, data_b, size_a) == 0);
        assert (!zper_view_next_record (view_a, &first_a, &timestamp_a, &count_a, &data_a, &size_a));
        offset += (int64_t) count_a;
        zper_view_destroy (&view_a);
        zper_view_destroy (&view_b);
    }
}

//  Copy the source's records [from, to) onto target, record by record,
//  as a follower does; returns target's end
static int64_t
s_test_copy_records (zper_partition_t *source, zper_partition_t *target, int64_t from, int64_t to)
{
    int64_t end = from;
    while (end < to) {
        zper_view_t *view = zper_partition_read_records (source, end, SIZE_MAX);
        assert (view);
        int64_t first, timestamp;
        size_t count, size;
        const uint8_t *data;
        while (end < to && zper_view_next_record (view, &first, &timestamp, &count, &data, &size)) {
            assert (first == end);
            end = zper_partition_append_record (target, first, timestamp, data, size, count);
            assert (end == first + (int64_t) count);
        }
        zper_view_destroy (&view);
    }
    return end;
}

static void
s_test_end (zper_partition_t *partition, int64_t end, int64_t durable)
{
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.end_offset == end && bounds.durable_offset == durable);
    assert (bounds.visible_offset == end);
}

//  Record reads and appends reproduce a log byte for byte; truncate,
//  reset and the visible limit
static void
s_test_replication (zper_log_config_t config)
{
    config.visibility = ZPER_VISIBILITY_WRITTEN;
    config.segment_size = 600;          //  records of 3 messages: 8 or 9 a segment
    zper_partition_t *leader = zper_partition_open ("leader/0", &config);
    assert (leader && strcmp (zper_partition_folder (leader), "leader/0") == 0);
    //  30 records of 3 messages: record r holds [3r, 3r + 3), timestamp 2000 + r
    for (int record = 0; record < 30; record++) {
        for (int number = 3 * record; number < 3 * record + 3; number++)
            assert (s_test_append (leader, number, 2000 + record) == number);
        assert (zper_partition_write (leader) == 3 * record + 3);
    }
    assert (zper_partition_flush (leader) == 90);
    zper_bounds_t bounds;
    zper_partition_bounds (leader, &bounds);
    assert (bounds.segment_count > 2);

    //  Record views: whole records, exact boundaries, within one segment
    int64_t offset = 0;
    int walked = 0;
    while (offset < 90) {
        zper_view_t *view = zper_partition_read_records (leader, offset, SIZE_MAX);
        assert (view && zper_view_count (view) > 0 && zper_view_count (view) % 3 == 0);
        int64_t first, timestamp;
        size_t count, size;
        const uint8_t *data;
        while (zper_view_next_record (view, &first, &timestamp, &count, &data, &size)) {
            assert (first == offset && count == 3 && timestamp == 2000 + first / 3);
            zper_message_t message = { .offset = first, .data = data, .frame_count = 2 };
            message.size = (size_t) zper_zmtp_message_length (data, size, NULL);
            s_test_check (&message, (int) first);
            offset += 3;
            walked++;
        }
        zper_view_destroy (&view);
    }
    assert (walked == 30);
    zper_view_t *view = zper_partition_read_records (leader, 0, 1);
    assert (view && zper_view_count (view) == 3);       //  one record, however small max_bytes
    zper_view_destroy (&view);
    assert (zper_partition_read_records (leader, 1, 100) == NULL && errno == EINVAL);
    assert (zper_partition_read_records (leader, 91, 100) == NULL && errno == ERANGE);
    view = zper_partition_read_records (leader, 90, 100);
    int64_t first, timestamp;
    size_t count, size;
    const uint8_t *data;
    assert (view && !zper_view_next_record (view, &first, &timestamp, &count, &data, &size));
    zper_view_destroy (&view);
    //  Record reads go to the written end, past the durable end
    assert (s_test_append (leader, 90, 2030) == 90);
    assert (zper_partition_write (leader) == 91);
    view = zper_partition_read_records (leader, 90, 100);
    assert (view && zper_view_next_record (view, &first, &timestamp, &count, &data, &size));
    assert (first == 90 && count == 1 && timestamp == 2030);
    zper_view_destroy (&view);
    assert (zper_partition_truncate (leader, 90) == 90);
    s_test_end (leader, 90, 90);

    //  A follower copies the records: same offsets, positions, boundaries
    zper_partition_t *follower = zper_partition_open ("follower/0", &config);
    assert (follower);
    view = zper_partition_read_records (leader, 3, 1);
    assert (zper_view_next_record (view, &first, &timestamp, &count, &data, &size));
    assert (zper_partition_append_record (follower, 3, timestamp, data, size, count) == -1
            && errno == EINVAL);
    assert (zper_partition_append_record (follower, 0, timestamp, data, size, count + 1) == -1
            && errno == EPROTO);
    zper_view_destroy (&view);
    assert (s_test_copy_records (leader, follower, 0, 90) == 90);
    s_test_same_records (leader, follower, 0);
    zper_message_t message;
    view = zper_partition_read (follower, 40, 1);
    assert (view && zper_view_next (view, &message) && message.timestamp == 2013);
    s_test_check (&message, 40);
    zper_view_destroy (&view);
    assert (zper_partition_flush (follower) == 90);

    //  The visible limit caps what readers see, not what is durable
    view = zper_partition_read (leader, 30, 1);
    assert (view && zper_view_next (view, &message));
    int64_t position_30 = message.position;
    zper_view_destroy (&view);
    for (int pass = 0; pass < 2; pass++) {
        //  31 is inside record [30, 33): the cap is its start
        zper_partition_set_visible_limit (follower, pass? 31: 30);
        zper_partition_bounds (follower, &bounds);
        assert (bounds.visible_offset == 30 && bounds.visible_position == position_30);
        assert (bounds.durable_offset == 90 && bounds.end_offset == 90);
        assert (bounds.last_timestamp == 2009);
        assert (zper_partition_read (follower, 31, 100) == NULL && errno == ERANGE);
        view = zper_partition_read (follower, 27, SIZE_MAX);
        assert (view && zper_view_count (view) == 3);
        zper_view_destroy (&view);
        view = zper_partition_read_position (follower, position_30, 100);
        assert (view && zper_view_count (view) == 0);
        zper_view_destroy (&view);
        assert (zper_partition_offset_for_time (follower, 2005) == 15);
        assert (zper_partition_offset_for_time (follower, 2020) == 30);
        int64_t positions [8];
        int segments = zper_partition_segment_positions (follower, INT64_MAX, positions, 8);
        assert (segments > 0 && positions [segments - 1] < position_30);
        //  Record reads ignore it
        view = zper_partition_read_records (follower, 60, 1);
        assert (view && zper_view_count (view) == 3);
        zper_view_destroy (&view);
    }
    zper_partition_set_visible_limit (follower, INT64_MAX);
    s_test_end (follower, 90, 90);
    //  A limit ahead of the written end is reached by later writes
    zper_partition_set_visible_limit (follower, 93);
    s_test_end (follower, 90, 90);
    for (int number = 90; number < 96; number++)
        assert (s_test_append (leader, number, 2030 + number / 3) == number);
    assert (zper_partition_flush (leader) == 96);
    assert (s_test_copy_records (leader, follower, 90, 96) == 96);
    zper_partition_bounds (follower, &bounds);
    assert (bounds.visible_offset == 90 && bounds.end_offset == 96);    //  one record of 6
    zper_partition_set_visible_limit (follower, 96);
    s_test_end (follower, 96, 90);
    zper_partition_set_visible_limit (follower, INT64_MAX);
    assert (zper_partition_flush (follower) == 96);

    //  Truncate: a view held across it keeps its bytes
    view = zper_partition_read (follower, 60, SIZE_MAX);
    assert (view && zper_view_next (view, &message));
    uint8_t saved [32];
    memcpy (saved, message.data, message.size);
    assert (zper_partition_truncate (follower, 200) == 96);     //  past the end: nothing
    assert (zper_partition_truncate (follower, 64) == 63);      //  inside a record: its start
    s_test_end (follower, 63, 63);
    assert (memcmp (message.data, saved, message.size) == 0);
    s_test_check (&message, 60);
    while (zper_view_next (view, &message))
        s_test_check (&message, (int) message.offset);
    zper_view_destroy (&view);
    assert (zper_partition_truncate (follower, 60) == 60);      //  at a record start
    s_test_end (follower, 60, 60);
    assert (zper_partition_read (follower, 61, 1) == NULL && errno == ERANGE);
    assert (zper_partition_truncate (follower, 12) == 12);      //  across segments
    zper_partition_bounds (follower, &bounds);
    assert (bounds.end_offset == 12 && bounds.segment_count == 1 && bounds.last_timestamp == 2003);
    assert (zper_partition_offset_for_time (follower, 2010) == 12);
    assert (zper_partition_truncate (follower, 5) == 3);
    s_test_end (follower, 3, 3);
    //  Appends follow the cut; the copy is the leader again
    assert (s_test_copy_records (leader, follower, 3, 96) == 96);
    s_test_same_records (leader, follower, 0);
    assert (zper_partition_flush (follower) == 96);
    //  Cut at a segment's first record: the segment before becomes the active one
    zper_partition_bounds (leader, &bounds);
    int64_t positions [8];
    assert (zper_partition_segment_positions (leader, INT64_MAX, positions, 8) >= 2);
    view = zper_partition_read_position (leader, positions [1], 1);
    assert (view && zper_view_next (view, &message));
    int64_t second_segment = message.offset;
    zper_view_destroy (&view);
    assert (zper_partition_truncate (follower, second_segment) == second_segment);
    assert (zper_partition_truncate (follower, second_segment + 1) == second_segment);
    s_test_end (follower, second_segment, second_segment);
    assert (s_test_copy_records (leader, follower, second_segment, 96) == 96);
    s_test_same_records (leader, follower, 0);
    //  A reopen finds the cut log: after a crash right after the cut (its
    //  files copied as they are), and after a clean close
    assert (zper_partition_truncate (follower, 45) == 45);
    assert (system ("rm -rf crashed && mkdir crashed && cp -r follower/0 crashed/0") == 0);
    zper_partition_t *crashed = zper_partition_open ("crashed/0", &config);
    assert (crashed);
    s_test_end (crashed, 45, 45);
    s_test_read_all_visible (crashed, 45);
    zper_partition_destroy (&crashed);
    zper_partition_destroy (&follower);
    follower = zper_partition_open ("follower/0", &config);
    assert (follower);
    s_test_end (follower, 45, 45);
    s_test_read_all_visible (follower, 45);
    assert (s_test_copy_records (leader, follower, 45, 96) == 96);
    s_test_same_records (leader, follower, 0);
    zper_partition_destroy (&follower);
    follower = zper_partition_open ("follower/0", &config);
    assert (follower);
    s_test_same_records (leader, follower, 0);

    //  Reset: empty, starting at an offset and position of the leader's choice
    view = zper_partition_read (follower, 3, 1);
    assert (view && zper_view_next (view, &message));
    assert (zper_partition_reset (follower, 1000, 123456) == 0);
    s_test_check (&message, 3);             //  the view outlives the files
    zper_view_destroy (&view);
    zper_partition_bounds (follower, &bounds);
    assert (bounds.start_offset == 1000 && bounds.end_offset == 1000 && bounds.durable_offset == 1000);
    assert (bounds.start_position == 123456 && bounds.end_position == 123456);
    assert (bounds.segment_count == 1 && bounds.size_bytes == 0);
    assert (zper_partition_truncate (follower, 999) == -1 && errno == ERANGE);
    assert (zper_partition_read (follower, 0, 1) == NULL && errno == ERANGE);
    zper_partition_destroy (&follower);
    follower = zper_partition_open ("follower/0", &config);
    assert (follower);
    zper_partition_bounds (follower, &bounds);
    assert (bounds.start_offset == 1000 && bounds.end_offset == 1000);
    assert (bounds.start_position == 123456 && bounds.end_position == 123456);
    //  The same offset again (a segment of that name exists), then appends
    assert (zper_partition_reset (follower, 1000, 123456) == 0);
    view = zper_partition_read_records (leader, 0, 1);
    assert (zper_view_next_record (view, &first, &timestamp, &count, &data, &size));
    assert (zper_partition_append_record (follower, 1000, timestamp, data, size, count) == 1003);
    zper_view_destroy (&view);
    assert (zper_partition_flush (follower) == 1003);
    zper_partition_destroy (&follower);
    follower = zper_partition_open ("follower/0", &config);
    assert (follower);
    zper_partition_bounds (follower, &bounds);
    assert (bounds.start_offset == 1000 && bounds.end_offset == 1003 && bounds.durable_offset == 1003);
    view = zper_partition_read (follower, 1000, SIZE_MAX);
    assert (view && zper_view_count (view) == 3 && zper_view_next (view, &message));
    assert (message.position == 123456 && message.timestamp == 2000);
    zper_view_destroy (&view);
    zper_partition_destroy (&follower);
    zper_partition_destroy (&leader);

    //  Under DURABLE visibility record reads see written, undurable
    //  records: a failed sync's cut keeps the bytes such a view holds
    config.visibility = ZPER_VISIBILITY_DURABLE;
    zper_partition_t *partition = zper_partition_open ("durable-records/0", &config);
    assert (partition);
    for (int number = 0; number < 3; number++)
        assert (s_test_append (partition, number, 3000) == number);
    assert (zper_partition_write (partition) == 3);
    view = zper_partition_read_records (partition, 0, SIZE_MAX);
    assert (view && zper_view_next_record (view, &first, &timestamp, &count, &data, &size));
    assert (first == 0 && count == 3 && timestamp == 3000);
    uint8_t copy [64];
    assert (size <= sizeof copy);
    memcpy (copy, data, size);
    zper_partition_set_fault (partition, 0, EIO);
    assert (zper_partition_flush (partition) == -1 && errno == EIO);
    s_test_end (partition, 0, 0);
    assert (memcmp (data, copy, size) == 0);
    zper_view_destroy (&view);
    zper_partition_set_fault (partition, 0, 0);
    zper_partition_destroy (&partition);
}

void
zper_partition_test (bool verbose)
{
    //  @selftest
    zper_log_config_t config;
    zper_log_config_init (&config);
    config.segment_size = 0;
    assert (zper_partition_open ("topic/0", &config) == NULL && errno == EINVAL);
    config.segment_size = 1000;         //  small: rolls every few records
    config.flush_messages = 5;
    zper_partition_t *partition = zper_partition_open ("topic/0", &config);
    assert (partition);

    //  Appends sit in the open batch, invisible; a flush writes and syncs them
    assert (s_test_append (partition, 0, 1000) == 0);
    zper_view_t *view = zper_partition_read (partition, 0, 100);
    assert (view && zper_view_count (view) == 0);
    zper_view_destroy (&view);
    assert (zper_partition_read (partition, 1, 100) == NULL && errno == ERANGE);
    assert (zper_partition_flush (partition) == 1);
    for (int number = 1; number < 200; number++) {
        assert (s_test_append (partition, number, 1000 + number / 10 * 10) == number);
        if (zper_partition_flush_due (partition, zclock_time ()))
            assert (zper_partition_flush (partition) == number + 1);
    }
    assert (zper_partition_flush (partition) == 200);
    assert (!zper_partition_flush_due (partition, zclock_time () + 1000000));
    s_test_read_all (partition, 200);
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    assert (bounds.start_offset == 0 && bounds.end_offset == 200 && bounds.segment_count > 3);
    assert (bounds.first_timestamp == 1000 && bounds.last_timestamp == 1190);

    //  Legacy positions: message k of "m<k>"+empty frame is 2+len+2 bytes
    zper_view_t *by_offset = zper_partition_read (partition, 57, 1);
    zper_message_t message;
    assert (zper_view_count (by_offset) == 1 && zper_view_next (by_offset, &message));
    int64_t position = message.position;
    view = zper_partition_read_position (partition, position, 1);
    zper_message_t same;
    assert (view && zper_view_next (view, &same) && same.offset == 57 && same.data == message.data);
    zper_view_destroy (&view);
    assert (zper_partition_read_position (partition, position + 1, 1) == NULL && errno == EINVAL);
    assert (zper_partition_read_position (partition, bounds.durable_position + 1, 1) == NULL
            && errno == ERANGE);
    view = zper_partition_read_position (partition, bounds.durable_position, 1);
    assert (view && zper_view_count (view) == 0 && !zper_view_next (view, &message));
    zper_view_destroy (&view);

    //  Time: first message with timestamp >= t; records carry their newest
    assert (zper_partition_offset_for_time (partition, 0) == 0);
    int64_t found = zper_partition_offset_for_time (partition, 1105);
    view = zper_partition_read (partition, found, 1);
    assert (view && zper_view_next (view, &message) && message.timestamp >= 1105);
    zper_view_destroy (&view);
    if (found > 0) {
        view = zper_partition_read (partition, found - 1, 1);
        assert (view && zper_view_next (view, &message) && message.timestamp < 1105);
        zper_view_destroy (&view);
    }
    assert (zper_partition_offset_for_time (partition, 1000000) == 200);
    int64_t positions [4];
    assert (zper_partition_segment_positions (partition, 1001, positions, 4) == 1);
    assert (positions [0] == 0);
    assert (zper_partition_segment_positions (partition, 1000000, positions, 4) == 4);
    assert (positions [3] < bounds.durable_position && positions [0] < positions [1]);

    //  Bad input
    assert (zper_partition_append (partition, NULL, 0, 0) == -1 && errno == EINVAL);
    size_t count;
    assert (zper_partition_append_encoded (partition, "\x01\x01x", 3, 0, &count) == -1
            && errno == EPROTO && count == 0);
    uint8_t *large = (uint8_t *) zmalloc (config.max_message + 1);
    zper_frame_t large_frame = { large, config.max_message + 1 };
    assert (zper_partition_append (partition, &large_frame, 1, 0) == -1 && errno == EMSGSIZE);
    free (large);
    //  Encoded appends: two messages, one of them two frames
    assert (zper_partition_append_encoded (partition, "\x00\x02m2\x01\x00\x00\x00", 8, 0, &count)
            == 200 && count == 2);
    assert (zper_partition_flush (partition) == 202);

    //  A failed write or sync: error, nothing durable lost, offsets reused
    zper_partition_set_fault (partition, EIO, 0);
    assert (s_test_append (partition, 202, 0) == 202);
    assert (zper_partition_flush (partition) == -1 && errno == EIO);
    zper_partition_set_fault (partition, 0, ENOSPC);
    assert (s_test_append (partition, 202, 0) == 202);
    assert (zper_partition_flush (partition) == -1 && errno == ENOSPC);
    zper_partition_set_fault (partition, 0, 0);
    assert (s_test_append (partition, 202, 0) == 202);
    assert (zper_partition_flush (partition) == 203);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.end_offset == 203);

    //  Retention by bytes while a view holds the oldest segment
    view = zper_partition_read (partition, 0, 100);
    zmq_msg_t lent;
    assert (zper_view_next (view, &message));
    assert (zper_view_lend (view, message.data, message.size, &lent) == 0);
    assert (zper_view_lend (view, message.data, 1ull << 40, &lent) == -1 && errno == EINVAL);
    zper_view_destroy (&view);
    partition->config.retention_bytes = 2000;
    int deleted = zper_partition_retain (partition, zclock_time ());
    assert (deleted > 0);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.start_offset > 0 && bounds.size_bytes <= 2000 + config.segment_size);
    assert (zper_partition_read (partition, 0, 100) == NULL && errno == ERANGE);
    //  The lent bytes stayed valid after the file went away
    zper_message_t held = message;
    held.data = (const uint8_t *) zmq_msg_data (&lent);
    s_test_check (&held, 0);
    zmq_msg_close (&lent);
    zper_view_next (by_offset, &message);        //  already at its end
    zper_view_rewind (by_offset);
    assert (zper_view_next (by_offset, &message));
    s_test_check (&message, 57);
    zper_view_destroy (&by_offset);
    //  Retention by age never takes the active segment
    partition->config.retention_ms = 1;
    assert (zper_partition_retain (partition, 1000000000000LL) >= 0);
    zper_partition_bounds (partition, &bounds);
    assert (bounds.segment_count == 1 && bounds.durable_offset == 203);
    zper_partition_destroy (&partition);
    zper_partition_destroy (&partition);

    //  A clean restart reads no record and finds everything
    partition = zper_partition_open ("topic/0", &config);
    assert (partition && zper_partition_recovery_bytes (partition) == 0);
    zper_bounds_t reopened;
    zper_partition_bounds (partition, &reopened);
    assert (reopened.start_offset == bounds.start_offset);
    assert (reopened.durable_offset == 203 && reopened.durable_position == bounds.durable_position);
    assert (s_test_append (partition, 203, 0) == 203);
    assert (zper_partition_flush (partition) == 204);
    view = zper_partition_read (partition, 203, 100);
    assert (view && zper_view_next (view, &message));
    s_test_check (&message, 203);
    zper_view_destroy (&view);
    zper_partition_destroy (&partition);

    s_test_visibility_durable (config);
    s_test_visibility_written (config);
    s_test_replication (config);
    //  @end
}
