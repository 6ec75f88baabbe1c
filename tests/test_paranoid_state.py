"""The Paranoid Pirate decisions with a fake clock: no sockets, no sleeps."""

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pirate_helpers import PPP_HEARTBEAT, PPP_READY, GuideQueueState, QueueState, WorkerLiveness
from pirate_helpers.held import size_of

HEARTBEAT = [PPP_HEARTBEAT]


def request(body: bytes, client: bytes = b"c1") -> list[bytes]:
    return [client, b"", body]


def sent_requests(state) -> list[tuple[bytes, list[bytes]]]:
    """What the state sent to workers, heartbeats left out; clears the outbox."""
    sent = [(who, msg) for who, msg in state.to_workers if msg != HEARTBEAT]
    state.to_workers.clear()
    return sent


def queue_with(*names: bytes, now: float = 0.0) -> QueueState:
    state = QueueState(heartbeat_interval=1.0, liveness=3, now=now)
    for name in names:
        state.on_worker_message([name, PPP_READY], now)
    return state


# -- the queue -----------------------------------------------------------------------------
def test_a_request_goes_to_the_least_recently_ready_worker_envelope_intact():
    state = queue_with(b"w1", b"w2")
    state.on_request([b"c1", b"", b"a", b"\x00"], 0.1)
    state.on_request(request(b"b"), 0.1)
    assert sent_requests(state) == [(b"w1", [b"c1", b"", b"a", b"\x00"]),
                                    (b"w2", [b"c1", b"", b"b"])]
    assert not state.accepting


def test_a_heartbeat_keeps_a_busy_worker_alive_but_never_makes_it_ready():
    state = queue_with(b"w1")
    state.on_request(request(b"a"), 0.0)
    state.on_worker_message([b"w1", PPP_HEARTBEAT], 2.5)
    assert not state.accepting and b"w1" not in state.ready
    state.on_request(request(b"b"), 2.6)  # no ready worker: it waits
    assert sent_requests(state) == [(b"w1", request(b"a"))]
    assert list(state.pending) == [request(b"b")]
    state.tick(5.0)  # the heartbeat at 2.5 moved its expiry to 5.5
    assert b"w1" in state.workers
    state.on_worker_message([b"w1", *request(b"a")], 5.2)  # the reply makes it ready...
    assert state.to_clients == [request(b"a")]
    assert sent_requests(state) == [(b"w1", request(b"b"))]  # ...and the waiting one goes


def test_requests_wait_within_the_byte_budgets_and_a_worker_takes_the_oldest():
    """No worker ready: the queue holds requests itself (a client that leaves leaves nothing
    unbounded in libzmq), up to 32 MiB per client and 256 MiB in all by default."""
    state = queue_with()
    assert state.reads_always and not GuideQueueState.reads_always
    big = b"\0" * (8 << 20)
    for n in range(100):
        state.on_request([b"c1", b"", big, b"%d" % n], 0.0)
    assert [r[-1] for r in state.pending] == [b"0", b"1", b"2"], "three fit in 32 MiB"
    assert state.held.refused == 97 and state.rejected == 97
    assert "over the 33554432-byte limit per client" in state.notes[-1][1]
    state.on_worker_message([b"w1", PPP_READY], 0.1)
    assert sent_requests(state) == [(b"w1", [b"c1", b"", big, b"0"])]
    assert state.held.by_client[b"c1"] == 2 * (8 << 20) + 2 * 3


def test_a_worker_busy_past_max_busy_is_forgotten_and_its_request_dropped():
    """It heartbeats but never answers: `max_busy` after it got the request it is
    forgotten (PPP has no DISCONNECT: with no heartbeats from us it reconnects), the request
    dropped and counted; a READY brings it back."""
    state = queue_with(b"w1", b"w2")
    state.max_busy = 5.0
    state.on_request(request(b"stuck"), 0.3)
    assert sent_requests(state) == [(b"w1", request(b"stuck"))]
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        state.on_worker_message([b"w1", PPP_HEARTBEAT], now)
        state.on_worker_message([b"w2", PPP_HEARTBEAT], now)
    state.tick(5.29)
    assert state.overdue == 0 and state.next_wakeup() <= 5.3
    state.tick(5.3)
    assert state.overdue == 1 and b"w1" not in state.workers and not state.pending
    assert ("overdue", "w1 held stuck for over 5 s: request dropped, worker forgotten") \
        in state.notes
    state.to_workers.clear()
    state.tick(6.3)
    assert [who for who, _ in state.to_workers] == [b"w2"], "no more heartbeats to w1"
    state.to_workers.clear()
    state.on_worker_message([b"w1", PPP_READY], 6.5)
    state.on_request(request(b"next"), 6.6)
    assert sent_requests(state) == [(b"w2", request(b"next"))]


def test_a_freeze_of_the_queue_itself_does_not_count_towards_max_busy():
    state = queue_with(b"w1")
    state.max_busy = 5.0
    state.on_request(request(b"long"), 0.0)
    state.freeze(10.0, 1.0)
    state.thaw(11.0)
    for now in (11.5, 12.0, 12.5, 13.0, 13.5, 14.0, 14.5, 14.99):
        state.on_worker_message([b"w1", PPP_HEARTBEAT], now)
        state.tick(now)
    assert state.overdue == 0, "not counting the 10 s the queue stood still"
    state.tick(15.0)  # 1 s before the freeze, 4 s after it
    assert state.overdue == 1


def test_a_ten_second_request_is_answered_under_the_default_max_busy():
    state = queue_with(b"w1")
    assert state.max_busy == 60.0
    state.on_request(request(b"slow"), 0.0)
    for now in range(1, 11):
        state.on_worker_message([b"w1", PPP_HEARTBEAT], float(now))
        state.tick(float(now))
    state.on_worker_message([b"w1", *request(b"slow")], 10.0)
    assert state.to_clients == [request(b"slow")] and state.overdue == 0


def test_the_guides_queue_hands_a_busy_worker_a_second_request_on_a_heartbeat():
    guide = GuideQueueState(heartbeat_interval=1.0, liveness=3)
    guide.on_worker_message([b"w1", PPP_READY], 0.0)
    guide.on_request(request(b"a"), 0.1)
    guide.on_worker_message([b"w1", PPP_HEARTBEAT], 0.5)
    assert guide.accepting  # the bug: busy w1 is "ready" again
    guide.on_request(request(b"b"), 0.6)
    assert [who for who, _ in sent_requests(guide)] == [b"w1", b"w1"]


def test_heartbeats_go_to_every_worker_on_schedule_without_any_traffic():
    state = queue_with(b"w1", b"w2")
    state.on_request(request(b"a"), 0.0)  # w1 busy, w2 ready: both get heartbeats
    sent_requests(state)
    beats = []
    for now in (0.5, 0.99, 1.0, 1.5, 1.99, 2.0):
        state.tick(now)
        beats.append(sorted(who for who, msg in state.to_workers if msg == HEARTBEAT))
        state.to_workers.clear()
    assert beats == [[], [], [b"w1", b"w2"], [], [], [b"w1", b"w2"]]


def test_a_silent_worker_is_purged_after_liveness_intervals_and_its_request_requeued():
    state = queue_with(b"w1", b"w2")
    state.on_request(request(b"a"), 0.0)  # to w1
    state.on_worker_message([b"w2", PPP_HEARTBEAT], 2.0)  # w2 stays alive, w1 falls silent
    sent_requests(state)
    state.tick(2.999)
    assert set(state.workers) == {b"w1", b"w2"}
    state.tick(3.0)  # w1: silent for 3 x 1 s
    assert set(state.workers) == {b"w2"}
    assert sent_requests(state) == [(b"w2", request(b"a"))]
    assert [kind for kind, _ in state.notes] == ["join", "join", "purge", "requeue"]
    assert list(state.purged) == [b"w1"] and state.requeued == 1 and state.answered == 0
    state.on_worker_message([b"w2", b"c1", b"", b"a"], 3.1)
    assert state.answered == 1


def test_requeued_requests_go_first_and_wait_for_a_ready_worker():
    state = queue_with(b"w1")
    state.on_request(request(b"old"), 0.0)
    state.on_request(request(b"new"), 0.1)
    state.tick(3.0)  # w1 purged: nobody is ready
    assert list(state.pending) == [request(b"old"), request(b"new")]
    state.on_worker_message([b"w2", PPP_READY], 3.1)
    assert sent_requests(state) == [(b"w1", request(b"old")), (b"w2", request(b"old"))]


def test_ready_again_from_a_busy_worker_means_it_lost_the_request_so_it_is_resent():
    state = queue_with(b"w1")
    state.on_request(request(b"a"), 0.0)
    state.on_worker_message([b"w1", PPP_READY], 0.5)  # it reconnected
    assert sent_requests(state) == [(b"w1", request(b"a")), (b"w1", request(b"a"))]
    assert ("requeue", "a from w1") in state.notes


@pytest.mark.parametrize("frames", [
    [b"w9", PPP_HEARTBEAT],  # unknown worker: it must say READY first
    [b"w9", b"c1", b"", b"a"],  # a reply from an unknown (e.g. purged) worker
    [b"w1", b"\x03"],  # not a command
    [b"w1", PPP_READY, b"extra"],  # a command with extra frames
    [b"w1", b"c1", b"", b"a"],  # a reply from a worker that holds nothing
    [b"w1", b"c1", b"a"],  # no envelope delimiter
])
def test_malformed_or_unexpected_worker_messages_are_rejected_and_counted(frames):
    state = queue_with(b"w1")
    state.on_worker_message(frames, 0.5)
    assert state.rejected == 1 and state.notes[-1][0] == "reject"
    assert not state.to_clients and list(state.ready) == [b"w1"]


def test_a_reply_to_another_client_than_the_one_waiting_is_rejected():
    state = queue_with(b"w1")
    state.on_request(request(b"a", client=b"c1"), 0.0)
    state.on_worker_message([b"w1", *request(b"a", client=b"c2")], 0.1)
    assert state.rejected == 1 and not state.to_clients and not state.accepting


@pytest.mark.parametrize("frames", [[b"c1", b"a"], [b"c1", b""], [b"c1", b"x", b"y"]])
def test_a_client_message_without_an_envelope_and_body_is_rejected(frames):
    state = queue_with(b"w1")
    state.on_request(frames, 0.0)
    assert state.rejected == 1 and not sent_requests(state) and state.accepting


def test_next_wakeup_is_the_next_heartbeat_or_expiry_never_later():
    state = queue_with(b"w1", now=0.0)
    state.tick(0.0)
    assert state.next_wakeup() == 1.0  # heartbeat due before w1 expires at 3.0
    state.tick(1.0)
    state.tick(2.0)
    assert state.next_wakeup() == 3.0  # heartbeat at 3.0, expiry at 3.0
    state.on_worker_message([b"w1", PPP_HEARTBEAT], 2.5)
    assert state.next_wakeup() <= 3.0  # a little early is fine; late would miss an expiry


# -- the worker ----------------------------------------------------------------------------
def actions_until(liveness: WorkerLiveness, until: float, step: float = 0.25) -> list:
    """Every action the worker takes, with its time, calling tick every `step` s."""
    taken, now = [], 0.0
    while now <= until:
        while action := liveness.tick(now):
            taken.append((now, action))
            if action == "reconnect":
                liveness.on_connect(now)
        now += step
    return taken


def test_the_worker_heartbeats_every_interval_and_disconnects_after_liveness_silent_ones():
    liveness = WorkerLiveness(heartbeat_interval=1.0, liveness=3, reconnect_min=1.0, jitter=0)
    liveness.on_connect(0.0)
    assert actions_until(liveness, 3.9) == [
        (1.0, "heartbeat"), (2.0, "heartbeat"), (3.0, "disconnect")]
    assert liveness.waited == 1.0 and liveness.next_wakeup() == 4.0


def test_any_message_from_the_queue_restores_liveness():
    liveness = WorkerLiveness(heartbeat_interval=1.0, liveness=3)
    liveness.on_connect(0.0)
    assert liveness.tick(2.0) == "heartbeat" and liveness.liveness == 1  # 2 silent intervals
    assert liveness.tick(2.0) is None  # one heartbeat, not two back to back
    liveness.on_message(2.1)
    assert liveness.liveness == 3
    assert [liveness.tick(t) for t in (3.0, 4.0, 5.0)] == ["heartbeat"] * 3
    assert liveness.tick(5.09) is None
    assert liveness.tick(5.1) == "disconnect"  # 2.1 + 3 x 1 s of silence


def waits_while_the_queue_is_gone(liveness: WorkerLiveness, tries: int) -> list[float]:
    """The waits a worker chooses at `tries` disconnections in a row, the queue never
    answering; each reconnection happens exactly when `next_wakeup` says."""
    liveness.on_connect(0.0)
    waits = []
    for _ in range(tries):
        now = liveness.next_wakeup()
        while (action := liveness.tick(now)) != "disconnect":
            assert action in ("heartbeat", None)
        waits.append(liveness.waited)
        assert liveness.next_wakeup() == now + liveness.waited
        now = liveness.next_wakeup()
        assert liveness.tick(now) == "reconnect"
        liveness.on_connect(now)
    return waits


def test_backoff_doubles_up_to_the_maximum_and_resets_after_the_queue_answers():
    liveness = WorkerLiveness(heartbeat_interval=1.0, liveness=1, reconnect_min=0.5,
                              reconnect_max=3.0, jitter=0)
    assert waits_while_the_queue_is_gone(liveness, 5) == [0.5, 1.0, 2.0, 3.0, 3.0]
    liveness.on_message(100.0)  # a good exchange
    assert liveness.backoff == 0.5


@given(seed=st.integers(0, 2**32), jitter=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       tries=st.integers(1, 8))
def test_each_jittered_wait_lies_between_the_doubled_wait_and_jitter_more(seed, jitter, tries):
    base = [min(0.5 * 2**n, 3.0) for n in range(tries)]
    liveness = WorkerLiveness(1.0, 1, 0.5, 3.0, jitter=jitter, rng=random.Random(seed))
    waits = waits_while_the_queue_is_gone(liveness, tries)
    for wait, plain in zip(waits, base, strict=True):
        assert plain <= wait <= plain * (1 + jitter)
    again = WorkerLiveness(1.0, 1, 0.5, 3.0, jitter=jitter, rng=random.Random(seed))
    assert waits_while_the_queue_is_gone(again, tries) == waits, "the same seed, the same waits"


def test_a_dozen_workers_that_lose_their_queue_together_reconnect_spread_out():
    """Without jitter they come back in lockstep; with it, at twelve different moments,
    the first one later than without jitter (the cost), none later than 1.5 x the wait."""
    def first_reconnects(jitter: float) -> list[float]:
        times = []
        for seed in range(12):
            liveness = WorkerLiveness(1.0, 3, 1.0, 8.0, jitter=jitter, rng=random.Random(seed))
            liveness.on_connect(0.0)
            while liveness.tick(3.0) != "disconnect":
                pass
            times.append(liveness.next_wakeup())
        return times

    assert set(first_reconnects(0.0)) == {4.0}, "lockstep: all twelve at once"
    spread = sorted(first_reconnects(0.5))
    assert len(set(spread)) == 12 and 4.0 < spread[0] and spread[-1] <= 4.5
    assert spread[-1] - spread[0] > 0.25, "spread over more than half the jitter's range"


def test_the_jitter_comes_from_the_rng_it_is_given():
    class Fixed(random.Random):
        def random(self) -> float:
            return 0.5

    liveness = WorkerLiveness(1.0, 1, 2.0, 8.0, jitter=0.5, rng=Fixed())
    assert waits_while_the_queue_is_gone(liveness, 3) == [2.5, 5.0, 8.0 * 1.25]


def test_the_worker_refuses_nonsense_timings():
    with pytest.raises(ValueError):
        WorkerLiveness(reconnect_min=2.0, reconnect_max=1.0)
    with pytest.raises(ValueError):
        WorkerLiveness(jitter=1.5)
    with pytest.raises(ValueError):
        QueueState(heartbeat_interval=0)


# -- random event sequences ----------------------------------------------------------------
WORKERS = [b"w1", b"w2", b"w3"]
events = st.lists(st.one_of(
    st.tuples(st.just("ready"), st.sampled_from(WORKERS)),
    st.tuples(st.just("heartbeat"), st.sampled_from(WORKERS)),
    st.tuples(st.just("reply"), st.sampled_from(WORKERS)),
    st.tuples(st.just("garbage"), st.sampled_from(WORKERS)),
    st.tuples(st.just("request"), st.just(b"")),
    st.tuples(st.just("advance"), st.sampled_from([0.1, 0.5, 1.0, 2.9, 3.0, 4.0])),
    st.tuples(st.just("tick"), st.just(b"")),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_random_event_sequences_keep_every_promise(script):
    """Workers that echo what they hold, in order, talk or fall silent at random; requests
    past the waiting and byte limits are refused, a worker busy past `max_busy` dropped."""
    state = QueueState(heartbeat_interval=1.0, liveness=3, now=0.0, max_waiting=3,
                       max_queued_bytes=12, max_queued_bytes_per_client=8, max_busy=2.0)
    now = 0.0
    submitted, answered, refused = [], [], []
    holding = {name: deque() for name in WORKERS}  # what each worker was sent, in order
    last_heard = {}
    for kind, arg in script:
        if kind == "advance":
            now += arg
        elif kind == "tick":  # the socket loop ticks by next_wakeup(), not after every event
            state.tick(now)
        elif kind == "request":
            body = str(len(submitted)).encode()
            submitted.append(body)
            rejected = state.rejected
            state.on_request(request(body), now)  # queued if nobody is ready
            if state.rejected > rejected:
                refused.append(body)
        else:
            name = arg
            if kind == "ready":
                holding[name].clear()  # a (re)connecting worker has lost what it held
                message = [PPP_READY]
            elif kind == "heartbeat":
                message = [PPP_HEARTBEAT]
            elif kind == "reply":
                message = holding[name].popleft() if holding[name] else request(b"stale")
            else:
                message = [b"\x07"]
            last_heard[name] = now
            state.on_worker_message([name, *message], now)

        for name, message in state.to_workers:
            if message == HEARTBEAT:
                continue
            assert last_heard[name] + 3.0 > now, "an expired worker got work"
            assert not holding[name], "a worker got a second request"
            holding[name].append(message)
        state.to_workers.clear()
        answered += [reply[-1] for reply in state.to_clients]
        state.to_clients.clear()

        held = [w.request[-1] for w in state.workers.values() if w.request is not None]
        assert len(held) == len(set(held)), "a request is held by two workers at once"
        assert all(state.workers[name].request is None for name in state.ready), \
            "a busy worker is on the ready list"
        assert not (state.ready and state.pending), "a request waits beside a ready worker"
        waiting = [r[-1] for r in state.pending]
        # requests a lost worker held come back past the limits: at most one per worker
        assert len(waiting) <= 3 + len(WORKERS)
        assert state.held.total == sum(map(size_of, state.pending))
        assert state.held.total <= 12 + 4 * 5, "over the byte budget (one per worker back)"
        accounted = held + waiting + answered + refused
        assert set(accounted) <= set(submitted) and len(set(accounted)) == len(accounted)
        assert len(accounted) + state.overdue == len(submitted), "a request vanished"
