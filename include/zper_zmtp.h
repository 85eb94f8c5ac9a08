/*  =========================================================================
    zper_zmtp - the ZMTP/2.0 frame encoding that ZPER stores and serves

    A message is stored as its frames, each encoded the ZMTP/2.0 way and
    concatenated (zper-wire.md, "Storage encoding"):
        short frame  [flags][size:1][body]     size <= 255
        long frame   [flags|0x02][size:8][body] size > 255, big-endian
    flags: MORE = 0x01 on every frame but the last of a message.
    This is the byte stream that legacy FETCH returns, that the native batch
    write path sends, and that the log keeps on disk inside its records.
    ========================================================================= */

#ifndef ZPER_ZMTP_H_INCLUDED
#define ZPER_ZMTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#define ZPER_ZMTP_MORE          0x01
#define ZPER_ZMTP_LONG          0x02
#define ZPER_ZMTP_SHORT_MAX     255

//  One frame as a (pointer, size) pair: the body is not owned.
typedef struct {
    const void *data;
    size_t size;
} zper_frame_t;

//  Bytes needed to encode one frame of this size (header + body).
size_t
    zper_zmtp_frame_size (size_t body_size);

//  Bytes needed to encode a message of these frames.
size_t
    zper_zmtp_message_size (const zper_frame_t *frames, size_t frame_count);

//  Encode the frames of one message into buffer, which must hold
//  zper_zmtp_message_size () bytes. Returns the number of bytes written.
size_t
    zper_zmtp_encode (const zper_frame_t *frames, size_t frame_count, void *buffer);

//  Decode the next frame at *cursor (not past end). On success fills frame,
//  sets *more, advances *cursor and returns 0. Returns -1 when the bytes do
//  not hold a whole, well-formed frame (unknown flag bits, truncated header
//  or body, a long frame whose size fits in a short one is accepted).
int
    zper_zmtp_decode (const uint8_t **cursor, const uint8_t *end, zper_frame_t *frame, bool *more);

//  Length in bytes of the whole message that starts at data (all its frames,
//  up to and including the first frame without MORE), or -1 if the bytes do
//  not hold a whole message. *frame_count receives the number of frames if
//  not NULL.
int64_t
    zper_zmtp_message_length (const uint8_t *data, size_t size, size_t *frame_count);

//  Self test of this class
void
    zper_zmtp_test (bool verbose);

#endif
