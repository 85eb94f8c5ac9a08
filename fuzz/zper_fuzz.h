/*  =========================================================================
    zper_fuzz - what the fuzz targets share (fuzz/run.sh, docs/reliability.md)

    Each fuzz/zper_fuzz_<target>.c defines LLVMFuzzerTestOneInput. Built
    with clang -fsanitize=fuzzer it is a libFuzzer target; built with
    zper_fuzz_replay.c and the normal compiler it replays a corpus (CI).
    Targets must be deterministic and leave no state behind between inputs.
    ========================================================================= */

#ifndef ZPER_FUZZ_H_INCLUDED
#define ZPER_FUZZ_H_INCLUDED

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Split fuzz bytes into frames: each frame is [size:1][size bytes]; a
//  size running past the end takes what is left. Returns a new zmsg (maybe
//  empty). Lets one input describe any multipart message.
static inline zmsg_t *
zper_fuzz_frames (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    size_t cursor = 0;
    while (cursor < size) {
        size_t frame_size = data [cursor++];
        if (frame_size > size - cursor)
            frame_size = size - cursor;
        zmsg_addmem (msg, data + cursor, frame_size);
        cursor += frame_size;
    }
    return msg;
}

//  A scratch folder for targets that need files: on /dev/shm when it
//  exists (no disk syncs), created once per process, removed at exit.
const char *
    zper_fuzz_scratch (void);

#endif
