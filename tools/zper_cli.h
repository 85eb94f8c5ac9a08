/*  zper_cli.h - what the verbs of the zper tool share: their prototypes.  */
#ifndef ZPER_CLI_H_INCLUDED
#define ZPER_CLI_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "zper_defaults.h"

#define ZPER_VERB(name, function, help) int function (int argc, char *argv []);
#include "zper_verbs.inc"
#undef ZPER_VERB

#endif
