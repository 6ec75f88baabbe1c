"""Freelance (RFC 10) end to end: three server processes, two of them killed or frozen in
the middle of a run, in each model; hostile input to a server; FLP peers written here from
the RFC on either side of ours; the lesson exercise's check."""

import signal
import time

import pytest
import zmq
from processes import Role, run

from pirate_helpers import stop_all
from pirate_helpers.course.exercises import WAITING, NotYet
from pirate_helpers.course.freelance import check_ping_choice
from pirate_helpers.freelance import PING, PONG, FreelanceClient, FreelanceServer

FAST = ("--timeout-ms", "300", "--tries", "3", "--ping-ms", "100", "--liveness", "3")


@pytest.fixture(autouse=True)
def _stop_everything():
    yield
    stop_all()


@pytest.mark.parametrize("model", ["1", "2", "3"])
def test_every_request_is_answered_while_two_of_three_servers_die_or_freeze(model):
    servers = [Role("freelance-server", "--quiet") for _ in range(3)]
    try:
        endpoints = [server.endpoint() for server in servers]
        connects = [arg for endpoint in endpoints for arg in ("--connect", endpoint)]
        with Role("freelance-client", *connects, "--model", model, "--requests", "200",
                  "--name", "c", *FAST) as client:
            client.expect(r"recv\s+c:40$")
            servers[0].process.send_signal(signal.SIGKILL)
            client.expect(r"recv\s+c:80$")
            servers[1].process.send_signal(signal.SIGSTOP)  # frozen, connections open
            summary = client.expect(r"\d+ of 200 answered", timeout=60).group(0)
            assert client.stop(signum=None) == 0, client.stderr
        assert summary == "200 of 200 answered"
        assert "0 mismatched, 0 lost" in client.all_lines()[-1]
    finally:
        servers[1].process.send_signal(signal.SIGCONT)
        for server in servers:
            server.stop(signum=signal.SIGKILL)


def test_a_restarted_server_is_used_again():
    with Role("freelance-server", "--quiet") as first:
        endpoint = first.endpoint()
        assert first.stop() == 0
    client = FreelanceClient([endpoint], timeout=0.3, tries=10, ping_interval=0.05).start()
    with Role("freelance-server", "--bind", endpoint, "--quiet") as again:
        again.endpoint()
        assert client.request(b"back") == [b"back"]
    client.stop()


def _wait_connected(sock: zmq.Socket, server: bytes) -> None:
    """Ping until the ROUTER has a route to `server` (ROUTER_MANDATORY says when not)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.send_multipart([server, PING], zmq.NOBLOCK)
            return
        except zmq.ZMQError:
            assert time.monotonic() < deadline, "no connection to the server in 10 s"
            sock.poll(20)


def _raw_router(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.linger = 0
    sock.router_mandatory = True
    sock.connect(endpoint)
    return sock


def test_an_rfc_client_addresses_our_server_by_its_endpoint():
    """Written from RFC 10 alone: a ROUTER client that sets nothing but connects, and sends
    to the identity the server must have, its endpoint."""
    with Role("freelance-server", "--quiet") as server:
        endpoint = server.endpoint()
        sock = _raw_router(endpoint)
        try:
            _wait_connected(sock, endpoint.encode())
            assert sock.poll(5000) and sock.recv_multipart() == [endpoint.encode(), PONG]
            sock.send_multipart([endpoint.encode(), b"7", b"hello", b"world"])
            assert sock.poll(5000)
            assert sock.recv_multipart() == [endpoint.encode(), b"7", b"hello", b"world"]
        finally:
            sock.close()


RFC_SERVER = """
import sys, zmq
endpoint = sys.argv[1]
sock = zmq.Context.instance().socket(zmq.ROUTER)
sock.linger = 0
sock.routing_id = endpoint.encode()
sock.bind(endpoint)
print("listening on", endpoint, flush=True)
while sock.poll(20000):
    client, *rest = sock.recv_multipart()
    sock.send_multipart([client, b"PONG"] if rest == [b"PING"] else [client, *rest])
"""


def test_our_client_uses_an_rfc_server_written_from_the_rfc():
    with FreelanceServer("probe") as probe:  # only to find a free port
        endpoint = probe.endpoint
    with Role(endpoint, code=RFC_SERVER) as server:
        server.endpoint()
        for model in (1, 2, 3):
            with FreelanceClient([endpoint], model=model, timeout=1.0) as client:
                assert client.request(b"a", b"b") == [b"a", b"b"]


def test_garbage_and_huge_frames_never_stop_a_server():
    with Role("freelance-server", "--quiet", "--max-message-bytes", "100000") as server:
        endpoint = server.endpoint()
        context = zmq.Context.instance()
        for garbage in ([b""], [b"PING", b"PING"], [b"x"] * 100, [b"\xff" * 99_999],
                        [b"big", b"y" * 200_000], [PONG]):
            dealer = context.socket(zmq.DEALER)
            dealer.linger = 0
            dealer.connect(endpoint)
            dealer.send_multipart(garbage)
            dealer.close()
        sock = _raw_router(endpoint)
        try:
            _wait_connected(sock, endpoint.encode())
            assert sock.poll(5000) and sock.recv_multipart() == [endpoint.encode(), PONG]
            with FreelanceClient([endpoint], timeout=1.0) as client:
                assert client.request(b"still", b"here") == [b"still", b"here"]
        finally:
            sock.close()
        assert server.stop() == 0


def test_off_loopback_a_server_needs_curve_or_insecure_and_curve_works():
    refused = run("freelance-server", "--bind", "tcp://*:0")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    with Role("freelance-server", "--curve", "--quiet") as server:
        join = server.expect(r"join \(clients\): (\S+)").group(1)
        assert "/" in join.split("://")[1]
        client = run("freelance-client", "--connect", join, "--requests", "5")
        assert client.returncode == 0, client.stderr
        assert "5 of 5 answered, 0 mismatched, 0 lost" in client.stdout


def test_a_mistake_on_the_client_command_line_is_one_line():
    server = ["--connect", "tcp://127.0.0.1:5"]
    for args in ([*server, "--model", "4"], [*server, *server], [], [*server, "--tries", "0"]):
        result = run("freelance-client", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("interval_ms, liveness", [(200, 3), (100, 5), (120, 4)])
def test_the_exercise_accepts_settings_that_meet_all_three_rules(interval_ms, liveness):
    assert check_ping_choice(interval_ms, liveness).startswith("✔")


@pytest.mark.parametrize("interval_ms, liveness, reason", [
    (200, 2, "one lost pong"),
    (20, 3, "pings a second"),
    (250, 3, "over 600 ms"),
    (1000, 3, "over 600 ms"),
    (200, 0, "at least 1"),
])
def test_the_exercise_rejects_the_wrong_answers_its_solution_names(interval_ms, liveness,
                                                                   reason):
    with pytest.raises(NotYet, match=reason):
        check_ping_choice(interval_ms, liveness)


def test_the_exercise_waits_for_an_answer():
    assert check_ping_choice(..., ...) == WAITING


def test_an_interrupted_request_never_hands_its_reply_to_the_next_one():
    with FreelanceServer("s") as server, FreelanceClient([server.endpoint]) as client:
        client._caller.send_multipart([b"abandoned", b"old"])  # as if Ctrl-C cut its wait
        assert client.request(b"new") == [b"new"]
        assert client.request(b"newer") == [b"newer"]
