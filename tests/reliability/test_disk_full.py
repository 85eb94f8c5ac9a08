"""Disk full at the broker level (docs/reliability.md section 2).

The broker's data folder is a 4 MiB tmpfs the test mounts (root only: without the right to
mount, the test reports SKIP, exit code 77). Acknowledged writes go in; then a filler file
takes every free byte. While the disk is full: mode-1 and mode-2 (REQ) writes get the error
reply [id][105]; mode-0 writes are counted one by one in the STATS counter storage_error and
the failure is logged; readers are still served. Nothing stored before is damaged. When the
filler is removed, writes are acknowledged again and everything reads back intact.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import reliability as rel
import zmq

TOPIC = "full"
FS_BYTES = 4 << 20
BIG = 3 * 4096
SKIP = 77
CONFIG = "\n".join([
    "segment_size = 65536",           # rolls (new files) also meet the full disk
    "flush_interval = 20",
])


def mount_tmpfs():
    folder = tempfile.mkdtemp(prefix="zper-full-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % FS_BYTES, "tmpfs", folder],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(folder)
        print("SKIP: cannot mount a tmpfs (%s); the disk-full test needs root"
              % mounted.stderr.strip())
        sys.exit(SKIP)
    return folder


def fill(folder):
    """A file that takes every free byte of the file system."""
    path = os.path.join(folder, "filler")
    with open(path, "wb", buffering=0) as filler:
        block = bytes(64 * 1024)
        while True:
            try:
                filler.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):
            while True:
                try:
                    filler.write(bytes(size))
                except OSError:
                    break
    return path


def refused(seq):
    """A write that cannot fit in the slack of an already allocated page: it needs new space."""
    return [b"%d" % seq, b"F" * BIG]


def counter(broker, name):
    reply = broker.request(b"STATS")
    assert reply[0] == bytes([rel.OK])
    return json.loads(reply[1])["counters"][name]


def wait_counter(broker, name, value, timeout_s=15):
    deadline = time.time() + timeout_s
    while time.time() < deadline and counter(broker, name) < value:
        time.sleep(0.05)
    return counter(broker, name)


def check_served(broker, count):
    served = rel.read_topic(broker, TOPIC)
    assert [frames for _, frames in served] == [rel.frames_of(TOPIC, seq) for seq in range(count)], \
        "stored messages changed: %d served, %d expected" % (len(served), count)


def main():
    mount = mount_tmpfs()
    broker = None
    try:
        broker = rel.Broker(CONFIG, data_dir=os.path.join(mount, "data"))
        rel.start(broker)
        stored = 300
        replies = broker.write(TOPIC, [rel.frames_of(TOPIC, seq) for seq in range(stored)])
        assert replies == [[b"%d" % seq] for seq in range(stored)]
        filler = fill(mount)

        #  Mode 1: every write is refused with 105, none is stored.
        replies = broker.write(TOPIC, [refused(stored + seq) for seq in range(50)])
        assert len(replies) == 50 and all(reply[1:] == [bytes([rel.STORAGE_ERROR])] for reply in replies), replies[:3]
        #  Mode 2 (REQ): the same error through the REQ envelope.
        req = broker.writer(rel.identity(TOPIC, 2), kind=zmq.REQ)
        req.send_multipart(refused(stored))
        reply = req.recv_multipart()
        assert reply == [b"%d" % stored, bytes([rel.STORAGE_ERROR])], reply
        broker.close(req)
        #  Mode 0: no reply; each dropped message is counted, and the failure is logged.
        before = counter(broker, "storage_error")
        dropped = 40
        dealer = broker.writer(rel.identity(TOPIC, 0))
        for seq in range(dropped):
            dealer.send_multipart(refused(stored + seq))
        after = wait_counter(broker, "storage_error", before + dropped)
        assert after == before + dropped, "storage_error went %d -> %d for %d dropped mode-0 writes" \
            % (before, after, dropped)
        broker.close(dealer)
        assert "No space left on device" in broker.output(), "the disk-full failure was not logged"
        check_served(broker, stored)

        #  Space returns: writes are acknowledged again, after the old ones.
        os.unlink(filler)
        replies = broker.write(TOPIC, [rel.frames_of(TOPIC, stored + seq) for seq in range(100)])
        assert replies == [[b"%d" % (stored + seq)] for seq in range(100)], replies[:3]
        check_served(broker, stored + 100)
        broker.stop()
        code, output = rel.verify_log(broker.data_dir)
        assert code == 0, "zper log verify after the disk was full:\n%s" % output
        print("disk full passed: 105 for modes 1 and 2, %d mode-0 drops counted, service resumed"
              % dropped)
    finally:
        if broker and broker.process:
            broker.kill9()
        subprocess.run(["umount", "-l", mount])
        os.rmdir(mount)


if __name__ == "__main__":
    main()
