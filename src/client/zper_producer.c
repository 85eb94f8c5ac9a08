/*  =========================================================================
    zper_producer - write messages to a ZPER broker's front

    One socket per producer: DEALER for modes 0, 1, 3 and 4, REQ for mode 2
    (docs/protocol.md, section 2); the topic and mode travel in the socket
    identity. The one thing to know is the native batch path (modes 3 and
    4): messages are encoded here, ZMTP/2.0 frame by frame, into one growing
    buffer, and the whole buffer leaves as one ZeroMQ frame [batch id][batch]
    that the broker appends as one record. libzmq then handles one message
    per batch instead of one per stored message, which is what lets a
    producer outrun libzmq's per-message rate.

    There is no background thread: acknowledgements are read, and a batch
    whose linger time has passed is sent, in whichever producer call comes
    next (send, flush, poll, sync), and the window of replies owed keeps
    what the broker queues for us bounded. The send path costs per message
    about what a raw zmq_send does: send_mem makes no zmsg_t, send hands
    the caller's frames over without a copy, replies are read into
    zmq_msg_t on the stack, a mode-1 send looks for replies only
    now and then (looking when none is there is a poll() inside libzmq),
    and a batch buffer is handed to libzmq without a copy.

    CURVE (zper_producer_set_curve) must be on the socket before it
    connects, so the socket is made by the first send, when every option
    is known: a CURVE producer never shows the broker a plaintext attempt.
    ========================================================================= */

#include "zper_client_wire.h"
#include "zper_zmtp.h"

#define ZPER_IDENTITY_HEADER_SIZE   3           //  hash, mode, topic length
#define ZPER_BATCH_ID_SIZE          ZPER_WIRE_INT64_SIZE
//  A message with more frames than this is encoded through a heap array.
#define ZPER_STACK_FRAMES           16
//  The longest valid reply: mode 3's [status][batch id][offset][count].
#define ZPER_REPLY_FRAMES_MAX       4

struct _zper_producer_t {
    char *endpoint;
    char *topic;
    int mode;
    zsock_t *socket;
    int timeout_ms;
    int ack_timeout_ms;
    //  The open batch (modes 3 and 4)
    uint8_t *batch;
    size_t batch_size;
    size_t batch_capacity;
    size_t batch_messages;
    int64_t batch_opened_ms;        //  s_coarse_ms () of the batch's first message
    size_t batch_max_bytes;
    size_t batch_max_messages;
    int batch_linger_ms;
    uint64_t next_batch_id;
    uint64_t acked_batch_id;        //  the oldest batch not yet acknowledged
    zlistx_t *batches;              //  message counts of batches in flight, oldest first
    //  Acknowledgements
    int64_t acked;
    int64_t unacked;
    int64_t unacked_bytes;          //  mode 1: what the owed replies weigh (s_reply_weight)
    int64_t refused;
    int64_t last_offset;
    zper_client_curve_t curve;      //  plaintext until zper_producer_set_curve
    int failure_errno;              //  errno of the last refusal or bad reply since the last sync
    int sends_since_drain;          //  mode 1: sends since acks were last read
    int64_t drained_ms;             //  s_coarse_ms () when acks were last read
    zper_ack_fn *ack_handler;
    void *ack_arg;
    char error [ZPER_CLIENT_ERROR_MAX];
};

//  Milliseconds of the coarse monotonic clock, for the checks made on every
//  message (batch linger, ack drain interval). It reads no clock source, so
//  it costs a fraction of zclock_mono (10 ns against 45 ns in a VM, where
//  the precise clock was a third of a batch producer's CPU); its
//  resolution, one kernel tick (1-4 ms), is the precision of those checks.
static int64_t
s_coarse_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC_COARSE, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool
s_batching (zper_producer_t *self)
{
    return self->mode == ZPER_MODE_BATCH_ACK || self->mode == ZPER_MODE_BATCH;
}

static bool
s_acking (zper_producer_t *self)
{
    return self->mode == ZPER_MODE_ACK || self->mode == ZPER_MODE_BATCH_ACK;
}

//  The later-revision identity: [hash][mode][toplen][topic][uuid].
static zframe_t *
s_identity_new (const char *topic, int mode)
{
    zframe_t *identity = zframe_new (NULL, ZPER_IDENTITY_HEADER_SIZE + strlen (topic)
                                           + ZPER_IDENTITY_UUID_SIZE);
    zuuid_t *uuid = zuuid_new ();
    zper_identity_encode (topic, (uint8_t) mode, zuuid_data (uuid), zframe_data (identity));
    zuuid_destroy (&uuid);
    return identity;
}

//  Connect a new socket with a new identity: a rebuilt REQ socket must not
//  claim the routing id its predecessor may still hold at the broker.
static int
s_connect (zper_producer_t *self)
{
    zframe_t *identity = s_identity_new (self->topic, self->mode);
    //  Lingering lets the last fire-and-forget messages leave after destroy,
    //  for at most the send timeout.
    self->socket = zper_client_socket (self->mode == ZPER_MODE_REQ? ZMQ_REQ: ZMQ_DEALER,
                                       self->endpoint, identity, self->timeout_ms,
                                       self->timeout_ms, &self->curve);
    zframe_destroy (&identity);
    return self->socket? 0: -1;
}

//  The socket, made by the first send. Returns 0, or -1 (ENOTCONN).
static int
s_ready (zper_producer_t *self)
{
    if (self->socket || s_connect (self) == 0)
        return 0;
    zper_client_error_set (self->error, "cannot connect to %s", self->endpoint);
    errno = ENOTCONN;
    return -1;
}

zper_producer_t *
zper_producer_new (const char *endpoint, const char *topic, int mode)
{
    if (!zper_client_endpoint_valid (endpoint) || !zper_topic_valid (topic)
    ||  mode < ZPER_MODE_NONE || mode > ZPER_MODE_BATCH) {
        errno = EINVAL;
        return NULL;
    }
    zper_producer_t *self = (zper_producer_t *) zmalloc (sizeof (zper_producer_t));
    self->endpoint = strdup (endpoint);
    self->topic = strdup (topic);
    self->mode = mode;
    self->timeout_ms = ZPER_CLIENT_TIMEOUT_MS;
    self->ack_timeout_ms = ZPER_CLIENT_ACK_TIMEOUT_MS;
    self->batch_max_bytes = ZPER_CLIENT_BATCH_BYTES;
    self->batch_max_messages = ZPER_CLIENT_BATCH_MESSAGES;
    self->batch_linger_ms = ZPER_CLIENT_BATCH_LINGER_MS;
    self->last_offset = -1;
    self->batches = zlistx_new ();
    return self;
}

void
zper_producer_destroy (zper_producer_t **self_p)
{
    assert (self_p);
    zper_producer_t *self = *self_p;
    if (self) {
        if (self->socket && (self->batch_messages || self->unacked))
            zper_producer_sync (self);
        zsock_destroy (&self->socket);
        zper_client_curve_reset (&self->curve);
        zlistx_destroy (&self->batches);
        free (self->batch);
        free (self->endpoint);
        free (self->topic);
        free (self);
        *self_p = NULL;
    }
}

void
zper_producer_set_timeout (zper_producer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms;
    if (self->socket) {
        zsock_set_sndtimeo (self->socket, timeout_ms);
        zsock_set_linger (self->socket, timeout_ms);
    }
}

int
zper_producer_set_curve (zper_producer_t *self, const char *server_key, const char *cert_path)
{
    assert (self);
    if (self->socket) {
        zper_client_error_set (self->error, "CURVE must be set before the first send");
        errno = EBUSY;
        return -1;
    }
    if (zper_client_curve_load (&self->curve, server_key, cert_path, self->error) == -1) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

void
zper_producer_set_ack_timeout (zper_producer_t *self, int timeout_ms)
{
    assert (self);
    self->ack_timeout_ms = timeout_ms;
}

void
zper_producer_set_batch (zper_producer_t *self, size_t max_bytes, size_t max_messages, int linger_ms)
{
    assert (self);
    self->batch_max_bytes = max_bytes;
    self->batch_max_messages = max_messages? max_messages: 1;
    self->batch_linger_ms = linger_ms;
}

void
zper_producer_set_ack_handler (zper_producer_t *self, zper_ack_fn *handler, void *arg)
{
    assert (self);
    self->ack_handler = handler;
    self->ack_arg = arg;
}

//  ---- acknowledgements -----------------------------------------------------

//  One reply as received: up to ZPER_REPLY_FRAMES_MAX frames, straight from
//  libzmq (no zmsg_t, no allocation). frame_count counts every frame that
//  came, so a reply longer than any valid one shows as malformed.
typedef struct {
    zmq_msg_t frames [ZPER_REPLY_FRAMES_MAX];
    size_t frame_count;
} reply_t;

static size_t
s_reply_size (reply_t *reply, size_t index)
{
    return index < reply->frame_count? zmq_msg_size (&reply->frames [index]): 0;
}

static const uint8_t *
s_reply_data (reply_t *reply, size_t index)
{
    return (const uint8_t *) zmq_msg_data (&reply->frames [index]);
}

static void
s_reply_close (reply_t *reply)
{
    for (size_t index = 0; index < ZPER_REPLY_FRAMES_MAX; index++)
        zmq_msg_close (&reply->frames [index]);
}

//  Receive one whole reply; flags ZMQ_DONTWAIT or 0. Returns 0, or -1 when
//  none is waiting (the reply is then empty but still to be closed).
static int
s_reply_recv (zper_producer_t *self, reply_t *reply, int flags)
{
    void *handle = zsock_resolve (self->socket);
    for (size_t index = 0; index < ZPER_REPLY_FRAMES_MAX; index++)
        zmq_msg_init (&reply->frames [index]);
    reply->frame_count = 0;
    if (zmq_msg_recv (&reply->frames [0], handle, flags) == -1)
        return -1;
    reply->frame_count = 1;
    //  The rest of a multipart message is there as soon as its first frame is.
    zmq_msg_t *last = &reply->frames [0];
    while (zmq_msg_more (last)) {
        if (reply->frame_count < ZPER_REPLY_FRAMES_MAX)
            last = &reply->frames [reply->frame_count];
        if (zmq_msg_recv (last, handle, 0) == -1)
            break;
        reply->frame_count++;
    }
    return 0;
}

//  What a mode-1 reply to a message whose first frame is id_size bytes
//  weighs at the broker: the reply echoes that frame (docs/protocol.md),
//  and front.reply_budget counts each frame with libzmq's overhead.
static int64_t
s_reply_weight (size_t id_size)
{
    return (int64_t) id_size + ZPER_OUTPUT_FRAME_COST;
}

//  Account for one acknowledgement and tell the handler. Returns 0, or -1
//  for a refusal (recorded for the next sync).
static int
s_account (zper_producer_t *self, const zper_ack_t *ack)
{
    int64_t covered = ack->count;
    self->unacked = self->unacked > covered? self->unacked - covered: 0;
    if (self->ack_handler)
        self->ack_handler (ack, self->ack_arg);
    if (ack->status == ZPER_STATUS_OK) {
        self->acked += covered;
        if (ack->first_offset >= 0)
            self->last_offset = ack->first_offset + covered - 1;
        return 0;
    }
    self->refused += covered;
    self->failure_errno = zper_client_status_errno (ack->status);
    zper_client_error_set (self->error, "%s refused %s of topic '%s': %s%s",
                           self->endpoint, ack->count > 1? "a batch": "a message",
                           self->topic, zper_status_name (ack->status),
                           zper_client_status_hint (ack->status));
    errno = self->failure_errno;
    return -1;
}

//  Modes 1 and 2: success is [message id]; a refusal is [message id]
//  [status:1] (docs/protocol.md, section 2.1).
static int
s_parse_message_reply (reply_t *reply, zper_ack_t *ack)
{
    size_t frames = reply->frame_count;
    *ack = (zper_ack_t) { ZPER_STATUS_OK, s_reply_data (reply, 0), s_reply_size (reply, 0), -1, 1 };
    if (frames == 2 && s_reply_size (reply, 1) == ZPER_WIRE_STATUS_SIZE)
        ack->status = *s_reply_data (reply, 1);
    return frames == 1 || (frames == 2 && ack->status != ZPER_STATUS_OK)? 0: -1;
}

//  Mode 3: [status:1][batch id][first offset:int64][count:int32].
static int
s_parse_batch_reply (reply_t *reply, zper_ack_t *ack)
{
    memset (ack, 0, sizeof *ack);
    if (reply->frame_count != 4 || s_reply_size (reply, 0) != ZPER_WIRE_STATUS_SIZE
    ||  s_reply_size (reply, 2) != ZPER_WIRE_INT64_SIZE
    ||  s_reply_size (reply, 3) != ZPER_WIRE_INT32_SIZE)
        return -1;
    ack->status = *s_reply_data (reply, 0);
    ack->id = s_reply_data (reply, 1);
    ack->id_size = s_reply_size (reply, 1);
    ack->first_offset = zper_wire_get_int64 (s_reply_data (reply, 2));
    ack->count = zper_wire_get_int32 (s_reply_data (reply, 3));
    if (ack->status == ZPER_STATUS_OK && (ack->first_offset < 0 || ack->count <= 0))
        return -1;
    return 0;
}

//  Mode 3: the broker answers a producer's batches in the order they were
//  sent, so in-flight batches are a FIFO of message counts, the oldest
//  being batch id acked_batch_id. A refusal says count 0: the FIFO knows
//  how many messages it refused.
static int
s_match_batch (zper_producer_t *self, zper_ack_t *ack)
{
    uint8_t expected [ZPER_BATCH_ID_SIZE];
    zper_wire_put_int64 (expected, (int64_t) self->acked_batch_id);
    void *in_flight = zlistx_first (self->batches);
    if (!in_flight || ack->id_size != sizeof expected || memcmp (ack->id, expected, sizeof expected))
        return -1;
    int32_t count = (int32_t) (uintptr_t) in_flight;
    if (ack->status == ZPER_STATUS_OK && ack->count != count)
        return -1;
    ack->count = count;
    zlistx_delete (self->batches, zlistx_cursor (self->batches));
    self->acked_batch_id++;
    return 0;
}

//  Receive and account one reply (flags ZMQ_DONTWAIT: only if one is
//  waiting). Returns 0 when a reply came, with *acked the messages it
//  acknowledged or -1 (a refusal, or a reply that breaks the protocol);
//  returns -1 when none came.
static int
s_receive_ack (zper_producer_t *self, int flags, int *acked)
{
    reply_t reply;
    if (s_reply_recv (self, &reply, flags) == -1) {
        s_reply_close (&reply);
        return -1;
    }
    if (self->mode != ZPER_MODE_BATCH_ACK) {
        //  Modes 1 and 2 reply once per message, echoing its first frame
        self->unacked_bytes -= s_reply_weight (s_reply_size (&reply, 0));
        if (self->unacked_bytes < 0 || self->unacked <= 1)
            self->unacked_bytes = 0;
    }
    zper_ack_t ack;
    int rc = self->mode == ZPER_MODE_BATCH_ACK? s_parse_batch_reply (&reply, &ack)
                                                : s_parse_message_reply (&reply, &ack);
    if (rc == 0 && self->mode == ZPER_MODE_BATCH_ACK)
        rc = s_match_batch (self, &ack);
    if (rc == 0)
        *acked = s_account (self, &ack) == 0? ack.count: -1;
    else {
        zper_client_error_set (self->error, "%s sent a malformed acknowledgement (%zu frames)",
                               self->endpoint, reply.frame_count);
        errno = self->failure_errno = EPROTO;
        *acked = -1;
        //  Modes 1 and 2 get one reply per message, so this one still
        //  settles a message, as not known to be stored; a batch reply
        //  that cannot be matched settles nothing.
        if (self->mode != ZPER_MODE_BATCH_ACK && self->unacked > 0) {
            self->unacked--;
            self->refused++;
        }
    }
    s_reply_close (&reply);
    return 0;
}

//  Receive every acknowledgement that is waiting, then (while any is owed)
//  those that arrive within timeout_ms. Replies that are there are taken
//  without a poll; the socket is polled only once none is left. Returns
//  messages acknowledged, or -1.
static int
s_receive_acks (zper_producer_t *self, int timeout_ms)
{
    int total = 0;
    bool failed = false;
    int64_t deadline = zclock_mono () + timeout_ms;
    self->sends_since_drain = 0;
    self->drained_ms = s_coarse_ms ();
    while (s_acking (self) && self->socket) {
        int acked;
        if (s_receive_ack (self, ZMQ_DONTWAIT, &acked) == 0) {
            if (acked == -1)
                failed = true;
            else
                total += acked;
            continue;
        }
        int64_t remaining = deadline - zclock_mono ();
        if (!self->unacked || remaining <= 0
        ||  zper_client_wait_readable (self->socket, (int) remaining) != 1)
            break;
    }
    return failed? -1: total;
}

//  ---- sending ---------------------------------------------------------------

//  Replies the broker still owes us: one per message in mode 1, one per
//  batch in mode 3.
static size_t
s_replies_owed (zper_producer_t *self)
{
    return self->mode == ZPER_MODE_BATCH_ACK? zlistx_size (self->batches): (size_t) self->unacked;
}

static int
s_ack_timeout (zper_producer_t *self)
{
    zper_client_error_set (self->error, "%s did not acknowledge %" PRId64 " message(s) within %d ms",
                           self->endpoint, self->unacked, self->ack_timeout_ms);
    errno = ETIMEDOUT;
    return -1;
}

//  Whether the window is full: the replies owed (ZPER_CLIENT_MAX_IN_FLIGHT
//  messages in mode 1, ZPER_CLIENT_MAX_BATCHES_IN_FLIGHT batches in mode
//  3), or in mode 1 their weight (ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT:
//  10,000 replies that echo 64 KiB messages would be 640 MB, and a broker
//  refuses a writer whose unread replies pass front.reply_budget).
static bool
s_window_full (zper_producer_t *self)
{
    if (self->mode == ZPER_MODE_BATCH_ACK)
        return s_replies_owed (self) >= ZPER_CLIENT_MAX_BATCHES_IN_FLIGHT;
    return s_replies_owed (self) >= ZPER_CLIENT_MAX_IN_FLIGHT
        || self->unacked_bytes >= ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT;
}

//  Flow control: wait until the window has room. While we are blocked
//  sending we read no replies, and a ROUTER drops replies past its send
//  high-water mark: the window keeps what the broker must queue for us
//  bounded.
static int
s_await_window (zper_producer_t *self)
{
    int64_t deadline = zclock_mono () + self->ack_timeout_ms;
    while (s_acking (self) && s_window_full (self)) {
        int acked;
        if (s_receive_ack (self, ZMQ_DONTWAIT, &acked) == 0)
            continue;
        int64_t remaining = deadline - zclock_mono ();
        if (remaining <= 0 || zper_client_wait_readable (self->socket, (int) remaining) != 1)
            return s_ack_timeout (self);
    }
    return 0;
}

//  Mode 1: read waiting acknowledgements every ZPER_CLIENT_DRAIN_SENDS
//  sends, or once ZPER_CLIENT_DRAIN_INTERVAL_MS has passed. Looking costs
//  a poll() inside libzmq when nothing is there; the window bounds what
//  the broker queues in between. A refusal of an earlier message is for
//  poll and sync to report, not this send.
static void
s_drain_now_and_then (zper_producer_t *self)
{
    if (++self->sends_since_drain >= ZPER_CLIENT_DRAIN_SENDS
    ||  s_coarse_ms () - self->drained_ms >= ZPER_CLIENT_DRAIN_INTERVAL_MS)
        s_receive_acks (self, 0);
}

static int
s_send_failed (zper_producer_t *self)
{
    if (errno == EAGAIN) {
        zper_client_error_set (self->error, "no connection to %s within %d ms (%s)",
                               self->endpoint, self->timeout_ms,
                               zper_client_diagnose (self->endpoint, &self->curve, self->timeout_ms));
        errno = EHOSTUNREACH;
    }
    else
        zper_client_error_set (self->error, "cannot send to %s: %s", self->endpoint,
                               strerror (errno));
    return -1;
}

//  Send the frames of msg as one ZeroMQ message, each handed over without
//  a copy; destroys msg.
static int
s_send_message (zper_producer_t *self, zmsg_t **msg_p)
{
    void *handle = zsock_resolve (self->socket);
    int rc = 0;
    while (rc == 0 && zmsg_size (*msg_p)) {
        zframe_t *frame = zmsg_pop (*msg_p);
        rc = zframe_send (&frame, handle, zmsg_size (*msg_p)? ZFRAME_MORE: 0);
        zframe_destroy (&frame);        //  still ours if the send failed
    }
    zmsg_destroy (msg_p);
    return rc == -1? s_send_failed (self): 0;
}

//  Mode 2: wait for the reply to the request just sent. A REQ socket that
//  lost its reply is stuck, so a timeout rebuilds it.
static int
s_await_request (zper_producer_t *self)
{
    if (zper_client_wait_readable (self->socket, self->ack_timeout_ms) == 1) {
        int acked;
        if (s_receive_ack (self, ZMQ_DONTWAIT, &acked) == 0 && acked != -1)
            return 0;
        self->failure_errno = 0;        //  reported here, by this send: not again by sync
        return -1;
    }
    zper_client_error_set (self->error, "no acknowledgement from %s within %d ms",
                           self->endpoint, self->ack_timeout_ms);
    zsock_destroy (&self->socket);
    self->unacked = 0;
    self->unacked_bytes = 0;
    if (s_connect (self) == -1)
        zper_client_error_set (self->error, "cannot reconnect to %s", self->endpoint);
    errno = ETIMEDOUT;
    return -1;
}

//  Modes 0-2, after a message whose first frame is id_size bytes left:
//  count it and read what is due.
static int
s_sent_single (zper_producer_t *self, size_t id_size)
{
    if (!s_acking (self) && self->mode != ZPER_MODE_REQ)
        return 0;
    self->unacked++;
    self->unacked_bytes += s_reply_weight (id_size);
    if (self->mode == ZPER_MODE_REQ)
        return s_await_request (self);
    s_drain_now_and_then (self);
    return 0;
}

static int
s_send_single (zper_producer_t *self, zmsg_t **msg_p)
{
    if (s_await_window (self) == -1) {
        zmsg_destroy (msg_p);
        return -1;
    }
    size_t id_size = zframe_size (zmsg_first (*msg_p));
    if (s_send_message (self, msg_p) == -1)
        return -1;
    return s_sent_single (self, id_size);
}

//  Modes 0-2, one frame: libzmq copies data into its own message, as a
//  raw zmq_send does; nothing else is allocated.
static int
s_send_single_mem (zper_producer_t *self, const void *data, size_t size)
{
    if (s_await_window (self) == -1)
        return -1;
    if (zmq_send (zsock_resolve (self->socket), data, size, 0) == -1)
        return s_send_failed (self);
    return s_sent_single (self, size);
}

//  libzmq's free function for a batch buffer it sent
static void
s_batch_free (void *data, void *hint)
{
    (void) hint;
    free (data);
}

//  Hand the open batch to libzmq as [batch id][batch], the batch without
//  a copy: libzmq frees it once it is on the wire, and the next message
//  opens a fresh buffer. A batch that did not leave keeps no id: the ids
//  of batches in flight stay consecutive, as s_match_batch expects.
static int
s_batch_send (zper_producer_t *self)
{
    uint8_t batch_id [ZPER_BATCH_ID_SIZE];
    zper_wire_put_int64 (batch_id, (int64_t) self->next_batch_id);
    void *handle = zsock_resolve (self->socket);
    zmq_msg_t batch;
    zmq_msg_init_data (&batch, self->batch, self->batch_size, s_batch_free, NULL);
    self->batch = NULL;
    self->batch_capacity = 0;
    int rc = zmq_send (handle, batch_id, sizeof batch_id, ZMQ_SNDMORE);
    if (rc != -1)
        rc = zmq_msg_send (&batch, handle, 0);
    zmq_msg_close (&batch);             //  frees the buffer if it was not sent
    if (rc == -1)
        return -1;
    self->next_batch_id++;
    return 0;
}

int
zper_producer_flush (zper_producer_t *self)
{
    assert (self);
    if (!s_batching (self) || self->batch_messages == 0)
        return 0;
    int rc = s_await_window (self);
    if (rc == 0 && s_batch_send (self) == -1)
        rc = s_send_failed (self);
    //  Sent or dropped, the batch is no longer open
    size_t messages = self->batch_messages;
    self->batch_size = 0;
    self->batch_messages = 0;
    if (rc == -1)
        return -1;
    if (s_acking (self)) {
        self->unacked += (int64_t) messages;
        //  A count, not a pointer: zlistx items need only be non-NULL.
        zlistx_add_end (self->batches, (void *) (uintptr_t) messages);
    }
    s_receive_acks (self, 0);
    return 0;
}

//  Make room for size more bytes in the open batch. A fresh buffer is
//  made big enough for a whole batch at once, so that filling it never
//  moves it.
static void
s_batch_reserve (zper_producer_t *self, size_t size)
{
    if (self->batch_size + size <= self->batch_capacity)
        return;
    size_t capacity = self->batch_capacity? self->batch_capacity * 2: self->batch_max_bytes;
    if (capacity < self->batch_size + size)
        capacity = self->batch_size + size;
    self->batch = (uint8_t *) realloc (self->batch, capacity);
    assert (self->batch);
    self->batch_capacity = capacity;
}

//  Encode frame_count frames into the open batch, sending the batch first
//  if the message would not fit, and after if it is now full.
static int
s_batch_add (zper_producer_t *self, const zper_frame_t *frames, size_t frame_count)
{
    size_t encoded = zper_zmtp_message_size (frames, frame_count);
    if (self->batch_messages && self->batch_size + encoded > self->batch_max_bytes
    &&  zper_producer_flush (self) == -1)
        return -1;
    s_batch_reserve (self, encoded);
    int64_t now = s_coarse_ms ();
    if (self->batch_messages == 0)
        self->batch_opened_ms = now;
    self->batch_size += zper_zmtp_encode (frames, frame_count, self->batch + self->batch_size);
    self->batch_messages++;
    if (self->batch_size >= self->batch_max_bytes || self->batch_messages >= self->batch_max_messages
    ||  now - self->batch_opened_ms >= self->batch_linger_ms)
        return zper_producer_flush (self);
    return 0;
}

static int
s_batch_add_message (zper_producer_t *self, zmsg_t **msg_p)
{
    size_t frame_count = zmsg_size (*msg_p);
    zper_frame_t stack_frames [ZPER_STACK_FRAMES];
    zper_frame_t *frames = frame_count <= ZPER_STACK_FRAMES? stack_frames:
        (zper_frame_t *) malloc (frame_count * sizeof (zper_frame_t));
    assert (frames);
    size_t index = 0;
    for (zframe_t *frame = zmsg_first (*msg_p); frame; frame = zmsg_next (*msg_p), index++) {
        frames [index].data = zframe_data (frame);
        frames [index].size = zframe_size (frame);
    }
    int rc = s_batch_add (self, frames, frame_count);
    if (frames != stack_frames)
        free (frames);
    zmsg_destroy (msg_p);
    return rc;
}

int
zper_producer_send (zper_producer_t *self, zmsg_t **msg_p)
{
    assert (self);
    assert (msg_p);
    if (!*msg_p || zmsg_size (*msg_p) == 0) {
        zmsg_destroy (msg_p);
        zper_client_error_set (self->error, "a message needs at least one frame");
        errno = EINVAL;
        return -1;
    }
    if (s_ready (self) == -1) {
        zmsg_destroy (msg_p);
        return -1;
    }
    return s_batching (self)? s_batch_add_message (self, msg_p): s_send_single (self, msg_p);
}

int
zper_producer_send_mem (zper_producer_t *self, const void *data, size_t size)
{
    assert (self);
    if (s_ready (self) == -1)
        return -1;
    if (s_batching (self)) {
        zper_frame_t frame = { data, size };
        return s_batch_add (self, &frame, 1);
    }
    return s_send_single_mem (self, data, size);
}

int
zper_producer_poll (zper_producer_t *self, int timeout_ms)
{
    assert (self);
    if (s_batching (self) && self->batch_messages
    &&  s_coarse_ms () - self->batch_opened_ms >= self->batch_linger_ms
    &&  zper_producer_flush (self) == -1)
        return -1;
    if (!s_acking (self)) {
        if (timeout_ms > 0)
            zclock_sleep (timeout_ms);
        return 0;
    }
    return s_receive_acks (self, timeout_ms);
}

int
zper_producer_sync (zper_producer_t *self)
{
    assert (self);
    if (zper_producer_flush (self) == -1)
        return -1;                      //  the open batch was dropped: error says why
    if (s_acking (self))
        s_receive_acks (self, self->ack_timeout_ms);
    if (self->failure_errno) {
        //  A failure that an earlier send or poll already received still
        //  fails this sync: sync answers "is everything stored?".
        errno = self->failure_errno;
        self->failure_errno = 0;
        return -1;
    }
    if (self->unacked)
        return s_ack_timeout (self);
    return 0;
}

int64_t
zper_producer_acked (zper_producer_t *self)
{
    assert (self);
    return self->acked;
}

int64_t
zper_producer_unacked (zper_producer_t *self)
{
    assert (self);
    return self->unacked;
}

int64_t
zper_producer_refused (zper_producer_t *self)
{
    assert (self);
    return self->refused;
}

int64_t
zper_producer_last_offset (zper_producer_t *self)
{
    assert (self);
    return self->last_offset;
}

const char *
zper_producer_error (zper_producer_t *self)
{
    assert (self);
    return self->error;
}

//  ---- selftest ----------------------------------------------------------------
//  A stand-in front on a real socket: it checks each client identity,
//  numbers the messages it receives like a log would and acknowledges them
//  the way docs/protocol.md says for the identity's mode. A message whose
//  first frame is "refuse" is answered with MESSAGE_TOO_LARGE, one whose
//  first frame is "malformed" (mode 1) with more frames than any valid
//  reply. The
//  black-box tests in tests/client do the same against a real zperd.

#define TEST_REFUSE     "refuse"
#define TEST_MALFORMED  "malformed"
#define TEST_MALFORMED_FRAMES   (ZPER_REPLY_FRAMES_MAX + 2)

static int
s_test_count_batch (zframe_t *batch)
{
    const uint8_t *cursor = zframe_data (batch);
    const uint8_t *end = cursor + zframe_size (batch);
    int count = 0;
    while (cursor < end) {
        size_t frames;
        int64_t length = zper_zmtp_message_length (cursor, (size_t) (end - cursor), &frames);
        assert (length > 0);
        cursor += length;
        count++;
    }
    return count;
}

static void
s_test_front_reply (zsock_t *router, zmsg_t *msg, int64_t *next_offset)
{
    zframe_t *identity = zmsg_pop (msg);
    const uint8_t *id = zframe_data (identity);
    assert (zframe_size (identity) == (size_t) (ZPER_IDENTITY_HEADER_SIZE + id [2] + ZPER_IDENTITY_UUID_SIZE));
    assert (id [0] == zper_topic_hash ("selftest") && id [2] == 8 && memcmp (id + 3, "selftest", 8) == 0);
    int mode = id [1];
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &identity);
    if (mode == ZPER_MODE_REQ)
        zmsg_append (reply, &(zframe_t *) { zmsg_pop (msg) });     //  the REQ envelope
    if (mode == ZPER_MODE_ACK || mode == ZPER_MODE_REQ) {
        zframe_t *message_id = zmsg_pop (msg);
        bool refused = zframe_streq (message_id, TEST_REFUSE);
        if (zframe_streq (message_id, TEST_MALFORMED))
            for (int frame = 1; frame < TEST_MALFORMED_FRAMES; frame++)
                zmsg_addstr (reply, "extra");
        zmsg_append (reply, &message_id);
        if (refused)
            zmsg_addmem (reply, &(uint8_t) { ZPER_STATUS_MESSAGE_TOO_LARGE }, 1);
        else
            (*next_offset)++;
    }
    else
    if (mode == ZPER_MODE_BATCH_ACK) {
        zframe_t *batch_id = zmsg_pop (msg);
        zframe_t *batch = zmsg_pop (msg);
        int count = s_test_count_batch (batch);
        //  A batch that starts with a "refuse" message is refused whole.
        const uint8_t *cursor = zframe_data (batch);
        zper_frame_t first;
        bool more;
        assert (zper_zmtp_decode (&cursor, cursor + zframe_size (batch), &first, &more) == 0);
        bool refused = first.size == strlen (TEST_REFUSE) && memcmp (first.data, TEST_REFUSE, first.size) == 0;
        uint8_t offset [ZPER_WIRE_INT64_SIZE], counted [ZPER_WIRE_INT32_SIZE];
        zper_wire_put_int64 (offset, refused? -1: *next_offset);
        zper_wire_put_int32 (counted, refused? 0: count);
        *next_offset += refused? 0: count;
        zmsg_addmem (reply, &(uint8_t) { refused? ZPER_STATUS_MESSAGE_TOO_LARGE: ZPER_STATUS_OK }, 1);
        zmsg_append (reply, &batch_id);
        zmsg_addmem (reply, offset, sizeof offset);
        zmsg_addmem (reply, counted, sizeof counted);
        zframe_destroy (&batch);
    }
    if (zmsg_size (reply) > 1)
        zmsg_send (&reply, router);
    zmsg_destroy (&reply);
}

static void
s_test_front (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router (args? (const char *) args: "tcp://127.0.0.1:*");
    assert (router);
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    int64_t next_offset = 0;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;                      //  $TERM or interrupted
        zmsg_t *msg = zmsg_recv (router);
        s_test_front_reply (router, msg, &next_offset);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_test_count_acks (const zper_ack_t *ack, void *arg)
{
    *(int *) arg += ack->count;
}

static void
s_test_single_modes (const char *endpoint)
{
    //  Mode 1: every message acknowledged by its id; a refusal fails sync.
    zper_producer_t *producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_ACK);
    assert (producer);
    int handled = 0;
    zper_producer_set_ack_handler (producer, s_test_count_acks, &handled);
    for (int index = 0; index < 10; index++)
        assert (zper_producer_send_mem (producer, "hello", 5) == 0);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == 10 && zper_producer_unacked (producer) == 0);
    assert (handled == 10);
    //  Acks that sends did not look for are all read by poll.
    for (int index = 0; index < ZPER_CLIENT_DRAIN_SENDS / 2; index++)
        assert (zper_producer_send_mem (producer, "polled", 6) == 0);
    assert (zper_producer_poll (producer, 5000) >= 0);
    assert (zper_producer_unacked (producer) == 0);
    assert (zper_producer_acked (producer) == 10 + ZPER_CLIENT_DRAIN_SENDS / 2);
    //  More than a window of sends: the producer waits for acks, none is lost.
    for (int index = 0; index < 3 * ZPER_CLIENT_MAX_IN_FLIGHT; index++)
        assert (zper_producer_send_mem (producer, "more", 4) == 0);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == 10 + ZPER_CLIENT_DRAIN_SENDS / 2
                                             + 3 * ZPER_CLIENT_MAX_IN_FLIGHT);
    handled = 0;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, TEST_REFUSE);
    zmsg_addstr (msg, "body");
    assert (zper_producer_send (producer, &msg) == 0 && msg == NULL);
    assert (zper_producer_sync (producer) == -1 && errno == EMSGSIZE);
    assert (strstr (zper_producer_error (producer), "MESSAGE_TOO_LARGE"));
    assert (zper_producer_refused (producer) == 1);
    assert (zper_producer_sync (producer) == 0);       //  a refusal is reported once
    //  A reply longer than any valid one is a protocol error, not a crash,
    //  and the producer goes on.
    assert (zper_producer_send_mem (producer, TEST_MALFORMED, strlen (TEST_MALFORMED)) == 0);
    assert (zper_producer_sync (producer) == -1 && errno == EPROTO);
    assert (strstr (zper_producer_error (producer), "malformed acknowledgement (6 frames)"));
    assert (zper_producer_refused (producer) == 2 && zper_producer_unacked (producer) == 0);
    assert (zper_producer_send_mem (producer, "after", 5) == 0);
    assert (zper_producer_sync (producer) == 0);
    zper_producer_destroy (&producer);
    zper_producer_destroy (&producer);
    assert (producer == NULL);

    //  Mode 2: lock-step, the refusal is the send's own result.
    producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_REQ);
    assert (zper_producer_send_mem (producer, "one", 3) == 0);
    assert (zper_producer_acked (producer) == 1);
    assert (zper_producer_send_mem (producer, TEST_REFUSE, strlen (TEST_REFUSE)) == -1);
    assert (errno == EMSGSIZE);
    assert (zper_producer_send_mem (producer, "two", 3) == 0);
    zper_producer_destroy (&producer);
}

static void
s_test_batch_modes (const char *endpoint)
{
    //  Mode 3: a batch leaves when it holds max_messages, one ack per batch.
    zper_producer_t *producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_BATCH_ACK);
    zper_producer_set_batch (producer, 1024 * 1024, 100, 60000);
    int64_t first = -1;
    for (int index = 0; index < 250; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "id-%d", index);
        zmsg_addmem (msg, NULL, 0);                 //  empty frames travel too
        zmsg_addstr (msg, "payload");
        assert (zper_producer_send (producer, &msg) == 0);
    }
    assert (zper_producer_sync (producer) == 0);    //  the last 50 leave on sync
    assert (zper_producer_acked (producer) == 250);
    first = zper_producer_last_offset (producer) - 249;
    assert (first >= 0);

    //  A message larger than the batch limit travels alone.
    zper_producer_set_batch (producer, 64, 100, 60000);
    char big [300];
    memset (big, 'L', sizeof big);
    assert (zper_producer_send_mem (producer, "small", 5) == 0);
    assert (zper_producer_send_mem (producer, big, sizeof big) == 0);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == 252);
    assert (zper_producer_last_offset (producer) == first + 251);

    //  A refused batch counts all its messages as refused, once.
    assert (zper_producer_send_mem (producer, TEST_REFUSE, strlen (TEST_REFUSE)) == 0);
    assert (zper_producer_send_mem (producer, "with it", 7) == 0);
    assert (zper_producer_flush (producer) == 0);
    assert (zper_producer_sync (producer) == -1 && errno == EMSGSIZE);
    assert (zper_producer_refused (producer) == 2 && zper_producer_unacked (producer) == 0);
    assert (zper_producer_sync (producer) == 0);

    //  Linger: a poll after the linger time sends the open batch.
    zper_producer_set_batch (producer, 1024 * 1024, 100, 1);
    assert (zper_producer_send_mem (producer, "late", 4) == 0);
    zclock_sleep (5);
    while (zper_producer_acked (producer) < 253)
        assert (zper_producer_poll (producer, 100) >= 0);
    zper_producer_destroy (&producer);

    //  Mode 4: no acks, nothing outstanding.
    producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_BATCH);
    assert (zper_producer_send_mem (producer, "quiet", 5) == 0);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_unacked (producer) == 0);
    zper_producer_destroy (&producer);
}

static void
s_test_broker_down (void)
{
    char *endpoint = zper_client_unused_endpoint ();
    for (int mode = ZPER_MODE_NONE; mode <= ZPER_MODE_BATCH; mode++) {
        zper_producer_t *producer = zper_producer_new (endpoint, "selftest", mode);
        zper_producer_set_timeout (producer, 100);
        zper_producer_set_ack_timeout (producer, 100);
        int rc = zper_producer_send_mem (producer, "x", 1);
        if (rc == 0)
            rc = zper_producer_sync (producer);
        assert (rc == -1 && errno == EHOSTUNREACH);
        assert (strstr (zper_producer_error (producer), endpoint));
        assert (strstr (zper_producer_error (producer), "is zperd running?"));
        zper_producer_destroy (&producer);
    }
    //  Mode 3: a batch that never left takes no batch id, so once the
    //  broker is up the next batch's ack still matches
    zper_producer_t *producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_BATCH_ACK);
    zper_producer_set_timeout (producer, 100);
    zper_producer_set_ack_timeout (producer, 100);
    assert (zper_producer_send_mem (producer, "lost", 4) == 0);
    assert (zper_producer_sync (producer) == -1 && errno == EHOSTUNREACH);
    zactor_t *front = zactor_new (s_test_front, endpoint);
    char *bound = zstr_recv (front);
    zstr_free (&bound);
    zper_producer_set_timeout (producer, 5000);
    zper_producer_set_ack_timeout (producer, 5000);
    assert (zper_producer_send_mem (producer, "found", 5) == 0);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == 1 && zper_producer_unacked (producer) == 0);
    zper_producer_destroy (&producer);
    zactor_destroy (&front);
    free (endpoint);
}

//  Mode 1 with large messages: the window is the weight of the owed
//  replies, each of which echoes its message (64 KiB), not 10,000 replies.
//  A ROUTER that never replies: sends go on until the owed replies weigh
//  ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT, then a send waits and times out.
static void
s_test_reply_weight_window (void)
{
    zsock_t *silent = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (silent, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    zper_producer_t *producer = zper_producer_new (endpoint, "selftest", ZPER_MODE_ACK);
    zper_producer_set_ack_timeout (producer, 200);
    size_t size = 64 * 1024;
    char *body = (char *) zmalloc (size);
    int sent = 0;
    while (sent < 1000 && zper_producer_send_mem (producer, body, size) == 0)
        sent++;
    assert (errno == ETIMEDOUT && strstr (zper_producer_error (producer), "did not acknowledge"));
    int64_t weight = s_reply_weight (size);
    assert (sent == (ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT + weight - 1) / weight);
    free (body);
    zper_producer_destroy (&producer);
    zsock_destroy (&silent);
}

void
zper_producer_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    assert (zper_producer_new ("tcp://127.0.0.1:1", "bad topic", ZPER_MODE_NONE) == NULL);
    assert (errno == EINVAL);
    assert (zper_producer_new ("tcp://127.0.0.1:1", "ok", 5) == NULL);
    assert (zper_producer_new ("nonsense", "ok", ZPER_MODE_NONE) == NULL);

    zactor_t *front = zactor_new (s_test_front, NULL);
    char *endpoint = zstr_recv (front);
    s_test_single_modes (endpoint);
    s_test_batch_modes (endpoint);
    zstr_free (&endpoint);
    zactor_destroy (&front);
    s_test_broker_down ();
    s_test_reply_weight_window ();
}
