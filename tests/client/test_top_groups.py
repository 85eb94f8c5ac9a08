#!/usr/bin/python3
"""test_top_groups - `zper groups`, `zper groups describe` and `zper top` against a real zperd.

Usage: test_top_groups.py ZPER   (ZPERD in the environment, as for tests/broker)
A topic with a known backlog in two partitions (100 messages in t.0 and t.1), offsets committed
for group G over the wire with pyzmq (t.0 at 40, t.1 at 100): the views must show G's lag of 60,
by partition too, in text and in --json. `zper top --once` prints the topics and G; `zper top`
under a pseudo-terminal turns echo and canonical mode off while it runs, and leaves on "q" and
on Ctrl-C (SIGINT from the terminal) with exit 0 and the terminal's mode put back. Every
command and every wait is bounded.
"""

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))
from zperd_harness import OK, BrokerTestCase, i64, SANITIZER_MARKS  # noqa: E402

ZPER = None                     # the zper binary, from the command line
COMMAND_TIMEOUT = 30            # seconds, for any one zper command
SCREEN_TIMEOUT = 20             # seconds for zper top to draw, or to exit after q / Ctrl-C
BACKLOG = 100                   # messages in each partition
COMMITTED = {"t.0": 40, "t.1": 100}


def table_rows(text, first_column):
    """The rows (lists of columns) after the header line that starts with first_column."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:1] == [first_column])
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


class TerminalSession:
    """zper top on a fresh pseudo-terminal that is its controlling terminal, so that a ^C
    typed into it is a SIGINT; the master side is drained all along so zper never blocks."""

    def __init__(self, arguments):
        self.master, self.slave = os.openpty()
        self.initial = self.mode()      # as a fresh terminal is: echo and canonical mode on
        self.output = b""
        self.process = subprocess.Popen(
            arguments, stdin=self.slave, stdout=self.slave, stderr=self.slave, close_fds=True,
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))

    def mode(self):
        return termios.tcgetattr(self.slave)

    def drain(self, seconds):
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                pass

    def wait_output(self, marker):
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while marker not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError("zper top never showed %r (exit %r): %r"
                                     % (marker, self.process.poll(), self.output[-2000:]))
            self.drain(0.1)

    def wait_exit(self):
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise AssertionError("zper top did not exit: %r" % self.output[-2000:])
            self.drain(0.1)
        self.drain(0)
        return self.process.returncode

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


class TopAndGroups(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for topic in COMMITTED:
            cls.broker.write(topic, [[b"%s-%d" % (topic.encode(), index)] for index in range(BACKLOG)])
            cls.broker.wait_durable(topic, BACKLOG)
        for topic, offset in COMMITTED.items():
            reply = cls.broker.request(b"COMMIT", b"G", topic.encode(), i64(offset))
            assert reply == [bytes([OK])], "COMMIT %s %d: %r" % (topic, offset, reply)

    def zper(self, *arguments, stdin=subprocess.DEVNULL):
        result = subprocess.run([ZPER, *arguments, "--rear", self.broker.endpoint("rear")],
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                                stdin=stdin)
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, result.stderr)
        return result

    def test_groups_lists_group_with_its_lag(self):
        result = self.zper("groups")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = {row[0]: row for row in table_rows(result.stdout, "GROUP")}
        self.assertIn("G", rows, result.stdout)
        # GROUP STATE MEMBERS PARTITIONS LAG LAG_S: no member has joined, two partitions
        self.assertEqual(rows["G"][1], "empty")
        self.assertEqual(rows["G"][2:5], ["0", "2", "60"])
        listed = json.loads(self.zper("groups", "--json").stdout)
        self.assertEqual(listed["G"]["lag"], 60)

    def test_describe_shows_lag_per_partition(self):
        result = self.zper("groups", "describe", "G")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = {row[0]: row for row in table_rows(result.stdout, "PARTITION")}
        # PARTITION OWNER COMMITTED END LAG LAG_S
        self.assertEqual(rows["t.0"][1:5], ["-", "40", "100", "60"], result.stdout)
        self.assertEqual(rows["t.1"][1:5], ["-", "100", "100", "0"], result.stdout)
        self.assertEqual(float(rows["t.1"][5]), 0.0)
        described = json.loads(self.zper("groups", "describe", "G", "--json").stdout)
        self.assertEqual(described["G"]["partitions"]["t.0"]["lag"], 60)
        self.assertEqual(described["G"]["partitions"]["t.1"]["lag"], 0)

    def test_describe_unknown_group_is_one_line_and_exit_1(self):
        result = self.zper("groups", "describe", "nosuchgroup")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("nosuchgroup", result.stderr)

    def test_top_once_prints_topics_and_groups(self):
        result = self.zper("top", "--once")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("\033", result.stdout)
        topics = {row[0] for row in table_rows(result.stdout, "TOPIC")}
        self.assertTrue({"t.0", "t.1"} <= topics, result.stdout)
        groups = {row[0]: row for row in table_rows(result.stdout, "GROUP")}
        # GROUP TOPIC STATE MEMBERS LAG LAG_S (no topic consumed yet: "-")
        self.assertIn("G", groups, result.stdout)
        self.assertEqual(groups["G"][4], "60", result.stdout)

    def test_top_without_terminal_asks_for_once(self):
        result = self.zper("top")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--once", result.stderr)

    def live_session(self, leave):
        """zper top on a terminal until leave (bytes typed) makes it exit; returns the session."""
        session = TerminalSession([ZPER, "top", "--interval", "100",
                                   "--rear", self.broker.endpoint("rear")])
        self.addCleanup(session.close)
        before = session.initial
        self.assertTrue(before[3] & termios.ECHO and before[3] & termios.ICANON)
        session.wait_output(b"q quits")
        session.wait_output(b"\nG ")
        running = session.mode()
        self.assertFalse(running[3] & termios.ECHO, "echo still on while zper top runs")
        self.assertFalse(running[3] & termios.ICANON, "canonical mode still on while zper top runs")
        os.write(session.master, leave)
        self.assertEqual(session.wait_exit(), 0, session.output[-2000:])
        self.assertEqual(session.mode(), before, "terminal mode not restored")
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark.encode(), session.output)
        return session

    def test_top_live_leaves_on_q_and_restores_terminal(self):
        session = self.live_session(b"q")
        self.assertIn(b"\033[H", session.output)

    def test_top_live_leaves_on_ctrl_c_and_restores_terminal(self):
        self.live_session(b"\x03")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_top_groups.py ZPER")
    ZPER = sys.argv.pop(1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    unittest.main(verbosity=2)
