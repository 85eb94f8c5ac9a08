#!/usr/bin/python3
"""cli_test - the zper CLI's client verbs against a real zperd process.

Usage: cli_test.py ZPERD ZPER EXAMPLE CLIENT_MD
Starts zperd on free loopback ports (data in a temporary folder), drives
`zper produce / consume / topics / offsets / stats` as a user would, and
stops zperd with SIGTERM: it must exit 0. It also runs the example
program of docs/client.md and checks that the guide shows it unchanged. Every command has a timeout, so
the test fails rather than hangs. Standard library only.
"""

import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

COMMAND_TIMEOUT = 30        # seconds, for any one zper command
START_TIMEOUT = 20          # seconds for zperd to answer, and to stop
PORT_FIRST, PORT_LAST = 20000, 29999   # below the ephemeral range: no TCP self-connects

failures = []
checks = 0


def free_ports(count):
    """count loopback ports in our range that nobody listens on right now."""
    probes = []
    try:
        for port in range(random.randint(PORT_FIRST, PORT_LAST - 1000), PORT_LAST):
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
                probes.append(probe)
            except OSError:
                probe.close()
            if len(probes) == count:
                return [probe.getsockname()[1] for probe in probes]
        raise RuntimeError("no free ports")
    finally:
        for probe in probes:
            probe.close()


class Broker:
    def __init__(self, zperd, zper):
        self.zper = zper
        self.folder = tempfile.mkdtemp(prefix="zper-cli-test-")
        ports = free_ports(5)
        self.front = "tcp://127.0.0.1:%d" % ports[0]
        self.rear = "tcp://127.0.0.1:%d" % ports[1]
        config = os.path.join(self.folder, "zper.conf")
        with open(config, "w") as out:
            out.write("base_dir = %s/data\nflush_interval = 20\n"
                      "front.bind = %s\nrear.bind = %s\nack.bind = tcp://127.0.0.1:%d\n"
                      "relay.bind = tcp://127.0.0.1:%d\nrelay.pub.bind = tcp://127.0.0.1:%d\n"
                      % (self.folder, self.front, self.rear, ports[2], ports[3], ports[4]))
        self.process = subprocess.Popen([zperd, "-c", config])
        deadline = time.monotonic() + START_TIMEOUT
        while self.zper_run("topics", "--timeout", "200").returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("zperd did not start")

    def zper_run(self, verb, *arguments, stdin=b""):
        """Run zper VERB with this broker's endpoints."""
        endpoint = ["--front", self.front] if verb == "produce" else ["--rear", self.rear]
        return run([self.zper, verb, *arguments, *endpoint], stdin)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        return self.process.returncode


def run(arguments, stdin=b""):
    """Run a program to completion (bounded); a sanitizer report fails the test."""
    result = subprocess.run(arguments, input=stdin, capture_output=True, timeout=COMMAND_TIMEOUT)
    if b"Sanitizer" in result.stderr:
        check("no sanitizer report from %s" % " ".join(arguments[1:3]), False, result.stderr.decode())
    return result


def check(name, condition, detail=""):
    global checks
    checks += 1
    print("%s %s%s" % ("ok  " if condition else "FAIL", name, (": " + str(detail)) if not condition else ""))
    if not condition:
        failures.append(name)


def test_produce_consume_round_trip(broker):
    lines = b"first line\nsecond\n\nwith\ttab and \\ backslash\nlast without newline"
    result = broker.zper_run("produce", "lines", stdin=lines)
    check("produce exits 0", result.returncode == 0, result.stderr)
    result = broker.zper_run("consume", "lines")
    expected = b"first line\nsecond\n\nwith\\ttab and \\\\ backslash\nlast without newline\n"
    check("consume prints each line back, escaped", result.stdout == expected, result.stdout)
    result = broker.zper_run("consume", "lines", "--raw")
    check("consume --raw gives the input back", result.stdout == lines + b"\n", result.stdout)
    result = broker.zper_run("consume", "lines", "-n", "2")
    check("-n stops after N messages", result.stdout == b"first line\nsecond\n", result.stdout)
    result = broker.zper_run("consume", "lines", "--from", "3", "--print-offset")
    check("--from OFFSET and --print-offset", result.stdout.startswith(b"3\twith\\ttab")
          and result.stdout.count(b"\n") == 2, result.stdout)
    result = broker.zper_run("consume", "lines", "--from", "latest")
    check("--from latest prints nothing", result.returncode == 0 and result.stdout == b"", result)


def test_modes_frames_and_files(broker):
    for mode, extra in (("0", []), ("1", ["--batch"]), ("2", []), ("0", ["--batch"])):
        result = broker.zper_run("produce", "modes", "--mode", mode, *extra, stdin=b"m%s%s\n" % (mode.encode(), "".join(extra).encode()))
        check("produce --mode %s %s" % (mode, " ".join(extra)), result.returncode == 0, result.stderr)
    deadline = time.monotonic() + COMMAND_TIMEOUT      # modes 0 and 4 are not acknowledged
    while True:
        result = broker.zper_run("consume", "modes")
        if result.stdout.count(b"\n") >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check("every mode stores its line", sorted(result.stdout.split()) ==
          [b"m0", b"m0--batch", b"m1--batch", b"m2"], result.stdout)

    result = broker.zper_run("produce", "frames", "--frames-sep", "|", stdin=b"id-1|a|b\nid-2||\n")
    check("produce --frames-sep", result.returncode == 0, result.stderr)
    result = broker.zper_run("consume", "frames", "--frames-sep", "|")
    check("frames come back with the same separator", result.stdout == b"id-1|a|b\nid-2||\n", result.stdout)
    result = broker.zper_run("consume", "frames")
    check("frames are tab-separated by default", result.stdout == b"id-1\ta\tb\nid-2\t\t\n", result.stdout)

    path = os.path.join(broker.folder, "input.txt")
    with open(path, "wb") as out:
        out.write(b"from a file\n")
    result = broker.zper_run("produce", "files", path, "-", stdin=b"from stdin\n")
    check("produce FILE -", result.returncode == 0, result.stderr)
    result = broker.zper_run("consume", "files")
    check("files then stdin, in order", result.stdout == b"from a file\nfrom stdin\n", result.stdout)


def test_time_and_follow(broker):
    broker.zper_run("produce", "timed", stdin=b"old\n")
    time.sleep(0.01)
    split = int(time.time() * 1000)
    time.sleep(0.01)
    broker.zper_run("produce", "timed", stdin=b"new\n")
    result = broker.zper_run("consume", "timed", "--from", "@%d" % split)
    check("--from @TIMESTAMP_MS", result.stdout == b"new\n", result.stdout)

    # -f: once the follower has printed what exists, a new line reaches it.
    follower = subprocess.Popen([broker.zper, "consume", "timed", "-f", "-n", "3", "--rear", broker.rear],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = [read_line(follower.stdout), read_line(follower.stdout)]
    broker.zper_run("produce", "timed", stdin=b"later\n")
    seen.append(read_line(follower.stdout))
    try:
        follower.wait(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        follower.kill()
        follower.wait()
    errors = follower.stderr.read()
    follower.stdout.close()
    follower.stderr.close()
    check("no sanitizer report from the follower", b"Sanitizer" not in errors, errors)
    check("-f receives a message produced after it started, stops at -n",
          seen == [b"old\n", b"new\n", b"later\n"] and follower.returncode == 0, seen)


def read_line(pipe):
    """One line from a child's pipe, or b"" if none within the timeout."""
    line = b""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([pipe], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            break
        byte = os.read(pipe.fileno(), 1)
        if not byte:
            break
        line += byte
    return line


def test_topics_offsets_stats(broker):
    result = broker.zper_run("topics")
    names = result.stdout.decode().split()
    check("topics lists what was produced, sorted", "lines" in names and names == sorted(names), names)
    result = broker.zper_run("offsets", "lines")
    fields = dict(line.split(None, 1) for line in result.stdout.decode().splitlines())
    check("offsets shows start and durable offsets", fields.get("start_offset") == "0"
          and fields.get("durable_offset") == "5" and fields.get("messages") == "5", fields)
    check("offsets shows timestamps", fields.get("first_timestamp", "").endswith("Z"), fields)
    result = broker.zper_run("stats")
    check("stats prints one JSON object", result.returncode == 0 and result.stdout.startswith(b"{")
          and b"lines" in result.stdout, result.stdout[:200])


def test_usage_errors(broker):
    cases = [("produce",), ("produce", "bad-topic"), ("produce", "t", "--mode", "9"),
             ("produce", "t", "--batch", "--mode", "2"), ("consume",), ("consume", "t", "--from", "soon"),
             ("consume", "t", "-n", "many"), ("consume", "t", "--bogus"), ("offsets",),
             ("topics", "extra"), ("stats", "--timeout", "0")]
    for case in cases:
        result = run([broker.zper, *case])
        message = result.stderr.decode()
        check("%s -> exit 2, one line" % " ".join(case), result.returncode == 2
              and message.count("\n") == 1 and message.startswith("zper %s: " % case[0]), message)
    for verb in ("produce", "consume", "topics", "offsets", "stats"):
        result = run([broker.zper, verb, "--help"])
        check("%s --help" % verb, result.returncode == 0 and result.stdout.startswith(b"usage: zper " + verb.encode()))


def test_broker_down(zper):
    port = free_ports(1)[0]     # nobody listens there
    for verb, option in (("topics", "--rear"), ("consume", "--rear"), ("produce", "--front")):
        arguments = [zper, verb] + (["t"] if verb != "topics" else []) + [option, "tcp://127.0.0.1:%d" % port]
        result = run(arguments, b"x\n")
        message = result.stderr.decode()
        check("%s with no broker: exit 1 naming the address" % verb, result.returncode == 1
              and "tcp://127.0.0.1:%d" % port in message and "is zperd running?" in message, message)


def test_broker_option(zper):
    # --broker HOST keeps the default ports; 127.0.0.2 is loopback where nothing listens
    result = run([zper, "topics", "--broker", "127.0.0.2", "--timeout", "200"])
    check("--broker HOST sets the host of the default rear port", result.returncode == 1
          and "tcp://127.0.0.2:5556 within 200 ms" in result.stderr.decode(), result.stderr)


def test_example_program(broker, example, guide):
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example.c")
    with open(source) as code, open(guide) as text:
        check("docs/client.md shows example.c unchanged", "```c\n" + code.read() + "```" in text.read())
    result = run([example, broker.front, broker.rear])
    check("the example program runs", result.returncode == 0 and result.stdout ==
          b"offset 0: id-0 hello 0\noffset 1: id-1 hello 1\noffset 2: id-2 hello 2\n", result)


def main():
    zperd, zper, example, guide = sys.argv[1:5]
    broker = Broker(zperd, zper)
    try:
        test_produce_consume_round_trip(broker)
        test_modes_frames_and_files(broker)
        test_time_and_follow(broker)
        test_topics_offsets_stats(broker)
        test_usage_errors(broker)
        test_example_program(broker, example, guide)
    finally:
        status = broker.stop()
    check("zperd exits 0 on SIGTERM", status == 0, status)
    test_broker_down(zper)
    test_broker_option(zper)
    print("%d passed, %d failed" % (checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
