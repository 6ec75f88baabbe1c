"""One source of truth for a room's settings: the queue's join line carries its heartbeat
interval and liveness, a worker given only the join line runs at them, and a worker at
another pace (faster or slower) is named in one warning on each side, with both intervals.
Also the queue's freeze (chaos from the instructor's side), on a fake clock."""

import re
from contextlib import ExitStack

from hypothesis import given
from hypothesis import strategies as st

from pirate_helpers import (
    PPP_HEARTBEAT,
    PPP_READY,
    ParanoidQueue,
    ParanoidWorker,
    QueueState,
    SteadyLoad,
    Trace,
)
from pirate_helpers.names import wire_identity


def kinds(state: QueueState) -> list[str]:
    return [kind for kind, _ in state.notes]


def test_a_worker_given_only_the_join_line_runs_at_the_queues_pace():
    trace = Trace()
    with ParanoidQueue(trace=trace, heartbeat_interval=0.07, liveness=5) as queue:
        worker = ParanoidWorker("alice", connect=queue.join_workers, trace=trace)
        assert (worker.heartbeat_interval, worker.liveness.max_liveness) == (0.07, 5)
        agreeing = ParanoidWorker("bob", connect=queue.join_workers, trace=trace,
                                  heartbeat_interval=0.07, liveness=5)
        with worker, agreeing:
            assert trace.wait_for(lambda: len(queue.state.workers) == 2, 5)
            assert not trace.wait_for(lambda: trace.count("mismatch") > 0, 1.0), trace
            assert worker.reconnects == agreeing.reconnects == 0


def test_a_faster_worker_is_named_once_on_both_sides_with_both_intervals():
    """The issue's case: the queue heartbeats every 1 s (here 0.3 s), the worker every 0.1 s
    (here 0.02 s) with liveness 3, so it gives the queue up between two of its heartbeats."""
    trace = Trace()
    with ParanoidQueue(trace=trace, heartbeat_interval=0.3, liveness=3,
                       trace_messages=False) as queue:
        with ParanoidWorker("hasty", connect=queue.join_workers, trace=trace,
                            heartbeat_interval=0.02, reconnect_min=0.02, reconnect_max=0.02):
            assert trace.wait_for(lambda: trace.count("mismatch", "queue") == 1, 5), trace
            assert trace.wait_for(lambda: trace.count("reconnect", "queue") >= 4, 5), trace
        [queue_side] = [e.detail for e in trace.of("queue", "mismatch")]
        [worker_side] = [e.detail for e in trace.of("hasty", "mismatch")]
    assert re.search(r"hasty heartbeats every ~0\.0[1-5]\d* s, this queue every 0\.3 s",
                     queue_side), queue_side
    assert "every 0.02 s" in worker_side and "every 0.3 s, liveness 3" in worker_side
    assert trace.count("mismatch") == 2, "one each, however often it reconnects"


def test_state_a_worker_reconnecting_with_short_gaps_is_named_once():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("hasty")
    now = 0.0
    for _ in range(5):  # READY, two heartbeats 0.1 s apart, gives up, READY again...
        state.on_worker_message([w, PPP_READY], now)
        state.on_worker_message([w, PPP_HEARTBEAT], now + 0.1)
        state.on_worker_message([w, PPP_HEARTBEAT], now + 0.2)
        now += 0.5
    assert kinds(state).count("mismatch") == 1 and kinds(state).count("reconnect") == 4
    [detail] = [d for k, d in state.notes if k == "mismatch"]
    assert "~0.1 s, this queue every 1 s" in detail and "reconnecting" in detail


@given(st.lists(st.booleans(), max_size=12))
def test_state_a_worker_leaving_early_is_named_only_after_three_times_in_a_row(short):
    """Each True: it gives us up after two heartbeats 0.1 s apart (a faster worker, or a
    stall that bunched them); each False: after two at our pace. Named once three short
    ones come in a row, never before."""
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("w")
    state.on_worker_message([w, PPP_READY], 0.0)
    now, run, longest = 0.0, 0, 0
    for is_short in short:
        gap = 0.1 if is_short else 1.0
        state.on_worker_message([w, PPP_HEARTBEAT], now + gap)
        state.on_worker_message([w, PPP_HEARTBEAT], now + 2 * gap)
        now += 2 * gap + 0.05
        state.on_worker_message([w, PPP_READY], now)
        run = run + 1 if is_short else 0
        longest = max(longest, run)
    assert kinds(state).count("mismatch") == (1 if longest >= 3 else 0), state.notes


def test_state_a_faster_worker_that_keeps_its_connection_is_named_once():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("eager")
    state.on_worker_message([w, PPP_READY], 0.0)
    for n in range(1, 30):
        state.on_worker_message([w, PPP_HEARTBEAT], n * 0.5)
        state.tick(n * 0.5)
    assert kinds(state).count("mismatch") == 1
    assert w in state.workers, "named, not purged: it does no harm but costs messages"


@given(st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=8),
       st.floats(min_value=0.0, max_value=0.05))
def test_state_heartbeats_bunched_by_a_stalled_link_are_no_mismatch(liveness, stalls, spread):
    """A link that stalls for less than liveness intervals delivers the heartbeats sent
    meanwhile all at once: at most `liveness` in a row close together, never a warning."""
    state = QueueState(heartbeat_interval=1.0, liveness=liveness)
    w = wire_identity("w")
    state.on_worker_message([w, PPP_READY], 0.0)
    now = 0.0
    for _ in range(stalls):
        now += liveness - 0.1  # the stall: nothing arrives
        for k in range(liveness - 1):  # what was sent meanwhile, all at once
            state.on_worker_message([w, PPP_HEARTBEAT], now + k * spread)
        for _ in range(3):  # then the usual pace
            now += 1.0
            state.on_worker_message([w, PPP_HEARTBEAT], now)
        state.tick(now)
    assert "mismatch" not in kinds(state) and w in state.workers


@given(st.sampled_from(["freeze", "stall"]), st.integers(min_value=2, max_value=5),
       st.floats(min_value=0.0, max_value=0.3))
def test_state_heartbeats_piled_up_while_the_queue_stalled_are_no_mismatch(how, piled, spread):
    """The queue itself stops reading (a freeze typed by the instructor, or a machine too busy
    to run it): the heartbeats sent meanwhile arrive together once it runs again, then the
    worker, which gave the queue up, says READY. Seen in CI: a freeze, three heartbeats 65 ms
    apart, a READY, and an equal worker called faster."""
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("w")
    state.on_worker_message([w, PPP_READY], 0.0)
    for now in (1.0, 2.0):
        state.on_worker_message([w, PPP_HEARTBEAT], now)
        state.tick(now)
    if how == "freeze":
        state.freeze(5.0, now=2.5)
        state.thaw(7.5)
    now = 7.5
    state.tick(now)
    for k in range(piled):
        state.on_worker_message([w, PPP_HEARTBEAT], now + k * spread)
    state.on_worker_message([w, PPP_READY], now + piled * spread)
    assert "mismatch" not in kinds(state), state.notes
    assert ("reconnect" if how == "freeze" else "purge") in kinds(state), state.notes


def test_state_a_faster_worker_is_still_named_after_the_queue_stalled():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("hasty")
    state.on_worker_message([w, PPP_READY], 0.0)
    state.tick(3.0)  # late by two intervals: what arrives within one more was held up
    now = 4.0
    for _ in range(5):  # READY, two heartbeats 0.1 s apart, gives up, READY again...
        state.on_worker_message([w, PPP_READY], now)
        state.on_worker_message([w, PPP_HEARTBEAT], now + 0.1)
        state.on_worker_message([w, PPP_HEARTBEAT], now + 0.2)
        now += 0.5
    assert kinds(state).count("mismatch") == 1, state.notes


def test_state_a_frozen_queue_sends_nothing_and_blames_no_worker_after():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    a, b = wire_identity("a"), wire_identity("b")
    for w in (a, b):
        state.on_worker_message([w, PPP_READY], 0.0)
    state.freeze(5.0, now=0.5)
    state.to_workers.clear()
    for now in (1.0, 2.0, 3.0, 4.0, 4.9):
        state.tick(now)
    assert not state.to_workers and "purge" not in kinds(state), "frozen: nothing at all"
    state.thaw(5.5)
    state.tick(5.5)
    assert sorted(i for i, _ in state.to_workers) == sorted([a, b]), "heartbeats again"
    state.on_worker_message([a, PPP_READY], 6.0)  # a backed off and came back
    state.tick(8.4)
    assert set(state.workers) == {a, b}, "each has a full silence limit after the thaw"
    state.tick(8.6)
    assert set(state.workers) == {a}, "b never came back: purged as usual"
    assert {"freeze", "thaw"} <= set(kinds(state))


def test_a_frozen_queue_makes_its_workers_back_off_and_loses_nothing():
    trace = Trace()
    silence = 0.05 * 3
    with ExitStack() as stack:
        queue = stack.enter_context(ParanoidQueue(trace=trace, heartbeat_interval=0.05,
                                                  liveness=3, trace_messages=False))
        workers = [stack.enter_context(ParanoidWorker(f"w{n}", connect=queue.join_workers,
                                                      trace=trace, reconnect_min=0.05))
                   for n in range(3)]
        assert trace.wait_for(lambda: len(queue.state.ready) == 3, 5)
        load = stack.enter_context(SteadyLoad(queue.join_clients, "load", rate=50, requests=60,
                                              timeout=0.4, retries=5, trace=trace))
        assert trace.wait_for(lambda: load.answered >= 5, 5)
        queue.freeze(0.5)
        assert trace.wait_for(lambda: queue.snapshot()["chaos"], 2), "the dashboard shows it"
        assert trace.wait_for(lambda: trace.count("thaw") == 1, 5)
        assert load.join(20)
        assert (load.answered, load.lost) == (60, 0), load.summary()
        assert all(w.reconnects >= 1 for w in workers), "every worker gave the queue up"
        assert trace.wait_for(lambda: len(queue.state.workers) == 3, 5)
        frozen_at = next(e.t for e in trace.events if e.kind == "freeze")
        thawed_at = next(e.t for e in trace.events if e.kind == "thaw")
        # a worker still backing off a full silence after the thaw is purged, as it should
        # be (a busy machine stretches its back-off); none for the freeze itself
        blamed = [e for e in trace.of("queue", "purge") if frozen_at <= e.t < thawed_at + silence]
        assert not blamed and trace.count("mismatch") == 0, blamed
        assert queue.snapshot()["chaos"] == []


def test_state_a_faster_worker_whose_connection_is_gone_is_named_once():
    """What a room showed: a worker at 0.25 s gives a 1 s queue up and closes its socket;
    the queue learns it from a failed send, not from a second READY."""
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("hasty")
    for start in (0.0, 2.0, 4.0):
        state.on_worker_message([w, PPP_READY], start)
        state.on_worker_message([w, PPP_HEARTBEAT], start + 0.25)
        state.on_worker_message([w, PPP_HEARTBEAT], start + 0.5)
        state.worker_unreachable(w, start + 1.0)
    assert kinds(state).count("mismatch") == 1 and kinds(state).count("unreachable") == 3


@given(st.lists(st.tuples(st.sampled_from(["beat", "stall", "freeze", "reconnect"]),
                          st.floats(min_value=0.8, max_value=1.2)), max_size=60))
def test_state_a_worker_at_our_pace_is_never_named_whatever_happens(events):
    """Heartbeats at our interval (give or take 20%), stalls of the link shorter than the
    silence limit, freezes of the queue, reconnections: never a mismatch warning."""
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("steady")
    now = 0.0
    state.on_worker_message([w, PPP_READY], now)
    for kind, jitter in events:
        if kind == "beat":
            now += jitter
            state.on_worker_message([w, PPP_HEARTBEAT], now)
        elif kind == "stall":  # held up, then what was sent meanwhile arrives at once
            now += 2.5 * jitter
            for _ in range(2):
                state.on_worker_message([w, PPP_HEARTBEAT], now)
        elif kind == "freeze":
            state.freeze(5 * jitter, now)
            now += 5 * jitter
            state.thaw(now)
            state.on_worker_message([w, PPP_READY], now)  # it backed off and came back
        else:
            now += jitter
            state.on_worker_message([w, PPP_READY], now)
        state.tick(now)
        if w not in state.workers:
            state.on_worker_message([w, PPP_READY], now)
    assert "mismatch" not in kinds(state), state.notes
