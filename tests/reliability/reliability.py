"""Shared pieces of the reliability tests (docs/reliability.md): a mode-1 producer that
records every acknowledged message, and a checker that proves every acknowledged message
is still served, intact and in order. Builds on the broker harness (tests/broker)."""

import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "broker"))

import zmq                                  # noqa: E402
import zperd_harness as harness             # noqa: E402
from zperd_harness import (Broker, identity, i64, i32, decode_read_batch,  # noqa: E402,F401
                           OK, INVALID_OFFSET, STORAGE_ERROR)

ZPER = os.environ.get("ZPER", "zper")
WINDOW = 64                                 # mode-1 writes in flight per producer
READ_BYTES = 1 << 20


def frames_of(topic, seq):
    """The frames of message seq of topic: a function of both, so any reader can check any
    message without a copy of what was sent. Sizes cross the 255-byte short/long frame limit."""
    digest = hashlib.sha256(b"%s:%d" % (topic.encode(), seq)).digest()
    frames = [b"%d" % seq, digest * (1 + seq % 9)]
    if seq % 5 == 0:
        frames.append(b"")
    if seq % 7 == 0:
        frames.append(digest[:4] * 80)
    return frames


def seq_of(frames):
    return int(frames[0])


class Producer:
    """A mode-1 DEALER writing seq, seq+1, ... to one topic with WINDOW writes in flight.
    acked holds every seq the broker acknowledged; next_seq never goes back, so a message
    that was sent but never acknowledged keeps its seq and no seq is written twice."""

    def __init__(self, topic, next_seq=0):
        self.topic = topic
        self.next_seq = next_seq
        self.acked = set()
        self.errors = []
        self.sock = None
        self.in_flight = 0

    def connect(self, broker):
        self.sock = broker.writer(identity(self.topic, 1))
        self.in_flight = 0

    def pump(self):
        """Fill the window, then take whatever replies have arrived (no waiting)."""
        while self.in_flight < WINDOW:
            try:
                self.sock.send_multipart(frames_of(self.topic, self.next_seq), zmq.NOBLOCK)
            except zmq.Again:
                break
            self.next_seq += 1
            self.in_flight += 1
        while True:
            try:
                reply = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.in_flight -= 1
            if len(reply) == 1:
                self.acked.add(int(reply[0]))
            else:
                self.errors.append(reply)


def start(broker, attempts=3):
    """broker.start(), with fresh ports when another process took one meanwhile (the harness
    picks free ports, then binds them: a parallel test may win the race)."""
    for attempt in range(attempts):
        try:
            return broker.start()
        except AssertionError as error:
            if "Address already in use" not in str(error) or attempt + 1 == attempts:
                raise
            broker.ports = {name: harness.free_port() for name in broker.ports}


def kill9(broker):
    """SIGKILL the broker, then close the test's sockets. In this order: a client of libzmq
    4.3.4 that closes a socket with linger 0 while its peer is alive and a multipart message
    is half on the wire can abort in session_base clean_pipes (zeromq/libzmq#3442)."""
    broker.process.kill()
    broker.process.wait()
    broker.kill9()


def read_topic(broker, topic):
    """Every durable message of topic from its first retained offset, as (offset, frames).
    If retention deletes the segment being read meanwhile, start again from the new start."""
    start, durable = broker.bounds(topic)[:2]
    offset, records = start, []
    while offset < durable:
        reply = broker.request(b"READ", topic.encode(), i64(offset), i32(READ_BYTES), i32(0))
        if reply[0] == bytes([INVALID_OFFSET]):
            new_start = broker.bounds(topic)[0]
            assert new_start > offset, "READ %s at %d refused but still retained" % (topic, offset)
            offset, records = new_start, []
            continue
        assert reply[0] == bytes([OK]), "READ %s at %d answered %r" % (topic, offset, reply[:1])
        batch = decode_read_batch(reply[1])
        assert batch, "READ %s at %d below durable %d returned nothing" % (topic, offset, durable)
        for record_offset, _timestamp, frames in batch:
            assert record_offset == offset, "offset %d where %d was due" % (record_offset, offset)
            records.append((record_offset, frames))
            offset += 1
    return records


def fetch_topic(broker, topic):
    """The same messages through the legacy FETCH by byte position: (first offset, messages),
    or (None, []) when retention moved the start while fetching."""
    start, _durable, position, durable_position = broker.bounds(topic)[:4]
    messages = []
    while position < durable_position:
        reply = broker.fetch(topic, position, READ_BYTES)
        if reply[0] == bytes([INVALID_OFFSET]) and broker.bounds(topic)[0] > start:
            return None, []
        assert reply[0] == bytes([OK]) and reply[1], "FETCH %s at %d answered %r" % (topic, position, reply[:1])
        messages += harness.decode(reply[1])
        position += len(reply[1])
    return start, messages


def check_topic(broker, producer):
    """Every acknowledged message of producer is served, intact, in order; returns how many
    messages were checked. A message older than the first one served may have been removed
    by retention, which deletes oldest first (with an empty active segment, everything
    older than the retention period); nothing after it may be missing."""
    records = read_topic(broker, producer.topic)
    served, previous = [], -1
    for offset, frames in records:
        seq = seq_of(frames)
        assert frames == frames_of(producer.topic, seq), \
            "%s offset %d: message %d is not what was written" % (producer.topic, offset, seq)
        assert seq > previous, "%s offset %d: message %d after %d" % (producer.topic, offset, seq, previous)
        previous = seq
        served.append(seq)
    fetch_start, fetched = fetch_topic(broker, producer.topic)
    if fetch_start is not None:
        assert fetched == [frames for offset, frames in records if offset >= fetch_start], \
            "%s: FETCH and READ disagree" % producer.topic
    #  Offsets are dense and every acknowledged message holds one below the durable end,
    #  whatever retention deleted since: fewer offsets than acknowledgements is a loss.
    durable = broker.bounds(producer.topic)[1]
    assert durable >= len(producer.acked), \
        "%s: durable end %d below %d acknowledged" % (producer.topic, durable, len(producer.acked))
    floor = served[0] if served else producer.next_seq
    served_set = set(served)
    missing = sorted(seq for seq in producer.acked if seq >= floor and seq not in served_set)
    assert not missing, "%s: acknowledged messages missing: %s" % (producer.topic, missing[:20])
    return len(served)


def verify_log(path):
    """`zper log verify` on a data folder: (exit code, output)."""
    run = subprocess.run([ZPER, "log", "verify", path], capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def run_for(producers, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for producer in producers:
            producer.pump()
        time.sleep(0.002)
