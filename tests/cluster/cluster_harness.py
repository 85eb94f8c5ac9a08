"""Black-box harness for cluster mode (docs/cluster.md): a real etcd and N real zperd nodes on
loopback ports it picks, spoken to with nothing but pyzmq and the wire of docs/protocol.md.

The one thing to know: every socket a producer thread uses is its own (request() and
ClusterProducer build them from the shared context and never register them with a Node), so
the main thread may kill -9 or stop a node while producers run; the Node helpers themselves
(Broker's request, reader, writer) belong to the main thread only.

Builds on tests/broker/zperd_harness.py (Broker, identity, the READ batch decoder)."""

import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "broker"))

import zmq                                  # noqa: E402
import zperd_harness as harness             # noqa: E402
from zperd_harness import (Broker, identity, i32, i64, decode_read_batch,  # noqa: E402,F401
                           free_port, OK, INVALID_OFFSET, INVALID_ARGUMENT)

ETCD = os.environ.get("ZPER_ETCD", "/usr/bin/etcd")
ZPER = os.environ.get("ZPER", "zper")
NOT_LEADER, NOT_ENOUGH_REPLICAS, FENCED, NO_CLUSTER, TOPIC_EXISTS = 110, 111, 112, 113, 114
SKIP = 77                                   # ctest SKIP_RETURN_CODE: no etcd on this machine

LEASE_TTL_S = 2                             # tests' cluster.lease_ttl
REPLICA_LAG_MS = 3000                       # tests' cluster.replica_lag_ms
ETCD_START_S = 30
WAIT_S = 60                                 # bound of any "until the cluster shows X" wait
REQUEST_MS = 2000                           # one METADATA/READ round trip
READ_BYTES = 1 << 20
WINDOW = 64                                 # mode-1 writes in flight per producer
REPLY_TIMEOUT_S = 3.0                       # no reply this long: the producer asks METADATA again


def require_etcd():
    """Exit with SKIP when there is no etcd binary (ctest shows the test as skipped)."""
    if not os.access(ETCD, os.X_OK):
        print("no etcd at %s: cluster tests skipped" % ETCD)
        sys.exit(SKIP)


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


# ---- etcd ------------------------------------------------------------------------------------

class Etcd:
    """One single-member etcd in its own temp folder, client and peer on loopback."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="zper-etcd-")
        atexit.register(shutil.rmtree, self.folder, True)
        self.client_port, self.peer_port = free_port(), free_port()
        self.process = None
        self.paused = False

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.client_port

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.log = open(os.path.join(self.folder, "etcd.log"), "ab")
        self.process = subprocess.Popen(
            [ETCD, "--name", "zpertest", "--data-dir", os.path.join(self.folder, "data"),
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "zpertest=" + peer, "--initial-cluster-state", "new"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + ETCD_START_S
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("etcd exited with %d at start:\n%s"
                                     % (self.process.returncode, self.output()))
            try:
                self.call("/v3/kv/range", {"key": b64("probe")}, timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("etcd did not answer within %d s:\n%s" % (ETCD_START_S, self.output()))

    def output(self):
        with open(os.path.join(self.folder, "etcd.log"), "rb") as log:
            return log.read().decode(errors="replace")[-4000:]

    def call(self, path, body, timeout=5):
        request = urllib.request.Request(self.endpoint + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())

    def get_prefix(self, prefix):
        """{key: value} of every key under prefix (for diagnostics and checks)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
                for kv in reply.get("kvs", [])}

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self):
        if not self.process:
            return
        if self.paused:
            self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self.log.close()


# ---- nodes -----------------------------------------------------------------------------------

class Node(Broker):
    """A zperd in cluster mode: its own data folder, its own ports (replication too), the
    tests' short lease and replica lag. start/stop/kill9 are Broker's; restart reuses both
    the data folder and the ports."""

    def __init__(self, node_id, etcd, extra=""):
        ports = {name: free_port() for name in ("front", "rear", "ack", "relay", "pub",
                                                "replication")}
        super().__init__(extra, ports=ports)
        self.node_id = node_id
        self.etcd = etcd
        self.lease_ttl = LEASE_TTL_S
        self.replica_lag_ms = REPLICA_LAG_MS

    def config_text(self):
        return super().config_text() + "\n".join([
            "cluster.etcd = " + self.etcd.endpoint,
            "cluster.node = %d" % self.node_id,
            "cluster.replication.bind = " + self.endpoint("replication"),
            "cluster.lease_ttl = %d" % self.lease_ttl,
            "cluster.replica_lag_ms = %d" % self.replica_lag_ms, ""])

    @property
    def running(self):
        process = self.process          # producer threads ask while the main thread kills
        return process is not None and process.poll() is None

    def restart(self):
        """Start again on the same data and ports after stop or kill9."""
        return self.start()

    def kill9(self):
        """SIGKILL first, then close the main thread's sockets (libzmq#3442, see
        tests/reliability/reliability.py kill9)."""
        self.process.kill()
        self.process.wait()
        super().kill9()


def request(endpoint, frames, timeout_ms=REQUEST_MS):
    """One rear request on a socket of its own (thread-safe); None when no reply came."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    sock.setsockopt(zmq.IDENTITY, identity("any"))
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        return sock.recv_multipart()
    except zmq.Again:
        return None
    finally:
        sock.close(linger=0)


def partition_of(metadata, topic, index):
    """The partition entry {"id","leader","epoch","replicas","isr"} of METADATA, or None."""
    layout = metadata.get("topics", {}).get(topic)
    if not layout:
        return None
    for entry in layout.get("partition", []):
        if entry.get("id") == index:
            return entry
    return None


def message_of(tag, seq):
    """ClusterProducer's message seq: one frame "<tag>-<seq>-<filler>", its own id (mode 1
    replies with the first frame). One frame, so a socket closed with writes on the wire never
    leaves half a multipart message (libzmq#3442, see tests/reliability/reliability.py kill9)."""
    return b"%s-%d-%s" % (tag, seq, b"x" * (seq % 23))


def seq_of(message):
    return int(message.rsplit(b"-", 2)[1])


class Cluster:
    """etcd and nodes 1..N. Node helpers take a node id or a Node."""

    def __init__(self, size=3, extra=""):
        self.etcd = Etcd()
        self.nodes = {node_id: Node(node_id, self.etcd, extra) for node_id in range(1, size + 1)}

    def node(self, which):
        return which if isinstance(which, Node) else self.nodes[which]

    def start(self):
        self.etcd.start()
        for node in self.nodes.values():
            node.start()
        self.wait_nodes(list(self.nodes))
        return self

    def stop(self):
        """Stop every running node (checked: exit 0, no sanitizer report), then etcd. Every
        node is stopped even when one fails; the first failure is raised."""
        failure = None
        if self.etcd.paused:
            self.etcd.resume()
        for node in self.nodes.values():
            try:
                node.stop(check=True)
            except AssertionError as error:
                failure = failure or error
        self.etcd.stop()
        if failure:
            raise failure

    def live(self):
        return [node for node in self.nodes.values() if node.running]

    @contextlib.contextmanager
    def stopped_after(self, on_failure=None):
        """Run a test's body, then stop the cluster (checked). On a failure: on_failure() (let
        go of what the body holds), the cluster's state to stderr, every node and etcd stopped
        (a failed stop only reported), and the failure raised."""
        try:
            yield self
        except BaseException:
            if on_failure:
                on_failure()
            print(self.dump(), file=sys.stderr)
            try:
                self.stop()
            except AssertionError as error:
                print("and at stop: %s" % error, file=sys.stderr)
            raise
        self.stop()

    def dump(self):
        """etcd's /zper keys and each live node's CLUSTER view, for a failure message."""
        lines = []
        try:
            for key, value in sorted(self.etcd.get_prefix("/zper/").items()):
                lines.append("etcd %s = %s" % (key, value))
        except OSError as error:
            lines.append("etcd unreadable: %s" % error)
        for node in self.live():
            reply = request(node.endpoint("rear"), [b"CLUSTER"])
            lines.append("node %d CLUSTER: %r" % (node.node_id, reply and reply[1:]))
        return "\n".join(lines)

    # ---- admin --------------------------------------------------------------------------
    def create_topic(self, topic, partitions, replicas, min_isr=0, node=1):
        """CREATE on a node's rear: the reply frames ([100][json] on success)."""
        reply = request(self.node(node).endpoint("rear"),
                        [b"CREATE", topic.encode(), i32(partitions), i32(replicas), i32(min_isr)],
                        timeout_ms=WAIT_S * 1000)
        assert reply is not None, "CREATE %s: no reply" % topic
        return reply

    def create_in_sync(self, topic, partitions, replicas, min_isr=0):
        """CREATE (checked), then wait until every partition's ISR holds all its replicas."""
        reply = self.create_topic(topic, partitions, replicas, min_isr)
        assert reply[0] == bytes([OK]), reply
        for index in range(partitions):
            self.wait_isr(topic, index, replicas)

    def metadata(self, node, topic=None, timeout_ms=REQUEST_MS):
        """METADATA from a node as a dict; None when it did not answer."""
        frames = [b"METADATA"] + ([topic.encode()] if topic else [])
        reply = request(self.node(node).endpoint("rear"), frames, timeout_ms)
        if reply is None:
            return None
        assert reply[0] == bytes([OK]) and len(reply) == 2, "METADATA: %r" % reply[:2]
        return json.loads(reply[1])

    def cluster_view(self, node):
        reply = request(self.node(node).endpoint("rear"), [b"CLUSTER"])
        assert reply is not None and reply[0] == bytes([OK]), "CLUSTER: %r" % reply
        return json.loads(reply[1])

    def wait_nodes(self, ids, timeout_s=WAIT_S):
        """Until every live node's METADATA lists exactly ids as live nodes."""
        wanted = sorted(str(node_id) for node_id in ids)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            views = [self.metadata(node) for node in self.live()]
            if all(view and sorted(view.get("nodes", {})) == wanted for view in views):
                return
            time.sleep(0.1)
        raise AssertionError("nodes never saw %s as the live nodes:\n%s" % (wanted, self.dump()))

    def partition(self, topic, index, node=None):
        """The partition entry as node (default: the first live one) shows it, or None."""
        for candidate in ([self.node(node)] if node else self.live()):
            view = self.metadata(candidate, topic)
            if view is not None:
                return partition_of(view, topic, index)
        return None

    def leader_of(self, topic, index, above_epoch=-1, not_node=None, timeout_s=WAIT_S):
        """(leader id, epoch) once a live node's METADATA shows a leader that is running, with
        an epoch above above_epoch and other than not_node."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            entry = self.partition(topic, index)
            if entry and entry["leader"] in self.nodes and entry["leader"] != not_node \
                    and self.nodes[entry["leader"]].running and entry["epoch"] > above_epoch:
                return entry["leader"], entry["epoch"]
            time.sleep(0.05)
        raise AssertionError("%s.%d: no leader (epoch > %d, not %s) within %d s:\n%s"
                             % (topic, index, above_epoch, not_node, timeout_s, self.dump()))

    def wait_isr(self, topic, index, size, timeout_s=WAIT_S):
        """The ISR (sorted) once every live node's METADATA shows one of size members."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            views = [self.partition(topic, index, node) for node in self.live()]
            if views and all(view and len(view["isr"]) == size and view["leader"] != -1
                             for view in views):
                isrs = {tuple(sorted(view["isr"])) for view in views}
                if len(isrs) == 1:
                    return list(isrs.pop())
            time.sleep(0.1)
        raise AssertionError("%s.%d: ISR never reached %d members within %d s:\n%s"
                             % (topic, index, size, timeout_s, self.dump()))

    # ---- data -----------------------------------------------------------------------------
    def produce(self, topic, index, messages, node=None, errors=None):
        """Write messages (lists of frames, the first frame a unique id) in mode 1 to the
        partition's leader (or node), WINDOW in flight; the acked ids, in reply order. Error
        replies go to errors as (id, status) when a list is given; a missing reply ends it.
        index None writes the plain topic name (node is then required)."""
        target = self.node(node) if node else self.nodes[self.leader_of(topic, index)[0]]
        log_topic = topic if index is None else "%s.%d" % (topic, index)
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, WAIT_S * 1000)
        sock.setsockopt(zmq.IDENTITY, identity(log_topic, 1))
        sock.connect(target.endpoint("front"))
        acked, sent, received = [], 0, 0
        try:
            while received < len(messages):
                while sent < len(messages) and sent - received < WINDOW:
                    sock.send_multipart(messages[sent])
                    sent += 1
                try:
                    reply = sock.recv_multipart()
                except zmq.Again:
                    break
                received += 1
                if len(reply) == 1:
                    acked.append(reply[0])
                elif errors is not None:
                    errors.append((reply[0], reply[1][0] if len(reply[1]) == 1 else reply[1]))
        finally:
            sock.close(linger=0)
        return acked

    def read_all(self, node, log_topic, timeout_ms=REQUEST_MS):
        """Every visible record of log topic "T.i" on node, READ after READ from offset 0:
        [(offset, frames)]. An unknown topic reads as empty."""
        endpoint = self.node(node).endpoint("rear")
        records, offset = [], 0
        while True:
            reply = request(endpoint, [b"READ", log_topic.encode(), i64(offset), i32(READ_BYTES),
                                       i32(0)], timeout_ms)
            assert reply is not None, "READ %s at %d: no reply" % (log_topic, offset)
            assert reply[0] == bytes([OK]), "READ %s at %d: %r" % (log_topic, offset, reply[:1])
            batch = decode_read_batch(reply[1]) if len(reply) > 1 else []
            if not batch:
                return records
            for record_offset, _timestamp, frames in batch:
                assert record_offset == offset, "%s: offset %d where %d was due" \
                    % (log_topic, record_offset, offset)
                records.append((record_offset, frames))
                offset += 1

    def wait_replicas_equal(self, topic, index, node_ids, count=None, timeout_s=WAIT_S):
        """Poll READ on each node until they all serve the same records (at least count of
        them); the common records. Followers' visible ends trail the leader's HW a little."""
        deadline = time.time() + timeout_s
        while True:
            logs = {node_id: self.read_all(node_id, "%s.%d" % (topic, index))
                    for node_id in node_ids}
            first = logs[node_ids[0]]
            if all(log == first for log in logs.values()) and len(first) >= (count or 0):
                return first
            if time.time() > deadline:
                raise AssertionError("%s.%d: replicas never served the same log: sizes %s\n%s"
                                     % (topic, index, {n: len(l) for n, l in logs.items()},
                                        self.dump()))
            time.sleep(0.2)


# ---- a re-routing producer ------------------------------------------------------------------

class ClusterProducer:
    """Mode-1 writes of unique one-frame messages (message_of) to partition index of topic,
    WINDOW in flight, at whichever node METADATA names as leader. Never resends: a write
    answered 110/111 or left without a reply when the producer moves on (no reply for
    REPLY_TIMEOUT_S, a 110) is "uncertain": it may or may not be stored. After a silence it
    does not go back to the same leader and epoch for REPLY_TIMEOUT_S: it polls METADATA for
    the new leader meanwhile. acked is the ids acknowledged, in order;
    ack_times the (time, leader id) of each acknowledgement. Runs in its own thread
    (start/stop) or is pumped by the caller (run_for)."""

    def __init__(self, cluster, topic, index, tag=None):
        self.cluster = cluster
        self.topic, self.index = topic, index
        self.log_topic = "%s.%d" % (topic, index)
        self.tag = (tag or self.log_topic).encode()
        assert b"-" not in self.tag
        self.next_seq = 0
        self.acked, self.ack_times = [], []
        self.uncertain = set()
        self.statuses = {}                   # error status -> count
        self.sock, self.leader, self.epoch, self.pending = None, None, None, {}
        self.silent = None                   # (leader, epoch, when) of the last silence
        self.last_reply = time.time()
        self.reroutes = 0
        self.sent = set()
        self.thread, self.running, self.failure = None, False, None

    def _drop_connection(self):
        if self.sock:
            self.sock.close(linger=0)
        self.sock = None
        self.uncertain.update(self.pending)
        self.pending = {}
        self.leader = None

    def _route(self):
        """Connect to the leader METADATA shows (any live node that answers); False if none."""
        self._drop_connection()
        for node in list(self.cluster.nodes.values()):
            if not node.running:
                continue
            try:
                view = self.cluster.metadata(node, self.topic, timeout_ms=500)
            except (AssertionError, ValueError):
                view = None
            entry = view and partition_of(view, self.topic, self.index)
            if not entry or entry["leader"] == -1:
                continue
            if self.silent and self.silent[:2] == (entry["leader"], entry["epoch"]) \
                    and time.time() - self.silent[2] < REPLY_TIMEOUT_S:
                return False                # the leader that went silent: wait for a change
            front = view.get("nodes", {}).get(str(entry["leader"]), {}).get("front")
            if not front:
                continue
            self.sock = zmq.Context.instance().socket(zmq.DEALER)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.setsockopt(zmq.IDENTITY, identity(self.log_topic, 1))
            self.sock.connect(front)
            self.leader, self.epoch = entry["leader"], entry["epoch"]
            self.last_reply = time.time()
            self.reroutes += 1
            return True
        return False

    def pump(self, wait_ms=10):
        """Fill the window, take the replies that arrive within wait_ms; re-route on 110, 111
        or silence."""
        if self.sock is None and not self._route():
            time.sleep(0.05)
            return
        while len(self.pending) < WINDOW:
            message_id = message_of(self.tag, self.next_seq)
            try:
                self.sock.send(message_id, zmq.NOBLOCK)
            except zmq.Again:
                break
            self.next_seq += 1
            self.pending[message_id] = time.time()
            self.sent.add(message_id)
        if not self.sock.poll(wait_ms):
            if self.pending and time.time() - self.last_reply > REPLY_TIMEOUT_S:
                self.silent = (self.leader, self.epoch, time.time())
                self._drop_connection()
            return
        while True:
            try:
                reply = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.last_reply = time.time()
            self.pending.pop(reply[0], None)
            if len(reply) == 1:
                self.acked.append(reply[0])
                self.ack_times.append((self.last_reply, self.leader))
                continue
            status = reply[1][0] if len(reply[1]) == 1 else -1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.uncertain.add(reply[0])
            if status in (NOT_LEADER, NOT_ENOUGH_REPLICAS):
                self._drop_connection()
                time.sleep(0.05)            # the cluster is electing: do not spin
                return
            raise AssertionError("%s: write %r answered %r" % (self.log_topic, reply[0], reply[1]))

    def run_for(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.pump()

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        try:
            while self.running:
                self.pump()
        except Exception as error:          # noqa: BLE001 - handed to the main thread
            self.failure = error

    def stop(self, drain_s=REPLY_TIMEOUT_S):
        """Stop writing, take the replies still due (up to drain_s), close."""
        self.running = False
        if self.thread:
            self.thread.join()
            self.thread = None
        deadline = time.time() + drain_s
        while self.sock is not None and self.pending and time.time() < deadline:
            if self.sock.poll(50):
                reply = self.sock.recv_multipart()
                self.pending.pop(reply[0], None)
                if len(reply) == 1:
                    self.acked.append(reply[0])
                    self.ack_times.append((time.time(), self.leader))
                else:
                    self.uncertain.add(reply[0])
        self._drop_connection()
        if self.failure:
            raise self.failure

    def wait_acks(self, count, what):
        """Wait (at most WAIT_S) until count writes are acknowledged."""
        deadline = time.time() + WAIT_S
        while len(self.acked) < count:
            assert self.failure is None, self.failure
            assert time.time() < deadline, "%s: %d of %d acknowledgements (statuses %r)" \
                % (what, len(self.acked), count, self.statuses)
            time.sleep(0.05)

    def first_ack_after(self, moment, not_leader=None):
        """The time of the first acknowledgement after moment (from a leader other than
        not_leader), or None."""
        for when, leader in self.ack_times:
            if when > moment and leader != not_leader:
                return when
        return None


def check_partition_log(records, producer, log_topic):
    """A replica's log against what its producer did: every message is one the producer sent,
    intact, each id at most once, in the order sent; every acknowledged id is there."""
    ids = []
    last_seq = -1
    for offset, frames in records:
        message_id = frames[0]
        assert len(frames) == 1 and message_id in producer.sent, \
            "%s offset %d: %r was never sent" % (log_topic, offset, frames[:2])
        seq = seq_of(message_id)
        assert seq > last_seq, "%s offset %d: %r after seq %d (duplicate or out of order)" \
            % (log_topic, offset, message_id, last_seq)
        last_seq = seq
        ids.append(message_id)
    present = set(ids)
    missing = [message_id for message_id in producer.acked if message_id not in present]
    assert not missing, "%s: %d acknowledged messages missing, first %r" \
        % (log_topic, len(missing), missing[:5])
    return ids
