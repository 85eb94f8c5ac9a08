#!/usr/bin/python3
"""test_pyzmq_curve - a third-party binding talks CURVE to zperd using only docs/security.md.

Usage: test_pyzmq_curve.py ZPERD ZPER SECURITY_MD
Takes the python block of the guide's "Third-party clients (pyzmq)" section as it is, and runs
it with /usr/bin/python3 against a zperd with security.curve = 1 whose keys `zper keygen` made,
the endpoints, topic and keys given through the environment variables the block reads. The
block must write in mode 1, get its acknowledgement and FETCH the message back; with a key that
may not write the topic it must end with status 109; with a key the broker does not know it gets
no reply at all. Every command has a timeout. Needs pyzmq only in the snippet's interpreter.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_test import COMMAND_TIMEOUT, check, curve_broker, failures   # noqa: E402
import cli_test                                                                # noqa: E402

SECTION = "## Third-party clients (pyzmq)"


def snippet(guide):
    """The first python block of the section."""
    with open(guide) as text:
        content = text.read()
    section = content.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def run_snippet(code, broker, topic, cert):
    env = dict(os.environ, ZPER_FRONT=broker.front, ZPER_REAR=broker.rear, ZPER_TOPIC=topic,
               ZPER_SERVER_KEY=os.path.join(broker.folder, "broker"),
               ZPER_CERT=os.path.join(broker.folder, cert))
    return subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True,
                          timeout=COMMAND_TIMEOUT)


def main():
    zperd, zper, guide = sys.argv[1:4]
    code = snippet(guide)
    check("docs/security.md has the pyzmq block", "curve_serverkey" in code and "FETCH" in code)
    broker = curve_broker(zperd, zper)
    try:
        result = run_snippet(code, broker, "curvepy", "alice")
        check("the guide's pyzmq client writes with CURVE and FETCHes the message back",
              result.returncode == 0 and result.stdout ==
              b"written: id-1\nfetched: ['id-1', 'hello over CURVE']\n", result)
        consumed = broker.zper_run("consume", "curvepy")
        check("what it wrote is stored, once", consumed.stdout == b"id-1\thello over CURVE\n", consumed)
        result = run_snippet(code, broker, "curvepy", "bob")
        check("a key without a write grant gets 109", result.returncode != 0
              and b"write refused: status 109" in result.stderr, result)
        result = run_snippet(code, broker, "curvepy", "stranger")
        check("a key the broker does not know gets no reply", result.returncode != 0
              and b"Again" in result.stderr and b"written" not in result.stdout, result)
        consumed = broker.zper_run("consume", "curvepy")
        check("the refused writes stored nothing", consumed.stdout == b"id-1\thello over CURVE\n", consumed)
    finally:
        status = broker.stop()
    check("CURVE zperd exits 0 on SIGTERM", status == 0, status)
    print("%d passed, %d failed" % (cli_test.checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
