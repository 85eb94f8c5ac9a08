/*  zper_cli.h - what the verbs of the zper tool share: their prototypes.  */
#ifndef ZPER_CLI_H_INCLUDED
#define ZPER_CLI_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "zper_defaults.h"

#define ZPER_VERB(name, function, help) int function (int argc, char *argv []);
#include "zper_verbs.inc"
#undef ZPER_VERB

//  ---- shared by the client verb files (defined in tools/zper_cmd_client.c) ----
//  Every client verb takes the same broker options; a verb file lists
//  ZPER_CLI_BROKER_OPTIONS in its getopt table, passes each option it does
//  not know itself to zper_cli_broker_option, and prints ZPER_CLI_BROKER_HELP
//  in its --help.
#include <getopt.h>
#include <jansson.h>
#include "zper.h"

#define ZPER_CLI_STRING_(x)         #x
#define ZPER_CLI_STRING(x)          ZPER_CLI_STRING_(x)    //  a macro's value as a string literal
#define ZPER_CLI_HELP_SHOWN         -1                      //  not an exit code: --help was answered
//  The environment's defaults for --server-key and --cert
#define ZPER_CLI_ENV_SERVER_KEY     "ZPER_SERVER_KEY"
#define ZPER_CLI_ENV_CERT           "ZPER_CERT"
//  getopt ids of the broker options; a verb's own long options start at ZPER_CLI_OPT_END
enum { ZPER_CLI_OPT_BROKER = 256, ZPER_CLI_OPT_FRONT, ZPER_CLI_OPT_REAR, ZPER_CLI_OPT_TIMEOUT,
       ZPER_CLI_OPT_SERVER_KEY, ZPER_CLI_OPT_CERT, ZPER_CLI_OPT_END };
#define ZPER_CLI_BROKER_OPTIONS \
    { "broker", required_argument, NULL, ZPER_CLI_OPT_BROKER }, \
    { "front", required_argument, NULL, ZPER_CLI_OPT_FRONT }, \
    { "rear", required_argument, NULL, ZPER_CLI_OPT_REAR }, \
    { "timeout", required_argument, NULL, ZPER_CLI_OPT_TIMEOUT }, \
    { "server-key", required_argument, NULL, ZPER_CLI_OPT_SERVER_KEY }, \
    { "cert", required_argument, NULL, ZPER_CLI_OPT_CERT }, \
    { "help", no_argument, NULL, 'h' }
#define ZPER_CLI_BROKER_HELP \
    "  --broker HOST         broker host for every port (default 127.0.0.1)\n" \
    "  --front URL           front (write) endpoint (default " ZPER_DEFAULT_FRONT_BIND ")\n" \
    "  --rear URL            rear (read) endpoint (default " ZPER_DEFAULT_REAR_BIND ")\n" \
    "  --timeout MS          report a broker that does not answer after MS ms (default " \
    ZPER_CLI_STRING (ZPER_CLIENT_TIMEOUT_MS) ")\n" \
    "  --server-key KEY|FILE CURVE: the broker's public key (Z85) or public certificate file\n" \
    "                        (default $" ZPER_CLI_ENV_SERVER_KEY "); needs --cert\n" \
    "  --cert FILE           CURVE: this client's certificate from zper keygen, its secret in\n" \
    "                        FILE_secret (default $" ZPER_CLI_ENV_CERT ")\n" \
    "  -h, --help            this help\n"

//  Where the broker is, from the common options
typedef struct {
    char *front;
    char *rear;
    int timeout_ms;
    char *server_key;               //  CURVE when both are set
    char *cert;
    bool rear_given;                //  --rear or --broker: a node to ask METADATA
} zper_cli_broker_t;

//  The defaults (and $ZPER_SERVER_KEY, $ZPER_CERT); free with zper_cli_broker_free.
void
    zper_cli_broker_init (zper_cli_broker_t *broker);
void
    zper_cli_broker_free (zper_cli_broker_t *broker);

//  Handle one of the broker options (argument: its value, or the bad
//  option's text for an unknown one). Returns 0, or the usage exit code
//  after one line on stderr.
int
    zper_cli_broker_option (const char *verb, int option, const char *argument,
                            zper_cli_broker_t *broker);

//  After the options: CURVE needs both halves. Returns 0 or the usage exit code.
int
    zper_cli_broker_check (const char *verb, zper_cli_broker_t *broker);

//  A consumer on the broker's rear with the timeout and CURVE asked for,
//  or NULL after one line on stderr.
zper_consumer_t *
    zper_cli_rear_consumer (const char *verb, zper_cli_broker_t *broker);

//  One line on stderr: "zper VERB: what is wrong (try 'zper VERB --help')".
//  Returns the usage exit code.
int
    zper_cli_usage_error (const char *verb, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  A JSON array of integers or strings as "1,2,3" ("-" when empty), cut to
//  fit size. Returns text.
const char *
    zper_cli_json_list (json_t *array, char *text, size_t size);

//  Parse a whole decimal number >= minimum into *value. Returns 0 or -1.
int
    zper_cli_parse_number (const char *text, int64_t minimum, int64_t *value);

//  getopt_long with our own messages: returns the option, -1 at the end;
//  on an unknown or incomplete option *bad is its text.
int
    zper_cli_next_option (int argc, char *argv [], const char *letters,
                          const struct option *options, const char **bad);

#endif
