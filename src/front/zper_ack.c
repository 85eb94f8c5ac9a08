/*  =========================================================================
    zper_ack - publish acknowledgements of durable messages

    The one thing to know: nothing reaches this actor before it is durable,
    and nothing is built for nobody. Front workers send a flush's note only
    after their flush moved the durable offset, so every
    [topic][id][position] published here names a message that a FETCH at
    that position returns, even after a crash. The socket is an XPUB: its
    subscription messages keep the set of subscribed prefixes, which the
    workers consult (zper_ack_wanted, a generation counter and a cached
    answer per topic) to skip the ack entries of topics nobody listens to.
    The actor also republishes each note's head (without the acks) on the
    inproc visible bus, which wakes streaming FETCHes, long polls and the
    relay; it does so first, so readers never wait behind a batch's acks.
    ========================================================================= */

#include "zper_ack.h"
#include "zper_wire.h"
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

//  The subscriptions of the running ack actor (one per process, as its
//  inproc endpoints): prefixes as zframes, NULL when no actor runs. The
//  generation moves on every change, so readers' cached answers go stale.
static pthread_mutex_t s_interest_mutex = PTHREAD_MUTEX_INITIALIZER;
static zlistx_t *s_subscriptions;
static atomic_uint_fast64_t s_interest_generation = 1;

static bool
s_subscribed_locked (const char *topic)
{
    if (!s_subscriptions)
        return false;
    size_t topic_size = strlen (topic);
    for (zframe_t *prefix = (zframe_t *) zlistx_first (s_subscriptions); prefix;
         prefix = (zframe_t *) zlistx_next (s_subscriptions))
        if (zframe_size (prefix) <= topic_size
        &&  memcmp (zframe_data (prefix), topic, zframe_size (prefix)) == 0)
            return true;
    return false;
}

bool
zper_ack_wanted (const char *topic, zper_ack_interest_t *interest)
{
    uint64_t generation = atomic_load (&s_interest_generation);
    if (interest->generation == generation)
        return interest->wanted;
    pthread_mutex_lock (&s_interest_mutex);
    interest->generation = atomic_load (&s_interest_generation);
    interest->wanted = s_subscribed_locked (topic);
    pthread_mutex_unlock (&s_interest_mutex);
    return interest->wanted;
}

static void
s_frame_destroy (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

static int
s_frame_compare (const void *item1, const void *item2)
{
    return zframe_eq ((zframe_t *) item1, (zframe_t *) item2)? 0: 1;
}

//  Start (create) or end (destroy) the set of subscriptions.
static void
s_interest_reset (bool running)
{
    pthread_mutex_lock (&s_interest_mutex);
    zlistx_destroy (&s_subscriptions);
    if (running) {
        s_subscriptions = zlistx_new ();
        zlistx_set_destructor (s_subscriptions, s_frame_destroy);
        zlistx_set_comparator (s_subscriptions, s_frame_compare);
    }
    atomic_fetch_add (&s_interest_generation, 1);
    pthread_mutex_unlock (&s_interest_mutex);
}

//  A subscription message from the XPUB: [1][prefix] subscribes, [0][prefix]
//  unsubscribes. libzmq passes only a prefix's first subscription and its
//  last unsubscription (including those of a subscriber that went away),
//  so a set is exact.
static void
s_subscription (zsock_t *publisher)
{
    zframe_t *frame = zframe_recv (publisher);
    if (!frame || zframe_size (frame) == 0 || zframe_data (frame) [0] > 1) {
        zframe_destroy (&frame);
        return;
    }
    bool subscribe = zframe_data (frame) [0] == 1;
    zframe_t *prefix = zframe_new (zframe_data (frame) + 1, zframe_size (frame) - 1);
    zframe_destroy (&frame);
    pthread_mutex_lock (&s_interest_mutex);
    void *handle = zlistx_find (s_subscriptions, prefix);
    if (subscribe && !handle) {
        zlistx_add_end (s_subscriptions, prefix);
        prefix = NULL;
    }
    else
    if (!subscribe && handle)
        zlistx_delete (s_subscriptions, handle);
    atomic_fetch_add (&s_interest_generation, 1);
    pthread_mutex_unlock (&s_interest_mutex);
    zframe_destroy (&prefix);
}

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

//  Pass the head of one note on the bus, then publish its acks.
static void
s_note_handle (zmsg_t *msg, zsock_t *publisher, zsock_t *bus)
{
    zper_visible_note_t note;
    zframe_t *acks = zmsg_size (msg) == 5? zmsg_last (msg): NULL;
    if (acks)
        zmsg_remove (msg, acks);
    if (zper_broker_note_decode (msg, &note)) {
        zsys_error ("ack: malformed note from a front worker, dropped");
        zframe_destroy (&acks);
        return;
    }
    //  Readers first: a wake-up must not wait behind a batch's many acks.
    //  A note that moves nothing (a flush of data already written and
    //  announced) wakes nobody.
    if (note.visible_offset > note.from_offset)
        zper_broker_note_send (bus, &note);
    if (acks && s_acks_publish (note.topic, acks, zsock_resolve (publisher)))
        zsys_error ("ack: malformed acks from a front worker, rest dropped");
    zframe_destroy (&acks);
}

static void
s_run (zsock_t *pipe, zsock_t *notes, zsock_t *publisher, zsock_t *bus)
{
    zpoller_t *poller = zpoller_new (pipe, notes, publisher, NULL);
    bool terminated = false;
    while (!terminated) {
        void *which = zpoller_wait (poller, -1);
        if (which == notes) {
            zmsg_t *msg = zmsg_recv (notes);
            if (msg)
                s_note_handle (msg, publisher, bus);
            zmsg_destroy (&msg);
        }
        else
        if (which == publisher)
            s_subscription (publisher);
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
    //  Notes still queued come from the front's last flush: publish them
    zmsg_t *msg;
    while ((msg = zmsg_recv_nowait (notes))) {
        s_note_handle (msg, publisher, bus);
        zmsg_destroy (&msg);
    }
}

void
zper_ack_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    char reason [256];
    zsock_t *notes = zsock_new (ZMQ_PULL);
    zsock_t *publisher = zsock_new (ZMQ_XPUB);
    zsock_t *bus = zsock_new (ZMQ_PUB);
    //  The bus must never drop a note: an idle subscriber would miss a wake-up
    zsock_set_sndhwm (bus, 0);
    if (zsock_bind (notes, ZPER_INPROC_NOTES) == -1 || zsock_bind (bus, ZPER_INPROC_VISIBLE) == -1)
        zper_broker_fail (pipe, "cannot bind its inproc endpoints (is a broker already running "
                          "in this process?)");
    else
    if (zper_broker_bind (publisher, broker->config, broker->config->ack_bind, reason,
                          sizeof reason))
        zper_broker_fail (pipe, "%s", reason);
    else {
        s_interest_reset (true);
        zper_broker_ready (pipe);
        s_run (pipe, notes, publisher, bus);
        s_interest_reset (false);
    }
    zsock_destroy (&notes);
    zsock_destroy (&publisher);
    zsock_destroy (&bus);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Wait (bounded) until the ack actor has seen the subscriptions that make
//  zper_ack_wanted answer wanted for topic.
static bool
s_wanted_within (const char *topic, bool wanted)
{
    zper_ack_interest_t interest = { 0 };
    for (int attempt = 0; attempt < 500; attempt++) {
        if (zper_ack_wanted (topic, &interest) == wanted)
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
    zper_broker_t broker = { .config = &config };
    zper_ack_interest_t interest = { 0 };
    assert (!zper_ack_wanted ("topic", &interest));     //  no ack actor: nothing wanted
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    assert (ack);
    assert (!zper_ack_wanted ("topic", &interest));     //  no subscriber yet
    zsock_t *subscriber = zsock_new_sub (">inproc://zper-ack-test", "top");
    zsock_t *bus = zsock_new_sub (">" ZPER_INPROC_VISIBLE, "");
    zsock_t *front = zsock_new_push (">" ZPER_INPROC_NOTES);
    //  A prefix subscription wants every topic it starts
    assert (s_wanted_within ("topic", true));
    zper_ack_interest_t exact = { 0 }, shorter = { 0 }, other = { 0 };
    assert (zper_ack_wanted ("top", &exact) && !zper_ack_wanted ("to", &shorter));
    assert (!zper_ack_wanted ("other", &other));

    //  A flush note: its head goes on the bus, its acks are published
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "topic");
    zper_wire_add_int64 (msg, 0);
    zper_wire_add_int64 (msg, 2);
    zper_wire_add_int64 (msg, 14);
    zchunk_t *acks = zchunk_new (NULL, 64);
    s_test_ack_entry (acks, "id-0", 0);
    s_test_ack_entry (acks, "id-1", 7);
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
    msg = zmsg_recv (bus);
    zper_visible_note_t note;
    assert (zper_broker_note_decode (msg, &note) == 0);
    assert (note.visible_offset == 2 && note.visible_position == 14);
    zmsg_destroy (&msg);

    //  A note that moves nothing wakes nobody; a truncated ack entry is
    //  dropped, the actor goes on
    msg = zmsg_new ();
    zmsg_addstr (msg, "topic");
    zper_wire_add_int64 (msg, 2);
    zper_wire_add_int64 (msg, 2);
    zper_wire_add_int64 (msg, 14);
    zmsg_addmem (msg, zchunk_data (acks), zchunk_size (acks) - 1);
    zmsg_send (&msg, front);
    msg = zmsg_recv (subscriber);       //  the whole first entry is still published
    assert (msg && zmsg_size (msg) == 3);
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (bus, 200);
    msg = zmsg_recv (bus);
    assert (!msg);
    zchunk_destroy (&acks);

    //  When the subscriber goes, nothing is wanted any more
    zsock_destroy (&subscriber);
    assert (s_wanted_within ("topic", false));
    zsock_destroy (&front);
    zsock_destroy (&bus);
    zactor_destroy (&ack);
    if (verbose)
        zsys_info ("zper_ack: subscriptions, packed acks and bus notes checked");
}
