"""Crash loop against a real zperd (docs/reliability.md section 2).

Producers write in mode 1 and record every acknowledged message. The broker runs with tiny
segments (a roll every few dozen messages, each roll writes a checkpoint), a short
flush_interval and a retention that runs every 1.5 s, and is SIGKILLed at a random moment.
After each kill: `zper log verify` on the data folder must find every record intact; then
the broker restarts on the same folder and every acknowledged message must be served by
READ, intact and in order. At the end a clean stop, a last check and a last verify.

    test_crash_loop.py [ITERATIONS [SEED]]      (CI: 25; the long run: 200)
"""

import random
import sys
import time

import reliability as rel

TOPICS = ("crashA", "crashB", "crashC")
CONFIG = "\n".join([
    "segment_size = 4096",            # rolls (and checkpoints) all the time
    "flush_interval = 5",
    "flush_messages = 50",
    "cleanup_interval = 1500",        # retention runs every 1.5 s, deleting old segments
    "front.workers = 2",
])
RUN_MIN_S, RUN_MAX_S = 0.05, 1.2      # the broker is killed this long after it answers


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    chance = random.Random(seed)
    print("crash loop: %d iterations, seed %d" % (iterations, seed), flush=True)
    broker = rel.Broker(CONFIG)
    producers = [rel.Producer(topic) for topic in TOPICS]
    checked = 0
    for iteration in range(iterations):
        rel.start(broker)
        for producer in producers:
            checked += rel.check_topic(broker, producer)
            producer.connect(broker)
        rel.run_for(producers, chance.uniform(RUN_MIN_S, RUN_MAX_S))
        rel.kill9(broker)
        for producer in producers:
            assert not producer.errors, "%s: error replies %r" % (producer.topic, producer.errors[:3])
        code, output = rel.verify_log(broker.data_dir)
        assert code == 0, "iteration %d: zper log verify after SIGKILL:\n%s" % (iteration, output)
        print("iteration %d: acked %s" % (iteration, [len(p.acked) for p in producers]), flush=True)
    rel.start(broker)
    for producer in producers:
        checked += rel.check_topic(broker, producer)
    broker.stop()
    code, output = rel.verify_log(broker.data_dir)
    assert code == 0, "zper log verify after the clean stop:\n%s" % output
    acked = sum(len(producer.acked) for producer in producers)
    assert acked > 0, "no write was ever acknowledged"
    print("crash loop passed: %d kills, %d acknowledged, %d served messages checked"
          % (iterations, acked, checked))


if __name__ == "__main__":
    main()
