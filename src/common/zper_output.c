/*  =========================================================================
    zper_output - a byte budget for what the broker queues for a peer

    The one thing to know: the count is given back by whichever thread
    drops a charged message's last reference, usually a libzmq I/O thread
    after writing it to the network (a PUB's subscribers share one
    message: it is released once every subscriber's pipe let it go). So
    the count is atomic, and the output is reference-counted: its owner
    holds one reference and every charged message one more, so a reader
    that is forgotten while libzmq still holds its messages leaves nothing
    dangling.

    A charge wraps the message: the new message points at the same data,
    and its free function closes the original (which frees or unlends the
    data as the original would have) and gives the bytes back.

    Messages, too, when the owner sets a cap (the rear: libzmq's own
    high-water mark learns what a peer read only every few thousand
    messages, so the rear counts for itself, and so knows before it sends
    a message whether the next one will go). Each charge notes how many
    messages were charged when it was made; libzmq releases one peer's
    messages in the order they were sent, so a released charge says that
    every message charged before it was released too.

    The registry (every output of the process, for STATS) is a list under
    one mutex, touched when an output is made or finally freed and when
    STATS takes a snapshot, never per message: counts stay atomics.
    ========================================================================= */

#include "zper_output.h"
#include "zper_defaults.h"
#include <assert.h>
#include <pthread.h>

struct _zper_output_t {
    int64_t budget;
    int64_t held;                       //  atomic: bytes charged, not yet released
    int references;                     //  atomic: the owner, and one per charged message
    int64_t uncharged;                  //  the sender's: sent, to be charged with a later message
    int64_t step;                       //  charge at least this much at once (batched)
    uint64_t messages;                  //  the sender's: messages charged, batched or not
    uint64_t released;                  //  atomic: messages of the last released charge
    uint64_t message_cap;               //  messages queued at most; 0: no cap
    uint64_t dropped;                   //  atomic: messages dropped for its peer
    char socket [ZPER_OUTPUT_SOCKET_MAX];   //  label, under s_registry.mutex
    char peer [ZPER_OUTPUT_PEER_MAX];
    zper_output_t *previous, *next;     //  in s_registry, under its mutex
};

static struct {
    pthread_mutex_t mutex;
    zper_output_t *first;
    size_t count;
    uint64_t dropped;                   //  atomic: every drop since the process started
} s_registry = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

typedef struct {
    zper_output_t *output;
    int64_t bytes;
    uint64_t messages;                  //  the output's count when charged
    zmq_msg_t original;                 //  owns the data the charged message points at
} charge_t;

zper_output_t *
zper_output_new (int64_t budget)
{
    zper_output_t *self = (zper_output_t *) malloc (sizeof (zper_output_t));
    if (!self)
        return NULL;
    //  A step is small next to the budget, so that what is not charged
    //  yet never decides whether a peer is slow
    *self = (zper_output_t) { .budget = budget, .held = 0, .references = 1, .uncharged = 0,
                              .step = budget / 8 < ZPER_OUTPUT_CHARGE_STEP?
                                      budget / 8: ZPER_OUTPUT_CHARGE_STEP,
                              .socket = "unlabeled" };
    pthread_mutex_lock (&s_registry.mutex);
    self->next = s_registry.first;
    if (self->next)
        self->next->previous = self;
    s_registry.first = self;
    s_registry.count++;
    pthread_mutex_unlock (&s_registry.mutex);
    return self;
}

static void
s_unref (zper_output_t *self)
{
    if (__atomic_sub_fetch (&self->references, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_mutex_lock (&s_registry.mutex);
    if (self->previous)
        self->previous->next = self->next;
    else
        s_registry.first = self->next;
    if (self->next)
        self->next->previous = self->previous;
    s_registry.count--;
    pthread_mutex_unlock (&s_registry.mutex);
    free (self);
}

void
zper_output_destroy (zper_output_t **self_p)
{
    assert (self_p);
    if (*self_p)
        s_unref (*self_p);
    *self_p = NULL;
}

//  Messages charged that libzmq may still hold (charges in steps make
//  this count high by up to one step's messages, never low)
static uint64_t
s_queued_messages (zper_output_t *self)
{
    return self->messages - __atomic_load_n (&self->released, __ATOMIC_ACQUIRE);
}

bool
zper_output_full (zper_output_t *self)
{
    assert (self);
    return zper_output_held (self) + self->uncharged >= self->budget
        || (self->message_cap && s_queued_messages (self) >= self->message_cap);
}

bool
zper_output_room_after (zper_output_t *self, size_t data_bytes, size_t frames)
{
    assert (self);
    int64_t bytes = (int64_t) (data_bytes + frames * ZPER_OUTPUT_FRAME_COST);
    return zper_output_held (self) + self->uncharged + bytes < self->budget
        && (!self->message_cap || s_queued_messages (self) + 1 < self->message_cap);
}

void
zper_output_set_message_cap (zper_output_t *self, uint64_t messages)
{
    assert (self);
    self->message_cap = messages;
}

bool
zper_output_fits (zper_output_t *self, size_t bytes)
{
    assert (self);
    return zper_output_held (self) + self->uncharged + (int64_t) bytes <= self->budget;
}

int64_t
zper_output_held (zper_output_t *self)
{
    assert (self);
    return __atomic_load_n (&self->held, __ATOMIC_RELAXED);
}

//  libzmq released a charged message: release the original, give back.
static void
s_release (void *data, void *hint)
{
    charge_t *charge = (charge_t *) hint;
    zmq_msg_close (&charge->original);
    __atomic_sub_fetch (&charge->output->held, charge->bytes, __ATOMIC_RELAXED);
    //  In order within a peer's pipe; max () for a peer that came back
    //  on a new pipe while its old one still released
    uint64_t seen = __atomic_load_n (&charge->output->released, __ATOMIC_RELAXED);
    while (seen < charge->messages
       &&  !__atomic_compare_exchange_n (&charge->output->released, &seen, charge->messages,
                                         true, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    s_unref (charge->output);
    free (charge);
}

//  Charge bytes with msg, noting the messages charged so far
static int
s_charge (zper_output_t *self, zmq_msg_t *msg, int64_t bytes)
{
    charge_t *charge = (charge_t *) malloc (sizeof (charge_t));
    if (!charge)
        return -1;
    charge->output = self;
    charge->bytes = bytes;
    charge->messages = self->messages;
    zmq_msg_init (&charge->original);
    zmq_msg_move (&charge->original, msg);
    //  The data pointer is taken after the move: a small message keeps its
    //  bytes inside the zmq_msg_t, which now lives in the charge
    if (zmq_msg_init_data (msg, zmq_msg_data (&charge->original), zmq_msg_size (&charge->original),
                           s_release, charge)) {
        zmq_msg_move (msg, &charge->original);
        free (charge);
        return -1;
    }
    __atomic_add_fetch (&self->references, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch (&self->held, charge->bytes, __ATOMIC_RELAXED);
    return 0;
}

int
zper_output_charge (zper_output_t *self, zmq_msg_t *msg, size_t data_bytes, size_t frames)
{
    assert (self && msg);
    self->messages++;
    if (s_charge (self, msg, (int64_t) (data_bytes + frames * ZPER_OUTPUT_FRAME_COST))) {
        self->messages--;
        return -1;
    }
    return 0;
}

int
zper_output_charge_batched (zper_output_t *self, zmq_msg_t *msg, size_t data_bytes,
                            size_t frames)
{
    assert (self && msg);
    self->uncharged += (int64_t) (data_bytes + frames * ZPER_OUTPUT_FRAME_COST);
    self->messages++;
    //  A full output must hold its bytes on a live message: its release is
    //  what makes the output not full again
    if (self->uncharged < self->step && !zper_output_full (self))
        return 0;
    int64_t bytes = self->uncharged;
    self->uncharged = 0;
    if (s_charge (self, msg, bytes)) {
        self->uncharged = bytes;
        return -1;
    }
    return 0;
}

//  Copy a label into target (size bytes with its NUL), safe for JSON and
//  Prometheus text as it is.
static void
s_label_copy (char *target, size_t size, const char *label)
{
    size_t length = 0;
    for (; label && label [length] && length + 1 < size; length++) {
        char c = label [length];
        target [length] = isalnum ((unsigned char) c) || c == '.' || c == '_' || c == '-'
                       || c == '*'? c: '_';
    }
    target [length] = 0;
}

void
zper_output_set_label (zper_output_t *self, const char *socket, const char *peer)
{
    assert (self);
    pthread_mutex_lock (&s_registry.mutex);
    s_label_copy (self->socket, sizeof self->socket, socket);
    s_label_copy (self->peer, sizeof self->peer, peer);
    pthread_mutex_unlock (&s_registry.mutex);
}

void
zper_output_set_label_id (zper_output_t *self, const char *socket, const void *routing_id,
                          size_t routing_id_size)
{
    static const char hex [] = "0123456789ABCDEF";
    char peer [ZPER_OUTPUT_PEER_MAX];
    size_t length = 0;
    const uint8_t *bytes = (const uint8_t *) routing_id;
    for (size_t index = 0; index < routing_id_size && length + 2 < sizeof peer; index++) {
        peer [length++] = hex [bytes [index] >> 4];
        peer [length++] = hex [bytes [index] & 15];
    }
    peer [length] = 0;
    zper_output_set_label (self, socket, peer);
}

void
zper_output_dropped (zper_output_t *self, uint64_t count)
{
    assert (self);
    __atomic_add_fetch (&self->dropped, count, __ATOMIC_RELAXED);
    __atomic_add_fetch (&s_registry.dropped, count, __ATOMIC_RELAXED);
}

uint64_t
zper_output_drops (zper_output_t *self)
{
    assert (self);
    return __atomic_load_n (&self->dropped, __ATOMIC_RELAXED);
}

//  An output's counts, read once: the sort must not see them move.
typedef struct {
    zper_output_t *output;
    int64_t queued_bytes;
    uint64_t dropped;
} snapshot_entry_t;

static int
s_busier_first (const void *left, const void *right)
{
    const snapshot_entry_t *one = (const snapshot_entry_t *) left;
    const snapshot_entry_t *other = (const snapshot_entry_t *) right;
    if (one->queued_bytes != other->queued_bytes)
        return one->queued_bytes > other->queued_bytes? -1: 1;
    if (one->dropped != other->dropped)
        return one->dropped > other->dropped? -1: 1;
    return 0;
}

zper_output_peer_t *
zper_output_snapshot (zper_output_totals_t *totals, size_t max_peers, size_t *listed)
{
    assert (totals && listed);
    *totals = (zper_output_totals_t) { 0 };
    *listed = 0;
    zper_output_peer_t *peers = NULL;
    pthread_mutex_lock (&s_registry.mutex);
    size_t count = s_registry.count;
    snapshot_entry_t *entries = count && max_peers
        ? (snapshot_entry_t *) malloc (count * sizeof (snapshot_entry_t)): NULL;
    for (zper_output_t *output = s_registry.first; output; output = output->next) {
        snapshot_entry_t entry = { output, zper_output_held (output), zper_output_drops (output) };
        if (entries)
            entries [totals->count] = entry;
        totals->count++;
        totals->queued_bytes += entry.queued_bytes;
    }
    size_t wanted = max_peers < count? max_peers: count;
    if (entries)
        peers = (zper_output_peer_t *) malloc (wanted * sizeof (zper_output_peer_t));
    if (peers) {
        qsort (entries, count, sizeof (snapshot_entry_t), s_busier_first);
        for (size_t index = 0; index < wanted; index++) {
            zper_output_peer_t *peer = &peers [index];
            memcpy (peer->socket, entries [index].output->socket, sizeof peer->socket);
            memcpy (peer->peer, entries [index].output->peer, sizeof peer->peer);
            peer->queued_bytes = entries [index].queued_bytes;
            peer->dropped = entries [index].dropped;
        }
        *listed = wanted;
    }
    free (entries);
    pthread_mutex_unlock (&s_registry.mutex);
    totals->dropped = __atomic_load_n (&s_registry.dropped, __ATOMIC_RELAXED);
    return peers;
}

int
zper_output_publish_first (void *xpub, const void *data, size_t size)
{
    if (zmq_send (xpub, data, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1)
        return 0;
    if (zmq_errno () != EAGAIN)
        return -1;
    //  A subscriber's queue is full: NODROP refused the message to all.
    //  Send it to the others, as a plain PUB would, and say so.
    int nodrop = 0;
    zmq_setsockopt (xpub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    int rc = zmq_send (xpub, data, size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    nodrop = 1;
    zmq_setsockopt (xpub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    return rc == -1? -1: 1;
}

//  --------------------------------------------------------------------------
//  Selftest

void
zper_output_test (bool verbose)
{
    //  A charge holds its bytes until libzmq releases the message, and the
    //  output outlives its owner while a charged message lives
    zper_output_t *output = zper_output_new (1000);
    assert (output && !zper_output_full (output) && zper_output_held (output) == 0);
    zmq_msg_t msg;
    zmq_msg_init_size (&msg, 900);
    memset (zmq_msg_data (&msg), 'x', 900);
    assert (zper_output_charge (output, &msg, 900, 2) == 0);
    assert (zper_output_held (output) == 900 + 2 * ZPER_OUTPUT_FRAME_COST);
    assert (zper_output_full (output));
    assert (zmq_msg_size (&msg) == 900 && ((char *) zmq_msg_data (&msg)) [899] == 'x');
    zmq_msg_t small;
    zmq_msg_init_size (&small, 3);
    memcpy (zmq_msg_data (&small), "abc", 3);
    assert (zper_output_charge (output, &small, 3, 1) == 0);

    //  Through a real socket pair: sent, received intact, released
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    int nodrop = 1;
    zmq_setsockopt (zsock_resolve (xpub), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    zsock_set_sndhwm (xpub, 1);
    assert (zsock_bind (xpub, "inproc://zper-output-test") == 0);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 1);
    zsock_set_subscribe (sub, "t");
    assert (zsock_connect (sub, "inproc://zper-output-test") == 0);
    zsock_set_rcvtimeo (sub, 5000);
    zframe_t *subscription = zframe_recv (xpub);
    assert (subscription && zframe_size (subscription) == 2);
    zframe_destroy (&subscription);
    assert (zper_output_publish_first (zsock_resolve (xpub), "t", 1) == 0);
    assert (zmq_msg_send (&msg, zsock_resolve (xpub), ZMQ_SNDMORE) == 900);
    assert (zmq_msg_send (&small, zsock_resolve (xpub), 0) == 3);
    zmsg_t *received = zmsg_recv (sub);
    assert (received && zmsg_size (received) == 3);
    assert (zframe_streq (zmsg_first (received), "t") && zframe_size (zmsg_next (received)) == 900);
    assert (zframe_streq (zmsg_last (received), "abc"));
    assert (zper_output_full (output));         //  the receiver still holds the messages
    zmsg_destroy (&received);
    assert (zper_output_held (output) == 0);

    //  Batched charges: small messages add up, and are charged with the
    //  message that reaches a step or fills the budget
    zper_output_destroy (&output);
    output = zper_output_new (ZPER_OUTPUT_CHARGE_STEP * 8);
    zmq_msg_t many [4];
    for (int index = 0; index < 4; index++) {
        zmq_msg_init_size (&many [index], ZPER_OUTPUT_CHARGE_STEP / 2);
        assert (zper_output_charge_batched (output, &many [index], ZPER_OUTPUT_CHARGE_STEP / 2,
                                            0) == 0);
    }
    assert (zper_output_held (output) == ZPER_OUTPUT_CHARGE_STEP * 2);
    zmq_msg_close (&many [0]);          //  not charged: the bytes stay counted
    assert (zper_output_held (output) == ZPER_OUTPUT_CHARGE_STEP * 2);
    zmq_msg_close (&many [1]);          //  charged with the bytes of both
    zmq_msg_close (&many [2]);
    assert (zper_output_held (output) == ZPER_OUTPUT_CHARGE_STEP);
    zmq_msg_close (&many [3]);
    assert (zper_output_held (output) == 0);
    zper_output_destroy (&output);
    //  Under a small budget the step is an eighth of it: each 20 bytes are charged
    output = zper_output_new (100);
    zmq_msg_init_size (&msg, 20);
    assert (zper_output_charge_batched (output, &msg, 20, 0) == 0);
    assert (zper_output_held (output) == 20 && zper_output_fits (output, 80));
    assert (!zper_output_fits (output, 81));
    zmq_msg_close (&msg);
    assert (zper_output_held (output) == 0);
    zper_output_destroy (&output);
    //  A message that fills the budget is charged at once, however small
    output = zper_output_new (100);
    zmq_msg_init_size (&msg, 100);
    assert (zper_output_charge_batched (output, &msg, 100, 0) == 0 && zper_output_full (output));
    zmq_msg_close (&msg);
    assert (zper_output_held (output) == 0);

    //  A message cap: every message counts, charged at once or in steps;
    //  the release of a charge gives back every message charged before it
    //  (libzmq releases a peer's messages in order). room_after tells a
    //  sender, before a message, that the one after it will go too.
    zper_output_t *capped = zper_output_new (1000000);
    zper_output_set_message_cap (capped, 3);
    zmq_msg_t in_queue [3];
    assert (zper_output_room_after (capped, 10, 1));
    zmq_msg_init_size (&in_queue [0], 10);
    assert (zper_output_charge_batched (capped, &in_queue [0], 10, 1) == 0);
    assert (!zper_output_full (capped) && zper_output_room_after (capped, 10, 1));
    zmq_msg_init_size (&in_queue [1], 10);
    assert (zper_output_charge (capped, &in_queue [1], 10, 1) == 0);
    assert (!zper_output_full (capped) && !zper_output_room_after (capped, 10, 1));
    zmq_msg_init_size (&in_queue [2], 10);
    assert (zper_output_charge_batched (capped, &in_queue [2], 10, 1) == 0);
    assert (zper_output_full (capped));         //  the third is charged: it fills the cap
    zmq_msg_close (&in_queue [1]);                //  gives back the first two: one queued
    assert (!zper_output_full (capped) && zper_output_room_after (capped, 10, 1));
    zmq_msg_close (&in_queue [0]);                //  not charged itself: nothing to give
    zmq_msg_close (&in_queue [2]);
    assert (zper_output_room_after (capped, 10, 1) && zper_output_held (capped) == 0);
    //  Bytes count too: room_after is false when the next message would fill the budget
    assert (!zper_output_room_after (capped, 1000000, 0));
    zper_output_destroy (&capped);

    //  The owner may let go while libzmq still holds a charged message
    zmq_msg_init_size (&msg, 10);
    assert (zper_output_charge (output, &msg, 10, 1) == 0);
    zper_output_destroy (&output);
    zper_output_destroy (&output);
    zmq_msg_close (&msg);

    //  A subscriber whose queue is full misses a message, and the sender
    //  learns it (inproc: the queue is both HWMs, 2 messages)
    int missed = 0;
    for (int index = 0; index < 5; index++) {
        int rc = zper_output_publish_first (zsock_resolve (xpub), "t", 1);
        assert (rc >= 0);
        missed += rc;
        zstr_send (xpub, "body");
    }
    assert (missed > 0);
    zsock_destroy (&sub);
    zsock_destroy (&xpub);

    //  The registry lists every output with its label, queued bytes and
    //  drops, busiest first; an output leaves it once finally freed
    zper_output_totals_t totals;
    size_t listed;
    assert (zper_output_snapshot (&totals, 0, &listed) == NULL && listed == 0);
    size_t count_before = totals.count;
    uint64_t dropped_before = totals.dropped;
    zper_output_t *quiet = zper_output_new (1000);
    zper_output_t *dropping = zper_output_new (1000);
    zper_output_t *queued = zper_output_new (1000);
    zper_output_set_label (quiet, "ack", "*");
    zper_output_set_label_id (dropping, "rear", "\x01\xAB", 2);
    zper_output_set_label (queued, "relay.pub", "a b\"c");    //  not JSON-safe: cleaned
    zper_output_dropped (dropping, 3);
    assert (zper_output_drops (dropping) == 3 && zper_output_drops (quiet) == 0);
    zmq_msg_init_size (&msg, 100);
    assert (zper_output_charge (queued, &msg, 100, 1) == 0);
    size_t room = count_before + 3;
    zper_output_peer_t *peers = zper_output_snapshot (&totals, room + 10, &listed);
    assert (peers && listed == room && totals.count == room);
    assert (totals.queued_bytes >= 100 + ZPER_OUTPUT_FRAME_COST);
    assert (totals.dropped == dropped_before + 3);
    int where_queued = -1, where_dropping = -1, where_quiet = -1;
    for (size_t index = 0; index < listed; index++) {
        if (streq (peers [index].socket, "relay.pub") && streq (peers [index].peer, "a_b_c")) {
            assert (peers [index].queued_bytes == 100 + ZPER_OUTPUT_FRAME_COST);
            where_queued = (int) index;
        }
        if (streq (peers [index].socket, "rear") && streq (peers [index].peer, "01AB")) {
            assert (peers [index].dropped == 3 && peers [index].queued_bytes == 0);
            where_dropping = (int) index;
        }
        if (streq (peers [index].socket, "ack") && streq (peers [index].peer, "*"))
            where_quiet = (int) index;
    }
    //  Queued bytes first, then drops
    assert (where_queued >= 0 && where_dropping > where_queued && where_quiet > where_dropping);
    //  At most max_peers: the busiest
    free (peers);
    peers = zper_output_snapshot (&totals, 1, &listed);
    assert (peers && listed == 1 && streq (peers [0].peer, "a_b_c"));
    free (peers);
    //  The owner let go but libzmq holds a message: still listed until released
    zper_output_destroy (&queued);
    zper_output_snapshot (&totals, 0, &listed);
    assert (totals.count == count_before + 3);
    zmq_msg_close (&msg);
    zper_output_snapshot (&totals, 0, &listed);
    assert (totals.count == count_before + 2);
    zper_output_destroy (&quiet);
    zper_output_destroy (&dropping);
    zper_output_snapshot (&totals, 0, &listed);
    assert (totals.count == count_before && totals.dropped == dropped_before + 3);
    if (verbose)
        zsys_info ("zper_output: charges, message caps, release, PUB drops and the registry checked");
}
