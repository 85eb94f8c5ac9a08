/*  =========================================================================
    zper_epochs - a partition's leader epochs: which leader wrote which offsets

    The one thing to know: the file on disk is the truth and is only ever
    replaced whole. Every change builds the new list in memory, writes it to
    `leader-epochs.tmp`, fdatasyncs, renames it over `leader-epochs` and
    fsyncs the folder; only then does the in-memory list change. So a failed
    change leaves both the file and the object as they were.

    FORMAT: text, one entry per line, "<epoch> <start_offset>\n" in decimal,
    epochs and start offsets strictly increasing, at most ZPER_EPOCHS_MAX
    lines. A missing file is an empty list; anything else that does not
    parse (or breaks the order) is EBADMSG.
    ========================================================================= */

#include "zper_epochs.h"
#include "zper_defaults.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>

typedef struct {
    int64_t epoch;
    int64_t start_offset;
} epoch_entry_t;

struct _zper_epochs_t {
    pthread_mutex_t mutex;
    char *folder;
    char *path;                     //  folder/leader-epochs
    epoch_entry_t entries [ZPER_EPOCHS_MAX];
    size_t count;
};

//  Parse the file at path into entries; 0 (a missing file is empty), or
//  -1 with errno (EBADMSG when it does not parse)
static int
s_load (zper_epochs_t *self)
{
    FILE *file = fopen (self->path, "r");
    if (!file)
        return errno == ENOENT? 0: -1;
    int rc = 0;
    char line [64];
    while (rc == 0 && fgets (line, sizeof line, file)) {
        epoch_entry_t entry;
        char tail;
        if (self->count == ZPER_EPOCHS_MAX
        ||  sscanf (line, "%" SCNd64 " %" SCNd64 "%c", &entry.epoch, &entry.start_offset,
                    &tail) != 3 || tail != '\n'
        ||  entry.epoch < 0 || entry.start_offset < 0
        ||  (self->count > 0 && (entry.epoch <= self->entries [self->count - 1].epoch
                              || entry.start_offset < self->entries [self->count - 1].start_offset))) {
            errno = EBADMSG;
            rc = -1;
        }
        else
            self->entries [self->count++] = entry;
    }
    if (rc == 0 && ferror (file)) {
        errno = EIO;
        rc = -1;
    }
    fclose (file);
    return rc;
}

//  Replace the file by entries [0, count) atomically and durably, then
//  adopt them. Caller holds mutex. 0, or -1 with errno (nothing changed).
static int
s_store (zper_epochs_t *self, const epoch_entry_t *entries, size_t count)
{
    assert (count <= ZPER_EPOCHS_MAX);
    char *temporary = zsys_sprintf ("%s.tmp", self->path);
    int rc = -1;
    int fd = open (temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto exit;
    FILE *file = fdopen (fd, "w");
    if (!file) {
        close (fd);
        goto exit;
    }
    bool failed = false;
    for (size_t index = 0; index < count && !failed; index++)
        failed = fprintf (file, "%" PRId64 " %" PRId64 "\n",
                          entries [index].epoch, entries [index].start_offset) < 0;
    failed = failed || fflush (file) != 0 || fdatasync (fileno (file)) != 0;
    int saved = errno;
    if (fclose (file) != 0 && !failed) {
        failed = true;
        saved = errno;
    }
    errno = saved;
    if (failed || rename (temporary, self->path))
        goto exit;
    int folder_fd = open (self->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd < 0)
        goto exit;
    rc = fsync (folder_fd);
    saved = errno;
    close (folder_fd);
    errno = saved;
    if (rc == 0) {
        if (entries != self->entries)
            memmove (self->entries, entries, count * sizeof (epoch_entry_t));
        self->count = count;
    }
exit:
    if (rc) {
        int saved_errno = errno;
        unlink (temporary);
        errno = saved_errno;
    }
    zstr_free (&temporary);
    return rc;
}

zper_epochs_t *
zper_epochs_open (const char *folder)
{
    assert (folder);
    zper_epochs_t *self = (zper_epochs_t *) zmalloc (sizeof (zper_epochs_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->folder = strdup (folder);
    self->path = zsys_sprintf ("%s/%s", folder, ZPER_EPOCHS_FILE);
    if (s_load (self)) {
        int saved = errno;
        zper_epochs_destroy (&self);
        errno = saved;
    }
    return self;
}

void
zper_epochs_destroy (zper_epochs_t **self_p)
{
    assert (self_p);
    zper_epochs_t *self = *self_p;
    if (self) {
        pthread_mutex_destroy (&self->mutex);
        free (self->folder);
        zstr_free (&self->path);
        free (self);
        *self_p = NULL;
    }
}

int
zper_epochs_assign (zper_epochs_t *self, int64_t epoch, int64_t start_offset)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int rc = 0;
    const epoch_entry_t *latest = self->count? &self->entries [self->count - 1]: NULL;
    if (epoch < 0 || start_offset < 0
    ||  (latest && (epoch < latest->epoch || start_offset < latest->start_offset))) {
        errno = EINVAL;
        rc = -1;
    }
    else
    if (!latest || epoch > latest->epoch) {
        //  The new list: the old one, less its oldest entry when full
        epoch_entry_t *entries = (epoch_entry_t *) malloc (sizeof self->entries);
        assert (entries);
        size_t dropped = self->count == ZPER_EPOCHS_MAX? 1: 0;
        size_t count = self->count - dropped;
        memcpy (entries, self->entries + dropped, count * sizeof (epoch_entry_t));
        entries [count++] = (epoch_entry_t) { epoch, start_offset };
        rc = s_store (self, entries, count);
        free (entries);
    }
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

int64_t
zper_epochs_latest (zper_epochs_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int64_t epoch = self->count? self->entries [self->count - 1].epoch: -1;
    pthread_mutex_unlock (&self->mutex);
    return epoch;
}

int64_t
zper_epochs_latest_start (zper_epochs_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int64_t start = self->count? self->entries [self->count - 1].start_offset: -1;
    pthread_mutex_unlock (&self->mutex);
    return start;
}

int64_t
zper_epochs_end_offset (zper_epochs_t *self, int64_t epoch, int64_t log_end, int64_t *found)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    //  Entries are few (ZPER_EPOCHS_MAX) and this runs once per follower
    //  (re)start: a linear walk from the newest is plenty
    size_t index = self->count;
    while (index > 0 && self->entries [index - 1].epoch > epoch)
        index--;
    int64_t end_offset;
    if (index == 0) {
        end_offset = self->count? self->entries [0].start_offset: log_end;
        if (found)
            *found = -1;
    }
    else {
        end_offset = index == self->count? log_end: self->entries [index].start_offset;
        if (found)
            *found = self->entries [index - 1].epoch;
    }
    pthread_mutex_unlock (&self->mutex);
    return end_offset;
}

int
zper_epochs_truncate_from (zper_epochs_t *self, int64_t offset)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t count = self->count;
    while (count > 0 && self->entries [count - 1].start_offset >= offset)
        count--;
    int rc = count == self->count? 0: s_store (self, self->entries, count);
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

int
zper_epochs_clear (zper_epochs_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int rc = s_store (self, self->entries, 0);
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

size_t
zper_epochs_list (zper_epochs_t *self, int64_t *epochs, int64_t *starts, size_t max)
{
    assert (self && (max == 0 || (epochs && starts)));
    pthread_mutex_lock (&self->mutex);
    size_t count = self->count < max? self->count: max;
    for (size_t index = 0; index < count; index++) {
        epochs [index] = self->entries [index].epoch;
        starts [index] = self->entries [index].start_offset;
    }
    pthread_mutex_unlock (&self->mutex);
    return count;
}

//  ---- selftest ------------------------------------------------------------

//  Reopen from the file: what is there must be what was in memory
static zper_epochs_t *
s_test_reopen (zper_epochs_t **epochs_p, const char *folder)
{
    int64_t epochs [8], starts [8];
    size_t count = zper_epochs_list (*epochs_p, epochs, starts, 8);
    zper_epochs_destroy (epochs_p);
    zper_epochs_t *epochs_object = zper_epochs_open (folder);
    assert (epochs_object);
    int64_t reopened_epochs [8], reopened_starts [8];
    assert (zper_epochs_list (epochs_object, reopened_epochs, reopened_starts, 8) == count);
    assert (memcmp (epochs, reopened_epochs, count * sizeof (int64_t)) == 0);
    assert (memcmp (starts, reopened_starts, count * sizeof (int64_t)) == 0);
    return epochs_object;
}

void
zper_epochs_test (bool verbose)
{
    //  @selftest
    const char *folder = "epochs-test";
    zsys_dir_create ("%s", folder);
    char *path = zsys_sprintf ("%s/%s", folder, ZPER_EPOCHS_FILE);
    unlink (path);

    //  A missing file is an empty list
    zper_epochs_t *epochs = zper_epochs_open (folder);
    assert (epochs);
    assert (zper_epochs_latest (epochs) == -1 && zper_epochs_latest_start (epochs) == -1);
    int64_t found = 99;
    assert (zper_epochs_end_offset (epochs, 3, 42, &found) == 42 && found == -1);

    //  Assign: increasing epochs and starts; the same epoch again is a no-op
    assert (zper_epochs_assign (epochs, 1, 0) == 0);
    assert (zper_epochs_assign (epochs, 1, 7) == 0);
    assert (zper_epochs_latest_start (epochs) == 0);
    assert (zper_epochs_assign (epochs, 3, 10) == 0);
    assert (zper_epochs_assign (epochs, 2, 20) == -1 && errno == EINVAL);
    assert (zper_epochs_assign (epochs, 4, 9) == -1 && errno == EINVAL);
    assert (zper_epochs_assign (epochs, 5, 10) == 0);   //  epoch 3 wrote nothing
    assert (zper_epochs_assign (epochs, 7, 25) == 0);
    epochs = s_test_reopen (&epochs, folder);
    assert (zper_epochs_latest (epochs) == 7 && zper_epochs_latest_start (epochs) == 25);
    //  [(1,0) (3,10) (5,10) (7,25)]

    //  KIP-279 end offsets
    assert (zper_epochs_end_offset (epochs, 1, 30, &found) == 10 && found == 1);
    assert (zper_epochs_end_offset (epochs, 3, 30, &found) == 10 && found == 3);
    assert (zper_epochs_end_offset (epochs, 4, 30, &found) == 10 && found == 3);
    assert (zper_epochs_end_offset (epochs, 6, 30, &found) == 25 && found == 5);
    assert (zper_epochs_end_offset (epochs, 7, 30, &found) == 30 && found == 7);
    assert (zper_epochs_end_offset (epochs, 9, 30, &found) == 30 && found == 7);
    assert (zper_epochs_end_offset (epochs, 0, 30, &found) == 0 && found == -1);
    assert (zper_epochs_end_offset (epochs, -1, 30, &found) == 0 && found == -1);

    //  Truncate from an offset drops the entries starting at or after it
    assert (zper_epochs_truncate_from (epochs, 26) == 0);
    assert (zper_epochs_latest (epochs) == 7);
    assert (zper_epochs_truncate_from (epochs, 25) == 0);
    assert (zper_epochs_latest (epochs) == 5);
    epochs = s_test_reopen (&epochs, folder);
    assert (zper_epochs_truncate_from (epochs, 10) == 0);
    epochs = s_test_reopen (&epochs, folder);
    assert (zper_epochs_latest (epochs) == 1 && zper_epochs_latest_start (epochs) == 0);
    assert (zper_epochs_clear (epochs) == 0);
    epochs = s_test_reopen (&epochs, folder);
    assert (zper_epochs_latest (epochs) == -1);

    //  The bound: the oldest entries go
    for (int64_t epoch = 0; epoch < ZPER_EPOCHS_MAX + 3; epoch++)
        assert (zper_epochs_assign (epochs, epoch, epoch * 10) == 0);
    int64_t *all_epochs = (int64_t *) malloc ((ZPER_EPOCHS_MAX + 3) * sizeof (int64_t));
    int64_t *all_starts = (int64_t *) malloc ((ZPER_EPOCHS_MAX + 3) * sizeof (int64_t));
    assert (all_epochs && all_starts);
    assert (zper_epochs_list (epochs, all_epochs, all_starts, ZPER_EPOCHS_MAX + 3)
            == ZPER_EPOCHS_MAX);
    assert (all_epochs [0] == 3 && all_starts [0] == 30);
    zper_epochs_destroy (&epochs);
    epochs = zper_epochs_open (folder);
    assert (epochs);
    assert (zper_epochs_list (epochs, all_epochs, all_starts, ZPER_EPOCHS_MAX + 3)
            == ZPER_EPOCHS_MAX);
    assert (all_epochs [0] == 3 && zper_epochs_latest (epochs) == ZPER_EPOCHS_MAX + 2);
    free (all_epochs);
    free (all_starts);
    zper_epochs_destroy (&epochs);

    //  A malformed file is refused
    const char *malformed [] = { "1 0\n2 x\n", "3 5\n2 9\n", "1 5\n2 4\n", "1 0" };
    for (size_t index = 0; index < sizeof malformed / sizeof malformed [0]; index++) {
        FILE *file = fopen (path, "w");
        assert (file);
        fputs (malformed [index], file);
        fclose (file);
        errno = 0;
        assert (zper_epochs_open (folder) == NULL && errno == EBADMSG);
    }
    unlink (path);
    zstr_free (&path);
    zsys_dir_delete ("%s", folder);
    if (verbose)
        printf ("zper_epochs: OK\n");
    //  @end
}
