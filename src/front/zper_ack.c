/*  =========================================================================
    zper_ack - publish acknowledgements of durable messages

    The one thing to know: nothing reaches this actor before it is durable.
    Front workers send a note only after their flush moved the durable
    offset, so every [topic][id][position] published here names a message
    that a FETCH at that position returns, even after a crash. The ack
    also republishes the note's head (without the ids) on the inproc
    durable bus, which wakes streaming FETCHes, long polls and the relay;
    it does so first, so readers never wait behind a batch's many acks.
    ========================================================================= */

#include "zper_ack.h"
#include "zper_wire.h"
#include <assert.h>

//  Pass the head of one note on the bus, then publish its per-message acks.
static void
s_note_handle (zmsg_t *msg, zsock_t *publisher, zsock_t *bus)
{
    //  Head: 4 frames, then id/position pairs
    zper_visible_note_t note;
    zmsg_t *head = zmsg_new ();
    for (int index = 0; index < 4 && zmsg_size (msg); index++) {
        zframe_t *frame = zmsg_pop (msg);
        zmsg_append (head, &frame);
    }
    if (zper_broker_note_decode (head, &note) || zmsg_size (msg) % 2) {
        zsys_error ("ack: malformed note from a front worker, dropped");
        zmsg_destroy (&head);
        return;
    }
    zmsg_destroy (&head);
    //  Readers first: a wake-up must not wait behind a batch's many acks.
    //  Each ack is sent from the note's frames, without building a zmsg.
    zper_broker_note_send (bus, &note);
    void *socket = zsock_resolve (publisher);
    size_t topic_size = strlen (note.topic);
    for (zframe_t *id = zmsg_first (msg); id; id = zmsg_next (msg)) {
        zframe_t *position = zmsg_next (msg);
        zmq_send (socket, note.topic, topic_size, ZMQ_SNDMORE);
        zmq_send (socket, zframe_data (id), zframe_size (id), ZMQ_SNDMORE);
        zmq_send (socket, zframe_data (position), zframe_size (position), 0);
    }
}

void
zper_ack_actor (zsock_t *pipe, void *args)
{
    zper_broker_t *broker = (zper_broker_t *) args;
    char reason [256];
    zsock_t *notes = zsock_new (ZMQ_PULL);
    zsock_t *publisher = zsock_new (ZMQ_PUB);
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
        zper_broker_ready (pipe);
        zpoller_t *poller = zpoller_new (pipe, notes, NULL);
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
    zsock_destroy (&notes);
    zsock_destroy (&publisher);
    zsock_destroy (&bus);
}

//  --------------------------------------------------------------------------
//  Selftest

void
zper_ack_test (bool verbose)
{
    zper_config_t config;
    zper_config_init (&config);
    snprintf (config.ack_bind, sizeof config.ack_bind, "inproc://zper-ack-test");
    zper_broker_t broker = { .config = &config };
    zactor_t *ack = zper_broker_start (zper_ack_actor, &broker, "ack");
    assert (ack);
    zsock_t *subscriber = zsock_new_sub (">inproc://zper-ack-test", "topic");
    zsock_t *bus = zsock_new_sub (">" ZPER_INPROC_VISIBLE, "");
    zsock_t *front = zsock_new_push (">" ZPER_INPROC_NOTES);
    zclock_sleep (100);                 //  subscriptions reach the publishers

    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "topic");
    zper_wire_add_int64 (msg, 0);
    zper_wire_add_int64 (msg, 2);
    zper_wire_add_int64 (msg, 14);
    zmsg_addstr (msg, "id-0");
    zper_wire_add_int64 (msg, 0);
    zmsg_addstr (msg, "id-1");
    zper_wire_add_int64 (msg, 7);
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
    zsock_destroy (&front);
    zsock_destroy (&bus);
    zsock_destroy (&subscriber);
    zactor_destroy (&ack);
}
