"""Majordomo on real sockets: services, MMI, failures, RFC 7 interop and fuzzed frames.

Timings: heartbeats every 50 ms and liveness 3, so a silent worker is dead 150 ms after it
was last heard. Bounds allow scheduling slack for a loaded 2-core machine; every wait is on
an event or a socket, with a bound.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pirate_helpers import Faults, ServerUnavailable, Trace
from pirate_helpers.endpoints import bind, guard
from pirate_helpers.majordomo import (
    DISCONNECT,
    HEARTBEAT,
    MDPC,
    MDPW,
    READY,
    REPLY,
    REQUEST,
    GuideMajordomoState,
    MajordomoBroker,
    MajordomoClient,
    MajordomoRequester,
    MajordomoWorker,
)

INTERVAL, LIVENESS = 0.05, 3
MDPC2, MDPW2 = b"MDPC02", b"MDPW02"  # MDP/0.2's headers, written out as a peer would
SILENCE = INTERVAL * LIVENESS
SLACK = 0.25


def start_broker(trace, **options):
    return MajordomoBroker(heartbeat_interval=INTERVAL, liveness=LIVENESS, trace=trace,
                           **options).start()


def start_worker(name, broker, service, trace, **options):
    options.setdefault("reconnect_min", 0.05)
    worker = MajordomoWorker(name, connect=broker.endpoint, service=service,
                             heartbeat_interval=INTERVAL, liveness=LIVENESS, trace=trace,
                             **options).start()
    assert broker.wait_until(lambda: worker.identity in broker.state.workers, 5)
    return worker


@pytest.fixture
def context():
    ctx = zmq.Context()
    ctx.linger = 0
    yield ctx
    ctx.destroy(linger=0)


def test_two_services_each_request_to_its_own_and_mmi_tells_what_is_offered():
    trace = Trace()
    broker = start_broker(trace)
    workers = [start_worker(name, broker, service, trace)
               for name, service in (("e1", "echo"), ("e2", "echo"), ("u1", "upper"))]
    workers[2].handler = lambda body: [frame.upper() for frame in body]
    with MajordomoClient(broker.endpoint, timeout=2, trace=trace) as client:
        assert client.offers("echo") and client.offers("upper") and not client.offers("nope")
        assert client.request(b"mmi.other", b"x") == [b"501"]
        for n in range(4):
            assert client.request("echo", b"x", str(n).encode()) == [b"x", str(n).encode()]
        assert client.request("upper", b"abc") == [b"ABC"]
    assert [w.answered for w in workers] == [2, 2, 1], "least recently used, per service"
    assert broker.state.rejected == 0
    for worker in workers:
        worker.stop()
    assert broker.wait_until(lambda: not broker.state.workers, 5), "DISCONNECT on stop"
    broker.stop()


def test_a_request_for_a_service_nobody_offers_yet_is_answered_once_a_worker_joins():
    trace = Trace()
    broker = start_broker(trace)
    requester = MajordomoRequester(broker.endpoint, "later", requests=1, timeout=5, retries=1,
                                   trace=trace).start()
    assert broker.wait_until(lambda: broker.state.queued == 1, 5)
    assert not broker.state.offers(b"later")
    worker = start_worker("l1", broker, "later", trace)
    assert requester.join(5) and requester.replies == [[b"1"]]
    assert requester.client.sent == 1, "answered on its first try"
    for actor in (requester, worker, broker):
        actor.stop()


def test_a_queued_request_expires_and_the_client_gives_up_cleanly():
    trace = Trace()
    broker = start_broker(trace, request_expiry=0.1)
    with MajordomoClient(broker.endpoint, timeout=0.3, retries=2, trace=trace) as client:
        with pytest.raises(ServerUnavailable):
            client.request("nobody", b"x")
    assert broker.wait_until(lambda: broker.state.expired == 2, 5)
    assert broker.state.queued == 0 and not broker.state.services
    broker.stop()


def test_a_worker_that_crashes_mid_request_is_noticed_and_its_request_redispatched():
    trace = Trace()
    broker = start_broker(trace)
    crasher = start_worker("w1", broker, "echo", trace, faults=Faults(crash_after=0))
    backup = start_worker("w2", broker, "echo", trace)
    with MajordomoClient(broker.endpoint, timeout=3, retries=1, trace=trace) as client:
        started = time.monotonic()
        assert client.request("echo", b"held by w1") == [b"held by w1"]
        took = time.monotonic() - started
    assert crasher.join(1) and crasher.crashed
    # the crash closes w1's connection: the next heartbeat to it is unreachable
    assert took <= SILENCE + SLACK
    assert broker.state.requeued == 1 and backup.answered == 1
    for actor in (backup, crasher, broker):
        actor.stop()


def test_a_frozen_worker_is_purged_after_liveness_intervals_and_its_late_reply_refused():
    trace = Trace()
    broker = start_broker(trace)
    frozen = start_worker("w1", broker, "echo", trace, faults=Faults(freeze_at=1, freeze_s=0.6))
    backup = start_worker("w2", broker, "echo", trace)
    with MajordomoClient(broker.endpoint, timeout=3, retries=1, trace=trace) as client:
        started = time.monotonic()
        assert client.request("echo", b"job") == [b"job"]
        took = time.monotonic() - started
    assert SILENCE - INTERVAL - 0.02 <= took <= SILENCE + SLACK
    assert trace.wait_for(lambda: trace.count("reconnect", "w1") >= 1, 5), "told, it rejoins"
    assert frozen.answered == 1 and backup.answered == 1, "at-least-once: it ran twice"
    assert broker.state.rejected >= 1 and client.answered == 1
    for actor in (frozen, backup, broker):
        actor.stop()


def test_the_guides_broker_logic_on_the_same_loop_dies_after_an_idle_disconnect():
    trace = Trace()
    broker = start_broker(trace, logic=GuideMajordomoState)
    worker = MajordomoWorker("w1", connect=broker.endpoint, heartbeat_interval=INTERVAL,
                             trace=trace).start()
    assert broker.wait_until(lambda: b"w1" in broker.state.workers, 5)
    worker.stop()  # an idle worker leaving politely: DISCONNECT
    with pytest.raises(ValueError, match="not in list"):  # the Guide's purge
        broker.join(SILENCE + 2)
    assert not broker.running
    broker.stop()


# -- interop with RFC 7 written out by hand -------------------------------------------------
class RawWorker:
    """A minimal MDP/0.1 worker straight from RFC 7's frames: DEALER, READY, then REPLY to
    each REQUEST with the client's address; HEARTBEAT and DISCONNECT are recorded."""

    def __init__(self, context, endpoint, service=b"echo"):
        self.socket = context.socket(zmq.DEALER)
        self.socket.connect(endpoint)
        self.socket.send_multipart([b"", MDPW, READY, service])
        self.heartbeats = self.disconnects = 0

    def serve_one(self, timeout_ms=5000):
        while self.socket.poll(timeout_ms):
            empty, header, command, *rest = self.socket.recv_multipart()
            assert (empty, header) == (b"", MDPW)
            if command == HEARTBEAT:
                self.heartbeats += 1
            elif command == DISCONNECT:
                self.disconnects += 1
                return None
            elif command == REQUEST:
                client, delimiter, *body = rest
                assert delimiter == b""
                self.socket.send_multipart([b"", MDPW, REPLY, client, b"", *body])
                return body
        raise AssertionError("no request within the bound")

    def idle_heartbeats(self, wanted, timeout_s=5.0):
        """True once `wanted` more heartbeats came, and nothing else."""
        deadline = time.monotonic() + timeout_s
        for _ in range(wanted):
            if not self.socket.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                return False
            assert self.socket.recv_multipart() == [b"", MDPW, HEARTBEAT]
        return True


def raw_request(context, endpoint, service, *body, timeout_ms=5000):
    """A minimal MDP/0.1 client: REQ, [MDPC01, service, body...] and back."""
    req = context.socket(zmq.REQ)
    req.connect(endpoint)
    req.send_multipart([MDPC, service, *body])
    assert req.poll(timeout_ms), "no reply within the bound"
    reply = req.recv_multipart()
    req.close()
    return reply


def test_our_client_and_broker_work_with_a_worker_written_from_rfc_7(context):
    broker = start_broker(Trace())
    raw = RawWorker(context, broker.endpoint)
    assert broker.wait_until(lambda: broker.state.offers(b"echo"), 5)
    with MajordomoClient(broker.endpoint, timeout=5, retries=1) as client, \
            ThreadPoolExecutor(1) as pool:  # the client waits in one thread, the worker here
        reply = pool.submit(client.request, "echo", b"a", b"")
        assert raw.serve_one() == [b"a", b""]
        assert reply.result(5) == [b"a", b""]
    assert raw.idle_heartbeats(2), "the broker heartbeats an idle worker"
    raw.socket.send_multipart([b"", MDPW, b"\x09"])  # an unknown command
    assert raw.serve_one() is None and raw.disconnects == 1
    assert broker.wait_until(lambda: not broker.state.offers(b"echo"), 5)
    broker.stop()


def test_our_worker_and_broker_work_with_a_client_written_from_rfc_7(context):
    trace = Trace()
    broker = start_broker(trace)
    worker = start_worker("w1", broker, "echo", trace)
    assert raw_request(context, broker.endpoint, b"echo", b"x", b"y") == [MDPC, b"echo",
                                                                          b"x", b"y"]
    assert raw_request(context, broker.endpoint, b"mmi.service", b"echo") == [
        MDPC, b"mmi.service", b"200"]
    assert raw_request(context, broker.endpoint, b"mmi.service", b"nope")[-1] == b"404"
    worker.stop()
    broker.stop()


# -- fuzzing every frame on the wire --------------------------------------------------------
def fuzz_frame(choices):
    return st.one_of(st.sampled_from(choices), st.binary(max_size=64))


wire_messages = st.lists(st.one_of(
    st.tuples(fuzz_frame([b""]), fuzz_frame([MDPW, MDPC, MDPW2, MDPC2]),
              fuzz_frame([READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT, b"\x00"]))
    .flatmap(lambda head: st.lists(fuzz_frame([b"", b"echo", b"mmi.x"]), max_size=4)
             .map(lambda rest: [*head, *rest])),
    st.lists(st.binary(max_size=2000), min_size=1, max_size=20),
), min_size=1, max_size=8)


def test_fuzzed_frames_from_any_peer_never_stop_the_broker(context):
    """Random frame counts, sizes, bytes and commands in the wrong state, from a DEALER that
    may have registered first; after each example a real client's request is answered."""
    trace = Trace(keep=500)
    broker = start_broker(trace, trace_messages=False)
    worker = start_worker("good", broker, "echo", trace)
    client = MajordomoClient(broker.endpoint, timeout=3, retries=2)
    serial = iter(range(10**6))

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(wire_messages, st.booleans())
    def example(messages, register_first):
        peer = context.socket(zmq.DEALER)
        peer.connect(broker.endpoint)
        if register_first:
            peer.send_multipart([b"", MDPW, READY, b"fuzz"])
        for message in messages:
            peer.send_multipart(message)
        body = str(next(serial)).encode()
        assert client.request("echo", body) == [body]
        peer.close()

    try:
        example()
        assert broker.running and client.mismatched == 0
        assert broker.state.rejected > 0
    finally:
        client.close()
        worker.stop()
        broker.stop()


def test_too_many_frames_or_an_oversized_frame_cost_the_broker_nothing(context):
    trace = Trace()
    broker = start_broker(trace, trace_messages=False)
    worker = start_worker("good", broker, "echo", trace)
    many, huge = context.socket(zmq.DEALER), context.socket(zmq.DEALER)
    for peer in (many, huge):
        peer.connect(broker.endpoint)
    many.send_multipart([b"", MDPC, b"echo"] + [b"x"] * 100)  # over endpoints.MAX_FRAMES
    assert broker.wait_until(lambda: broker.state.rejected == 1, 5)
    assert [e.detail for e in trace.of("broker", "reject")] == ["too many frames"]
    huge.send_multipart([b"", MDPC, b"echo", b"x" * (2 << 20)])  # over the 1 MiB frame cap
    with MajordomoClient(broker.endpoint, timeout=2, retries=1) as client:
        assert client.request("echo", b"still here") == [b"still here"]
    assert worker.answered == 1, "neither message reached a worker"
    assert broker.state.rejected == 1, "libzmq dropped the oversized one before Python saw it"
    worker.stop()
    broker.stop()


# -- MDP/0.2 (RFC 18, majortomo's empty first frame), on the same broker -------------------
W2_READY, W2_REQUEST, W2_PARTIAL, W2_FINAL = b"\x01", b"\x02", b"\x03", b"\x04"
C2_REQUEST, C2_PARTIAL, C2_FINAL = b"\x01", b"\x02", b"\x03"


def test_02_clients_and_workers_share_the_broker_with_01_ones_partial_replies_streamed(context):
    trace = Trace()
    broker = start_broker(trace)
    streamer = context.socket(zmq.DEALER)  # a 0.2 worker: two PARTIALs, then FINAL
    streamer.connect(broker.endpoint)
    streamer.send_multipart([b"", MDPW2, W2_READY, b"stream"])
    old = start_worker("old", broker, "echo", trace)  # ours, 0.1
    assert broker.wait_until(lambda: broker.state.offers(b"stream"), 5)

    client2 = context.socket(zmq.DEALER)  # a 0.2 client
    client2.connect(broker.endpoint)

    def serve_stream():
        assert streamer.poll(5000), "no request for the 0.2 worker"
        empty, header, command, client, delimiter, *body = streamer.recv_multipart()
        assert (empty, header, command, delimiter) == (b"", MDPW2, W2_REQUEST, b"")
        for part in (b"1", b"2"):
            streamer.send_multipart([b"", MDPW2, W2_PARTIAL, client, b"", *body, part])
        streamer.send_multipart([b"", MDPW2, W2_FINAL, client, b"", *body, b"end"])

    client2.send_multipart([b"", MDPC2, C2_REQUEST, b"stream", b"go"])
    serve_stream()
    parts = []
    while not parts or parts[-1][2] != C2_FINAL:
        assert client2.poll(5000), f"the stream stopped after {parts}"
        parts.append(client2.recv_multipart())
    assert parts == [[b"", MDPC2, C2_PARTIAL, b"go", b"1"], [b"", MDPC2, C2_PARTIAL, b"go", b"2"],
                     [b"", MDPC2, C2_FINAL, b"go", b"end"]]

    client2.send_multipart([b"", MDPC2, C2_REQUEST, b"echo", b"to 0.1"])  # 0.2 client, 0.1 worker
    assert client2.poll(5000)
    assert client2.recv_multipart() == [b"", MDPC2, C2_FINAL, b"to 0.1"]

    with MajordomoClient(broker.endpoint, timeout=5, retries=1) as client1, \
            ThreadPoolExecutor(1) as pool:  # 0.1 client, 0.2 worker: the FINAL part only
        reply = pool.submit(client1.request, "stream", b"go")
        serve_stream()
        assert reply.result(5) == [b"go", b"end"]
    assert broker.state.partials_dropped == 2 and broker.state.rejected == 0
    old.stop()
    broker.stop()


# -- hostile brokers: the worker and the client under random messages ------------------------
special = st.sampled_from([b"", MDPW, MDPC, MDPW2, READY, REQUEST, REPLY, HEARTBEAT,
                           DISCONNECT, b"\x06"])
big = st.builds(lambda size, byte: bytes([byte]) * size, st.integers(1000, 200_000),
                st.integers(0, 255))
junk_frame = st.one_of(special, st.binary(max_size=32), big)
junk = st.lists(st.one_of(st.lists(junk_frame, min_size=1, max_size=7),
                          st.integers(60, 80).map(lambda n: [b"f"] * n)), min_size=1, max_size=6)
HOSTILE = settings(max_examples=25, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])


def test_our_worker_survives_random_messages_from_its_broker(context):
    """Whatever a broker sends, the worker keeps serving; a DISCONNECT among the junk makes
    it come back under its next identity, as RFC 7 says."""
    fake = guard(context.socket(zmq.ROUTER))
    fake.router_mandatory = 1
    endpoint = bind(fake)
    worker = MajordomoWorker("w1", connect=endpoint, heartbeat_interval=0.05, liveness=100,
                             reconnect_min=0.01, reconnect_max=0.02).start()
    current = [b"w1"]

    def next_message(timeout_ms=5000):
        assert fake.poll(timeout_ms), "the worker sent nothing"
        message = fake.recv_multipart()
        if message[1:] == [b"", MDPW, READY, b"echo"]:
            current[0] = message[0]  # (re)registered, maybe under a new identity
        return message

    def request_answered():
        for _ in range(10):
            try:
                fake.send_multipart([current[0], b"", MDPW, REQUEST, b"client-7", b"",
                                     b"still here"])
            except zmq.ZMQError:  # that identity is gone: wait for the READY of the next
                next_message()
                continue
            deadline = time.monotonic() + 1.0
            while (left := deadline - time.monotonic()) > 0 and fake.poll(int(left * 1000)):
                reply = next_message()
                if reply[1:] == [b"", MDPW, REPLY, b"client-7", b"", b"still here"]:
                    return True
                if reply[3:4] == [READY]:
                    break  # back under a new identity: ask again
        return False

    try:
        assert next_message() == [b"w1", b"", MDPW, READY, b"echo"]

        @HOSTILE
        @given(sent=junk)
        def probe(sent):
            for frames in sent:
                try:
                    fake.send_multipart([current[0], *frames])
                except zmq.ZMQError:
                    pass
            assert request_answered()

        probe()
        assert worker.running and worker.rejected > 0
    finally:
        worker.stop()


def test_our_client_takes_only_a_reply_from_its_service(context):
    server = guard(context.socket(zmq.ROUTER))
    endpoint = bind(server)

    @HOSTILE
    @given(sent=junk)
    def probe(sent):
        done = threading.Event()

        def junk_then_answer():
            first = True
            while not done.is_set():
                if server.poll(20):
                    identity, *request = server.recv_multipart()
                    for frames in sent if first else []:
                        server.send_multipart([identity, *frames])
                    server.send_multipart([identity, *request])  # header, service, body
                    first = False

        thread = threading.Thread(target=junk_then_answer)
        thread.start()
        try:
            with MajordomoClient(endpoint, timeout=0.15, retries=4) as client:
                assert client.request("echo", b"mine") == [b"mine"]
        finally:
            done.set()
            thread.join(5)

    probe()


def test_a_busy_worker_keeps_a_broker_that_heartbeats_only_idle_workers(context):
    """The Guide's mdbroker.c sends no heartbeat to a worker while it works: our worker, busy
    for four times liveness x interval behind such a silent broker, keeps the connection and
    delivers its reply under the same identity (no DISCONNECT, no second READY)."""
    fake = guard(context.socket(zmq.ROUTER))
    endpoint = bind(fake)
    worker = MajordomoWorker("w1", connect=endpoint, heartbeat_interval=INTERVAL,
                             liveness=LIVENESS, work_s=4 * SILENCE).start()
    try:
        assert fake.poll(5000) and fake.recv_multipart() == [b"w1", b"", MDPW, READY, b"echo"]
        fake.send_multipart([b"w1", b"", MDPW, REQUEST, b"c1", b"", b"long job"])
        deadline = time.monotonic() + 5
        while (left := deadline - time.monotonic()) > 0 and fake.poll(int(left * 1000)):
            message = fake.recv_multipart()
            if message[3:] != [HEARTBEAT]:
                break
        else:
            raise AssertionError("no reply within the bound")
        assert message == [b"w1", b"", MDPW, REPLY, b"c1", b"", b"long job"], message
        assert worker.reconnects == 0
    finally:
        worker.stop()
