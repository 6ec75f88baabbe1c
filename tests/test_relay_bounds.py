"""The relay bounded both ways: toward a peer that never reads it stops reading the sender
(backpressure) instead of growing, in-process (exact counts) and as a process (its RSS)."""

import os
import socket

import pytest
from never_reads import CHUNK, connect_through, peak_rss_bytes, push, rss_bytes
from processes import Role

from pirate_helpers.relay import READ_BYTES, Relay

MiB = 1 << 20


@pytest.fixture
def listener():
    """The target: a plain TCP listener on a random loopback port that the test accepts on."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def endpoint_of(server):
    return f"tcp://127.0.0.1:{server.getsockname()[1]}"


def received_all(sock, count):
    sock.setblocking(True)
    sock.settimeout(5)
    data = bytearray()
    while len(data) < count:
        more = sock.recv(1 << 20)
        assert more, f"closed after {len(data)} of {count} bytes"
        data += more
    return data


@pytest.mark.parametrize("way", ["up", "down"])
def test_toward_a_peer_that_never_reads_the_relay_stops_reading_at_its_bound(listener, way):
    with Relay(endpoint_of(listener), hold_limit=200_000) as relay:
        client, accepted = connect_through(relay.endpoint, listener)
        sender, reader = (client, accepted) if way == "up" else (accepted, client)
        written, stalled = push(sender, seconds=20, stalled_after=0.5)
        assert stalled, f"the sender was never stopped ({written} bytes taken)"
        assert relay.buffered <= 200_000 + READ_BYTES
        assert relay.paused >= 1 and relay.trace.count("backpressure") == relay.paused
        data = received_all(reader, written)  # the reader wakes up: nothing was lost
        assert data == (CHUNK * (written // len(CHUNK) + 1))[:written]
        assert relay.wait_until(lambda: relay.buffered == 0, 5)
        client.close()
        accepted.close()


def test_all_connections_together_stay_under_the_total_bound(listener):
    with Relay(endpoint_of(listener), hold_limit=400_000, total_limit=500_000) as relay:
        pairs = [connect_through(relay.endpoint, listener) for _ in range(3)]
        for client, _ in pairs:
            assert push(client, seconds=20, stalled_after=0.5)[1], "each sender is stopped"
        assert relay.buffered <= 500_000 + READ_BYTES, "the total bound, not 3 x 400,000"
        assert relay.paused >= 2, "one sender at its own bound, the others at the total"
        for client, accepted in pairs:
            client.close()
            accepted.close()
        assert relay.wait_until(lambda: relay.connections == 0 and relay.buffered == 0, 5)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
@pytest.mark.parametrize("way", ["up", "down"])
def test_the_relay_process_holds_its_bound_toward_a_peer_that_never_reads(listener, way):
    """Before the bound covered released bytes, this grew by 1,428 MiB in 6 s."""
    with Role("relay", "--target", endpoint_of(listener), "--hold-bytes", str(MiB),
              stdin=True) as relay:
        client, accepted = connect_through(relay.endpoint(), listener)
        sender = client if way == "up" else accepted
        before = rss_bytes(relay.process.pid)
        written, stalled = push(sender, seconds=20, stalled_after=1.0)
        grown = peak_rss_bytes(relay.process.pid) - before
        assert stalled, f"the sender was never stopped ({written} bytes taken)"
        assert grown < 16 * MiB, f"grew {grown / MiB:.0f} MiB (bound: 1 MiB + 64 KiB)"
        relay.type("status")
        status = relay.expect(r"(\d+) held \(bounds 1048576 a direction.*?(\d+) pause")
        assert int(status.group(1)) <= MiB + READ_BYTES and int(status.group(2)) >= 1
        client.close()
        accepted.close()
