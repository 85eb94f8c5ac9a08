/*  =========================================================================
    zper_dafka_config - Dafka settings: a CZMQ ZPL tree with checked getters

    The keys are the reference's (spec/dafka-wire.md, "Configuration keys")
    plus ZPER's few additions; docs/dafka.md lists them all. The numeric
    keys are listed once here so that a typo in a value is caught at start-up.
    ========================================================================= */

#include "zper_dafka_config.h"
#include "zper_dafka_security.h"
#include "zper_metrics.h"
#include <stdlib.h>

static const char *s_numeric_keys [] = {
    "tower/verbose", "tower/max_uuids", "beacon/verbose", "beacon/interval", "beacon/timeout",
    "producer/verbose", "producer/head_interval", "producer/high_watermark",
    "producer/terminate_unacked", "producer/min_acks",
    "consumer/verbose", "consumer/high_watermark", "consumer/fetch_timeout",
    "store/verbose", "store/high_watermark", "store/flush_messages", "store/flush_interval",
    "store/segment_size", "store/retention_ms",
    "store/max_partitions", "store/fetch_give_up", "store/max_fetches", "store/metrics/max_clients",
    "security/curve", "security/reload_ms", "security/verbose",
    NULL
};

static bool
s_parse (const char *text, int64_t *value)
{
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *value = parsed;
    return true;
}

//  The numbers alone: a file may leave security/cert to the command line.
static int
s_check_numbers (zconfig_t *config, const char *name)
{
    for (int index = 0; s_numeric_keys [index]; index++) {
        const char *text = zconfig_get (config, s_numeric_keys [index], NULL);
        int64_t value;
        if (text && (!s_parse (text, &value) || value < 0)) {
            fprintf (stderr, "%s: %s: '%s' is not a non-negative integer\n",
                     name, s_numeric_keys [index], text);
            return -1;
        }
    }
    return 0;
}

//  The store's Prometheus endpoint: "" (off) or host:port, at least one client.
static int
s_check_metrics (zconfig_t *config, const char *name)
{
    const char *listen = zconfig_get (config, "store/metrics/listen", "");
    char reason [256];
    if (*listen && zper_metrics_listen_check (listen, reason, sizeof reason)) {
        fprintf (stderr, "%s: store/metrics/listen: %s\n", name, reason);
        return -1;
    }
    if (zper_dafka_config_number (config, "store/metrics/max_clients", 1) < 1) {
        fprintf (stderr, "%s: store/metrics/max_clients: must be at least 1\n", name);
        return -1;
    }
    return 0;
}

int
zper_dafka_config_check (zconfig_t *config, const char *name)
{
    return s_check_numbers (config, name) || s_check_metrics (config, name)
        || zper_dafka_security_check (config, name)? -1: 0;
}

zconfig_t *
zper_dafka_config_load (const char *path)
{
    if (!path)
        return zconfig_new ("root", NULL);
    if (!zsys_file_exists (path)) {
        fprintf (stderr, "%s: cannot read the configuration file\n", path);
        return NULL;
    }
    zconfig_t *config = zconfig_load (path);
    if (!config)
        fprintf (stderr, "%s: not a valid ZPL file (CZMQ zconfig format)\n", path);
    else
    if (s_check_numbers (config, path))
        zconfig_destroy (&config);
    return config;
}

const char *
zper_dafka_config_string (zconfig_t *config, const char *path, const char *default_value)
{
    return zconfig_get (config, path, default_value);
}

int64_t
zper_dafka_config_number (zconfig_t *config, const char *path, int64_t default_value)
{
    const char *text = zconfig_get (config, path, NULL);
    int64_t value;
    return text && s_parse (text, &value)? value: default_value;
}

void
zper_dafka_config_set (zconfig_t *config, const char *path, const char *value)
{
    zconfig_put (config, path, value);
}

void
zper_dafka_config_test (bool verbose)
{
    FILE *file = fopen ("dafka.cfg", "w");
    assert (file);
    fprintf (file, "beacon\n    interval = 250\n    address = \"127.0.0.1\"\n"
                   "consumer\n    offset\n        reset = earliest\n");
    fclose (file);
    zconfig_t *config = zper_dafka_config_load ("dafka.cfg");
    assert (config);
    assert (zper_dafka_config_number (config, "beacon/interval", 1000) == 250);
    assert (zper_dafka_config_number (config, "beacon/timeout", 4000) == 4000);
    assert (streq (zper_dafka_config_string (config, "beacon/address", ""), "127.0.0.1"));
    assert (streq (zper_dafka_config_string (config, "consumer/offset/reset", "latest"), "earliest"));
    zper_dafka_config_set (config, "store/metrics/listen", "127.0.0.1:9101");
    assert (zper_dafka_config_check (config, "test") == 0);
    zper_dafka_config_set (config, "store/metrics/listen", "9101");
    assert (zper_dafka_config_check (config, "test (expected)") == -1);
    zper_dafka_config_set (config, "store/metrics/listen", "");
    zper_dafka_config_set (config, "producer/head_interval", "x10");
    assert (zper_dafka_config_check (config, "test") == -1);
    zconfig_destroy (&config);

    assert (zper_dafka_config_load ("missing.cfg") == NULL);
    file = fopen ("bad.cfg", "w");
    assert (file);
    fprintf (file, "beacon\n    interval = soon\n");
    fclose (file);
    assert (zper_dafka_config_load ("bad.cfg") == NULL);
    config = zper_dafka_config_load (NULL);
    assert (config && zper_dafka_config_number (config, "beacon/interval", 7) == 7);
    zconfig_destroy (&config);
}
