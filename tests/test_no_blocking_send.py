"""No blocking send: a role whose peer stopped taking messages (here a queue or broker that
answers every message with a frame over the role's cap, so libzmq drops the connection each
time and what the role sends piles up to its high-water mark) still heartbeats what it
can, counts what it drops, and stops on SIGTERM within 2 s."""

import time

import pytest
import zmq
from processes import Role

ROLES = {
    "paranoid-worker": [],
    "majordomo-worker": ["--service", "echo"],
}


@pytest.fixture
def hostile_peer():
    ctx = zmq.Context()
    ctx.linger = 0
    router = ctx.socket(zmq.ROUTER)
    router.router_handover = 1  # the role reconnects under its id
    port = router.bind_to_random_port("tcp://127.0.0.1")
    yield router, f"tcp://127.0.0.1:{port}"
    ctx.destroy(linger=0)


def answer_too_big_until(router, role, pattern, timeout=10.0):
    """Answer everything the role says with a frame over its cap until it prints `pattern`."""
    too_big = b"x" * 1001
    deadline = time.monotonic() + timeout
    heard = 0
    while time.monotonic() < deadline:
        if router.poll(50):
            frames = router.recv_multipart()
            heard += 1
            router.send_multipart([frames[0], too_big], zmq.NOBLOCK)
        if role.newest(pattern):
            return heard
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s "
                         f"({heard} messages heard): {role.all_lines()[-10:]}")


@pytest.mark.parametrize("name", list(ROLES) + ["titanic"])
def test_a_role_whose_peer_stops_taking_messages_counts_drops_and_stops(name, hostile_peer,
                                                                          tmp_path):
    router, endpoint = hostile_peer
    options = ROLES.get(name, ["--store", str(tmp_path / "titanic.db")])
    with Role(name, "--connect", endpoint, "--heartbeat-ms", "5", "--liveness", "400",
              "--reconnect-min-ms", "10", "--max-message-bytes", "1000", *options) as role:
        heard = answer_too_big_until(router, role, r"drop\s+.*not taking messages \((\d+) "
                                     r"dropped\)")
        assert heard >= 1, "it said something before its pipe filled"
        assert role.process.poll() is None, "still running"
        started = time.monotonic()
        assert role.stop(timeout=2) == 0, role.stderr[-2000:]
        assert time.monotonic() - started < 2
    assert "Traceback" not in role.stderr


SERVERS = {
    "lazy-server": [],
    "freelance-server": [],
    "binary-star": ["--primary", "--heartbeat-ms", "100", "--publish", "tcp://127.0.0.1:*",
                    "--subscribe", "tcp://127.0.0.1:9"],  # no peer: serves after 2 heartbeats
}


def answered(ctx, endpoint, within_s=10.0):
    """A request on fresh REQs until one is answered, with a bound."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        req = ctx.socket(zmq.REQ)
        req.linger, req.rcvtimeo = 0, 500
        req.connect(endpoint)
        req.send(b"hello")
        try:
            if req.recv() == b"hello":
                return True
        except zmq.Again:
            pass
        finally:
            req.close()
    return False


QUEUES = {"simple-queue": "simple-worker", "paranoid-queue": "paranoid-worker"}


@pytest.mark.parametrize("name", list(SERVERS) + list(QUEUES))
def test_a_server_whose_client_stops_reading_counts_unsent_replies_and_serves_on(name):
    ctx = zmq.Context()
    ctx.linger = 0
    worker = None
    try:
        with Role(name, *SERVERS.get(name, [])) as role:
            endpoint = role.expect(r"(?:listening on|join \(clients\):) (tcp://\S+)").group(1)
            if name in QUEUES:
                workers = role.expect(r"join \(workers\): (tcp://\S+)").group(1)
                worker = Role(QUEUES[name], "--connect", workers, "--quiet")
            assert answered(ctx, endpoint)
            greedy = ctx.socket(zmq.DEALER)  # asks and asks, and never reads a reply
            greedy.sndhwm = 0
            greedy.connect(endpoint)
            body = b"x" * 100_000
            deadline = time.monotonic() + 20
            sent = 0
            while not role.newest(r"unsent\s+a client is not taking replies \((\d+) unsent\)"):
                assert time.monotonic() < deadline, f"no unsent reply after {sent} requests"
                if greedy.poll(10, zmq.POLLOUT):
                    greedy.send_multipart([b"", body], zmq.NOBLOCK)
                    sent += 1
            assert answered(ctx, endpoint), "another client is served meanwhile"
            started = time.monotonic()
            assert role.stop(timeout=2) in (0,), role.stderr[-2000:]
            assert time.monotonic() - started < 2
        assert "Traceback" not in role.stderr
    finally:
        if worker is not None:
            worker.stop()
        ctx.destroy(linger=0)


def test_the_broker_counts_replies_a_client_does_not_take_and_serves_on():
    """The broker's ROUTER is ROUTER_MANDATORY already: a full client queue is counted as
    unreachable, and the reply is lost (the client's retry asks again)."""
    ctx = zmq.Context()
    ctx.linger = 0
    try:
        with Role("majordomo-broker", "--quiet") as broker:
            endpoint = broker.endpoint()
            with Role("majordomo-worker", "--connect", endpoint, "--service", "echo",
                      "--quiet"):
                asked = ctx.socket(zmq.DEALER)
                asked.linger, asked.rcvtimeo = 0, 10000
                asked.connect(endpoint)
                asked.send_multipart([b"", b"MDPC01", b"echo", b"hello"])
                assert asked.recv_multipart()[-1] == b"hello"
                greedy = ctx.socket(zmq.DEALER)
                greedy.sndhwm = 0
                greedy.connect(endpoint)
                deadline, sent = time.monotonic() + 20, 0
                while not broker.newest(r"unreachable\s+client"):
                    assert time.monotonic() < deadline, f"nothing unsent after {sent} requests"
                    if greedy.poll(10, zmq.POLLOUT):
                        greedy.send_multipart([b"", b"MDPC01", b"echo", b"x" * 100_000],
                                              zmq.NOBLOCK)
                        sent += 1
                asked.send_multipart([b"", b"MDPC01", b"echo", b"again"])
                deadline = time.monotonic() + 10
                while (reply := asked.recv_multipart())[-1] != b"again":
                    assert time.monotonic() < deadline, f"served meanwhile? {reply[-1][:20]}"
            started = time.monotonic()
            assert broker.stop(timeout=2) == 0, broker.stderr[-2000:]
            assert time.monotonic() - started < 2
        assert "Traceback" not in broker.stderr
    finally:
        ctx.destroy(linger=0)
