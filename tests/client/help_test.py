#!/usr/bin/python3
"""help_test - every verb and sub-verb of the zper CLI, and zperd, answer --help.

Usage: help_test.py ZPER ZPERD
Walks the verbs that `zper --help` lists and the sub-verbs that each verb's usage lines name
(`zper VERB SUBVERB ...` with a lower-case word where an operand or an option would be):
`--help` must exit 0 with help text (a "usage:" line) on stdout and nothing on stderr, never
be taken for an operand (`zper log verify --help` once checked a file named --help). Every
command has a timeout. Standard library only.
"""

import re
import subprocess
import sys

COMMAND_TIMEOUT = 30        # seconds, for any one command
SUBVERB = re.compile(r"^\s*(?:usage:\s*)?zper (\S+) ([a-z][a-z-]*)\b", re.MULTILINE)

failures = []


def help_of(command):
    """stdout of `command --help`, after checking the exit code and the streams."""
    result = subprocess.run(command + ["--help"], capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    name = " ".join(command[1:]) or command[0]
    if result.returncode != 0:
        failures.append("%s --help exited %d: %s" % (name, result.returncode, result.stderr))
    if "usage:" not in result.stdout.lower():
        failures.append("%s --help printed no usage on stdout: %r" % (name, result.stdout))
    if result.stderr:
        failures.append("%s --help wrote to stderr: %r" % (name, result.stderr))
    if "--help:" in result.stdout or "No such file" in result.stdout:
        failures.append("%s took --help for an operand: %r" % (name, result.stdout))
    return result.stdout


def main():
    zper, zperd = sys.argv[1], sys.argv[2]
    listing = help_of([zper])
    verbs = re.findall(r"^  (\S+)\s", listing.split("verbs:", 1)[-1], re.MULTILINE)
    if len(verbs) < 5:
        failures.append("zper --help lists too few verbs: %r" % listing)
    subverbs = []
    for verb in verbs:
        usage = help_of([zper, verb])
        for named_verb, subverb in SUBVERB.findall(usage):
            if named_verb == verb and (verb, subverb) not in subverbs:
                subverbs.append((verb, subverb))
                help_of([zper, verb, subverb])
    for expected in (("log", "verify"), ("log", "dump")):
        if expected not in subverbs:
            failures.append("sub-verb zper %s %s not found in its verb's help" % expected)
    help_of([zperd])
    for failure in failures:
        print("FAIL: " + failure)
    print("%d commands walked, %d failures" % (2 + len(verbs) + len(subverbs), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
