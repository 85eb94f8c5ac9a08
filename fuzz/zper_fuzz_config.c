/*  =========================================================================
    zper_fuzz_config - fuzz target: the config file parser

    Any bytes as a config file (src/manager/zper_config.c). A parse either
    succeeds or fails with a one-line message naming the file; a config that
    parsed prints and re-parses to the same values (printed the same).
    ========================================================================= */

#include "zper_fuzz.h"
#include "zper_config.h"
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    assert (text);
    memcpy (text, data, size);
    text [size] = 0;
    zper_config_t config;
    zper_config_init (&config);
    char error [512] = "";
    if (zper_config_parse (&config, "fuzz.conf", text, error, sizeof error)) {
        assert (strncmp (error, "fuzz.conf", 9) == 0);
        assert (strchr (error, '\n') == NULL);
    }
    else {
        //  What parsed prints in config form, and that text parses back to the same values.
        char *printed = NULL;
        size_t printed_size = 0;
        FILE *stream = open_memstream (&printed, &printed_size);
        assert (stream);
        zper_config_print (&config, stream);
        fclose (stream);
        zper_config_t again;
        zper_config_init (&again);
        if (zper_config_parse (&again, "printed", printed, error, sizeof error)) {
            fprintf (stderr, "printed config does not parse: %s\n%s", error, printed);
            abort ();
        }
        char *reprinted = NULL;
        size_t reprinted_size = 0;
        stream = open_memstream (&reprinted, &reprinted_size);
        assert (stream);
        zper_config_print (&again, stream);
        fclose (stream);
        assert (streq (printed, reprinted));
        free (printed);
        free (reprinted);
    }
    free (text);
    return 0;
}
