/*  =========================================================================
    zper_crc32c - CRC-32C (Castagnoli), the checksum of every stored record

    Two implementations of one function. The hardware one feeds 8 bytes at a
    time to the SSE4.2 crc32 instruction; the portable one is slicing-by-8
    (eight 256-entry tables, one lookup per input byte but eight bytes per
    step). Which one runs is decided once, on first use, from
    __builtin_cpu_supports: the binary stays runnable on any x86-64 (and
    builds on other CPUs, where only the portable path exists).
    ========================================================================= */

#include "zper_crc32c.h"
#include <assert.h>
#include <pthread.h>
#include <string.h>
#include <czmq.h>

#define CRC32C_POLYNOMIAL_REFLECTED 0x82F63B78u
#define CRC32C_SLICES               8
#define CRC32C_TABLE_SIZE           256

static uint32_t s_table [CRC32C_SLICES][CRC32C_TABLE_SIZE];
static pthread_once_t s_table_once = PTHREAD_ONCE_INIT;

static void
s_table_build (void)
{
    for (uint32_t byte = 0; byte < CRC32C_TABLE_SIZE; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (CRC32C_POLYNOMIAL_REFLECTED & (0u - (crc & 1)));
        s_table [0][byte] = crc;
    }
    //  Table k advances a byte's contribution by k more zero bytes
    for (uint32_t byte = 0; byte < CRC32C_TABLE_SIZE; byte++)
        for (int slice = 1; slice < CRC32C_SLICES; slice++) {
            uint32_t previous = s_table [slice - 1][byte];
            s_table [slice][byte] = (previous >> 8) ^ s_table [0][previous & 0xFF];
        }
}

uint32_t
zper_crc32c_portable_extend (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_table_once, s_table_build);
    const uint8_t *bytes = (const uint8_t *) data;
    crc = ~crc;
    while (size >= CRC32C_SLICES) {
        uint64_t word;
        memcpy (&word, bytes, sizeof word);     //  little-endian: x86-64 and aarch64
        word ^= crc;
        crc = s_table [7][word & 0xFF] ^ s_table [6][(word >> 8) & 0xFF]
            ^ s_table [5][(word >> 16) & 0xFF] ^ s_table [4][(word >> 24) & 0xFF]
            ^ s_table [3][(word >> 32) & 0xFF] ^ s_table [2][(word >> 40) & 0xFF]
            ^ s_table [1][(word >> 48) & 0xFF] ^ s_table [0][word >> 56];
        bytes += CRC32C_SLICES;
        size -= CRC32C_SLICES;
    }
    while (size--)
        crc = (crc >> 8) ^ s_table [0][(crc ^ *bytes++) & 0xFF];
    return ~crc;
}

#if defined (__x86_64__)
#include <nmmintrin.h>

__attribute__ ((target ("sse4.2")))
static uint32_t
s_hardware_extend (uint32_t crc, const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    uint64_t state = ~crc;
    while (size >= sizeof (uint64_t)) {
        uint64_t word;
        memcpy (&word, bytes, sizeof word);
        state = _mm_crc32_u64 (state, word);
        bytes += sizeof word;
        size -= sizeof word;
    }
    uint32_t state32 = (uint32_t) state;
    while (size--)
        state32 = _mm_crc32_u8 (state32, *bytes++);
    return ~state32;
}

static bool
s_cpu_has_crc32 (void)
{
    __builtin_cpu_init ();
    return __builtin_cpu_supports ("sse4.2");
}
#else
static uint32_t
s_hardware_extend (uint32_t crc, const void *data, size_t size)
{
    return zper_crc32c_portable_extend (crc, data, size);
}

static bool
s_cpu_has_crc32 (void)
{
    return false;
}
#endif

typedef uint32_t (crc32c_fn) (uint32_t crc, const void *data, size_t size);
static crc32c_fn *s_implementation;
static pthread_once_t s_choose_once = PTHREAD_ONCE_INIT;

static void
s_choose (void)
{
    s_implementation = s_cpu_has_crc32 ()? s_hardware_extend: zper_crc32c_portable_extend;
}

uint32_t
zper_crc32c_extend (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_choose_once, s_choose);
    return s_implementation (crc, data, size);
}

uint32_t
zper_crc32c (const void *data, size_t size)
{
    return zper_crc32c_extend (0, data, size);
}

bool
zper_crc32c_hardware (void)
{
    pthread_once (&s_choose_once, s_choose);
    return s_implementation == s_hardware_extend;
}

//  Check one known vector against both implementations
static void
s_check_vector (const void *data, size_t size, uint32_t expected)
{
    assert (zper_crc32c_portable_extend (0, data, size) == expected);
    assert (zper_crc32c (data, size) == expected);
    if (s_cpu_has_crc32 ())
        assert (s_hardware_extend (0, data, size) == expected);
}

void
zper_crc32c_test (bool verbose)
{
    //  @selftest
    if (verbose)
        printf ("(hardware crc32: %s) ", zper_crc32c_hardware ()? "yes": "no");
    //  Known vectors: the CRC catalogue check value, and RFC 3720 B.4
    s_check_vector ("123456789", 9, 0xE3069283);
    s_check_vector ("", 0, 0);
    uint8_t buffer [48];
    memset (buffer, 0, 32);
    s_check_vector (buffer, 32, 0x8A9136AA);
    memset (buffer, 0xFF, 32);
    s_check_vector (buffer, 32, 0x62A8AB43);
    for (int index = 0; index < 32; index++)
        buffer [index] = (uint8_t) index;
    s_check_vector (buffer, 32, 0x46DD794E);
    for (int index = 0; index < 32; index++)
        buffer [index] = (uint8_t) (31 - index);
    s_check_vector (buffer, 32, 0x113FDB5C);
    //  RFC 3720 B.4: an iSCSI read command PDU
    static const uint8_t iscsi_read [48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
    };
    s_check_vector (iscsi_read, sizeof iscsi_read, 0xD9963A56);

    //  Random data, every length and alignment up to a few words: both
    //  implementations agree, and extending equals checksumming the whole
    uint8_t random_bytes [4096 + 16];
    for (size_t index = 0; index < sizeof random_bytes; index++)
        random_bytes [index] = (uint8_t) randof (256);
    for (size_t offset = 0; offset < 16; offset++)
        for (size_t size = 0; size < 80; size++) {
            uint32_t whole = zper_crc32c_portable_extend (0, random_bytes + offset, size);
            assert (zper_crc32c (random_bytes + offset, size) == whole);
            size_t split = size / 3;
            uint32_t part = zper_crc32c (random_bytes + offset, split);
            assert (zper_crc32c_extend (part, random_bytes + offset + split, size - split) == whole);
        }
    assert (zper_crc32c (random_bytes, 4096) == zper_crc32c_portable_extend (0, random_bytes, 4096));
    //  A single flipped bit changes the checksum
    uint32_t before = zper_crc32c (random_bytes, 4096);
    random_bytes [2048] ^= 0x10;
    assert (zper_crc32c (random_bytes, 4096) != before);
    //  @end
}
