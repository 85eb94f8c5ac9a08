/*  =========================================================================
    zper_selftest - run the selftest of every module, or of the ones named

    Usage: zper_selftest [-v] [module ...]     e.g.  zper_selftest -v zper_crc32c
    The module list is gathered at configure time from every src/<area>/selftests.inc
    (lines of the form ZPER_SELFTEST (zper_module)); each module provides
    void zper_module_test (bool verbose). Each test runs in a fresh temporary
    working directory so that tests never see each other's files.
    ========================================================================= */

#include <czmq.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#define ZPER_SELFTEST(name) void name##_test (bool verbose);
#include "zper_selftests.inc"
#undef ZPER_SELFTEST

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} selftest_t;

#define ZPER_SELFTEST(name) { #name, name##_test },
static selftest_t selftests [] = {
#include "zper_selftests.inc"
    { NULL, NULL }
};
#undef ZPER_SELFTEST

static int
s_run (selftest_t *selftest, bool verbose)
{
    char scratch [] = "/tmp/zper-selftest-XXXXXX";
    char *previous = getcwd (NULL, 0);
    if (!mkdtemp (scratch) || chdir (scratch)) {
        fprintf (stderr, "zper_selftest: cannot create a scratch directory: %s\n", strerror (errno));
        free (previous);
        return -1;
    }
    printf (" * %s: ", selftest->name);
    fflush (stdout);
    selftest->test (verbose);
    printf ("OK\n");
    int rc = chdir (previous);
    free (previous);
    char command [sizeof scratch + 16];
    snprintf (command, sizeof command, "rm -rf %s", scratch);
    if (system (command) != 0)
        fprintf (stderr, "zper_selftest: could not remove %s\n", scratch);
    return rc;
}

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int argn = 1;
    if (argn < argc && streq (argv [argn], "-v")) {
        verbose = true;
        argn++;
    }
    int ran = 0;
    for (selftest_t *selftest = selftests; selftest->name; selftest++) {
        bool wanted = argn == argc;
        for (int index = argn; index < argc; index++)
            if (streq (argv [index], selftest->name))
                wanted = true;
        if (wanted) {
            if (s_run (selftest, verbose))
                return 1;
            ran++;
        }
    }
    if (ran == 0 || (argn < argc && ran != argc - argn)) {
        fprintf (stderr, "zper_selftest: unknown module name among the arguments\n");
        return 1;
    }
    //  Plain closing line, read by CI tooling as a count.
    printf ("%d passed, 0 failed\n", ran);
    zsys_shutdown ();
    return 0;
}
