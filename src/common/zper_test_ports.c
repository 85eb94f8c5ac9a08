/*  =========================================================================
    zper_test_ports - loopback ports for test servers, reserved across processes

    The suite runs tests of every area at once (ctest -j), and each picks
    ports for the servers it starts. A port that is merely free when picked
    can be taken before the server binds it: by another test's probe or
    server, or in the gap while a test restarts a server on the same port.
    So a port is reserved first: an exclusive, non-blocking flock on the
    file TMPDIR/zper-test-ports/PORT (TMPDIR defaults to /tmp), held until
    the process exits, when the kernel drops it (also after kill -9). A
    flock belongs to an open file description, so a second reservation of
    the same port fails in the same process too. A bind then checks that
    no process outside the scheme listens there.

    Ports come from ZPER_TEST_PORT_FIRST..LAST, below Linux's ephemeral
    range (32768-60999): a port there is never a connection's local port,
    so no outgoing connection takes one, nor meets itself.
    ========================================================================= */

#include "zper_test_ports.h"
#include "zper_defaults.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  Whether a bind to 127.0.0.1:port succeeds now (a plain socket, closed at
//  once: a ZeroMQ probe would keep listening while libzmq closes it)
static bool
s_port_is_free (int port)
{
    int probe = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe == -1)
        return false;
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    bool free = bind (probe, (struct sockaddr *) &address, sizeof address) == 0;
    close (probe);
    return free;
}

//  The file whose flock reserves port (port 0: the folder of those files)
static void
s_lock_path (char *path, size_t size, int port)
{
    const char *temporary = getenv ("TMPDIR");
    int length = snprintf (path, size, "%s/" ZPER_TEST_PORT_LOCKS,
                           temporary && *temporary? temporary: "/tmp");
    if (port && length > 0 && (size_t) length < size)
        snprintf (path + length, size - (size_t) length, "/%d", port);
}

int
zper_test_ports_reserve (void)
{
    char path [PATH_MAX];
    s_lock_path (path, sizeof path, 0);
    if (mkdir (path, 0777) == -1 && errno != EEXIST)
        return -1;
    //  A random start keeps parallel tests from trying the same ports in turn
    int range = ZPER_TEST_PORT_LAST - ZPER_TEST_PORT_FIRST;
    int start = (int) ((zclock_usecs () ^ (int64_t) getpid () << 16) % range);
    for (int attempt = 0; attempt < range; attempt++) {
        int port = ZPER_TEST_PORT_FIRST + (start + attempt) % range;
        s_lock_path (path, sizeof path, port);
        int lock = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (lock == -1)
            return -1;
        if (flock (lock, LOCK_EX | LOCK_NB) == 0 && s_port_is_free (port))
            return port;            //  the lock stays open: the reservation lasts the process
        close (lock);
    }
    return -1;
}

void
zper_test_ports_test (bool verbose)
{
    printf (" * zper_test_ports: ");
    int first = zper_test_ports_reserve ();
    int second = zper_test_ports_reserve ();
    assert (first >= ZPER_TEST_PORT_FIRST && first < ZPER_TEST_PORT_LAST);
    assert (second >= ZPER_TEST_PORT_FIRST && second < ZPER_TEST_PORT_LAST);
    assert (first != second);

    //  A reserved port is refused to another process while this one lives,
    //  even where nobody listens: a child tries to lock it and cannot
    char path [PATH_MAX];
    s_lock_path (path, sizeof path, first);
    pid_t child = fork ();
    assert (child != -1);
    if (child == 0) {
        int lock = open (path, O_RDWR);
        _exit (lock != -1 && flock (lock, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK? 0: 1);
    }
    int status;
    assert (waitpid (child, &status, 0) == child);
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);

    //  The check of a port nobody reserved: somebody listening makes it taken
    zsock_t *listener = zsock_new (ZMQ_ROUTER);
    int taken = zsock_bind (listener, "tcp://127.0.0.1:*");
    assert (taken > 0);
    assert (!s_port_is_free (taken));
    zsock_destroy (&listener);
    if (verbose)
        printf ("(%d, %d) ", first, second);
    printf ("OK\n");
}
