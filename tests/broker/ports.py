"""Loopback ports for the servers tests start, reserved across the suite's processes.
Standard library only: the CLI test, which uses no pyzmq, takes its ports here too."""

import fcntl
import os
import random
import socket

# Ports come from below Linux's ephemeral range (32768-60999): a port the kernel picked for us
# with bind(0) is in that range, and any outgoing connection (an etcd client, a ZeroMQ
# reconnect) may take it between our probe and zperd's bind. A port merely free now may also
# be taken by another test's probe or server, as tests of every area run at once, or in the
# gap while a test restarts zperd on the same ports. So a port is reserved first: a flock on
# TMPDIR/zper-test-ports/PORT held until this process exits. The C tests reserve the same way
# (src/common/zper_test_ports.c, ZPER_TEST_PORT_* in include/zper_defaults.h).
PORT_FIRST, PORT_LAST = 20000, 32000
PORT_LOCKS = os.path.join(os.environ.get("TMPDIR") or "/tmp", "zper-test-ports")
_reservations = []          # the lock files' descriptors, open for the life of the process


def free_port():
    """A loopback port nobody listens on now and no test process (this one too) reserved."""
    os.makedirs(PORT_LOCKS, exist_ok=True)
    while True:
        port = random.randrange(PORT_FIRST, PORT_LAST)
        lock = os.open(os.path.join(PORT_LOCKS, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            os.close(lock)
            continue
        _reservations.append(lock)
        return port
