#!/usr/bin/python3
"""cli_test - the zper CLI's client verbs against a real zperd process.

Usage: cli_test.py ZPERD ZPER EXAMPLE CLIENT_MD
Starts zperd on free loopback ports (data in a temporary folder), drives
`zper produce / consume / topics / offsets / stats` as a user would, and
stops zperd with SIGTERM: it must exit 0. Then `zper keygen`, and the
client verbs against a zperd with security.curve = 1 (--server-key, --cert). It also runs the example
program of docs/client.md and checks that the guide shows it unchanged. Every command has a timeout, so
the test fails rather than hangs. Standard library only.
"""

import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))
from ports import free_port  # noqa: E402  (reserved loopback ports)

COMMAND_TIMEOUT = 30        # seconds, for any one zper command
START_TIMEOUT = 20          # seconds for zperd to answer, and to stop

failures = []
checks = 0


class Broker:
    def __init__(self, zperd, zper, folder=None, config_extra="", client_args=()):
        """client_args: what every zper command adds (--server-key, --cert)."""
        self.zper = zper
        self.client_args = list(client_args)
        self.folder = folder or tempfile.mkdtemp(prefix="zper-cli-test-")
        ports = [free_port() for _ in range(5)]
        self.front = "tcp://127.0.0.1:%d" % ports[0]
        self.rear = "tcp://127.0.0.1:%d" % ports[1]
        config = os.path.join(self.folder, "zper.conf")
        with open(config, "w") as out:
            out.write("base_dir = %s/data\nflush_interval = 20\n"
                      "front.bind = %s\nrear.bind = %s\nack.bind = tcp://127.0.0.1:%d\n"
                      "relay.bind = tcp://127.0.0.1:%d\nrelay.pub.bind = tcp://127.0.0.1:%d\n"
                      % (self.folder, self.front, self.rear, ports[2], ports[3], ports[4]))
            out.write(config_extra)
        self.process = subprocess.Popen([zperd, "-c", config])
        deadline = time.monotonic() + START_TIMEOUT
        while self.zper_run("topics", "--timeout", "200").returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("zperd did not start")

    def zper_run(self, verb, *arguments, stdin=b""):
        """Run zper VERB with this broker's endpoints."""
        endpoint = ["--front", self.front] if verb == "produce" else ["--rear", self.rear]
        return run([self.zper, verb, *arguments, *endpoint, *self.client_args], stdin)

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


def run(arguments, stdin=b"", env=None, umask=None):
    """Run a program to completion (bounded); a sanitizer report fails the test."""
    result = subprocess.run(arguments, input=stdin, capture_output=True, timeout=COMMAND_TIMEOUT,
                            env=env, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
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


def test_single_node_cluster_verbs(broker):
    """On a node without cluster mode the cluster verbs fail with one clear line (113), and
    the plain verbs keep their meaning."""
    for case in (("topics", "create", "orders", "--partitions", "3"),
                 ("topics", "reassign", "orders", "--partition", "0", "--replicas", "1,2"),
                 ("cluster", "status")):
        result = broker.zper_run(*case)
        check("%s on a single node: exit 1, one line, 113 explained" % " ".join(case),
              result.returncode == 1 and one_line(result)
              and b"not a cluster node, or etcd unreachable" in result.stderr, result)
    result = run([broker.zper, "produce", "orders", "--cluster", "--rear", broker.rear,
                  "--front", broker.front], b"x\n")
    check("produce --cluster on a single node: exit 1, one line, 113 explained",
          result.returncode == 1 and one_line(result)
          and b"not a cluster node, or etcd unreachable" in result.stderr, result)
    check("topics list is topics", broker.zper_run("topics", "list").stdout
          == broker.zper_run("topics").stdout != b"")
    # Given --rear, produce asks METADATA first: a single node answers 113 and it writes as ever
    result = run([broker.zper, "produce", "plainviarear", "--rear", broker.rear,
                  "--front", broker.front], b"one\ntwo\n")
    check("produce with --rear on a single node writes the plain topic", result.returncode == 0
          and broker.zper_run("consume", "plainviarear").stdout == b"one\ntwo\n", result)
    for case in (("topics", "create"), ("topics", "create", "bad.name"), ("topics", "reassign", "t"),
                 ("topics", "create", "t", "--partitions", "many"), ("cluster", "bogus"),
                 ("produce", "t", "--cluster", "--mode", "2")):
        result = run([broker.zper, *case, "--rear", broker.rear])
        check("%s -> exit 2, one line" % " ".join(case), result.returncode == 2 and one_line(result)
              and result.stderr.startswith(b"zper " + case[0].encode()), result)


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
    port = free_port()          # nobody listens there
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


def one_line(result):
    return result.stderr.decode().count("\n") == 1


def test_keygen(zper):
    folder = tempfile.mkdtemp(prefix="zper-keygen-test-")
    try:
        alice = os.path.join(folder, "alice")
        # umask 0: the secret file must still be 0600 from its creation on
        result = run([zper, "keygen", alice, "--write", "orders, logs.*", "--read", "*"], umask=0)
        key = result.stdout.decode().strip()
        check("keygen exits 0 and prints the 40-character public key",
              result.returncode == 0 and len(key) == 40 and result.stderr == b"", result)
        modes = [stat.S_IMODE(os.stat(path).st_mode) for path in (alice, alice + "_secret")]
        check("keygen: secret file 0600 even under umask 0, public 0644", modes == [0o644, 0o600], modes)
        public = open(alice).read()
        secret = open(alice + "_secret").read()
        check("keygen: the public file holds the key and the grants as metadata, no secret",
              'public-key = "%s"' % key in public and 'write = "orders, logs.*"' in public
              and 'read = "*"' in public and 'name = "alice"' in public
              and "secret-key" not in public, public)
        check("keygen: the secret file holds both keys", 'public-key = "%s"' % key in secret
              and "secret-key = " in secret, secret)
        result = run([zper, "keygen", alice, "--write", "x"])
        check("keygen refuses to overwrite: exit 1, one line, files unchanged",
              result.returncode == 1 and one_line(result) and b"exists" in result.stderr
              and open(alice).read() == public and open(alice + "_secret").read() == secret, result)
        bob = os.path.join(folder, "bob")
        with open(bob + "_secret", "w") as out:
            out.write("mine\n")
        result = run([zper, "keygen", bob])
        check("keygen refuses when only the secret file exists, and leaves no public file",
              result.returncode == 1 and one_line(result) and not os.path.exists(bob)
              and open(bob + "_secret").read() == "mine\n", result)
        carol = os.path.join(folder, "carol")
        result = run([zper, "keygen", carol, "--name", "Carol's service"])
        check("keygen --name, no grants", result.returncode == 0
              and 'name = "Carol\'s service"' in open(carol).read()
              and "write" not in open(carol).read(), open(carol).read())
        for bad in ("or*ders", "", "a,b/c", " , "):
            result = run([zper, "keygen", os.path.join(folder, "dave"), "--write", bad])
            check("keygen refuses the pattern %r: exit 2, one line, no file" % bad,
                  result.returncode == 2 and one_line(result) and not os.path.exists(os.path.join(folder, "dave")),
                  result)
        result = run([zper, "keygen", "--help"])
        check("keygen --help", result.returncode == 0 and result.stdout.startswith(b"usage: zper keygen"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def curve_broker(zperd, zper):
    """A zperd with security.curve = 1, its keys made with zper keygen: broker, alice (writes
    and reads curve*), bob (writes and reads other), stranger (not allowed)."""
    folder = tempfile.mkdtemp(prefix="zper-cli-curve-test-")
    keys = os.path.join(folder, "keys")
    os.mkdir(keys)
    for name, grants in (("broker", []), ("alice", ["--write", "curve*", "--read", "curve*"]),
                         ("bob", ["--write", "other", "--read", "other"]), ("stranger", ["--write", "*"])):
        result = run([zper, "keygen", os.path.join(folder, name), *grants])
        assert result.returncode == 0, result
        if name in ("alice", "bob"):
            shutil.copy(os.path.join(folder, name), keys)
    config = "security.curve = 1\nsecurity.cert = %s/broker\nsecurity.keys = %s\n" % (folder, keys)
    return Broker(zperd, zper, folder, config,
                  ["--server-key", os.path.join(folder, "broker"), "--cert", os.path.join(folder, "alice")])


def test_curve_verbs(broker):
    with open(os.path.join(broker.folder, "broker")) as certificate:
        server_key = certificate.read().split('public-key = "')[1].split('"')[0]
    result = broker.zper_run("produce", "curvecli", stdin=b"one\ntwo\n")
    check("CURVE: produce with --server-key FILE --cert", result.returncode == 0, result.stderr)
    result = broker.zper_run("consume", "curvecli")
    check("CURVE: consume reads it back", result.stdout == b"one\ntwo\n", result)
    for verb, extra in (("topics", []), ("offsets", ["curvecli"]), ("stats", [])):
        result = broker.zper_run(verb, *extra)
        check("CURVE: %s" % verb, result.returncode == 0 and result.stdout, result)
    alice = os.path.join(broker.folder, "alice")
    result = run([broker.zper, "consume", "curvecli", "--rear", broker.rear,
                  "--server-key", server_key, "--cert", alice])
    check("CURVE: --server-key as the Z85 key itself", result.stdout == b"one\ntwo\n", result)
    env = dict(os.environ, ZPER_SERVER_KEY=os.path.join(broker.folder, "broker"), ZPER_CERT=alice)
    result = run([broker.zper, "consume", "curvecli", "--rear", broker.rear], env=env)
    check("CURVE: ZPER_SERVER_KEY and ZPER_CERT from the environment", result.stdout == b"one\ntwo\n", result)

    # Refusals: exit 1 with one line that says why
    plain = dict(os.environ)
    plain.pop("ZPER_SERVER_KEY", None)
    plain.pop("ZPER_CERT", None)
    for verb, endpoint in (("produce", ["--front", broker.front]), ("consume", ["--rear", broker.rear])):
        result = run([broker.zper, verb, "curvecli", *endpoint], b"plain\n", env=plain)
        check("CURVE: %s without keys is refused, exit 1, one line naming CURVE" % verb,
              result.returncode == 1 and one_line(result)
              and b"uses CURVE" in result.stderr, result)
    stranger = os.path.join(broker.folder, "stranger")
    result = run([broker.zper, "produce", "curvecli", "--front", broker.front, "--server-key",
                  server_key, "--cert", stranger], b"unknown\n")
    check("CURVE: an unknown key is refused, exit 1, one line", result.returncode == 1 and one_line(result)
          and b"refused this client's key" in result.stderr, result)
    bob = os.path.join(broker.folder, "bob")
    result = run([broker.zper, "produce", "curvecli", "--front", broker.front, "--server-key",
                  server_key, "--cert", bob], b"denied\n")
    check("CURVE: a write outside the key's grant is refused: FORBIDDEN", result.returncode == 1
          and b"FORBIDDEN (forbidden" in result.stderr, result)
    result = run([broker.zper, "consume", "curvecli", "--rear", broker.rear, "--server-key",
                  server_key, "--cert", bob])
    check("CURVE: a read outside the key's grant is refused: FORBIDDEN", result.returncode == 1
          and b"FORBIDDEN (forbidden" in result.stderr, result)
    result = broker.zper_run("consume", "curvecli")
    check("CURVE: nothing of the refused writes was stored", result.stdout == b"one\ntwo\n", result)

    # Bad arguments: one line, before any traffic
    result = run([broker.zper, "topics", "--rear", broker.rear, "--cert", alice], env=plain)
    check("--cert without --server-key: exit 2, one line", result.returncode == 2 and one_line(result)
          and b"--server-key" in result.stderr, result)
    result = run([broker.zper, "topics", "--rear", broker.rear, "--server-key", "nonsense",
                  "--cert", alice], env=plain)
    check("a bad --server-key: exit 1, one line", result.returncode == 1 and one_line(result)
          and b"nonsense" in result.stderr, result)
    result = run([broker.zper, "produce", "t", "--front", broker.front, "--server-key", server_key,
                  "--cert", os.path.join(broker.folder, "nobody")], b"x\n", env=plain)
    check("a missing --cert: exit 1, one line", result.returncode == 1 and one_line(result)
          and b"nobody" in result.stderr, result)


def main():
    zperd, zper, example, guide = sys.argv[1:5]
    broker = Broker(zperd, zper)
    try:
        test_produce_consume_round_trip(broker)
        test_modes_frames_and_files(broker)
        test_time_and_follow(broker)
        test_topics_offsets_stats(broker)
        test_single_node_cluster_verbs(broker)
        test_usage_errors(broker)
        test_example_program(broker, example, guide)
    finally:
        status = broker.stop()
    check("zperd exits 0 on SIGTERM", status == 0, status)
    test_broker_down(zper)
    test_broker_option(zper)
    test_keygen(zper)
    broker = curve_broker(zperd, zper)
    try:
        test_curve_verbs(broker)
    finally:
        status = broker.stop()
    check("CURVE zperd exits 0 on SIGTERM", status == 0, status)
    print("%d passed, %d failed" % (checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
