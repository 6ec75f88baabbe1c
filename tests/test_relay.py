"""The relay: its timing decisions with a fake clock, then cut, heal, latency and reset on
real sockets (a plain TCP server the test accepts on itself, so nothing else is timed)."""

import os
import socket
import time

import pytest

from pirate_helpers.relay import Link, Relay, parse_tcp

LIMIT = 1 << 20


# -- the decisions, with a fake clock -------------------------------------------------------
def test_a_chunk_is_due_latency_after_it_was_read():
    link = Link()
    link.push(b"ab", now=10.0, latency=0.5)
    assert link.next_due(cut=False) == 10.5
    assert link.take_due(10.49, cut=False) == (b"", False)
    assert link.take_due(10.5, cut=False) == (b"ab", False)
    assert link.held == 0 and link.next_due(cut=False) is None


def test_order_is_kept_when_the_latency_drops():
    link = Link()
    link.push(b"slow", now=0.0, latency=1.0)
    link.push(b"fast", now=0.1, latency=0.0)  # would be due at 0.1: it waits for "slow"
    assert link.take_due(0.5, cut=False) == (b"", False)
    assert link.take_due(1.0, cut=False) == (b"slowfast", False)


def test_nothing_is_due_while_cut_and_everything_overdue_at_the_heal():
    link = Link()
    link.push(b"1", 0.0, 0.0)
    link.push(b"2", 1.0, 0.0)
    assert link.next_due(cut=True) is None and link.take_due(5.0, cut=True) == (b"", False)
    assert link.held == 2
    assert link.take_due(5.0, cut=False) == (b"12", False)


def test_the_senders_close_comes_after_its_last_bytes():
    link = Link()
    link.push(b"last words", 0.0, 0.2)
    link.end(0.1, 0.0)  # the close is read later with less latency: still after the bytes
    assert link.ended and link.take_due(0.15, cut=False) == (b"", False)
    assert link.take_due(0.2, cut=False) == (b"last words", True)


def test_endpoints_are_parsed_and_only_tcp_is_carried():
    assert parse_tcp("tcp://127.0.0.1:*") == ("127.0.0.1", 0)
    assert parse_tcp("tcp://[::1]:5555") == ("::1", 5555)
    for wrong in ("ipc:///tmp/x", "inproc://x", "tcp://nohost"):
        with pytest.raises(ValueError):
            parse_tcp(wrong)


# -- on real sockets ------------------------------------------------------------------------
@pytest.fixture
def server():
    """A plain TCP listener on a random loopback port; the test accepts on it itself."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)
    yield listener
    listener.close()


def endpoint_of(listener):
    return f"tcp://127.0.0.1:{listener.getsockname()[1]}"


def connect(relay):
    client = socket.create_connection(parse_tcp(relay.endpoint), timeout=2)
    client.settimeout(2)
    return client


def through(relay, server):
    """A client connected through the relay, and the server's side of that connection."""
    client = connect(relay)
    accepted, _ = server.accept()
    accepted.settimeout(2)
    return client, accepted


def nothing_arrives(sock, within):
    sock.settimeout(within)
    try:
        data = sock.recv(100)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(2)
    raise AssertionError(f"expected silence, got {data!r}")


def test_bytes_pass_both_ways_unchanged(server):
    with Relay(endpoint_of(server)) as relay:
        client, accepted = through(relay, server)
        client.sendall(b"\x00\xffhello")
        assert accepted.recv(100) == b"\x00\xffhello"
        accepted.sendall(b"back")
        assert client.recv(100) == b"back"
        assert relay.wait_until(lambda: relay.connections == 1, 2) and relay.carried == 1
        client.close()
        accepted.close()
    assert relay.bytes_up == 7 and relay.bytes_down == 4


def test_a_cut_holds_the_bytes_keeps_the_connection_and_the_heal_delivers_them(server):
    with Relay(endpoint_of(server)) as relay:
        client, accepted = through(relay, server)
        relay.cut()
        client.sendall(b"up")
        accepted.sendall(b"down")
        assert nothing_arrives(accepted, 0.3) and nothing_arrives(client, 0.05)
        assert relay.connections == 1, "no connection is closed by a cut"
        relay.heal()
        assert accepted.recv(100) == b"up" and client.recv(100) == b"down"
        assert relay.trace.count("cut") == 1 and relay.trace.count("heal") == 1
        client.close()
        accepted.close()


def test_a_close_during_a_cut_reaches_the_peer_only_after_the_heal(server):
    with Relay(endpoint_of(server)) as relay:
        client, accepted = through(relay, server)
        relay.cut()
        client.sendall(b"bye")
        client.close()
        assert nothing_arrives(accepted, 0.2), "neither the bytes nor the FIN cross a cut"
        relay.heal()
        assert accepted.recv(100) == b"bye"
        assert accepted.recv(100) == b"", "then the close"
        accepted.close()
        assert relay.wait_until(lambda: relay.connections == 0, 2)


def test_a_connection_made_during_a_cut_reaches_the_target_only_after_the_heal(server):
    with Relay(endpoint_of(server)) as relay:
        relay.cut()
        client = connect(relay)  # the relay accepts it, as a router would take the SYN
        client.sendall(b"hello")
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
        gave_up = connect(relay)
        gave_up.close()  # a client that gives up during the cut never reaches the target
        relay.heal()
        server.settimeout(2)
        accepted, _ = server.accept()
        accepted.settimeout(2)
        assert accepted.recv(100) == b"hello"
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
        assert relay.carried == 1
        client.close()
        accepted.close()


def test_latency_delays_each_direction(server):
    with Relay(endpoint_of(server), latency=0.15) as relay:
        client, accepted = through(relay, server)
        started = time.monotonic()
        client.sendall(b"ping")
        assert accepted.recv(100) == b"ping"
        accepted.sendall(b"pong")
        assert client.recv(100) == b"pong"
        round_trip = time.monotonic() - started
        assert 0.3 <= round_trip < 0.3 + 0.5
        relay.latency(0)
        started = time.monotonic()
        client.sendall(b"ping")
        assert accepted.recv(100) == b"ping"
        assert time.monotonic() - started < 0.1
        with pytest.raises(ValueError):
            relay.latency(-1)
        client.close()
        accepted.close()


def test_reset_closes_both_sides_at_once_with_an_error(server):
    with Relay(endpoint_of(server)) as relay:
        client, accepted = through(relay, server)
        client.sendall(b"x")
        assert accepted.recv(100) == b"x"
        relay.reset()
        for side in (client, accepted):
            with pytest.raises(ConnectionResetError):
                side.recv(100)
        assert relay.connections == 0 and relay.trace.count("reset") == 1
        client.close()
        accepted.close()
        again, accepted = through(relay, server)  # the relay itself carries on
        again.sendall(b"y")
        assert accepted.recv(100) == b"y"
        again.close()
        accepted.close()


def test_a_target_that_refuses_resets_the_client():
    listener = socket.create_server(("127.0.0.1", 0))
    nobody = endpoint_of(listener)
    listener.close()  # nothing listens there now
    with Relay(nobody) as relay:
        with pytest.raises(ConnectionResetError):  # at connect() or at the first recv()
            with connect(relay) as client:
                client.recv(100)
        assert relay.refused == 1 and relay.trace.count("refused") == 1


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_stop_closes_every_socket_and_the_thread(server):
    before = open_descriptors()
    relay = Relay(endpoint_of(server)).start()
    client, accepted = through(relay, server)
    relay.cut()
    client.sendall(b"held")
    relay.stop()
    assert not relay.running
    client.close()
    accepted.close()
    assert open_descriptors() == before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(parse_tcp(relay.endpoint), timeout=1)
    with pytest.raises(RuntimeError, match="not running"):
        relay.cut()


def test_a_cut_holds_at_most_its_limit_then_the_sender_blocks_and_nothing_is_lost(server):
    chunk = bytes(range(256)) * 256  # 64 KiB, a pattern that shows any gap or reordering
    with Relay(endpoint_of(server), hold_limit=100_000) as relay:
        client, accepted = through(relay, server)
        relay.cut()
        client.settimeout(0.3)
        sent = 0
        with pytest.raises(TimeoutError):  # the kernel buffers fill: the sender blocks
            while sent < 64 << 20:
                sent += client.send(chunk[sent % len(chunk):])
        assert sent < 64 << 20
        assert relay.buffered <= 100_000 + 65536, "it stopped reading at its limit"
        relay.heal()
        received = bytearray()
        while len(received) < sent:
            received += accepted.recv(1 << 20)
        assert len(received) == sent
        assert received == (chunk * (sent // len(chunk) + 1))[:sent], "in order, no gap"
        client.close()
        accepted.close()
