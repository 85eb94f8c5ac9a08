"""Dafka nodes started with no configuration at all listen on loopback only,
on ports clear of zperd's defaults (5555-5559), and still find each other: a
tower, a store, a producer and an earliest consumer on the built-in defaults
move records end to end while a zperd on its own defaults runs beside them.
(The reference's defaults, which ZPER had: the tower on tcp://*:5556/5557 and
peers on tcp://*:*, i.e. every interface and zperd's own ports.)

What each process listens on is read from /proc (its socket inodes matched in
/proc/PID/net/tcp and tcp6), not from what it says. Usage: zper zperd."""
import os
from dafka_harness import *

ZPERD_PORTS = set(range(5555, 5560))
TOWER_PORTS = {5570, 5571}            # tower/sub_address, tower/pub_address (docs/dafka.md)
RECORDS = 20
LISTEN = "0A"


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue                    # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def ipv4(hex_address):
    return ".".join(str(int(hex_address[index:index + 2], 16)) for index in (6, 4, 2, 0))


def ipv6(hex_address):
    words = [hex_address[index:index + 8] for index in range(0, 32, 8)]
    raw = b"".join(bytes.fromhex(word)[::-1] for word in words)
    return socket.inet_ntop(socket.AF_INET6, raw)


def listening(pid):
    """{(address, port)} of the TCP sockets process pid listens on."""
    inodes = socket_inodes(pid)
    found = set()
    for table, decode in (("tcp", ipv4), ("tcp6", ipv6)):
        with open("/proc/%d/net/%s" % (pid, table)) as stream:
            for line in stream.readlines()[1:]:
                fields = line.split()
                address, port = fields[1].split(":")
                if fields[3] == LISTEN and fields[9] in inodes:
                    found.add((decode(address), int(port, 16)))
    return found


def wait_listening(name, process, count, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            fail("%s exited with %s before listening" % (name, process.returncode))
        sockets = listening(process.pid)
        if len(sockets) >= count:
            return sockets
        time.sleep(0.05)
    fail("%s listens on %s, expected %d sockets" % (name, sorted(listening(process.pid)), count))


def expect_loopback(name, sockets, ports=None):
    for address, port in sorted(sockets):
        if address not in ("127.0.0.1", "::1"):
            fail("%s listens on %s:%d, not on loopback" % (name, address, port))
        if port in ZPERD_PORTS:
            fail("%s listens on %s:%d, one of zperd's default ports" % (name, address, port))
    if ports is not None and {port for _, port in sockets} != ports:
        fail("%s listens on %s, not on the documented ports %s" % (name, sorted(sockets),
                                                                   sorted(ports)))
    print("%s listens on %s" % (name, sorted(sockets)))


def test(cluster):
    zperd_path = os.path.abspath(sys.argv[2])
    zperd = subprocess.Popen([zperd_path], cwd=cluster.folder, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(cluster.folder, "zperd.err"), "wb"))
    try:
        zperd_sockets = wait_listening("zperd", zperd, len(ZPERD_PORTS))
        if not ZPERD_PORTS <= {port for _, port in zperd_sockets}:
            fail("zperd listens on %s, not on all of its defaults" % sorted(zperd_sockets))

        def node(name, *args, stdin=None):
            started = Node(cluster, name, list(args), stdin=stdin)
            cluster.nodes.append(started)
            return started

        tower = node("tower", "tower")
        expect_loopback("tower", wait_listening("tower", tower.process, 2), TOWER_PORTS)
        store = node("store", "store", "--db", "store.db")
        consumer = node("consumer", "dafka-consume", "--from-beginning", "--count", str(RECORDS),
                        "events")
        producer = node("producer", "dafka-produce", "events", stdin=subprocess.PIPE)
        #  Store: writer and reader data sockets; consumer and producer: one each
        for peer, count in ((store, 2), (consumer, 1), (producer, 1)):
            expect_loopback(peer.name, wait_listening(peer.name, peer.process, count))
        lines = [b"record-%d" % index for index in range(RECORDS)]
        producer.process.stdin.write(b"\n".join(lines) + b"\n")
        producer.process.stdin.close()
        if producer.wait(60) != 0:      # exits once the store ACKed every record
            fail("producer failed:\n" + producer.errors())
        if consumer.wait(60) != 0:
            fail("consumer failed:\n" + consumer.errors())
        if consumed(consumer) != lines:
            fail("consumer got %r" % consumed(consumer))
        store.stop()
        tower.stop()
        if zperd.poll() is not None:
            fail("zperd stopped beside the Dafka nodes (exit %s)" % zperd.returncode)
    finally:
        if zperd.poll() is None:
            zperd.send_signal(signal.SIGTERM)
        try:
            code = zperd.wait(20)
        except subprocess.TimeoutExpired:
            zperd.kill()
            code = zperd.wait()
    if code != 0:
        with open(os.path.join(cluster.folder, "zperd.err"), errors="replace") as stream:
            fail("zperd exited with %s:\n%s" % (code, stream.read()))


run(test)
