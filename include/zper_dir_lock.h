/*  =========================================================================
    zper_dir_lock - one process at a time in a log's data folder

    Two processes appending to one log overwrite each other's acknowledged
    writes (each believes it owns the segment ends). So the log engine
    (zper_log_new) locks its folder before it touches any file in it, and
    keeps the lock for its whole life: a second zperd or Dafka store on the
    same folder is refused at once, and told which process holds it.
    ========================================================================= */

#ifndef ZPER_DIR_LOCK_H_INCLUDED
#define ZPER_DIR_LOCK_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "zper_defaults.h"

typedef struct _zper_dir_lock_t zper_dir_lock_t;

//  Lock the folder at path for this process: check that it is a folder this
//  process can create files in, take the exclusive lock of its
//  ZPER_DIR_LOCK_FILE without waiting, and write this process's pid there.
//  Returns the lock, or NULL with errno: ENOTDIR (not a folder), EACCES,
//  EPERM or EROFS (cannot write in it), EWOULDBLOCK (another holder, in
//  this process or another: zper_dir_lock_holder names it), or the error
//  of stat or open.
zper_dir_lock_t *
    zper_dir_lock_new (const char *path);

//  Release the lock (its file stays, see the source). Idempotent; nulls
//  *self_p.
void
    zper_dir_lock_destroy (zper_dir_lock_t **self_p);

//  The pid that the holder of path's lock wrote into the lock file, or -1
//  if none can be read (no file, or the holder is still writing it).
int
    zper_dir_lock_holder (const char *path);

//  One line for a user saying why the data folder path cannot be used,
//  given the errno that zper_dir_lock_new (or zper_log_new) failed with:
//  names the folder, and the holder's pid when another process holds it.
//  The caller frees the string (zstr_free).
char *
    zper_dir_lock_reason (const char *path, int error);

//  Self test of this class
void
    zper_dir_lock_test (bool verbose);

#endif
