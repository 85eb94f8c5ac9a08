/*  =========================================================================
    zper_dir_lock - one process at a time in a log's data folder

    The lock is flock (LOCK_EX) on <folder>/.lock, as Kafka does. The one
    thing to know is why flock: the kernel drops it with the holder's last
    descriptor, so a holder that dies (kill -9, a crash, a power loss)
    never leaves a stale lock behind, and a restart needs no clean-up.

    Invariants:
    (1) The lock is taken before any other file of the folder is opened,
        and released only after every one of them is closed
        (zper_log_new / zper_log_destroy).
    (2) The lock file holds the holder's pid in decimal, for refusals to
        name it; it is informative only: the flock alone decides.
    (3) The lock file is never removed. Removing it would let a process
        that opened it just before lock the removed file while a third
        one creates and locks a new one: two holders.
    (4) flock belongs to an open file description, so a second lock of the
        same folder from the same process is refused too.
    ========================================================================= */

#include "zper_dir_lock.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PID_TEXT_MAX    32              //  "<pid>\n" with room to spare

struct _zper_dir_lock_t {
    int fd;                             //  the open lock file, holding the flock
};

//  0 if path is a folder in which this process may create files, else -1
//  with errno. access() asks the kernel with the real rules: permission
//  bits, but also a read-only mount or an immutable folder, which stop
//  even root.
static int
s_check_folder (const char *path)
{
    struct stat status;
    if (stat (path, &status))
        return -1;
    if (!S_ISDIR (status.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access (path, W_OK | X_OK);
}

zper_dir_lock_t *
zper_dir_lock_new (const char *path)
{
    assert (path);
    if (s_check_folder (path))
        return NULL;
    char *lock_path = zsys_sprintf ("%s/%s", path, ZPER_DIR_LOCK_FILE);
    int fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free (lock_path);
    if (fd < 0)
        return NULL;
    if (flock (fd, LOCK_EX | LOCK_NB)) {
        int saved = errno;
        close (fd);
        errno = saved;
        return NULL;
    }
    //  The pid only names the holder in a refusal (2): a full disk must not
    //  stop a start-up over it, so a failed write is left at that
    char pid [PID_TEXT_MAX];
    int size = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
    if (ftruncate (fd, 0) == 0 && pwrite (fd, pid, (size_t) size, 0) != size)
        zsys_warning ("zper log: cannot write the pid into the lock of %s", path);
    zper_dir_lock_t *self = (zper_dir_lock_t *) zmalloc (sizeof (zper_dir_lock_t));
    self->fd = fd;
    return self;
}

void
zper_dir_lock_destroy (zper_dir_lock_t **self_p)
{
    assert (self_p);
    zper_dir_lock_t *self = *self_p;
    if (self) {
        close (self->fd);               //  releases the flock (3: the file stays)
        free (self);
        *self_p = NULL;
    }
}

int
zper_dir_lock_holder (const char *path)
{
    assert (path);
    char *lock_path = zsys_sprintf ("%s/%s", path, ZPER_DIR_LOCK_FILE);
    int fd = open (lock_path, O_RDONLY | O_CLOEXEC);
    free (lock_path);
    if (fd < 0)
        return -1;
    char text [PID_TEXT_MAX] = { 0 };
    ssize_t size = pread (fd, text, sizeof text - 1, 0);
    close (fd);
    long pid = size > 0? strtol (text, NULL, 10): 0;
    return pid > 0 && pid <= INT32_MAX? (int) pid: -1;
}

char *
zper_dir_lock_reason (const char *path, int error)
{
    assert (path);
    if (error == EWOULDBLOCK) {
        int holder = zper_dir_lock_holder (path);
        if (holder > 0)
            return zsys_sprintf ("cannot use data folder %s: process %d holds its lock (another "
                                 "zperd or Dafka store uses it): stop that one or choose another "
                                 "folder", path, holder);
        return zsys_sprintf ("cannot use data folder %s: another process holds its lock (another "
                             "zperd or Dafka store uses it)", path);
    }
    if (error == ENOTDIR)
        return zsys_sprintf ("cannot use data folder %s: it is not a folder", path);
    if (error == EACCES || error == EPERM || error == EROFS)
        return zsys_sprintf ("cannot use data folder %s: cannot write in it (%s)",
                             path, strerror (error));
    return zsys_sprintf ("cannot use data folder %s: %s", path, strerror (error));
}

void
zper_dir_lock_test (bool verbose)
{
    //  @selftest
    assert (zsys_dir_create ("data") == 0);
    zper_dir_lock_t *lock = zper_dir_lock_new ("data");
    assert (lock);
    assert (zper_dir_lock_holder ("data") == (int) getpid ());
    //  A second holder is refused, even in this process (4), and told who holds it
    assert (zper_dir_lock_new ("data") == NULL && errno == EWOULDBLOCK);
    char *reason = zper_dir_lock_reason ("data", EWOULDBLOCK);
    char *pid = zsys_sprintf ("process %d holds", (int) getpid ());
    assert (strstr (reason, "data folder data") && strstr (reason, pid));
    zstr_free (&pid);
    zstr_free (&reason);
    zper_dir_lock_destroy (&lock);
    zper_dir_lock_destroy (&lock);
    //  Released: the next holder gets it, and the file stayed (3)
    assert (access ("data/" ZPER_DIR_LOCK_FILE, F_OK) == 0);
    lock = zper_dir_lock_new ("data");
    assert (lock);
    zper_dir_lock_destroy (&lock);

    //  Not a folder, or no folder at all: refused before any file is created
    FILE *file = fopen ("plain", "w");
    assert (file);
    fclose (file);
    assert (zper_dir_lock_new ("plain") == NULL && errno == ENOTDIR);
    reason = zper_dir_lock_reason ("plain", ENOTDIR);
    assert (streq (reason, "cannot use data folder plain: it is not a folder"));
    zstr_free (&reason);
    assert (zper_dir_lock_new ("missing") == NULL && errno == ENOENT);
    assert (zper_dir_lock_holder ("missing") == -1);
    reason = zper_dir_lock_reason ("ro", EROFS);
    assert (strstr (reason, "cannot write in it"));
    zstr_free (&reason);
    //  @end
}
