/*  =========================================================================
    zper_ack - publish acknowledgements of durable messages

    The one thing to know: nothing reaches this actor before it is durable,
    and nothing is built for nobody. Front workers send a flush's acks only
    after their flush moved the durable offset, so every
    [topic][id][position] published here names a message that a FETCH at
    that position returns, even after a crash. The socket is an XPUB: its
    subscription messages keep broker->acks_wanted, which the workers
    consult (zper_subscriptions_wanted) to skip the ack entries of topics
    nobody listens to. Readers are not woken from here: each front worker
    publishes its own visible bus (zper_broker.h), one thread hop sooner.
    ========================================================================= */

#include "zper_ack.h"
#include "zper_wire.h"
#include <assert.h>

//  Publish the acks packed in one frame: [id size:u32][id][position:8]...
//  Returns -1 if the frame does not hold whole entries.
static int
s_acks_publish (const char *topic, zframe_t *acks, void *socket)
{
    size_t topic_size = strlen (topic);
    const uint8_t *cursor = zframe_data (acks);
    const uint8_t *end = cursor + zframe_size (acks);
    while (cursor < end) {
        uint32_t id_size;
        if ((size_t) (end - cursor) < sizeof id_size)
            return -1;
        memcpy (&id_size, cursor, sizeof id_size);
        cursor += sizeof id_size;
        if ((size_t) (end - cursor) < (size_t) id_size + ZPER_WIRE_INT64_SIZE)
            return -1;
        zmq_send (socket, topic, topic_size, ZMQ_SNDMORE);
        zmq_send (socket, cursor, id_size, ZMQ_SNDMORE);
        zmq_send (socket, cursor + id_size, ZPER_WIRE_INT64_SIZE, 0);
        cursor += id_size + ZPER_WIRE_INT64_SIZE;
    }
    return 0;
}

//  Receive one [topic][packed acks] from a worker and publish its acks.
static void
s_acks_handle (zsock_t *notes, void *publisher)
{
    zmsg_t *msg = zmsg_recv (notes);
    if (!msg)
        return;
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    zframe_t *name = zmsg_first (msg);
    zframe_t *acks = zmsg_next (msg);
    if (zmsg_size (msg) != 2 || zframe_size (name) == 0 || zframe_size (name) > ZPER_TOPIC_NAME_MAX)
        zsys_error ("ack: malformed acks from a front worker, dropped");
    else {
        memcpy (topic, zframe_data (name), zframe_size (name));
        topic [zframe_size (name)] = 0;
        if (s_acks_publish (topic, acks, publisher))
            zsys_error ("ack: malformed acks from a front worker, rest dropped");
    }
    zmsg_destroy (&msg);
}

static void
s_run (zper_broker_t *broker, zsock_t *pipe, zsock_t *notes, zsock_t *publisher)
{
    zpoller_t *poller = zpoller_new (pipe, notes, publisher, NULL);
    bool terminated = false;
    while (!terminated) {
        void *which = zpoller_wait (poller, -1);
        if (which == notes)
            s_acks_handle (notes, zsock_resolve (publisher));
        else
        if (which == publisher)
            zper_subscriptions_recv (broker->acks_wanted, zsock_resolve (publisher));
        else
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            terminated = !command || zper_broker_pipe_command (pipe, command);
            zstr_free (&command);
        }
        else
            terminated = zpoller_terminated (poller);
    }
    zpoller_destroy (&poller);
    //  Acks still queued come from the front's last flush: publish them
    zsock_set_rcvtimeo (notes, 0);
    while (zsock_events (notes) & ZMQ_POLLIN)
        s_acks_handle (notes, zsock_resolve (publisher));
}

void
zper_ack_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    char reason [256];
    zsock_t *notes = zsock_new (ZMQ_PULL);
    zsock_t *publisher = zsock_new (ZMQ_XPUB);
    if (zsock_bind (notes, ZPER_INPROC_NOTES) == -1)
        zper_broker_fail (pipe, "cannot bind %s (is a broker already running in this "
                          "process?)", ZPER_INPROC_NOTES);
    else
    if (zper_broker_bind (publisher, broker->config, broker->config->ack_bind, reason,
                          sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (broker, pipe, notes, publisher);
        zper_subscriptions_clear (broker->acks_wanted);
    }
    zsock_destroy (&notes);
    zsock_destroy (&publisher);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Wait (bounded) until the ack actor has seen the subscriptions that make
//  the broker want topic's acks, or not.
static bool
s_wanted_within (zper_broker_t *broker, const char *topic, bool wanted)
{
    zper_subscriptions_cache_t cache = { 0 };
    for (int attempt = 0; attempt < 500; attempt++) {
        if (zper_subscriptions_wanted (broker->acks_wanted, topic, &cache) == wanted)
            return true;
        zclock_sleep (10);
    }
    return false;
}

//  Append one packed ack entry to chunk.
static void
s_test_ack_entry (zchunk_t *chunk, const char *id, int64_t position)
{
    uint32_t size = (uint32_t) strlen (id);
    uint8_t wire [ZPER_WIRE_INT64_SIZE];
    zper_wire_put_int64 (wire, position);
    zchunk_extend (chunk, &size, sizeof size);
    zchunk_extend (chunk, id, size);
    zchunk_extend (chunk, wire, sizeof wire);
}

void
zper_ack_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    snprintf (config.ack_bind, sizeof config.ack_bind, "inproc://zper-ack-test");
    zper_broker_t broker = { .config = &config, .acks_wanted = zper_subscriptions_new () };
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    assert (ack);
    zper_subscriptions_cache_t cache = { 0 };
    assert (!zper_subscriptions_wanted (broker.acks_wanted, "topic", &cache));  //  no subscriber yet
    zsock_t *subscriber = zsock_new_sub (">inproc://zper-ack-test", "top");
    zsock_t *front = zsock_new_push (">" ZPER_INPROC_NOTES);
    //  A prefix subscription wants every topic it starts
    assert (s_wanted_within (&broker, "topic", true));
    assert (s_wanted_within (&broker, "top", true) && s_wanted_within (&broker, "to", false));

    //  A flush's acks: one published message per entry
    zchunk_t *acks = zchunk_new (NULL, 64);
    s_test_ack_entry (acks, "id-0", 0);
    s_test_ack_entry (acks, "id-1", 7);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "topic");
    zmsg_addmem (msg, zchunk_data (acks), zchunk_size (acks));
    zmsg_send (&msg, front);
    int64_t position;
    for (int index = 0; index < 2; index++) {
        msg = zmsg_recv (subscriber);
        assert (msg && zmsg_size (msg) == 3);
        char *topic = zmsg_popstr (msg);
        char *id = zmsg_popstr (msg);
        assert (streq (topic, "topic") && streq (id, index? "id-1": "id-0"));
        zframe_t *frame = zmsg_pop (msg);
        assert (zper_wire_frame_int64 (frame, &position) == 0 && position == (index? 7: 0));
        zframe_destroy (&frame);
        zstr_free (&topic);
        zstr_free (&id);
        zmsg_destroy (&msg);
    }

    //  Malformed input from a worker is dropped, the actor goes on: a
    //  message without acks, then a truncated entry (the whole first
    //  entry is still published)
    zstr_send (front, "topic");
    msg = zmsg_new ();
    zmsg_addstr (msg, "topic");
    zmsg_addmem (msg, zchunk_data (acks), zchunk_size (acks) - 1);
    zmsg_send (&msg, front);
    msg = zmsg_recv (subscriber);
    assert (msg && zmsg_size (msg) == 3);
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (subscriber, 200);
    msg = zmsg_recv (subscriber);
    assert (!msg);
    zchunk_destroy (&acks);

    //  When the subscriber goes, nothing is wanted any more
    zsock_destroy (&subscriber);
    assert (s_wanted_within (&broker, "topic", false));
    zsock_destroy (&front);
    zactor_destroy (&ack);
    zper_subscriptions_destroy (&broker.acks_wanted);
    if (verbose)
        zsys_info ("zper_ack: subscriptions and packed acks checked");
}
