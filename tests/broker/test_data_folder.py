"""The data folder: one broker at a time (an flock on base_dir/.lock that dies with its holder),
and a base_dir that is not a folder, or not writable, stops the start-up with one line (exit 1)."""

import os
import shutil
import subprocess
import tempfile
import unittest

from zperd_harness import Broker, ZPERD, SANITIZER_MARKS, main

NOBODY = 65534                  # uid and gid of Debian's `nobody`


def start_up_failure(test, broker, command_prefix=()):
    """Run zperd on broker's config (its own ports); it must exit 1 with exactly one line."""
    broker.config_path = os.path.join(broker.folder, "zper.conf")
    with open(broker.config_path, "w") as config:
        config.write(broker.config_text())
    result = subprocess.run(list(command_prefix) + [ZPERD, "-c", broker.config_path],
                            capture_output=True, text=True, timeout=30)
    for mark in SANITIZER_MARKS:
        test.assertNotIn(mark, result.stderr)
    test.assertEqual(result.returncode, 1, result.stderr)
    lines = result.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, result.stderr)
    return lines[0]


class OneBrokerPerFolder(unittest.TestCase):

    def test_second_broker_on_the_folder_exits_1_naming_it_and_the_holder(self):
        first = Broker().start()
        try:
            messages = [[b"id-%d" % n, b"acknowledged-%d" % n] for n in range(20)]
            first.write("owned", messages)
            line = start_up_failure(self, Broker(data_dir=first.data_dir))
            self.assertIn("cannot use data folder %s" % first.data_dir, line)
            self.assertIn("process %d holds its lock" % first.process.pid, line)
            # The first keeps serving, and its acknowledged data is intact
            more = [[b"id-more", b"after the refusal"]]
            self.assertEqual(first.write("owned", more), [[b"id-more"]])
            self.assertEqual(first.fetch_all("owned"), messages + more)
        finally:
            first.stop()

    def test_kill_9_frees_the_folder_for_the_next_broker_which_then_holds_it(self):
        first = Broker().start()
        messages = [[b"k-%d" % n, b"before the kill"] for n in range(10)]
        first.write("killed", messages)
        first.kill9()
        second = Broker(data_dir=first.data_dir, ports=first.ports).start()
        try:
            self.assertEqual(second.fetch_all("killed"), messages)
            line = start_up_failure(self, Broker(data_dir=first.data_dir))
            self.assertIn("process %d holds its lock" % second.process.pid, line)
        finally:
            second.stop()


class UnusableFolder(unittest.TestCase):

    def test_base_dir_that_is_a_file_exits_1_with_one_line(self):
        broker = Broker()
        with open(broker.data_dir, "w") as plain:
            plain.write("not a folder\n")
        line = start_up_failure(self, broker)
        self.assertIn("cannot use data folder %s: it is not a folder" % broker.data_dir, line)

    def test_base_dir_that_is_not_writable_exits_1_with_one_line(self):
        """Permission bits do not stop root, so as root zperd runs as `nobody` (setpriv) on a
        folder that only root may write; any other user gets a folder without write permission."""
        broker = Broker()
        os.mkdir(broker.data_dir)
        prefix = ()
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if not setpriv:
                self.skipTest("running as root without setpriv: cannot make a folder unwritable")
            prefix = (setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups")
            os.chmod(broker.folder, 0o755)      # nobody reads the config, not the data folder
            os.chmod(broker.data_dir, 0o755)
        else:
            os.chmod(broker.data_dir, 0o555)
        try:
            line = start_up_failure(self, broker, prefix)
        finally:
            os.chmod(broker.data_dir, 0o755)
        self.assertIn("cannot use data folder %s: cannot write in it" % broker.data_dir, line)
        self.assertEqual(os.listdir(broker.data_dir), [])


if __name__ == "__main__":
    main()
