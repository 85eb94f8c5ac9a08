"""Shared pieces of the Dafka black-box tests: real `zper` processes on loopback.

Each test gets a Cluster: a scratch folder, a ZPL config with the tower's ports
(picked free by the OS) and beacon/address = 127.0.0.1, and helpers to start
`zper tower|store|dafka-produce|dafka-consume` as separate processes. Every
process is stopped when the test ends; a node that exits non-zero (e.g. an
ASan report) fails the test. Raw pyzmq helpers speak the spec's bytes, as a
reference Dafka peer would.
"""
import os
import signal
import socket          # re-exported: the tests import * from here
import struct
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))
from zperd_harness import free_port  # noqa: E402,F401  (ports below the ephemeral range)

BEACON_INTERVAL_MS = 200


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Node:
    """A zper process; stdout and stderr are collected in files."""

    def __init__(self, cluster, name, args, stdin=None):
        self.name = name
        self.out_path = os.path.join(cluster.folder, name + ".out")
        self.err_path = os.path.join(cluster.folder, name + ".err")
        self.process = subprocess.Popen(
            [cluster.zper] + args, cwd=cluster.folder, stdin=stdin,
            stdout=open(self.out_path, "wb"), stderr=open(self.err_path, "wb"))

    def output(self):
        with open(self.out_path, "rb") as stream:
            return stream.read()

    def errors(self):
        with open(self.err_path, "rb") as stream:
            return stream.read().decode(errors="replace")

    def wait(self, timeout):
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            fail("%s did not finish within %ss:\n%s" % (self.name, timeout, self.errors()))

    def stop(self, timeout=20):
        """SIGTERM, then the exit code must be 0 (clean stop, no sanitizer report)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code != 0:
            fail("%s exited with %s:\n%s" % (self.name, code, self.errors()))

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def counter(self, name):
        """A name=value counter from the one-line summary on stderr."""
        for word in self.errors().split():
            if word.startswith(name + "="):
                return int(word.split("=", 1)[1])
        fail("%s printed no %s counter:\n%s" % (self.name, name, self.errors()))


class Cluster:
    def __init__(self, zper, extra_config=""):
        self.zper = zper
        self.scratch = tempfile.TemporaryDirectory(prefix="zper-dafka-")
        self.folder = self.scratch.name
        self.tower_sub = free_port()
        self.tower_pub = free_port()
        self.nodes = []
        self.context = zmq.Context()
        self.config = os.path.join(self.folder, "dafka.cfg")
        with open(self.config, "w") as stream:
            stream.write(
                "tower\n    sub_address = \"tcp://127.0.0.1:%d\"\n"
                "    pub_address = \"tcp://127.0.0.1:%d\"\n"
                "beacon\n    sub_address = \"tcp://127.0.0.1:%d\"\n"
                "    pub_address = \"tcp://127.0.0.1:%d\"\n"
                "    address = \"127.0.0.1\"\n    interval = %d\n"
                "producer\n    head_interval = 200\n"
                "store\n    flush_interval = 50\n%s"
                % (self.tower_sub, self.tower_pub, self.tower_sub, self.tower_pub,
                   BEACON_INTERVAL_MS, extra_config))

    def start(self, name, verb, *args, stdin=None):
        node = Node(self, name, [verb, "-c", self.config] + list(args), stdin=stdin)
        self.nodes.append(node)
        return node

    def tower(self):
        node = self.start("tower", "tower")
        time.sleep(0.3)
        return node

    def store(self, name, db=None, args=()):
        node = self.start(name, "store", "--db", db or name + ".db", *args)
        deadline = time.time() + 20
        while b"writer" not in node.output():
            if time.time() > deadline or node.process.poll() is not None:
                fail("%s did not start:\n%s" % (name, node.errors()))
            time.sleep(0.05)
        words = node.output().split()
        node.writer_uuid = words[3].decode()
        node.reader_uuid = words[5].decode()
        return node

    def close(self):
        for node in self.nodes:
            node.kill()
        self.context.destroy(linger=0)
        self.scratch.cleanup()


def run(test):
    """Runs test(cluster, zper) and cleans up whatever happens."""
    zper = os.path.abspath(sys.argv[1])
    cluster = Cluster(zper, getattr(test, "extra_config", ""))
    try:
        test(cluster)
    finally:
        cluster.close()
    print("OK")


def expected_records(count, size):
    """What `zper dafka-produce --count N --size S` publishes."""
    return [str(index).encode().ljust(size, b".") for index in range(count)]


def consumed(node):
    output = node.output()
    return output.split(b"\n")[:-1] if output else []


# ---- a raw pyzmq peer speaking the spec's bytes ----------------------------------

def string_field(value):
    return bytes([len(value)]) + value


def header(message_id, topic, fields):
    return message_id + topic + b"\x00\x01" + fields


def record(topic, producer, sequence):
    return header(b"M", topic, string_field(producer) + string_field(topic) + struct.pack(">Q", sequence))


def head(topic, producer, sequence):
    return header(b"H", topic, string_field(producer) + string_field(topic) + struct.pack(">Q", sequence))


def fetch(partition, requester, subject, sequence, count):
    return header(b"F", partition, string_field(requester) + string_field(subject)
                  + struct.pack(">QI", sequence, count))


def parse_header(frame):
    """(id, topic, rest after the version byte) of a frame 0."""
    nul = frame.index(b"\x00", 1)
    assert frame[nul + 1] == 1, "version byte"
    return frame[:1], frame[1:nul], frame[nul + 2:]


class RawPeer:
    """A reference-like Dafka peer: one bound PUB or XPUB data socket, its
    beacon sent to the tower, and a SUB connected to every peer it hears of."""

    def __init__(self, cluster, socket_type=zmq.PUB):
        self.uuid = uuidlib.uuid4().hex.upper().encode()
        self.data = cluster.context.socket(socket_type)
        self.data.setsockopt(zmq.LINGER, 0)
        self.port = self.data.bind_to_random_port("tcp://127.0.0.1")
        self.sub = cluster.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.beacon = cluster.context.socket(zmq.PUB)
        self.beacon.setsockopt(zmq.LINGER, 0)
        self.beacon.connect("tcp://127.0.0.1:%d" % cluster.tower_sub)
        self.listener = cluster.context.socket(zmq.SUB)
        self.listener.setsockopt(zmq.LINGER, 0)
        self.listener.setsockopt(zmq.SUBSCRIBE, b"B")
        self.listener.connect("tcp://127.0.0.1:%d" % cluster.tower_pub)
        self.peers = {}
        self.subscriptions = set()
        self.next_beacon = 0

    def pump(self):
        """Announces this peer when due and connects to newly heard peers.
        Single-threaded on purpose: zmq sockets are not thread-safe."""
        if time.time() >= self.next_beacon:
            self.beacon.send_multipart([b"B", self.uuid, b"127.0.0.1", str(self.port).encode()])
            self.next_beacon = time.time() + BEACON_INTERVAL_MS / 1000.0
        while self.listener.poll(0):
            frames = self.listener.recv_multipart()
            if len(frames) == 3 and frames[1] != self.uuid and frames[1] not in self.peers:
                self.peers[frames[1]] = frames[2].decode()
                self.sub.connect(frames[2].decode())

    def wait_subscription(self, prefix, timeout=20):
        """With an XPUB data socket: waits until some peer subscribed prefix."""
        self.data.setsockopt(zmq.XPUB_VERBOSE, 1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if b"\x01" + prefix in self.subscriptions:
                return
            self.pump()
            if self.data.poll(50):
                self.subscriptions.add(self.data.recv())
        fail("nobody subscribed %r" % prefix)

    def subscribe(self, prefix):
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix)

    def wait_for_peer(self, peer_uuid, timeout=20):
        deadline = time.time() + timeout
        while peer_uuid.encode() not in self.peers:
            if time.time() > deadline:
                fail("raw peer never heard of %s" % peer_uuid)
            self.pump()
            time.sleep(0.02)
        self.sleep(0.5)                 # let both directions subscribe

    def sleep(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.pump()
            time.sleep(0.02)

    def recv(self, timeout_ms=10000):
        deadline = time.time() + timeout_ms / 1000.0
        while time.time() < deadline:
            self.pump()
            if self.sub.poll(50):
                return self.sub.recv_multipart()
        return None

    def close(self):
        for sock in (self.data, self.sub, self.beacon, self.listener):
            sock.close()


# ---- CURVE (security/curve = 1) ----------------------------------------------------

CERT_HEADER = ("#   ****  Generated by the Dafka tests  ****\n"
               "#   ZeroMQ CURVE %s Certificate\n\nmetadata\ncurve\n")


def write_cert(path, public, secret=None):
    """A CZMQ zcert pair: path (public) and, with a secret, path_secret (0600)."""
    with open(path, "w") as stream:
        stream.write(CERT_HEADER % "Public" + '    public-key = "%s"\n' % public.decode())
    if secret is not None:
        with open(path + "_secret", "w") as stream:
            stream.write(CERT_HEADER % "**Secret**" + '    public-key = "%s"\n'
                         '    secret-key = "%s"\n' % (public.decode(), secret.decode()))
        os.chmod(path + "_secret", 0o600)


class Curve:
    """Certificates for named nodes and the security section of the cluster's
    config. The way keys are distributed (docs/dafka.md, Security): every node
    has its own certificate (certs/NAME, NAME_secret), and one folder holds the
    public certificates of every node allowed in (keys/), copied to every
    node; the tower's public certificate is security/tower_key. `strangers`
    get certificates that keys/ does not hold."""

    def __init__(self, cluster, names, strangers=()):
        self.cluster = cluster
        self.keys = {}
        os.mkdir(os.path.join(cluster.folder, "certs"))
        os.mkdir(os.path.join(cluster.folder, "keys"))
        for name in list(names) + list(strangers):
            public, secret = zmq.curve_keypair()
            self.keys[name] = (public, secret)
            write_cert(os.path.join(cluster.folder, "certs", name), public, secret)
            if name not in strangers:
                write_cert(os.path.join(cluster.folder, "keys", name), public)
        with open(cluster.config, "a") as stream:
            stream.write("security\n    curve = 1\n    keys = \"keys\"\n"
                         "    tower_key = \"keys/tower\"\n    reload_ms = 200\n")

    def args(self, name):
        """Command-line arguments that make a node use certificate name."""
        return ["--set", "security/cert=certs/" + name]

    def socket(self, socket_type, name, server_key=None):
        """A pyzmq socket with name's keys; a CURVE client of server_key if given."""
        sock = self.cluster.context.socket(socket_type)
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_publickey, sock.curve_secretkey = self.keys[name]
        if server_key is not None:
            sock.curve_serverkey = server_key
        return sock


class CurveListener:
    """Hears the CURVE tower's beacons, ["B", uuid, endpoint, key], as the
    allowed node name."""

    def __init__(self, cluster, curve, name):
        self.listener = curve.socket(zmq.SUB, name, curve.keys["tower"][0])
        self.listener.setsockopt(zmq.SUBSCRIBE, b"B")
        self.listener.connect("tcp://127.0.0.1:%d" % cluster.tower_pub)
        self.beacons = {}

    def wait_for(self, peer_uuid, timeout=20):
        """(endpoint, key) of peer_uuid's beacon."""
        deadline = time.time() + timeout
        while peer_uuid.encode() not in self.beacons:
            if time.time() > deadline:
                fail("never heard a CURVE beacon of %s (heard %r)" % (peer_uuid, self.beacons))
            if self.listener.poll(50):
                frames = self.listener.recv_multipart()
                if len(frames) == 4:
                    self.beacons[frames[1]] = (frames[2].decode(), frames[3])
        return self.beacons[peer_uuid.encode()]

    def close(self):
        self.listener.close()


def wait_subscribed(xpub, prefix, timeout=20):
    """Waits until a subscription starting with prefix arrives on an XPUB."""
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if xpub.poll(50) and xpub.recv().startswith(b"\x01" + prefix):
            return True
    return False


class CurveAnnouncer:
    """Announces uuid to the CURVE tower as the allowed node name, as a Dafka
    peer's beacon does, with a bound SUB (a CURVE server) as its endpoint:
    nodes accept a producer uuid's RECORDs only from the key the tower
    vouched for that uuid."""

    def __init__(self, cluster, curve, name, uuid):
        self.endpoint = curve.socket(zmq.SUB, name)
        self.endpoint.curve_server = True
        port = self.endpoint.bind_to_random_port("tcp://127.0.0.1")
        self.beacon = curve.socket(zmq.PUB, name, curve.keys["tower"][0])
        self.beacon.connect("tcp://127.0.0.1:%d" % cluster.tower_sub)
        self.message = [b"B", uuid, b"127.0.0.1", str(port).encode()]
        self.uuid = uuid

    def announce(self, listener, timeout=20):
        """Beacons until listener heard this uuid from the tower (afresh: what
        earlier beacons left queued is read first)."""
        while listener.listener.poll(0):
            listener.listener.recv_multipart()
        listener.beacons.pop(self.uuid, None)
        deadline = time.time() + timeout
        while self.uuid not in listener.beacons:
            if time.time() > deadline:
                fail("the tower never forwarded the beacon of %r" % self.uuid)
            self.beacon.send_multipart(self.message)
            if listener.listener.poll(100):
                frames = listener.listener.recv_multipart()
                if len(frames) == 4:
                    listener.beacons[frames[1]] = (frames[2].decode(), frames[3])

    def close(self):
        self.endpoint.close()
        self.beacon.close()


def consumer_uuid(node, timeout=20):
    """The uuid a `zper dafka-consume` prints on stderr once it started."""
    deadline = time.time() + timeout
    while True:
        words = node.errors().split()
        if len(words) > 3 and words[2] == "consumer":
            return words[3]
        if time.time() > deadline or node.process.poll() is not None:
            fail("%s did not start:\n%s" % (node.name, node.errors()))
        time.sleep(0.05)
