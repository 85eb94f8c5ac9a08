#!/usr/bin/python3
"""test_groups_cli - consumer groups through `zper consume --group` against a real zperd.

Usage: test_groups_cli.py ZPERD ZPER
Behaviours proved (docs/client.md, Groups):
  1. two members of one group share a topic's six partitions: each prints the messages of three
     partitions, the two sets disjoint, starting at the group's committed offsets;
  2. after one member is killed with SIGKILL, the other takes its partitions over: the union of
     both outputs holds every message, and a message is printed twice only within the
     at-least-once window (at most one per partition the killed member held, with
     --commit-interval 0);
  3. a member that printed 20 messages and exited committed exactly those: after zperd is
     killed with SIGKILL and restarted on the same folder, the group starts right after them.
The broker comes from tests/broker/zperd_harness.py; every wait is bounded by a deadline, and no
check depends on how long anything took.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "broker"))

import zperd_harness as harness                             # noqa: E402
from zperd_harness import Broker, OK, get_i64, i64         # noqa: E402

PARTITIONS = 6
PER_PHASE = 25                  # messages per partition written in each of the two phases
SESSION_MS = 3000               # small, so that a killed member's partitions move soon
WAIT_S = 90                     # deadline of any one wait below
ZPER = None
BROKERS = []                    # every zperd started, stopped at the end


def until(what, condition, timeout_s=WAIT_S):
    """Poll condition until it holds; fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("gave up waiting for: " + what)


def ok(name):
    print("ok - " + name)
    sys.stdout.flush()


def body(partition, number):
    return "%s-%03d" % (partition, number)


class Member:
    """One `zper consume --group` process whose stdout goes to a file."""

    def __init__(self, broker, group, topic, *extra):
        self.output = tempfile.NamedTemporaryFile(prefix="zper-group-", delete=False)
        self.errors = tempfile.NamedTemporaryFile(prefix="zper-group-err-", delete=False)
        self.process = subprocess.Popen(
            [ZPER, "consume", "--group", group, "--rear", broker.endpoint("rear"),
             "--timeout", "5000", *extra, topic], stdout=self.output, stderr=self.errors)

    def lines(self):
        with open(self.output.name) as text:
            content = text.read()
        # A line is whole once its newline is out (the process may be killed mid-write)
        return content.split("\n")[:-1]

    def stderr(self):
        with open(self.errors.name) as text:
            return text.read()

    def remove_files(self):
        for name in (self.output.name, self.errors.name):
            os.unlink(name)

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("zper consume did not stop within %d s" % WAIT_S)
        return self.process.returncode


def groups(broker, group):
    reply = broker.request(b"GROUPS", group.encode())
    assert reply[0] == bytes([OK]) and len(reply) == 2, reply
    return json.loads(reply[1].decode()).get(group)


def stable_with(broker, group, members, partitions):
    """GROUPS says: stable, that many members, each delivering partitions / members of them."""
    state = groups(broker, group)
    if not state or state["state"] != "stable" or len(state["members"]) != members:
        return False
    return all(len(member["owned"]) == partitions // members
               and sorted(member["owned"]) == sorted(member["assigned"])
               for member in state["members"])


def committed(broker, group, partition):
    reply = broker.request(b"COMMITTED", group.encode(), partition.encode())
    assert reply[0] == bytes([OK]) and len(reply) == 3, reply
    return get_i64(reply[1])


def write_phase(broker, topic, first):
    for index in range(PARTITIONS):
        partition = "%s.%d" % (topic, index)
        messages = [[body(partition, number).encode()] for number in range(first, first + PER_PHASE)]
        replies = broker.write(partition, messages)
        assert len(replies) == PER_PHASE, replies


def partition_of(line):
    return line.rsplit("-", 1)[0]


def share_and_take_over(broker):
    """Behaviours 1 and 2 on group G over topic g (g.0 .. g.5)."""
    topic, group = "g", "G"
    # The partitions exist (one seed each), and the group committed past the seeds while it had
    # no members: a member must start there and never print a seed.
    for index in range(PARTITIONS):
        partition = "%s.%d" % (topic, index)
        broker.write(partition, [[b"seed"]])
        reply = broker.request(b"COMMIT", group.encode(), partition.encode(), i64(1))
        assert reply == [bytes([OK])], reply
    options = ("--commit-interval", "0", "--session", str(SESSION_MS), "-f")
    first = Member(broker, group, topic, *options)
    second = Member(broker, group, topic, *options)
    try:
        until("two members sharing 6 partitions, 3 each", lambda:
              stable_with(broker, group, 2, PARTITIONS))
        write_phase(broker, topic, 1)
        phase_one = {body("%s.%d" % (topic, index), number)
                     for index in range(PARTITIONS) for number in range(1, 1 + PER_PHASE)}
        until("both members printed every phase-1 message",
              lambda: phase_one <= set(first.lines()) | set(second.lines()))
        first_lines, second_lines = first.lines(), second.lines()
        first_parts = {partition_of(line) for line in first_lines}
        second_parts = {partition_of(line) for line in second_lines}
        assert "seed" not in first_lines + second_lines, "a member started before the commit"
        assert len(first_parts) == 3 and len(second_parts) == 3 and not first_parts & second_parts, \
            (sorted(first_parts), sorted(second_parts))
        assert len(first_lines) == len(set(first_lines)) == 3 * PER_PHASE, first_lines
        assert len(second_lines) == len(set(second_lines)) == 3 * PER_PHASE, second_lines
        ok("two members split six partitions three and three, from the committed offsets")

        # Kill the second member while (or after) it prints phase 2; the first takes over.
        write_phase(broker, topic, 1 + PER_PHASE)
        until("the second member printed a phase-2 message",
              lambda: any(int(line.rsplit("-", 1)[1]) > PER_PHASE for line in second.lines()))
        second.stop(signal.SIGKILL)
        everything = {body("%s.%d" % (topic, index), number)
                      for index in range(PARTITIONS) for number in range(1, 1 + 2 * PER_PHASE)}
        until("the survivor printed what the killed member had not",
              lambda: everything <= set(first.lines()) | set(second.lines()))
        until("the group is the survivor alone, holding all six partitions",
              lambda: stable_with(broker, group, 1, PARTITIONS))
        first_lines, second_lines = first.lines(), second.lines()
        printed = first_lines + second_lines
        assert set(printed) == everything, sorted(set(printed) ^ everything)
        twice = [line for line in set(printed) if printed.count(line) > 1]
        assert all(printed.count(line) == 2 for line in twice), twice
        assert all(partition_of(line) in second_parts for line in twice), (twice, second_parts)
        per_partition = [partition_of(line) for line in twice]
        assert all(per_partition.count(part) == 1 for part in per_partition), twice
        taken = [line for line in first_lines if partition_of(line) in second_parts]
        assert taken, "the survivor printed nothing of the killed member's partitions"
        ok("after kill -9 of one member the other printed the rest: %d printed twice "
           "(at most one per partition taken over)" % len(twice))
        code = first.stop()
        assert code == 0, (code, first.stderr())
        ok("the survivor stops on SIGTERM with exit 0")
    finally:
        for member in (first, second):
            member.stop(signal.SIGKILL)
            member.remove_files()


def resume_after_restart(broker):
    """Behaviour 3 on group H over topic h (h.0, h.1)."""
    topic, group, count = "h", "H", 20
    partitions = ["%s.%d" % (topic, index) for index in range(2)]
    for partition in partitions:
        broker.write(partition, [[body(partition, number).encode()] for number in range(15)])
    run = subprocess.run([ZPER, "consume", "--group", group, "--count", str(count), "--rear",
                          broker.endpoint("rear"), "--timeout", "5000", topic],
                         capture_output=True, timeout=WAIT_S)
    assert run.returncode == 0, run
    first = run.stdout.decode().split("\n")[:-1]
    assert len(first) == count and len(set(first)) == count, first
    # What the member printed is what the group committed, durably: kill -9, restart
    printed_of = {partition: [line for line in first if partition_of(line) == partition]
                  for partition in partitions}
    broker.kill9()
    restarted = Broker(data_dir=broker.data_dir, ports=broker.ports)
    BROKERS.append(restarted)
    restarted.start()
    for partition in partitions:
        assert committed(restarted, group, partition) == len(printed_of[partition]), \
            (partition, committed(restarted, group, partition), printed_of[partition])
    ok("the offsets a member committed at exit survive kill -9 of zperd")
    run = subprocess.run([ZPER, "consume", "--group", group, "--rear", restarted.endpoint("rear"),
                          "--timeout", "5000", topic], capture_output=True, timeout=WAIT_S)
    assert run.returncode == 0, run
    second = run.stdout.decode().split("\n")[:-1]
    for partition in partitions:
        resumed = [line for line in second if partition_of(line) == partition]
        expected = [body(partition, number) for number in range(len(printed_of[partition]), 15)]
        assert resumed == expected, (partition, resumed, expected)
    ok("the group resumes right after the last committed message, in order, nothing twice")


def main():
    global ZPER
    harness.ZPERD, ZPER = sys.argv[1], sys.argv[2]
    broker = Broker()
    BROKERS.append(broker)
    try:
        broker.start()
        share_and_take_over(broker)
        resume_after_restart(broker)
    finally:
        for each in BROKERS:
            if each.process:
                each.stop()
    print("all group behaviours hold")


if __name__ == "__main__":
    main()
