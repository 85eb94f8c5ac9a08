/*  =========================================================================
    zper_hops - where a message's time goes inside the broker, hop by hop

    Process-wide latency histograms, one per hop of the path from the
    front's ROUTER to a live reader (front thread -> front worker -> visible
    bus -> relay -> libzmq), recorded without a lock by whichever thread
    ends the hop, shown in STATS as "hops" (docs/protocol.md).
    ========================================================================= */

#ifndef ZPER_HOPS_H_INCLUDED
#define ZPER_HOPS_H_INCLUDED

#include <czmq.h>

typedef enum {
    //  The front thread received a hand-off's first write -> its worker took it
    ZPER_HOP_FRONT_TO_WORKER,
    //  The worker took a group's first hand-off -> it announced the group on its bus
    ZPER_HOP_WORKER_TO_BUS,
    //  A note left the bus -> the relay read it
    ZPER_HOP_BUS_TO_RELAY,
    //  The relay read a wake-up's first note -> it gave libzmq what the notes made visible
    ZPER_HOP_RELAY_SEND,
    //  The front thread received the oldest write of a group -> the relay gave it to libzmq:
    //  the broker's whole share, less its I/O thread on the way in and out
    ZPER_HOP_FRONT_TO_RELAY_SEND,
    //  A note left the bus -> a rear worker answered a READ long poll it woke
    ZPER_HOP_BUS_TO_READ_REPLY,
    ZPER_HOP_COUNT
} zper_hop_t;

//  A snapshot of one hop: samples, percentiles from the histogram (each
//  within one part in 8 of the true value), and the largest sample.
typedef struct {
    const char *name;
    uint64_t count;
    int64_t p50_us;
    int64_t p99_us;
    int64_t max_us;
} zper_hops_summary_t;

//  A monotonic time stamp in microseconds, as hops are recorded in.
int64_t
    zper_hops_now (void);

//  A stamp cut to 32 bits, for a header with no room for more (the front's
//  hand-off entry), and widened again against a later zper_hops_now: right
//  while the two are less than 71 minutes apart. 0 stays 0 (not taken).
uint32_t
    zper_hops_stamp32 (void);
int64_t
    zper_hops_widen (uint32_t stamp, int64_t now_us);

//  Record one sample of hop: from since_us (a zper_hops_now stamp) to now.
//  A stamp of 0 (not taken) or in the future (a truncated stamp that
//  wrapped) is ignored. Lock-free: any thread may record.
void
    zper_hops_record (zper_hop_t hop, int64_t since_us);

//  Same, with the end time given (one clock reading for many samples).
void
    zper_hops_record_at (zper_hop_t hop, int64_t since_us, int64_t now_us);

//  Summarise hop as it stands.
void
    zper_hops_summary (zper_hop_t hop, zper_hops_summary_t *summary);

//  Self test of this class
void
    zper_hops_test (bool verbose);

#endif
