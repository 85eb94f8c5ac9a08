"""The daemon: restarts keep data, command line, config errors, signals, start-up failures."""

import atexit
import os
import signal
import subprocess
import tempfile
import time
import unittest

from zperd_harness import Broker, ZPERD, identity, main, SANITIZER_MARKS


def run(*arguments, cwd=None):
    result = subprocess.run([ZPERD] + list(arguments), capture_output=True, text=True, timeout=60,
                            cwd=cwd)
    for mark in SANITIZER_MARKS:
        assert mark not in result.stderr, result.stderr
    return result


def write_config(text):
    handle, path = tempfile.mkstemp(suffix=".conf")
    atexit.register(os.unlink, path)
    with os.fdopen(handle, "w") as config:
        config.write(text)
    return path


class Restart(unittest.TestCase):

    def test_data_survives_sigterm_and_restart(self):
        broker = Broker("flush_interval = 60000\nflush_messages = 1000000").start()
        broker.write("kept", [[b"k1", b"one"], [b"k2"]])
        broker.writer(identity("kept0", 0)).send_multipart([b"unflushed-mode-0"])
        time.sleep(0.3)
        broker.stop()                   # flush on stop makes the mode 0 write durable too
        again = Broker(data_dir=broker.data_dir, ports=broker.ports).start()
        try:
            self.assertEqual(again.fetch_all("kept"), [[b"k1", b"one"], [b"k2"]])
            self.assertEqual(again.fetch_all("kept0"), [[b"unflushed-mode-0"]])
            again.write("kept", [[b"k3"]])
            self.assertEqual(again.fetch_all("kept")[-1], [b"k3"])
            self.assertEqual(again.bounds("kept")[:2], [0, 3])
        finally:
            again.stop()

    def test_acknowledged_mode_1_data_survives_kill_9(self):
        broker = Broker().start()
        messages = [[b"a%d" % n, b"payload-%d" % n] for n in range(50)]
        self.assertEqual(broker.write("crashed", messages), [[m[0]] for m in messages])
        broker.kill9()
        again = Broker(data_dir=broker.data_dir, ports=broker.ports).start()
        try:
            self.assertEqual(again.fetch_all("crashed"), messages)
        finally:
            again.stop()


class CommandLine(unittest.TestCase):

    def test_help_and_version(self):
        result = run("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("Usage: zperd", result.stdout)
        result = run("--version")
        self.assertEqual((result.returncode, result.stdout.split()[0]), (0, "zperd"))

    def test_unknown_argument_is_a_usage_error(self):
        result = run("--frobnicate")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)

    def test_check_config_without_file_shows_the_built_in_defaults(self):
        result = run("--check-config")
        self.assertEqual(result.returncode, 0)
        self.assertIn('base_dir = "./data"', result.stdout)
        self.assertIn('front.bind = "tcp://127.0.0.1:5555"', result.stdout)
        self.assertIn('relay.bind = "tcp://127.0.0.1:5558"', result.stdout)

    def test_seed_config_file_is_accepted(self):
        path = write_config(
            '# common configuration\nbase_dir = "/data/zper"         # data store base directory \n'
            "segment_size = 536870912        # segment file size 512M\n"
            "flush_messages = 10000\nflush_interval = 1000\ncleanup_interval = 604800000L\n"
            "front.bind = tcp://*:5555\nfront.workers = 3\nfront.io_threads = 1\n"
            "rear.bind = tcp://*:5556\nrear.workers = 3\nrear.io_threads = 1\nack.bind = tcp://*:5557\n")
        result = run("-c", path, "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("cleanup_interval = 604800000", result.stdout)

    def test_later_names_are_accepted(self):
        path = write_config("writer.bind = tcp://127.0.0.1:1\nwriter.workers = 2\n"
                            "reader.bind = tcp://127.0.0.1:2\nreader.workers = 1\nretain_hours = 24\n"
                            "max_message = 1000\nreceive_hwm = 10\nsend_buffer = 65536\n"
                            "receive_buffer = 65536\nrelay.bind = tcp://127.0.0.1:3\n")
        result = run("-c", path, "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("front.workers = 2", result.stdout)
        self.assertIn("cleanup_interval = 86400000", result.stdout)

    def assertConfigError(self, text, expected):
        path = write_config(text)
        result = run("-c", path)
        self.assertEqual(result.returncode, 2)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertEqual(lines[0], "zperd: %s:%s" % (path, expected))

    def test_unknown_key_names_file_line_and_a_near_miss(self):
        self.assertConfigError("base_dir = x\nflush_msgs = 10\n",
                               "2: unknown key 'flush_msgs' (did you mean 'flush_messages'?)")
        self.assertConfigError("frnt.bind = tcp://*:1\n",
                               "1: unknown key 'frnt.bind' (did you mean 'front.bind'?)")

    def test_bad_values_name_the_problem(self):
        self.assertConfigError("front.workers = many\n",
                               "1: front.workers: 'many' is not an integer in [1, 64]")
        self.assertConfigError("\n\nrear.bind = localhost\n",
                               "3: rear.bind: 'localhost' is not an endpoint "
                               "(expected tcp://host:port or ipc://path)")
        self.assertConfigError("front.bind = tcp://*:1\nwriter.bind = tcp://*:2\n",
                               "2: 'writer.bind' sets what line 1 already set")

    def test_missing_config_file_exits_2(self):
        result = run("-c", "/nonexistent/zper.conf")
        self.assertEqual(result.returncode, 2)
        self.assertIn("/nonexistent/zper.conf: cannot read", result.stderr)


class Signals(unittest.TestCase):

    def test_port_in_use_stops_start_up_with_one_clear_line(self):
        broker = Broker().start()
        try:
            second = Broker(ports=broker.ports)
            result = run("-c", write_config(second.config_text()))
            self.assertEqual(result.returncode, 1)
            lines = result.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertRegex(lines[0], r"cannot bind tcp://127\.0\.0\.1:\d+: Address already in use")
            self.assertServingAfter(broker)
        finally:
            broker.stop()

    def assertServingAfter(self, broker):
        self.assertEqual(broker.write("stillup", [[b"s"]]), [[b"s"]])

    def test_sigint_stops_cleanly(self):
        broker = Broker().start()
        broker.write("interrupted", [[b"i"]])
        broker.process.send_signal(signal.SIGINT)
        self.assertEqual(broker.process.wait(30), 0)
        broker.process = None
        broker.log.close()
        self.assertIn("stopped", broker.output())

    def test_second_signal_exits_at_once(self):
        broker = Broker().start()
        broker.process.send_signal(signal.SIGTERM)
        broker.process.send_signal(signal.SIGTERM)
        code = broker.process.wait(30)
        self.assertIn(code, (0, 130))   # 0 if the clean stop won the race
        broker.process = None
        broker.log.close()


if __name__ == "__main__":
    main()
