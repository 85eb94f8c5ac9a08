/*  =========================================================================
    zper_wire - big-endian integer frames, as every ZPER reply carries them

    The broker's protocol puts each integer in its own frame: int64 offsets,
    int32 sizes, a 1-byte status (docs/protocol.md). A frame whose size is
    not exactly the integer's width is refused, never guessed at.
    ========================================================================= */

#ifndef ZPER_WIRE_H_INCLUDED
#define ZPER_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>

//  Sizes of the integers of docs/protocol.md.
#define ZPER_WIRE_INT64_SIZE    8
#define ZPER_WIRE_INT32_SIZE    4
#define ZPER_WIRE_STATUS_SIZE   1

//  Store value big-endian in 8 (4) bytes at target.
void
    zper_wire_put_int64 (void *target, int64_t value);
void
    zper_wire_put_int32 (void *target, int32_t value);

//  Read a big-endian value from 8 (4) bytes at source.
int64_t
    zper_wire_get_int64 (const void *source);
int32_t
    zper_wire_get_int32 (const void *source);

//  Append a frame holding value to msg.
void
    zper_wire_add_int64 (zmsg_t *msg, int64_t value);
void
    zper_wire_add_int32 (zmsg_t *msg, int32_t value);
void
    zper_wire_add_status (zmsg_t *msg, uint8_t status);

//  Read a frame that must be exactly 8 (4) bytes. Returns 0, or -1 when
//  frame is NULL or its size is wrong.
int
    zper_wire_frame_int64 (zframe_t *frame, int64_t *value);
int
    zper_wire_frame_int32 (zframe_t *frame, int32_t *value);

//  Self test of this class
void
    zper_wire_test (bool verbose);

#endif
