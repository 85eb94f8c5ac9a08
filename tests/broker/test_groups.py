"""Consumer groups on the wire (docs/protocol.md 3.3): HEARTBEAT, LEAVE, COMMIT, COMMITTED,
GROUPS. Committed offsets survive kill -9; bad arguments get their status and the broker keeps
serving; members share a topic's partitions without ever holding one at once; a silent member's
partitions go to the others after its session; lag in GROUPS and STATS; groups.max_members;
read grants and filtered listings with security on."""

import json
import struct
import time
import unittest

import zmq

from test_security import FORBIDDEN, Key, SecureBroker
from zperd_harness import (Broker, BrokerTestCase, OK, INVALID_OFFSET, INVALID_ARGUMENT, get_i64,
                           i32, i64, identity, main)

UNKNOWN_MEMBER, NOT_ASSIGNED, GROUP_LIMIT = 115, 116, 117
PARTITIONS = ["t.%d" % index for index in range(6)]
WAIT_S = 20                     # every wait for a condition gives up after this


def status(reply):
    return reply[0][0]


def get_i32(frame):
    assert len(frame) == 4, "int32 frame of %d bytes" % len(frame)
    return struct.unpack(">i", frame)[0]


class Member:
    """A group member that adopts its answer at once: it delivers what it was given and stops
    what was taken away, so what it reports owning is its last answer."""

    def __init__(self, broker, group, topic="t", session_ms=10000):
        self.broker, self.group, self.topic, self.session_ms = broker, group, topic, session_ms
        self.sock = broker.reader(identity("member"))
        self.id, self.owned, self.generation = b"", [], None

    def ask(self, *frames):
        self.sock.send_multipart(list(frames))
        return self.sock.recv_multipart()

    def beat(self):
        reply = self.ask(b"HEARTBEAT", self.group.encode(), self.topic.encode(), self.id,
                         i32(self.session_ms), *[name.encode() for name in self.owned])
        assert status(reply) == OK, reply
        self.id, self.generation = reply[1], get_i32(reply[2])
        assert get_i32(reply[3]) == self.session_ms // 3
        self.owned = [frame.decode() for frame in reply[4:]]
        return self.owned

    def commit(self, topic, offset):
        return status(self.ask(b"COMMIT", self.group.encode(), topic.encode(), i64(offset),
                               self.id, i32(self.generation)))

    def leave(self):
        self.owned = []
        return status(self.ask(b"LEAVE", self.group.encode(), self.id))


def groups_json(broker, group=None):
    reply = broker.request(b"GROUPS", *([group.encode()] if group else []))
    assert status(reply) == OK and len(reply) == 2, reply
    return json.loads(reply[1])


class CommittedOffsets(BrokerTestCase):

    def test_commit_survives_kill9_and_restart_on_the_same_folder(self):
        self.broker.write("durable", [[b"id", b"m%d" % n] for n in range(5)])
        self.broker.wait_durable("durable", 5)
        before = int(time.time() * 1000)
        self.assertEqual(self.broker.request(b"COMMIT", b"keeper", b"durable", i64(3)), [bytes([OK])])
        self.broker.kill9()
        self.broker.start()
        reply = self.broker.request(b"COMMITTED", b"keeper", b"durable")
        self.assertEqual(status(reply), OK)
        self.assertEqual(len(reply), 3)
        self.assertEqual(get_i64(reply[1]), 3)
        self.assertGreaterEqual(get_i64(reply[2]), before)
        # nothing committed: -1 and 0
        reply = self.broker.request(b"COMMITTED", b"keeper", b"other")
        self.assertEqual([status(reply), get_i64(reply[1]), get_i64(reply[2])], [OK, -1, 0])
        # the offsets file sits beside the topics and is never one
        self.assertNotIn(b"__consumer_offsets", self.broker.request(b"TOPICS")[1:])
        self.assertEqual(self.broker.request(b"BOUNDS", b"__consumer_offsets"),
                         [bytes([INVALID_ARGUMENT])])
        self.assertServing()


class BadArguments(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.broker.write("bad", [[b"id", b"one"]])
        cls.broker.wait_durable("bad", 1)

    def assertStatus(self, expected, *frames):
        reply = self.broker.request(*frames)
        self.assertEqual(reply, [bytes([expected])], frames)

    def test_bad_commits_get_103_or_101(self):
        for frames in ([b"COMMIT"], [b"COMMIT", b"g", b"bad"],
                       [b"COMMIT", b"g", b"bad", i64(0), b"extra"],
                       [b"COMMIT", b"g", b"bad", i32(0)],
                       [b"COMMIT", b"g", b"bad", i64(-1)],
                       [b"COMMIT", b"..", b"bad", i64(0)],
                       [b"COMMIT", b"a/b", b"bad", i64(0)],
                       [b"COMMIT", b"", b"bad", i64(0)],
                       [b"COMMIT", b"g" * 250, b"bad", i64(0)],
                       [b"COMMIT", b"g", b"bad", i64(0), b"", i32(1)],
                       [b"COMMIT", b"g", b"bad", i64(0), b"m" * 65, i32(1)],
                       [b"COMMIT", b"g", b"bad", i64(0), b"member", i64(1)]):
            self.assertStatus(INVALID_ARGUMENT, *frames)
        self.assertStatus(INVALID_OFFSET, b"COMMIT", b"g", b"bad", i64(2))
        self.assertStatus(INVALID_OFFSET, b"COMMIT", b"g", b"neverwritten", i64(1))
        self.assertStatus(OK, b"COMMIT", b"g", b"bad", i64(1))
        self.assertServing()

    def test_bad_committed_groups_and_leave_get_103(self):
        for frames in ([b"COMMITTED", b"g"], [b"COMMITTED", b"g", b"bad", b"x"],
                       [b"COMMITTED", b".", b"bad"], [b"GROUPS", b"a", b"b"], [b"GROUPS", b".."],
                       [b"LEAVE", b"g"], [b"LEAVE", b"g", b""], [b"LEAVE", b"g", b"m" * 65]):
            self.assertStatus(INVALID_ARGUMENT, *frames)
        self.assertStatus(OK, b"LEAVE", b"g", b"nosuchmember")
        self.assertServing()

    def test_bad_heartbeats_get_103_and_unknown_members_115(self):
        for frames in ([b"HEARTBEAT", b"h", b"bad", b""],
                       [b"HEARTBEAT", b"h", b"bad", b"", i64(10000)],
                       [b"HEARTBEAT", b"h", b"bad", b"", i32(999)],          # below min_session_ms
                       [b"HEARTBEAT", b"h", b"bad", b"", i32(300001)],
                       [b"HEARTBEAT", b"h", b"bad", b"m" * 65, i32(10000)],
                       [b"HEARTBEAT", b"h", b"bad", b"", i32(10000), b"a/b"],
                       [b"HEARTBEAT", b"h/", b"bad", b"", i32(10000)],
                       [b"HEARTBEAT", b"h", b"", b"", i32(10000)]):
            self.assertStatus(INVALID_ARGUMENT, *frames)
        self.assertStatus(UNKNOWN_MEMBER, b"HEARTBEAT", b"h", b"bad", b"nosuchmember", i32(10000))
        self.assertServing()

    def test_member_commits_are_checked_against_the_group(self):
        member = Member(self.broker, "checked", topic="bad")
        self.assertEqual(member.beat(), ["bad"])
        self.assertEqual(member.commit("bad", 1), OK)
        generation = member.generation
        member.generation = generation + 1
        self.assertEqual(member.commit("bad", 1), NOT_ASSIGNED)      # stale generation
        member.generation = generation
        self.assertEqual(member.commit("other", 0), NOT_ASSIGNED)    # not its partition
        # a standalone commit while the group has live members
        self.assertStatus(NOT_ASSIGNED, b"COMMIT", b"checked", b"bad", i64(0))
        self.assertStatus(UNKNOWN_MEMBER, b"COMMIT", b"checked", b"bad", i64(0), b"nosuch", i32(1))
        # one topic per group while it has members
        self.assertStatus(INVALID_ARGUMENT, b"HEARTBEAT", b"checked", b"other", member.id, i32(10000))
        self.assertEqual(member.leave(), OK)
        self.assertStatus(UNKNOWN_MEMBER, b"HEARTBEAT", b"checked", b"bad", member.id, i32(10000))
        self.assertStatus(UNKNOWN_MEMBER, b"COMMIT", b"checked", b"bad", i64(0), member.id,
                          i32(generation))
        self.assertStatus(OK, b"COMMIT", b"checked", b"bad", i64(0))
        self.assertServing()


class Assignment(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for partition in PARTITIONS:
            cls.broker.write(partition, [[b"id", partition.encode()]])
        for partition in PARTITIONS:
            cls.broker.wait_durable(partition, 1)

    def assertDisjoint(self, members):
        seen = {}
        for member in members:
            for partition in member.owned:
                self.assertNotIn(partition, seen, "held by two members at once")
                seen[partition] = member

    def settle(self, members, rounds=8):
        """Heartbeat every member in turn until every partition is held and none moves."""
        for _ in range(rounds):
            before = [list(member.owned) for member in members]
            for member in members:
                member.beat()
                self.assertDisjoint(members)
            if before == [member.owned for member in members] and \
                    sorted(sum(before, [])) == PARTITIONS:
                return
        self.fail("never settled: %s" % [member.owned for member in members])

    def test_two_members_split_six_partitions_and_never_overlap(self):
        first, second = Member(self.broker, "split"), Member(self.broker, "split")
        self.assertEqual(first.beat(), PARTITIONS)
        self.assertEqual(second.beat(), [])         # the first still holds all six
        self.settle([first, second])
        self.assertEqual(first.owned, ["t.0", "t.2", "t.4"])
        self.assertEqual(second.owned, ["t.1", "t.3", "t.5"])
        state = groups_json(self.broker, "split")["split"]
        self.assertEqual(state["state"], "stable")
        self.assertEqual(state["topic"], "t")
        self.assertEqual(sorted(state["partitions"]), PARTITIONS)
        self.assertEqual(state["partitions"]["t.5"]["owner"], second.id.decode())

        third = Member(self.broker, "split")
        third.beat()
        self.assertDisjoint([first, second, third])
        self.settle([first, second, third])
        self.assertEqual([len(member.owned) for member in (first, second, third)], [2, 2, 2])
        self.assertEqual(third.leave(), OK)
        self.settle([first, second])
        self.assertEqual(first.owned, ["t.0", "t.2", "t.4"])
        self.assertEqual(second.owned, ["t.1", "t.3", "t.5"])
        self.assertServing()

    def test_silent_member_loses_its_partitions_after_its_session(self):
        first = Member(self.broker, "expiry", session_ms=1000)
        second = Member(self.broker, "expiry", session_ms=1000)
        first.beat()
        second.beat()
        self.settle([first, second])
        deadline = time.time() + WAIT_S
        while second.beat() != PARTITIONS:          # the first stops heartbeating
            self.assertLess(time.time(), deadline, "the silent member's partitions never moved")
            time.sleep(0.1)
        reply = first.ask(b"HEARTBEAT", b"expiry", b"t", first.id, i32(1000))
        self.assertEqual(reply, [bytes([UNKNOWN_MEMBER])])
        members = groups_json(self.broker, "expiry")["expiry"]["members"]
        self.assertEqual([member["id"] for member in members], [second.id.decode()])


class Lag(BrokerTestCase):

    def test_lag_for_a_known_backlog_in_groups_and_stats(self):
        written_at = time.time()
        self.broker.write("lagged", [[b"id", b"m%d" % n] for n in range(100)])
        self.broker.wait_durable("lagged", 100)
        self.assertEqual(self.broker.request(b"COMMIT", b"lagger", b"lagged", i64(40)),
                         [bytes([OK])])
        time.sleep(0.05)                            # the backlog is at least this old
        for source in ("GROUPS", "STATS"):
            if source == "GROUPS":
                group = groups_json(self.broker, "lagger")["lagger"]
            else:
                group = json.loads(self.broker.request(b"STATS")[1])["groups"]["lagger"]
            partition = group["partitions"]["lagged"]
            self.assertEqual(partition["committed"], 40)
            self.assertEqual(partition["end"], 100)
            self.assertEqual(partition["lag"], 60)
            self.assertIsNone(partition["owner"])
            elapsed_ms = (time.time() - written_at) * 1000
            self.assertGreater(partition["lag_ms"], 0)
            self.assertLessEqual(partition["lag_ms"], elapsed_ms + 1000)
            self.assertEqual(group["lag"], 60)
            self.assertEqual(group["state"], "empty")
        self.assertEqual(groups_json(self.broker, "nosuchgroup"), {})


class Limits(BrokerTestCase):
    extra_config = "groups.max_members = 2"

    def test_third_member_gets_117(self):
        Member(self.broker, "full").beat()
        Member(self.broker, "full").beat()
        reply = self.broker.request(b"HEARTBEAT", b"full", b"t", b"", i32(10000))
        self.assertEqual(reply, [bytes([GROUP_LIMIT])])
        Member(self.broker, "other").beat()         # the limit is per group
        self.assertServing()


class Permissions(unittest.TestCase):
    """security.curve = 1: the group commands need a read grant for the topic they name, and
    GROUPS and STATS show a key only the groups and partitions it may read."""

    @classmethod
    def setUpClass(cls):
        cls.alpha = Key("alpha", write="alpha*", read="alpha*")
        cls.broker = SecureBroker([cls.alpha]).start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def ask(self, *frames, cert="admin"):
        sock = self.broker.socket(zmq.DEALER, identity("any"), self.broker.endpoint("rear"),
                                  cert=cert)
        sock.send_multipart(list(frames))
        reply = sock.recv_multipart()
        self.broker.close(sock)
        return reply

    def test_group_commands_need_a_read_grant_and_listings_are_filtered(self):
        self.broker.write("alphaorders", [[b"id", b"a"]])
        self.broker.write("betaorders", [[b"id", b"b"]])
        self.broker.wait_durable("alphaorders", 1)
        self.broker.wait_durable("betaorders", 1)
        for topic in (b"alphaorders", b"betaorders"):
            self.assertEqual(self.ask(b"COMMIT", b"group-" + topic, topic, i64(1)), [bytes([OK])])
        alpha = self.alpha
        self.assertEqual(self.ask(b"COMMIT", b"g", b"betaorders", i64(0), cert=alpha),
                         [bytes([FORBIDDEN])])
        self.assertEqual(self.ask(b"COMMITTED", b"group-betaorders", b"betaorders", cert=alpha),
                         [bytes([FORBIDDEN])])
        self.assertEqual(self.ask(b"HEARTBEAT", b"g", b"betaorders", b"", i32(10000), cert=alpha),
                         [bytes([FORBIDDEN])])
        reply = self.ask(b"COMMITTED", b"group-alphaorders", b"alphaorders", cert=alpha)
        self.assertEqual([status(reply), get_i64(reply[1])], [OK, 1])
        reply = self.ask(b"HEARTBEAT", b"g", b"alphaorders", b"", i32(10000), cert=alpha)
        self.assertEqual(status(reply), OK)
        self.assertEqual(reply[4:], [b"alphaorders"])
        shown = json.loads(self.ask(b"GROUPS", cert=alpha)[1])
        self.assertEqual(sorted(shown), ["g", "group-alphaorders"])
        stats = json.loads(self.ask(b"STATS", cert=alpha)[1])
        self.assertEqual(sorted(stats["groups"]), ["g", "group-alphaorders"])
        self.assertIn("group-betaorders", json.loads(self.ask(b"GROUPS")[1]))


if __name__ == "__main__":
    main()
