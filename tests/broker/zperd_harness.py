"""Black-box harness for zperd: start a real broker on loopback ports it picks, speak the
protocol with nothing but pyzmq (docs/protocol.md), stop it with SIGTERM and fail on a
non-zero exit or a sanitizer report.

This file is also the proof that any ZeroMQ binding can use ZPER without libzper: every
byte below is built from the protocol document."""

import atexit
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

import zmq

from ports import free_port  # noqa: F401  (reserved loopback ports, tests/broker/ports.py)

ZPERD = os.environ.get("ZPERD", "zperd")
TIMEOUT_MS = 10000              # any single reply must arrive within this
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 30

OK, INVALID_OFFSET, INVALID_COMMAND, INVALID_ARGUMENT = 100, 101, 102, 103
MESSAGE_TOO_LARGE, STORAGE_ERROR, INTERNAL_ERROR = 104, 105, 255
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def java_hash(topic):
    value = 0
    for byte in topic.encode():
        value = (value * 31 + byte) & 0xFFFFFFFF
    return value & 0xFF


def identity(topic, mode=0, revision="later", uuid=None, hash_byte=None):
    """A legacy client identity (docs/protocol.md section 1); a fresh uuid unless given."""
    uuid = os.urandom(16) if uuid is None else uuid
    name = topic.encode() if isinstance(topic, str) else topic
    first = java_hash(topic) if hash_byte is None and isinstance(topic, str) else (hash_byte or 0)
    if revision == "seed":
        return bytes([first, len(name)]) + name + uuid
    return bytes([first, mode, len(name)]) + name + uuid


def i64(value):
    return struct.pack(">q", value)


def i32(value):
    return struct.pack(">i", value)


def get_i64(frame):
    assert len(frame) == 8, "int64 frame of %d bytes" % len(frame)
    return struct.unpack(">q", frame)[0]


def encode(frames):
    """The storage encoding of one message: its frames as ZMTP/2.0 frames."""
    out = b""
    for index, frame in enumerate(frames):
        more = 1 if index + 1 < len(frames) else 0
        if len(frame) <= 255:
            out += bytes([more, len(frame)]) + frame
        else:
            out += bytes([more | 2]) + struct.pack(">Q", len(frame)) + frame
    return out


def decode(data):
    """Messages (lists of frames) out of a FETCH super frame; asserts it holds whole frames."""
    messages, current, cursor = [], [], 0
    while cursor < len(data):
        flags = data[cursor]
        assert flags & ~3 == 0, "bad flags %#x at %d" % (flags, cursor)
        if flags & 2:
            size = struct.unpack(">Q", data[cursor + 1:cursor + 9])[0]
            cursor += 9
        else:
            size = data[cursor + 1]
            cursor += 2
        assert cursor + size <= len(data), "partial frame at the end of a super frame"
        current.append(data[cursor:cursor + size])
        cursor += size
        if not flags & 1:
            messages.append(current)
            current = []
    assert not current, "partial message at the end of a super frame"
    return messages


def decode_read_batch(data):
    """READ's batch: [offset:8][timestamp:8][size:4][encoding] records."""
    records, cursor = [], 0
    while cursor < len(data):
        offset, timestamp, size = struct.unpack(">qqi", data[cursor:cursor + 20])
        cursor += 20
        frames = decode(data[cursor:cursor + size])
        assert len(frames) == 1
        records.append((offset, timestamp, frames[0]))  # frames of the one message
        cursor += size
    return records


def proc_status_bytes(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM...) in bytes."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


class Broker:
    """One zperd process with its own data folder and ports."""

    def __init__(self, extra="", data_dir=None, ports=None):
        self.folder = tempfile.mkdtemp(prefix="zperd-test-")
        atexit.register(shutil.rmtree, self.folder, True)
        self.data_dir = data_dir or os.path.join(self.folder, "data")
        self.ports = ports or {name: free_port() for name in ("front", "rear", "ack", "relay", "pub")}
        self.extra = extra
        self.process = None
        self.preexec_fn = None          # run in the child before zperd (e.g. to set rlimits)
        self.context = zmq.Context.instance()
        self.sockets = []

    def endpoint(self, name):
        return "tcp://127.0.0.1:%d" % self.ports[name]

    def config_text(self):
        return "\n".join([
            'base_dir = "%s"' % self.data_dir,
            "front.bind = " + self.endpoint("front"),
            "rear.bind = " + self.endpoint("rear"),
            "ack.bind = " + self.endpoint("ack"),
            "relay.bind = " + self.endpoint("relay"),
            "relay.pub.bind = " + self.endpoint("pub"),
            self.extra, ""])

    def start(self):
        self.config_path = os.path.join(self.folder, "zper.conf")
        with open(self.config_path, "w") as config:
            config.write(self.config_text())
        self.log_path = os.path.join(self.folder, "zperd.log")
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([ZPERD, "-c", self.config_path, "-v"],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=self.preexec_fn)
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("zperd exited with %d at start:\n%s"
                                     % (self.process.returncode, self.output()))
            probe = self.reader(identity("probe"), timeout_ms=500)
            probe.send_multipart([b"TOPICS"])
            try:
                probe.recv_multipart()
                self.close(probe)
                return self
            except zmq.Again:
                self.close(probe)
        raise AssertionError("zperd did not answer within %d s" % START_TIMEOUT_S)

    def output(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def stop(self, check=True):
        """SIGTERM, wait, and (check) demand exit 0 and no sanitizer report."""
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets = []
        if not self.process:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("zperd did not stop within %d s after SIGTERM" % STOP_TIMEOUT_S)
        code, self.process = self.process.returncode, None
        self.log.close()
        output = self.output()
        if check:
            if code != 0:
                raise AssertionError("zperd exited with %d:\n%s" % (code, output))
            for mark in SANITIZER_MARKS:
                if mark in output:
                    raise AssertionError("sanitizer report from zperd:\n" + output)

    def kill9(self):
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets = []
        self.process.kill()
        self.process.wait()
        self.process = None
        self.log.close()

    # ---- sockets -------------------------------------------------------------------------
    def secure(self, sock):
        """Socket options set before connecting (a CURVE broker sets its keys)."""

    def socket(self, kind, routing_id, endpoint, timeout_ms=TIMEOUT_MS):
        sock = self.context.socket(kind)
        self.secure(sock)
        if routing_id is not None:
            sock.setsockopt(zmq.IDENTITY, routing_id)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        self.sockets.append(sock)
        return sock

    def writer(self, routing_id, kind=zmq.DEALER, **options):
        return self.socket(kind, routing_id, self.endpoint("front"), **options)

    def reader(self, routing_id=None, kind=zmq.DEALER, **options):
        return self.socket(kind, routing_id, self.endpoint("rear"), **options)

    def close(self, sock):
        if sock in self.sockets:
            self.sockets.remove(sock)
        sock.close(linger=0)

    # ---- protocol helpers -----------------------------------------------------------------
    def request(self, command, *args, routing_id=None, kind=zmq.DEALER):
        sock = self.reader(routing_id if routing_id is not None else identity("any"), kind=kind)
        sock.send_multipart([command] + list(args))
        reply = sock.recv_multipart()
        self.close(sock)
        return reply

    def write(self, topic, messages, mode=1):
        """Write messages (lists of frames) in mode 1 and wait for every reply."""
        sock = self.writer(identity(topic, mode))
        for frames in messages:
            sock.send_multipart(frames)
        replies = [sock.recv_multipart() for _ in messages] if mode == 1 else []
        self.close(sock)
        return replies

    def fetch(self, topic, position, max_bytes):
        return self.request(b"FETCH", i64(position), i64(max_bytes), routing_id=identity(topic))

    def fetch_all(self, topic, position=0, max_bytes=1 << 20):
        """Every message from position to the end, FETCH after FETCH."""
        messages = []
        while True:
            reply = self.fetch(topic, position, max_bytes)
            assert reply[0] == bytes([OK]), reply
            if not reply[1]:
                return messages
            messages += decode(reply[1])
            position += len(reply[1])

    def bounds(self, topic):
        reply = self.request(b"BOUNDS", topic.encode())
        assert reply[0] == bytes([OK]) and len(reply) == 7, reply
        return [get_i64(frame) for frame in reply[1:]]

    def wait_durable(self, topic, count, timeout_s=15):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.bounds(topic)[1] >= count:
                return
            time.sleep(0.05)
        raise AssertionError("topic %s never reached %d durable messages" % (topic, count))


class BrokerTestCase(unittest.TestCase):
    """One broker per test class; setUp checks it is still serving."""
    extra_config = ""

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(cls.extra_config).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def assertServing(self, topic="wellbehaved"):
        """A well-behaved writer and reader on the same broker still get correct answers."""
        before = self.broker.bounds(topic)[1]
        marker = b"still-serving-%d" % before
        replies = self.broker.write(topic, [[b"id-ok", marker]])
        self.assertEqual(replies, [[b"id-ok"]])
        messages = self.broker.fetch_all(topic)
        self.assertEqual(messages[-1], [b"id-ok", marker])
        self.assertEqual(len(messages), before + 1)


def main():
    unittest.main(verbosity=2)
