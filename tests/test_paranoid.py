"""Paranoid Pirate on real sockets: failures detected in bounded time, and RFC 6 interop.

Timings: heartbeats every 50 ms and liveness 3, so a silent peer is declared dead 150 ms
after it was last heard. Bounds allow generous scheduling slack for a loaded 2-core machine.
"""

import time

import zmq

from pirate_helpers import (
    Actor,
    Faults,
    LazyPirateClient,
    ParanoidQueue,
    ParanoidWorker,
    Trace,
)
from pirate_helpers.endpoints import bind
from pirate_helpers.paranoid import JITTER

INTERVAL, LIVENESS = 0.05, 3
SILENCE = INTERVAL * LIVENESS
SLACK = 0.15  # scheduling delay allowed on a loaded machine


def queue(trace, **options):
    return ParanoidQueue(heartbeat_interval=INTERVAL, liveness=LIVENESS, trace=trace,
                         **options).start()


def worker(name, endpoint, trace, **options):
    options.setdefault("reconnect_min", 0.05)
    return ParanoidWorker(name, connect=endpoint, heartbeat_interval=INTERVAL,
                          liveness=LIVENESS, trace=trace, **options).start()


def wait_for(trace, condition, timeout=5.0):
    """Every event (heartbeats every 50 ms included) checks the condition again: no sleeps."""
    assert trace.wait_for(condition, timeout), "condition not met in time"


def first(trace, actor, kind):
    return next(e for e in trace.events if e.actor == actor and e.kind == kind)


def test_requests_and_replies_pass_unchanged_with_their_envelope():
    trace = Trace()
    q = queue(trace)
    workers = [worker(f"w{n}", q.backend_endpoint, trace) for n in (1, 2)]
    wait_for(trace, lambda: len(q.state.ready) == 2)  # else w1 may take all six
    with LazyPirateClient(q.frontend_endpoint, timeout=2, trace=trace) as client:
        for n in range(6):
            assert client.request(b"x", b"", str(n).encode()) == [b"x", b"", str(n).encode()]
    assert {w.answered for w in workers} == {3}  # least recently used: they take turns
    assert q.state.rejected == 0
    assert trace.of("client", "send")[0].peer == "queue"  # the client names the queue
    for w in workers:
        w.stop()
    q.stop()


def test_a_crashed_worker_is_found_gone_at_the_next_heartbeat_and_its_request_answered():
    trace = Trace()
    q = queue(trace)
    crashing = worker("w1", q.backend_endpoint, trace, faults=Faults(crash_after=0))
    wait_for(trace, lambda: q.state.ready)
    healthy = worker("w2", q.backend_endpoint, trace)
    with LazyPirateClient(q.frontend_endpoint, timeout=3, retries=1, trace=trace) as client:
        assert client.request(b"held by w1") == [b"held by w1"]
    crashed = first(trace, "w1", "crash").t
    gone = first(trace, "queue", "unreachable").t  # ROUTER_MANDATORY: the send failed
    assert gone - crashed <= INTERVAL + SLACK, "one heartbeat interval, not liveness of them"
    assert trace.count("purge", "queue") == 0
    assert ("requeue", "held by w1 from w1") in [(e.kind, e.detail) for e in trace.events]
    assert client.timeouts == 0 and healthy.answered == 1
    healthy.stop()
    crashing.stop()
    q.stop()


def test_a_frozen_worker_is_purged_its_late_reply_rejected_and_it_comes_back():
    trace = Trace()
    q = queue(trace)
    frozen = worker("w1", q.backend_endpoint, trace, faults=Faults(freeze_at=1, freeze_s=0.5))
    wait_for(trace, lambda: q.state.ready)
    healthy = worker("w2", q.backend_endpoint, trace)
    with LazyPirateClient(q.frontend_endpoint, timeout=3, retries=1, trace=trace) as client:
        assert client.request(b"a") == [b"a"]  # answered by w2 while w1 is frozen
    froze = first(trace, "w1", "freeze").t
    assert first(trace, "queue", "purge").t - froze <= SILENCE + SLACK
    wait_for(trace, lambda: frozen.reconnects == 1)  # unheard by the queue, it backs off, READY
    # awake, it first read the heartbeats sent while it was frozen: the queue it gave up on
    # had been silent for a full SILENCE since then, not merely during its own freeze
    assert first(trace, "w1", "backoff").t - froze >= 0.5 + SILENCE - 0.02
    assert frozen.answered == 1  # it did the work too: at-least-once, one reply delivered
    assert any(e.kind == "reject" and "unknown worker w1: a" in e.detail for e in trace.events)
    wait_for(trace, lambda: frozen.identity in q.state.ready)
    assert client.answered == 1 and client.mismatched == 0
    healthy.stop()
    frozen.stop()
    q.stop()


def test_work_never_blocks_heartbeats_and_the_queue_heartbeats_busy_workers():
    trace = Trace()
    q = queue(trace)
    slow = worker("w1", q.backend_endpoint, trace, work_s=0.6)
    wait_for(trace, lambda: q.state.ready)
    with LazyPirateClient(q.frontend_endpoint, timeout=3, trace=trace) as client:
        assert client.request(b"slow") == [b"slow"]
    sent = next(e.t for e in trace.of("queue", "send") if e.detail == "slow")
    replied = next(e.t for e in trace.of("queue", "recv") if e.detail == "slow")
    beats = [e for e in trace.events if e.detail == "HEARTBEAT" and sent < e.t < replied]
    from_worker = [e for e in beats if e.kind == "recv"]
    to_worker = [e for e in beats if e.kind == "send"]
    assert len(from_worker) >= 0.6 / INTERVAL / 2 and len(to_worker) >= 0.6 / INTERVAL / 2
    assert trace.count("purge") == trace.count("backoff") == 0
    slow.stop()
    q.stop()


def test_a_worker_notices_a_dead_queue_backs_off_and_returns_when_it_is_back():
    trace = Trace()
    q = queue(trace)
    w = worker("w1", q.backend_endpoint, trace, reconnect_min=0.05, reconnect_max=0.2)
    wait_for(trace, lambda: q.state.ready)
    frontend, backend = q.frontend_endpoint, q.backend_endpoint
    q.stop()
    stopped = trace.add("test", "queue stopped").t
    wait_for(trace, lambda: trace.count("backoff") >= 4)
    waits = [float(e.detail.split("in ")[1].removesuffix(" s"))
             for e in trace.of("w1", "backoff")[:4]]
    for wait, doubled in zip(waits, [0.05, 0.1, 0.2, 0.2], strict=True):  # up to the maximum
        assert doubled <= wait <= doubled * (1 + JITTER) + 0.001, waits  # jitter: up to half more
    assert first(trace, "w1", "backoff").t - stopped <= SILENCE + SLACK
    again = queue(trace, frontend=frontend, backend=backend)  # same endpoints, same ports
    wait_for(trace, lambda: again.state.ready)
    with LazyPirateClient(frontend, timeout=2, trace=trace) as client:
        assert client.request(b"back") == [b"back"]
    assert w.liveness.backoff == 0.05  # heard from the queue: the wait is reset
    w.stop()
    again.stop()


def test_garbage_on_both_sides_is_rejected_and_counted_and_the_queue_keeps_serving():
    trace = Trace()
    q = queue(trace)
    w = worker("w1", q.backend_endpoint, trace)
    with zmq.Context() as ctx:
        ctx.linger = 0
        rogue = ctx.socket(zmq.DEALER)
        rogue.connect(q.backend_endpoint)
        rogue.send_multipart([b"not", b"ready"])
        sloppy = ctx.socket(zmq.DEALER)
        sloppy.connect(q.frontend_endpoint)
        wait_for(trace, lambda: q.state.ready)
        sloppy.send(b"no envelope")
        wait_for(trace, lambda: q.state.rejected == 2)
        with LazyPirateClient(q.frontend_endpoint, timeout=2) as client:
            assert client.request(b"fine") == [b"fine"]
    assert trace.count("reject") == 2 and q.running
    w.stop()
    q.stop()


# -- interop with RFC 6 peers written from the spec's text ---------------------------------
class MinimalRfc6Worker(Actor):
    """From RFC 6 alone: READY first, HEARTBEAT every interval, and a REPLY to each REQUEST
    with the same address envelope. Any command counts as a heartbeat; nothing else."""

    def __init__(self, name, endpoint):
        super().__init__(name)
        self.endpoint = endpoint
        self.commands = []

    def setup(self):
        self.dealer = self.socket(zmq.DEALER)
        self.dealer.connect(self.endpoint)
        self.dealer.send(b"\x01")

    def run(self):
        next_beat = time.monotonic() + INTERVAL
        while True:
            if self.poll([self.dealer], max(0.0, next_beat - time.monotonic())):
                message = self.dealer.recv_multipart()
                if len(message) == 1:
                    self.commands.append(message[0])
                else:
                    self.dealer.send_multipart(message)
            if time.monotonic() >= next_beat:
                self.dealer.send(b"\x02")
                next_beat += INTERVAL


def test_our_queue_serves_a_minimal_rfc6_worker():
    trace = Trace()
    q = queue(trace)
    other = MinimalRfc6Worker("rfc6-worker", q.backend_endpoint).start()
    with LazyPirateClient(q.frontend_endpoint, timeout=2) as client:
        for n in range(3):
            assert client.request(str(n).encode(), b"2nd frame") == [str(n).encode(),
                                                                       b"2nd frame"]
    wait_for(trace, lambda: len(other.commands) >= 2)
    assert set(other.commands) == {b"\x02"}  # the queue's heartbeats, one byte each
    assert q.state.rejected == 0
    other.stop()
    q.stop()


def test_our_worker_speaks_rfc6_to_a_minimal_queue():
    """The test is the queue: a ROUTER that checks every frame the worker sends."""
    with zmq.Context() as ctx:
        ctx.linger = 0
        router = ctx.socket(zmq.ROUTER)
        router.router_handover = 1  # the worker reconnects under the same identity
        endpoint = bind(router)
        ours = worker("w1", endpoint, Trace(), work_s=0.3)
        w1 = ours.identity  # the name plus a random suffix: unique on the wire
        assert w1.startswith(b"w1~")

        def receive():
            assert router.poll(2000), "the worker said nothing"
            return router.recv_multipart()

        assert receive() == [w1, b"\x01"]  # READY first, one frame, one byte
        request = [w1, b"client-7", b"", b"body", b"\x00more"]
        router.send_multipart(request)
        beats = 0
        while (message := receive()) == [w1, b"\x02"]:
            beats += 1
            router.send_multipart([w1, b"\x02"])
        assert message == request  # the reply: envelope and every body frame unchanged
        assert beats >= 3  # heartbeats kept flowing while it worked for 0.3 s
        started = time.monotonic()  # now this queue falls silent: RFC 6 says READY again
        while (message := receive()) == [w1, b"\x02"]:
            pass
        assert message == [w1, b"\x01"]
        # silent since our last heartbeat (< 1 interval before), then a 0.05 s back-off
        assert SILENCE - INTERVAL <= time.monotonic() - started <= SILENCE + 0.05 + SLACK
        ours.stop()
