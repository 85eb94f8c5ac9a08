/*  =========================================================================
    zper_dafka_security - CURVE for Dafka nodes: the settings and the one
    zper_security_t a process shares

    The shared object is created under a mutex by the first acquire and
    counted; nodes start and stop from different threads (a producer's
    caller, the CLI's main thread), so the count is under the same mutex.
    ========================================================================= */

#include "zper_dafka_security.h"
#include "zper_dafka_config.h"
#include "zper_defaults.h"
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#define S_ERROR_SIZE    512

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static zper_security_t *s_security;         //  the process's, while s_users > 0
static size_t s_users;
static char *s_cert_path;                   //  what it was made with
static char *s_keys_dir;

bool
zper_dafka_security_on (zconfig_t *config)
{
    return zper_dafka_config_number (config, "security/curve", 0) != 0;
}

static bool
s_is_folder (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0 && S_ISDIR (status.st_mode);
}

int
zper_dafka_security_check (zconfig_t *config, const char *name)
{
    if (!zper_dafka_security_on (config))
        return 0;
    const char *cert_path = zper_dafka_config_string (config, "security/cert", NULL);
    const char *keys_dir = zper_dafka_config_string (config, "security/keys", NULL);
    const char *tower_key = zper_dafka_config_string (config, "security/tower_key", NULL);
    char error [S_ERROR_SIZE] = "";
    if (!cert_path || !*cert_path) {
        fprintf (stderr, "%s: security/cert: required with security/curve = 1 (this node's "
                 "certificate: zper keygen NAME)\n", name);
        return -1;
    }
    zcert_t *cert = zper_security_load_cert (cert_path, error, sizeof error);
    if (!cert) {
        fprintf (stderr, "%s: security/cert: %s\n", name, error);
        return -1;
    }
    zcert_destroy (&cert);
    if (!keys_dir || !s_is_folder (keys_dir)) {
        fprintf (stderr, "%s: security/keys: '%s' is not a folder (the public certificates "
                 "allowed to connect)\n", name, keys_dir? keys_dir: "");
        return -1;
    }
    char key [41];
    if (tower_key && zper_security_server_key (tower_key, key, error, sizeof error)) {
        fprintf (stderr, "%s: security/tower_key: %s\n", name, error);
        return -1;
    }
    return 0;
}

int
zper_dafka_security_acquire (zconfig_t *config, zper_security_t **security_p)
{
    *security_p = NULL;
    if (!zper_dafka_security_on (config))
        return 0;
    const char *cert_path = zper_dafka_config_string (config, "security/cert", "");
    const char *keys_dir = zper_dafka_config_string (config, "security/keys", "");
    int64_t reload_ms = zper_dafka_config_number (config, "security/reload_ms",
                                                  ZPER_SECURITY_RELOAD_MS);
    bool verbose = zper_dafka_config_number (config, "security/verbose", 0) != 0;
    int rc = 0;
    pthread_mutex_lock (&s_mutex);
    if (s_users && (!streq (s_cert_path, cert_path) || !streq (s_keys_dir, keys_dir))) {
        zsys_error ("dafka: security/cert and security/keys must be the same for every node of "
                    "a process (%s and %s already in use)", s_cert_path, s_keys_dir);
        rc = -1;
    }
    else
    if (!s_users) {
        char error [S_ERROR_SIZE] = "";
        s_security = zper_security_new (cert_path, keys_dir, reload_ms, verbose, error, sizeof error);
        if (s_security) {
            s_cert_path = strdup (cert_path);
            s_keys_dir = strdup (keys_dir);
        }
        else {
            zsys_error ("dafka: %s", error);
            rc = -1;
        }
    }
    if (rc == 0) {
        s_users++;
        *security_p = s_security;
    }
    pthread_mutex_unlock (&s_mutex);
    return rc;
}

void
zper_dafka_security_release (zper_security_t **security_p)
{
    if (!security_p || !*security_p)
        return;
    pthread_mutex_lock (&s_mutex);
    assert (*security_p == s_security && s_users > 0);
    if (--s_users == 0) {
        zper_security_destroy (&s_security);
        zstr_free (&s_cert_path);
        zstr_free (&s_keys_dir);
    }
    pthread_mutex_unlock (&s_mutex);
    *security_p = NULL;
}

int
zper_dafka_security_tower_key (zconfig_t *config, char key [41])
{
    const char *tower_key = zper_dafka_config_string (config, "security/tower_key", NULL);
    char error [S_ERROR_SIZE] = "";
    if (!tower_key) {
        zsys_error ("dafka: security/tower_key is required with security/curve = 1 (the "
                    "tower's public key or certificate)");
        return -1;
    }
    if (zper_security_server_key (tower_key, key, error, sizeof error)) {
        zsys_error ("dafka: security/tower_key: %s", error);
        return -1;
    }
    return 0;
}

static int
s_refresh_guard (zloop_t *loop, int timer_id, void *guard)
{
    zper_guard_refresh ((zper_guard_t *) guard);
    return 0;
}

zper_guard_t *
zper_dafka_security_guard (zconfig_t *config, zloop_t *loop)
{
    if (!zper_dafka_security_on (config))
        return NULL;
    const char *keys_dir = zper_dafka_config_string (config, "security/keys", "");
    int64_t reload_ms = zper_dafka_config_number (config, "security/reload_ms",
                                                  ZPER_SECURITY_RELOAD_MS);
    reload_ms = reload_ms > 0? reload_ms: ZPER_SECURITY_RELOAD_MS;
    zper_guard_t *guard = zper_guard_new (keys_dir, reload_ms);
    if (!guard)
        zsys_error ("dafka: cannot read the allowed keys in %s", keys_dir);
    else
        zloop_timer (loop, (size_t) reload_ms, 0, s_refresh_guard, guard);
    return guard;
}

bool
zper_dafka_security_refused (uint64_t *plaintext, uint64_t *unknown_key)
{
    pthread_mutex_lock (&s_mutex);
    *plaintext = s_security? zper_security_refused (s_security, ZPER_REFUSED_MECHANISM): 0;
    *unknown_key = s_security? zper_security_refused (s_security, ZPER_REFUSED_KEY): 0;
    bool on = s_security != NULL;
    pthread_mutex_unlock (&s_mutex);
    return on;
}

//  ---- selftest -----------------------------------------------------------------

void
zper_dafka_security_test (bool verbose)
{
    zsys_dir_create ("dafka-security-keys");
    zcert_t *cert = zcert_new ();
    assert (zcert_save (cert, "dafka-security-node") == 0);
    chmod ("dafka-security-node_secret", 0600);
    zconfig_t *config = zconfig_new ("root", NULL);
    //  Off: nothing is checked, nothing is made
    zper_security_t *security = NULL;
    assert (zper_dafka_security_check (config, "test") == 0);
    assert (zper_dafka_security_acquire (config, &security) == 0 && security == NULL);
    //  On: the certificate, the folder, and a tower key that is a key
    zconfig_put (config, "security/curve", "1");
    assert (zper_dafka_security_check (config, "test") == -1);
    zconfig_put (config, "security/cert", "dafka-security-node");
    assert (zper_dafka_security_check (config, "test") == -1);
    zconfig_put (config, "security/keys", "dafka-security-keys");
    assert (zper_dafka_security_check (config, "test") == 0);
    zconfig_put (config, "security/tower_key", "not a key");
    assert (zper_dafka_security_check (config, "test") == -1);
    zconfig_put (config, "security/tower_key", zcert_public_txt (cert));
    assert (zper_dafka_security_check (config, "test") == 0);
    char key [41];
    assert (zper_dafka_security_tower_key (config, key) == 0);
    assert (streq (key, zcert_public_txt (cert)));
    //  Shared by the nodes of a process; other settings are refused
    zper_security_t *other = NULL;
    assert (zper_dafka_security_acquire (config, &security) == 0 && security);
    assert (zper_dafka_security_acquire (config, &other) == 0 && other == security);
    assert (streq (zper_security_public_key (security), zcert_public_txt (cert)));
    zper_security_t *third = NULL;
    zconfig_put (config, "security/keys", ".");
    assert (zper_dafka_security_acquire (config, &third) == -1 && third == NULL);
    zper_dafka_security_release (&other);
    zper_dafka_security_release (&security);
    zper_dafka_security_release (&security);
    zconfig_destroy (&config);
    zcert_destroy (&cert);
    zsys_file_delete ("dafka-security-node");
    zsys_file_delete ("dafka-security-node_secret");
    zsys_dir_delete ("dafka-security-keys");
}
