/*  =========================================================================
    zperd - the ZPER broker daemon

    Usage: zperd [-c FILE] [-v] [--check-config] | --help | --version

    The one thing to know is signal handling. SIGINT and SIGTERM are
    blocked in every thread (the mask is set before any thread exists, and
    threads inherit it), and one thread waits for them with sigwait: no
    libzmq or CZMQ call ever sees EINTR, so no component can stop on its
    own. The first signal asks the manager to stop cleanly; a second one,
    or a clean stop that overruns ZPER_SHUTDOWN_DEADLINE_MS, exits at once.
    SIGHUP, blocked and waited for the same way, makes the broker read its
    allowed keys (security.keys) again now (zper_manager_reload).
    ========================================================================= */

#include "zper_manager.h"
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <unistd.h>


static atomic_int s_stop_requested;     //  set by the first signal
static atomic_llong s_stopping_since;   //  monotonic ms when the stop began; 0 running
//  The running broker, for SIGHUP; the lock keeps it alive while a reload uses it.
static pthread_mutex_t s_manager_lock = PTHREAD_MUTEX_INITIALIZER;
static zper_manager_t *s_manager;

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: zperd [-c FILE] [-v] [--check-config]\n"
        "       zperd --help | --version\n"
        "\n"
        "The ZPER broker: writes on front (default " ZPER_DEFAULT_FRONT_BIND "), reads on rear\n"
        "(" ZPER_DEFAULT_REAR_BIND "), acks on " ZPER_DEFAULT_ACK_BIND ", relay on "
        ZPER_DEFAULT_RELAY_BIND ",\n"
        "SUB tailing on " ZPER_DEFAULT_RELAY_PUB_BIND ". Data in " ZPER_DEFAULT_BASE_DIR
        " unless the config says otherwise.\n"
        "\n"
        "  -c FILE          read settings from FILE (key = value; see docs/operations.md)\n"
        "  -v               verbose: log component events and every refused request\n"
        "  --check-config   validate the settings, print them, and exit (0 ok, 2 bad)\n"
        "  --help           this text\n"
        "  --version        print the version\n"
        "\n"
        "SIGINT/SIGTERM stop cleanly (flush, checkpoint, exit 0); a second signal exits at once.\n"
        "SIGHUP rereads the allowed client keys (security.keys) at once.\n");
}

//  The signal thread: first signal requests a stop; a second signal or an
//  overrun of the stop deadline ends the process at once.
static void *
s_signal_thread (void *args)
{
    sigset_t *signals = (sigset_t *) args;
    struct timespec poll = { 0, ZPER_MANAGER_TICK_MS * 1000000L };
    while (true) {
        int signal = sigtimedwait (signals, NULL, &poll);
        if (signal == SIGHUP) {
            pthread_mutex_lock (&s_manager_lock);
            if (s_manager)
                zper_manager_reload (s_manager);
            pthread_mutex_unlock (&s_manager_lock);
        }
        else
        if (signal > 0) {
            if (atomic_exchange (&s_stop_requested, 1)) {
                fprintf (stderr, "zperd: second signal, exiting at once\n");
                _exit (ZPER_EXIT_SECOND_SIGNAL);
            }
            zsys_info ("signal %d: stopping (flush, checkpoint); a second signal exits at once",
                       signal);
        }
        long long since = atomic_load (&s_stopping_since);
        if (since && zclock_mono () - since > ZPER_SHUTDOWN_DEADLINE_MS) {
            fprintf (stderr, "zperd: stop took longer than %d ms, exiting at once\n",
                     ZPER_SHUTDOWN_DEADLINE_MS);
            _exit (ZPER_EXIT_UNRESPONSIVE);
        }
    }
    return NULL;
}

//  Parse the command line into config. Returns -1 to run, or an exit code.
static int
s_arguments (int argc, char *argv [], zper_config_t *config, bool *verbose, bool *check)
{
    const char *path = NULL;
    for (int index = 1; index < argc; index++) {
        const char *argument = argv [index];
        if (streq (argument, "--help") || streq (argument, "-h")) {
            s_usage (stdout);
            return 0;
        }
        if (streq (argument, "--version")) {
            printf ("zperd %s\n", ZPER_VERSION_STRING);
            return 0;
        }
        if (streq (argument, "-v"))
            *verbose = true;
        else
        if (streq (argument, "--check-config"))
            *check = true;
        else
        if (streq (argument, "-c") && index + 1 < argc)
            path = argv [++index];
        else {
            fprintf (stderr, "zperd: %s '%s' (try zperd --help)\n",
                     streq (argument, "-c")? "missing file after": "unknown argument", argument);
            return ZPER_EXIT_USAGE;
        }
    }
    char error [512];
    if (path && zper_config_load (config, path, error, sizeof error)) {
        fprintf (stderr, "zperd: %s\n", error);
        return ZPER_EXIT_USAGE;
    }
    return -1;
}

//  Raise the soft descriptor limit to the hard one: the log bounds the
//  partitions holding open files by it (zper_log.h), so more descriptors
//  mean fewer reopenings, and sockets and connections share it too.
static void
s_raise_descriptor_limit (bool verbose)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return;
    rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (before != limit.rlim_max && setrlimit (RLIMIT_NOFILE, &limit))
        zsys_warning ("cannot raise the descriptor limit from %llu to %llu: %s",
                      (unsigned long long) before, (unsigned long long) limit.rlim_max,
                      strerror (errno));
    else
    if (verbose)
        zsys_info ("descriptor limit (RLIMIT_NOFILE): %llu (soft was %llu)",
                   (unsigned long long) limit.rlim_max, (unsigned long long) before);
}

int
main (int argc, char *argv [])
{
    zper_config_t config;
    zper_config_init (&config);
    bool verbose = false, check = false;
    int rc = s_arguments (argc, argv, &config, &verbose, &check);
    if (rc >= 0)
        return rc;
    if (check) {
        zper_config_print (&config, stdout);
        printf ("# configuration OK\n");
        return 0;
    }
    //  Before any thread exists: signals go to the signal thread only. The
    //  set is static because the detached signal thread reads it until the
    //  process exits, after main has returned.
    static sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    //  The front hands each worker buffers of up to a few hundred KiB that
    //  the worker frees: glibc would map each one fresh (past its mmap
    //  threshold) or hand freed ones back to the kernel (past its trim
    //  threshold), and the next buffer would fault in new pages on every
    //  hand-off. Keep freed memory in the heap instead, for reuse.
    mallopt (M_MMAP_THRESHOLD, ZPER_MALLOC_MMAP_THRESHOLD);
    mallopt (M_TRIM_THRESHOLD, ZPER_MALLOC_TRIM_THRESHOLD);
    zsys_handler_set (NULL);
    zsys_set_logident ("zperd");
    zsys_set_logstream (stderr);
    int io_threads = config.front_io_threads > config.rear_io_threads
                   ? config.front_io_threads: config.rear_io_threads;
    zsys_set_io_threads ((size_t) io_threads);
    pthread_t signal_thread;
    pthread_create (&signal_thread, NULL, s_signal_thread, &signals);
    pthread_detach (signal_thread);
    s_raise_descriptor_limit (verbose);

    zper_manager_t *manager = zper_manager_new (&config, verbose);
    if (!manager)
        return EXIT_FAILURE;
    zsys_info ("zperd %s: front %s, rear %s, ack %s, relay %s, relay.pub %s, data in %s",
               ZPER_VERSION_STRING, config.front_bind, config.rear_bind, config.ack_bind,
               config.relay_bind, config.relay_pub_bind, config.base_dir);
    pthread_mutex_lock (&s_manager_lock);
    s_manager = manager;
    pthread_mutex_unlock (&s_manager_lock);
    rc = zper_manager_run (manager, &s_stop_requested);
    atomic_store (&s_stopping_since, zclock_mono ());
    pthread_mutex_lock (&s_manager_lock);
    s_manager = NULL;
    pthread_mutex_unlock (&s_manager_lock);
    zper_manager_destroy (&manager);
    zsys_info ("stopped");
    return rc;
}
