"""SIGINT stops every Dafka node promptly and cleanly (LINGER 0, no hang in
context termination): a consumer waiting for records, a store, a producer
still waiting for ACKs that will never come, and the tower."""
from dafka_harness import *


def interrupt(node, expected_code):
    node.process.send_signal(signal.SIGINT)
    code = node.wait(15)
    if code != expected_code:
        fail("%s exited with %s after SIGINT:\n%s" % (node.name, code, node.errors()))


def test(cluster):
    tower = cluster.tower()
    consumer = cluster.start("consumer", "dafka-consume", "--from-beginning", "nothing")
    producer = cluster.start("producer", "dafka-produce", "--count", "1000", "unacked")
    time.sleep(1.5)
    store = cluster.store("store")
    interrupt(store, 0)
    time.sleep(0.5)
    interrupt(consumer, 0)
    interrupt(producer, 1)            # interrupted before its records were acknowledged
    if "interrupted" not in producer.errors():
        fail("producer did not say it was interrupted")
    interrupt(tower, 0)


run(test)
