"""Lesson 08's real partition: the relay accepts and acknowledges by itself, a link taken
down between two namespaces does neither; and the lesson's exercise check."""

import time

import pytest
import zmq

from pirate_helpers import LazyServer, Monitor
from pirate_helpers.course import partition
from pirate_helpers.course.exercises import WAITING, NotYet
from pirate_helpers.security import Security


def test_linux_gives_up_after_about_15_minutes_by_default():
    assert partition.give_up_s(15) == pytest.approx(924.6)
    assert partition.give_up_s(3) == pytest.approx(0.2 + 0.4 + 0.8 + 1.6)


def test_the_exercise_waits_accepts_and_explains():
    assert partition.check_real_only(...) == WAITING
    assert partition.check_real_only({"b", "d"}).startswith("✔")
    for wrong, says in [({"a", "b", "d"}, "accepts connections itself"),
                        ({"b", "c", "d"}, "true of both"), ({"b"}, "'d' is missing"),
                        (set(), "'b' is missing"), ("bd", "a set of letters")]:
        with pytest.raises(NotYet, match=says):
            partition.check_real_only(wrong)


def _link_or_skip():
    made = partition.link()
    try:
        return made, made.__enter__()
    except partition.Unavailable as reason:
        pytest.skip(str(reason))


def test_across_a_link_taken_down_connect_hangs_and_the_kernel_retransmits_then_gives_up():
    made, link = _link_or_skip()
    try:
        far = link.run("b", lambda: LazyServer(
            "far-server", security=Security.insecure(),
            bind=f"tcp://{partition.ADDRESSES['b']}:*").start())
        context = link.context("a")
        try:
            req = context.socket(zmq.REQ)
            req.tcp_maxrt = 800
            events = Monitor(req)
            req.connect(far.endpoint)
            req.send(b"hello")
            assert req.poll(2000) and req.recv() == b"hello", "the link works"
            link.cut()
            before = link.segments_out("a")
            sent = time.monotonic()
            req.send(b"in flight")
            late = context.socket(zmq.DEALER)
            late_events = Monitor(late)
            late.connect(far.endpoint)
            resent, dropped = 0, None
            while dropped is None and time.monotonic() < sent + 3:
                resent = max(resent, link.segments_out("a") - before - 1)
                dropped = events.wait_for(zmq.EVENT_DISCONNECTED, timeout=0.05)
            assert resent >= 1, "the kernel sends unacknowledged data again"
            assert dropped is not None and dropped.t - sent >= 0.7, "and gives up at TCP_MAXRT"
            assert late_events.wait_for(zmq.EVENT_CONNECTED, timeout=0.3) is None, \
                "a connect across the partition never completes"
            for closing in (events, late_events, req, late):
                closing.close()
        finally:
            context.destroy()
            far.stop()
    finally:
        made.__exit__(None, None, None)
