"""A classroom with real hosts: Linux network namespaces joined by veth links.

The queue runs in one namespace (the instructor's laptop), 30 workers and 10 clients in ten
others (the students' laptops), all joining over CURVE with the queue's join lines. Under a
steady load: a peer with no key and one with a wrong key say READY and wait for work; six
workers are SIGKILLed and started again; one student's link is taken down (a real partition:
no TCP close) and brought back. Nothing may be lost or mismatched, the cut-off workers must be
purged within liveness x interval, and the two strangers must never get a request, each
counted as one failed handshake.

Needs root and `ip netns` (`netns.py`); skipped with the reason otherwise. Traffic stays
inside the namespaces this test makes, all removed after.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Iterator

import netns
import pytest
import zmq
from processes import Role

INTERVAL_MS, LIVENESS = 200, 3
SILENCE_S = LIVENESS * INTERVAL_MS / 1000  # what a cut-off worker is purged after
SLACK_S = 0.25  # a loaded 2-core machine's scheduling, and reading the queue's log line
STUDENTS, WORKERS_EACH = 10, 3
CUT_OFF = 10  # this student's link goes down; no client runs there, so none can be cut off
CLIENTS = [1, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # the student namespace of each of the 10 clients
KILLED = [(1, 1), (3, 2), (4, 3), (6, 1), (8, 2), (9, 3)]  # (student, worker): SIGKILLed

BEAT = ("--heartbeat-ms", str(INTERVAL_MS), "--liveness", str(LIVENESS))
BACKOFF = ("--reconnect-min-ms", "200", "--reconnect-max-ms", "800")

STRANGER = """
import signal, sys, zmq
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
endpoint, server_key = sys.argv[1], sys.argv[2:]
context = zmq.Context()
context.linger = 0
dealer = context.socket(zmq.DEALER)
dealer.reconnect_ivl = -1  # one handshake attempt: exactly one failure for the queue to count
if server_key:  # a well-formed CURVE key, but not the queue's
    dealer.curve_serverkey = server_key[0].encode()
    dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()
dealer.connect(endpoint)
try:
    dealer.send(b"\\x01", zmq.NOBLOCK)  # READY: give me work
except zmq.Again:
    pass  # refused already: no connection is left to say it on
print("waiting for work", flush=True)
received = 0
while not stopped:
    if dealer.poll(100):
        dealer.recv_multipart()
        received += 1
print(f"received {received}", flush=True)
"""


@pytest.fixture
def classroom() -> Iterator[netns.Classroom]:
    try:
        with netns.classroom(STUDENTS) as room:
            yield room
    except netns.Unavailable as why:
        pytest.skip(str(why))


def worker_name(n: int, k: int) -> str:
    """Two students both pick `alice`, as they do."""
    return "alice" if k == 1 and n in (1, 2) else f"s{n}w{k}"


def wait_for_names(queue: Role, kind: str, names: list[str], timeout: float) -> dict[str, float]:
    """Wait until the queue has logged a `kind` event (join, purge, ...) naming each of
    `names` (a shown name may carry `#2`); returns when each was read (time.monotonic)."""
    waiting, seen = Counter(names), {}
    deadline = time.monotonic() + timeout
    while +waiting:
        left = deadline - time.monotonic()
        name = queue.expect(rf"\s{kind}\s+([^\s#]+)(#\d+)?\s", timeout=max(0.0, left)).group(1)
        if waiting[name] > 0:
            waiting[name] -= 1
            seen[name] = time.monotonic()
    return seen


def wait_for_progress(clients: dict[str, Role], timeout: float = 15) -> None:
    """Wait until every client's live line shows more answered than its last one read."""
    before = {name: answered(client) for name, client in clients.items()}
    for name, client in clients.items():
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            now = int(client.expect(rf"live: {name}: (\d+) answered", timeout=left).group(1))
            if now > before[name]:
                break


def answered(client: Role) -> int:
    """The newest answered count a steady-load client has printed (0 before its first)."""
    live = client.newest(r"live: \S+: (\d+) answered")
    return int(live.group(1)) if live else 0


def test_a_classroom_rides_out_strangers_kills_and_a_partition(classroom):
    roles: list[Role] = []

    def start(n: int, *args: str, code: str | None = None) -> Role:
        roles.append(Role(*args, namespace=classroom.students[n], code=code))
        return roles[-1]

    def start_worker(n: int, k: int) -> Role:
        return start(n, "paranoid-worker", "--name", worker_name(n, k), "--quiet", *BEAT,
                     *BACKOFF, "--work-ms", "20", "--join",
                     f"tcp://{classroom.address(n)}:5556/{key}")

    try:
        queue = Role("paranoid-queue", "--curve", "--quiet", "--frontend", "tcp://*:5555",
                     "--backend", "tcp://*:5556", *BEAT, namespace=classroom.queue)
        roles.append(queue)
        key = queue.expect(r"join \(workers\): \S+/([0-9a-f]{64})").group(1)
        workers = {(n, k): start_worker(n, k)
                   for n in range(1, STUDENTS + 1) for k in range(1, WORKERS_EACH + 1)}
        wait_for_names(queue, "join", [worker_name(*nk) for nk in workers], timeout=30)

        # strangers: READY from a peer with no key and from one with a wrong key
        strangers = [start(5, f"tcp://{classroom.address(5)}:5556", code=STRANGER),
                     start(5, f"tcp://{classroom.address(5)}:5556",
                           zmq.curve_keypair()[0].decode(), code=STRANGER)]
        # a wrong key always fails the handshake; a peer with no key may hang up first on
        # seeing CURVE's greeting, and is then counted as a connection closed mid-handshake
        stranger_lines = [queue.expect(r"(handshake-failed|connect-only) ").group(1)
                          for _ in range(2)]
        assert "handshake-failed" in stranger_lines, stranger_lines

        clients = {}
        for c, n in enumerate(CLIENTS, start=1):
            name = f"s{n}c{c}"
            clients[name] = start(n, "lazy-client", "--name", name, "--forever", "--rate",
                                  "20", "--timeout-ms", "1000", "--retries", "5",
                                  "--summary-ms", "250",
                                  "--join", f"tcp://{classroom.address(n)}:5555/{key}")
        wait_for_progress(clients)

        # six workers SIGKILLed under load (their connections close), then started again
        for nk in KILLED:
            assert workers[nk].stop(signum=signal.SIGKILL) == -signal.SIGKILL
        killed = [worker_name(*nk) for nk in KILLED]
        workers.update({nk: start_worker(*nk) for nk in KILLED})
        wait_for_names(queue, "join", killed, timeout=15)
        wait_for_progress(clients)

        # a partition: the cut-off student's link goes down, nothing closes
        cut_off = [worker_name(CUT_OFF, k) for k in range(1, WORKERS_EACH + 1)]
        cut_at = time.monotonic()
        classroom.cut(CUT_OFF)
        purged_at = wait_for_names(queue, "purge", cut_off, timeout=5)
        after = {name: at - cut_at for name, at in purged_at.items()}
        assert all(SILENCE_S - INTERVAL_MS / 1000 - SLACK_S <= s <= SILENCE_S + SLACK_S
                   for s in after.values()), f"purged after {after} (limit {SILENCE_S} s)"
        wait_for_progress(clients)
        classroom.heal(CUT_OFF)
        wait_for_names(queue, "join", cut_off, timeout=10)
        wait_for_progress(clients)

        for client in clients.values():
            client.process.send_signal(signal.SIGTERM)
        for name, client in clients.items():
            assert client.stop(signum=None) == 128 + signal.SIGTERM, client.stderr
            final = client.expect(rf"stopped: {name}: (\d+) answered, \d+ retried, (\d+) "
                                  r"lost, (\d+) mismatched")
            assert int(final.group(1)) > 0 and final.group(2, 3) == ("0", "0"), final.group(0)
        for stranger in strangers:
            assert stranger.stop() == 0
            stranger.expect(r"received 0$")
        for worker in workers.values():
            assert worker.stop() == 0, worker.stderr
        assert queue.stop() == 0, queue.stderr
        log = queue.all_lines()
        counted = {kind: max([int(m.group(1)) for line in log
                              if (m := re.search(rf"{kind}.*\((\d+) in all\)", line))],
                             default=0) for kind in ("handshake-failed", "connect-only")}
        assert counted["handshake-failed"] >= 1 and sum(counted.values()) == 2, \
            f"only the two strangers failed their handshakes: {counted}"
        assert sum("two workers are named 'alice'" in line for line in log) == 1, "warned once"
        assert not [line for line in log if re.search(r"\smismatch\s", line)], \
            "every worker heartbeats at the queue's interval"
    finally:
        for role in reversed(roles):
            role.stop()
