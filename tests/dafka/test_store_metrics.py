"""A store with --metrics HOST:PORT (store/metrics/listen, docs/dafka.md) serves its counters on
GET /metrics in text format 0.0.4 (strictly parsed, every series typed): after a producer's
records were acknowledged, zper_dafka_store_stored_total is exactly their count and equals the
stored= of the store's exit line; other paths are 404. A malformed address stops the store at
start (exit 2) and a port in use at start (exit 1), each with a line naming
store/metrics/listen."""
from dafka_harness import *
from test_metrics import parse, scrape     # tests/broker: the strict text-format parser

RECORDS = 50


def test(cluster):
    tower = cluster.tower()
    port = free_port()
    store = cluster.store("store", args=("--metrics", "127.0.0.1:%d" % port))
    producer = cluster.start("producer", "dafka-produce", "--count", str(RECORDS), "--size", "8",
                             "orders")
    if producer.wait(60) != 0:
        fail("producer failed:\n" + producer.errors())
    status, content_type, body = scrape(port)
    if status != 200 or not content_type.startswith("text/plain; version=0.0.4"):
        fail("scrape answered %s %s" % (status, content_type))
    types, samples = parse(body)
    if types.get("zper_dafka_store_stored_total") != "counter":
        fail("no typed zper_dafka_store_stored_total:\n" + body)
    if samples[("zper_dafka_store_stored_total", ())] != RECORDS:
        fail("stored_total is not %d:\n%s" % (RECORDS, body))
    if samples[("zper_dafka_store_acked_total", ())] < 1 or samples[("zper_dafka_store_malformed_total", ())] != 0:
        fail("unexpected acked/malformed:\n" + body)
    if scrape(port, "/nope")[0] != 404:
        fail("/nope was not 404")

    # The port is taken: a second store cannot start, and says why
    second = cluster.start("second", "store", "--db", "second.db", "--metrics", "127.0.0.1:%d" % port)
    code = second.wait(30)
    said = second.output().decode(errors="replace") + second.errors()
    if code != 1 or "store/metrics/listen" not in said or "in use" not in said:
        fail("second store on a taken metrics port exited %s:\n%s" % (code, said))
    bad = cluster.start("bad", "store", "--db", "bad.db", "--set", "store/metrics/listen=9100")
    code = bad.wait(30)
    said = bad.output().decode(errors="replace") + bad.errors()
    if code != 2 or "store/metrics/listen" not in said:
        fail("store with a malformed metrics address exited %s:\n%s" % (code, said))

    store.stop()
    if store.counter("stored") != RECORDS:
        fail("the exit line disagrees: stored=%d" % store.counter("stored"))
    tower.stop()


if __name__ == "__main__":
    run(test)
