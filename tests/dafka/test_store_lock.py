"""A second store on the db folder of a running store exits 1 at once with a line naming the folder
and the first store's pid (the log engine's lock, docs/dafka.md); the first keeps running and stops
cleanly, after which the folder is free for the next store."""
from dafka_harness import *


def test(cluster):
    cluster.tower()
    first = cluster.store("first", db="shared.db")
    second = cluster.start("second", "store", "--db", "shared.db")
    code = second.wait(30)
    errors = second.output().decode(errors="replace") + second.errors()   # zsys logs on stdout
    if code != 1:
        fail("second store on shared.db exited with %s:\n%s" % (code, errors))
    expected = "cannot use data folder shared.db: process %d holds its lock" % first.process.pid
    if expected not in errors:
        fail("second store did not say %r:\n%s" % (expected, errors))
    if first.process.poll() is not None:
        fail("the first store stopped:\n%s" % first.errors())
    first.stop()
    cluster.store("third", db="shared.db").stop()


if __name__ == "__main__":
    run(test)
