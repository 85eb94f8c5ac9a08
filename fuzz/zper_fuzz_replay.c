/*  =========================================================================
    zper_fuzz_replay - run a fuzz target over files, without libFuzzer

    Usage: zper_fuzz_<target> FILE|FOLDER...     (CI: the target's corpus)
    Linked with the normal compiler and sanitizers, it feeds each file to
    LLVMFuzzerTestOneInput once, so every committed corpus input (seeds and
    past crashes) is a regression test even where clang is missing.
    ========================================================================= */

#include "zper_fuzz.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        perror (path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    while (!feof (file)) {
        if (size == capacity) {
            capacity = capacity? capacity * 2: 4096;
            data = realloc (data, capacity);
            assert (data);
        }
        size += fread (data + size, 1, capacity - size, file);
        if (ferror (file))
            break;
    }
    fclose (file);
    LLVMFuzzerTestOneInput (data? data: (const uint8_t *) "", size);
    free (data);
    return 0;
}

int
main (int argc, char *argv [])
{
    size_t replayed = 0;
    for (int index = 1; index < argc; index++) {
        struct stat status;
        if (stat (argv [index], &status)) {
            perror (argv [index]);
            return 1;
        }
        if (!S_ISDIR (status.st_mode)) {
            if (s_replay_file (argv [index]))
                return 1;
            replayed++;
            continue;
        }
        DIR *dir = opendir (argv [index]);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [4096];
            snprintf (path, sizeof path, "%s/%s", argv [index], entry->d_name);
            if (s_replay_file (path))
                return 1;
            replayed++;
        }
        if (dir)
            closedir (dir);
    }
    printf ("%s: %zu inputs replayed\n", argv [0], replayed);
    zsys_shutdown ();
    return replayed? 0: 1;
}
