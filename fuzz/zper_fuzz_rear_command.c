/*  =========================================================================
    zper_fuzz_rear_command - fuzz target: the rear's request decoder

    Input: [flags:1][routing id size:1][routing id][frames...] where frames
    follow zper_fuzz_frames and the first one is the command. Bit 0 of
    flags makes the reader a REQ, bit 1 replaces the command frame by one of
    the real command names (so the fuzzer reaches argument decoding at
    once). The request runs through zper_rear_command_execute
    (src/rear/zper_rear_command.c) against a log holding a few messages in
    two topics. Every answered request must carry exactly one status frame
    first: a bad request is an error reply, never a crash or silence.
    ========================================================================= */

#include "zper_fuzz.h"
#include "zper_broker.h"
#include "zper_identity.h"
#include "zper_partition.h"
#include "zper_rear.h"
#include "zper_wire.h"

static const char *s_commands [] = {
    "FETCH", "OFFSET", "READ", "BOUNDS", "TIMEOFFSET", "TOPICS", "STATS"
};
#define COMMAND_COUNT (sizeof s_commands / sizeof s_commands [0])

static zper_config_t s_config;
static zper_broker_t s_broker;

//  One log (and its groups) for the whole run, with messages in "fuzz" and "other" (several
//  segments), so offsets, positions and times have something to hit.
static void
s_broker_once (void)
{
    if (s_broker.log)
        return;
    zper_config_init (&s_config);
    snprintf (s_config.base_dir, sizeof s_config.base_dir, "%s/rear", zper_fuzz_scratch ());
    s_config.segment_size = 1024;
    zper_log_config_t log_config;
    zper_config_log_config (&s_config, &log_config);
    s_broker.config = &s_config;
    s_broker.log = zper_log_new (&log_config);
    s_broker.stats = zper_stats_new ();
    char offsets [ZPER_CONFIG_STRING_MAX + 32];
    snprintf (offsets, sizeof offsets, "%s/%s", s_config.base_dir, ZPER_OFFSETS_FILE);
    s_broker.offsets = zper_offsets_open (offsets, 1000);
    assert (s_broker.log && s_broker.stats && s_broker.offsets);
    //  The group commands (HEARTBEAT, COMMIT...) get fuzzed with real groups
    s_broker.groups = zper_groups_new (&s_config, s_broker.log, s_broker.offsets, NULL);
    const char *topics [] = { "fuzz", "other" };
    for (size_t topic = 0; topic < 2; topic++) {
        zper_partition_t *partition = zper_log_partition (s_broker.log, topics [topic], "0", true);
        for (int index = 0; index < 40; index++) {
            char body [64];
            zper_frame_t frames [2] = { { "id", 2 }, { body, (size_t) snprintf (body, sizeof body,
                                                                  "message %d of %s", index, topics [topic]) } };
            assert (zper_partition_append (partition, frames, 2, 1000 + index * 10) >= 0);
            if (index % 7 == 0)
                assert (zper_partition_flush (partition) >= 0);
        }
        assert (zper_partition_flush (partition) >= 0);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_broker_once ();
    if (size < 2)
        return 0;
    uint8_t flags = data [0];
    size_t routing_size = data [1] <= size - 2? data [1]: size - 2;
    zframe_t *routing_id = zframe_new (data + 2, routing_size);
    zmsg_t *request = zper_fuzz_frames (data + 2 + routing_size, size - 2 - routing_size);
    if (zmsg_size (request) == 0)
        zmsg_addmem (request, "", 0);
    if (flags & 2) {
        zframe_t *command = zmsg_pop (request);
        size_t which = zframe_size (command)? zframe_data (command) [0] % COMMAND_COUNT: 0;
        zmsg_pushstr (request, s_commands [which]);
        zframe_destroy (&command);
    }
    zper_rear_reply_t reply = { .frames = zmsg_new () };
    zper_rear_continuation_t continuation;
    zper_rear_outcome_t outcome = zper_rear_command_execute (&s_broker, routing_id, request,
                                                             (flags & 1) != 0, NULL, &reply,
                                                             &continuation);
    if (outcome == ZPER_REAR_ANSWERED) {
        zframe_t *status = zmsg_first (reply.frames);
        assert (status && zframe_size (status) == 1);
    }
    if (reply.has_lent)
        zmq_msg_close (&reply.lent);
    zmsg_destroy (&reply.frames);
    zmsg_destroy (&request);
    zframe_destroy (&routing_id);
    return 0;
}
