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

    A subscriber that does not read must not pin memory: an ack carries its
    message's id, the whole first frame (up to max_message), and libzmq
    queues 1,000 messages per subscriber, so one silent subscriber could
    hold gigabytes. Every ack is charged to one output budget
    (ack.output_budget, zper_output.h): subscribers share each ack, so the
    budget bounds what all of them hold together, and an ack that would
    pass it is not published. A subscriber misses acks (counted in
    ack_dropped) when its own queue is full or the budget is spent; acks
    carry positions, so it sees the gap.

    Security on: a subscription is applied only when the subscriber's key
    may read or write every topic it matches (zper_gate), so a key sees the
    acks of its own topics and of no other.
    ========================================================================= */

#include "zper_ack.h"
#include "zper_output.h"
#include "zper_wire.h"
#include <assert.h>

typedef struct {
    zper_broker_t *broker;
    void *publisher;                    //  XPUB with ZMQ_XPUB_NODROP
    zper_output_t *output;              //  what its subscribers' queues hold
    zper_guard_t *guard;                //  security on: whose subscriptions apply; else NULL
    zper_gate_t *gate;                  //  security on: applies them
} ack_t;

//  Publish one ack, unless the budget is spent; count it when some
//  subscriber misses it. Returns whether it was published.
static bool
s_ack_publish (ack_t *self, const char *topic, size_t topic_size, const uint8_t *id,
               uint32_t id_size, const uint8_t *position)
{
    int missed = zper_output_full (self->output)? -1
               : zper_output_publish_first (self->publisher, topic, topic_size);
    if (missed) {
        zper_stats_count (self->broker->stats, ZPER_COUNTER_ACK_DROPPED);
        zper_output_dropped (self->output, 1);
    }
    if (missed == -1)
        return false;
    zmq_msg_t id_frame;
    zmq_msg_init_size (&id_frame, id_size);
    memcpy (zmq_msg_data (&id_frame), id, id_size);
    //  Charged in steps (one allocation per step of acks, not per ack);
    //  not charged only when out of memory: the ack still goes
    zper_output_charge_batched (self->output, &id_frame,
                                topic_size + id_size + ZPER_WIRE_INT64_SIZE, 3);
    if (zmq_msg_send (&id_frame, self->publisher, ZMQ_SNDMORE) == -1)
        zmq_msg_close (&id_frame);
    zmq_send (self->publisher, position, ZPER_WIRE_INT64_SIZE, 0);
    return true;
}

//  Publish the acks packed in one frame: [id size:u32][id][position:8]...
//  and count those published (once per frame, not per ack). Returns -1 if
//  the frame does not hold whole entries.
static int
s_acks_publish (ack_t *self, const char *topic, zframe_t *acks)
{
    size_t topic_size = strlen (topic);
    const uint8_t *cursor = zframe_data (acks);
    const uint8_t *end = cursor + zframe_size (acks);
    uint64_t published = 0;
    int rc = 0;
    while (cursor < end) {
        uint32_t id_size;
        if ((size_t) (end - cursor) < sizeof id_size) {
            rc = -1;
            break;
        }
        memcpy (&id_size, cursor, sizeof id_size);
        cursor += sizeof id_size;
        if ((size_t) (end - cursor) < (size_t) id_size + ZPER_WIRE_INT64_SIZE) {
            rc = -1;
            break;
        }
        published += s_ack_publish (self, topic, topic_size, cursor, id_size, cursor + id_size);
        cursor += id_size + ZPER_WIRE_INT64_SIZE;
    }
    zper_stats_acked (self->broker->stats, topic, published);
    return rc;
}

//  Receive one [topic][packed acks] from a worker and publish its acks.
static void
s_acks_handle (ack_t *self, zsock_t *notes)
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
        if (s_acks_publish (self, topic, acks))
            zsys_error ("ack: malformed acks from a front worker, rest dropped");
    }
    zmsg_destroy (&msg);
}

static void
s_run (ack_t *self, zsock_t *pipe, zsock_t *notes, zsock_t *publisher)
{
    zpoller_t *poller = zpoller_new (pipe, notes, publisher, NULL);
    bool terminated = false;
    int timeout = -1;
    while (!terminated) {
        void *which = zpoller_wait (poller, timeout);
        timeout = zper_broker_guard_tick (self->broker, self->guard);
        if (which == notes)
            s_acks_handle (self, notes);
        else
        if (which == publisher)
            zper_broker_subscription_recv (self->broker, self->publisher, self->gate,
                                           self->guard, self->broker->acks_wanted);
        else
        if (!which && !zpoller_terminated (poller))
            ;                           //  the guard's refresh was due
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
        s_acks_handle (self, notes);
}

void
zper_ack_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    char reason [256];
    zsock_t *notes = zsock_new (ZMQ_PULL);
    zsock_t *publisher = zsock_new (ZMQ_XPUB);
    int nodrop = 1;                     //  a full subscriber queue is reported: zper_output.h
    zmq_setsockopt (zsock_resolve (publisher), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    ack_t self = { .broker = broker, .publisher = zsock_resolve (publisher),
                   .output = zper_output_new (broker->config->ack_output_budget) };
    zper_output_set_label (self.output, "ack", "*");     //  its subscribers share it
    if (broker->security) {
        self.guard = zper_broker_guard_new (broker);
        self.gate = zper_gate_new (self.publisher, broker->acks_wanted,
                                   ZPER_GUARD_READ | ZPER_GUARD_WRITE);
    }
    if (broker->security && !self.guard)
        zper_broker_fail (pipe, "cannot read security.keys %s", broker->config->security_keys);
    else
    if (zsock_bind (notes, ZPER_INPROC_NOTES) == -1)
        zper_broker_fail (pipe, "cannot bind %s (is a broker already running in this "
                          "process?)", ZPER_INPROC_NOTES);
    else
    if (zper_broker_bind (broker, publisher, "ack", broker->config->ack_bind, reason,
                          sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        zper_broker_ready (pipe);
        s_run (&self, pipe, notes, publisher);
        zper_subscriptions_clear (broker->acks_wanted);
    }
    zsock_destroy (&notes);
    zsock_destroy (&publisher);
    zper_output_destroy (&self.output);
    zper_gate_destroy (&self.gate);
    zper_guard_destroy (&self.guard);
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

//  Wait (bounded) until the ack actor has dropped count acks.
static bool
s_dropped_within (zper_broker_t *broker, uint64_t count)
{
    for (int attempt = 0; attempt < 500; attempt++) {
        if (zper_stats_counter (broker->stats, ZPER_COUNTER_ACK_DROPPED) == count)
            return true;
        zclock_sleep (10);
    }
    return false;
}

//  Send the ack actor a flush's packed acks of topic.
static void
s_test_acks_send (zsock_t *front, const char *topic, zchunk_t *acks)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_addmem (msg, zchunk_data (acks), zchunk_size (acks));
    zmsg_send (&msg, front);
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
    config.ack_output_budget = 1024;    //  two acks of a 600-byte id, not three
    zper_broker_t broker = { .config = &config, .acks_wanted = zper_subscriptions_new (),
                             .stats = zper_stats_new () };
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

    //  The output budget: acks queued for the subscriber (inproc: until it
    //  reads them) hold it; an ack past it is not published, and counted.
    //  Once the subscriber has read them, acks flow again. (The subscriber
    //  reads only once the actor is done: reading frees budget.)
    char id [601];
    memset (id, 'i', 600);
    id [600] = 0;
    acks = zchunk_new (NULL, 4096);
    for (int index = 0; index < 3; index++)
        s_test_ack_entry (acks, id, index);
    for (uint64_t round = 1; round <= 2; round++) {
        s_test_acks_send (front, "topic", acks);
        assert (s_dropped_within (&broker, round));
        for (int index = 0; index < 2; index++) {
            msg = zmsg_recv (subscriber);
            assert (msg && zmsg_size (msg) == 3);
            zmsg_destroy (&msg);
        }
        msg = zmsg_recv (subscriber);
        assert (!msg);
    }
    zchunk_destroy (&acks);

    //  When the subscriber goes, nothing is wanted any more
    zsock_destroy (&subscriber);
    assert (s_wanted_within (&broker, "topic", false));
    zsock_destroy (&front);
    zactor_destroy (&ack);
    zper_subscriptions_destroy (&broker.acks_wanted);
    zper_stats_destroy (&broker.stats);
    if (verbose)
        zsys_info ("zper_ack: subscriptions and packed acks checked");
}
