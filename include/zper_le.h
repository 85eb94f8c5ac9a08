/*  =========================================================================
    zper_le - little-endian integer fields of the log engine's files

    Every on-disk integer of the log engine is little-endian (the byte order
    of the machines it runs on, so encoding costs nothing there), and is
    read and written through these helpers only, whatever the host.
    ========================================================================= */

#ifndef ZPER_LE_H_INCLUDED
#define ZPER_LE_H_INCLUDED

#include <stdint.h>

static inline void
zper_le_put32 (uint8_t *target, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        target [index] = (uint8_t) (value >> (8 * index));
}

static inline void
zper_le_put64 (uint8_t *target, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        target [index] = (uint8_t) (value >> (8 * index));
}

static inline uint32_t
zper_le_get32 (const uint8_t *source)
{
    uint32_t value = 0;
    for (int index = 3; index >= 0; index--)
        value = (value << 8) | source [index];
    return value;
}

static inline uint64_t
zper_le_get64 (const uint8_t *source)
{
    uint64_t value = 0;
    for (int index = 7; index >= 0; index--)
        value = (value << 8) | source [index];
    return value;
}

#endif
