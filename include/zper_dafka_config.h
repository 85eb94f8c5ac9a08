/*  =========================================================================
    zper_dafka_config - Dafka settings: a CZMQ ZPL tree with checked getters

    Dafka nodes read their settings from a zconfig_t (CZMQ's ZPL format,
    keys such as "beacon/interval"), like the reference. Missing keys take
    the defaults of zper_defaults.h: the reference's, except the addresses
    (loopback, ports clear of zperd's). This module adds the one
    thing zconfig lacks: a number that does not parse is an error naming the
    key, not a silent zero.
    ========================================================================= */

#ifndef ZPER_DAFKA_CONFIG_H_INCLUDED
#define ZPER_DAFKA_CONFIG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  Load a ZPL file, or an empty tree when path is NULL. Returns NULL and
//  prints one line naming the file when it cannot be read or parsed, or
//  when a numeric key holds a bad value. The security/ keys are checked by
//  zper_dafka_config_check, once the command line has had its say.
zconfig_t *
    zper_dafka_config_load (const char *path);

//  Check every key this module knows: numbers parse, and with
//  security/curve = 1 the certificate, the allowed folder and the tower key
//  (zper_dafka_security_check). Returns 0, or -1 after printing
//  "FILE: KEY: problem".
int
    zper_dafka_config_check (zconfig_t *config, const char *name);

//  The string at path, or default_value.
const char *
    zper_dafka_config_string (zconfig_t *config, const char *path, const char *default_value);

//  The integer at path, or default_value when absent. A value that does not
//  parse as a whole decimal integer also gives default_value (config_check
//  refuses such files before any node starts).
int64_t
    zper_dafka_config_number (zconfig_t *config, const char *path, int64_t default_value);

//  Set path to value (creating the path).
void
    zper_dafka_config_set (zconfig_t *config, const char *path, const char *value);

//  Self test of this class
void
    zper_dafka_config_test (bool verbose);

#endif
