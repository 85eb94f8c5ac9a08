/*  =========================================================================
    zper_fuzz_log_recovery - fuzz target: record decoding and recovery

    Input: [layout:1][rest]. The rest becomes a partition folder: with
    layout bit 0 its first 72 bytes are the checkpoint file; the remainder
    is segment 0, or (bit 1) is split in two at a point chosen by the next
    byte, the second part becoming a later segment named by the byte after
    it. zper_partition_open recovers the folder (src/log, docs/storage.md
    section 6); then every message below the durable end must read (each
    record served passes its CRC) or fail with EBADMSG, and the partition
    must take and serve one more acknowledged message.
    ========================================================================= */

#include "zper_fuzz.h"
#include "zper_partition.h"
#include <errno.h>
#include <string.h>

#define CHECKPOINT_BYTES 72

static void
s_write_file (const char *folder, const char *name, const uint8_t *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", folder, name);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (data, 1, size, file) == size || size == 0);
    fclose (file);
}

//  Read every message from the start; returns the count served.
static int64_t
s_read_all (zper_partition_t *partition)
{
    zper_bounds_t bounds;
    zper_partition_bounds (partition, &bounds);
    int64_t offset = bounds.start_offset, served = 0;
    while (offset < bounds.durable_offset) {
        zper_view_t *view = zper_partition_read (partition, offset, 1 << 16);
        if (!view) {
            assert (errno == EBADMSG);
            return served;
        }
        zper_message_t message;
        size_t count = 0;
        while (zper_view_next (view, &message)) {
            assert (message.offset == offset + (int64_t) count);
            count++;
        }
        zper_view_destroy (&view);
        assert (count > 0);
        offset += (int64_t) count;
        served += (int64_t) count;
    }
    return served;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Recovery warns about every bad record it cuts: millions of lines while fuzzing
    zsys_set_logstream (NULL);
    if (size < 1)
        return 0;
    uint8_t layout = data [0];
    data++, size--;
    char folder [256];
    snprintf (folder, sizeof folder, "%s/partition", zper_fuzz_scratch ());
    zsys_dir_create (folder);
    if ((layout & 1) && size >= CHECKPOINT_BYTES) {
        s_write_file (folder, "checkpoint", data, CHECKPOINT_BYTES);
        data += CHECKPOINT_BYTES, size -= CHECKPOINT_BYTES;
    }
    size_t first = size;
    uint64_t second_name = 0;
    if ((layout & 2) && size >= 2) {
        first = data [0] * size / 256;
        second_name = 1 + data [1];
        data += 2, size -= 2;
        first = first < size? first: size;
    }
    s_write_file (folder, "00000000000000000000.log", data, first);
    if (second_name) {
        char name [64];
        snprintf (name, sizeof name, "%020" PRIu64 ".log", second_name);
        s_write_file (folder, name, data + first, size - first);
    }
    zper_log_config_t config;
    zper_log_config_init (&config);
    config.segment_size = 4096;
    zper_partition_t *partition = zper_partition_open (folder, &config);
    if (partition) {
        s_read_all (partition);
        zper_frame_t frame = { "after recovery", 14 };
        int64_t offset = zper_partition_append (partition, &frame, 1, 0);
        assert (offset >= 0);
        assert (zper_partition_flush (partition) == offset + 1);
        zper_view_t *view = zper_partition_read (partition, offset, 1 << 16);
        assert (view);
        zper_message_t message;
        assert (zper_view_next (view, &message) && message.offset == offset);
        zper_view_destroy (&view);
        zper_partition_destroy (&partition);
    }
    zdir_t *dir = zdir_new (folder, NULL);
    if (dir) {
        zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
    return 0;
}
