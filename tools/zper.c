/*  =========================================================================
    zper - the one command-line tool of ZPER, in the spirit of kcat

    Usage: zper VERB [options...]; zper VERB --help.
    Each area contributes its verbs in tools/zper_cmd_<area>.c, listed in
    tools/zper_verbs_<area>.inc (the build joins the lists of the areas it
    builds into zper_verbs.inc):
      log      log dump | verify
      client   produce, consume, topics, offsets, stats, keygen
      dafka    tower, store, and the Dafka producer/consumer verbs
    Each line there reads ZPER_VERB ("name", function, "one-line help"), and the
    function has the shape int fn (int argc, char *argv []) with argv [0] = verb;
    it returns the process exit code (0 ok, 1 failure, 2 usage error).
    ========================================================================= */

#include "zper_cli.h"

static const struct {
    const char *name;
    int (*run) (int argc, char *argv []);
    const char *help;
} s_verbs [] = {
#define ZPER_VERB(name, function, help) { name, function, help },
#include "zper_verbs.inc"
#undef ZPER_VERB
    { NULL, NULL, NULL }
};

static void
s_usage (FILE *stream)
{
    fprintf (stream, "usage: zper VERB [options]   (zper VERB --help for details)\n\nverbs:\n");
    for (int index = 0; s_verbs [index].name; index++)
        fprintf (stream, "  %-12s %s\n", s_verbs [index].name, s_verbs [index].help);
}

int
main (int argc, char *argv [])
{
    if (argc < 2 || streq (argv [1], "--help") || streq (argv [1], "-h")) {
        s_usage (argc < 2? stderr: stdout);
        return argc < 2? 2: 0;
    }
    if (streq (argv [1], "--version")) {
        printf ("zper %s\n", ZPER_VERSION_STRING);
        return 0;
    }
    for (int index = 0; s_verbs [index].name; index++)
        if (streq (argv [1], s_verbs [index].name)) {
            int rc = s_verbs [index].run (argc - 1, argv + 1);
            zsys_shutdown ();
            return rc;
        }
    fprintf (stderr, "zper: unknown verb '%s' (try 'zper --help')\n", argv [1]);
    return 2;
}
