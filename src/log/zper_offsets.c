/*  =========================================================================
    zper_offsets - committed offsets of consumer groups, durable

    The one thing to know: memory is the replay of the file's valid prefix,
    and a commit changes memory only after its record is fdatasync'd. The
    file is append-only between compactions; a compaction writes a new file
    beside it and renames it over the old one, so the file at `path` is
    always whole up to its last record, and a crash tears at most that
    record, which open cuts off.

    FILE (base_dir/__consumer_offsets; integers little-endian, zper_le.h):
        0..7    magic            "ZPEROFS1" (format version 1)
        8..     records, back to back, each:
        0..3    length           bytes of the body (after the crc), 20..516
        4..7    crc              CRC-32C of the length field and of the body
        8       group_length     1..249
        9..     group            group_length bytes (zper_log_name_valid)
        .       topic_length     1..249
        .       topic            topic_length bytes (zper_log_name_valid)
        .       offset           int64, >= 0: the next offset the group reads
        .       timestamp_ms     int64, wall clock of the commit
    The length must equal 1 + group_length + 1 + topic_length + 16.

    INVARIANTS
      (1) The magic is never written in place: a new file (and each
          compaction) is written as `path.tmp`, fdatasync'd, renamed over
          `path`, and the folder fsync'd. A file whose first 8 bytes are not
          the magic is not ours: open refuses it (EINVAL) and writes nothing.
          An empty file holds nothing to lose and is adopted as a new one.
      (2) The valid prefix ends before the first record that is short, has a
          length out of range, fails its CRC, or does not parse. Open cuts
          the file there (ftruncate + fdatasync, one warning naming the byte):
          what follows a bad record is not trusted, as in a segment.
      (3) For a (group, topic) pair, the last record of the valid prefix
          wins. Memory = replay of the valid prefix, whenever the mutex is
          free; file_size = its length, records = its record count.
      (4) A commit is acknowledged only after its record is written whole
          and fdatasync'd (and, after a compaction whose folder fsync failed,
          once the folder is fsync'd: until then the renamed file might not
          be the one found at `path` after a crash). A failed append is cut
          back to file_size (best effort) and memory is unchanged; if the cut
          fails too, the next append overwrites the rest from file_size, and
          what remains past it is a torn tail that (2) cuts at open.
      (5) records >= entries. Compaction runs after a commit when records >
          2 x entries + ZPER_OFFSETS_COMPACT_SLACK; it leaves records ==
          entries. A failed compaction leaves the old file in use (it is
          still valid) and is tried again ZPER_OFFSETS_COMPACT_RETRY records
          later.
      (6) More than max_entries pairs may be found at open (the limit was
          lowered): all are kept, a new pair is refused (EDQUOT) until then.

    OPEN (zper_offsets_open)
        path missing or empty --> s_rewrite: new file, magic only
        otherwise ------------> s_replay: check the magic (else EINVAL),
                                read records into memory up to the first
                                bad one --> s_open_append: cut the file there
    COMMIT: s_append (write + fdatasync | cut back) --> s_remember
            --> s_compact_if_due --> s_rewrite
    ========================================================================= */

#include "zper_offsets.h"
#include "zper_crc32c.h"
#include "zper_defaults.h"
#include "zper_le.h"
#include "zper_log.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>

#define OFFSETS_MAGIC           "ZPEROFS1"
#define OFFSETS_MAGIC_SIZE      8
#define RECORD_PREFIX_SIZE      8       //  length + crc
#define RECORD_BODY_MIN         (1 + 1 + 1 + 1 + 16)
#define RECORD_BODY_MAX         (1 + ZPER_TOPIC_NAME_MAX + 1 + ZPER_TOPIC_NAME_MAX + 16)
#define RECORD_SIZE_MAX         (RECORD_PREFIX_SIZE + RECORD_BODY_MAX)
//  '/' is in no valid name, so "group/topic" names one pair
#define KEY_SEPARATOR           '/'
#define KEY_SIZE_MAX            (2 * ZPER_TOPIC_NAME_MAX + 2)

typedef struct {
    zper_committed_t committed;
    const char *topic;              //  in names, after the group's nul
    char names [];                  //  "group\0topic\0"
} entry_t;

struct _zper_offsets_t {
    pthread_mutex_t mutex;
    char *path;
    char *folder;                   //  where path is: fsync'd after a rename
    int fd;                         //  path, for appends (-1 until it exists)
    zhashx_t *entries;              //  "group/topic" -> entry_t
    zhashx_t *groups;               //  group -> its entry count (uintptr_t): groups.max_groups
                                    //  is checked per request without a walk of the entries
    size_t max_entries;
    uint64_t file_size;             //  bytes of the valid prefix (3)
    size_t records;                 //  records in it
    bool folder_unsynced;           //  a rename's folder fsync failed (4)
    size_t compact_retry_at;        //  no compaction before records reach this (5)
    bool compact_warned;            //  the current streak of failures was logged
    int fault_write_errno;          //  test hook, zper_offsets_set_fault
    int fault_sync_errno;
};

static void
s_entry_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Compare two entries by (group, topic), for qsort
static int
s_entry_compare (const void *left, const void *right)
{
    const entry_t *one = *(const entry_t * const *) left;
    const entry_t *other = *(const entry_t * const *) right;
    int order = strcmp (one->names, other->names);
    return order? order: strcmp (one->topic, other->topic);
}

static void
s_key (char *key, const char *group, const char *topic)
{
    snprintf (key, KEY_SIZE_MAX, "%s%c%s", group, KEY_SEPARATOR, topic);
}

//  Set (group, topic) to committed in memory, adding the pair if needed
static void
s_remember (zper_offsets_t *self, const char *group, const char *topic,
            const zper_committed_t *committed)
{
    char key [KEY_SIZE_MAX];
    s_key (key, group, topic);
    entry_t *entry = (entry_t *) zhashx_lookup (self->entries, key);
    if (!entry) {
        size_t group_size = strlen (group) + 1;
        size_t topic_size = strlen (topic) + 1;
        entry = (entry_t *) malloc (sizeof (entry_t) + group_size + topic_size);
        assert (entry);
        memcpy (entry->names, group, group_size);
        memcpy (entry->names + group_size, topic, topic_size);
        entry->topic = entry->names + group_size;
        int rc = zhashx_insert (self->entries, key, entry);
        assert (rc == 0);
        uintptr_t group_entries = (uintptr_t) zhashx_lookup (self->groups, group);
        zhashx_update (self->groups, group, (void *) (group_entries + 1));
    }
    entry->committed = *committed;
}

//  Encode one record into target (RECORD_SIZE_MAX bytes); returns its size
static size_t
s_encode (uint8_t *target, const char *group, const char *topic,
          const zper_committed_t *committed)
{
    size_t group_length = strlen (group);
    size_t topic_length = strlen (topic);
    assert (group_length >= 1 && group_length <= ZPER_TOPIC_NAME_MAX);
    assert (topic_length >= 1 && topic_length <= ZPER_TOPIC_NAME_MAX);
    uint8_t *body = target + RECORD_PREFIX_SIZE;
    uint8_t *cursor = body;
    *cursor++ = (uint8_t) group_length;
    memcpy (cursor, group, group_length);
    cursor += group_length;
    *cursor++ = (uint8_t) topic_length;
    memcpy (cursor, topic, topic_length);
    cursor += topic_length;
    zper_le_put64 (cursor, (uint64_t) committed->offset);
    zper_le_put64 (cursor + 8, (uint64_t) committed->timestamp_ms);
    cursor += 16;
    size_t length = (size_t) (cursor - body);
    zper_le_put32 (target, (uint32_t) length);
    uint32_t crc = zper_crc32c_extend (zper_crc32c (target, 4), body, length);
    zper_le_put32 (target + 4, crc);
    return RECORD_PREFIX_SIZE + length;
}

//  Parse a body whose CRC checked into group, topic (nul-terminated, of
//  ZPER_TOPIC_NAME_MAX + 1 bytes each) and committed; 0, or -1 if malformed
static int
s_decode (const uint8_t *body, size_t length, char *group, char *topic,
          zper_committed_t *committed)
{
    size_t group_length = body [0];
    if (group_length == 0 || 1 + group_length + 1 > length)
        return -1;
    size_t topic_length = body [1 + group_length];
    if (topic_length == 0 || length != 1 + group_length + 1 + topic_length + 16)
        return -1;
    memcpy (group, body + 1, group_length);
    group [group_length] = 0;
    memcpy (topic, body + 2 + group_length, topic_length);
    topic [topic_length] = 0;
    const uint8_t *numbers = body + 2 + group_length + topic_length;
    committed->offset = (int64_t) zper_le_get64 (numbers);
    committed->timestamp_ms = (int64_t) zper_le_get64 (numbers + 8);
    if (!zper_log_name_valid (group) || !zper_log_name_valid (topic) || committed->offset < 0)
        return -1;
    return 0;
}

//  Write size bytes at offset, looping on partial writes. The fault hook
//  writes half and then fails.
static int
s_write_at (int fd, const uint8_t *data, size_t size, uint64_t offset, int fault_errno)
{
    size_t wanted = fault_errno? size / 2: size;
    size_t done = 0;
    while (done < wanted) {
        ssize_t written = pwrite (fd, data + done, wanted - done, (off_t) (offset + done));
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            if (written == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t) written;
    }
    if (fault_errno) {
        errno = fault_errno;
        return -1;
    }
    return 0;
}

static int
s_sync_folder (zper_offsets_t *self)
{
    int folder_fd = open (self->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd < 0)
        return -1;
    int rc = fsync (folder_fd);
    int saved = errno;
    close (folder_fd);
    errno = saved;
    return rc;
}

//  Write every entry to path.tmp, fdatasync, rename it over path, and adopt
//  it (1). Creates the file when there is none. 0, or -1 with errno: the
//  old file (if any) is still the one in use, except when only the folder
//  fsync failed (the new file is adopted, folder_unsynced is set).
static int
s_rewrite (zper_offsets_t *self)
{
    char *temporary = zsys_sprintf ("%s.tmp", self->path);
    uint8_t *buffer = (uint8_t *) malloc (ZPER_OFFSETS_REWRITE_BUFFER);
    assert (buffer && ZPER_OFFSETS_REWRITE_BUFFER >= OFFSETS_MAGIC_SIZE + RECORD_SIZE_MAX);
    uint64_t written = 0;
    size_t records = 0;
    int rc = 0;
    int fd = open (temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = -1;
    memcpy (buffer, OFFSETS_MAGIC, OFFSETS_MAGIC_SIZE);
    size_t used = OFFSETS_MAGIC_SIZE;
    entry_t *entry = (entry_t *) zhashx_first (self->entries);
    while (rc == 0 && entry) {
        used += s_encode (buffer + used, entry->names, entry->topic, &entry->committed);
        records++;
        entry = (entry_t *) zhashx_next (self->entries);
        if (!entry || used + RECORD_SIZE_MAX > ZPER_OFFSETS_REWRITE_BUFFER) {
            rc = s_write_at (fd, buffer, used, written, 0);
            written += used;
            used = 0;
        }
    }
    if (rc == 0 && used > 0) {
        rc = s_write_at (fd, buffer, used, written, 0);
        written += used;
    }
    if (rc == 0)
        rc = fdatasync (fd);
    if (rc == 0)
        rc = rename (temporary, self->path);
    if (rc == 0) {
        //  path is the new file now, whatever follows: the old fd names an
        //  unlinked file, so keep appending to this one
        if (self->fd >= 0)
            close (self->fd);
        self->fd = fd;
        fd = -1;
        self->file_size = written;
        self->records = records;
        rc = s_sync_folder (self);
        self->folder_unsynced = rc != 0;
    }
    else {
        int saved = errno;
        if (fd >= 0)
            unlink (temporary);
        errno = saved;
    }
    if (fd >= 0) {
        int saved = errno;
        close (fd);
        errno = saved;
    }
    free (buffer);
    zstr_free (&temporary);
    return rc;
}

//  Read the file into memory up to the end of its valid prefix (2), which
//  *valid_end receives, with *damage saying what stopped it (NULL when the
//  file ended cleanly). 0, or -1 with errno (EINVAL: not our file)
static int
s_replay (zper_offsets_t *self, uint64_t *valid_end, const char **damage)
{
    FILE *file = fopen (self->path, "rb");
    if (!file)
        return -1;
    int rc = 0;
    *damage = NULL;
    *valid_end = 0;
    uint8_t magic [OFFSETS_MAGIC_SIZE];
    if (fread (magic, 1, sizeof magic, file) != sizeof magic
    ||  memcmp (magic, OFFSETS_MAGIC, OFFSETS_MAGIC_SIZE) != 0) {
        errno = ferror (file)? EIO: EINVAL;
        rc = -1;
    }
    else
        *valid_end = OFFSETS_MAGIC_SIZE;
    uint8_t record [RECORD_SIZE_MAX];
    char group [ZPER_TOPIC_NAME_MAX + 1];
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    while (rc == 0 && !*damage) {
        size_t got = fread (record, 1, RECORD_PREFIX_SIZE, file);
        if (got == 0 && feof (file))
            break;
        size_t length = got == RECORD_PREFIX_SIZE? zper_le_get32 (record): 0;
        zper_committed_t committed;
        if (got < RECORD_PREFIX_SIZE)
            *damage = "torn record";
        else
        if (length < RECORD_BODY_MIN || length > RECORD_BODY_MAX)
            *damage = "record length out of range";
        else
        if (fread (record + RECORD_PREFIX_SIZE, 1, length, file) != length)
            *damage = "torn record";
        else
        if (zper_crc32c_extend (zper_crc32c (record, 4), record + RECORD_PREFIX_SIZE, length)
            != zper_le_get32 (record + 4))
            *damage = "CRC-32C mismatch";
        else
        if (s_decode (record + RECORD_PREFIX_SIZE, length, group, topic, &committed))
            *damage = "malformed record";
        else {
            s_remember (self, group, topic, &committed);
            *valid_end += RECORD_PREFIX_SIZE + length;
            self->records++;
        }
    }
    if (ferror (file)) {
        errno = EIO;
        rc = -1;
    }
    fclose (file);
    return rc;
}

//  Open path for appends, cutting it at valid_end if it goes further (2)
static int
s_open_append (zper_offsets_t *self, uint64_t valid_end, const char *damage)
{
    self->fd = open (self->path, O_RDWR | O_CLOEXEC);
    if (self->fd < 0)
        return -1;
    struct stat status;
    int rc = fstat (self->fd, &status);
    if (rc == 0 && (uint64_t) status.st_size > valid_end) {
        zsys_warning ("zper offsets: %s: %s at byte %" PRIu64 ": cut off %" PRIu64
                      " bytes (the commits they held are lost)", self->path,
                      damage? damage: "garbage", valid_end,
                      (uint64_t) status.st_size - valid_end);
        rc = ftruncate (self->fd, (off_t) valid_end);
        if (rc == 0)
            rc = fdatasync (self->fd);
    }
    self->file_size = valid_end;
    return rc;
}

zper_offsets_t *
zper_offsets_open (const char *path, size_t max_entries)
{
    assert (path);
    zper_offsets_t *self = (zper_offsets_t *) zmalloc (sizeof (zper_offsets_t));
    assert (self);
    pthread_mutex_init (&self->mutex, NULL);
    self->path = strdup (path);
    const char *slash = strrchr (path, '/');
    self->folder = slash == path? strdup ("/")
                 : slash? zsys_sprintf ("%.*s", (int) (slash - path), path): strdup (".");
    self->fd = -1;
    self->max_entries = max_entries;
    self->entries = zhashx_new ();
    self->groups = zhashx_new ();
    assert (self->path && self->folder && self->entries && self->groups);
    zhashx_set_destructor (self->entries, s_entry_destroy);

    int rc = 0;
    struct stat status;
    if (stat (path, &status) != 0)
        rc = errno == ENOENT? s_rewrite (self): -1;
    else
    if (status.st_size == 0)
        rc = s_rewrite (self);
    else {
        uint64_t valid_end;
        const char *damage;
        rc = s_replay (self, &valid_end, &damage);
        if (rc && errno == EINVAL)
            zsys_error ("zper offsets: %s is not a committed offsets file (no \"%s\" header): "
                        "refused, left as it is; move it away to start with no offsets",
                        path, OFFSETS_MAGIC);
        if (rc == 0)
            rc = s_open_append (self, valid_end, damage);
    }
    if (rc == 0 && zhashx_size (self->entries) > max_entries)
        zsys_warning ("zper offsets: %s holds %zu committed offsets, more than the %zu allowed: "
                      "all kept, new ones refused", path, zhashx_size (self->entries),
                      max_entries);
    if (rc) {
        int saved = errno;
        zper_offsets_destroy (&self);
        errno = saved;
    }
    return self;
}

void
zper_offsets_destroy (zper_offsets_t **self_p)
{
    assert (self_p);
    zper_offsets_t *self = *self_p;
    if (self) {
        if (self->fd >= 0)
            close (self->fd);
        zhashx_destroy (&self->entries);
        zhashx_destroy (&self->groups);
        pthread_mutex_destroy (&self->mutex);
        free (self->path);
        free (self->folder);
        free (self);
        *self_p = NULL;
    }
}

//  Append one record durably (4). Caller holds mutex. 0, or -1 with errno
//  and file_size, records unchanged.
static int
s_append (zper_offsets_t *self, const uint8_t *record, size_t size)
{
    int rc = 0;
    if (self->folder_unsynced) {
        rc = s_sync_folder (self);
        self->folder_unsynced = rc != 0;
        if (rc)
            return -1;      //  nothing written
    }
    rc = s_write_at (self->fd, record, size, self->file_size, self->fault_write_errno);
    if (rc == 0) {
        if (self->fault_sync_errno) {
            errno = self->fault_sync_errno;
            rc = -1;
        }
        else
            rc = fdatasync (self->fd);
    }
    if (rc == 0) {
        self->file_size += size;
        self->records++;
    }
    else {
        int saved = errno;
        if (ftruncate (self->fd, (off_t) self->file_size) == 0)
            (void) fdatasync (self->fd);
        errno = saved;
    }
    return rc;
}

//  Compact when the file holds far more records than entries (5). The
//  commit that got here is durable whatever happens, so a failure is only
//  logged (once per streak of failures).
static void
s_compact_if_due (zper_offsets_t *self)
{
    size_t entries = zhashx_size (self->entries);
    if (self->records <= 2 * entries + ZPER_OFFSETS_COMPACT_SLACK
    ||  self->records < self->compact_retry_at)
        return;
    if (s_rewrite (self) == 0) {
        self->compact_retry_at = 0;
        self->compact_warned = false;
    }
    else {
        if (!self->compact_warned)
            zsys_warning ("zper offsets: %s: cannot compact: %s (the file keeps growing; "
                          "tried again later)", self->path, strerror (errno));
        self->compact_warned = true;
        self->compact_retry_at = self->records + ZPER_OFFSETS_COMPACT_RETRY;
    }
}

int
zper_offsets_commit (zper_offsets_t *self, const char *group, const char *topic,
                     int64_t offset, int64_t timestamp_ms)
{
    assert (self && group && topic);
    if (!zper_log_name_valid (group) || !zper_log_name_valid (topic) || offset < 0) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock (&self->mutex);
    int rc = 0;
    char key [KEY_SIZE_MAX];
    s_key (key, group, topic);
    if (!zhashx_lookup (self->entries, key) && zhashx_size (self->entries) >= self->max_entries) {
        errno = EDQUOT;
        rc = -1;
    }
    zper_committed_t committed = { offset, timestamp_ms };
    if (rc == 0) {
        uint8_t record [RECORD_SIZE_MAX];
        rc = s_append (self, record, s_encode (record, group, topic, &committed));
    }
    if (rc == 0) {
        s_remember (self, group, topic, &committed);
        s_compact_if_due (self);
    }
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

int
zper_offsets_committed (zper_offsets_t *self, const char *group, const char *topic,
                        zper_committed_t *committed)
{
    assert (self && group && topic && committed);
    if (strlen (group) > ZPER_TOPIC_NAME_MAX || strlen (topic) > ZPER_TOPIC_NAME_MAX)
        return -1;
    char key [KEY_SIZE_MAX];
    s_key (key, group, topic);
    pthread_mutex_lock (&self->mutex);
    entry_t *entry = (entry_t *) zhashx_lookup (self->entries, key);
    if (entry)
        *committed = entry->committed;
    pthread_mutex_unlock (&self->mutex);
    return entry? 0: -1;
}

void
zper_offsets_each (zper_offsets_t *self, const char *group, zper_offsets_fn *fn,
                   void *argument)
{
    assert (self && fn);
    pthread_mutex_lock (&self->mutex);
    //  The map has no order: gather the wanted entries and sort them
    size_t count = 0;
    entry_t **list = (entry_t **) malloc ((zhashx_size (self->entries) + 1) * sizeof (entry_t *));
    assert (list);
    for (entry_t *entry = (entry_t *) zhashx_first (self->entries); entry;
         entry = (entry_t *) zhashx_next (self->entries))
        if (!group || streq (entry->names, group))
            list [count++] = entry;
    qsort (list, count, sizeof (entry_t *), s_entry_compare);
    for (size_t index = 0; index < count; index++)
        fn (list [index]->names, list [index]->topic, &list [index]->committed, argument);
    pthread_mutex_unlock (&self->mutex);
    free (list);
}

size_t
zper_offsets_size (zper_offsets_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t size = zhashx_size (self->entries);
    pthread_mutex_unlock (&self->mutex);
    return size;
}

size_t
zper_offsets_groups (zper_offsets_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t groups = zhashx_size (self->groups);
    pthread_mutex_unlock (&self->mutex);
    return groups;
}

bool
zper_offsets_has_group (zper_offsets_t *self, const char *group)
{
    assert (self && group);
    pthread_mutex_lock (&self->mutex);
    bool found = zhashx_lookup (self->groups, group) != NULL;
    pthread_mutex_unlock (&self->mutex);
    return found;
}

size_t
zper_offsets_records (zper_offsets_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t records = self->records;
    pthread_mutex_unlock (&self->mutex);
    return records;
}

void
zper_offsets_set_fault (zper_offsets_t *self, int write_errno, int sync_errno)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    self->fault_write_errno = write_errno;
    self->fault_sync_errno = sync_errno;
    pthread_mutex_unlock (&self->mutex);
}

//  ---- selftest ------------------------------------------------------------

static uint64_t
s_test_file_size (const char *path)
{
    struct stat status;
    int rc = stat (path, &status);
    assert (rc == 0);
    return (uint64_t) status.st_size;
}

//  Expect (group, topic) committed at offset, or none when offset is -1
static void
s_test_expect (zper_offsets_t *offsets, const char *group, const char *topic, int64_t offset)
{
    zper_committed_t committed = { -2, -2 };
    if (offset < 0)
        assert (zper_offsets_committed (offsets, group, topic, &committed) == -1);
    else {
        assert (zper_offsets_committed (offsets, group, topic, &committed) == 0);
        assert (committed.offset == offset);
        assert (committed.timestamp_ms == 1000 + offset);
    }
}

static zper_offsets_t *
s_test_reopen (zper_offsets_t **offsets_p, const char *path, size_t max_entries)
{
    zper_offsets_destroy (offsets_p);
    zper_offsets_t *offsets = zper_offsets_open (path, max_entries);
    assert (offsets);
    return offsets;
}

//  Collects "group/topic=offset " of each entry, in the order given
static void
s_test_collect (const char *group, const char *topic, const zper_committed_t *committed,
                void *argument)
{
    char *text = (char *) argument;
    size_t used = strlen (text);
    snprintf (text + used, 256 - used, "%s/%s=%" PRId64 " ", group, topic, committed->offset);
}

static void
s_test_flip_byte (const char *path, uint64_t position)
{
    int fd = open (path, O_RDWR);
    assert (fd >= 0);
    uint8_t byte;
    assert (pread (fd, &byte, 1, (off_t) position) == 1);
    byte ^= 0x20;
    assert (pwrite (fd, &byte, 1, (off_t) position) == 1);
    close (fd);
}

//  count commits of offsets after *offset, to "t.0" and "t.1" in turn
static void
s_test_commit_alternating (zper_offsets_t *offsets, int64_t *offset, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        ++*offset;
        assert (zper_offsets_commit (offsets, "a", *offset % 2? "t.0": "t.1", *offset,
                                     1000 + *offset) == 0);
    }
}

typedef struct {
    zper_offsets_t *offsets;
    const char *group;
} test_writer_t;

static void *
s_test_writer (void *argument)
{
    test_writer_t *writer = (test_writer_t *) argument;
    for (int64_t offset = 1; offset <= 50; offset++)
        assert (zper_offsets_commit (writer->offsets, writer->group, "t", offset, 1000 + offset)
                == 0);
    return NULL;
}

void
zper_offsets_test (bool verbose)
{
    //  @selftest
    const char *folder = "offsets-test";
    zsys_dir_create ("%s", folder);
    char *path = zsys_sprintf ("%s/%s", folder, ZPER_OFFSETS_FILE);
    unlink (path);

    //  A missing file is created with its magic: no entries
    zper_offsets_t *offsets = zper_offsets_open (path, 100);
    assert (offsets);
    assert (s_test_file_size (path) == OFFSETS_MAGIC_SIZE);
    assert (zper_offsets_size (offsets) == 0 && zper_offsets_records (offsets) == 0);
    s_test_expect (offsets, "g1", "t1", -1);

    //  Commit, committed, size, records; the last commit of a pair wins
    assert (zper_offsets_commit (offsets, "g1", "t1", 5, 1005) == 0);
    assert (zper_offsets_commit (offsets, "g1", "t0", 7, 1007) == 0);
    assert (zper_offsets_commit (offsets, "g0", "t9", 3, 1003) == 0);
    assert (zper_offsets_commit (offsets, "g1", "t1", 6, 1006) == 0);
    assert (zper_offsets_commit (offsets, "g1-a", "t", 0, 1000) == 0);
    s_test_expect (offsets, "g1", "t1", 6);
    s_test_expect (offsets, "g1", "t0", 7);
    s_test_expect (offsets, "g0", "t9", 3);
    s_test_expect (offsets, "g1", "t9", -1);
    assert (zper_offsets_size (offsets) == 4 && zper_offsets_records (offsets) == 5);
    assert (zper_offsets_groups (offsets) == 3);
    assert (zper_offsets_has_group (offsets, "g1-a") && !zper_offsets_has_group (offsets, "g2"));

    //  Bad arguments are refused and store nothing
    assert (zper_offsets_commit (offsets, "g1", "t1", -1, 1) == -1 && errno == EINVAL);
    assert (zper_offsets_commit (offsets, "g/1", "t1", 1, 1) == -1 && errno == EINVAL);
    assert (zper_offsets_commit (offsets, "g1", "", 1, 1) == -1 && errno == EINVAL);
    assert (zper_offsets_commit (offsets, "..", "t1", 1, 1) == -1 && errno == EINVAL);
    assert (zper_offsets_records (offsets) == 5);

    //  Each: (group, topic) order ("g1" before "g1-a"), all or one group's
    char text [256] = "";
    zper_offsets_each (offsets, NULL, s_test_collect, text);
    assert (streq (text, "g0/t9=3 g1/t0=7 g1/t1=6 g1-a/t=0 "));
    text [0] = 0;
    zper_offsets_each (offsets, "g1", s_test_collect, text);
    assert (streq (text, "g1/t0=7 g1/t1=6 "));
    text [0] = 0;
    zper_offsets_each (offsets, "none", s_test_collect, text);
    assert (streq (text, ""));

    //  Reopen: the same values
    offsets = s_test_reopen (&offsets, path, 100);
    assert (zper_offsets_size (offsets) == 4 && zper_offsets_records (offsets) == 5);
    s_test_expect (offsets, "g1", "t1", 6);
    s_test_expect (offsets, "g1", "t0", 7);
    s_test_expect (offsets, "g0", "t9", 3);
    s_test_expect (offsets, "g1-a", "t", 0);

    //  Torn tail: the last record cut in its middle is lost, the earlier
    //  ones stay, the file is repaired and takes the next commit
    uint64_t intact_size = s_test_file_size (path);
    assert (zper_offsets_commit (offsets, "g2", "t2", 9, 1009) == 0);
    assert (zper_offsets_commit (offsets, "g1", "t1", 8, 1008) == 0);
    uint64_t full_size = s_test_file_size (path);
    zper_offsets_destroy (&offsets);
    assert (truncate (path, (off_t) (full_size - 5)) == 0);
    offsets = zper_offsets_open (path, 100);
    assert (offsets);
    s_test_expect (offsets, "g1", "t1", 6);
    s_test_expect (offsets, "g2", "t2", 9);
    assert (zper_offsets_records (offsets) == 6);
    uint64_t repaired_size = s_test_file_size (path);
    assert (repaired_size > intact_size && repaired_size < full_size - 5);
    assert (zper_offsets_commit (offsets, "g1", "t1", 10, 1010) == 0);
    offsets = s_test_reopen (&offsets, path, 100);
    s_test_expect (offsets, "g1", "t1", 10);
    s_test_expect (offsets, "g2", "t2", 9);
    assert (zper_offsets_records (offsets) == 7);

    //  A torn length prefix (3 bytes of a record) is cut off too
    zper_offsets_destroy (&offsets);
    intact_size = s_test_file_size (path);
    FILE *file = fopen (path, "ab");
    assert (file);
    fwrite ("\x20\x00\x00", 1, 3, file);
    fclose (file);
    offsets = s_test_reopen (&offsets, path, 100);
    assert (s_test_file_size (path) == intact_size && zper_offsets_records (offsets) == 7);

    //  A flipped byte in the last record fails its CRC: that record is cut
    assert (zper_offsets_commit (offsets, "g3", "t3", 4, 1004) == 0);
    zper_offsets_destroy (&offsets);
    s_test_flip_byte (path, s_test_file_size (path) - 3);
    offsets = s_test_reopen (&offsets, path, 100);
    s_test_expect (offsets, "g3", "t3", -1);
    s_test_expect (offsets, "g1", "t1", 10);
    assert (s_test_file_size (path) == intact_size);

    //  ...and in an earlier record, it and every later one are cut
    uint8_t first_record [RECORD_SIZE_MAX];
    size_t first_size = s_encode (first_record, "g1", "t1", &(zper_committed_t) { 5, 1005 });
    zper_offsets_destroy (&offsets);
    s_test_flip_byte (path, OFFSETS_MAGIC_SIZE + first_size + 10);
    offsets = s_test_reopen (&offsets, path, 100);
    assert (zper_offsets_size (offsets) == 1 && zper_offsets_records (offsets) == 1);
    s_test_expect (offsets, "g1", "t1", 5);
    assert (s_test_file_size (path) == OFFSETS_MAGIC_SIZE + first_size);

    //  The disk refusing: nothing stored, in memory or in the file; the
    //  half-written or unsynced record is cut back; then commits work again
    uint64_t size_before = s_test_file_size (path);
    zper_offsets_set_fault (offsets, EIO, 0);
    assert (zper_offsets_commit (offsets, "g1", "t1", 11, 1011) == -1 && errno == EIO);
    assert (zper_offsets_commit (offsets, "g9", "t9", 11, 1011) == -1 && errno == EIO);
    zper_offsets_set_fault (offsets, 0, ENOSPC);
    assert (zper_offsets_commit (offsets, "g1", "t1", 12, 1012) == -1 && errno == ENOSPC);
    s_test_expect (offsets, "g1", "t1", 5);
    s_test_expect (offsets, "g9", "t9", -1);
    assert (zper_offsets_size (offsets) == 1 && zper_offsets_records (offsets) == 1);
    assert (s_test_file_size (path) == size_before);
    zper_offsets_set_fault (offsets, 0, 0);
    assert (zper_offsets_commit (offsets, "g1", "t1", 13, 1013) == 0);
    offsets = s_test_reopen (&offsets, path, 100);
    s_test_expect (offsets, "g1", "t1", 13);
    assert (zper_offsets_records (offsets) == 2);

    //  Long names: 249 bytes each way; 250 is refused
    char long_group [ZPER_TOPIC_NAME_MAX + 2];
    char long_topic [ZPER_TOPIC_NAME_MAX + 2];
    memset (long_group, 'g', ZPER_TOPIC_NAME_MAX);
    long_group [ZPER_TOPIC_NAME_MAX] = 0;
    memset (long_topic, 't', ZPER_TOPIC_NAME_MAX);
    long_topic [ZPER_TOPIC_NAME_MAX] = 0;
    assert (zper_offsets_commit (offsets, long_group, long_topic, 42, 1042) == 0);
    offsets = s_test_reopen (&offsets, path, 100);
    s_test_expect (offsets, long_group, long_topic, 42);
    strcat (long_group, "g");
    assert (zper_offsets_commit (offsets, long_group, "t", 42, 1042) == -1 && errno == EINVAL);
    s_test_expect (offsets, long_group, "t", -1);
    zper_offsets_destroy (&offsets);

    //  max_entries: a new pair is refused and nothing written; a known
    //  pair still takes commits. A lowered limit keeps what the file holds.
    unlink (path);
    offsets = zper_offsets_open (path, 3);
    assert (offsets);
    assert (zper_offsets_commit (offsets, "a", "t", 1, 1001) == 0);
    assert (zper_offsets_commit (offsets, "b", "t", 2, 1002) == 0);
    assert (zper_offsets_commit (offsets, "c", "t", 3, 1003) == 0);
    size_before = s_test_file_size (path);
    assert (zper_offsets_commit (offsets, "d", "t", 4, 1004) == -1 && errno == EDQUOT);
    assert (s_test_file_size (path) == size_before && zper_offsets_size (offsets) == 3);
    assert (zper_offsets_commit (offsets, "b", "t", 5, 1005) == 0);
    offsets = s_test_reopen (&offsets, path, 2);
    assert (zper_offsets_size (offsets) == 3);
    s_test_expect (offsets, "b", "t", 5);
    s_test_expect (offsets, "d", "t", -1);
    assert (zper_offsets_commit (offsets, "d", "t", 4, 1004) == -1 && errno == EDQUOT);
    assert (zper_offsets_commit (offsets, "a", "t", 6, 1006) == 0);
    zper_offsets_destroy (&offsets);

    //  Compaction: past 2 x entries + slack records the file is rewritten
    //  with one record per entry, and keeps its values across a reopen
    unlink (path);
    offsets = zper_offsets_open (path, 100);
    assert (offsets);
    size_t threshold = 2 * 2 + ZPER_OFFSETS_COMPACT_SLACK;
    int64_t offset = 0;
    s_test_commit_alternating (offsets, &offset, threshold);
    assert (zper_offsets_records (offsets) == threshold);
    s_test_commit_alternating (offsets, &offset, 1);
    assert (zper_offsets_records (offsets) == 2 && zper_offsets_size (offsets) == 2);
    size_t compacted_size = OFFSETS_MAGIC_SIZE
                          + 2 * s_encode (first_record, "a", "t.0", &(zper_committed_t) { 0, 0 });
    assert (s_test_file_size (path) == compacted_size);
    char *temporary = zsys_sprintf ("%s.tmp", path);
    assert (!zsys_file_exists (temporary));
    offsets = s_test_reopen (&offsets, path, 100);
    assert (zper_offsets_records (offsets) == 2);
    s_test_expect (offsets, "a", offset % 2? "t.0": "t.1", offset);
    s_test_expect (offsets, "a", offset % 2? "t.1": "t.0", offset - 1);

    //  A failed compaction (path.tmp cannot be created) leaves the old
    //  file in use: commits go on, and it is tried again
    //  ZPER_OFFSETS_COMPACT_RETRY records later
    assert (zsys_dir_create ("%s", temporary) == 0);
    s_test_commit_alternating (offsets, &offset, threshold - 1);
    assert (zper_offsets_records (offsets) == threshold + 1);
    assert (zsys_dir_delete ("%s", temporary) == 0);
    s_test_commit_alternating (offsets, &offset, ZPER_OFFSETS_COMPACT_RETRY - 1);
    assert (zper_offsets_records (offsets) == threshold + ZPER_OFFSETS_COMPACT_RETRY);
    s_test_commit_alternating (offsets, &offset, 1);
    assert (zper_offsets_records (offsets) == 2);
    offsets = s_test_reopen (&offsets, path, 100);
    assert (zper_offsets_records (offsets) == 2);
    s_test_expect (offsets, "a", offset % 2? "t.0": "t.1", offset);
    s_test_expect (offsets, "a", offset % 2? "t.1": "t.0", offset - 1);
    zstr_free (&temporary);

    //  Concurrent commits from two threads all land
    pthread_t threads [2];
    test_writer_t writers [2] = { { offsets, "w0" }, { offsets, "w1" } };
    for (int index = 0; index < 2; index++)
        assert (pthread_create (&threads [index], NULL, s_test_writer, &writers [index]) == 0);
    for (int index = 0; index < 2; index++)
        pthread_join (threads [index], NULL);
    offsets = s_test_reopen (&offsets, path, 100);
    s_test_expect (offsets, "w0", "t", 50);
    s_test_expect (offsets, "w1", "t", 50);
    assert (zper_offsets_records (offsets) == 102);
    zper_offsets_destroy (&offsets);

    //  A file that is not ours is refused and left untouched; an empty one
    //  holds nothing and becomes a new file
    const char *foreign [] = { "NOTOURS! some data\n", "ZPE" };
    for (size_t index = 0; index < sizeof foreign / sizeof foreign [0]; index++) {
        file = fopen (path, "wb");
        assert (file);
        fputs (foreign [index], file);
        fclose (file);
        errno = 0;
        assert (zper_offsets_open (path, 100) == NULL && errno == EINVAL);
        char content [64] = "";
        file = fopen (path, "rb");
        assert (file);
        size_t got = fread (content, 1, sizeof content - 1, file);
        fclose (file);
        assert (got == strlen (foreign [index]) && streq (content, foreign [index]));
    }
    file = fopen (path, "wb");
    assert (file);
    fclose (file);
    offsets = zper_offsets_open (path, 100);
    assert (offsets && zper_offsets_size (offsets) == 0);
    assert (s_test_file_size (path) == OFFSETS_MAGIC_SIZE);
    zper_offsets_destroy (&offsets);
    zper_offsets_destroy (&offsets);        //  idempotent

    unlink (path);
    zstr_free (&path);
    zsys_dir_delete ("%s", folder);
    if (verbose)
        printf ("zper_offsets: OK\n");
    //  @end
}
