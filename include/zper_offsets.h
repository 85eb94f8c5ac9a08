/*  =========================================================================
    zper_offsets - committed offsets of consumer groups, durable

    A map (group, topic) -> (offset, commit time) kept in memory and in one
    append-only file, base_dir/__consumer_offsets (ZPER_OFFSETS_FILE; the
    format and its invariants open zper_offsets.c and docs/storage.md).
    `topic` is a stored topic: a partition of a partitioned topic is its
    own topic "orders.3". A commit is acknowledged only once it is
    fdatasync'd, so an acknowledged commit survives kill -9 and power loss
    like acknowledged data; a torn last record is cut off at open. The file
    is compacted (rewritten with one record per live entry, then renamed
    over the old one) when it holds far more records than entries.

    Thread-safe: one mutex; rear workers commit concurrently.
    ========================================================================= */

#ifndef ZPER_OFFSETS_H_INCLUDED
#define ZPER_OFFSETS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _zper_offsets_t zper_offsets_t;

//  One committed offset: the next offset the group will read (Kafka's
//  convention), and when it was committed (wall clock ms).
typedef struct {
    int64_t offset;
    int64_t timestamp_ms;
} zper_committed_t;

//  Open (creating it if missing) the offsets file at path, replaying it
//  into memory; a torn or corrupt tail is cut off (logged once). At most
//  max_entries (group, topic) pairs are kept. Returns NULL with errno set
//  when the file cannot be opened, read or repaired.
zper_offsets_t *
    zper_offsets_open (const char *path, size_t max_entries);

//  Close. Idempotent; nulls *self_p.
void
    zper_offsets_destroy (zper_offsets_t **self_p);

//  Store offset for (group, topic), durably, before returning. group and
//  topic are valid names (zper_log_name_valid), offset >= 0. Returns 0, or
//  -1 with errno: EDQUOT when the pair is new and max_entries are held
//  (nothing stored), ENOSPC/EIO... when the disk refused (nothing stored:
//  the previous value stays, in memory and on disk).
int
    zper_offsets_commit (zper_offsets_t *self, const char *group, const char *topic,
                         int64_t offset, int64_t timestamp_ms);

//  The committed offset of (group, topic): 0 and *committed filled, or -1
//  when there is none.
int
    zper_offsets_committed (zper_offsets_t *self, const char *group, const char *topic,
                            zper_committed_t *committed);

//  Call fn for every entry of group (every entry when group is NULL), in
//  (group, topic) order, under the lock: fn must not call back into self.
typedef void (zper_offsets_fn) (const char *group, const char *topic,
                                const zper_committed_t *committed, void *argument);
void
    zper_offsets_each (zper_offsets_t *self, const char *group, zper_offsets_fn *fn,
                       void *argument);

//  Groups with at least one entry, and whether group is one of them
//  (without a walk of the entries: for groups.max_groups on every request).
size_t
    zper_offsets_groups (zper_offsets_t *self);
bool
    zper_offsets_has_group (zper_offsets_t *self, const char *group);

//  Entries held, and records in the file (what compaction shrinks).
size_t
    zper_offsets_size (zper_offsets_t *self);
size_t
    zper_offsets_records (zper_offsets_t *self);

//  Test hook: until called again with zeros, every commit's append fails
//  with write_errno after writing half its record, or (write_errno 0)
//  writes it whole and then its fdatasync fails with sync_errno, as a disk
//  refusing would. Compaction is not affected.
void
    zper_offsets_set_fault (zper_offsets_t *self, int write_errno, int sync_errno);

//  Self test of this class
void
    zper_offsets_test (bool verbose);

#endif
