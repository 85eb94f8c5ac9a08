/*  =========================================================================
    zper_partition_internal - the state of a partition, shared by the two
    files that implement it: zper_partition.c (writing, reading, retention)
    and zper_recovery.c (checkpoint and recovery). Internal to src/log.
    ========================================================================= */

#ifndef ZPER_PARTITION_INTERNAL_H_INCLUDED
#define ZPER_PARTITION_INTERNAL_H_INCLUDED

#include "zper_partition.h"
#include "zper_segment.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  A growable buffer of message encodings: the open batch, or the one
//  being written
typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    uint32_t count;                 //  messages
    int64_t base_offset;
    int64_t base_position;
    int64_t timestamp;              //  newest
} batch_t;

//  Where a log ends: the offsets after its last message and the sizes of
//  the files holding them. A partition keeps three: written, visible, durable.
typedef struct {
    int64_t offset;
    int64_t position;
    int64_t timestamp;              //  of the last message, -1 if none
    size_t segment_count;           //  segments holding these messages (the last may be empty)
    uint64_t file_size;             //  of segment segment_count - 1
    uint64_t index_size;
    uint64_t timeindex_size;
} log_end_t;

struct _zper_partition_t {
    char *path;
    zper_log_config_t config;
    pthread_mutex_t mutex;
    pthread_mutex_t io_mutex;
    bool opened;                    //  recovered: destroy writes a clean checkpoint
    //  Under mutex (changed under io_mutex too when it is a file change)
    zper_segment_t **segments;      //  oldest first; the last one is active
    size_t segment_count;
    size_t segment_capacity;
    int64_t end_offset;
    int64_t end_position;
    int64_t end_timestamp;          //  newest timestamp assigned
    batch_t batch;                  //  open batch
    int64_t pending_since;          //  wall clock ms of the oldest undurable append, -1 none
    log_end_t visible;              //  what readers see: written or durable (config.visibility)
    log_end_t durable;              //  fdatasync'd: what acks and the checkpoint name
    log_end_t published;            //  what the write path made visible (written or durable
                                    //  end); visible is it, capped at limited
    int64_t visible_limit;          //  the readers' cap (a cluster's high-watermark), or INT64_MAX
    log_end_t limited;              //  under a cap: the end at the last record start at or
                                    //  below min(visible_limit, written end)
    bool limit_reached;             //  limited was found with the written end at or past the
                                    //  limit: later writes need not look for it again
    zper_segment_t *mapped [ZPER_LOG_MAPPED_SEGMENTS_MAX];  //  FIFO of segments holding a mapping
    size_t mapped_count;
    //  Under io_mutex
    batch_t writing;                //  sealed batch on its way to disk
    log_end_t written;              //  records written to the segment files (page cache);
                                    //  changed with mutex held too (record reads use it)
    bool rolled;                    //  the folder changed since its last fsync (a segment
                                    //  created, or a cut whose folder fsync failed)
    uint64_t checkpoint_bytes;      //  bytes synced since the last checkpoint
    bool checkpoint_exact;          //  the checkpoint names the end of the files: recovery
                                    //  adopts it, reading nothing, so a close need not write one
    bool checkpoint_clean;          //  it says clean: the next record write first writes an
                                    //  unclean one, so that a crash after it is noticed
    int fault_write_errno;          //  test hook
    int fault_sync_errno;
    uint64_t recovery_bytes;
    //  Under the lru's mutex: the place of a partition holding open files
    //  in the list of its lru (docs/storage.md, "Open partitions")
    zper_partition_lru_t *lru;      //  NULL: not bounded
    zper_partition_t *lru_newer;
    zper_partition_t *lru_older;
    bool lru_listed;
};

//  ---- recovery (zper_recovery.c) --------------------------------------------

//  Load the partition's segments from its folder and recover them
//  (docs/storage.md, "Recovery"), leaving the written, visible and durable
//  ends at the end of what was kept. 0, or -1 with errno.
int
    zper_recovery_load (zper_partition_t *self);

//  Record the durable end as the synced end in the checkpoint file, clean
//  or not. Caller holds io_mutex (or is opening). 0, or -1 with errno.
int
    zper_recovery_checkpoint_write (zper_partition_t *self, bool clean);

//  ---- small helpers of both files ---------------------------------------------

static inline int
s_sync_directory (const char *path)
{
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

static inline zper_segment_t *
s_active (zper_partition_t *self)
{
    assert (self->segment_count > 0);
    return self->segments [self->segment_count - 1];
}

static inline void
s_segments_push (zper_partition_t *self, zper_segment_t *segment)
{
    if (self->segment_count == self->segment_capacity) {
        self->segment_capacity = self->segment_capacity? self->segment_capacity * 2: 8;
        self->segments = (zper_segment_t **) realloc (self->segments,
                             self->segment_capacity * sizeof (zper_segment_t *));
        assert (self->segments);
    }
    self->segments [self->segment_count++] = segment;
}

static inline void
s_mapped_forget (zper_partition_t *self, zper_segment_t *segment)
{
    for (size_t index = 0; index < self->mapped_count; index++)
        if (self->mapped [index] == segment) {
            memmove (self->mapped + index, self->mapped + index + 1,
                     (self->mapped_count - index - 1) * sizeof (zper_segment_t *));
            self->mapped_count--;
            return;
        }
}

//  Unlink and free segments [from, segment_count); the caller holds both locks
static inline void
s_segments_drop_from (zper_partition_t *self, size_t from)
{
    while (self->segment_count > from) {
        zper_segment_t *segment = self->segments [--self->segment_count];
        s_mapped_forget (self, segment);
        zper_segment_remove (segment);
        zper_segment_destroy (&segment);
    }
}

//  The end of the log after the last record of the active segment
static inline void
s_end_of_active (zper_partition_t *self, int64_t offset, int64_t position, int64_t timestamp,
                 log_end_t *end)
{
    zper_segment_t *active = s_active (self);
    end->offset = offset;
    end->position = position;
    end->timestamp = timestamp;
    end->segment_count = self->segment_count;
    end->file_size = zper_segment_file_size (active);
    end->index_size = zper_segment_index_size (active);
    end->timeindex_size = zper_segment_timeindex_size (active);
}

#endif
