/*  =========================================================================
    zper_log - the log engine: topics and partitions under one base_dir

    A thin directory of partitions: names are checked here (and only here)
    before they become paths, each partition is opened and recovered on
    first use and its object stays until the log is destroyed, so a
    partition pointer handed out stays valid for the log's whole life. Its
    files do not: one lru bounds the partitions holding open files
    (zper_partition_lru_t), so a log may hold far more partitions than the
    process has descriptors. Topics are counted from their folders at start
    (never opened for that) and bounded by max_topics; a topic is refused
    before its folder is created. The flush timer walks the partitions in
    memory, retention the folders on disk, neither holding the log's lock
    during their I/O.
    ========================================================================= */

#include "zper_log.h"
#include "zper_dir_lock.h"
#include "zper_partition.h"
#include "zper_segment.h"
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct _zper_log_t {
    zper_log_config_t config;
    char *base_dir;
    pthread_mutex_t mutex;
    zhashx_t *partitions;           //  "topic/partition" -> zper_partition_t
    zper_dir_lock_t *lock;          //  base_dir is ours alone while the log lives
    zper_partition_lru_t *lru;      //  bounds the partitions holding open files
    size_t topic_count;             //  topic folders under base_dir
    zlist_t *retain_topics;         //  topics the retention pass under way has yet to visit
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
    config->max_open_partitions = ZPER_DEFAULT_MAX_OPEN_PARTITIONS;
    config->max_topics = ZPER_DEFAULT_MAX_TOPICS;
}

bool
zper_log_name_valid (const char *name)
{
    if (!name)
        return false;
    size_t length = strlen (name);
    //  The lock and offsets files share base_dir with the topic folders: their
    //  names are never a topic's (nor a group's)
    if (length == 0 || length > ZPER_TOPIC_NAME_MAX || streq (name, ".") || streq (name, "..")
    ||  streq (name, ZPER_DIR_LOCK_FILE) || streq (name, ZPER_OFFSETS_FILE)
    ||  streq (name, ZPER_OFFSETS_FILE ".tmp"))
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

//  The bound on partitions holding open files: max_open_partitions, within
//  what the descriptor limit leaves after ZPER_LOG_FDS_RESERVED
static size_t
s_open_bound (const zper_log_config_t *config)
{
    size_t bound = config->max_open_partitions;
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        size_t spare = limit.rlim_cur > ZPER_LOG_FDS_RESERVED
                     ? (size_t) (limit.rlim_cur - ZPER_LOG_FDS_RESERVED) / ZPER_LOG_PARTITION_FDS: 0;
        if (bound > spare)
            bound = spare;
    }
    return bound > 0? bound: 1;
}

static bool
s_is_directory (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0 && S_ISDIR (status.st_mode);
}

//  Number of valid-named folders in path (the topics of a base_dir), read
//  from the directory entries alone: no topic is opened to count it
static size_t
s_folder_count (const char *path)
{
    DIR *directory = opendir (path);
    if (!directory)
        return 0;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (directory))) {
        if (!zper_log_name_valid (entry->d_name))
            continue;
        if (entry->d_type == DT_DIR)
            count++;
        else
        if (entry->d_type == DT_UNKNOWN) {
            char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
            count += s_is_directory (child);
            free (child);
        }
    }
    closedir (directory);
    return count;
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
    //  Before any file in base_dir is touched (and so before any recovery)
    zper_dir_lock_t *lock = zper_dir_lock_new (config->base_dir);
    if (!lock)
        return NULL;
    zper_log_t *self = (zper_log_t *) zmalloc (sizeof (zper_log_t));
    self->lock = lock;
    self->config = *config;
    self->base_dir = strdup (config->base_dir);
    self->config.base_dir = self->base_dir;
    pthread_mutex_init (&self->mutex, NULL);
    self->partitions = zhashx_new ();
    zhashx_set_destructor (self->partitions, (zhashx_destructor_fn *) zper_partition_destroy);
    self->lru = zper_partition_lru_new (s_open_bound (config));
    self->topic_count = s_folder_count (self->base_dir);
    return self;
}

void
zper_log_destroy (zper_log_t **self_p)
{
    assert (self_p);
    zper_log_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->partitions);
        zper_partition_lru_destroy (&self->lru);
        zlist_destroy (&self->retain_topics);
        zper_dir_lock_destroy (&self->lock);        //  only once every partition is closed
        pthread_mutex_destroy (&self->mutex);
        free (self->base_dir);
        free (self);
        *self_p = NULL;
    }
}

//  Remove the folder of a partition whose creation failed (what its open
//  left in it first), and its topic's folder when topic_path is given.
//  Keeps errno: it says why the creation failed.
static void
s_folder_remove (const char *path, const char *topic_path)
{
    int saved = errno;
    DIR *directory = opendir (path);
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir (directory)))
            if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
                unlinkat (dirfd (directory), entry->d_name, 0);
        closedir (directory);
    }
    if (rmdir (path) || (topic_path && rmdir (topic_path)))
        zsys_warning ("zper log: cannot remove %s after a failed creation: %s",
                      path, strerror (errno));
    errno = saved;
}

static bool
s_out_of_files (int error)
{
    return error == EMFILE || error == ENFILE || error == ENOMEM;
}

//  Open the partition key ("topic/partition") from its folder, or create
//  it when create says so and max_topics allows a new topic; a refused or
//  failed creation leaves no folder. An open that ran out of descriptors
//  is retried once after closing idle partitions. Caller holds the mutex.
static zper_partition_t *
s_partition_open (zper_log_t *self, const char *topic, const char *key, bool create)
{
    char *topic_path = zsys_sprintf ("%s/%s", self->base_dir, topic);
    char *path = zsys_sprintf ("%s/%s", self->base_dir, key);
    bool new_topic = !s_is_directory (topic_path);
    bool new_partition = new_topic || !s_is_directory (path);
    zper_partition_t *partition = NULL;
    if (new_partition && !create)
        errno = ENOENT;
    else
    if (new_topic && self->topic_count >= self->config.max_topics)
        errno = EDQUOT;
    else {
        partition = zper_partition_open (path, &self->config);
        if (!partition && s_out_of_files (errno) && zper_partition_lru_relieve (self->lru) > 0)
            partition = zper_partition_open (path, &self->config);
        if (!partition && new_partition)
            s_folder_remove (path, new_topic? topic_path: NULL);
    }
    if (partition) {
        zper_partition_set_lru (partition, self->lru);
        zhashx_insert (self->partitions, key, partition);
        if (new_topic)
            self->topic_count++;
    }
    free (path);
    free (topic_path);
    return partition;
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
    if (!found)
        found = s_partition_open (self, topic, key, create);
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

//  The partitions in memory, in a list the caller destroys (their objects
//  stay for the log's life, so they may be used after the lock is left)
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

//  Apply retention to one partition on disk, opening it if needed.
//  Returns the segments deleted, or -1.
static int
s_retain_one (zper_log_t *self, const char *topic, const char *name, int64_t now_ms)
{
    zper_partition_t *partition = zper_log_partition (self, topic, name, false);
    if (!partition) {
        zsys_warning ("zper log: retention cannot open %s/%s/%s: %s",
                      self->base_dir, topic, name, strerror (errno));
        return -1;
    }
    return zper_partition_retain (partition, now_ms);
}

int
zper_log_retain_step (zper_log_t *self, int64_t now_ms, int64_t budget_ms, bool *done)
{
    assert (self && done);
    int64_t deadline = zclock_mono () + budget_ms;
    if (!self->retain_topics)
        self->retain_topics = zper_log_topics (self);
    int deleted = 0;
    bool failed = false;
    size_t visited = 0;                 //  every step moves on, whatever its budget
    char *topic;
    while ((visited++ == 0 || zclock_mono () < deadline)
       &&  (topic = (char *) zlist_pop (self->retain_topics))) {
        zlist_t *partitions = zper_log_partitions (self, topic);
        for (const char *name = partitions? (const char *) zlist_first (partitions): NULL;
             name; name = (const char *) zlist_next (partitions)) {
            int count = s_retain_one (self, topic, name, now_ms);
            if (count < 0)
                failed = true;
            else
                deleted += count;
        }
        zlist_destroy (&partitions);
        free (topic);
    }
    *done = zlist_size (self->retain_topics) == 0;
    if (*done)
        zlist_destroy (&self->retain_topics);
    return failed? -1: deleted;
}

int
zper_log_retain (zper_log_t *self, int64_t now_ms)
{
    assert (self);
    int deleted = 0;
    bool failed = false, done = false;
    while (!done) {
        int count = zper_log_retain_step (self, now_ms, INT64_MAX / 2, &done);
        if (count < 0)
            failed = true;
        else
            deleted += count;
    }
    return failed? -1: deleted;
}

void
zper_log_counts (zper_log_t *self, size_t *topics, size_t *open_partitions,
                 uint64_t *closed_partitions)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    *topics = self->topic_count;
    pthread_mutex_unlock (&self->mutex);
    zper_partition_lru_counts (self->lru, open_partitions, closed_partitions);
}

void
zper_log_sync_histogram (zper_log_sync_histogram_t *histogram)
{
    assert (histogram);
    zper_segment_sync_histogram (histogram);
}

//  Descriptors this process holds now
static size_t
s_test_descriptors (void)
{
    size_t count = 0;
    DIR *directory = opendir ("/proc/self/fd");
    assert (directory);
    while (readdir (directory))
        count++;
    closedir (directory);
    return count;
}

//  Many partitions under a small lru: every one written and read back
//  (before and after a restart), with the descriptors bounded; a topic past
//  max_topics is refused before its folder exists
static void
s_test_many_partitions (void)
{
    const int partitions = 200;
    zper_log_config_t config;
    zper_log_config_init (&config);
    config.base_dir = "many";
    config.max_open_partitions = 4;
    config.max_topics = partitions;
    size_t descriptors = s_test_descriptors ();
    struct stat checkpoint = { 0 };
    for (int run = 0; run < 2; run++) {
        zper_log_t *log = zper_log_new (&config);
        assert (log);
        zper_view_t *held = NULL;
        for (int number = 0; number < partitions; number++) {
            char topic [16];
            snprintf (topic, sizeof topic, "t%d", number);
            zper_partition_t *partition = zper_log_partition (log, topic, "0", run == 0);
            assert (partition);
            if (run == 0) {
                zper_frame_t frame = { topic, strlen (topic) };
                assert (zper_partition_append (partition, &frame, 1, 0) == 0);
                assert (zper_partition_flush (partition) == 1);
            }
            zper_view_t *view = zper_partition_read (partition, 0, 1024);
            zper_message_t message;
            assert (view && zper_view_next (view, &message));
            assert (message.size == strlen (topic) + 2 && memcmp (message.data + 2, topic, strlen (topic)) == 0);
            if (number == 0)
                held = view;            //  a view outlives the closing of its files
            else
                zper_view_destroy (&view);
            //  The lru bounds the files: a few descriptors per open partition
            assert (s_test_descriptors () <= descriptors + 4 * ZPER_LOG_PARTITION_FDS + 2);
        }
        size_t topics, open;
        uint64_t closed;
        zper_log_counts (log, &topics, &open, &closed);
        assert (topics == (size_t) partitions && open <= 4 && closed >= (uint64_t) partitions - 4);
        zper_message_t message;
        zper_view_rewind (held);
        assert (zper_view_next (held, &message) && memcmp (message.data + 2, "t0", 2) == 0);
        zper_view_destroy (&held);
        //  max_topics: refused with EDQUOT, and no folder is left
        assert (zper_log_partition (log, "one-too-many", "0", true) == NULL && errno == EDQUOT);
        assert (!s_is_directory ("many/one-too-many"));
        //  An existing topic takes a new partition
        assert (zper_log_partition (log, "t1", "1", true));
        //  Retention in steps: a step of no budget still visits one topic
        bool done = false;
        int steps = 0;
        while (!done) {
            assert (zper_log_retain_step (log, zclock_time (), 0, &done) == 0);
            steps++;
        }
        assert (steps == partitions);
        zper_log_destroy (&log);
        //  The checkpoint that names the end of the files is adopted at
        //  open and kept at close: a reopened, only read topic writes nothing
        struct stat now;
        assert (stat ("many/t7/0/checkpoint", &now) == 0);
        assert (run == 0 || now.st_ino == checkpoint.st_ino);
        checkpoint = now;
    }
}

void
zper_log_test (bool verbose)
{
    //  @selftest
    //  Names that could escape base_dir, or are not names, are refused
    assert (zper_log_name_valid ("orders") && zper_log_name_valid ("a.b_c-D9"));
    assert (zper_log_name_valid ("..."));
    const char *refused [] = { "", ".", "..", ZPER_DIR_LOCK_FILE, ZPER_OFFSETS_FILE,
                               ZPER_OFFSETS_FILE ".tmp", "../x", "a/b", "/abs", "a b", "caf\xc3\xa9", "a\\b", NULL };
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
    //  One log per folder: a second one is refused while the first lives
    assert (zper_log_new (&config) == NULL && errno == EWOULDBLOCK);
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
    s_test_many_partitions ();
    //  @end
}
