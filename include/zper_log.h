/*  =========================================================================
    zper_log - the log engine: topics and partitions under one base_dir

    The on-disk heart shared by the broker and by Dafka stores. Layout:

        base_dir/<topic>/<partition>/00000000000000000000.log   records
                                     00000000000000000000.index sparse offset index
                                     00000000000000000000.timeindex
                                     checkpoint                  recovery checkpoint
        base_dir/.lock                   flock'd by the one process using base_dir (zper_dir_lock.h)
    Segments are named by their first logical offset (20 digits). The record
    format and its invariants are in docs/storage.md and at the top of
    src/log/zper_segment.c.

    Threads: every zper_log_* and zper_partition_* call is thread-safe. One
    partition is appended by one writer at a time (the broker routes a topic
    to one front worker), read by any number of threads.

    Durability: a partition has an end offset (next offset to assign), a
    durable offset (every offset below it is fdatasync'd under the flush
    policy) and a visible offset, the end readers see: the durable offset,
    or under ZPER_VISIBILITY_WRITTEN the end of what was written to the
    segment files (docs/storage.md, "Visibility"). Acknowledgements only
    ever name offsets below the durable offset.
    ========================================================================= */

#ifndef ZPER_LOG_H_INCLUDED
#define ZPER_LOG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "zper_defaults.h"
#include "zper_zmtp.h"

typedef struct _zper_log_t zper_log_t;
typedef struct _zper_partition_t zper_partition_t;
typedef struct _zper_view_t zper_view_t;
typedef struct _zper_partition_lru_t zper_partition_lru_t;

//  What readers see (config key `visibility`).
typedef enum {
    ZPER_VISIBILITY_WRITTEN,        //  once written to the segment file (page cache): survives
                                    //  a crash of the process; a power loss may take back the
                                    //  unsynced tail that readers already saw
    ZPER_VISIBILITY_DURABLE         //  once fdatasync'd: readers wait for the flush policy
} zper_visibility_t;

//  Settings of a log; zper_log_config_init fills the defaults from
//  zper_defaults.h. Strings are copied by zper_log_new.
typedef struct {
    const char *base_dir;
    uint64_t segment_size;          //  roll when the next record would pass this size
    uint64_t flush_messages;        //  sync after this many unsynced messages (0 = every append batch)
    int64_t flush_interval_ms;      //  sync when the oldest unsynced message is this old
    int64_t retention_ms;           //  delete segments whose newest record is older (<= 0: forever)
    int64_t retention_bytes;        //  delete oldest segments while a partition is larger (< 0: no limit)
    size_t max_message;             //  largest message (sum of frame sizes), and largest frame
    zper_visibility_t visibility;   //  what readers see
    size_t max_open_partitions;     //  partitions holding open files at once (>= 1); the log
                                    //  also keeps it within what RLIMIT_NOFILE allows
    size_t max_topics;              //  topic folders the log may hold (>= 1)
} zper_log_config_t;

//  Fill config with the defaults of zper_defaults.h.
void
    zper_log_config_init (zper_log_config_t *config);

//  Is this a valid topic (or partition) name? Letters, digits, '.', '_',
//  '-'; 1..ZPER_TOPIC_NAME_MAX bytes; never ".", ".." or ZPER_DIR_LOCK_FILE
//  (the data folder's lock), nor ZPER_OFFSETS_FILE or its ".tmp" (consumer
//  groups' offsets, files beside the topic folders). Such a name can never
//  produce a path outside base_dir.
bool
    zper_log_name_valid (const char *name);

//  Open (creating base_dir if needed) a log. Partitions already on disk are
//  opened lazily by zper_log_partition. The log locks base_dir first, for
//  its whole life (zper_dir_lock.h): one log per folder, in any process.
//  Returns NULL with errno set on error (zper_dir_lock_new's errors; its
//  zper_dir_lock_reason says them in one line for a user). The topic
//  folders are counted (for max_topics), not opened. At most
//  max_open_partitions partitions hold open files at once, and no more than
//  (RLIMIT_NOFILE soft limit - ZPER_LOG_FDS_RESERVED) / ZPER_LOG_PARTITION_FDS:
//  the others keep their state in memory and reopen their files on use
//  (docs/storage.md, "Open partitions").
zper_log_t *
    zper_log_new (const zper_log_config_t *config);

//  Close every open partition cleanly (flush, checkpoint, clean-shutdown
//  marker) and free the log. Idempotent; nulls *self_p.
void
    zper_log_destroy (zper_log_t **self_p);

//  The partition of a topic, opened (and recovered) on first use. With
//  create false, a partition that does not exist on disk gives NULL with
//  errno ENOENT (an unknown topic). A bad name gives NULL with errno
//  EINVAL; a new topic past max_topics, EDQUOT; a partition that exists but
//  cannot be opened now, the open's errno (EMFILE, ENFILE, ENOMEM when the
//  process is out of descriptors or mappings even after closing idle
//  partitions and retrying once; EIO...). A refused or failed creation
//  leaves no folder behind. The log owns the partition: do not destroy it;
//  the pointer stays valid for the log's whole life, even while the lru
//  has its files closed.
zper_partition_t *
    zper_log_partition (zper_log_t *self, const char *topic, const char *partition, bool create);

//  Names of the topics present (on disk or open), sorted. Caller destroys
//  the list (strings are owned by the list, autofree).
zlist_t *
    zper_log_topics (zper_log_t *self);

//  Names of the partitions of a topic, sorted; NULL if the topic does not
//  exist. Caller destroys the list.
zlist_t *
    zper_log_partitions (zper_log_t *self, const char *topic);

//  Flush every open partition whose flush policy is due at time now_ms
//  (wall clock ms, as zclock_time). The owner calls this from a timer at
//  least every flush_interval_ms, so that a quiet partition's tail becomes
//  durable within flush_interval_ms. Returns 0, or -1 if any flush failed.
int
    zper_log_flush_due (zper_log_t *self, int64_t now_ms);

//  Apply retention (age, bytes) to every partition on disk, walking the
//  folders: each is opened if it was not (the lru closes its files again
//  when others need them). Returns the number of segments deleted, or -1
//  if any deletion failed or a partition could not be opened.
int
    zper_log_retain (zper_log_t *self, int64_t now_ms);

//  The same pass, in steps of about budget_ms of work each, so that a
//  caller with other duties (the manager's heartbeats) is never held long
//  by a log of 100,000 topics: the first step lists the topic folders, each
//  step goes on where the last stopped, and the step that ends the pass
//  sets *done. Returns the segments this step deleted, or -1 if a deletion
//  or an open failed (the pass goes on). One caller at a time.
int
    zper_log_retain_step (zper_log_t *self, int64_t now_ms, int64_t budget_ms, bool *done);

//  Topic folders the log holds (what max_topics bounds), partitions
//  holding open files now, and partitions whose files the lru closed so far.
void
    zper_log_counts (zper_log_t *self, size_t *topics, size_t *open_partitions,
                     uint64_t *closed_partitions);

//  The latency of the segment data syncs (fdatasync, the flush that makes
//  appends durable) of every log of the process so far, in microseconds.
typedef struct {
    uint64_t count;                     //  syncs
    uint64_t sum_us;                    //  their total time
    int64_t bounds_us [ZPER_SYNC_HISTOGRAM_BUCKETS];    //  ZPER_SYNC_HISTOGRAM_BOUNDS_US
    uint64_t buckets [ZPER_SYNC_HISTOGRAM_BUCKETS];     //  cumulative: syncs <= bounds_us [i]
} zper_log_sync_histogram_t;

//  Fill histogram. Lock-free (atomics), any thread; a sync that ends while
//  it is read may be in count and not yet in its bucket, never the reverse.
void
    zper_log_sync_histogram (zper_log_sync_histogram_t *histogram);

//  Self test of this class
void
    zper_log_test (bool verbose);

#endif
