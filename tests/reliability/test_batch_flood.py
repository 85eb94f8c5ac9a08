"""A flood of native batches (docs/reliability.md): 6,000,000 small messages written as fast as
`zper produce --batch --mode 0` can encode them. Every write group of a front worker is bounded
(ZPER_FRONT_GROUP_MESSAGES_MAX), so the workers and the ack thread keep answering the manager's
heartbeats: the broker must not judge itself unresponsive and stop (it did, with exit code 3,
when one group could hold a thousand batches of thousands of messages). Every message must
become durable, and the broker must stop cleanly afterwards. Bounded in count and time.
"""

import subprocess
import time

import reliability as rel

MESSAGES = 6000000
DEADLINE_S = 150


def main():
    broker = rel.Broker("flush_interval = 100")
    rel.start(broker)
    try:
        started = time.time()
        numbers = subprocess.Popen(["seq", "1", str(MESSAGES)], stdout=subprocess.PIPE)
        produce = subprocess.run([rel.ZPER, "produce", "flood", "--batch", "--mode", "0",
                                  "--front", broker.endpoint("front")],
                                 stdin=numbers.stdout, capture_output=True, timeout=DEADLINE_S)
        numbers.stdout.close()
        numbers.wait()
        assert produce.returncode == 0, produce.stderr.decode(errors="replace")
        broker.wait_durable("flood", MESSAGES, timeout_s=DEADLINE_S)
        assert broker.process.poll() is None, "zperd stopped:\n" + broker.output()
        assert "has not answered" not in broker.output(), broker.output()
        start, durable = broker.bounds("flood")[:2]
        assert (start, durable) == (0, MESSAGES), (start, durable)
        print("batch flood passed: %d messages durable in %.1f s, heartbeats answered"
              % (MESSAGES, time.time() - started))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
