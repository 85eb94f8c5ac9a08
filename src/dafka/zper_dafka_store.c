/*  =========================================================================
    zper_dafka_store - a Dafka store: persists partitions, ACKs, serves FETCH

    Writer rules (each numbered rule is one the reference breaks or leaves
    implicit):
      (1) a record is appended only if its sequence is the partition's end
          offset, so offset == sequence for ever; earlier ones are dropped;
      (2) a later sequence, or a HEAD/RECORD beyond the end, makes the
          partition "behind": a FETCH from the end goes to the producer and
          to every other store's reader, after each batch and on a timer,
          until the gap is filled (no new HEAD needed);
      (3) an ACK names the last DURABLE sequence (below the log's durable
          offset: appended, written and fdatasync'd under the flush policy,
          or as soon as the partition's input pauses for a tick);
      (4) a HEAD the store is not behind on is answered with the ACK again,
          so a lost ACK never leaves a producer waiting.
    Reader rules: only durable records and heads are served; FETCH answers
    the inclusive range [sequence, sequence + count] through zero-copy log
    views, so the content of any sequence is the one stored for it.

    Both halves share one thread, so the reader sees the writer's log
    without locks beyond the log's own.
    ========================================================================= */

#include "zper_dafka_store.h"
#include "zper_dafka_proto.h"
#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_consumer.h"
#include "zper_partition.h"
#include "zper_defaults.h"
#include <string.h>

typedef struct {
    char subject [ZPER_DAFKA_STRING_MAX + 1];
    char producer [ZPER_DAFKA_STRING_MAX + 1];
    zper_partition_t *log;          //  owned by the zper_log_t
    uint64_t end;                   //  next sequence to append (== the log's end offset)
    uint64_t known;                 //  highest sequence known to exist, ZPER_DAFKA_NONE if none
    uint64_t acked_until;           //  ACK sent for every sequence below
    bool appended;                  //  appended since the last flush check
    bool fresh;                     //  appended since the last tick: the input is not quiet
    bool failing;                   //  the last append failed: said once, not per record
} s_partition_t;

typedef struct {
    zsock_t *pipe;
    zloop_t *loop;
    zper_log_t *log;
    zper_dafka_msg_t *msg;
    zmq_msg_t content;              //  the last RECORD's content, reused for every receive
    int64_t batch_time;             //  ms since the epoch, read once per batch for the appends
    zper_dafka_fetch_filter_t *filter;
    zhashx_t *partitions;           //  "subject/producer" -> s_partition_t
    s_partition_t *last_used;       //  records come in runs of one partition: skip the lookup
    zhashx_t *endpoints;            //  endpoint -> beacons that know it (connected once)
    //  writer
    char writer_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    zsock_t *writer_pub;
    zsock_t *direct_sub;            //  SUB#1: DIRECT_RECORD to the writer, read first
    zsock_t *record_sub;            //  SUB#2: every RECORD and HEAD
    zper_dafka_beacon_t *writer_beacon;
    //  reader
    char reader_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    zsock_t *reader_xpub;
    zsock_t *request_sub;           //  FETCH, GET_HEADS, CONSUMER_HELLO to the reader
    zper_dafka_beacon_t *reader_beacon;
    bool verbose;
    zper_dafka_store_stats_t *stats;
} s_store_t;

struct _zper_dafka_store_t {
    zactor_t *actor;
    char writer_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    char reader_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    zper_dafka_store_stats_t stats;
};

typedef struct {
    zconfig_t *config;
    zper_dafka_store_t *store;
} s_arguments_t;

static void
s_count (uint64_t *counter, uint64_t amount)
{
    __atomic_add_fetch (counter, amount, __ATOMIC_RELAXED);
}

static bool
s_subscription (char *buffer, size_t size, int id, const char *uuid)
{
    return snprintf (buffer, size, "%c%s", id, uuid) < (int) size;
}

//  ---- partitions --------------------------------------------------------------------

static zper_bounds_t
s_bounds (s_partition_t *partition)
{
    zper_bounds_t bounds;
    zper_partition_bounds (partition->log, &bounds);
    return bounds;
}

//  The partition of (subject, producer), opened or created in the log on
//  first use; NULL (counted) if the log cannot hold such a name.
static s_partition_t *
s_partition (s_store_t *self, const char *subject, const char *producer, bool create)
{
    s_partition_t *partition = self->last_used;
    if (partition && streq (partition->producer, producer) && streq (partition->subject, subject))
        return partition;
    char key [2 * ZPER_DAFKA_STRING_MAX + 2];
    snprintf (key, sizeof key, "%s/%s", subject, producer);
    partition = (s_partition_t *) zhashx_lookup (self->partitions, key);
    if (partition)
        return self->last_used = partition;
    zper_partition_t *log = zper_log_partition (self->log, subject, producer, create);
    if (!log) {
        if (create && errno == EINVAL) {
            s_count (&self->stats->refused, 1);
            if (self->verbose)
                zsys_warning ("dafka store: cannot store topic '%s' (log names are letters, "
                              "digits, '.', '_', '-')", subject);
        }
        return NULL;
    }
    partition = (s_partition_t *) zmalloc (sizeof (s_partition_t));
    snprintf (partition->subject, sizeof partition->subject, "%s", subject);
    snprintf (partition->producer, sizeof partition->producer, "%s", producer);
    partition->log = log;
    zper_bounds_t bounds = s_bounds (partition);
    partition->end = (uint64_t) bounds.end_offset;
    partition->known = ZPER_DAFKA_NONE;
    zhashx_insert (self->partitions, key, partition);
    return self->last_used = partition;
}

static void
s_know (s_partition_t *partition, uint64_t sequence)
{
    if (partition->known == ZPER_DAFKA_NONE || sequence > partition->known)
        partition->known = sequence;
}

static bool
s_behind (s_partition_t *partition)
{
    return partition->known != ZPER_DAFKA_NONE && partition->known >= partition->end;
}

//  ---- writer ---------------------------------------------------------------------------

static void
s_writer_send (s_store_t *self, int id, s_partition_t *partition, uint64_t sequence)
{
    zper_dafka_msg_set_id (self->msg, id);
    zper_dafka_msg_set_topic (self->msg, partition->producer);
    zper_dafka_msg_set_address (self->msg, self->writer_uuid);
    zper_dafka_msg_set_subject (self->msg, partition->subject);
    zper_dafka_msg_set_sequence (self->msg, sequence);
    zper_dafka_msg_set_count (self->msg, zper_dafka_fetch_count (sequence));
    zper_dafka_msg_send (self->msg, self->writer_pub);
}

static void
s_fetch_if_behind (s_store_t *self, s_partition_t *partition)
{
    if (s_behind (partition)
    &&  zper_dafka_fetch_filter_allow (self->filter, partition->subject, partition->producer,
                                       partition->end, zclock_mono ()))
        s_writer_send (self, ZPER_DAFKA_FETCH, partition, partition->end);
}

//  Rule (3): flush when the log's policy says so, or at once when quiet
//  (the partition's input has paused: nothing more is coming to share the
//  fdatasync with, and its producer is waiting for the ACK), then ACK what
//  is durable.
static void
s_flush_and_ack (s_store_t *self, s_partition_t *partition, bool quiet, bool force_ack)
{
    if (partition->appended && (quiet || zper_partition_flush_due (partition->log, zclock_time ()))) {
        if (zper_partition_flush (partition->log) < 0) {
            zsys_error ("dafka store: cannot flush %s/%s: %s (records will be fetched again)",
                        partition->subject, partition->producer, strerror (errno));
            partition->end = (uint64_t) s_bounds (partition).end_offset;
        }
        partition->appended = partition->end > (uint64_t) s_bounds (partition).durable_offset;
    }
    uint64_t durable = (uint64_t) s_bounds (partition).durable_offset;
    if (durable > 0 && (durable > partition->acked_until || force_ack)) {
        //  Counted first: whoever sees the ACK's effect must see the count
        s_count (&self->stats->acked, 1);
        s_writer_send (self, ZPER_DAFKA_ACK, partition, durable - 1);
        partition->acked_until = durable;
    }
}

static void
s_store_record (s_store_t *self, s_partition_t *partition)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    s_know (partition, sequence);
    if (sequence != partition->end)
        return;                     //  rule (1): a duplicate, or a gap s_fetch_if_behind fills
    zper_frame_t frame = { zmq_msg_data (&self->content), zmq_msg_size (&self->content) };
    if (zper_partition_append (partition->log, &frame, 1, self->batch_time) < 0) {
        if (!partition->failing)
            zsys_error ("dafka store: cannot append to %s/%s: %s (the records will be fetched "
                        "again)", partition->subject, partition->producer, strerror (errno));
        partition->failing = true;
        return;
    }
    if (partition->failing)
        zsys_info ("dafka store: appending to %s/%s again", partition->subject, partition->producer);
    partition->failing = false;
    partition->end++;
    partition->appended = true;
    partition->fresh = true;
    s_count (&self->stats->stored, 1);
}

static void
s_writer_handle (s_store_t *self)
{
    int id = zper_dafka_msg_id (self->msg);
    const char *subject = zper_dafka_msg_subject (self->msg);
    const char *topic = zper_dafka_msg_topic (self->msg);
    bool exact = id == ZPER_DAFKA_DIRECT_RECORD? streq (topic, self->writer_uuid): streq (topic, subject);
    if (!exact || (id != ZPER_DAFKA_RECORD && id != ZPER_DAFKA_DIRECT_RECORD && id != ZPER_DAFKA_HEAD))
        return;
    s_partition_t *partition = s_partition (self, subject, zper_dafka_msg_address (self->msg), true);
    if (!partition)
        return;
    if (id == ZPER_DAFKA_HEAD) {
        s_know (partition, zper_dafka_msg_sequence (self->msg));
        if (!s_behind (partition))
            s_flush_and_ack (self, partition, false, true);     //  rule (4)
    }
    else
        s_store_record (self, partition);
}

//  After a batch, and on the tick: a partition that received nothing for a
//  whole tick is quiet.
static void
s_after_batch (s_store_t *self, bool tick)
{
    for (s_partition_t *partition = (s_partition_t *) zhashx_first (self->partitions); partition;
         partition = (s_partition_t *) zhashx_next (self->partitions)) {
        s_flush_and_ack (self, partition, tick && !partition->fresh, false);
        s_fetch_if_behind (self, partition);
        if (tick)
            partition->fresh = false;
    }
}

//  Reads what is waiting on one writer SUB, up to a batch, without polling
//  per message; SUB#1 is always drained first. The flush check and the
//  ACKs come once per batch, not per record.
static int
s_on_writer_sub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    zsock_t *order [] = { self->direct_sub, reader };
    self->batch_time = zclock_time ();
    for (int index = 0; index < 2; index++)
        for (int batch = 0; batch < ZPER_DAFKA_BATCH; batch++) {
            if (zper_dafka_msg_recv_content (self->msg, order [index], &self->content,
                                             ZMQ_DONTWAIT) == 0)
                s_writer_handle (self);
            else
            if (errno == EPROTO)
                s_count (&self->stats->malformed, 1);
            else
                break;              //  nothing more waiting (or interrupted)
        }
    s_after_batch (self, false);
    return 0;
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *argument)
{
    s_after_batch ((s_store_t *) argument, true);
    return 0;
}

//  ---- reader ---------------------------------------------------------------------------

static void
s_reader_send_head (s_store_t *self, const char *consumer, const char *subject, const char *producer)
{
    s_partition_t *partition = s_partition (self, subject, producer, false);
    if (!partition)
        return;
    zper_bounds_t bounds = s_bounds (partition);
    if (bounds.durable_offset <= bounds.start_offset)
        return;                     //  nothing durable to announce
    zper_dafka_msg_set_id (self->msg, ZPER_DAFKA_DIRECT_HEAD);
    zper_dafka_msg_set_topic (self->msg, consumer);
    zper_dafka_msg_set_address (self->msg, producer);
    zper_dafka_msg_set_subject (self->msg, subject);
    zper_dafka_msg_set_sequence (self->msg, (uint64_t) bounds.durable_offset - 1);
    zper_dafka_msg_send (self->msg, self->reader_xpub);
}

static void
s_reader_send_heads (s_store_t *self, const char *consumer, const char *subject)
{
    zlist_t *producers = zper_log_partitions (self->log, subject);
    for (char *producer = producers? (char *) zlist_first (producers): NULL; producer;
         producer = (char *) zlist_next (producers))
        s_reader_send_head (self, consumer, subject, producer);
    zlist_destroy (&producers);
}

//  Sends DIRECT_RECORDs for [first, last] from one view; returns the next
//  offset to read, or -1 when the view was empty or broken.
static int64_t
s_serve_view (s_store_t *self, s_partition_t *partition, int64_t first, int64_t last)
{
    zper_view_t *view = zper_partition_read (partition->log, first, ZPER_DAFKA_READ_BYTES);
    if (!view)
        return -1;
    int64_t next = -1;
    zper_message_t message;
    while (zper_view_next (view, &message) && message.offset <= last) {
        const uint8_t *cursor = message.data;
        zper_frame_t frame;
        bool more;
        zmq_msg_t content;
        if (zper_zmtp_decode (&cursor, message.data + message.size, &frame, &more)
        ||  zper_view_lend (view, frame.data, frame.size, &content))
            break;
        zper_dafka_msg_set_sequence (self->msg, (uint64_t) message.offset);
        s_count (&self->stats->served, 1);      //  first, as the ACK count
        zper_dafka_msg_send_content (self->msg, self->reader_xpub, &content);
        next = message.offset + 1;
    }
    zper_view_destroy (&view);
    return next;
}

static void
s_reader_fetch (s_store_t *self, const char *producer)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    uint64_t count = zper_dafka_msg_count (self->msg);
    s_partition_t *partition = s_partition (self, zper_dafka_msg_subject (self->msg), producer, false);
    if (!partition || sequence > INT64_MAX)
        return;
    zper_bounds_t bounds = s_bounds (partition);
    if ((int64_t) sequence < bounds.start_offset || (int64_t) sequence >= bounds.durable_offset)
        return;                     //  the reference answers only if the first key exists
    int64_t last = (int64_t) sequence + (int64_t) count;       //  inclusive, as the reference
    if (last > bounds.durable_offset - 1)
        last = bounds.durable_offset - 1;
    char requester [ZPER_DAFKA_STRING_MAX + 1];
    snprintf (requester, sizeof requester, "%s", zper_dafka_msg_address (self->msg));
    zper_dafka_msg_set_id (self->msg, ZPER_DAFKA_DIRECT_RECORD);
    zper_dafka_msg_set_topic (self->msg, requester);
    zper_dafka_msg_set_address (self->msg, producer);
    for (int64_t next = (int64_t) sequence; next >= 0 && next <= last; )
        next = s_serve_view (self, partition, next, last);
}

static void
s_reader_handle (s_store_t *self)
{
    int id = zper_dafka_msg_id (self->msg);
    char topic [ZPER_DAFKA_STRING_MAX + 1];
    char address [ZPER_DAFKA_STRING_MAX + 1];
    snprintf (topic, sizeof topic, "%s", zper_dafka_msg_topic (self->msg));
    snprintf (address, sizeof address, "%s", zper_dafka_msg_address (self->msg));
    if (streq (address, self->writer_uuid))
        return;                     //  our own writer's requests are for the other stores
    if (id == ZPER_DAFKA_FETCH)
        s_reader_fetch (self, topic);
    else
    if (id == ZPER_DAFKA_GET_HEADS)
        s_reader_send_heads (self, address, topic);
    else
    if (id == ZPER_DAFKA_CONSUMER_HELLO && streq (topic, self->reader_uuid)) {
        zlist_t *subjects = zper_dafka_msg_subjects (self->msg);
        zlist_t *copy = zlist_dup (subjects);
        zlist_autofree (copy);
        for (char *subject = (char *) zlist_first (copy); subject; subject = (char *) zlist_next (copy))
            s_reader_send_heads (self, address, subject);
        zlist_destroy (&copy);
    }
}

static int
s_on_request_sub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    for (int batch = 0; batch < ZPER_DAFKA_BATCH; batch++) {
        if (zper_dafka_msg_recv_content (self->msg, reader, &self->content, ZMQ_DONTWAIT) == 0)
            s_reader_handle (self);
        else
        if (errno == EPROTO)
            s_count (&self->stats->malformed, 1);
        else
            break;
    }
    return 0;
}

//  A consumer's SUB subscribing L+consumer: greet it, it will say hello.
static int
s_on_reader_xpub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    zframe_t *event = zframe_recv (reader);
    if (event && zframe_size (event) > 2 && zframe_data (event) [0] == 1
    &&  zframe_data (event) [1] == ZPER_DAFKA_STORE_HELLO
    &&  zframe_size (event) - 2 <= ZPER_DAFKA_STRING_MAX) {
        char consumer [ZPER_DAFKA_STRING_MAX + 1];
        memcpy (consumer, zframe_data (event) + 2, zframe_size (event) - 2);
        consumer [zframe_size (event) - 2] = 0;
        zper_dafka_msg_set_id (self->msg, ZPER_DAFKA_STORE_HELLO);
        zper_dafka_msg_set_topic (self->msg, consumer);
        zper_dafka_msg_set_address (self->msg, self->reader_uuid);
        zper_dafka_msg_send (self->msg, self->reader_xpub);
    }
    zframe_destroy (&event);
    return 0;
}

//  ---- peers, pipe, actor --------------------------------------------------------------

//  Both beacons report the same peers; each endpoint is connected once and
//  disconnected when neither beacon hears it any more.
static void
s_on_beacon_peer (void *owner, const char *endpoint, bool connected)
{
    s_store_t *self = (s_store_t *) owner;
    size_t known = (size_t) zhashx_lookup (self->endpoints, endpoint);
    size_t now = connected? known + 1: known? known - 1: 0;
    if (known == 1 && now == 0) {
        //  Whole messages first: libzmq asserts (!_more, fq.cpp) when a
        //  multipart message is read from a pipe that a disconnect is
        //  tearing down (libzmq issue 3485)
        s_on_writer_sub (self->loop, self->record_sub, self);
        s_on_request_sub (self->loop, self->request_sub, self);
    }
    zsock_t *subs [] = { self->direct_sub, self->record_sub, self->request_sub };
    for (int index = 0; index < 3; index++)
        if (known == 0 && now == 1)
            zsock_connect (subs [index], "%s", endpoint);
        else
        if (known == 1 && now == 0)
            zsock_disconnect (subs [index], "%s", endpoint);
    if (now)
        zhashx_update (self->endpoints, endpoint, (void *) now);
    else
        zhashx_delete (self->endpoints, endpoint);
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *argument)
{
    return -1;                      //  $TERM is the only command
}

static zsock_t *
s_socket (int type, int high_watermark)
{
    zsock_t *socket = zsock_new (type);
    zsock_set_linger (socket, 0);
    zsock_set_sndhwm (socket, high_watermark);
    zsock_set_rcvhwm (socket, high_watermark);
    return socket;
}

static void
s_store_sockets (s_store_t *self, zconfig_t *config)
{
    int high_watermark = (int) zper_dafka_config_number (config, "store/high_watermark",
                                                         ZPER_DAFKA_HIGH_WATERMARK);
    self->writer_pub = s_socket (ZMQ_PUB, high_watermark);
    self->direct_sub = s_socket (ZMQ_SUB, high_watermark);
    self->record_sub = s_socket (ZMQ_SUB, high_watermark);
    self->reader_xpub = s_socket (ZMQ_XPUB, high_watermark);
    self->request_sub = s_socket (ZMQ_SUB, high_watermark);
    zsock_set_xpub_verbose (self->reader_xpub, 1);
    char subscription [ZPER_DAFKA_UUID_SIZE + 2];
    s_subscription (subscription, sizeof subscription, ZPER_DAFKA_DIRECT_RECORD, self->writer_uuid);
    zsock_set_subscribe (self->direct_sub, subscription);
    zsock_set_subscribe (self->record_sub, "M");
    zsock_set_subscribe (self->record_sub, "H");
    zsock_set_subscribe (self->request_sub, "F");
    zsock_set_subscribe (self->request_sub, "G");
    s_subscription (subscription, sizeof subscription, ZPER_DAFKA_CONSUMER_HELLO, self->reader_uuid);
    zsock_set_subscribe (self->request_sub, subscription);
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    int writer_port = zsock_bind (self->writer_pub, "%s", bind);
    int reader_port = zsock_bind (self->reader_xpub, "%s", bind);
    if (writer_port > 0 && reader_port > 0) {
        self->writer_beacon = zper_dafka_beacon_new (config, self->writer_uuid, writer_port,
                                                     s_on_beacon_peer, self);
        self->reader_beacon = zper_dafka_beacon_new (config, self->reader_uuid, reader_port,
                                                     s_on_beacon_peer, self);
    }
    else
        zsys_error ("dafka store: cannot bind %s", bind);
    zstr_free (&bind);
}

static zper_log_t *
s_open_log (zconfig_t *config)
{
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.base_dir = zper_dafka_config_string (config, "store/db", ZPER_DAFKA_STORE_DB);
    log_config.flush_messages = (uint64_t) zper_dafka_config_number (config, "store/flush_messages",
                                                                    (int64_t) log_config.flush_messages);
    log_config.flush_interval_ms = zper_dafka_config_number (config, "store/flush_interval",
                                                             log_config.flush_interval_ms);
    log_config.segment_size = (uint64_t) zper_dafka_config_number (config, "store/segment_size",
                                                                  (int64_t) log_config.segment_size);
    log_config.retention_ms = zper_dafka_config_number (config, "store/retention_ms",
                                                        log_config.retention_ms);
    zper_log_t *log = zper_log_new (&log_config);
    if (!log)
        zsys_error ("dafka store: cannot open the log at %s: %s", log_config.base_dir, strerror (errno));
    return log;
}

static s_store_t *
s_store_new (zsock_t *pipe, s_arguments_t *arguments)
{
    s_store_t *self = (s_store_t *) zmalloc (sizeof (s_store_t));
    self->pipe = pipe;
    self->stats = &arguments->store->stats;
    snprintf (self->writer_uuid, sizeof self->writer_uuid, "%s", arguments->store->writer_uuid);
    snprintf (self->reader_uuid, sizeof self->reader_uuid, "%s", arguments->store->reader_uuid);
    self->verbose = zper_dafka_config_number (arguments->config, "store/verbose", 0) != 0;
    self->msg = zper_dafka_msg_new ();
    zmq_msg_init (&self->content);
    self->filter = zper_dafka_fetch_filter_new ();
    self->partitions = zhashx_new ();
    zhashx_set_destructor (self->partitions, (zhashx_destructor_fn *) zstr_free);
    self->endpoints = zhashx_new ();
    self->loop = zloop_new ();
    self->log = s_open_log (arguments->config);
    if (self->log)
        s_store_sockets (self, arguments->config);
    return self;
}

static void
s_store_destroy (s_store_t **self_p)
{
    s_store_t *self = *self_p;
    zper_dafka_beacon_destroy (&self->writer_beacon);
    zper_dafka_beacon_destroy (&self->reader_beacon);
    zloop_destroy (&self->loop);
    zsock_destroy (&self->writer_pub);
    zsock_destroy (&self->direct_sub);
    zsock_destroy (&self->record_sub);
    zsock_destroy (&self->reader_xpub);
    zsock_destroy (&self->request_sub);
    zhashx_destroy (&self->partitions);
    zhashx_destroy (&self->endpoints);
    zper_log_destroy (&self->log);
    zper_dafka_fetch_filter_destroy (&self->filter);
    zper_dafka_msg_destroy (&self->msg);
    zmq_msg_close (&self->content);
    free (self);
    *self_p = NULL;
}

static void
s_store_actor (zsock_t *pipe, void *argument)
{
    s_store_t *self = s_store_new (pipe, (s_arguments_t *) argument);
    zsock_signal (pipe, 0);         //  for zactor_new; the second signal is the welcome
    if (!self->writer_beacon || !self->reader_beacon
    ||  zper_dafka_beacon_wait_welcome (self->writer_beacon, pipe)
    ||  zper_dafka_beacon_wait_welcome (self->reader_beacon, pipe)) {
        zsock_signal (pipe, 1);
        s_store_destroy (&self);
        return;
    }
    zsock_signal (pipe, 0);
    zper_dafka_beacon_attach (self->writer_beacon, self->loop);
    zper_dafka_beacon_attach (self->reader_beacon, self->loop);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_reader (self->loop, self->direct_sub, s_on_writer_sub, self);
    zloop_reader (self->loop, self->record_sub, s_on_writer_sub, self);
    zloop_reader (self->loop, self->request_sub, s_on_request_sub, self);
    zloop_reader (self->loop, self->reader_xpub, s_on_reader_xpub, self);
    zloop_timer (self->loop, ZPER_DAFKA_STORE_TICK_MS, 0, s_on_tick, self);
    zloop_start (self->loop);
    s_store_destroy (&self);
}

static void
s_new_uuid (char *target, size_t size)
{
    zuuid_t *uuid = zuuid_new ();
    snprintf (target, size, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
}

zper_dafka_store_t *
zper_dafka_store_new (zconfig_t *config)
{
    zper_dafka_store_t *self = (zper_dafka_store_t *) zmalloc (sizeof (zper_dafka_store_t));
    s_new_uuid (self->writer_uuid, sizeof self->writer_uuid);
    s_new_uuid (self->reader_uuid, sizeof self->reader_uuid);
    s_arguments_t arguments = { config, self };
    self->actor = zactor_new (s_store_actor, &arguments);
    if (zsock_wait (self->actor) != 0)
        zper_dafka_store_destroy (&self);
    return self;
}

void
zper_dafka_store_destroy (zper_dafka_store_t **self_p)
{
    if (self_p && *self_p) {
        zactor_destroy (&(*self_p)->actor);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
zper_dafka_store_writer_uuid (zper_dafka_store_t *self)
{
    return self->writer_uuid;
}

const char *
zper_dafka_store_reader_uuid (zper_dafka_store_t *self)
{
    return self->reader_uuid;
}

void
zper_dafka_store_stats (zper_dafka_store_t *self, zper_dafka_store_stats_t *stats)
{
    stats->stored = __atomic_load_n (&self->stats.stored, __ATOMIC_RELAXED);
    stats->acked = __atomic_load_n (&self->stats.acked, __ATOMIC_RELAXED);
    stats->served = __atomic_load_n (&self->stats.served, __ATOMIC_RELAXED);
    stats->malformed = __atomic_load_n (&self->stats.malformed, __ATOMIC_RELAXED);
    stats->refused = __atomic_load_n (&self->stats.refused, __ATOMIC_RELAXED);
}

zactor_t *
zper_dafka_store_actor (zper_dafka_store_t *self)
{
    return self->actor;
}

//  ---- selftest: producer -> store, then an earliest consumer after the
//  producer has gone, served by the store alone ---------------------------------

static void
s_test_publish (zper_dafka_producer_t *producer, int first, int count)
{
    for (int index = first; index < first + count; index++) {
        zframe_t *content = zframe_new (NULL, sizeof (int));
        memcpy (zframe_data (content), &index, sizeof (int));
        assert (zper_dafka_producer_publish (producer, &content) == 0);
    }
}

static void
s_test_consume (zconfig_t *config, const char *producer_uuid, int count)
{
    zper_dafka_consumer_t *consumer = zper_dafka_consumer_new (config);
    assert (consumer);
    zper_dafka_consumer_subscribe (consumer, "zper.s");
    for (int expected = 0; expected < count; expected++) {
        zper_dafka_msg_t *record = zper_dafka_consumer_recv (consumer, 10000);
        assert (record);
        assert (streq (zper_dafka_msg_address (record), producer_uuid));
        assert (zper_dafka_msg_sequence (record) == (uint64_t) expected);
        int value;
        memcpy (&value, zframe_data (zper_dafka_msg_content (record)), sizeof (int));
        assert (value == expected);
        zper_dafka_msg_destroy (&record);
    }
    zper_dafka_consumer_destroy (&consumer);
}

//  With a flush policy that would never come due (an hour, a billion
//  records), a paused stream is still made durable and acknowledged: the
//  store flushes a partition whose input went quiet.
static void
s_test_quiet_flush (zconfig_t *config)
{
    zconfig_put (config, "store/db", "quietdb");
    zconfig_put (config, "store/flush_messages", "1000000000");
    zconfig_put (config, "store/flush_interval", "3600000");
    zper_dafka_store_t *store = zper_dafka_store_new (config);
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, "zper.q");
    assert (store && producer);
    zclock_sleep (500);             //  the peers have found each other
    const int records = 10;
    s_test_publish (producer, 0, records);
    uint64_t published = 0, unacked = 1;
    int64_t deadline = zclock_mono () + 10000;
    while (unacked && zclock_mono () < deadline) {
        zclock_sleep (50);
        assert (zper_dafka_producer_stats (producer, &published, &unacked) == 0);
    }
    assert (published == (uint64_t) records && unacked == 0);
    zper_dafka_store_stats_t stats;
    zper_dafka_store_stats (store, &stats);
    assert (stats.stored == (uint64_t) records && stats.acked > 0);
    zper_dafka_producer_destroy (&producer);
    zper_dafka_store_destroy (&store);
}

void
zper_dafka_store_test (bool verbose)
{
    zper_dafka_tower_t *tower;
    zconfig_t *config = zper_dafka_tower_test_start (&tower);
    zconfig_put (config, "consumer/offset/reset", "earliest");
    zconfig_put (config, "store/db", "storedb");
    zconfig_put (config, "store/flush_messages", "100");
    zconfig_put (config, "store/flush_interval", "50");

    zper_dafka_store_t *store = zper_dafka_store_new (config);
    assert (store);
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, "zper.s");
    assert (producer);
    char producer_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    snprintf (producer_uuid, sizeof producer_uuid, "%s", zper_dafka_producer_uuid (producer));
    zclock_sleep (500);             //  the peers have found each other
    const int records = 1000;
    s_test_publish (producer, 0, records);
    //  Destroy waits until the store ACKed every record (durable)
    zper_dafka_producer_destroy (&producer);
    zper_dafka_store_stats_t stats;
    zper_dafka_store_stats (store, &stats);
    assert (stats.stored == (uint64_t) records);
    assert (stats.acked > 0);
    assert (stats.malformed == 0);
    s_test_consume (config, producer_uuid, records);
    zper_dafka_store_stats (store, &stats);
    assert (stats.served >= (uint64_t) records);

    //  The data survives a restart: a new store on the same db serves it
    zper_dafka_store_destroy (&store);
    store = zper_dafka_store_new (config);
    assert (store);
    s_test_consume (config, producer_uuid, records);
    zper_dafka_store_destroy (&store);
    zper_dafka_store_destroy (&store);
    s_test_quiet_flush (config);
    zper_dafka_tower_destroy (&tower);
    zconfig_destroy (&config);
}
