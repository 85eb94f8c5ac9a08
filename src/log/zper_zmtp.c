/*  =========================================================================
    zper_zmtp - the ZMTP/2.0 frame encoding that ZPER stores and serves

    Encoding and decoding are pure functions over byte buffers: no
    allocation, no state. See include/zper_zmtp.h for the format.
    ========================================================================= */

#include "zper_zmtp.h"
#include <assert.h>
#include <string.h>

#define ZPER_ZMTP_SHORT_HEADER  2
#define ZPER_ZMTP_LONG_HEADER   9

size_t
zper_zmtp_frame_size (size_t body_size)
{
    return (body_size <= ZPER_ZMTP_SHORT_MAX? ZPER_ZMTP_SHORT_HEADER: ZPER_ZMTP_LONG_HEADER)
           + body_size;
}

size_t
zper_zmtp_message_size (const zper_frame_t *frames, size_t frame_count)
{
    size_t total = 0;
    for (size_t index = 0; index < frame_count; index++)
        total += zper_zmtp_frame_size (frames [index].size);
    return total;
}

size_t
zper_zmtp_encode (const zper_frame_t *frames, size_t frame_count, void *buffer)
{
    uint8_t *target = (uint8_t *) buffer;
    for (size_t index = 0; index < frame_count; index++) {
        size_t size = frames [index].size;
        uint8_t flags = index + 1 < frame_count? ZPER_ZMTP_MORE: 0;
        if (size <= ZPER_ZMTP_SHORT_MAX) {
            *target++ = flags;
            *target++ = (uint8_t) size;
        }
        else {
            *target++ = flags | ZPER_ZMTP_LONG;
            for (int shift = 56; shift >= 0; shift -= 8)
                *target++ = (uint8_t) ((uint64_t) size >> shift);
        }
        if (size)
            memcpy (target, frames [index].data, size);
        target += size;
    }
    return (size_t) (target - (uint8_t *) buffer);
}

int
zper_zmtp_decode (const uint8_t **cursor, const uint8_t *end, zper_frame_t *frame, bool *more)
{
    const uint8_t *source = *cursor;
    if (end - source < ZPER_ZMTP_SHORT_HEADER)
        return -1;
    uint8_t flags = *source++;
    if (flags & ~(ZPER_ZMTP_MORE | ZPER_ZMTP_LONG))
        return -1;                      //  command frames and reserved bits are not data
    uint64_t size;
    if (flags & ZPER_ZMTP_LONG) {
        if (end - source < 8)
            return -1;
        size = 0;
        for (int index = 0; index < 8; index++)
            size = (size << 8) | *source++;
    }
    else
        size = *source++;
    if (size > (uint64_t) (end - source))
        return -1;
    frame->data = source;
    frame->size = (size_t) size;
    *more = (flags & ZPER_ZMTP_MORE) != 0;
    *cursor = source + size;
    return 0;
}

int64_t
zper_zmtp_message_length (const uint8_t *data, size_t size, size_t *frame_count)
{
    const uint8_t *cursor = data;
    const uint8_t *end = data + size;
    size_t frames = 0;
    bool more = true;
    while (more) {
        zper_frame_t frame;
        if (zper_zmtp_decode (&cursor, end, &frame, &more))
            return -1;
        frames++;
    }
    if (frame_count)
        *frame_count = frames;
    return cursor - data;
}

void
zper_zmtp_test (bool verbose)
{
    //  @selftest
    //  The example of zper-wire.md: "hello", ["id-2","world"], 300 x "L"
    uint8_t large [300];
    memset (large, 'L', sizeof large);
    zper_frame_t hello [] = { { "hello", 5 } };
    zper_frame_t pair [] = { { "id-2", 4 }, { "world", 5 } };
    zper_frame_t big [] = { { large, sizeof large } };
    uint8_t buffer [512];
    size_t size = 0;
    size += zper_zmtp_encode (hello, 1, buffer + size);
    size += zper_zmtp_encode (pair, 2, buffer + size);
    assert (size == 7 + 6 + 7);
    assert (memcmp (buffer, "\x00\x05hello\x01\x04id-2\x00\x05world", size) == 0);
    size_t big_at = size;
    size += zper_zmtp_encode (big, 1, buffer + size);
    assert (size - big_at == zper_zmtp_frame_size (300));
    assert (memcmp (buffer + big_at, "\x02\x00\x00\x00\x00\x00\x00\x01\x2c", 9) == 0);
    assert (zper_zmtp_message_size (pair, 2) == 13);

    size_t frame_count;
    assert (zper_zmtp_message_length (buffer, size, &frame_count) == 7 && frame_count == 1);
    assert (zper_zmtp_message_length (buffer + 7, size - 7, &frame_count) == 13 && frame_count == 2);
    assert (zper_zmtp_message_length (buffer + big_at, size - big_at, NULL) == 309);

    //  Round trip the frames of the second message
    const uint8_t *cursor = buffer + 7;
    zper_frame_t frame;
    bool more;
    assert (zper_zmtp_decode (&cursor, buffer + size, &frame, &more) == 0);
    assert (more && frame.size == 4 && memcmp (frame.data, "id-2", 4) == 0);
    assert (zper_zmtp_decode (&cursor, buffer + size, &frame, &more) == 0);
    assert (!more && frame.size == 5 && memcmp (frame.data, "world", 5) == 0);

    //  Empty frames are frames
    zper_frame_t empty [] = { { NULL, 0 }, { "", 0 } };
    size = zper_zmtp_encode (empty, 2, buffer);
    assert (size == 4 && zper_zmtp_message_length (buffer, size, &frame_count) == 4 && frame_count == 2);

    //  Malformed: truncated body, truncated long header, reserved flag, no last frame
    assert (zper_zmtp_message_length ((const uint8_t *) "\x00\x05hell", 6, NULL) == -1);
    assert (zper_zmtp_message_length ((const uint8_t *) "\x02\x00\x00", 3, NULL) == -1);
    assert (zper_zmtp_message_length ((const uint8_t *) "\x04\x01x", 3, NULL) == -1);
    assert (zper_zmtp_message_length ((const uint8_t *) "\x01\x01x", 3, NULL) == -1);
    //  A huge declared length never reads past the end
    assert (zper_zmtp_message_length ((const uint8_t *) "\x02\xff\xff\xff\xff\xff\xff\xff\xff", 9, NULL) == -1);
    //  @end
}
