/*  =========================================================================
    zper_log - the log engine: topics and partitions under one base_dir

    A thin directory of partitions: names are checked here (and only here)
    before they become paths, each partition is opened and recovered on
    first use and stays open until the log is destroyed, so a partition
    pointer handed out stays valid for the log's whole life. The periodic
    duties (flush timer, retention) walk the open partitions without
    holding the log's lock during their I/O.
    ========================================================================= */

#include "zper_log.h"
#include "zper_partition.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

struct _zper_log_t {
    zper_log_config_t config;
    char *base_dir;
    pthread_mutex_t mutex;
    zhashx_t *partitions;           //  "topic/partition" -> zper_partition_t
};

void
zper_log_config_init (zper_log_config_t *config)
{
    assert (config);
    config->base_dir = ZPER_DEFAULT_BASE_DIR;
    config->segment_size = ZPER_DEFAULT_SEGMENT_SIZE;
    config->flush_messages = ZPER_DEFAULT_FLUSH_MESSAGES;
    config->flush_interval_ms = ZPER_DEFAULT_FLUSH_INTERVAL_MS;
    config->retention_ms = ZPER_DEFAULT_CLEANUP_INTERVAL_MS;
    config->retention_bytes = ZPER_DEFAULT_RETENTION_BYTES;
    config->max_message = ZPER_DEFAULT_MAX_MESSAGE;
    config->visibility = ZPER_DEFAULT_VISIBILITY;
}

bool
zper_log_name_valid (const char *name)
{
    if (!name)
        return false;
    size_t length = strlen (name);
    if (length == 0 || length > ZPER_TOPIC_NAME_MAX || streq (name, ".") || streq (name, ".."))
        return false;
    for (size_t index = 0; index < length; index++) {
        char character = name [index];
        bool allowed = (character >= 'a' && character <= 'z') || (character >= 'A' && character <= 'Z')
                    || (character >= '0' && character <= '9')
                    || character == '.' || character == '_' || character == '-';
        if (!allowed)
            return false;
    }
    return true;
}

zper_log_t *
zper_log_new (const zper_log_config_t *config)
{
    assert (config && config->base_dir);
    if (zsys_dir_create ("%s", config->base_dir)) {
        if (errno == 0)
            errno = EACCES;
        return NULL;
    }
    zper_log_t *self = (zper_log_t *) zmalloc (sizeof (zper_log_t));
    self->config = *config;
    self->base_dir = strdup (config->base_dir);
    self->config.base_dir = self->base_dir;
    pthread_mutex_init (&self->mutex, NULL);
    self->partitions = zhashx_new ();
    zhashx_set_destructor (self->partitions, (zhashx_destructor_fn *) zper_partition_destroy);
    return self;
}

void
zper_log_destroy (zper_log_t **self_p)
{
    assert (self_p);
    zper_log_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->partitions);
        pthread_mutex_destroy (&self->mutex);
        free (self->base_dir);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_is_directory (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0 && S_ISDIR (status.st_mode);
}

zper_partition_t *
zper_log_partition (zper_log_t *self, const char *topic, const char *partition, bool create)
{
    assert (self);
    if (!zper_log_name_valid (topic) || !zper_log_name_valid (partition)) {
        errno = EINVAL;
        return NULL;
    }
    char *key = zsys_sprintf ("%s/%s", topic, partition);
    pthread_mutex_lock (&self->mutex);
    zper_partition_t *found = (zper_partition_t *) zhashx_lookup (self->partitions, key);
    if (!found) {
        char *path = zsys_sprintf ("%s/%s", self->base_dir, key);
        if (!create && !s_is_directory (path))
            errno = ENOENT;
        else
            found = zper_partition_open (path, &self->config);
        if (found)
            zhashx_insert (self->partitions, key, found);
        free (path);
    }
    pthread_mutex_unlock (&self->mutex);
    free (key);
    return found;
}

static int
s_compare_names (void *first, void *second)
{
    return strcmp ((const char *) first, (const char *) second);
}

//  Sorted names of the valid-named folders in path; NULL if no such folder
static zlist_t *
s_folder_names (const char *path)
{
    DIR *directory = opendir (path);
    if (!directory)
        return NULL;
    zlist_t *names = zlist_new ();
    zlist_autofree (names);
    struct dirent *entry;
    while ((entry = readdir (directory))) {
        if (!zper_log_name_valid (entry->d_name))
            continue;
        char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
        if (s_is_directory (child))
            zlist_append (names, entry->d_name);
        free (child);
    }
    closedir (directory);
    zlist_sort (names, s_compare_names);
    return names;
}

zlist_t *
zper_log_topics (zper_log_t *self)
{
    assert (self);
    zlist_t *topics = s_folder_names (self->base_dir);
    if (!topics) {
        topics = zlist_new ();
        zlist_autofree (topics);
    }
    return topics;
}

zlist_t *
zper_log_partitions (zper_log_t *self, const char *topic)
{
    assert (self);
    if (!zper_log_name_valid (topic))
        return NULL;
    char *path = zsys_sprintf ("%s/%s", self->base_dir, topic);
    zlist_t *partitions = s_folder_names (path);
    free (path);
    return partitions;
}

//  The open partitions, in a list the caller destroys (partitions stay
//  open for the log's life, so they may be used after the lock is left)
static zlist_t *
s_open_partitions (zper_log_t *self)
{
    pthread_mutex_lock (&self->mutex);
    zlist_t *partitions = zlist_new ();
    for (zper_partition_t *partition = (zper_partition_t *) zhashx_first (self->partitions);
         partition; partition = (zper_partition_t *) zhashx_next (self->partitions))
        zlist_append (partitions, partition);
    pthread_mutex_unlock (&self->mutex);
    return partitions;
}

int
zper_log_flush_due (zper_log_t *self, int64_t now_ms)
{
    assert (self);
    zlist_t *partitions = s_open_partitions (self);
    int rc = 0;
    for (zper_partition_t *partition = (zper_partition_t *) zlist_first (partitions);
         partition; partition = (zper_partition_t *) zlist_next (partitions))
        if (zper_partition_flush_due (partition, now_ms) && zper_partition_flush (partition) < 0)
            rc = -1;
    zlist_destroy (&partitions);
    return rc;
}

//  Open every partition on disk, so that duties reach them all
static void
s_open_all (zper_log_t *self)
{
    zlist_t *topics = zper_log_topics (self);
    for (const char *topic = (const char *) zlist_first (topics); topic;
         topic = (const char *) zlist_next (topics)) {
        zlist_t *partitions = zper_log_partitions (self, topic);
        for (const char *partition = partitions? (const char *) zlist_first (partitions): NULL;
             partition; partition = (const char *) zlist_next (partitions))
            if (!zper_log_partition (self, topic, partition, false))
                zsys_warning ("zper log: cannot open %s/%s/%s: %s",
                              self->base_dir, topic, partition, strerror (errno));
        zlist_destroy (&partitions);
    }
    zlist_destroy (&topics);
}

int
zper_log_retain (zper_log_t *self, int64_t now_ms)
{
    assert (self);
    s_open_all (self);
    zlist_t *partitions = s_open_partitions (self);
    int deleted = 0;
    bool failed = false;
    for (zper_partition_t *partition = (zper_partition_t *) zlist_first (partitions);
         partition; partition = (zper_partition_t *) zlist_next (partitions)) {
        int count = zper_partition_retain (partition, now_ms);
        if (count < 0)
            failed = true;
        else
            deleted += count;
    }
    zlist_destroy (&partitions);
    return failed? -1: deleted;
}

void
zper_log_test (bool verbose)
{
    //  @selftest
    //  Names that could escape base_dir, or are not names, are refused
    assert (zper_log_name_valid ("orders") && zper_log_name_valid ("a.b_c-D9"));
    assert (zper_log_name_valid ("..."));
    const char *refused [] = { "", ".", "..", "../x", "a/b", "/abs", "a b", "caf\xc3\xa9", "a\\b", NULL };
    for (int index = 0; refused [index]; index++)
        assert (!zper_log_name_valid (refused [index]));
    assert (!zper_log_name_valid (NULL));
    //  A NUL cuts a C string: "ab\0/.." is the valid name "ab", never a path
    assert (zper_log_name_valid ("ab\0/.."));
    char name [ZPER_TOPIC_NAME_MAX + 2];
    memset (name, 'n', sizeof name);
    name [ZPER_TOPIC_NAME_MAX] = 0;
    assert (zper_log_name_valid (name));
    name [ZPER_TOPIC_NAME_MAX] = 'n';
    name [ZPER_TOPIC_NAME_MAX + 1] = 0;
    assert (!zper_log_name_valid (name));

    zper_log_config_t config;
    zper_log_config_init (&config);
    config.base_dir = "data";
    config.flush_interval_ms = 50;
    zper_log_t *log = zper_log_new (&config);
    assert (log);
    assert (zper_log_partition (log, "../x", "0", true) == NULL && errno == EINVAL);
    assert (zper_log_partition (log, "x", "..", true) == NULL && errno == EINVAL);
    assert (zper_log_partition (log, "missing", "0", false) == NULL && errno == ENOENT);
    zper_partition_t *orders = zper_log_partition (log, "orders", "0", true);
    assert (orders && zper_log_partition (log, "orders", "0", false) == orders);
    assert (zper_log_partition (log, "clicks", "a1b2", true));

    zlist_t *topics = zper_log_topics (log);
    assert (zlist_size (topics) == 2);
    assert (streq ((char *) zlist_first (topics), "clicks"));
    assert (streq ((char *) zlist_next (topics), "orders"));
    zlist_destroy (&topics);
    zlist_t *partitions = zper_log_partitions (log, "clicks");
    assert (partitions && zlist_size (partitions) == 1);
    assert (streq ((char *) zlist_first (partitions), "a1b2"));
    zlist_destroy (&partitions);
    assert (zper_log_partitions (log, "nothing") == NULL);

    //  The flush timer makes a quiet tail durable once flush_interval passed
    zper_frame_t frame = { "hello", 5 };
    assert (zper_partition_append (orders, &frame, 1, 0) == 0);
    assert (zper_log_flush_due (log, zclock_time ()) == 0);
    zper_bounds_t bounds;
    zper_partition_bounds (orders, &bounds);
    assert (bounds.durable_offset == 0);
    assert (zper_log_flush_due (log, zclock_time () + config.flush_interval_ms) == 0);
    zper_partition_bounds (orders, &bounds);
    assert (bounds.durable_offset == 1);
    assert (zper_log_retain (log, zclock_time ()) == 0);
    zper_log_destroy (&log);
    zper_log_destroy (&log);

    //  Partitions on disk are found again after a restart
    log = zper_log_new (&config);
    orders = zper_log_partition (log, "orders", "0", false);
    assert (orders);
    zper_partition_bounds (orders, &bounds);
    assert (bounds.durable_offset == 1 && zper_partition_recovery_bytes (orders) == 0);
    zper_log_destroy (&log);
    //  @end
}
