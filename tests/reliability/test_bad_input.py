"""The bad-input catalogue, extended (docs/reliability.md section 2); tests/broker's
test_bad_input.py has the protocol-level cases. Here: bytes that are not ZeroMQ at all on every
port, ZMTP frames announcing absurd sizes, thousands of topics, hostile topic names, and config
files with every kind of mistake. Each case: the documented error (or a dropped connection),
the broker keeps serving, and a well-behaved writer and reader still get correct answers."""

import os
import socket
import struct
import subprocess
import time

import reliability as rel
from zperd_harness import BrokerTestCase, INVALID_ARGUMENT, i32, i64, identity, main

import zmq

TOPIC_COUNT = 1000
NULL_GREETING = (b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00")
                 + b"\x00" + bytes(31))


def ready_command(socket_type, routing_id=b""):
    """A ZMTP 3.0 READY command (NULL mechanism) with the socket type and identity."""
    body = b"\x05READY"
    for name, value in ((b"Socket-Type", socket_type), (b"Identity", routing_id)):
        body += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return b"\x04" + bytes([len(body)]) + body


class RawTcp(BrokerTestCase):
    """Bytes straight onto the broker's TCP ports, below libzmq's sockets."""

    def raw(self, port_name, payload, wait_s=0.0):
        """Send payload on a fresh TCP connection and wait up to wait_s for the broker to close
        it; returns True if it did."""
        with socket.create_connection(("127.0.0.1", self.broker.ports[port_name]), timeout=5) as conn:
            try:
                conn.sendall(payload)
                conn.settimeout(max(wait_s, 0.001))
                deadline = time.time() + wait_s
                while time.time() < deadline:
                    data = conn.recv(65536)
                    if not data:
                        return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        return False

    def test_garbage_greetings_on_every_port(self):
        garbage = [b"GET / HTTP/1.1\r\nHost: zper\r\n\r\n", os.urandom(4096), b"\x00" * 64,
                   b"\xff" + bytes(8) + b"\x7f" + b"\x09\x09" + os.urandom(52),   # bad version
                   b"\xff" + struct.pack(">Q", 2 ** 61) + b"\x00" + bytes(64),   # ZMTP 1.0, 2^61 bytes
                   NULL_GREETING[:30],                                          # cut short
                   NULL_GREETING.replace(b"NULL", b"CURV")]                     # wrong mechanism
        for port_name in ("front", "rear", "relay", "ack", "pub"):
            for payload in garbage:
                self.raw(port_name, payload)
        self.assertServing()

    def test_huge_frame_length_headers_drop_the_connection_only(self):
        for port_name, socket_type, routing_id in (("front", b"DEALER", identity("raw", 1)),
                                                   ("rear", b"DEALER", identity("raw")),
                                                   ("relay", b"DEALER", identity("raw")),
                                                   ("ack", b"SUB", b""), ("pub", b"SUB", b"")):
            for size in (2 ** 63 - 1, 2 ** 40, 512 << 20):
                header = b"\x02" + struct.pack(">Q", size) + b"start of a frame that never ends"
                closed = self.raw(port_name, NULL_GREETING + ready_command(socket_type, routing_id)
                                  + header, wait_s=5)
                self.assertTrue(closed, "%s kept a connection announcing a %d-byte frame"
                                % (port_name, size))
        self.assertEqual(self.broker.bounds("raw")[1], 0)
        self.assertServing()

    def test_many_idle_half_open_connections(self):
        conns = [socket.create_connection(("127.0.0.1", self.broker.ports["front"]))
                 for _ in range(200)]
        for conn in conns[::2]:
            conn.sendall(NULL_GREETING[:11])
        self.assertServing()
        for conn in conns:
            conn.close()
        self.assertServing()


class Topics(BrokerTestCase):

    def test_thousands_of_topics(self):
        names = ["many%d" % number for number in range(TOPIC_COUNT)]
        for name in names:
            sock = self.broker.writer(identity(name, 1))
            sock.send_multipart([b"id", name.encode()])
            self.assertEqual(sock.recv_multipart(), [b"id"], name)
            self.broker.close(sock)
        listed = set(topic.decode() for topic in self.broker.request(b"TOPICS")[1:])
        self.assertTrue(set(names) <= listed)
        for name in names[::97]:
            self.assertEqual(self.broker.fetch_all(name), [[b"id", name.encode()]])
        self.assertServing()

    def test_hostile_topic_names_in_identities_are_refused(self):
        for name in (b"a/b", b"..", b".", b"te\x00t", "caf\u00e9".encode(), b"\xff\xfe",
                     b"sp ace", b"a" * 65):
            for mode in (0, 1):
                routing_id = bytes([0, mode, len(name) & 0xFF]) + name + os.urandom(16)
                sock = self.broker.writer(routing_id)
                sock.send_multipart([b"id-bad", b"data"])
                self.assertEqual(sock.recv_multipart(), [b"id-bad", bytes([INVALID_ARGUMENT])], name)
                self.broker.close(sock)
            relay = self.broker.socket(zmq.DEALER, bytes([0, 0, len(name) & 0xFF]) + name,
                                       self.broker.endpoint("relay"))
            relay.send_multipart([b"RESUME", i64(0)])
            self.assertEqual(relay.recv_multipart(), [bytes([INVALID_ARGUMENT])], name)
            self.broker.close(relay)
        self.assertServing()

    def test_hostile_topic_names_in_read_commands_are_refused(self):
        for name in (b"a/b", b"..", b".", b"../../etc/passwd", b"te\x00t", "caf\u00e9".encode(),
                     b"\xff", b"sp ace", b"a" * 250, b"/abs"):
            for request in ([b"READ", name, i64(0), i32(100), i32(0)], [b"BOUNDS", name],
                            [b"TIMEOFFSET", name, i64(0)]):
                self.assertEqual(self.broker.request(*request), [bytes([INVALID_ARGUMENT])],
                                 (request[0], name))
        self.assertFalse(os.path.exists(os.path.join(self.broker.folder, "etc")))
        own_files = (".lock", "__consumer_offsets")     # the folder's lock, the groups' offsets
        folders = [name for name in os.listdir(self.broker.data_dir) if name not in own_files]
        self.assertEqual(sorted(folders),
                         sorted(topic.decode() for topic in self.broker.request(b"TOPICS")[1:]))
        self.assertServing()


#  Each bad config: the problem the one-line error must name.
BAD_CONFIGS = [
    ("flush_msgs = 10", "unknown key 'flush_msgs' (did you mean 'flush_messages'?)"),
    ("no_such_key = 1", "unknown key 'no_such_key'"),
    ("front.workers = many", "front.workers: 'many' is not an integer"),
    ("front.workers = 0", "front.workers: '0' is not an integer in [1, 64]"),
    ("front.workers = 65", "not an integer in [1, 64]"),
    ("segment_size = 100", "segment_size"),
    ("segment_size = -5", "segment_size"),
    ("segment_size = 99999999999999999999999999", "segment_size"),
    ("flush_interval = 0", "flush_interval"),
    ("flush_interval = 12abc", "flush_interval"),
    ("max_message = 1e6", "max_message"),
    ("front.bind = tcp://127.0.0.1:1\nwriter.bind = tcp://127.0.0.1:2", "already set"),
    ("segment_size = 4096\nsegment_size = 8192", "already set"),
    ("retain_hours = 1\ncleanup_interval = 1000", "already set"),
    ('base_dir = "unterminated', "unterminated quoted string"),
    ('base_dir = "a" b', "unexpected text after the quoted value"),
    ('base_dir = a"b"', "a quote inside an unquoted value"),      # found by fuzz/config
    ("segment_size", "expected 'key = value'"),
    ("= 5", ""),
    ("base_dir =", "base_dir"),
    ("base_dir = " + "x" * 2000, "base_dir"),
    ("\x00\x01\x02garbage\xff", ""),
]


class Configs(BrokerTestCase):

    def check_config(self, text):
        path = os.path.join(self.broker.folder, "bad.conf")
        with open(path, "wb") as config:
            config.write(text.encode("latin-1") + b"\n")
        run = subprocess.run([rel.harness.ZPERD, "-c", path, "--check-config"],
                             capture_output=True, timeout=30)
        return run.returncode, run.stdout.decode(errors="replace"), run.stderr.decode(errors="replace")

    def test_every_kind_of_config_mistake_is_one_line_and_exit_2(self):
        for text, problem in BAD_CONFIGS:
            code, out, err = self.check_config("# a comment\n\nflush_messages = 5\n" + text)
            self.assertEqual(code, 2, "%r: exit %d, %s%s" % (text, code, out, err))
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, "%r: %r" % (text, err))
            self.assertTrue(lines[0].startswith("zperd: " + os.path.join(self.broker.folder,
                                                                         "bad.conf:")), lines[0])
            self.assertIn(problem, lines[0], text)
        code, out, _err = self.check_config('base_dir = "with # and spaces"  # comment\n'
                                            "cleanup_interval = 604800000L")
        self.assertEqual(code, 0)
        self.assertIn("configuration OK", out)
        self.assertServing()


if __name__ == "__main__":
    main()
