/*  =========================================================================
    client_test - libzper (include/zper.h) against a real zperd process

    Usage: client_test ZPERD TEST       e.g. client_test ./zperd follow
    Each test starts its own zperd on loopback ports nobody else uses (with
    its data in a fresh temporary folder), runs the API against it, stops it
    with SIGTERM and fails unless zperd exits 0 (an ASan report makes it
    exit non-zero). Every wait is bounded: a test can fail, never hang.
    Only the public header is used, as an application would.
    ========================================================================= */

#include <zper.h>
#include <zper_test_ports.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BROKER_PORTS        5           //  front, rear, ack, relay, relay.pub
#define BROKER_START_TRIES  3           //  a port taken between probe and bind: try again
#define BROKER_WAIT_MS      20000       //  start-up and shutdown, each
#define POLL_STEP_MS        100
#define FLUSH_INTERVAL_MS   20          //  acks come quickly in these tests
#define MAX_MESSAGE         4096        //  so that "oversized" is cheap to send
#define WINDOW_TEST_MESSAGES 50000      //  far more than libzmq queues and TCP buffers hold

typedef struct {
    pid_t pid;
    char folder [64];
    char front [64];
    char rear [64];
    bool curve;                         //  security.curve = 1, keys in folder (s_curve_keys)
    char server_cert [96];              //  folder/broker: the broker's public certificate
    char probe_cert [96];               //  folder/alice: a client the broker allows
} broker_t;

static const char *s_zperd;


//  Write the config, start zperd, wait until its rear answers. Returns 0,
//  or -1 if zperd exited (e.g. a port was taken meanwhile).
static int
s_broker_spawn (broker_t *broker)
{
    int ports [BROKER_PORTS];
    for (int index = 0; index < BROKER_PORTS; index++) {
        ports [index] = zper_test_ports_reserve ();
        assert (ports [index] != -1);
    }
    snprintf (broker->front, sizeof broker->front, "tcp://127.0.0.1:%d", ports [0]);
    snprintf (broker->rear, sizeof broker->rear, "tcp://127.0.0.1:%d", ports [1]);
    char *config = zsys_sprintf ("%s/zper.conf", broker->folder);
    FILE *file = fopen (config, "w");
    assert (file);
    fprintf (file, "base_dir = %s/data\nflush_interval = %d\nmax_message = %d\n"
             "front.bind = %s\nrear.bind = %s\nack.bind = tcp://127.0.0.1:%d\n"
             "relay.bind = tcp://127.0.0.1:%d\nrelay.pub.bind = tcp://127.0.0.1:%d\n",
             broker->folder, FLUSH_INTERVAL_MS, MAX_MESSAGE, broker->front, broker->rear,
             ports [2], ports [3], ports [4]);
    if (broker->curve)
        fprintf (file, "security.curve = 1\nsecurity.cert = %s\nsecurity.keys = %s/keys\n",
                 broker->server_cert, broker->folder);
    fclose (file);
    broker->pid = fork ();
    assert (broker->pid >= 0);
    if (broker->pid == 0) {
        execl (s_zperd, "zperd", "-c", config, (char *) NULL);
        _exit (127);
    }
    zstr_free (&config);
    zper_consumer_t *probe = zper_consumer_new (broker->rear, NULL);
    zper_consumer_set_timeout (probe, POLL_STEP_MS);
    if (broker->curve)
        assert (zper_consumer_set_curve (probe, broker->server_cert, broker->probe_cert) == 0);
    int rc = -1;
    for (int waited = 0; waited < BROKER_WAIT_MS && rc == -1; waited += POLL_STEP_MS) {
        zlist_t *topics = zper_consumer_topics (probe);
        if (topics)
            rc = 0;
        zlist_destroy (&topics);
        if (rc == -1 && waitpid (broker->pid, NULL, WNOHANG) == broker->pid)
            break;
    }
    zper_consumer_destroy (&probe);
    return rc;
}

//  Save a certificate pair as folder/name (+ _secret) with grants (NULL:
//  none), and its public file in folder/keys when allowed.
static void
s_curve_cert (broker_t *broker, const char *name, const char *write, const char *read, bool allowed)
{
    zcert_t *cert = zcert_new ();
    if (write)
        zcert_set_meta (cert, "write", "%s", write);
    if (read)
        zcert_set_meta (cert, "read", "%s", read);
    char *path = zsys_sprintf ("%s/%s", broker->folder, name);
    assert (zcert_save (cert, path) == 0);      //  CZMQ makes the secret file 0600
    zstr_free (&path);
    if (allowed) {
        path = zsys_sprintf ("%s/keys/%s", broker->folder, name);
        assert (zcert_save_public (cert, path) == 0);
        zstr_free (&path);
    }
    zcert_destroy (&cert);
}

//  The keys of a CURVE broker: its own, alice (writes and reads topics
//  "curve*"), bob (writes and reads only "other"), and stranger, whom the
//  broker does not know.
static void
s_curve_keys (broker_t *broker)
{
    broker->curve = true;
    char *keys = zsys_sprintf ("%s/keys", broker->folder);
    assert (zsys_dir_create (keys) == 0);
    zstr_free (&keys);
    s_curve_cert (broker, "broker", NULL, NULL, false);
    s_curve_cert (broker, "alice", "curve*", "curve*", true);
    s_curve_cert (broker, "bob", "other", "other", true);
    s_curve_cert (broker, "stranger", "*", "*", false);
    snprintf (broker->server_cert, sizeof broker->server_cert, "%s/broker", broker->folder);
    snprintf (broker->probe_cert, sizeof broker->probe_cert, "%s/alice", broker->folder);
}

static broker_t *
s_broker_start (bool curve)
{
    broker_t *broker = (broker_t *) zmalloc (sizeof (broker_t));
    strcpy (broker->folder, "/tmp/zper-client-test-XXXXXX");
    assert (mkdtemp (broker->folder));
    if (curve)
        s_curve_keys (broker);
    int tries = 0;
    while (s_broker_spawn (broker) == -1) {
        assert (++tries < BROKER_START_TRIES);
        kill (broker->pid, SIGKILL);
        waitpid (broker->pid, NULL, 0);
    }
    return broker;
}

//  Stop zperd with SIGTERM; it must exit 0 within the bound.
static void
s_broker_terminate (broker_t *broker)
{
    assert (kill (broker->pid, SIGTERM) == 0);
    int status = -1;
    for (int waited = 0; waited < BROKER_WAIT_MS; waited += POLL_STEP_MS) {
        if (waitpid (broker->pid, &status, WNOHANG) == broker->pid)
            break;
        zclock_sleep (POLL_STEP_MS);
    }
    if (status == -1) {
        kill (broker->pid, SIGKILL);
        waitpid (broker->pid, NULL, 0);
    }
    if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0))
        fprintf (stderr, "client_test: zperd did not exit 0 on SIGTERM (status %d)\n", status);
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    broker->pid = 0;
}

//  Stop zperd if it runs, remove its folder.
static void
s_broker_stop (broker_t **broker_p)
{
    broker_t *broker = *broker_p;
    if (broker->pid)
        s_broker_terminate (broker);
    zdir_t *folder = zdir_new (broker->folder, NULL);
    if (folder)
        zdir_remove (folder, true);
    zdir_destroy (&folder);
    free (broker);
    *broker_p = NULL;
}

//  ---- helpers -------------------------------------------------------------------

//  Message number index of a test stream: [id-N] or [id-N][][body-N].
static zmsg_t *
s_message (int index)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstrf (msg, "id-%d", index);
    if (index % 2) {
        zmsg_addmem (msg, NULL, 0);
        zmsg_addstrf (msg, "body-%d", index);
    }
    return msg;
}

static void
s_assert_message (zmsg_t *msg, int index)
{
    zmsg_t *expected = s_message (index);
    assert (msg && zmsg_size (msg) == zmsg_size (expected));
    for (zframe_t *frame = zmsg_first (msg), *want = zmsg_first (expected); frame;
         frame = zmsg_next (msg), want = zmsg_next (expected))
        assert (zframe_eq (frame, want));
    zmsg_destroy (&expected);
}

//  Read count messages from the consumer's position, waiting for them
//  (bounded), and check they are messages first .. first + count - 1.
static void
s_expect (zper_consumer_t *consumer, int first, int count)
{
    for (int index = first; index < first + count; index++) {
        zmsg_t *msg = NULL;
        for (int waited = 0; !msg && waited < BROKER_WAIT_MS; waited += POLL_STEP_MS)
            msg = zper_consumer_recv (consumer, POLL_STEP_MS);
        if (!msg)
            fprintf (stderr, "client_test: message %d: %s\n", index, zper_consumer_error (consumer));
        s_assert_message (msg, index);
        zmsg_destroy (&msg);
    }
}

static void
s_produce (zper_producer_t *producer, int first, int count)
{
    for (int index = first; index < first + count; index++) {
        zmsg_t *msg = s_message (index);
        assert (zper_producer_send (producer, &msg) == 0);
    }
}

//  ---- tests -----------------------------------------------------------------------

//  Modes 0, 1 and 2: what is sent comes back frame for frame, in order.
static void
test_write_modes_round_trip (broker_t *broker)
{
    const char *topics [] = { "modenone", "modeack", "modereq" };
    for (int mode = ZPER_MODE_NONE; mode <= ZPER_MODE_REQ; mode++) {
        zper_producer_t *producer = zper_producer_new (broker->front, topics [mode], mode);
        assert (producer);
        s_produce (producer, 0, 20);
        assert (zper_producer_sync (producer) == 0);
        assert (zper_producer_acked (producer) == (mode == ZPER_MODE_NONE? 0: 20));
        zper_producer_destroy (&producer);
        zper_consumer_t *consumer = zper_consumer_new (broker->rear, topics [mode]);
        s_expect (consumer, 0, 20);
        assert (zper_consumer_offset (consumer) == 19);
        zper_consumer_destroy (&consumer);
    }
}

//  Mode 1 pipelined far past libzmq's queues: one ack per message arrives
//  for every message (flow control on our side, no drop on the broker's).
static void
test_pipelined_acks_all_arrive (broker_t *broker)
{
    zper_producer_t *producer = zper_producer_new (broker->front, "window", ZPER_MODE_ACK);
    s_produce (producer, 0, WINDOW_TEST_MESSAGES);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == WINDOW_TEST_MESSAGES);
    zper_producer_destroy (&producer);
}

static void
s_collect_batch_ack (const zper_ack_t *ack, void *arg)
{
    int64_t *next_offset = (int64_t *) arg;
    assert (ack->status == ZPER_STATUS_OK);
    assert (ack->first_offset == *next_offset);     //  batches land back to back
    *next_offset += ack->count;
}

//  Mode 3: one ack per batch naming its first offset and count; mode 4 on
//  the same topic continues the offsets.
static void
test_batch_write_acks_offsets (broker_t *broker)
{
    zper_producer_t *producer = zper_producer_new (broker->front, "batches", ZPER_MODE_BATCH_ACK);
    int64_t next_offset = 0;
    zper_producer_set_ack_handler (producer, s_collect_batch_ack, &next_offset);
    zper_producer_set_batch (producer, MAX_MESSAGE, 100, 1000);     //  a batch is one frame: <= max_message
    s_produce (producer, 0, 1000);
    assert (zper_producer_sync (producer) == 0);
    assert (zper_producer_acked (producer) == 1000 && next_offset == 1000);
    assert (zper_producer_last_offset (producer) == 999);
    zper_producer_destroy (&producer);

    producer = zper_producer_new (broker->front, "batches", ZPER_MODE_BATCH);
    s_produce (producer, 1000, 10);
    assert (zper_producer_sync (producer) == 0);
    zper_producer_destroy (&producer);

    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "batches");
    zper_consumer_set_max_bytes (consumer, 4096);       //  many READs, each whole messages
    s_expect (consumer, 0, 1010);
    assert (zper_consumer_offset (consumer) == 1009);
    assert (zper_consumer_timestamp (consumer) > 0);
    zper_consumer_destroy (&consumer);
}

//  Seeks by offset, earliest, latest and time; bounds; topics; stats.
static void
test_consume_seeks_offset_time (broker_t *broker)
{
    zper_producer_t *producer = zper_producer_new (broker->front, "seeks", ZPER_MODE_ACK);
    s_produce (producer, 0, 5);
    assert (zper_producer_sync (producer) == 0);
    zclock_sleep (5);                   //  so that no message of either half shares split's ms
    int64_t split = zclock_time ();
    zclock_sleep (5);
    s_produce (producer, 5, 5);
    assert (zper_producer_sync (producer) == 0);
    zper_producer_destroy (&producer);

    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "seeks");
    assert (zper_consumer_seek (consumer, 3) == 0);
    s_expect (consumer, 3, 2);
    assert (zper_consumer_seek_time (consumer, split) == 0);
    assert (zper_consumer_position (consumer) == 5);
    s_expect (consumer, 5, 1);
    assert (zper_consumer_seek_time (consumer, 0) == 0 && zper_consumer_position (consumer) == 0);
    assert (zper_consumer_seek_time (consumer, split + 3600 * 1000) == 0);
    assert (zper_consumer_position (consumer) == 10);
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_EARLIEST) == 0);
    assert (zper_consumer_position (consumer) == 0);
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);
    assert (zper_consumer_position (consumer) == 10);
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EAGAIN);

    assert (zper_consumer_seek (consumer, 11) == 0);    //  past the end: the broker says so
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == ERANGE);
    assert (strstr (zper_consumer_error (consumer), "offset 11"));

    zper_topic_bounds_t bounds;
    assert (zper_consumer_bounds (consumer, NULL, &bounds) == 0);
    assert (bounds.start_offset == 0 && bounds.durable_offset == 10);
    assert (bounds.durable_position > bounds.start_position);
    assert (bounds.first_timestamp < split && bounds.last_timestamp > split);
    assert (zper_consumer_bounds (consumer, "nosuchtopic", &bounds) == 0);
    assert (bounds.durable_offset == bounds.start_offset);

    zlist_t *topics = zper_consumer_topics (consumer);
    assert (topics);
    bool listed = false;
    for (char *topic = (char *) zlist_first (topics); topic; topic = (char *) zlist_next (topics))
        listed |= streq (topic, "seeks");
    assert (listed);
    zlist_destroy (&topics);
    char *stats = zper_consumer_stats (consumer);
    assert (stats && *stats == '{' && strstr (stats, "seeks"));
    zstr_free (&stats);
    zper_consumer_destroy (&consumer);
}

//  Produces messages 0..2 on topic "follow" once started.
static void
s_late_producer (zsock_t *pipe, void *args)
{
    broker_t *broker = (broker_t *) args;
    zsock_signal (pipe, 0);
    zper_producer_t *producer = zper_producer_new (broker->front, "follow", ZPER_MODE_ACK);
    s_produce (producer, 0, 3);
    assert (zper_producer_sync (producer) == 0);
    zper_producer_destroy (&producer);
    free (zstr_recv (pipe));            //  $TERM
}

//  A consumer at the end of a topic receives what is produced afterwards,
//  through READ's long poll.
static void
test_follow_receives_new_messages (broker_t *broker)
{
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "follow");
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);
    assert (zper_consumer_recv (consumer, POLL_STEP_MS) == NULL && errno == EAGAIN);
    zactor_t *producer = zactor_new (s_late_producer, broker);
    s_expect (consumer, 0, 3);
    zactor_destroy (&producer);
    zper_consumer_destroy (&consumer);
}

//  A broker that is gone is an error naming its endpoint, not a hang.
static void
test_broker_down_reported (broker_t *broker)
{
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "down");
    assert (zper_consumer_seek (consumer, ZPER_OFFSET_LATEST) == 0);
    s_broker_terminate (broker);
    const char *front = broker->front;

    assert (zper_consumer_recv (consumer, POLL_STEP_MS) == NULL);
    assert (errno == EHOSTUNREACH || errno == ETIMEDOUT);
    assert (strstr (zper_consumer_error (consumer), "is zperd running?"));
    zper_consumer_destroy (&consumer);
    for (int mode = ZPER_MODE_NONE; mode <= ZPER_MODE_BATCH; mode++) {
        zper_producer_t *producer = zper_producer_new (front, "down", mode);
        int rc = zper_producer_send_mem (producer, "lost", 4);
        if (rc == 0)
            rc = zper_producer_sync (producer);
        assert (rc == -1 && errno == EHOSTUNREACH);
        assert (strstr (zper_producer_error (producer), front));
        zper_producer_destroy (&producer);
    }
}

//  A message over max_message is refused with MESSAGE_TOO_LARGE in every
//  acknowledged mode, and the producer and broker carry on.
static void
test_oversized_message_refused (broker_t *broker)
{
    char *large = (char *) zmalloc (MAX_MESSAGE + 1);
    memset (large, 'x', MAX_MESSAGE + 1);
    for (int mode = ZPER_MODE_ACK; mode <= ZPER_MODE_BATCH_ACK; mode++) {
        zper_producer_t *producer = zper_producer_new (broker->front, "oversized", mode);
        int rc = zper_producer_send_mem (producer, large, MAX_MESSAGE + 1);
        if (mode != ZPER_MODE_REQ) {
            assert (rc == 0);
            rc = zper_producer_sync (producer);
        }
        assert (rc == -1 && errno == EMSGSIZE);
        assert (strstr (zper_producer_error (producer), "MESSAGE_TOO_LARGE"));
        assert (zper_producer_refused (producer) == 1);
        assert (zper_producer_send_mem (producer, "fits", 4) == 0);
        assert (zper_producer_sync (producer) == 0);
        zper_producer_destroy (&producer);
    }
    free (large);

    //  Far over the limit the broker drops the connection unread
    //  (docs/protocol.md 2.1, "Hostile sizes"): no ack comes, sync says so.
    size_t hostile_size = 3 * MAX_MESSAGE + 1024;
    char *hostile = (char *) zmalloc (hostile_size);
    zper_producer_t *producer = zper_producer_new (broker->front, "oversized", ZPER_MODE_ACK);
    zper_producer_set_ack_timeout (producer, POLL_STEP_MS * 5);
    assert (zper_producer_send_mem (producer, hostile, hostile_size) == 0);
    assert (zper_producer_sync (producer) == -1 && errno == ETIMEDOUT);
    assert (strstr (zper_producer_error (producer), "did not acknowledge 1 message"));
    zper_producer_destroy (&producer);
    free (hostile);

    zper_topic_bounds_t bounds;
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, NULL);
    assert (zper_consumer_bounds (consumer, "oversized", &bounds) == 0);
    assert (bounds.durable_offset - bounds.start_offset == 3);      //  only the three "fits"
    zper_consumer_destroy (&consumer);
}

//  ---- CURVE ------------------------------------------------------------------------

//  A producer of topic in mode with alice's (or who's) certificate.
static zper_producer_t *
s_curve_producer (broker_t *broker, const char *topic, int mode, const char *who)
{
    zper_producer_t *producer = zper_producer_new (broker->front, topic, mode);
    assert (producer);
    char *cert = zsys_sprintf ("%s/%s", broker->folder, who);
    assert (zper_producer_set_curve (producer, broker->server_cert, cert) == 0);
    zstr_free (&cert);
    return producer;
}

static zper_consumer_t *
s_curve_consumer (broker_t *broker, const char *topic, const char *who)
{
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, topic);
    assert (consumer);
    char *cert = zsys_sprintf ("%s/%s", broker->folder, who);
    assert (zper_consumer_set_curve (consumer, broker->server_cert, cert) == 0);
    zstr_free (&cert);
    return consumer;
}

//  Against a broker with security.curve = 1: a client with an allowed key
//  writes and reads in every acknowledged mode, the server key given as a
//  file or as the key itself.
static void
test_curve_round_trip (broker_t *broker)
{
    for (int mode = ZPER_MODE_ACK; mode <= ZPER_MODE_BATCH_ACK; mode++) {
        zper_producer_t *producer = s_curve_producer (broker, "curvetrip", mode, "alice");
        s_produce (producer, (mode - 1) * 10, 10);
        assert (zper_producer_sync (producer) == 0);
        assert (zper_producer_acked (producer) == 10);
        zper_producer_destroy (&producer);
    }
    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "curvetrip");
    zcert_t *server = zcert_load (broker->server_cert);
    assert (server);
    assert (zper_consumer_set_curve (consumer, zcert_public_txt (server), broker->probe_cert) == 0);
    zcert_destroy (&server);
    s_expect (consumer, 0, 30);
    zper_consumer_destroy (&consumer);
}

//  Refusals, each with its own errno and reason: no CURVE, a key the broker
//  does not know, a wrong server key, a key without a grant for the topic.
static void
test_curve_refusals_explained (broker_t *broker)
{
    zper_producer_t *producer = zper_producer_new (broker->front, "curveplain", ZPER_MODE_ACK);
    zper_producer_set_timeout (producer, POLL_STEP_MS * 5);
    assert (zper_producer_send_mem (producer, "plain", 5) == -1 && errno == EHOSTUNREACH);
    assert (strstr (zper_producer_error (producer), "uses CURVE"));
    zper_producer_destroy (&producer);

    producer = s_curve_producer (broker, "curvestranger", ZPER_MODE_ACK, "stranger");
    zper_producer_set_timeout (producer, POLL_STEP_MS * 5);
    assert (zper_producer_send_mem (producer, "unknown", 7) == -1 && errno == EHOSTUNREACH);
    assert (strstr (zper_producer_error (producer), "refused this client's key"));
    zper_producer_destroy (&producer);

    zper_consumer_t *consumer = zper_consumer_new (broker->rear, "curvewrong");
    char *stranger = zsys_sprintf ("%s/stranger", broker->folder);
    assert (zper_consumer_set_curve (consumer, stranger, broker->probe_cert) == 0);
    zstr_free (&stranger);
    zper_consumer_set_timeout (consumer, POLL_STEP_MS * 5);
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EHOSTUNREACH);
    assert (strstr (zper_consumer_error (consumer), "is the server key the broker's?"));
    zper_consumer_destroy (&consumer);

    //  bob may write and read "other" only: 109, EACCES, nothing stored
    producer = s_curve_producer (broker, "curvedenied", ZPER_MODE_ACK, "bob");
    assert (zper_producer_send_mem (producer, "denied", 6) == 0);
    assert (zper_producer_sync (producer) == -1 && errno == EACCES);
    assert (strstr (zper_producer_error (producer), "FORBIDDEN (forbidden"));
    assert (zper_producer_refused (producer) == 1);
    zper_producer_destroy (&producer);
    producer = s_curve_producer (broker, "curvedenied", ZPER_MODE_REQ, "bob");
    assert (zper_producer_send_mem (producer, "denied", 6) == -1 && errno == EACCES);
    zper_producer_destroy (&producer);
    producer = s_curve_producer (broker, "other", ZPER_MODE_REQ, "bob");
    assert (zper_producer_send_mem (producer, "granted", 7) == 0);
    zper_producer_destroy (&producer);

    consumer = s_curve_consumer (broker, "curvedenied", "bob");
    assert (zper_consumer_recv (consumer, 0) == NULL && errno == EACCES);
    assert (strstr (zper_consumer_error (consumer), "forbidden"));
    zper_consumer_destroy (&consumer);
    consumer = s_curve_consumer (broker, "curvedenied", "alice");
    zper_topic_bounds_t bounds;
    assert (zper_consumer_bounds (consumer, NULL, &bounds) == 0);
    assert (bounds.durable_offset == bounds.start_offset);      //  nothing of bob's was stored
    zper_consumer_destroy (&consumer);
}

//  set_curve checks what it is given, and a producer that sent takes none.
static void
test_curve_arguments_checked (broker_t *broker)
{
    zper_producer_t *producer = zper_producer_new (broker->front, "curveargs", ZPER_MODE_ACK);
    assert (zper_producer_set_curve (producer, "not-a-key", broker->probe_cert) == -1);
    assert (errno == EINVAL && strstr (zper_producer_error (producer), "not-a-key"));
    char *missing = zsys_sprintf ("%s/nobody", broker->folder);
    assert (zper_producer_set_curve (producer, broker->server_cert, missing) == -1);
    assert (errno == EINVAL && strstr (zper_producer_error (producer), missing));
    zstr_free (&missing);
    //  A secret others can read is refused
    char *secret = zsys_sprintf ("%s/alice_secret", broker->folder);
    assert (chmod (secret, 0644) == 0);
    assert (zper_producer_set_curve (producer, broker->server_cert, broker->probe_cert) == -1);
    assert (errno == EINVAL && strstr (zper_producer_error (producer), "readable by others"));
    assert (chmod (secret, 0600) == 0);
    zstr_free (&secret);
    assert (zper_producer_set_curve (producer, broker->server_cert, broker->probe_cert) == 0);
    assert (zper_producer_send_mem (producer, "one", 3) == 0);
    assert (zper_producer_set_curve (producer, broker->server_cert, broker->probe_cert) == -1);
    assert (errno == EBUSY);
    assert (zper_producer_sync (producer) == 0);
    zper_producer_destroy (&producer);
}

int
main (int argc, char *argv [])
{
    static const struct {
        const char *name;
        void (*run) (broker_t *broker);
        bool curve;
    } tests [] = {
        { "write_modes_round_trip", test_write_modes_round_trip, false },
        { "pipelined_acks_all_arrive", test_pipelined_acks_all_arrive, false },
        { "batch_write_acks_offsets", test_batch_write_acks_offsets, false },
        { "consume_seeks_offset_time", test_consume_seeks_offset_time, false },
        { "follow_receives_new_messages", test_follow_receives_new_messages, false },
        { "broker_down_reported", test_broker_down_reported, false },
        { "oversized_message_refused", test_oversized_message_refused, false },
        { "curve_round_trip", test_curve_round_trip, true },
        { "curve_refusals_explained", test_curve_refusals_explained, true },
        { "curve_arguments_checked", test_curve_arguments_checked, true },
    };
    if (argc != 3) {
        fprintf (stderr, "usage: client_test ZPERD TEST\n");
        return 2;
    }
    s_zperd = argv [1];
    for (size_t index = 0; index < sizeof tests / sizeof tests [0]; index++)
        if (streq (argv [2], tests [index].name)) {
            broker_t *broker = s_broker_start (tests [index].curve);
            tests [index].run (broker);
            s_broker_stop (&broker);
            printf ("client_test %s: OK\n", argv [2]);
            zsys_shutdown ();
            return 0;
        }
    fprintf (stderr, "client_test: unknown test '%s'\n", argv [2]);
    return 2;
}
