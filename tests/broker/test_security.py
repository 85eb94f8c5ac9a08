"""Security (security.curve = 1, docs/security.md): CURVE on every zperd socket, ZAP refusals,
per-key topic grants from the certificates' metadata, cut-off of a removed key, and a wire
that carries no plaintext. Certificates are written here in CZMQ's zcert format with
nothing but pyzmq, as any third-party client would make them."""

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import zmq
import zmq.utils.monitor

from zperd_harness import Broker, OK, ZPERD, decode, encode, i32, i64, identity, main

FORBIDDEN = 109
WAIT_S = 20                     # bound of every wait for the broker to do something


def write_certificate(folder, name, public, secret=None, metadata=None):
    """A CZMQ certificate (zcert_save): NAME with the public key and metadata, and with a
    secret key NAME_secret, mode 0600."""
    meta = "".join('    %s = "%s"\n' % item for item in (metadata or {}).items())
    head = "#   ZeroMQ CURVE certificate, written by test_security.py\n\nmetadata\n" + meta
    path = os.path.join(folder, name)
    with open(path, "w") as cert:
        cert.write(head + 'curve\n    public-key = "%s"\n' % public.decode())
    if secret is not None:
        secret_path = path + "_secret"
        with open(secret_path, "w") as cert:
            cert.write(head + 'curve\n    public-key = "%s"\n    secret-key = "%s"\n'
                       % (public.decode(), secret.decode()))
        os.chmod(secret_path, 0o600)
    return path


class Key:
    """A client key pair, allowed (in security.keys) with grants, or not."""

    def __init__(self, name, write=None, read=None):
        self.name = name
        self.public, self.secret = zmq.curve_keypair()
        self.metadata = {}
        if write is not None:
            self.metadata["write"] = write
        if read is not None:
            self.metadata["read"] = read

    def allow(self, keys_dir):
        self.path = write_certificate(keys_dir, self.name, self.public, metadata=self.metadata)


class SecureBroker(Broker):
    """A zperd with security.curve = 1; every socket a CURVE client, with cert (a Key) or the
    admin key by default, or plaintext with cert=None."""

    def __init__(self, keys, reload_ms=100):
        folder = tempfile.mkdtemp(prefix="zperd-security-")
        self.keys_dir = os.path.join(folder, "keys")
        os.mkdir(self.keys_dir)
        self.server_public, server_secret = zmq.curve_keypair()
        cert = write_certificate(folder, "broker", self.server_public, server_secret)
        self.admin = Key("admin", write="*", read="*")
        self.cert = self.admin
        for key in [self.admin] + keys:
            key.allow(self.keys_dir)
        super().__init__("security.curve = 1\nsecurity.cert = \"%s\"\nsecurity.keys = \"%s\"\n"
                         "security.reload_ms = %d\n" % (cert, self.keys_dir, reload_ms))

    def socket(self, kind, routing_id, endpoint, timeout_ms=10000, cert="admin"):
        self.cert = self.admin if cert == "admin" else cert
        return super().socket(kind, routing_id, endpoint, timeout_ms)

    def secure(self, sock):
        if self.cert is not None:
            sock.curve_serverkey = self.server_public
            sock.curve_publickey = self.cert.public
            sock.curve_secretkey = self.cert.secret

    def stats(self):
        reply = self.request(b"STATS")
        assert reply[0] == bytes([OK]), reply
        return json.loads(reply[1])

    def counter(self, name):
        return self.stats()["counters"][name]

    def wait_counter(self, name, above):
        """Wait (bounded) until counter name passes above; returns its value."""
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            value = self.counter(name)
            if value > above:
                return value
            time.sleep(0.05)
        raise AssertionError("counter %s never passed %d" % (name, above))

    def stored(self, topic):
        return self.bounds(topic)[1]


class Forwarder:
    """A TCP forwarder on loopback that records every byte from the client to the broker."""

    def __init__(self, target_port):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.recorded = bytearray()
        self.lock = threading.Lock()
        self.stopping = False
        self.connections = []
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while not self.stopping:
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = self.listener.accept()
            except (OSError, ValueError):
                return                  # stopped: the listener is closed
            else:
                server = socket.create_connection(("127.0.0.1", self.target_port))
                self.connections += [client, server]
                threading.Thread(target=self.pump, args=(client, server, True), daemon=True).start()
                threading.Thread(target=self.pump, args=(server, client, False), daemon=True).start()

    def pump(self, source, target, record):
        try:
            while not self.stopping:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                if record:
                    with self.lock:
                        self.recorded += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def bytes(self):
        with self.lock:
            return bytes(self.recorded)

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.listener.close()
        for connection in self.connections:
            connection.close()


class Security(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        #  alpha may write and read every topic starting with "alpha"; nothing else
        cls.alpha = Key("alpha", write="alpha*", read="alpha*")
        cls.removable = Key("removable", write="*", read="*")
        cls.broker = SecureBroker([cls.alpha, cls.removable]).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def writer(self, topic, mode=1, cert="admin", kind=zmq.DEALER, **options):
        return self.broker.socket(kind, identity(topic, mode), self.broker.endpoint("front"),
                                  cert=cert, **options)

    def rear(self, topic, cert="admin"):
        return self.broker.socket(zmq.DEALER, identity(topic), self.broker.endpoint("rear"),
                                  cert=cert)

    def ask(self, sock, *frames):
        sock.send_multipart(list(frames))
        return sock.recv_multipart()

    def test_plaintext_client_is_refused_and_counted(self):
        before = self.broker.counter("auth_refused_mechanism")
        plain = self.writer("plainly", cert=None)
        plain.send_multipart([b"id-plain", b"body"])
        self.broker.wait_counter("auth_refused_mechanism", before)
        self.assertEqual(self.broker.stored("plainly"), 0)
        self.assertEqual(plain.poll(0), 0)
        self.assertIn("security", self.broker.output())

    def test_unknown_key_is_refused_and_counted(self):
        before = self.broker.counter("auth_refused_key")
        stranger = self.writer("strangely", cert=Key("stranger", write="*", read="*"))
        stranger.send_multipart([b"id-stranger", b"body"])
        self.broker.wait_counter("auth_refused_key", before)
        self.assertEqual(self.broker.stored("strangely"), 0)
        self.assertEqual(stranger.poll(0), 0)

    def test_allowed_key_writes_and_reads_its_topics(self):
        sock = self.writer("alphaorders", cert=self.alpha)
        self.assertEqual(self.ask(sock, b"id-1", b"first"), [b"id-1"])
        reader = self.rear("alphaorders", cert=self.alpha)
        reply = self.ask(reader, b"FETCH", i64(0), i64(1 << 20))
        self.assertEqual(reply[0], bytes([OK]))
        self.assertEqual(decode(reply[1]), [[b"id-1", b"first"]])
        reply = self.ask(reader, b"READ", b"alphaorders", i64(0), i32(1 << 20), i32(0))
        self.assertEqual(reply[0], bytes([OK]))
        self.assertIn(b"first", reply[1])
        #  The listings show its readable topics only
        self.broker.write("betalisted", [[b"id-b", b"hidden"]])
        topics = self.ask(reader, b"TOPICS")
        self.assertEqual(topics[0], bytes([OK]))
        self.assertIn(b"alphaorders", topics[1:])
        self.assertNotIn(b"betalisted", topics[1:])
        stats = json.loads(self.ask(reader, b"STATS")[1])
        self.assertIn("alphaorders", stats["topics"])
        self.assertNotIn("betalisted", stats["topics"])
        self.assertIn("forbidden", stats["counters"])

    def test_write_outside_the_grant_gets_109_and_nothing_is_stored(self):
        dealer = self.writer("betarefused", mode=1, cert=self.alpha)
        self.assertEqual(self.ask(dealer, b"id-1", b"body"), [b"id-1", bytes([FORBIDDEN])])
        req = self.writer("betarefused", mode=2, cert=self.alpha, kind=zmq.REQ)
        self.assertEqual(self.ask(req, b"id-2", b"body"), [b"id-2", bytes([FORBIDDEN])])
        before = self.broker.counter("forbidden")
        silent = self.writer("betarefused", mode=0, cert=self.alpha)
        silent.send_multipart([b"id-3", b"body"])
        self.broker.wait_counter("forbidden", before)
        self.assertEqual(self.broker.stored("betarefused"), 0)
        #  The same key still writes its own topics
        #  Mode 3 (batch with reply): [109][batch id][-1][0]
        batch = self.writer("betarefused", mode=3, cert=self.alpha)
        reply = self.ask(batch, b"batch-1", encode([b"m1"]) + encode([b"m2"]))
        self.assertEqual(reply, [bytes([FORBIDDEN]), b"batch-1", i64(-1), i32(0)])
        self.assertEqual(self.broker.stored("betarefused"), 0)
        own = self.writer("alphaok", cert=self.alpha)
        self.assertEqual(self.ask(own, b"id-4", b"body"), [b"id-4"])

    def test_grants_and_keys_change_without_a_restart(self):
        #  A key added to the folder connects (SIGHUP: zauth rereads it at once)
        newcomer = Key("newcomer", write="gamma*", read="gamma*")
        newcomer.allow(self.broker.keys_dir)
        self.broker.process.send_signal(signal.SIGHUP)
        sock = self.writer("gammatopic", cert=newcomer)
        self.assertEqual(self.ask(sock, b"id-1", b"body"), [b"id-1"])
        #  Its grant widened in its certificate: the next writes see it
        self.assertEqual(self.ask(self.writer("deltatopic", cert=newcomer), b"id-2", b"body"),
                         [b"id-2", bytes([FORBIDDEN])])
        newcomer.metadata["write"] = "gamma*, delta*"
        newcomer.allow(self.broker.keys_dir)
        delta = self.writer("deltatopic", cert=newcomer)
        deadline = time.time() + WAIT_S
        while self.ask(delta, b"id-3", b"body") != [b"id-3"]:
            self.assertLess(time.time(), deadline, "the widened grant was never applied")
            time.sleep(0.05)
        self.assertEqual(self.broker.stored("deltatopic"), 1)

    def test_read_outside_the_grant_gets_109_on_every_command(self):
        self.broker.write("betasecret", [[b"id", b"secret"]])
        reader = self.rear("betasecret", cert=self.alpha)
        forbidden = [bytes([FORBIDDEN])]
        self.assertEqual(self.ask(reader, b"FETCH", i64(0), i64(1 << 20)), forbidden)
        self.assertEqual(self.ask(reader, b"FETCH", i64(0), i64(-1)), forbidden)     # streaming
        self.assertEqual(self.ask(reader, b"OFFSET", i64(-1)), forbidden)
        self.assertEqual(self.ask(reader, b"READ", b"betasecret", i64(0), i32(1 << 20), i32(0)),
                         forbidden)
        self.assertEqual(self.ask(reader, b"BOUNDS", b"betasecret"), forbidden)
        self.assertEqual(self.ask(reader, b"TIMEOFFSET", b"betasecret", i64(0)), forbidden)
        #  Nothing streams after the refused streaming FETCH
        self.broker.write("betasecret", [[b"id", b"later"]])
        self.assertEqual(self.ask(reader, b"BOUNDS", b"betasecret"), forbidden)

    def test_relay_reader_without_read_permission_is_not_registered(self):
        refused = self.broker.socket(zmq.DEALER, identity("betalive"), self.broker.endpoint("relay"),
                                     cert=self.alpha)
        self.assertEqual(self.ask(refused, b"RESUME", i64(0)), [bytes([FORBIDDEN])])
        self.assertEqual(self.ask(refused, b"hello"), [bytes([FORBIDDEN])])
        allowed = self.broker.socket(zmq.DEALER, identity("betalive"), self.broker.endpoint("relay"))
        reply = self.ask(allowed, b"RESUME", i64(-1))
        self.assertEqual(reply[0], bytes([OK]))
        self.broker.write("betalive", [[b"id", b"live"]])
        self.assertEqual(allowed.recv_multipart(), [b"id", b"live"])
        self.assertEqual(refused.poll(0), 0)

    def subscriber(self, endpoint, prefix, cert):
        sub = self.broker.socket(zmq.SUB, None, self.broker.endpoint(endpoint), cert=cert)
        sub.setsockopt(zmq.SUBSCRIBE, prefix)
        return sub

    def assertLiveReadersFiltered(self, endpoint, write_topic, sentinel_topic):
        """A subscriber of write_topic without read permission gets nothing of it, while an
        allowed one does; the refused one's next message is the sentinel topic's."""
        before = self.broker.counter("forbidden")
        refused = self.subscriber(endpoint, write_topic.encode(), self.alpha)
        refused.setsockopt(zmq.SUBSCRIBE, sentinel_topic.encode())
        allowed = self.subscriber(endpoint, write_topic.encode(), "admin")
        self.broker.wait_counter("forbidden", before)
        time.sleep(0.3)                 # the allowed subscriptions reach the broker too
        self.broker.write(write_topic, [[b"id-w", b"not for alpha"]])
        self.assertEqual(allowed.recv_multipart()[0], write_topic.encode())
        #  Sent after the first was delivered: on one connection it would queue behind it
        self.broker.write(sentinel_topic, [[b"id-s", b"for alpha"]])
        self.assertEqual(refused.recv_multipart()[0], sentinel_topic.encode())

    def test_relay_pub_delivers_only_readable_topics(self):
        self.assertLiveReadersFiltered("pub", "betapub", "alphapub")

    def test_ack_pub_delivers_only_readable_topics(self):
        self.assertLiveReadersFiltered("ack", "betaacked", "alphaacked")

    def test_wire_is_not_plaintext(self):
        marker = b"MARKER-%s" % os.urandom(8).hex().encode()
        forwarder = Forwarder(self.broker.ports["front"])
        try:
            sock = self.broker.socket(zmq.DEALER, identity("alphawire", 1),
                                      "tcp://127.0.0.1:%d" % forwarder.port, cert=self.alpha)
            self.assertEqual(self.ask(sock, b"id-wire", marker), [b"id-wire"])
            recorded = forwarder.bytes()
            self.assertGreater(len(recorded), len(marker))
            self.assertNotIn(marker, recorded)
            self.assertNotIn(b"alphawire", recorded)
        finally:
            forwarder.stop()
        #  The control: with security off the same write crosses the wire in clear
        plain = Broker().start()
        forwarder = Forwarder(plain.ports["front"])
        try:
            sock = plain.socket(zmq.DEALER, identity("alphawire", 1),
                                "tcp://127.0.0.1:%d" % forwarder.port)
            sock.send_multipart([b"id-wire", marker])
            self.assertEqual(sock.recv_multipart(), [b"id-wire"])
            self.assertIn(marker, forwarder.bytes())
        finally:
            forwarder.stop()
            plain.stop()

    def test_zz_removed_key_is_cut_off(self):
        """Last (zz): it removes a key from the folder."""
        writer = self.writer("removedtopic", cert=self.removable)
        self.assertEqual(self.ask(writer, b"id-1", b"before"), [b"id-1"])
        reader = self.rear("removedtopic", cert=self.removable)
        self.assertEqual(self.ask(reader, b"BOUNDS", b"removedtopic")[0], bytes([OK]))
        monitors = [sock.get_monitor_socket(zmq.EVENT_DISCONNECTED) for sock in (writer, reader)]
        cut_before = self.broker.counter("cut_off")
        refused_before = self.broker.counter("auth_refused_key")
        os.unlink(self.removable.path)
        self.broker.process.send_signal(signal.SIGHUP)
        #  Both connections are closed by the broker (each guard's next check)
        for monitor in monitors:
            monitor.setsockopt(zmq.RCVTIMEO, WAIT_S * 1000)
            event = zmq.utils.monitor.recv_monitor_message(monitor)
            self.assertEqual(event["event"], zmq.EVENT_DISCONNECTED)
        self.broker.wait_counter("cut_off", cut_before + 1)        # one per connection
        #  Its next write is not stored, nor its request answered: its reconnections are refused
        writer.send_multipart([b"id-2", b"after"])
        reader.send_multipart([b"BOUNDS", b"removedtopic"])
        self.broker.wait_counter("auth_refused_key", refused_before)
        self.assertEqual(self.broker.stored("removedtopic"), 1)
        self.assertEqual(writer.poll(0), 0)
        self.assertEqual(reader.poll(0), 0)
        self.assertIn("SIGHUP", self.broker.output())
        for sock, monitor in zip((writer, reader), monitors):
            sock.disable_monitor()
            monitor.close(linger=0)


class Configuration(unittest.TestCase):
    """curve = 1 without what it needs: zperd exits 1 with one line naming the problem."""

    def run_zperd(self, text):
        folder = tempfile.mkdtemp(prefix="zperd-security-config-")
        path = os.path.join(folder, "zper.conf")
        with open(path, "w") as config:
            config.write('base_dir = "%s"\nfront.bind = tcp://127.0.0.1:0\n' % os.path.join(folder, "data")
                         + text.replace("FOLDER", folder))
        result = subprocess.run([ZPERD, "-c", path], capture_output=True, text=True, timeout=60)
        lines = [line for line in result.stderr.splitlines() if line.startswith("E:")]
        return result.returncode, lines, folder

    def test_curve_without_cert_or_keys_names_the_missing_key(self):
        code, lines, _ = self.run_zperd("security.curve = 1\n")
        self.assertEqual((code, len(lines)), (1, 1), lines)
        self.assertIn("security.cert", lines[0])
        code, lines, folder = self.run_zperd('security.curve = 1\nsecurity.cert = "FOLDER/broker"\n')
        self.assertEqual((code, len(lines)), (1, 1), lines)
        self.assertIn("security.keys", lines[0])

    def test_secret_readable_by_others_is_refused(self):
        folder = tempfile.mkdtemp(prefix="zperd-security-cert-")
        public, secret = zmq.curve_keypair()
        cert = write_certificate(folder, "broker", public, secret)
        os.chmod(cert + "_secret", 0o644)
        os.mkdir(os.path.join(folder, "keys"))
        code, lines, _ = self.run_zperd('security.curve = 1\nsecurity.cert = "%s"\n'
                                        'security.keys = "%s/keys"\n' % (cert, folder))
        self.assertEqual((code, len(lines)), (1, 1), lines)
        self.assertIn("readable by others", lines[0])


if __name__ == "__main__":
    main()
