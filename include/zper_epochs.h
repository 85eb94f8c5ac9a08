/*  =========================================================================
    zper_epochs - a partition's leader epochs: which leader wrote which offsets

    A cluster partition keeps, beside its segments, the list of leader
    epochs and the offset each began at: (epoch, start_offset), both
    strictly increasing. It is what lets a replica that comes back from a
    failure find where its log and the current leader's part ways (Kafka's
    KIP-101, refined by KIP-279) and cut its log there, so that no replica
    ever keeps messages a later leader did not write.

    Stored as the text file `leader-epochs` in the partition's folder, one
    "epoch start_offset" line per entry, replaced atomically (write a
    temporary file, fdatasync, rename, fsync the folder) on every change,
    so a crash leaves the old or the new list, never a torn one. At most
    ZPER_EPOCHS_MAX entries are kept: the oldest are dropped (only a
    replica that far behind would need them, and it resets its log).

    Thread-safe: every call takes the object's own lock.
    ========================================================================= */

#ifndef ZPER_EPOCHS_H_INCLUDED
#define ZPER_EPOCHS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef struct _zper_epochs_t zper_epochs_t;

//  Open (or start empty) the epochs of the partition stored in folder.
//  A file that does not parse is an error. Returns NULL with errno.
zper_epochs_t *
    zper_epochs_open (const char *folder);

//  Idempotent; nulls *self_p.
void
    zper_epochs_destroy (zper_epochs_t **self_p);

//  Record that epoch begins at start_offset, durably, before returning.
//  epoch equal to the latest: nothing to do (0). Returns 0, or -1 with
//  errno EINVAL when epoch is below the latest or start_offset below the
//  latest entry's start, or the I/O error.
int
    zper_epochs_assign (zper_epochs_t *self, int64_t epoch, int64_t start_offset);

//  The latest epoch, -1 when there is none.
int64_t
    zper_epochs_latest (zper_epochs_t *self);

//  The start offset of the latest epoch, -1 when there is none.
int64_t
    zper_epochs_latest_start (zper_epochs_t *self);

//  KIP-279: for a replica whose latest epoch is epoch, the largest epoch
//  here <= epoch (into *found, -1 if epoch is below every entry) and
//  where it ends: the start of the entry after it, or log_end when it is
//  the latest. When epoch is below every entry: the first entry's start
//  (log_end when there is none). Returns that end offset.
int64_t
    zper_epochs_end_offset (zper_epochs_t *self, int64_t epoch, int64_t log_end, int64_t *found);

//  Drop every entry starting at or after offset (the log was cut there),
//  durably. Returns 0, or -1 with errno.
int
    zper_epochs_truncate_from (zper_epochs_t *self, int64_t offset);

//  Drop every entry (the log was reset). Returns 0, or -1 with errno.
int
    zper_epochs_clear (zper_epochs_t *self);

//  Entries, oldest first: copies at most max of them into epochs and
//  starts. Returns the number of entries copied.
size_t
    zper_epochs_list (zper_epochs_t *self, int64_t *epochs, int64_t *starts, size_t max);

//  Self test of this class
void
    zper_epochs_test (bool verbose);

#endif
