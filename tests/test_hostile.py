"""Hostile peers: random, malformed, oversized and vanishing messages never hurt a loop.

Each fuzz test throws random messages (frame counts, sizes, bytes, commands in the wrong
state, replies never owed) at one loop that reads from the network, then checks that a
correct request is still answered.
"""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pirate_helpers import (
    LazyPirateClient,
    LazyServer,
    ParanoidQueue,
    ParanoidWorker,
    Trace,
    stop_all,
)
from pirate_helpers.endpoints import MAX_FRAMES, guard, receive
from pirate_helpers.paranoid import PPP_HEARTBEAT, PPP_READY, describe
from pirate_helpers.simple import READY, SimplePirateQueue, SimpleWorker
from pirate_helpers.trace import show_bytes

FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
special = st.sampled_from([b"", PPP_READY, PPP_HEARTBEAT, b"\x03", b"\x05", b"MDPW01"])
big = st.builds(lambda size, byte: bytes([byte]) * size, st.integers(1000, 200_000),
                st.integers(0, 255))
frame = st.one_of(special, st.binary(max_size=32), big)
many_frames = st.integers(MAX_FRAMES - 2, MAX_FRAMES + 10).map(lambda n: [b"f"] * n)
message = st.one_of(st.lists(frame, min_size=1, max_size=6), many_frames)
messages = st.lists(message, min_size=1, max_size=6)


def context() -> zmq.Context:
    ctx = zmq.Context()
    ctx.linger = 0
    return ctx


def peer(ctx: zmq.Context, kind: int, endpoint: str, identity: bytes | None = None):
    sock = guard(ctx.socket(kind))
    if identity is not None:
        sock.routing_id = identity
    sock.connect(endpoint)
    return sock


def answered(endpoint: str, body: bytes = b"still here") -> bool:
    with LazyPirateClient(endpoint, timeout=0.5, retries=4) as client:
        return client.request(body) == [body]


def test_describing_a_10_mb_frame_reads_only_a_prefix():
    huge = [b"id", b"", b"x" * 10_000_000]
    started = time.process_time()
    for _ in range(100):
        shown, described = show_bytes(huge), describe(huge)
    per_call = (time.process_time() - started) / 100
    assert per_call < 0.001, f"{per_call * 1000:.2f} ms per description of a 10 MB frame"
    assert shown == "id||" + "x" * 23 + "…" and described == "x" * 23 + "…"
    assert show_bytes([b"a"] * 20).endswith("(+12 frames)")


def test_receive_refuses_a_message_with_too_many_frames_and_reads_the_next():
    ctx = context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://frames")
    push.connect("inproc://frames")
    push.send_multipart([b"x"] * (MAX_FRAMES + 1))
    push.send_multipart([b"ok", b"fine"])
    assert pull.poll(1000)
    assert receive(pull) is None
    assert receive(pull) == [b"ok", b"fine"]
    ctx.destroy()


def fuzz_both_sides(queue) -> None:
    """Random messages into a queue's frontend and backend (as a client and as a worker that
    then leaves), each batch followed by a correct request that must be answered."""
    ctx = context()
    try:
        @FUZZ
        @given(to_frontend=messages, to_backend=messages)
        def probe(to_frontend, to_backend):
            client_side = peer(ctx, zmq.DEALER, queue.frontend_endpoint)
            worker_side = peer(ctx, zmq.DEALER, queue.backend_endpoint, b"fuzzer")
            for frames in to_frontend:
                client_side.send_multipart(frames)
            for frames in to_backend:
                worker_side.send_multipart(frames)
            disconnects = queue.disconnects
            client_side.close()
            worker_side.close()
            assert queue.wait_for_disconnects(disconnects + 1)
            assert answered(queue.frontend_endpoint)

        probe()
    finally:
        ctx.destroy()


def test_simple_queue_survives_random_messages_on_both_sides():
    queue = SimplePirateQueue("fuzz-queue").start()
    worker = SimpleWorker("fuzz-worker", connect=queue.backend_endpoint).start()
    assert queue.wait_for_workers(1)
    fuzz_both_sides(queue)
    assert queue.rejected > 0 and queue.running and worker.running
    stop_all()


def test_paranoid_queue_survives_random_messages_on_both_sides():
    queue = ParanoidQueue("fuzz-queue", heartbeat_interval=0.05, trace_messages=False).start()
    worker = ParanoidWorker("fuzz-worker", connect=queue.backend_endpoint,
                            heartbeat_interval=0.05).start()
    assert queue.trace.wait_for(lambda: queue.state.ready, 5)
    fuzz_both_sides(queue)
    assert queue.state.rejected > 0 and queue.running and worker.running
    stop_all()


def test_lazy_server_survives_random_messages():
    server = LazyServer("fuzz-server").start()
    ctx = context()
    try:
        @FUZZ
        @given(sent=messages)
        def probe(sent):
            hostile = peer(ctx, zmq.DEALER, server.endpoint)
            for frames in sent:
                hostile.send_multipart(frames)
            hostile.close()
            assert answered(server.endpoint)

        probe()
        assert server.running
    finally:
        ctx.destroy()
        server.stop()


class FakeQueue:
    """A ROUTER the worker under test connects to: it sends what the test says."""

    def __init__(self, ctx: zmq.Context) -> None:
        self.router = guard(ctx.socket(zmq.ROUTER))
        self.router.router_mandatory = 1
        self.router.router_handover = 1  # as our queues: a reconnecting worker takes over
        self.router.bind("tcp://127.0.0.1:*")
        self.endpoint = self.router.last_endpoint.decode()

    def next_message(self, timeout: float = 5.0) -> list[bytes]:
        assert self.router.poll(int(timeout * 1000)), "the worker sent nothing"
        return self.router.recv_multipart()

    def send(self, frames: list[bytes]) -> None:
        try:
            self.router.send_multipart(frames)
        except zmq.ZMQError:  # the worker's connection is gone this moment: its problem
            pass

    def request_answered(self, identity: bytes, envelope_first: bool) -> bool:
        """Send one proper request until its reply comes back (a worker that reconnected
        says READY again first). REQ workers need the delimiter ROUTER adds for REQ."""
        request = [b"client-7", b"", b"still here"]
        wire = [identity, b"", *request] if envelope_first else [identity, *request]
        for _ in range(6):
            self.send(wire)
            deadline = time.monotonic() + 1.0
            while (left := deadline - time.monotonic()) > 0:
                if not self.router.poll(int(left * 1000)):
                    break
                reply = self.router.recv_multipart()
                if reply[-len(request):] == request:
                    return True
                # a READY or heartbeat: the worker is (back) here, send again
                if reply[-1:] in ([READY], [PPP_READY]):
                    break
        return False


def test_simple_worker_recovers_from_a_malformed_message_and_keeps_serving():
    ctx = context()
    fake = FakeQueue(ctx)
    trace = Trace()
    worker = SimpleWorker("w1", connect=fake.endpoint, trace=trace).start()
    try:
        assert fake.next_message() == [worker.identity, b"", READY]
        fake.send([worker.identity, b"x"])  # no delimiter: libzmq drops the REQ's connection
        assert fake.next_message() == [worker.identity, b"", READY], "a fresh socket, READY again"
        assert worker.reconnects == 1 and trace.count("reconnect", "w1") == 1
        for _ in range(100):
            assert fake.request_answered(worker.identity, envelope_first=True)
        assert worker.answered == 100
    finally:
        worker.stop()
        ctx.destroy()


def test_simple_worker_survives_random_messages():
    ctx = context()
    fake = FakeQueue(ctx)
    trace = Trace(keep=40)
    worker = SimpleWorker("w1", connect=fake.endpoint, trace=trace).start()
    try:
        assert fake.next_message()[-1] == READY

        @FUZZ
        @given(sent=messages)
        def probe(sent):
            for frames in sent:
                fake.send([worker.identity, *frames])
            assert fake.request_answered(worker.identity, envelope_first=True), str(trace)

        probe()
        assert worker.running
    finally:
        worker.stop()
        ctx.destroy()


def test_paranoid_worker_survives_random_messages():
    ctx = context()
    fake = FakeQueue(ctx)
    worker = ParanoidWorker("w1", connect=fake.endpoint, heartbeat_interval=0.05,
                            liveness=100).start()
    try:
        assert fake.next_message() == [worker.identity, PPP_READY]

        @FUZZ
        @given(sent=messages)
        def probe(sent):
            for frames in sent:
                fake.send([worker.identity, *frames])
            assert fake.request_answered(worker.identity, envelope_first=False)

        probe()
        assert worker.running
    finally:
        worker.stop()
        ctx.destroy()


def test_lazy_client_takes_only_the_reply_it_is_owed():
    ctx = context()
    server = guard(ctx.socket(zmq.ROUTER))
    server.bind("tcp://127.0.0.1:*")
    endpoint = server.last_endpoint.decode()

    @FUZZ
    @given(junk=messages)
    def probe(junk):
        done = threading.Event()

        def junk_then_echo():  # replies never owed and malformed ones, then echo
            first = True
            while not done.is_set():
                if server.poll(20):
                    identity, *request = server.recv_multipart()
                    for frames in junk if first else []:
                        server.send_multipart([identity, *frames])
                    server.send_multipart([identity, *request])
                    first = False

        thread = threading.Thread(target=junk_then_echo)
        thread.start()
        try:
            with LazyPirateClient(endpoint, timeout=0.3, retries=3) as client:
                assert client.request(b"mine") == [b"mine"]
        finally:
            done.set()
            thread.join(5)

    try:
        probe()
    finally:
        ctx.destroy()


def simple_ghosts(ctx, queue, count):
    ghosts = [peer(ctx, zmq.REQ, queue.backend_endpoint, f"ghost{n}".encode())
              for n in range(count)]
    for ghost in ghosts:
        ghost.send(READY)
    assert queue.wait_until(lambda: len(queue.lru.ready) == count + 1, 10)
    return ghosts


def paranoid_ghosts(ctx, queue, count):
    ghosts = [peer(ctx, zmq.DEALER, queue.backend_endpoint, f"ghost{n}".encode())
              for n in range(count)]
    for ghost in ghosts:
        ghost.send(PPP_READY)
    assert queue.trace.wait_for(lambda: len(queue.state.ready) == count + 1, 10)
    return ghosts


@pytest.mark.parametrize("kind", ["simple", "paranoid"])
def test_workers_that_said_ready_and_left_cost_no_request(kind):
    """200 connections say READY and close; libzmq sees them go, and the queue, told
    EHOSTUNREACH at each send (ROUTER_MANDATORY), hands every request to the live worker."""
    if kind == "simple":
        queue = SimplePirateQueue("ghost-queue").start()
        SimpleWorker("w1", connect=queue.backend_endpoint).start()
        assert queue.wait_for_workers(1)
    else:
        queue = ParanoidQueue("ghost-queue", heartbeat_interval=1.0).start()
        ParanoidWorker("w1", connect=queue.backend_endpoint, heartbeat_interval=1.0).start()
        assert queue.trace.wait_for(lambda: queue.state.ready, 5)
    ctx = context()
    ghosts = (simple_ghosts if kind == "simple" else paranoid_ghosts)(ctx, queue, 200)
    disconnects = queue.disconnects
    for ghost in ghosts:
        ghost.close()
    assert queue.wait_for_disconnects(disconnects + 200, timeout=10)
    with LazyPirateClient(queue.frontend_endpoint, timeout=0.5, retries=3) as client:
        for n in range(1, 23):
            assert client.request(str(n).encode()) == [str(n).encode()]
    ctx.destroy()
    unreachable = queue.lru.unreachable_workers if kind == "simple" else queue.state.unreachable
    assert client.timeouts == 0, "no request was handed to a gone worker"
    assert unreachable == 200, "each ghost was found gone at a send, once"
    stop_all()
