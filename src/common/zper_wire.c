/*  =========================================================================
    zper_wire - big-endian integer frames

    Byte-by-byte shifts rather than htobe64 casts: the frame data of a
    ZeroMQ message has no alignment guarantee.
    ========================================================================= */

#include "zper_wire.h"
#include <assert.h>

void
zper_wire_put_int64 (void *target, int64_t value)
{
    uint8_t *bytes = (uint8_t *) target;
    for (int index = 0; index < 8; index++)
        bytes [index] = (uint8_t) ((uint64_t) value >> (56 - 8 * index));
}

void
zper_wire_put_int32 (void *target, int32_t value)
{
    uint8_t *bytes = (uint8_t *) target;
    for (int index = 0; index < 4; index++)
        bytes [index] = (uint8_t) ((uint32_t) value >> (24 - 8 * index));
}

int64_t
zper_wire_get_int64 (const void *source)
{
    const uint8_t *bytes = (const uint8_t *) source;
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | bytes [index];
    return (int64_t) value;
}

int32_t
zper_wire_get_int32 (const void *source)
{
    const uint8_t *bytes = (const uint8_t *) source;
    uint32_t value = 0;
    for (int index = 0; index < 4; index++)
        value = (value << 8) | bytes [index];
    return (int32_t) value;
}

void
zper_wire_add_int64 (zmsg_t *msg, int64_t value)
{
    uint8_t bytes [8];
    zper_wire_put_int64 (bytes, value);
    zmsg_addmem (msg, bytes, sizeof bytes);
}

void
zper_wire_add_int32 (zmsg_t *msg, int32_t value)
{
    uint8_t bytes [4];
    zper_wire_put_int32 (bytes, value);
    zmsg_addmem (msg, bytes, sizeof bytes);
}

void
zper_wire_add_status (zmsg_t *msg, uint8_t status)
{
    zmsg_addmem (msg, &status, 1);
}

int
zper_wire_frame_int64 (zframe_t *frame, int64_t *value)
{
    if (!frame || zframe_size (frame) != 8)
        return -1;
    *value = zper_wire_get_int64 (zframe_data (frame));
    return 0;
}

int
zper_wire_frame_int32 (zframe_t *frame, int32_t *value)
{
    if (!frame || zframe_size (frame) != 4)
        return -1;
    *value = zper_wire_get_int32 (zframe_data (frame));
    return 0;
}

void
zper_wire_test (bool verbose)
{
    uint8_t bytes [8];
    zper_wire_put_int64 (bytes, -1);
    for (int index = 0; index < 8; index++)
        assert (bytes [index] == 0xff);
    zper_wire_put_int64 (bytes, 0x0102030405060708LL);
    assert (bytes [0] == 1 && bytes [7] == 8);
    assert (zper_wire_get_int64 (bytes) == 0x0102030405060708LL);
    zper_wire_put_int32 (bytes, -2);
    assert (zper_wire_get_int32 (bytes) == -2 && bytes [3] == 0xfe);

    zmsg_t *msg = zmsg_new ();
    zper_wire_add_status (msg, 100);
    zper_wire_add_int64 (msg, -2);
    zper_wire_add_int32 (msg, 7);
    zframe_t *frame = zmsg_first (msg);
    assert (zframe_size (frame) == 1 && zframe_data (frame) [0] == 100);
    int64_t wide;
    int32_t narrow;
    assert (zper_wire_frame_int64 (frame, &wide) == -1);
    assert (zper_wire_frame_int64 (zmsg_next (msg), &wide) == 0 && wide == -2);
    assert (zper_wire_frame_int32 (zmsg_next (msg), &narrow) == 0 && narrow == 7);
    assert (zper_wire_frame_int32 (NULL, &narrow) == -1);
    zmsg_destroy (&msg);
}
