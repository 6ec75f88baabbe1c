"""Out of file descriptors (EMFILE): a role flooded with connections past its `ulimit -n`
prints one line (counted, rate-limited), serves the connections it has, accepts again once
some close, and stops on SIGTERM; never a traceback. libzmq retries a failed accept at once
(no back-off), so a zmq role burns a core while the flood lasts; the relay rests 0.5 s."""

import re
import signal
import socket
import time

import pytest
import zmq
from processes import Role

MAX_FILES = 64
FLOOD = 150  # connections, past the limit and past libzmq's listen backlog of 100


def host_port(endpoint):
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def flood(endpoint):
    """Open raw TCP connections until the listen backlog is full too; keep them open."""
    sockets = []
    for _ in range(FLOOD):
        try:
            sockets.append(socket.create_connection(host_port(endpoint), timeout=0.5))
        except OSError:  # the backlog is full: the kernel no longer completes connects
            break
    return sockets


def ask(context, endpoint, frames, timeout_s=5.0):
    """One request on a fresh REQ; its reply, or None after `timeout_s`."""
    req = context.socket(zmq.REQ)
    req.linger = 0
    req.rcvtimeo = int(timeout_s * 1000)
    req.connect(endpoint)
    try:
        req.send_multipart(frames)
        return req.recv_multipart()
    except zmq.Again:
        return None
    finally:
        req.close()


ROLES = {  # role: (its options, a request it answers itself, the reply expected)
    "lazy-server": ((), [b"hello"], [b"hello"]),
    "majordomo-broker": ((), [b"MDPC01", b"mmi.service", b"echo"],
                         [b"MDPC01", b"mmi.service", b"404"]),
    "freelance-server": ((), [b"hello"], [b"hello"]),  # echoed (a REQ adds no control frame)
    "binary-star": (("--primary", "--heartbeat-ms", "100", "--publish", "tcp://127.0.0.1:*",
                     "--subscribe", "tcp://127.0.0.1:9"), [b"hello"], [b"hello"]),
}  # a Binary Star primary with no peer serves once its peer has expired (2 heartbeats)


def served_soon(context, endpoint, request, expected, within_s=10.0):
    """Asked on fresh sockets until answered, with a bound (a role may need a moment)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if ask(context, endpoint, request, timeout_s=0.5) == expected:
            return True
    return False


@pytest.mark.parametrize("name", list(ROLES))
def test_a_zmq_role_out_of_descriptors_says_so_once_and_serves_on(name):
    options, request, expected = ROLES[name]
    context = zmq.Context()
    context.linger = 0
    with Role(name, *options, max_files=MAX_FILES) as role:
        endpoint = role.expect(r"(?:listening on|join \(clients\):|frontend) (tcp://\S+)"
                               ).group(1)
        assert served_soon(context, endpoint, request, expected)
        client = context.socket(zmq.REQ)  # connected before the flood: it keeps being served
        client.linger, client.rcvtimeo = 0, 5000
        client.connect(endpoint)
        client.send_multipart(request)
        assert client.recv_multipart() == expected
        flooders = flood(endpoint)
        line = role.expect(r"accept-failed\s+Too many open files.*serving the connections")
        assert line
        client.send_multipart(request)
        assert client.recv_multipart() == expected, "the connection it had is served on"
        for sock in flooders:
            sock.close()
        assert ask(context, endpoint, request) == expected, "it accepts again"
        client.close()
        started = time.monotonic()
        assert role.stop(timeout=2) == 0
        assert time.monotonic() - started < 2
    context.destroy(linger=0)
    lines = role.all_lines()
    printed = [line for line in lines if "accept-failed  Too many open files" in line]
    assert len(printed) == 1, "one line (one a 10 s window: the test is shorter)"
    summary = [line for line in lines if re.search(r"summary: \d+ more accept-failed", line)]
    assert len(summary) <= 1, "the rest counted in one line"
    assert "Traceback" not in role.stderr


def test_the_relay_out_of_descriptors_says_so_serves_on_and_accepts_again():
    context = zmq.Context()
    context.linger = 0
    with Role("lazy-server") as server, \
            Role("relay", "--target", server.endpoint(), max_files=MAX_FILES, stdin=True) as relay:
        endpoint = relay.endpoint()
        client = context.socket(zmq.REQ)
        client.linger, client.rcvtimeo = 0, 5000
        client.connect(endpoint)
        client.send(b"before")
        assert client.recv() == b"before"
        flooders = flood(endpoint)
        relay.expect(r"accept-failed\s+Too many open files: serving the \d+ connection")
        client.send(b"during")
        assert client.recv() == b"during", "the connection it had is served on"
        relay.type("status")
        failures = relay.expect(r"(\d+) accept\(s\) failed for want of file descriptors")
        assert int(failures.group(1)) >= 1
        for sock in flooders:
            sock.close()
        assert ask(context, endpoint, [b"after"]) == [b"after"], "it accepts again"
        client.close()
        started = time.monotonic()
        assert relay.stop(timeout=2, signum=signal.SIGTERM) == 0
        assert time.monotonic() - started < 2
    context.destroy(linger=0)
    assert "Traceback" not in relay.stderr
