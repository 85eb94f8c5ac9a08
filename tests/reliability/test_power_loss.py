"""Power-loss simulation against a real zperd (docs/reliability.md section 2).

Each case: a fresh broker takes acknowledged mode-1 writes (synced), then a burst of mode-0
writes that the broker writes to the segment file without syncing (flush_interval and
flush_messages are far away; a full open batch is written at 256 KiB). The broker is killed
with SIGKILL and the unsynced tail is damaged the way a power cut can leave it: cut inside a
record, zero-filled, extended with zeros, a flipped bit, garbage. On restart recovery must cut
at the first damaged record (docs/storage.md section 6): every acknowledged message is still
served, every served message is intact, and nothing from the damaged record on is served.
"""

import os
import random
import struct
import sys
import time

import reliability as rel

CONFIG = "\n".join([
    "segment_size = 16777216",        # one segment: the tail under test is in the newest file
    "flush_interval = 60000",         # nothing is synced unless a mode-1 client asks
    "flush_messages = 1000000",
])
TOPIC = "power"
ACKED = 200                            # mode-1 messages: synced before their reply
UNSYNCED = 4000                        # mode-0 messages after them (~1 MiB: several batches)
HEADER = struct.Struct("<IIIIqqq")     # docs/storage.md section 2
MAGIC = 0x3152505A
SETTLE_S = 15


def records(path):
    """(file position, size, base_offset, message_count) of each whole record on disk."""
    with open(path, "rb") as segment:
        data = segment.read()
    found, cursor = [], 0
    while cursor + HEADER.size <= len(data):
        magic, _crc, payload, count, base_offset, _pos, _ts = HEADER.unpack_from(data, cursor)
        if magic != MAGIC or cursor + HEADER.size + payload > len(data):
            break                      # not a record, or one the kill cut short: not a whole one
        found.append((cursor, HEADER.size + payload, base_offset, count))
        cursor += HEADER.size + payload
    return found


def segment_path(broker):
    folder = os.path.join(broker.data_dir, TOPIC, "0")
    logs = sorted(name for name in os.listdir(folder) if name.endswith(".log"))
    return os.path.join(folder, logs[-1])


def write_and_kill(broker):
    """Acked writes, then an unsynced tail on disk; SIGKILL. Returns the unsynced records."""
    rel.start(broker)
    replies = broker.write(TOPIC, [rel.frames_of(TOPIC, seq) for seq in range(ACKED)])
    assert replies == [[b"%d" % seq] for seq in range(ACKED)], "mode-1 writes not all acknowledged"
    sock = broker.writer(rel.identity(TOPIC, 0))
    for seq in range(ACKED, ACKED + UNSYNCED):
        sock.send_multipart(rel.frames_of(TOPIC, seq))
    path = segment_path(broker)
    deadline = time.time() + SETTLE_S
    while time.time() < deadline:
        tail = [record for record in records(path) if record[2] >= ACKED]
        if len(tail) >= 2:
            break
        time.sleep(0.05)
    rel.kill9(broker)
    tail = [record for record in records(path) if record[2] >= ACKED]
    assert len(tail) >= 2, "the broker wrote no unsynced batch to %s" % path
    return path, tail


def damage(path, tail, case, chance):
    """Damage the unsynced tail; returns the base offset of the first damaged record."""
    position, size, base_offset, _count = tail[-1] if case in ("cut_last", "flip_last") else tail[0]
    with open(path, "r+b") as segment:
        end = segment.seek(0, os.SEEK_END)
        if case in ("cut_last", "cut_first"):
            segment.truncate(chance.randrange(position + 1, position + size))
        elif case == "zero_tail":
            start = chance.randrange(position, position + size)
            segment.seek(start)
            segment.write(bytes(end - start))
        elif case == "zero_extend":
            position, base_offset = end, tail[-1][2] + tail[-1][3]
            segment.write(bytes(chance.randrange(1, 70000)))
        elif case in ("flip_first", "flip_last"):
            byte = chance.randrange(position, position + size)
            segment.seek(byte)
            value = segment.read(1)[0]
            segment.seek(byte)
            segment.write(bytes([value ^ (1 << chance.randrange(8))]))
        elif case == "garbage":
            start = chance.randrange(position, position + size)
            segment.seek(start)
            segment.write(os.urandom(end - start))
    return base_offset


def check_recovery(broker, damaged_from, case):
    rel.start(broker)
    served = rel.read_topic(broker, TOPIC)
    for offset, frames in served:
        assert frames == rel.frames_of(TOPIC, offset), "%s: offset %d served damaged" % (case, offset)
    assert len(served) >= ACKED, "%s: %d acknowledged, %d served" % (case, ACKED, len(served))
    assert len(served) <= damaged_from, \
        "%s: served up to %d, the record at %d was damaged" % (case, len(served), damaged_from)
    #  The broker keeps serving: the next acknowledged write lands right after the cut.
    broker.write(TOPIC, [rel.frames_of(TOPIC, len(served))])
    assert rel.read_topic(broker, TOPIC)[-1][1] == rel.frames_of(TOPIC, len(served))
    broker.stop()
    code, output = rel.verify_log(broker.data_dir)
    assert code == 0, "%s: zper log verify after recovery:\n%s" % (case, output)
    return len(served)


CASES = ("cut_last", "cut_first", "zero_tail", "zero_extend", "flip_first", "flip_last", "garbage")


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time())
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    chance = random.Random(seed)
    print("power loss: seed %d, %d round(s)" % (seed, rounds), flush=True)
    for _ in range(rounds):
        for case in CASES:
            broker = rel.Broker(CONFIG)
            path, tail = write_and_kill(broker)
            damaged_from = damage(path, tail, case, chance)
            served = check_recovery(broker, damaged_from, case)
            print("%-12s %d unsynced records on disk, damage at offset %d, %d served after recovery"
                  % (case, len(tail), damaged_from, served), flush=True)
    print("power loss passed")


if __name__ == "__main__":
    main()
