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
