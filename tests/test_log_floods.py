"""Whatever a peer can make a role say, it says a few times, then sums up with exact counts.

Each test floods one kind from outside a real `pirate` role running `--quiet`: the broker's
`expire` (requests for a service nobody offers), its `ready` and `leave` (a worker that
says READY and DISCONNECT over and over), a queue's `join` (many workers with new names)
and the relay's `refused` (connections to a target nobody serves). The lines printed and the
summaries' "more" must add up to the flood exactly, and only a few lines may be printed.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time

import pytest
import zmq
from processes import Role

from pirate_helpers.cli.common import FIRST_PER_WINDOW, RATE_LIMITED
from pirate_helpers.majordomo.protocol import DISCONNECT, MDPC, MDPW, READY
from pirate_helpers.paranoid import PPP_READY

FLOOD = 300
FIRST = 5  # EventLog's default: lines per kind per 10 s window (joins: more)


def printed_and_summed(lines: list[str], kind: str) -> tuple[int, int, int]:
    """Lines of `kind`, the "more" of its summaries, and the last "in all"."""
    printed = sum(1 for line in lines if re.match(rf"\s*[\d.]+s\s+\S+.*?\s{kind}\s", line))
    summaries = [re.fullmatch(rf"summary: (\d+) more {kind} \((\d+) in all\)", line)
                 for line in lines]
    summaries = [match for match in summaries if match]
    more = sum(int(match.group(1)) for match in summaries)
    in_all = int(summaries[-1].group(2)) if summaries else printed
    return printed, more, in_all


def assert_summed_up(role: Role, kind: str, flood: int) -> None:
    """Stop the role (its log sums up what is left) and check the counts add up."""
    assert role.stop() == 0, role.stderr
    printed, more, in_all = printed_and_summed(role.all_lines(), kind)
    assert printed + more == in_all == flood, (kind, printed, more, in_all)
    first = FIRST_PER_WINDOW.get(kind, FIRST)
    assert printed <= 2 * first, f"{printed} {kind} lines for a flood of {flood}"


def test_every_kind_a_peer_can_trigger_is_rate_limited():
    assert {"expire", "ready", "leave", "join", "refused", "purge",
            "handshake-failed"} <= RATE_LIMITED


@pytest.fixture
def context():
    ctx = zmq.Context()
    ctx.linger = 0
    yield ctx
    ctx.destroy(linger=0)


def test_the_brokers_expire_flood(context):
    """Summed up while the broker runs: the window's summary line, 10 s after the first."""
    broker = Role("majordomo-broker", "--quiet", "--request-expiry-ms", "1")
    endpoint = broker.expect(r"listening on (\S+)").group(1)
    client = context.socket(zmq.DEALER)
    client.connect(endpoint)
    for n in range(FLOOD):
        client.send_multipart([b"", MDPC, b"nobody-offers-this", str(n).encode()])
    broker.expect(rf"summary: \d+ more expire \({FLOOD} in all\)", timeout=25)
    assert_summed_up(broker, "expire", FLOOD)


def test_the_brokers_ready_and_leave_flood(context):
    broker = Role("majordomo-broker", "--quiet")
    endpoint = broker.expect(r"listening on (\S+)").group(1)
    worker = context.socket(zmq.DEALER)
    worker.connect(endpoint)
    for _ in range(FLOOD):
        worker.send_multipart([b"", MDPW, READY, b"echo"])
        worker.send_multipart([b"", MDPW, DISCONNECT])
    # one connection's messages are handled in order: this answer comes after all of them
    worker.send_multipart([b"", MDPC, b"mmi.service", b"echo"])
    assert worker.poll(10_000), "the broker never answered"
    assert worker.recv_multipart()[-1] == b"404", "every worker left"
    assert_summed_up(broker, "ready", FLOOD)
    printed, more, in_all = printed_and_summed(broker.all_lines(), "leave")
    assert printed + more == in_all == FLOOD and printed <= 2 * FIRST


def test_a_queues_join_flood(context):
    queue = Role("paranoid-queue", "--quiet", "--heartbeat-ms", "200")
    backend = queue.expect(r"backend \(workers\) on (\S+)").group(1)
    workers = []
    for n in range(FLOOD):
        worker = context.socket(zmq.DEALER)
        worker.routing_id = f"fake-{n}".encode()
        worker.connect(backend)
        worker.send(PPP_READY)
        workers.append(worker)
    deadline = time.monotonic() + 20
    for worker in workers:  # the queue heartbeats each worker it knows: all have joined
        assert worker.poll(max(0, int(1000 * (deadline - time.monotonic())))), "not joined"
    assert_summed_up(queue, "join", FLOOD)


def test_the_relays_refused_flood():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    target = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nobody listens there: every carried connection is refused
    relay = Role("relay", "--quiet", "--target", target, stdin=True)
    port = int(relay.expect(r"listening on tcp://[\d.]+:(\d+)").group(1))
    for _ in range(FLOOD):
        # the relay resets each once the target refuses (traced first), at times so fast
        # that the reset is what connect itself reports
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", port), timeout=5) as connection:
            connection.settimeout(5)
            connection.recv(1)
    assert_summed_up(relay, "refused", FLOOD)
