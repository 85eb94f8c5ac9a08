/*  =========================================================================
    zper_defaults.h - every constant and default of ZPER, in one place

    Why one header: a reader who wants to know "how big, how often, which
    port" finds it here, and no magic number hides in a .c file. Each area
    keeps its constants in its own section below.
    ========================================================================= */

#ifndef ZPER_DEFAULTS_H_INCLUDED
#define ZPER_DEFAULTS_H_INCLUDED

#define ZPER_VERSION_STRING         "0.1.0"

//  ---- Log engine (src/log) ------------------------------------------------
#define ZPER_DEFAULT_BASE_DIR           "./data"
#define ZPER_DEFAULT_SEGMENT_SIZE       (512ULL * 1024 * 1024)  //  seed: 536870912
#define ZPER_DEFAULT_FLUSH_MESSAGES     10000                   //  seed
#define ZPER_DEFAULT_FLUSH_INTERVAL_MS  1000                    //  seed
#define ZPER_DEFAULT_CLEANUP_INTERVAL_MS (7LL * 24 * 3600 * 1000) //  seed: one week of retention
#define ZPER_DEFAULT_RETENTION_BYTES    -1                      //  no size limit
#define ZPER_DEFAULT_MAX_MESSAGE        (8 * 1024 * 1024)       //  spec: 8 MiB per frame and message
#define ZPER_TOPIC_NAME_MAX             249                     //  Kafka's limit, for the same reasons
#define ZPER_PARTITION_DEFAULT          "0"                     //  broker topics have one partition

//  ---- Broker ports (loopback by default: nothing listens outside until configured) --
#define ZPER_DEFAULT_FRONT_BIND         "tcp://127.0.0.1:5555"
#define ZPER_DEFAULT_REAR_BIND          "tcp://127.0.0.1:5556"
#define ZPER_DEFAULT_ACK_BIND           "tcp://127.0.0.1:5557"
#define ZPER_DEFAULT_RELAY_BIND         "tcp://127.0.0.1:5558"
#define ZPER_DEFAULT_FRONT_WORKERS      3
#define ZPER_DEFAULT_REAR_WORKERS       3
#define ZPER_DEFAULT_IO_THREADS         1

#endif
