/*  =========================================================================
    zper_fuzz_scratch - one scratch folder per fuzz process

    Targets that open a log get a fresh folder under /dev/shm (or /tmp), so
    that fdatasync is cheap and nothing lands in the source tree. The folder
    and everything in it is removed when the process exits.
    ========================================================================= */

#include "zper_fuzz.h"
#include <stdlib.h>
#include <unistd.h>

static char s_scratch [64];

static void
s_remove_scratch (void)
{
    zdir_t *dir = zdir_new (s_scratch, NULL);
    if (dir) {
        zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
}

const char *
zper_fuzz_scratch (void)
{
    if (*s_scratch == 0) {
        const char *parent = access ("/dev/shm", W_OK) == 0? "/dev/shm": "/tmp";
        snprintf (s_scratch, sizeof s_scratch, "%s/zper-fuzz-XXXXXX", parent);
        if (!mkdtemp (s_scratch)) {
            perror ("zper fuzz: mkdtemp");
            abort ();
        }
        atexit (s_remove_scratch);
    }
    return s_scratch;
}
