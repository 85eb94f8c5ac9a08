/*  =========================================================================
    zper_crc32c - CRC-32C (Castagnoli), the checksum of every stored record

    Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and final
    xor 0xFFFFFFFF, as in iSCSI (RFC 3720), ext4 and Kafka's record batches.
    The SSE4.2 crc32 instruction is used when the CPU has it (checked once at
    run time); otherwise a portable slicing-by-8 table. Both give the same
    values and both are tested.
    ========================================================================= */

#ifndef ZPER_CRC32C_H_INCLUDED
#define ZPER_CRC32C_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  CRC-32C of size bytes at data.
uint32_t
    zper_crc32c (const void *data, size_t size);

//  Extend crc, the CRC-32C of some earlier bytes (0 for none), over size more
//  bytes: zper_crc32c_extend (zper_crc32c (a, n), b, m) is the CRC-32C of the
//  n + m bytes a then b.
uint32_t
    zper_crc32c_extend (uint32_t crc, const void *data, size_t size);

//  The portable implementation of zper_crc32c_extend, whatever the CPU.
//  For tests and benchmarks.
uint32_t
    zper_crc32c_portable_extend (uint32_t crc, const void *data, size_t size);

//  True if zper_crc32c uses the CPU's crc32 instruction.
bool
    zper_crc32c_hardware (void);

//  Self test of this class
void
    zper_crc32c_test (bool verbose);

#endif
