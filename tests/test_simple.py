"""Simple Pirate: the LRU state machine alone, then on real sockets with faults, then the
article's proxy losing what our queue keeps."""

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from pirate_helpers import Faults, LazyClient, LazyPirateClient, LazyServer, Trace, stop_all
from pirate_helpers.simple import (
    ArticleClient,
    ArticleProxy,
    Dispatch,
    LruQueue,
    Rejected,
    Request,
    SimplePirateQueue,
    SimpleWorker,
    run_load,
)


@pytest.fixture(autouse=True)
def stop_actors():
    """Each test starts a small system; stop all of it (re-raising any actor's error)."""
    yield
    stop_all()


def request(n: int) -> Request:
    return Request((f"client{n}".encode(), b""), (str(n).encode(),))


# -- the state machine, no sockets ----------------------------------------------------------
def test_a_request_waits_until_a_worker_is_ready():
    lru = LruQueue()
    assert lru.request(request(1)) is None
    assert lru.worker_ready(b"w1") == Dispatch(b"w1", request(1))
    assert lru.busy == {b"w1": request(1)} and not lru.ready and not lru.waiting


def test_the_worker_that_waited_longest_gets_the_next_request():
    lru = LruQueue()
    lru.worker_ready(b"a")
    lru.worker_ready(b"b")
    assert lru.request(request(1)).worker == b"a"
    answer, dispatch = lru.reply(b"a", request(1).frames)
    assert answer == request(1) and dispatch is None
    assert list(lru.ready) == [b"b", b"a"]
    assert lru.request(request(2)).worker == b"b"  # not a again: b has waited longer


def test_a_busy_worker_never_gets_a_second_request():
    lru = LruQueue()
    lru.worker_ready(b"only")
    lru.request(request(1))
    assert lru.request(request(2)) is None
    assert list(lru.waiting) == [request(2)]
    _, dispatch = lru.reply(b"only", request(1).frames)
    assert dispatch == Dispatch(b"only", request(2))


def test_ready_from_a_busy_worker_means_it_restarted_and_lost_its_request():
    lru = LruQueue()
    lru.worker_ready(b"w")
    lru.request(request(1))
    assert lru.worker_ready(b"w") is None
    assert lru.lost == 1 and list(lru.ready) == [b"w"] and not lru.busy


def test_ready_again_from_an_idle_worker_moves_it_to_the_back_without_a_duplicate():
    lru = LruQueue()
    for worker in (b"a", b"b", b"a"):
        lru.worker_ready(worker)
    assert list(lru.ready) == [b"b", b"a"]


@pytest.mark.parametrize(
    "frames",
    [[b"client"], [b"client", b"body"], [b"client", b""], [b"", b"body"]],
    ids=["address only", "no delimiter", "no body", "no address"],
)
def test_a_request_without_address_delimiter_and_body_is_rejected(frames):
    with pytest.raises(Rejected):
        Request.parse(frames)


def test_multi_hop_envelopes_and_empty_bodies_are_kept_whole():
    parsed = Request.parse([b"hop1", b"hop2", b"", b"", b"x"])
    assert parsed.envelope == (b"hop1", b"hop2", b"") and parsed.body == (b"", b"x")


def test_replies_that_do_not_match_what_the_worker_holds_are_rejected_without_change():
    lru = LruQueue()
    with pytest.raises(Rejected, match="holds no request"):
        lru.reply(b"stranger", request(1).frames)
    lru.worker_ready(b"w")
    lru.request(request(1))
    with pytest.raises(Rejected, match="does not hold"):
        lru.reply(b"w", request(2).frames)
    with pytest.raises(Rejected):
        lru.reply(b"w", [b"no delimiter"])
    assert lru.busy == {b"w": request(1)} and lru.answered == 0


def test_the_waiting_list_is_bounded():
    lru = LruQueue(max_waiting=2)
    lru.request(request(1))
    lru.request(request(2))
    with pytest.raises(Rejected, match="2 requests waiting"):
        lru.request(request(3))
    assert len(lru.waiting) == 2


def test_waiting_requests_are_bounded_in_bytes_per_client_and_in_all():
    lru = LruQueue(max_queued_bytes=100, max_queued_bytes_per_client=60)
    big = Request((b"c1", b""), (b"x" * 28,))  # 30 bytes with its envelope
    lru.request(big)
    lru.request(big)
    with pytest.raises(Rejected, match="over the 60-byte limit per client"):
        lru.request(big)
    other = Request((b"c2", b""), (b"y" * 48,))
    with pytest.raises(Rejected, match="over the 100-byte limit"):
        lru.request(other)
    assert lru.held.refused == 2 and lru.held.total == 60
    lru.worker_ready(b"w")  # given out: no longer waiting
    assert lru.held.total == 30
    lru.request(other)
    assert lru.held.by_client == {b"c1": 30, b"c2": 50}
    lru.unreachable(b"w")  # back in line without asking: it was held before
    assert lru.held.total == 110 and [r.envelope[0] for r in lru.waiting] == [b"c1"] * 2 + [b"c2"]


WORKERS = [f"w{i}".encode() for i in range(4)]
events = st.lists(
    st.tuples(st.sampled_from(["start", "request", "reply", "crash"]), st.sampled_from(WORKERS)),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_no_worker_holds_two_requests_none_vanishes_and_lru_order_holds(steps):
    """Workers start (or restart), crash, and answer; requests arrive. The queue cannot see a
    crash: whatever it sends to a dead worker is lost with it, and nothing else is."""
    lru = LruQueue()
    holding: dict[bytes, Request | None] = {}  # live workers and what each really holds
    ready_order: list[bytes] = []  # the queue's ready list as a model: who waited longest
    waiting_order: list[Request] = []
    accepted: list[Request] = []
    answered: list[Request] = []
    lost_with_worker: list[Request] = []

    def handle(dispatch: Dispatch | None) -> None:
        if dispatch is None:
            return
        assert dispatch.worker == ready_order.pop(0), "not the least recently used worker"
        assert dispatch.request == waiting_order.pop(0), "requests are served in order"
        if dispatch.worker in holding:
            assert holding[dispatch.worker] is None, "a busy worker got a second request"
            holding[dispatch.worker] = dispatch.request
        else:
            lost_with_worker.append(dispatch.request)  # sent to a dead worker

    for kind, worker in steps:
        if kind == "start" and worker not in holding:
            if worker in ready_order:
                ready_order.remove(worker)
            ready_order.append(worker)
            holding[worker] = None
            handle(lru.worker_ready(worker))
        elif kind == "request":
            accepted.append(request(len(accepted) + 1))
            waiting_order.append(accepted[-1])
            handle(lru.request(accepted[-1]))
        elif kind == "reply" and holding.get(worker) is not None:
            answer, dispatch = lru.reply(worker, holding[worker].frames)
            answered.append(answer)
            holding[worker] = None
            ready_order.append(worker)
            handle(dispatch)
        elif kind == "crash" and worker in holding:
            if holding.pop(worker) is not None:
                lost_with_worker.append(lru.busy[worker])

        assert not (lru.ready and lru.waiting), "a ready worker and a waiting request unpaired"
        held = [r for r in holding.values() if r is not None]
        kept = answered + list(lru.waiting) + held + lost_with_worker
        assert sorted(kept, key=str) == sorted(accepted, key=str), "a request vanished"
        assert len(accepted) == lru.answered + len(lru.waiting) + len(lru.busy) + lru.lost
        assert list(lru.ready) == ready_order


# -- real sockets ---------------------------------------------------------------------------
def start_queue(*workers: dict, trace: Trace | None = None):
    """A queue and its workers, returned once every worker is on the ready list."""
    trace = trace if trace is not None else Trace()
    queue = SimplePirateQueue(trace=trace).start()
    started = [SimpleWorker(connect=queue.backend_endpoint, trace=trace, **options).start()
               for options in workers]
    assert queue.wait_for_workers(len(started)), queue.ready_workers()
    return queue, started


def test_a_worker_crashing_mid_request_costs_one_retry_and_nothing_is_lost():
    trace = Trace()
    queue, (doomed, _) = start_queue({"name": "doomed", "faults": Faults(crash_after=1)},
                                     {"name": "steady"}, trace=trace)
    client = LazyClient(queue.frontend_endpoint, requests=8, timeout=0.3, trace=trace).start()
    assert client.join(10)
    assert client.answered == [str(n).encode() for n in range(1, 9)]
    assert doomed.crashed and client.client.timeouts == 1
    # the queue still thinks the dead worker holds its request, so it never hands it another
    assert list(queue.busy_workers()) == ["doomed"] and queue.ready_workers() == ["steady"]
    assert trace.count("crash") == 1 and queue.rejected == 0


def test_a_worker_that_dies_idle_is_found_gone_at_the_send_and_costs_no_timeout():
    queue, (_, second) = start_queue({"name": "w1"}, {"name": "w2"})
    second.stop()  # leaves while idle: it tells the queue nothing
    assert queue.wait_for_disconnects(1), "libzmq saw the connection close"
    assert sorted(queue.ready_workers()) == ["w1", "w2"], "the queue's list does not know yet"
    with LazyPirateClient(queue.frontend_endpoint, timeout=0.3) as client:
        for n in range(1, 5):
            assert client.request(str(n).encode()) == [str(n).encode()]
    assert client.timeouts == 0, "ROUTER_MANDATORY: the send to w2 failed, w1 got the request"
    assert queue.lru.unreachable_workers == 1
    assert queue.ready_workers() == ["w1"] and queue.busy_workers() == {}


def test_a_dropped_request_makes_the_worker_rejoin_and_the_queue_count_it_lost():
    trace = Trace()
    queue, (worker,) = start_queue({"name": "w1", "faults": Faults(drop={1})}, trace=trace)
    with LazyPirateClient(queue.frontend_endpoint, timeout=0.3, trace=trace) as client:
        assert client.request(b"x") == [b"x"]
    assert worker.dropped == 1 and client.timeouts == 1
    assert queue.lru.lost == 1 and trace.count("lost") == 1


def test_a_frozen_workers_late_reply_is_dropped_and_the_worker_rejoins_the_line():
    trace = Trace()
    queue, (frozen, _) = start_queue(
        {"name": "frozen", "faults": Faults(freeze_at=1, freeze_s=0.5)}, {"name": "steady"},
        trace=trace,
    )
    with LazyPirateClient(queue.frontend_endpoint, timeout=0.2) as client:
        replies = [client.request(str(n).encode()) for n in range(1, 5)]
    assert replies == [[b"1"], [b"2"], [b"3"], [b"4"]] and client.timeouts == 1
    assert queue.wait_until(lambda: frozen.answered == 1 and not queue.lru.busy, 5)
    assert sorted(queue.ready_workers()) == ["frozen", "steady"] and queue.rejected == 0
    assert trace.count("freeze") == 1


def test_requests_wait_for_a_worker_that_joins_later():
    queue = SimplePirateQueue().start()
    client = LazyClient(queue.frontend_endpoint, requests=3, timeout=5).start()
    assert queue.wait_until(lambda: len(queue.lru.waiting) == 1, 5)
    SimpleWorker("late", connect=queue.backend_endpoint).start()
    assert client.join(5)
    assert client.answered == [b"1", b"2", b"3"] and client.client.timeouts == 0


def test_garbage_on_both_sockets_is_rejected_and_counted_and_the_queue_keeps_serving():
    trace = Trace()
    queue, _ = start_queue({"name": "w1"}, trace=trace)
    with zmq.Context() as ctx:
        ctx.linger = 0
        from_client = ctx.socket(zmq.DEALER)
        from_client.connect(queue.frontend_endpoint)
        rogue = ctx.socket(zmq.DEALER)
        rogue.routing_id = b"rogue"
        rogue.connect(queue.backend_endpoint)
        for garbage in ([b"no delimiter"], [b""], [b"\xff", b"x"]):
            from_client.send_multipart(garbage)
        for garbage in ([b"not from REQ"], [b"", b"hello"], [b"", b"c", b"", b"x"], [b""]):
            rogue.send_multipart(garbage)
        assert queue.wait_until(lambda: queue.rejected == 7, 5), trace
    assert queue.running and queue.ready_workers() == ["w1"] and not queue.lru.waiting
    assert trace.count("reject") == 7
    with LazyPirateClient(queue.frontend_endpoint, timeout=1) as client:
        assert client.request(b"still serving") == [b"still serving"]


# -- the article's version ------------------------------------------------------------------
def start_proxy(*workers: dict, trace: Trace):
    proxy = ArticleProxy(trace=trace).start()
    started = [LazyServer(connect=proxy.backend_endpoint, trace=trace, **options).start()
               for options in workers]
    assert proxy.wait_for_workers(len(started))
    return proxy, started


def test_the_article_proxy_loses_the_request_a_dying_worker_held():
    trace = Trace()
    proxy, (doomed, steady) = start_proxy(
        {"name": "doomed", "faults": Faults(crash_after=1)}, {"name": "steady"}, trace=trace
    )
    client = ArticleClient(proxy.frontend_endpoint, requests=6, timeout=0.3, trace=trace)
    assert client.start().join(10)
    assert doomed.crashed and len(client.dropped) == 1 and client.dropped[0] in (b"3", b"4")
    assert len(client.answered) == 5 and steady.answered == 4
    assert client.client.sent == 6, "the article's client never resends"


def served_by_slow_worker(endpoint: str, slow: LazyServer | SimpleWorker, make_client) -> int:
    """Three clients at once, two requests each; how many the slow worker was handed."""
    clients = [make_client(endpoint, f"client{n}").start() for n in range(3)]
    assert all(client.join(10) for client in clients)
    assert sum(len(client.answered) for client in clients) == 6
    return slow.received


def test_round_robin_hands_half_the_work_to_a_busy_worker_and_lru_does_not():
    trace = Trace()
    proxy, (slow, _) = start_proxy({"name": "slow", "work_s": 0.25}, {"name": "fast"},
                                   trace=trace)
    share = served_by_slow_worker(
        proxy.frontend_endpoint, slow,
        lambda endpoint, name: ArticleClient(endpoint, name, requests=2, timeout=5))
    assert share == 3  # DEALER deals strictly in turn, however busy the slow worker is
    queue, (slow, _) = start_queue({"name": "slow", "work_s": 0.25}, {"name": "fast"})
    share = served_by_slow_worker(
        queue.frontend_endpoint, slow,
        lambda endpoint, name: LazyClient(endpoint, name, requests=2, timeout=5))
    assert share <= 2  # the fast worker is ready again long before the slow one


def test_the_same_crashes_lose_requests_through_the_proxy_and_none_through_the_lru_queue():
    schedule = {"workers": 2, "requests": 20, "crash_rate": 0.1, "timeout": 0.4, "seed": 4}
    article = run_load("article", **schedule)
    lru = run_load("lru", **schedule, retries=5)  # 5 crashes on one request: 1e-5
    assert article.crashes >= 1 and article.lost == article.crashes  # one lost per crash
    assert lru.crashes >= 1 and lru.lost == 0 and lru.answered == 20


def test_a_worker_whose_queue_died_says_ready_to_the_restarted_queue():
    """Moved from lesson 03: the queue's death closes the worker's connection; the worker
    starts over on a fresh socket and a queue restarted on the same endpoints has it back."""
    trace = Trace()
    first_queue = SimplePirateQueue("own-queue", trace=trace).start()
    survivor = SimpleWorker("survivor", connect=first_queue.backend_endpoint, trace=trace).start()
    assert first_queue.wait_for_workers(1)
    endpoints = {"frontend": first_queue.frontend_endpoint,
                 "backend": first_queue.backend_endpoint}
    first_queue.stop()
    assert trace.wait_for(lambda: survivor.reconnects >= 1, 5), "the worker saw it go"
    again = SimplePirateQueue("own-queue", trace=trace, **endpoints).start()
    assert again.wait_for_workers(1)
    with LazyPirateClient(again.frontend_endpoint, timeout=1, trace=trace) as client:
        assert client.request(b"still there?") == [b"still there?"]
        assert client.timeouts == 0
    assert survivor.reconnects == 1 and trace.count("reconnect", "survivor") == 1
