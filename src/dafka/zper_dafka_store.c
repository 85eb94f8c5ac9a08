/*  =========================================================================
    zper_dafka_store - a Dafka store: persists partitions, ACKs, serves FETCH

    Writer rules (each numbered rule is one the reference breaks or leaves
    implicit):
      (1) a record is appended only if its sequence is the partition's end
          offset, so offset == sequence for ever; earlier ones are dropped;
      (2) a later sequence, or a HEAD/RECORD beyond the end, makes the
          partition "behind": a FETCH from the end goes to the producer and
          to every other store's reader, after each batch and on a timer,
          until the gap is filled (no new HEAD needed) or the partition has
          been silent (no HEAD, RECORD or DIRECT_RECORD) for
          store/fetch_give_up; its next HEAD or RECORD resumes it;
      (3) an ACK names the last DURABLE sequence (below the log's durable
          offset: appended, written and fdatasync'd under the flush policy,
          or as soon as the partition's input has paused for
          ZPER_DAFKA_STORE_QUIET_MS: a one-shot timer, armed while records
          wait for their flush, so a producer that stops is acknowledged
          within a few ms, not at the next 50 ms tick);
      (4) a HEAD the store is not behind on is answered with the ACK again,
          so a lost ACK never leaves a producer waiting.
    Limits: the store tracks at most store/max_partitions partitions; a
    HEAD/RECORD of a new one beyond that is refused (counted, logged once
    per second), a partition already on disk is always tracked, and a
    silent one with nothing pending is forgotten, which frees its slot. A
    partition's folder is created with its first record, never for a HEAD.
    Reader rules: only durable records and heads are served; FETCH answers
    the inclusive range [sequence, sequence + count], count capped at the
    protocol's 100,000, through zero-copy log views, so the content of any
    sequence is the one stored for it. At most store/max_fetches answers
    are in progress; each loop turn serves a slice of them in turn, so
    storing and ACKing never wait for a whole answer.

    Both halves share one thread, so the reader sees the writer's log
    without locks beyond the log's own.

    With store/metrics/listen set, a Prometheus endpoint (zper_metrics)
    serves the counters below as zper_dafka_store_* series; it reads them
    atomically from its own thread, so it never waits for the store's loop.

    With CURVE (security/curve = 1) the store binds its two SUBs as CURVE
    servers (the writer's, which also takes the DIRECT_RECORDs for it, and
    the reader's) and announces them; its writer PUB and reader XPUB
    connect to every peer's announced endpoint with the key the tower
    vouched for. Every RECORD and HEAD then carries its sender's key, and
      (5) a partition is bound, at its first RECORD or HEAD, to the key the
          tower vouched for its producer's uuid; RECORDs and HEADs of it
          from any other key are dropped and counted (forged). The binding
          is kept in the partition's folder (ZPER_DAFKA_KEY_FILE, written
          with its first record), so a restart does not reopen it.
          DIRECT_RECORDs are taken from any allowed key: stores must be
          trusted nodes.
    ========================================================================= */

#include "zper_dafka_store.h"
#include "zper_dafka_proto.h"
#include "zper_dafka_beacon.h"
#include "zper_dafka_config.h"
#include "zper_dafka_tower.h"
#include "zper_dafka_producer.h"
#include "zper_dafka_consumer.h"
#include "zper_dafka_security.h"
#include "zper_partition.h"
#include "zper_dir_lock.h"
#include "zper_metrics.h"
#include "zper_defaults.h"
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

//  Buffer sizes: a folder name, "subject/producer" folders, and that + "/requester"
#define S_FOLDER_SIZE       (ZPER_TOPIC_NAME_MAX + 1)
#define S_KEY_SIZE          (2 * S_FOLDER_SIZE)
#define S_FETCH_KEY_SIZE    (S_KEY_SIZE + ZPER_DAFKA_STRING_MAX + 1)

typedef struct {
    char subject [ZPER_DAFKA_STRING_MAX + 1];
    char producer [ZPER_DAFKA_STRING_MAX + 1];
    char subject_folder [S_FOLDER_SIZE];
    char producer_folder [S_FOLDER_SIZE];
    char key [S_KEY_SIZE];          //  "subject_folder/producer_folder": the table's key
    zper_partition_t *log;          //  owned by the zper_log_t; NULL until the first record
    uint64_t end;                   //  next sequence to append (== the log's end offset)
    uint64_t known;                 //  highest sequence known to exist, if is_known
    bool is_known;                  //  a flag, not a sentinel: a HEAD may say 2^64-1
    uint64_t acked_until;           //  ACK sent for every sequence below
    int64_t heard;                  //  monotonic ms of its last HEAD, RECORD or DIRECT_RECORD
    bool given_up;                  //  behind and silent: not fetched (counted once)
    bool appended;                  //  appended since the last flush check
    int64_t appended_mono;          //  monotonic ms of its last append: quiet since then
    bool failing;                   //  the last append failed: said once, not per record
    char sender_key [41];           //  with CURVE: the key its RECORDs and HEADs come from, or ""
    bool key_saved;                 //  the key is in the partition's folder
} s_partition_t;

//  One FETCH answer in progress: the records [next, last] still to send.
typedef struct {
    char key [S_FETCH_KEY_SIZE];    //  partition key + "/requester": one answer per pair
    char requester [ZPER_DAFKA_STRING_MAX + 1];
    char subject [ZPER_DAFKA_STRING_MAX + 1];
    char producer [ZPER_DAFKA_STRING_MAX + 1];
    zper_partition_t *log;          //  owned by the zper_log_t, valid for its whole life
    zper_view_t *view;              //  where next is read from, kept between turns; or NULL
    int64_t first;                  //  the range asked: a repeated FETCH inside it was answered
    int64_t next;
    int64_t last;
} s_fetch_t;

//  Refusals come in floods (one per forged message): each kind is logged at
//  most once per ZPER_LOG_INTERVAL_MS, with how many went unsaid.
typedef struct {
    int64_t next_ms;
    uint64_t unsaid;
} s_refusal_log_t;

typedef struct {
    zsock_t *pipe;
    zloop_t *loop;
    zper_log_t *log;
    zper_dafka_msg_t *msg;
    zmq_msg_t content;              //  the last RECORD's content, reused for every receive
    int64_t batch_time;             //  ms since the epoch, read once per batch for the appends
    int64_t batch_mono;             //  monotonic ms, read once per batch for silences
    zper_dafka_fetch_filter_t *filter;
    zhashx_t *partitions;           //  "subject_folder/producer_folder" -> s_partition_t
    s_partition_t *last_used;       //  records come in runs of one partition: skip the lookup
    zhashx_t *endpoints;            //  endpoint -> beacons that know it (connected once)
    zhashx_t *curve_endpoints;      //  with CURVE: endpoint -> s_endpoint_t
    size_t max_partitions;          //  store/max_partitions, 0 = no limit
    int64_t fetch_give_up;          //  store/fetch_give_up ms, 0 = never
    size_t max_fetches;             //  store/max_fetches, 0 = no limit
    s_refusal_log_t name_refusals;
    s_refusal_log_t table_refusals;
    s_refusal_log_t fetch_refusals;
    s_refusal_log_t open_refusals;
    s_refusal_log_t forged_refusals;
    zper_security_t *security;      //  CURVE when not NULL (the process's, counted)
    zper_guard_t *guard;            //  with CURVE: cuts off keys removed from the folder
    char *db_path;                  //  store/db, owned
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
    zlist_t *fetch_queue;           //  s_fetch_t in serving order (owned)
    zhashx_t *fetch_index;          //  s_fetch_t by key (borrowed from the queue)
    bool serving;                   //  the serve timer runs (while fetch_queue is not empty)
    bool verbose;
    bool quiet_armed;               //  the quiet timer runs (while a partition has unflushed records)
    zper_dafka_store_stats_t *stats;
} s_store_t;

struct _zper_dafka_store_t {
    zactor_t *actor;
    char writer_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    char reader_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    zper_dafka_store_stats_t stats;
    zper_metrics_t *metrics;            //  store/metrics/listen set, else NULL
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

//  A peer's name for a log line: at most ZPER_DAFKA_LOG_NAME_MAX bytes, anything
//  but printable ASCII shown as '?', so a forged name cannot forge lines.
static void
s_printable (const char *name, char *target)
{
    size_t length = 0;
    for (; name [length] && length < ZPER_DAFKA_LOG_NAME_MAX; length++)
        target [length] = name [length] >= ' ' && name [length] <= '~'? name [length]: '?';
    target [length] = 0;
}

static void
s_refuse (uint64_t *counter, s_refusal_log_t *log, const char *why, const char *subject,
          const char *sender)
{
    s_count (counter, 1);
    int64_t now = zclock_mono ();
    if (now < log->next_ms) {
        log->unsaid++;
        return;
    }
    char subject_text [ZPER_DAFKA_LOG_NAME_MAX + 1], sender_text [ZPER_DAFKA_LOG_NAME_MAX + 1];
    s_printable (subject, subject_text);
    s_printable (sender, sender_text);
    zsys_warning ("dafka store: %s: refused topic '%s' from '%s' (and %" PRIu64 " more since "
                  "the last such line)", why, subject_text, sender_text, log->unsaid);
    log->unsaid = 0;
    log->next_ms = now + ZPER_LOG_INTERVAL_MS;
}

//  ---- names on disk ---------------------------------------------------------------------
//  A Dafka name (topic or producer uuid) is any string of 0..255 bytes; the
//  log takes only [A-Za-z0-9._-] names of 1..ZPER_TOPIC_NAME_MAX bytes. A
//  name the log takes as it is, not starting with '_', is its own folder,
//  so the folders of every name stored before stay where they were. Any
//  other name is '_' then the name with each byte outside [A-Za-z0-9.-]
//  written _XX (upper-case hex): reversible, never '/', '.' or '..', so
//  nothing can name a path outside store/db. Longer than the log allows
//  once encoded: refused.

static bool
s_plain (char character)
{
    return (character >= 'a' && character <= 'z') || (character >= 'A' && character <= 'Z')
        || (character >= '0' && character <= '9') || character == '.' || character == '-';
}

//  Writes name's folder into folder [S_FOLDER_SIZE]; returns 0, or -1 if it
//  would be longer than the log allows.
static int
s_folder_encode (const char *name, char *folder)
{
    if (name [0] != '_' && zper_log_name_valid (name)) {
        snprintf (folder, S_FOLDER_SIZE, "%s", name);
        return 0;
    }
    size_t length = 0;
    folder [length++] = '_';
    for (const uint8_t *cursor = (const uint8_t *) name; *cursor; cursor++) {
        size_t needed = s_plain ((char) *cursor)? 1: 3;
        if (length + needed > ZPER_TOPIC_NAME_MAX)
            return -1;
        if (needed == 1)
            folder [length++] = (char) *cursor;
        else
            length += (size_t) sprintf (folder + length, "_%02X", *cursor);
    }
    folder [length] = 0;
    return 0;
}

static int
s_hex_digit (char character)
{
    if (character >= '0' && character <= '9')
        return character - '0';
    if (character >= 'A' && character <= 'F')
        return character - 'A' + 10;
    return -1;
}

//  The name a folder holds, into name [ZPER_DAFKA_STRING_MAX + 1]: the
//  inverse of s_folder_encode. Returns 0, or -1 for a folder that no name
//  encodes to (not ours: it is not listed).
static int
s_folder_decode (const char *folder, char *name)
{
    size_t length = 0;
    if (folder [0] != '_')
        length = (size_t) snprintf (name, ZPER_DAFKA_STRING_MAX + 1, "%s", folder);
    else
        for (const char *cursor = folder + 1; *cursor && length <= ZPER_DAFKA_STRING_MAX; length++)
            if (*cursor != '_')
                name [length] = *cursor++;
            else {
                int high = s_hex_digit (cursor [1]);
                int low = high < 0? -1: s_hex_digit (cursor [2]);
                if (low < 0 || high + low == 0)
                    return -1;      //  not _XX, or a NUL
                name [length] = (char) (high * 16 + low);
                cursor += 3;
            }
    if (length > ZPER_DAFKA_STRING_MAX)
        return -1;
    name [length] = 0;
    char canonical [S_FOLDER_SIZE];
    return s_folder_encode (name, canonical) == 0 && streq (canonical, folder)? 0: -1;
}

//  ---- partitions --------------------------------------------------------------------

static zper_bounds_t
s_bounds (s_partition_t *partition)
{
    zper_bounds_t bounds;
    memset (&bounds, 0, sizeof bounds);
    if (partition->log)
        zper_partition_bounds (partition->log, &bounds);
    return bounds;
}

//  ---- keys (rule 5) ---------------------------------------------------------------------

static char *
s_key_path (s_store_t *self, s_partition_t *partition)
{
    return zsys_sprintf ("%s/%s/%s/%s", self->db_path, partition->subject_folder,
                         partition->producer_folder, ZPER_DAFKA_KEY_FILE);
}

//  A partition found on disk is bound to the key its folder names, if any.
static void
s_key_load (s_store_t *self, s_partition_t *partition)
{
    char *path = s_key_path (self, partition);
    FILE *file = fopen (path, "r");
    char key [sizeof partition->sender_key] = "";
    if (file && fgets (key, sizeof key, file) && strlen (key) == sizeof key - 1) {
        memcpy (partition->sender_key, key, sizeof key);
        partition->key_saved = true;
    }
    if (file)
        fclose (file);
    zstr_free (&path);
}

//  Written once the folder exists (with the first record), synced, through
//  a temporary file so that a crash leaves the whole key or none: one
//  fsync per partition, ever.
static void
s_key_save (s_store_t *self, s_partition_t *partition)
{
    if (partition->key_saved || !*partition->sender_key || !partition->log)
        return;
    char *path = s_key_path (self, partition);
    char *temporary = zsys_sprintf ("%s.new", path);
    FILE *file = fopen (temporary, "w");
    bool written = file && fputs (partition->sender_key, file) >= 0
                && fflush (file) == 0 && fsync (fileno (file)) == 0;
    if (file && fclose (file))
        written = false;
    if (written && rename (temporary, path) == 0)
        partition->key_saved = true;
    else {
        zsys_error ("dafka store: cannot write %s: %s (the key binding is kept in memory only)",
                    path, strerror (errno));
        unlink (temporary);
        partition->key_saved = true;                   //  said once
    }
    zstr_free (&temporary);
    zstr_free (&path);
}

static void
s_refuse_forged (s_store_t *self, const char *subject, const char *producer)
{
    s_refuse (&self->stats->forged, &self->forged_refusals,
              "RECORD or HEAD from a key the producer uuid is not bound to", subject, producer);
}

//  Rule (5): may this RECORD or HEAD make a new partition (one neither
//  tracked nor on disk)? Only from the key the tower vouched for its
//  producer's uuid, so that forged ones cost no slot of the table.
//  DIRECT_RECORDs come from stores, trusted.
static bool
s_may_create (s_store_t *self, const char *producer)
{
    if (!self->security || zper_dafka_msg_id (self->msg) == ZPER_DAFKA_DIRECT_RECORD)
        return true;
    const char *vouched = zper_dafka_beacon_vouched (self->writer_beacon, producer);
    return vouched && streq (vouched, zper_dafka_msg_sender (self->msg));
}

//  Rule (5): does the sender of this RECORD or HEAD own the partition? A
//  partition is bound, at first sight, to the key the tower vouched for
//  its producer's uuid (the tower gives a uuid to the first key that
//  announces it); so a peer can neither take a stream over nor claim one
//  before its producer's first record. Unbound, with no live beacon of
//  its uuid: nobody owns it yet (its producer's HEADs and records come
//  again, or are fetched, once its beacon is heard).
static bool
s_sender_owns (s_store_t *self, s_partition_t *partition)
{
    const char *sender = zper_dafka_msg_sender (self->msg);
    if (!*partition->sender_key) {
        const char *vouched = zper_dafka_beacon_vouched (self->writer_beacon, partition->producer);
        if (vouched) {
            snprintf (partition->sender_key, sizeof partition->sender_key, "%s", vouched);
            s_key_save (self, partition);
        }
    }
    if (*partition->sender_key && streq (partition->sender_key, sender))
        return true;
    s_refuse_forged (self, partition->subject, partition->producer);
    return false;
}

static s_partition_t *
s_partition_new (const char *subject, const char *producer, const char *subject_folder,
                 const char *producer_folder, zper_partition_t *log, int64_t now)
{
    s_partition_t *partition = (s_partition_t *) zmalloc (sizeof (s_partition_t));
    snprintf (partition->subject, sizeof partition->subject, "%s", subject);
    snprintf (partition->producer, sizeof partition->producer, "%s", producer);
    snprintf (partition->subject_folder, sizeof partition->subject_folder, "%s", subject_folder);
    snprintf (partition->producer_folder, sizeof partition->producer_folder, "%s", producer_folder);
    snprintf (partition->key, sizeof partition->key, "%s/%s", subject_folder, producer_folder);
    partition->log = log;
    partition->end = (uint64_t) s_bounds (partition).end_offset;
    partition->heard = now;
    return partition;
}

//  The tracked partition of (subject, producer). One not tracked yet is
//  tracked if it is on disk; for the writer, a new one is also tracked (in
//  memory only: its folder comes with its first record) if the table has
//  room. NULL otherwise, the writer's refusals counted and logged.
static s_partition_t *
s_partition (s_store_t *self, const char *subject, const char *producer, bool for_writer)
{
    s_partition_t *partition = self->last_used;
    if (partition && streq (partition->producer, producer) && streq (partition->subject, subject))
        return partition;
    char subject_folder [S_FOLDER_SIZE], producer_folder [S_FOLDER_SIZE];
    if (s_folder_encode (subject, subject_folder) || s_folder_encode (producer, producer_folder)) {
        if (for_writer)
            s_refuse (&self->stats->refused, &self->name_refusals,
                      "name too long for the log once encoded", subject, producer);
        return NULL;
    }
    char key [S_KEY_SIZE];
    snprintf (key, sizeof key, "%s/%s", subject_folder, producer_folder);
    partition = (s_partition_t *) zhashx_lookup (self->partitions, key);
    if (partition)
        return self->last_used = partition;
    zper_partition_t *log = zper_log_partition (self->log, subject_folder, producer_folder, false);
    int error = log? 0: errno;
    if (error && error != ENOENT && for_writer)
        s_refuse (&self->stats->refused, &self->open_refusals, strerror (error), subject, producer);
    if (error && (error != ENOENT || !for_writer))
        return NULL;
    if (!log && !s_may_create (self, producer)) {
        s_refuse_forged (self, subject, producer);
        return NULL;
    }
    if (!log && self->max_partitions && zhashx_size (self->partitions) >= self->max_partitions) {
        s_refuse (&self->stats->table_full, &self->table_refusals,
                  "partition table full (store/max_partitions)", subject, producer);
        return NULL;
    }
    partition = s_partition_new (subject, producer, subject_folder, producer_folder, log,
                                 zclock_mono ());
    if (log && self->security)
        s_key_load (self, partition);
    zhashx_insert (self->partitions, key, partition);
    return self->last_used = partition;
}

static void
s_know (s_partition_t *partition, uint64_t sequence)
{
    if (!partition->is_known || sequence > partition->known)
        partition->known = sequence;
    partition->is_known = true;
}

static bool
s_behind (s_partition_t *partition)
{
    return partition->is_known && partition->known >= partition->end;
}

static bool
s_silent (s_store_t *self, s_partition_t *partition, int64_t now)
{
    return self->fetch_give_up > 0 && now - partition->heard >= self->fetch_give_up;
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
    if (s_behind (partition) && !partition->given_up
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
    if (!partition->log)
        return;                     //  nothing stored yet
    if (partition->appended && (quiet || zper_partition_flush_due (partition->log, zclock_time ()))) {
        if (zper_partition_flush (partition->log) < 0) {
            zsys_error ("dafka store: cannot flush %s/%s: %s (records will be fetched again)",
                        partition->subject_folder, partition->producer_folder, strerror (errno));
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

//  Appends the received content at the partition's end, creating its
//  folder with the first record. Returns 0 or -1 (errno).
static int
s_append (s_store_t *self, s_partition_t *partition)
{
    if (!partition->log)
        partition->log = zper_log_partition (self->log, partition->subject_folder,
                                             partition->producer_folder, true);
    if (!partition->log)
        return -1;
    zper_frame_t frame = { zmq_msg_data (&self->content), zmq_msg_size (&self->content) };
    return zper_partition_append (partition->log, &frame, 1, self->batch_time) < 0? -1: 0;
}

static void
s_store_record (s_store_t *self, s_partition_t *partition)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    s_know (partition, sequence);
    if (sequence != partition->end)
        return;                     //  rule (1): a duplicate, or a gap s_fetch_if_behind fills
    if (s_append (self, partition)) {
        if (!partition->failing)
            zsys_error ("dafka store: cannot append to %s/%s: %s (the records will be fetched "
                        "again)", partition->subject_folder, partition->producer_folder,
                        strerror (errno));
        partition->failing = true;
        return;
    }
    if (partition->failing)
        zsys_info ("dafka store: appending to %s/%s again", partition->subject_folder,
                   partition->producer_folder);
    partition->failing = false;
    if (self->security && !partition->key_saved)
        s_key_save (self, partition);           //  the folder came with this record
    partition->end++;
    partition->appended = true;
    partition->appended_mono = self->batch_mono;
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
    if (!partition
    ||  (self->security && id != ZPER_DAFKA_DIRECT_RECORD && !s_sender_owns (self, partition)))
        return;
    partition->heard = self->batch_mono;
    partition->given_up = false;    //  rule (2): heard again, fetch again
    if (id == ZPER_DAFKA_HEAD) {
        s_know (partition, zper_dafka_msg_sequence (self->msg));
        if (!s_behind (partition))
            s_flush_and_ack (self, partition, false, true);     //  rule (4)
    }
    else
        s_store_record (self, partition);
}

//  On the tick, a partition silent for store/fetch_give_up: no longer
//  fetched if behind (counted once), and forgotten once nothing of it is
//  pending (all durable and ACKed) so its slot is free. Returns true to
//  forget it.
static bool
s_after_silence (s_store_t *self, s_partition_t *partition)
{
    if (s_behind (partition) && !partition->given_up) {
        partition->given_up = true;
        s_count (&self->stats->given_up, 1);
        if (self->verbose)
            zsys_info ("dafka store: %s/%s is silent: not fetched until its next HEAD or RECORD",
                       partition->subject_folder, partition->producer_folder);
    }
    return !partition->appended
        && partition->acked_until == (uint64_t) s_bounds (partition).durable_offset;
}

static void
s_forget (s_store_t *self, zlist_t *keys)
{
    for (char *key = (char *) zlist_first (keys); key; key = (char *) zlist_next (keys)) {
        s_partition_t *partition = (s_partition_t *) zhashx_lookup (self->partitions, key);
        zper_dafka_fetch_filter_forget (self->filter, partition->subject, partition->producer);
        if (self->last_used == partition)
            self->last_used = NULL;
        zhashx_delete (self->partitions, key);
    }
}

//  Rule (3): a partition whose input has paused for ZPER_DAFKA_STORE_QUIET_MS
//  at now (monotonic ms) is quiet: nothing more is coming to share an
//  fdatasync with, and its producer waits for the ACK.
static bool
s_quiet (s_partition_t *partition, int64_t now)
{
    return now - partition->appended_mono >= ZPER_DAFKA_STORE_QUIET_MS;
}

static int s_on_quiet (zloop_t *loop, int timer_id, void *argument);

//  One shot, re-armed by s_on_quiet while records still wait for a flush.
static void
s_arm_quiet (s_store_t *self)
{
    if (!self->quiet_armed)
        self->quiet_armed = zloop_timer (self->loop, ZPER_DAFKA_STORE_QUIET_MS, 1,
                                         s_on_quiet, self) != -1;
}

//  After a batch, on the tick and on the quiet timer (at now, monotonic
//  ms): flush and ACK what the policy or a quiet input says; on the tick,
//  also give up on and forget silent partitions. Returns true if records
//  still wait for a flush.
static bool
s_after_batch_at (s_store_t *self, bool tick, int64_t now)
{
    bool waiting = false;
    zlist_t *silent = tick? zlist_new (): NULL;
    for (s_partition_t *partition = (s_partition_t *) zhashx_first (self->partitions); partition;
         partition = (s_partition_t *) zhashx_next (self->partitions)) {
        s_flush_and_ack (self, partition, s_quiet (partition, now), false);
        waiting = waiting || partition->appended;
        if (tick && s_silent (self, partition, now) && s_after_silence (self, partition))
            zlist_append (silent, partition->key);
        s_fetch_if_behind (self, partition);
    }
    if (silent) {
        s_forget (self, silent);
        zlist_destroy (&silent);
    }
    return waiting;
}

static void
s_after_batch (s_store_t *self, bool tick)
{
    if (s_after_batch_at (self, tick, zclock_mono ()))
        s_arm_quiet (self);
}

static int
s_on_quiet (zloop_t *loop, int timer_id, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    self->quiet_armed = false;
    s_after_batch (self, false);
    return 0;
}

//  Reads what is waiting on one writer SUB, up to a batch, without polling
//  per message; SUB#1 is always drained first. The flush check and the
//  ACKs come once per batch, not per record.
static int
s_on_writer_sub (zloop_t *loop, zsock_t *reader, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    //  With CURVE there is no SUB#1: DIRECT_RECORDs share the writer's one SUB
    zsock_t *order [] = { self->direct_sub, reader };
    self->batch_time = zclock_time ();
    self->batch_mono = zclock_mono ();
    for (int index = self->direct_sub? 0: 1; index < 2; index++)
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
    char subject_folder [S_FOLDER_SIZE];
    zlist_t *folders = s_folder_encode (subject, subject_folder) == 0?
                       zper_log_partitions (self->log, subject_folder): NULL;
    char producer [ZPER_DAFKA_STRING_MAX + 1];
    for (char *folder = folders? (char *) zlist_first (folders): NULL; folder;
         folder = (char *) zlist_next (folders))
        if (s_folder_decode (folder, producer) == 0)
            s_reader_send_head (self, consumer, subject, producer);
    zlist_destroy (&folders);
}

//  Sends one DIRECT_RECORD of the answer from its view (the next view opened
//  at fetch->next once one is used up). Returns false when the answer is
//  over: all sent, or its next record gone (retention) or unreadable.
static bool
s_serve_record (s_store_t *self, s_fetch_t *fetch)
{
    zper_message_t message;
    bool fresh = false;
    while (true) {
        if (fetch->next > fetch->last)
            return false;
        if (!fetch->view) {
            fetch->view = zper_partition_read (fetch->log, fetch->next, ZPER_DAFKA_READ_BYTES);
            fresh = true;
        }
        if (!fetch->view)
            return false;
        if (zper_view_next (fetch->view, &message))
            break;
        zper_view_destroy (&fetch->view);
        if (fresh)
            return false;           //  nothing at fetch->next any more
    }
    const uint8_t *cursor = message.data;
    zper_frame_t frame;
    bool more;
    zmq_msg_t content;
    if (message.offset != fetch->next
    ||  zper_zmtp_decode (&cursor, message.data + message.size, &frame, &more)
    ||  zper_view_lend (fetch->view, frame.data, frame.size, &content))
        return false;
    zper_dafka_msg_set_sequence (self->msg, (uint64_t) message.offset);
    s_count (&self->stats->served, 1);          //  first, as the ACK count
    zper_dafka_msg_send_content (self->msg, self->reader_xpub, &content);
    fetch->next++;
    return true;
}

static void
s_fetch_destroy (s_store_t *self, s_fetch_t **fetch_p)
{
    zhashx_delete (self->fetch_index, (*fetch_p)->key);
    zper_view_destroy (&(*fetch_p)->view);
    free (*fetch_p);
    *fetch_p = NULL;
}

//  One loop turn's share of the FETCH answers: up to ZPER_DAFKA_SERVE_SLICE
//  records, ZPER_DAFKA_SERVE_STEP per answer in turn; between turns the
//  writer stores and ACKs and new requests are read. Each answer keeps its
//  log view from turn to turn: a view checks the CRCs of all it holds.
static int
s_on_serve (zloop_t *loop, int timer_id, void *argument)
{
    s_store_t *self = (s_store_t *) argument;
    int budget = ZPER_DAFKA_SERVE_SLICE;
    while (budget > 0 && zlist_size (self->fetch_queue)) {
        s_fetch_t *fetch = (s_fetch_t *) zlist_pop (self->fetch_queue);
        zper_dafka_msg_set_id (self->msg, ZPER_DAFKA_DIRECT_RECORD);
        zper_dafka_msg_set_topic (self->msg, fetch->requester);
        zper_dafka_msg_set_address (self->msg, fetch->producer);
        zper_dafka_msg_set_subject (self->msg, fetch->subject);
        bool going = true;
        for (int step = 0; going && step < ZPER_DAFKA_SERVE_STEP && budget > 0; step++, budget--)
            going = s_serve_record (self, fetch);
        if (going)
            zlist_append (self->fetch_queue, fetch);
        else
            s_fetch_destroy (self, &fetch);     //  answered, or its records are gone
    }
    if (zlist_size (self->fetch_queue) == 0) {
        zloop_timer_end (loop, timer_id);
        self->serving = false;
    }
    return 0;
}

//  Queues the answer [sequence, last] of a FETCH from requester. A FETCH
//  inside the range an answer in progress was asked for only extends it
//  (consumers re-ask while records are on their way); an earlier one
//  rewinds it.
static void
s_fetch_queue (s_store_t *self, s_partition_t *partition, const char *requester,
               int64_t sequence, int64_t last)
{
    char key [S_FETCH_KEY_SIZE];
    snprintf (key, sizeof key, "%s/%s", partition->key, requester);
    s_fetch_t *fetch = (s_fetch_t *) zhashx_lookup (self->fetch_index, key);
    if (fetch) {
        if (sequence < fetch->first) {
            fetch->first = fetch->next = sequence;
            zper_view_destroy (&fetch->view);
        }
        if (last > fetch->last)
            fetch->last = last;
        return;
    }
    if (self->max_fetches && zhashx_size (self->fetch_index) >= self->max_fetches) {
        s_refuse (&self->stats->fetch_dropped, &self->fetch_refusals,
                  "FETCH answers in progress at store/max_fetches", partition->subject, requester);
        return;
    }
    fetch = (s_fetch_t *) zmalloc (sizeof (s_fetch_t));
    snprintf (fetch->key, sizeof fetch->key, "%s", key);
    snprintf (fetch->requester, sizeof fetch->requester, "%s", requester);
    snprintf (fetch->subject, sizeof fetch->subject, "%s", partition->subject);
    snprintf (fetch->producer, sizeof fetch->producer, "%s", partition->producer);
    fetch->log = partition->log;
    fetch->first = fetch->next = sequence;
    fetch->last = last;
    zhashx_insert (self->fetch_index, key, fetch);
    zlist_append (self->fetch_queue, fetch);
    if (!self->serving)
        self->serving = zloop_timer (self->loop, 0, 0, s_on_serve, self) != -1;
}

static void
s_reader_fetch (s_store_t *self, const char *producer)
{
    uint64_t sequence = zper_dafka_msg_sequence (self->msg);
    uint64_t count = zper_dafka_msg_count (self->msg);
    if (count > ZPER_DAFKA_FETCH_COUNT_MAX)
        count = ZPER_DAFKA_FETCH_COUNT_MAX;
    s_partition_t *partition = s_partition (self, zper_dafka_msg_subject (self->msg), producer, false);
    if (!partition || !partition->log || sequence > INT64_MAX)
        return;
    zper_bounds_t bounds = s_bounds (partition);
    if ((int64_t) sequence < bounds.start_offset || (int64_t) sequence >= bounds.durable_offset)
        return;                     //  the reference answers only if the first key exists
    int64_t last = (int64_t) sequence + (int64_t) count;       //  inclusive, as the reference
    if (last > bounds.durable_offset - 1)
        last = bounds.durable_offset - 1;
    s_fetch_queue (self, partition, zper_dafka_msg_address (self->msg), (int64_t) sequence, last);
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

//  With CURVE: an endpoint the two beacons know, and the key it was
//  connected with.
typedef struct {
    size_t beacons;
    char key [41];
} s_endpoint_t;

//  With CURVE the sending sockets connect to the peers' listening SUBs,
//  with the key the tower vouched for. An endpoint heard with a new key (a
//  node that took over a port, e.g. a consumer binding the port a producer
//  just left) is connected again with it: a connection kept with the old
//  key would fail its handshake for ever. Each beacon reports the change
//  (gone with the old key, then new with the new one), hence the count.
static void
s_curve_peer (s_store_t *self, const char *endpoint, const char *key, bool connected)
{
    s_endpoint_t *known = (s_endpoint_t *) zhashx_lookup (self->curve_endpoints, endpoint);
    zsock_t *senders [] = { self->writer_pub, self->reader_xpub };
    bool reconnect = connected && known && !streq (known->key, key);
    for (int index = 0; index < 2; index++) {
        if ((!connected && known && known->beacons == 1) || reconnect)
            zsock_disconnect (senders [index], "%s", endpoint);
        if ((connected && !known) || reconnect)
            if (zper_security_client (self->security, senders [index], key) == 0)
                zsock_connect (senders [index], "%s", endpoint);
    }
    if (connected && !known) {
        known = (s_endpoint_t *) zmalloc (sizeof (s_endpoint_t));
        zhashx_insert (self->curve_endpoints, endpoint, known);
    }
    if (connected) {
        snprintf (known->key, sizeof known->key, "%s", key);
        known->beacons++;
    }
    else
    if (known && --known->beacons == 0)
        zhashx_delete (self->curve_endpoints, endpoint);
}

//  Both beacons report the same peers; each endpoint is connected once and
//  disconnected when neither beacon hears it any more.
static void
s_on_beacon_peer (void *owner, const char *endpoint, const char *key, bool connected)
{
    s_store_t *self = (s_store_t *) owner;
    if (self->security) {
        s_curve_peer (self, endpoint, key, connected);
        return;
    }
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
    self->direct_sub = self->security? NULL: s_socket (ZMQ_SUB, high_watermark);
    self->record_sub = s_socket (ZMQ_SUB, high_watermark);
    self->reader_xpub = s_socket (ZMQ_XPUB, high_watermark);
    self->request_sub = s_socket (ZMQ_SUB, high_watermark);
    zsock_set_xpub_verbose (self->reader_xpub, 1);
    char subscription [ZPER_DAFKA_UUID_SIZE + 2];
    s_subscription (subscription, sizeof subscription, ZPER_DAFKA_DIRECT_RECORD, self->writer_uuid);
    zsock_set_subscribe (self->security? self->record_sub: self->direct_sub, subscription);
    zsock_set_subscribe (self->record_sub, "M");
    zsock_set_subscribe (self->record_sub, "H");
    zsock_set_subscribe (self->request_sub, "F");
    zsock_set_subscribe (self->request_sub, "G");
    s_subscription (subscription, sizeof subscription, ZPER_DAFKA_CONSUMER_HELLO, self->reader_uuid);
    zsock_set_subscribe (self->request_sub, subscription);
    //  What is bound is what is announced: the sending sockets, or with
    //  CURVE the receiving ones (the peers' sending sockets connect to them)
    zsock_t *writer = self->security? self->record_sub: self->writer_pub;
    zsock_t *reader = self->security? self->request_sub: self->reader_xpub;
    zper_dafka_msg_track_sender (self->msg, self->security != NULL);
    if (self->security) {
        self->guard = zper_dafka_security_guard (config, self->loop);
        zper_dafka_msg_set_guard (self->msg, self->guard);
        if (!self->guard
        ||  zper_security_server (self->security, writer, "dafka store writer")
        ||  zper_security_server (self->security, reader, "dafka store reader"))
            return;                 //  no beacons: the start fails
    }
    char *bind = zper_dafka_beacon_bind_endpoint (config);
    int writer_port = zsock_bind (writer, "%s", bind);
    int reader_port = zsock_bind (reader, "%s", bind);
    if (writer_port > 0 && reader_port > 0) {
        self->writer_beacon = zper_dafka_beacon_new (config, self->security, self->writer_uuid,
                                                     writer_port, s_on_beacon_peer, self);
        self->reader_beacon = zper_dafka_beacon_new (config, self->security, self->reader_uuid,
                                                     reader_port, s_on_beacon_peer, self);
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
    if (!log) {
        char *reason = zper_dir_lock_reason (log_config.base_dir, errno);
        zsys_error ("dafka store: %s", reason);
        zstr_free (&reason);
    }
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
    self->curve_endpoints = zhashx_new ();
    zhashx_set_destructor (self->curve_endpoints, (zhashx_destructor_fn *) zstr_free);
    self->fetch_queue = zlist_new ();
    self->fetch_index = zhashx_new ();
    self->max_partitions = (size_t) zper_dafka_config_number (arguments->config,
        "store/max_partitions", ZPER_DAFKA_STORE_MAX_PARTITIONS);
    self->fetch_give_up = zper_dafka_config_number (arguments->config, "store/fetch_give_up",
                                                    ZPER_DAFKA_STORE_FETCH_GIVE_UP_MS);
    self->max_fetches = (size_t) zper_dafka_config_number (arguments->config, "store/max_fetches",
                                                           ZPER_DAFKA_STORE_MAX_FETCHES);
    self->loop = zloop_new ();
    self->db_path = strdup (zper_dafka_config_string (arguments->config, "store/db",
                                                      ZPER_DAFKA_STORE_DB));
    self->log = s_open_log (arguments->config);
    if (self->log && zper_dafka_security_acquire (arguments->config, &self->security) == 0)
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
    zper_guard_destroy (&self->guard);
    zsock_destroy (&self->writer_pub);
    zsock_destroy (&self->direct_sub);
    zsock_destroy (&self->record_sub);
    zsock_destroy (&self->reader_xpub);
    zsock_destroy (&self->request_sub);
    zper_dafka_security_release (&self->security);
    zstr_free (&self->db_path);
    zhashx_destroy (&self->partitions);
    zhashx_destroy (&self->endpoints);
    zhashx_destroy (&self->curve_endpoints);
    while (zlist_size (self->fetch_queue)) {
        s_fetch_t *fetch = (s_fetch_t *) zlist_pop (self->fetch_queue);
        s_fetch_destroy (self, &fetch);
    }
    zlist_destroy (&self->fetch_queue);
    zhashx_destroy (&self->fetch_index);
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
    if (self->direct_sub)
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

char *
zper_dafka_store_metrics (zper_dafka_store_t *self)
{
    zper_dafka_store_stats_t stats;
    zper_dafka_store_stats (self, &stats);
    zper_metrics_counter_t counters [] = {
        { "zper_dafka_store_stored_total", "counter", "Records appended to the store's log.",
          stats.stored },
        { "zper_dafka_store_acked_total", "counter", "ACK messages sent.", stats.acked },
        { "zper_dafka_store_served_total", "counter", "DIRECT_RECORDs sent in answer to FETCH.",
          stats.served },
        { "zper_dafka_store_malformed_total", "counter", "Messages dropped as malformed.",
          stats.malformed },
        { "zper_dafka_store_refused_total", "counter",
          "HEAD/RECORDs refused: names too long once encoded, or a partition that cannot open.",
          stats.refused },
        { "zper_dafka_store_table_full_total", "counter",
          "HEAD/RECORDs of new partitions refused: store/max_partitions reached.",
          stats.table_full },
        { "zper_dafka_store_given_up_total", "counter",
          "Partitions no longer fetched: silent for store/fetch_give_up.", stats.given_up },
        { "zper_dafka_store_fetch_dropped_total", "counter",
          "FETCHes dropped: store/max_fetches answers were pending.", stats.fetch_dropped },
        { "zper_dafka_store_forged_total", "counter",
          "With CURVE: RECORD/HEADs from a key their partition is not bound to.", stats.forged },
    };
    return zper_metrics_counters (counters, sizeof counters / sizeof counters [0]);
}

static char *
s_metrics_render (void *argument)
{
    return zper_dafka_store_metrics ((zper_dafka_store_t *) argument);
}

zper_dafka_store_t *
zper_dafka_store_new (zconfig_t *config)
{
    zper_dafka_store_t *self = (zper_dafka_store_t *) zmalloc (sizeof (zper_dafka_store_t));
    s_new_uuid (self->writer_uuid, sizeof self->writer_uuid);
    s_new_uuid (self->reader_uuid, sizeof self->reader_uuid);
    s_arguments_t arguments = { config, self };
    self->actor = zactor_new (s_store_actor, &arguments);
    if (zsock_wait (self->actor) != 0) {
        zper_dafka_store_destroy (&self);
        return NULL;
    }
    const char *listen = zper_dafka_config_string (config, "store/metrics/listen", "");
    if (*listen) {
        self->metrics = zper_metrics_new (listen, (int) zper_dafka_config_number (
            config, "store/metrics/max_clients", ZPER_DEFAULT_METRICS_MAX_CLIENTS),
            s_metrics_render, self);
        if (!self->metrics) {
            zsys_error ("store/metrics/listen: %s", zper_metrics_reason ());
            zper_dafka_store_destroy (&self);
        }
    }
    return self;
}

void
zper_dafka_store_destroy (zper_dafka_store_t **self_p)
{
    if (self_p && *self_p) {
        zper_metrics_destroy (&(*self_p)->metrics);     //  it reads the counters
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
    stats->table_full = __atomic_load_n (&self->stats.table_full, __ATOMIC_RELAXED);
    stats->given_up = __atomic_load_n (&self->stats.given_up, __ATOMIC_RELAXED);
    stats->fetch_dropped = __atomic_load_n (&self->stats.fetch_dropped, __ATOMIC_RELAXED);
    stats->forged = __atomic_load_n (&self->stats.forged, __ATOMIC_RELAXED);
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
    //  The same counters as Prometheus text, each series typed
    char *text = zper_dafka_store_metrics (store);
    char expected [128];
    snprintf (expected, sizeof expected, "\nzper_dafka_store_stored_total %d\n", records);
    assert (strstr (text, expected));
    assert (strstr (text, "# TYPE zper_dafka_store_acked_total counter\n"));
    assert (strstr (text, "\nzper_dafka_store_malformed_total 0\n"));
    free (text);
    zper_dafka_producer_destroy (&producer);
    zper_dafka_store_destroy (&store);
}

//  Rule (3) on the store's own functions, with a fake clock (no timing):
//  records wait for their flush until the input has been quiet for
//  ZPER_DAFKA_STORE_QUIET_MS, and the ACK follows only a flush whose
//  fdatasync succeeded, naming exactly the durable end.
static void
s_test_ack_after_quiet_flush (void)
{
    zper_dafka_store_stats_t stats = { 0 };
    s_store_t *self = (s_store_t *) zmalloc (sizeof (s_store_t));
    self->stats = &stats;
    self->msg = zper_dafka_msg_new ();
    zmq_msg_init (&self->content);
    self->partitions = zhashx_new ();
    zhashx_set_destructor (self->partitions, (zhashx_destructor_fn *) zstr_free);
    self->filter = zper_dafka_fetch_filter_new ();   //  the failed flush leaves it behind
    zper_log_config_t log_config;
    zper_log_config_init (&log_config);
    log_config.base_dir = "quietunitdb";
    log_config.flush_messages = 1000000000;         //  the policy never comes due
    log_config.flush_interval_ms = 3600000;
    self->log = zper_log_new (&log_config);
    assert (self->log);
    snprintf (self->writer_uuid, sizeof self->writer_uuid, "%s", "QUIETWRITER");
    self->writer_pub = zsock_new_pub ("@inproc://zper-dafka-store-quiet");
    zsock_t *acks = zsock_new_sub (">inproc://zper-dafka-store-quiet", "K");
    assert (self->writer_pub && acks);
    zsock_set_rcvtimeo (acks, 5000);
    while (true) {                  //  the subscription has reached the PUB
        zstr_send (self->writer_pub, "Kwarm");
        zpoller_t *poller = zpoller_new (acks, NULL);
        bool arrived = zpoller_wait (poller, 10) != NULL;
        zpoller_destroy (&poller);
        if (arrived) {
            char *warm = zstr_recv (acks);
            zstr_free (&warm);
            break;
        }
    }
    s_partition_t *partition = s_partition (self, "zper.quiet", "QUIETPRODUCER", true);
    assert (partition);
    const int records = 10;
    const int64_t start = 1000;     //  the fake clock, monotonic ms
    for (int attempt = 0; attempt < 2; attempt++) {
        self->batch_mono = start + attempt * 1000;
        for (int sequence = 0; sequence < records; sequence++) {
            zper_dafka_msg_set_sequence (self->msg, (uint64_t) sequence);
            zmq_msg_close (&self->content);
            zmq_msg_init_size (&self->content, sizeof sequence);
            memcpy (zmq_msg_data (&self->content), &sequence, sizeof sequence);
            s_store_record (self, partition);
        }
        assert (partition->end == (uint64_t) records && stats.stored == (uint64_t) (records * (attempt + 1)));
        //  Input paused for less than the quiet time: nothing flushed, no ACK
        assert (s_after_batch_at (self, false, self->batch_mono + ZPER_DAFKA_STORE_QUIET_MS - 1));
        assert (s_bounds (partition).durable_offset == 0 && stats.acked == 0);
        //  Quiet: flushed. The first time its fdatasync fails: no ACK, and
        //  the records are cut back (they will be fetched again)
        if (attempt == 0)
            zper_partition_set_fault (partition->log, 0, EIO);
        bool waiting = s_after_batch_at (self, false, self->batch_mono + ZPER_DAFKA_STORE_QUIET_MS);
        assert (!waiting);
        if (attempt == 0) {
            assert (s_bounds (partition).durable_offset == 0 && partition->end == 0);
            assert (stats.acked == 0 && partition->acked_until == 0);
            zper_partition_set_fault (partition->log, 0, 0);
        }
    }
    assert (s_bounds (partition).durable_offset == records && stats.acked == 1);
    zper_dafka_msg_t *ack = zper_dafka_msg_new ();
    assert (zper_dafka_msg_recv (ack, acks) == 0);
    assert (zper_dafka_msg_id (ack) == ZPER_DAFKA_ACK);
    assert (streq (zper_dafka_msg_topic (ack), "QUIETPRODUCER"));
    assert (streq (zper_dafka_msg_subject (ack), "zper.quiet"));
    assert (zper_dafka_msg_sequence (ack) == (uint64_t) records - 1);
    zper_dafka_msg_destroy (&ack);
    zsock_destroy (&acks);
    zsock_destroy (&self->writer_pub);
    zhashx_destroy (&self->partitions);
    zper_log_destroy (&self->log);
    zper_dafka_fetch_filter_destroy (&self->filter);
    zper_dafka_msg_destroy (&self->msg);
    zmq_msg_close (&self->content);
    free (self);
}

//  Folder names: plain names are their own folder, any other name comes
//  back from its folder, and no folder is a path or escapes store/db.
static void
s_test_folder_names (void)
{
    const char *names [] = { "orders", "zper.s", "my_topic", "orders:eu", "a b", "\xc3\xbc", "../x",
                             "..", ".", "", "_x", "a/b", "_2F", "x_", NULL };
    char folder [S_FOLDER_SIZE], name [ZPER_DAFKA_STRING_MAX + 1];
    for (int index = 0; names [index]; index++) {
        assert (s_folder_encode (names [index], folder) == 0);
        assert (zper_log_name_valid (folder));
        assert (s_folder_decode (folder, name) == 0 && streq (name, names [index]));
    }
    assert (s_folder_encode ("my_topic", folder) == 0 && streq (folder, "my_topic"));
    assert (s_folder_encode ("orders:eu", folder) == 0 && streq (folder, "_orders_3Aeu"));
    assert (s_folder_encode ("../x", folder) == 0 && streq (folder, "_.._2Fx"));
    //  Folders no name encodes to are not ours
    const char *strangers [] = { "_abc", "_a_2", "_a_zz", "_a_00", "_a_3a", "_a_2E", NULL };
    for (int index = 0; strangers [index]; index++)
        assert (s_folder_decode (strangers [index], name) == -1);
    //  Longest plain name fits; a 255-byte one, or one too long once encoded, is refused
    char longest [ZPER_DAFKA_STRING_MAX + 1];
    memset (longest, 'n', sizeof longest);
    longest [ZPER_TOPIC_NAME_MAX] = 0;
    assert (s_folder_encode (longest, folder) == 0 && streq (folder, longest));
    longest [ZPER_TOPIC_NAME_MAX] = 'n';
    longest [ZPER_DAFKA_STRING_MAX] = 0;
    assert (s_folder_encode (longest, folder) == -1);
    memset (longest, ':', ZPER_TOPIC_NAME_MAX / 3);
    longest [ZPER_TOPIC_NAME_MAX / 3] = 0;
    assert (s_folder_encode (longest, folder) == -1);
    longest [ZPER_TOPIC_NAME_MAX / 3 - 1] = 0;
    assert (s_folder_encode (longest, folder) == 0 && strlen (folder) <= ZPER_TOPIC_NAME_MAX);
}

//  With CURVE (one certificate for the whole process, as every node of a
//  process shares one zauth): producer -> store -> a late consumer, over
//  connections turned round, and the binding kept in the partition's folder.
static void
s_test_curve (void)
{
    zsys_dir_create ("curvekeys");
    zcert_t *cert = zcert_new ();
    assert (zcert_save (cert, "curvenode") == 0 && zcert_save_public (cert, "curvekeys/node") == 0);
    chmod ("curvenode_secret", 0600);
    zconfig_t *config = zconfig_new ("root", NULL);
    zconfig_put (config, "security/curve", "1");
    zconfig_put (config, "security/cert", "curvenode");
    zconfig_put (config, "security/keys", "curvekeys");
    zconfig_put (config, "security/tower_key", "curvekeys/node");
    assert (zper_dafka_config_check (config, "test") == 0);
    zper_dafka_tower_t *tower;
    zper_dafka_tower_test_start (config, &tower);
    zconfig_put (config, "consumer/offset/reset", "earliest");
    zconfig_put (config, "store/db", "curvedb");
    zconfig_put (config, "store/flush_interval", "50");

    zper_dafka_store_t *store = zper_dafka_store_new (config);
    zper_dafka_producer_t *producer = zper_dafka_producer_new (config, "zper.s");
    assert (store && producer);
    char producer_uuid [ZPER_DAFKA_UUID_SIZE + 1];
    snprintf (producer_uuid, sizeof producer_uuid, "%s", zper_dafka_producer_uuid (producer));
    const int records = 100;
    s_test_publish (producer, 0, records);
    zper_dafka_producer_destroy (&producer);         //  once the store ACKed them all
    zper_dafka_store_stats_t stats;
    zper_dafka_store_stats (store, &stats);
    assert (stats.stored == (uint64_t) records && stats.forged == 0);
    s_test_consume (config, producer_uuid, records);
    char *key_path = zsys_sprintf ("curvedb/zper.s/%s/%s", producer_uuid, ZPER_DAFKA_KEY_FILE);
    FILE *file = fopen (key_path, "r");
    char key [41] = "";
    assert (file && fgets (key, sizeof key, file) && streq (key, zcert_public_txt (cert)));
    fclose (file);
    zstr_free (&key_path);
    zper_dafka_store_destroy (&store);
    zper_dafka_tower_destroy (&tower);
    zconfig_destroy (&config);
    zcert_destroy (&cert);
}

void
zper_dafka_store_test (bool verbose)
{
    s_test_folder_names ();
    s_test_ack_after_quiet_flush ();
    zper_dafka_tower_t *tower;
    zconfig_t *config = zper_dafka_tower_test_start (NULL, &tower);
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
    s_test_curve ();
}
