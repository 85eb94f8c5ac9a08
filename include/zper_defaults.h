/*  =========================================================================
    zper_defaults.h - every constant and default of ZPER, in one place

    Why one header: a reader who wants to know "how big, how often, which
    port" finds it here, and no magic number hides in a .c file. Each area
    keeps its constants in its own section below.
    ========================================================================= */

#ifndef ZPER_DEFAULTS_H_INCLUDED
#define ZPER_DEFAULTS_H_INCLUDED

#define ZPER_VERSION_STRING         "0.1.0"

#include "zper_protocol.h"    //  wire values shared with clients: modes, status codes, sizes

//  ---- Log engine (src/log) ------------------------------------------------
#define ZPER_DEFAULT_BASE_DIR           "./data"
#define ZPER_DEFAULT_SEGMENT_SIZE       (512ULL * 1024 * 1024)  //  seed: 536870912
#define ZPER_DEFAULT_FLUSH_MESSAGES     10000                   //  seed
#define ZPER_DEFAULT_FLUSH_INTERVAL_MS  1000                    //  seed
#define ZPER_DEFAULT_CLEANUP_INTERVAL_MS (7LL * 24 * 3600 * 1000) //  seed: one week of retention
#define ZPER_DEFAULT_RETENTION_BYTES    -1                      //  no size limit
#define ZPER_DEFAULT_MAX_MESSAGE        (8 * 1024 * 1024)       //  spec: 8 MiB per frame and message
#define ZPER_DEFAULT_VISIBILITY        ZPER_VISIBILITY_WRITTEN //  readers see written data, like Kafka's
#define ZPER_TOPIC_NAME_MAX             249                     //  Kafka's limit, for the same reasons
#define ZPER_PARTITION_DEFAULT          "0"                     //  broker topics have one partition
#define ZPER_LOG_INDEX_INTERVAL_BYTES   4096                    //  one index and time entry per this many bytes of records
#define ZPER_LOG_BATCH_MAX_BYTES        (256 * 1024)            //  an open batch is sealed (written, not synced) at this size
#define ZPER_LOG_BATCH_KEEP_BYTES       (64 * 1024)             //  larger batch buffers are freed once written
#define ZPER_LOG_CHECKPOINT_BYTES       (64ULL * 1024 * 1024)   //  checkpoint after this many synced bytes: bounds crash recovery
#define ZPER_LOG_MAPPED_SEGMENTS_MAX    16                      //  segments a partition keeps mapped for readers (older ones unmapped)
#define ZPER_LOG_RECORD_MAX_BYTES       (1ULL << 30)            //  largest record, so largest max_message: 1 GiB
#define ZPER_DIR_LOCK_FILE              ".lock"                 //  in base_dir: flock'd by the one process using it (Kafka's name)
#define ZPER_DEFAULT_MAX_OPEN_PARTITIONS 1024                   //  partitions holding open files at once (LRU; the rest keep offsets only)
#define ZPER_DEFAULT_MAX_TOPICS         100000                  //  topic folders under base_dir; a new topic past it gets 106
#define ZPER_LOG_PARTITION_FDS          5                       //  descriptors an open partition holds: 3 writing + 2 index readers
#define ZPER_LOG_FDS_RESERVED           256                     //  RLIMIT_NOFILE kept for sockets, connections, transient opens
#define ZPER_LOG_EVICT_ON_EMFILE        16                      //  idle partitions closed at most per use, and before the one retry after EMFILE

//  ---- Tests (src/common/zper_test_ports.c; tests/broker/zperd_harness.py agrees) --
#define ZPER_TEST_PORT_FIRST            20000                   //  test servers' ports: below Linux's ephemeral
#define ZPER_TEST_PORT_LAST             32000                   //  range (32768-60999), which outgoing connections use
#define ZPER_TEST_PORT_LOCKS            "zper-test-ports"       //  TMPDIR/this/PORT: a port's reservation (flock)

//  ---- Broker ports (loopback by default: nothing listens outside until configured) --
#define ZPER_DEFAULT_FRONT_BIND         "tcp://127.0.0.1:5555"
#define ZPER_DEFAULT_REAR_BIND          "tcp://127.0.0.1:5556"
#define ZPER_DEFAULT_ACK_BIND           "tcp://127.0.0.1:5557"
#define ZPER_DEFAULT_RELAY_BIND         "tcp://127.0.0.1:5558"
#define ZPER_DEFAULT_FRONT_WORKERS      3
#define ZPER_DEFAULT_REAR_WORKERS       3
#define ZPER_DEFAULT_IO_THREADS         1

//  ---- Dafka (src/dafka): the reference defaults of spec/dafka-wire.md, then ZPER's own --
//  Addresses are ZPER's, not the reference's (tower tcp://*:5556 / :5557, peers binding
//  tcp://*:* with beacon/address ""): loopback only, like zperd, and on ports clear of
//  zperd's 5555-5559, so both run on one machine (docs/dafka.md, "Where ZPER deliberately
//  differs"). A peer binds its data sockets on beacon/address; "" set explicitly restores
//  the reference: every interface, the tower picks the advertised host.
#define ZPER_DAFKA_TOWER_SUB_ADDRESS    "tcp://127.0.0.1:5570"  //  tower/sub_address (its XSUB)
#define ZPER_DAFKA_TOWER_PUB_ADDRESS    "tcp://127.0.0.1:5571"  //  tower/pub_address (its XPUB)
#define ZPER_DAFKA_BEACON_SUB_ADDRESS   "tcp://127.0.0.1:5570"  //  beacon/sub_address: tower XSUB
#define ZPER_DAFKA_BEACON_PUB_ADDRESS   "tcp://127.0.0.1:5571"  //  beacon/pub_address: tower XPUB
#define ZPER_DAFKA_BEACON_ADDRESS       "127.0.0.1"             //  beacon/address: advertised and bound
#define ZPER_DAFKA_BEACON_INTERVAL_MS   1000                    //  beacon/interval
#define ZPER_DAFKA_BEACON_TIMEOUT_MS    4000                    //  beacon/timeout
#define ZPER_DAFKA_HEAD_INTERVAL_MS     1000                    //  producer/head_interval
#define ZPER_DAFKA_HIGH_WATERMARK       1000000                 //  producer|consumer|store/high_watermark
#define ZPER_DAFKA_TERMINATE_UNACKED    0                       //  producer/terminate_unacked
#define ZPER_DAFKA_OFFSET_RESET         "latest"                //  consumer/offset/reset
#define ZPER_DAFKA_STORE_DB             "storedb"               //  store/db, relative to the cwd
#define ZPER_DAFKA_WELCOME              "W"                     //  tower XPUB welcome message
#define ZPER_DAFKA_FETCH_BLOCK          100000                  //  a FETCH asks up to the next multiple
#define ZPER_DAFKA_FETCH_SUPPRESS_MS    1000                    //  one identical FETCH per second
//  ZPER's additions (docs/dafka.md says why each exists)
#define ZPER_DAFKA_MIN_ACKS             1                       //  producer/min_acks: distinct stores
#define ZPER_DAFKA_FETCH_RETRY_MS       500                     //  consumer: look for gaps to ask this often
#define ZPER_DAFKA_FETCH_TIMEOUT_MS     1000                    //  consumer/fetch_timeout: re-ask a gap whose
                                                                //  answer made no progress for this long
#define ZPER_DAFKA_HEADS_REFRESH_MS     1000                    //  earliest consumer: GET_HEADS again, to learn
                                                                //  partitions whose producer it never heard
#define ZPER_DAFKA_BATCH                1024                    //  messages drained per socket wake-up
#define ZPER_DAFKA_READ_BYTES           (1024 * 1024)           //  store reader view size per step
#define ZPER_DAFKA_STRING_MAX           255                     //  codec: 1-byte length strings
#define ZPER_DAFKA_STORE_TICK_MS        50                      //  store: flush policy + ACK check
#define ZPER_DAFKA_STORE_QUIET_MS       5                       //  store: a partition's input paused this long is flushed and ACKed
#define ZPER_DAFKA_STOP_POLL_MS         100                     //  producer pipe: re-check the signal flag
#define ZPER_DAFKA_STORE_MAX_PARTITIONS 10000                   //  store/max_partitions: tracked at once
#define ZPER_DAFKA_STORE_FETCH_GIVE_UP_MS 60000                 //  store/fetch_give_up: a partition silent this
                                                                //  long is no longer fetched, then forgotten
#define ZPER_DAFKA_STORE_MAX_FETCHES    1024                    //  store/max_fetches: FETCH answers in progress
#define ZPER_DAFKA_FETCH_COUNT_MAX      ZPER_DAFKA_FETCH_BLOCK  //  a FETCH's count is capped at the protocol's
                                                                //  own bound: at most 100,001 records (inclusive)
#define ZPER_DAFKA_SERVE_SLICE          1024                    //  store: records served per loop turn, all FETCHes
#define ZPER_DAFKA_SERVE_STEP           128                     //  ...and per FETCH before the next one's turn
#define ZPER_DAFKA_LOG_NAME_MAX         64                      //  bytes of a peer's name quoted in a log line
#define ZPER_DAFKA_KEY_FILE             "dafka.key"             //  store, CURVE: the key a partition is bound to, in its folder
#define ZPER_DAFKA_TOWER_MAX_UUIDS      100000                  //  tower/max_uuids, CURVE: uuids whose key it remembers

//  ---- Client (src/client, the zper CLI) ----------------------------------
#define ZPER_CLIENT_TIMEOUT_MS          1000    //  reach the broker / answer a request, else an error
#define ZPER_CLIENT_ACK_TIMEOUT_MS      5000    //  wait for durability: well over the default flush interval
#define ZPER_CLIENT_BATCH_BYTES         (256 * 1024)    //  native batch: send when this full...
#define ZPER_CLIENT_BATCH_MESSAGES      10000           //  ...or holding this many messages...
#define ZPER_CLIENT_BATCH_LINGER_MS     10              //  ...or when its first message is this old
#define ZPER_CLIENT_MAX_IN_FLIGHT       10000   //  mode 1: acks owed before a send waits (an fdatasync covers
                                                //  what is in flight: a larger window, larger groups)
#define ZPER_CLIENT_MAX_BATCHES_IN_FLIGHT 1000  //  mode 3: batch acks owed before a send waits
#define ZPER_CLIENT_MAX_REPLY_BYTES_IN_FLIGHT (8 * 1024 * 1024)  //  mode 1: ...or once the owed acks, which
                                                //  echo each message's first frame, weigh this (a
                                                //  quarter of the default front.reply_budget)
#define ZPER_CLIENT_DRAIN_SENDS         64      //  mode 1: read waiting acks after this many sends...
#define ZPER_CLIENT_DRAIN_INTERVAL_MS   1       //  ...or when they were last read this long ago
#define ZPER_CLIENT_READ_BYTES          (1024 * 1024)   //  largest READ batch a consumer asks for
#define ZPER_CLIENT_FOLLOW_WAIT_MS      1000    //  long poll of a following consumer (READ max_wait_ms)
#define ZPER_CLIENT_IDLE_POLL_MS        100     //  zper produce: read acks this often while input is idle
#define ZPER_CLIENT_ERROR_MAX           256     //  longest error line kept by a client object

//  ---- Broker (src/front, src/rear, src/manager, tools/zperd.c) -------------
#define ZPER_DEFAULT_RELAY_PUB_BIND     "tcp://127.0.0.1:5559"  //  SUB tailing: [topic][frames...]
#define ZPER_DEFAULT_RECEIVE_HWM        1000                    //  libzmq's default
#define ZPER_DEFAULT_SOCKET_BUFFER      0                       //  0: the OS default (SO_SNDBUF/SO_RCVBUF)
#define ZPER_CONFIG_WORKERS_MAX         64                      //  front.workers, rear.workers
#define ZPER_CONFIG_IO_THREADS_MAX      64
#define ZPER_CONFIG_LINE_MAX            4096                    //  longest config line accepted
#define ZPER_CONFIG_FILE_MAX            (1024 * 1024)           //  largest config file accepted
#define ZPER_FRONT_DRAIN_MAX            1024                    //  writes the front drains per turn, hand-offs a worker drains per group
#define ZPER_FRONT_GROUP_MESSAGES_MAX   65536                   //  stored messages per group and per flush note:
                                                                //  bounds a worker's turn, so heartbeats stay answered
#define ZPER_FRONT_FRAME_SLACK          1024                    //  wire frame limit: 2 x max_message + this
#define ZPER_FRONT_REPLY_HWM            1000000                 //  unread replies queued per writer: x 64 B, over the
                                                                //  default front.reply_budget, which so binds first
#define ZPER_DEFAULT_FRONT_TURN_BYTES   (32 * 1024 * 1024)      //  front.turn_bytes: hand-off bytes a worker takes per group,
                                                                //  and unsynced bytes that make it flush (bounds a fdatasync)
#define ZPER_DEFAULT_FRONT_TURN_MS      100                     //  front.turn_ms: longest a worker drains before it flushes
#define ZPER_DEFAULT_FRONT_REPLY_BUDGET (32 * 1024 * 1024)      //  front.reply_budget: unread reply bytes held per writer
#define ZPER_FRONT_SLOW_ID_MAX          255                     //  a 108 reply echoes ids up to this, else an empty id:
                                                                //  it must fit in what a slow writer has left
#define ZPER_FRONT_REPLY_FRAMES_MAX     8                       //  frames of a worker's reply (routing id, REQ delimiter, 4)
#define ZPER_FRONT_REPLY_PACK_BYTES     (64 * 1024)             //  a worker sends its packed replies once they hold this much
#define ZPER_FRONT_HANDOFF_BYTES        (256 * 1024)            //  a worker's hand-off is sent once its data holds this much
#define ZPER_DEFAULT_FRONT_QUEUE_BYTES  (64 * 1024 * 1024)      //  front.queue_bytes: hand-off bytes queued per worker
                                                                //  before the front stops reading writes
#define ZPER_FRONT_QUEUE_WAIT_MS        1                       //  the front's pause while a worker's queue is full
#define ZPER_FRONT_HANDOFF_START_BYTES  (16 * 1024)             //  first allocation of a hand-off buffer (it doubles)
#define ZPER_MALLOC_MMAP_THRESHOLD      (32 * 1024 * 1024)      //  zperd, zper store: larger blocks only are mmap'd (glibc's max)
#define ZPER_MALLOC_TRIM_THRESHOLD      (256 * 1024 * 1024)     //  zperd: free heap kept before returning it
#define ZPER_FRONT_IDENTITY_CACHE       64                      //  parsed identities kept by routing id (direct-mapped)
#define ZPER_FRONT_COMMAND_MAX          16                      //  longest pipe command a worker reads (PING, $TERM)
#define ZPER_FRONT_RECORDS_BYTES        256                     //  a topic's reply records and ack entries start this large (they grow as
                                                                //  needed: small, so that 100,000 idle topics hold little memory)
#define ZPER_REAR_STREAM_WINDOW_BYTES   (1024 * 1024)           //  log bytes a stream hands over per chunk
#define ZPER_REAR_STREAM_RETRY_MS       50                      //  longest wait before retrying a stalled reader
#define ZPER_REAR_STREAM_RETRY_MIN_MS   1                       //  first retry of a stalled reader (then doubles)
#define ZPER_REAR_SEND_HWM              10000                   //  messages queued per reader: one window of
                                                                //  ~100 B messages, so a stream is not paced by
                                                                //  retries while its reader keeps up
#define ZPER_REAR_COPY_FRAME_MAX        32                      //  stored frames up to this are copied, not lent:
                                                                //  libzmq keeps them inline without an allocation
#define ZPER_REAR_READ_MAX_WAIT_MS      60000                   //  cap on READ's long poll
#define ZPER_REAR_BUS_LINGER_MS         1000                    //  a rear worker or the relay idle this long leaves
                                                                //  the visible bus (no wake-up per write)
#define ZPER_REAR_BUS_SETTLE_MS         10                      //  after subscribing to the bus, look at the log
                                                                //  once (libzmq applies a subscription at the
                                                                //  publisher's send, up to ~3M TSC ticks late)
#define ZPER_OFFSET_DEFAULT_MAX_ENTRIES 1024                    //  OFFSET without max_entries
#define ZPER_RELAY_WINDOW_MESSAGES      256                     //  pushed per reader per turn
#define ZPER_RELAY_RETRY_MS             50                      //  longest wait before retrying a full reader
#define ZPER_RELAY_RETRY_MIN_MS         1                       //  first retry of a full reader (then doubles)
#define ZPER_RELAY_NOTES_PER_WAKE       1024                    //  bus notes the relay drains before it sends
//  Output budgets (zper_output.h): bytes queued in libzmq for a peer that does not read, in the
//  tens of MiB like NATS' slow-consumer and Redis' output-buffer limits (docs/operations.md, Limits)
#define ZPER_DEFAULT_REAR_OUTPUT_BUDGET (32 * 1024 * 1024)      //  rear.output_budget: per reader (replies, stream)
#define ZPER_DEFAULT_RELAY_OUTPUT_BUDGET (32 * 1024 * 1024)     //  relay.output_budget: per relay reader
#define ZPER_DEFAULT_RELAY_PUB_OUTPUT_BUDGET (32 * 1024 * 1024) //  relay.pub.output_budget: the relay PUB's subscribers
#define ZPER_DEFAULT_ACK_OUTPUT_BUDGET  (32 * 1024 * 1024)      //  ack.output_budget: the ack PUB's subscribers
#define ZPER_OUTPUT_FRAME_COST          64                      //  bytes libzmq holds per queued frame besides its data
#define ZPER_OUTPUT_CHARGE_STEP         (64 * 1024)             //  stream messages are charged in steps this large
#define ZPER_OUTPUT_SWEEP_MS            1000                    //  rear: budgets of readers holding nothing are forgotten
#define ZPER_HEARTBEAT_INTERVAL_MS      1000                    //  manager -> component PING
#define ZPER_HEARTBEAT_LIVENESS         3                       //  missed PONGs before the broker stops
#define ZPER_STATS_INTERVAL_MS          1000                    //  rate computation period
#define ZPER_RETENTION_CHECK_MAX_MS     60000                   //  retention runs at least this often
#define ZPER_RETENTION_STEP_MS          50                      //  work of one retention step in the manager's loop
#define ZPER_SHUTDOWN_LINGER_MS         1000                    //  time to deliver last replies on stop
#define ZPER_SHUTDOWN_DEADLINE_MS       30000                   //  a stop that takes longer is forced
#define ZPER_LOG_INTERVAL_MS            1000                    //  a repeated client error is logged once per
#define ZPER_MANAGER_TICK_MS            100                     //  how often the stop request is checked
#define ZPER_REQUEST_FRAME_MAX          (64 * 1024)             //  rear/relay: larger frames drop the peer
//  ---- security (docs/security.md) ----
#define ZPER_SECURITY_RELOAD_MS         1000                    //  security.reload_ms: the allowed-keys folder is rechecked
#define ZPER_DEFAULT_SECURITY_CURVE     0                       //  security.curve: off; 1 makes every zperd socket a CURVE server
#define ZPER_SECURITY_RELOAD_MAX_MS     3600000                 //  security.reload_ms upper bound: one hour
#define ZPER_SECURITY_ZAP_DOMAIN        "zper"                  //  the ZAP domain of every CURVE server socket
#define ZPER_SECURITY_LOGGED_PEERS_MAX  1024                    //  refusing peers logged by address; later ones only counted
//  ---- cluster mode (docs/cluster.md) ----
#define ZPER_DEFAULT_CLUSTER_NAME       "zper"                  //  cluster.name: etcd keys live under /zper/<name>/
#define ZPER_CLUSTER_NODE_MAX           65535                   //  cluster.node: ids 1..this
#define ZPER_DEFAULT_REPLICATION_BIND   "tcp://127.0.0.1:5560"  //  cluster.replication.bind: followers fetch here
#define ZPER_DEFAULT_LEASE_TTL_S        5                       //  cluster.lease_ttl: a dead node's leaderships end within this
#define ZPER_LEASE_TTL_MIN_S            2                       //  etcd refuses shorter leases (its election timeout)
#define ZPER_LEASE_TTL_MAX_S            60
#define ZPER_DEFAULT_CLUSTER_POLL_MS    200                     //  cluster.poll_ms: how often etcd's revision is checked
#define ZPER_DEFAULT_REPLICA_LAG_MS     10000                   //  cluster.replica_lag_ms: a follower not caught up this long leaves the ISR
#define ZPER_DEFAULT_FETCH_WAIT_MS      500                     //  cluster.fetch_wait_ms: a follower's fetch waits this long for data
#define ZPER_DEFAULT_FETCH_BYTES        (1024 * 1024)           //  cluster.fetch_bytes: records per follower fetch
#define ZPER_DEFAULT_CLUSTER_PARTITIONS 3                       //  cluster.default_partitions: CREATE without a count
#define ZPER_DEFAULT_CLUSTER_REPLICAS   3                       //  cluster.default_replicas: CREATE without a count
#define ZPER_DEFAULT_CLUSTER_MAX_PARTITIONS 10000               //  cluster.max_partitions: partitions (all topics) a node tracks
#define ZPER_DEFAULT_ETCD_TIMEOUT_MS    1000                    //  cluster.etcd_timeout_ms: one etcd request, per endpoint
#define ZPER_ETCD_ENDPOINTS_MAX         16                      //  endpoints in cluster.etcd
#define ZPER_ETCD_ERROR_MAX             512                     //  zper_etcd_error: one log line
#define ZPER_ETCD_TEST_ATTEMPTS         3                       //  zper_etcd_test_start: port pairs tried (one may be taken)
#define ZPER_ETCD_TEST_START_MS         20000                   //  zper_etcd_test_start: etcd answers within this
#define ZPER_ETCD_TEST_POLL_MS          100                     //  zper_etcd_test_start: how often it is asked
#define ZPER_ETCD_TEST_STOP_MS          5000                    //  zper_etcd_test_stop: SIGTERM, then SIGKILL after this
#define ZPER_CLUSTER_PARTITIONS_MAX     1024                    //  partitions of one topic
#define ZPER_CLUSTER_REPLICAS_MAX       16                      //  replicas of one partition
#define ZPER_CLUSTER_BASE_NAME_MAX      58                      //  a clustered topic's name: T.i must fit ZPER_TOPIC_MAX
#define ZPER_EPOCHS_MAX                 1024                    //  leader epochs a partition remembers (oldest dropped)
#define ZPER_EPOCHS_FILE                "leader-epochs"         //  in the partition's folder
#define ZPER_REPLICATION_TICK_MS        50                      //  replication: table generation and timers checked this often
#define ZPER_REPLICATION_SWEEP_MS       250                     //  replication: every led partition's HW and ISR rechecked
#define ZPER_REPLICATION_RETRY_MS       100                     //  follower: after an error reply, before asking again
#define ZPER_REPLICATION_GRACE_MS       2000                    //  follower: a request unanswered fetch_wait_ms + this: reconnect
#define ZPER_REPLICATION_COMMIT_HWM     100000                  //  replication -> front worker HW moves queued
#define ZPER_CLUSTER_PRODUCER_RETRIES   20                      //  METADATA refreshes before a message counts as refused
#define ZPER_CLUSTER_PRODUCER_BACKOFF_MS 1500                   //  between refreshes of one partition: 20 x 1.5 s = 30 s
#define ZPER_CLI_REASSIGN_WAIT_MS       600000                  //  zper topics reassign --wait gives up after this
#define ZPER_CLI_REASSIGN_POLL_MS       500                     //  ... asking METADATA this often
//  Consumer groups (docs/client.md, Groups; docs/protocol.md 3.3)
#define ZPER_DEFAULT_GROUPS_MAX_GROUPS  10000                   //  groups.max_groups: groups with members or committed offsets
#define ZPER_DEFAULT_GROUPS_MAX_MEMBERS 1000                    //  groups.max_members: live members of one group
#define ZPER_DEFAULT_GROUPS_MAX_PARTITIONS 1024                 //  groups.max_partitions: partitions one group shares out
#define ZPER_DEFAULT_GROUPS_MAX_OFFSETS 100000                  //  groups.max_offsets: committed (group, topic) entries kept
#define ZPER_DEFAULT_GROUPS_MIN_SESSION_MS 1000                 //  groups.min_session_ms: shortest session a member may ask
#define ZPER_DEFAULT_GROUPS_MAX_SESSION_MS 300000               //  groups.max_session_ms: longest session a member may ask
#define ZPER_GROUP_MEMBER_ID_MAX        64                      //  bytes of a member id
#define ZPER_GROUP_NAME_MAX             249                     //  bytes of a group name (a topic's characters)
#define ZPER_GROUP_PARTITION_REFRESH_MS 1000                    //  a group's partition list is looked up again at most this often
#define ZPER_OFFSETS_FILE               "__consumer_offsets"    //  in base_dir: the committed offsets (docs/storage.md)
#define ZPER_OFFSETS_COMPACT_SLACK      1024                    //  offsets file compacted when records > 2 x entries + this
#define ZPER_OFFSETS_COMPACT_RETRY      64                      //  after a failed compaction: records appended before it is tried again
#define ZPER_OFFSETS_REWRITE_BUFFER     (64 * 1024)             //  compaction writes the new file in pieces of this size
#define ZPER_GROUP_SESSION_MS           10000                   //  libzper group consumer: session timeout it asks for
#define ZPER_GROUP_COMMIT_INTERVAL_MS   1000                    //  libzper group consumer: auto-commit interval
#define ZPER_GROUP_POLL_WAIT_MS         100                     //  libzper group consumer: long poll on one partition when all were empty
//  Metrics (docs/operations.md, Metrics)
#define ZPER_DEFAULT_METRICS_LISTEN     ""                      //  metrics.listen: host:port of the Prometheus endpoint; "" off
#define ZPER_DEFAULT_METRICS_MAX_CLIENTS 16                     //  metrics.max_clients: HTTP connections at once
#define ZPER_DEFAULT_METRICS_MAX_PEERS  100                     //  metrics.max_peers: per-connection series (the busiest)
#define ZPER_METRICS_TIMEOUT_S          10                      //  an idle HTTP connection is closed after this
#define ZPER_OUTPUT_SOCKET_MAX          16                      //  bytes of an output's socket label ("relay.pub") with its NUL
#define ZPER_OUTPUT_PEER_MAX            (2 * 255 + 1)           //  bytes of an output's peer label: a routing id in hex, with its NUL
//  fdatasync latency histogram of segment syncs (STATS "fsync"): upper bounds of its buckets, in us
#define ZPER_SYNC_HISTOGRAM_BUCKETS     12
#define ZPER_SYNC_HISTOGRAM_BOUNDS_US   { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, \
                                          100000, 250000, 1000000 }
#define ZPER_TOP_INTERVAL_MS            1000                    //  zper top: refresh period
#define ZPER_EXIT_USAGE                 2                       //  bad arguments or configuration
#define ZPER_EXIT_UNRESPONSIVE          3                       //  a component stopped answering
#define ZPER_EXIT_SECOND_SIGNAL         130                     //  like a shell's interrupted command

#endif
