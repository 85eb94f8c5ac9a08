/*  =========================================================================
    zper_config - the broker's settings and the seed's config file format

    Format (seed 000): one `key = value` per line, `#` starts a comment
    (outside quotes), values are numbers (an optional Java `L` suffix is
    accepted: 604800000L), "quoted strings" or bare words. Keys are dotted:
    front.bind; the later names writer.* and reader.* are aliases of front.*
    and rear.*. Every key and its default is in docs/operations.md.
    ========================================================================= */

#ifndef ZPER_CONFIG_H_INCLUDED
#define ZPER_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zper_defaults.h"
#include "zper_log.h"

#define ZPER_CONFIG_STRING_MAX  1024

//  A plain value: no allocation, copy freely.
typedef struct {
    char base_dir [ZPER_CONFIG_STRING_MAX];
    uint64_t segment_size;
    uint64_t flush_messages;
    int64_t flush_interval_ms;
    int64_t retention_ms;               //  cleanup_interval (ms) or retain_hours; 0: keep forever
    int64_t retention_bytes;            //  retain_bytes; -1: no limit
    size_t max_message;
    char front_bind [ZPER_CONFIG_STRING_MAX];
    int front_workers;
    int front_io_threads;
    char rear_bind [ZPER_CONFIG_STRING_MAX];
    int rear_workers;
    int rear_io_threads;
    char ack_bind [ZPER_CONFIG_STRING_MAX];
    char relay_bind [ZPER_CONFIG_STRING_MAX];
    char relay_pub_bind [ZPER_CONFIG_STRING_MAX];
    int receive_hwm;
    int send_buffer;                    //  SO_SNDBUF of TCP sockets; 0: OS default
    int receive_buffer;                 //  SO_RCVBUF; 0: OS default
    zper_visibility_t visibility;       //  what readers see: written (default) or durable
    int64_t max_open_partitions;        //  partitions holding open files at once (LRU)
    int64_t max_topics;                 //  topics the broker holds; a new one past it gets 106
    int64_t front_turn_bytes;           //  a worker's group and unsynced bytes (bounds its turn)
    int64_t front_turn_ms;              //  a worker's longest drain before it flushes
    int64_t front_reply_budget;         //  unread reply bytes the front holds per writer
    int64_t front_queue_bytes;          //  hand-off bytes queued per worker
    int64_t rear_output_budget;         //  bytes queued for one rear reader (replies, stream)
    int64_t relay_output_budget;        //  bytes queued for one relay reader
    int64_t relay_pub_output_budget;    //  bytes queued for the relay PUB's subscribers
    int64_t ack_output_budget;          //  bytes queued for the ack PUB's subscribers
    int security_curve;                 //  1: every socket is a CURVE server (docs/security.md)
    char security_cert [ZPER_CONFIG_STRING_MAX];    //  the broker's certificate (public file); "" unset
    char security_keys [ZPER_CONFIG_STRING_MAX];    //  folder of allowed client certificates; "" unset
    int64_t security_reload_ms;         //  how often the folder is checked for changes
    //  Cluster mode (docs/cluster.md): all unused while cluster_etcd is ""
    char cluster_etcd [ZPER_CONFIG_STRING_MAX];     //  etcd endpoints, comma-separated; "" single node
    char cluster_name [ZPER_CONFIG_STRING_MAX];     //  etcd keys under /zper/<name>/
    int64_t cluster_node;                           //  this node's id, 1..ZPER_CLUSTER_NODE_MAX
    char cluster_replication_bind [ZPER_CONFIG_STRING_MAX];  //  followers fetch here
    char cluster_advertise_host [ZPER_CONFIG_STRING_MAX];    //  host others reach us at; "" bind's
    int64_t cluster_lease_ttl;                      //  seconds
    int64_t cluster_poll_ms;
    int64_t cluster_replica_lag_ms;
    int64_t cluster_fetch_wait_ms;
    int64_t cluster_fetch_bytes;
    int64_t cluster_default_partitions;
    int64_t cluster_default_replicas;
    int64_t cluster_max_partitions;
    int64_t cluster_etcd_timeout_ms;
    //  Consumer groups (docs/client.md, Groups)
    int64_t groups_max_groups;
    int64_t groups_max_members;
    int64_t groups_max_partitions;
    int64_t groups_max_offsets;
    int64_t groups_min_session_ms;
    int64_t groups_max_session_ms;
    //  Metrics (docs/operations.md, Metrics)
    char metrics_listen [ZPER_CONFIG_STRING_MAX];   //  host:port; "" no HTTP endpoint
    int64_t metrics_max_clients;
    int64_t metrics_max_peers;
} zper_config_t;

//  Fill config with the built-in defaults (zper_defaults.h).
void
    zper_config_init (zper_config_t *config);

//  Read a config file over the values already in config. Returns 0, or -1
//  with a one-line message in error ("zper.conf:12: unknown key
//  'flush_msgs' (did you mean 'flush_messages'?)").
int
    zper_config_load (zper_config_t *config, const char *path, char *error, size_t error_size);

//  Parse config text (as in a file named name, for messages). Same contract.
//  After the last line the cluster.* keys that depend on each other are
//  checked ("test.conf: cluster.etcd is set but cluster.node is not: ...").
int
    zper_config_parse (zper_config_t *config, const char *name, const char *text,
                       char *error, size_t error_size);

//  The log engine's settings derived from config.
void
    zper_config_log_config (const zper_config_t *config, zper_log_config_t *log_config);

//  Point every endpoint at inproc://<prefix>-<component>, for a broker that
//  lives inside one process with its clients (selftests, embedding).
void
    zper_config_inproc (zper_config_t *config, const char *prefix);

//  endpoint as other nodes and clients dial it: its host replaced by
//  cluster.advertise_host when that is set (tcp:// and ws:// endpoints),
//  else endpoint itself. Returns 0, or -1 when out_size is too small.
int
    zper_config_advertised (const zper_config_t *config, const char *endpoint, char *out,
                            size_t out_size);

//  Print every key with its current value, in config file format.
void
    zper_config_print (const zper_config_t *config, FILE *stream);

//  Self test of this class
void
    zper_config_test (bool verbose);

#endif
