"""Bounded memory and bounded logging: what a flood costs a role, and what it prints."""

from __future__ import annotations

import os

import pytest
import zmq
from processes import Role

from pirate_helpers import LazyPirateClient, ParanoidWorker
from pirate_helpers.cli.common import EventLog
from pirate_helpers.simple import SimpleWorker
from pirate_helpers.trace import Event

TEN_MB = 10_000_000


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def answered(endpoint: str) -> bool:
    with LazyPirateClient(endpoint, timeout=2, retries=3) as client:
        return client.request(b"normal") == [b"normal"]


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
@pytest.mark.parametrize("role", ["lazy-server", "simple-queue", "paranoid-queue"])
def test_a_hundred_frames_of_10_mb_cost_under_50_mb_and_requests_stay_answered(role):
    with Role(role, "--quiet") as process:
        workers = []
        if role == "lazy-server":
            endpoint = process.endpoint()
        else:
            endpoint = process.endpoint(r"frontend \(clients\) on")
            backend = process.endpoint(r"backend \(workers\) on")
            worker = SimpleWorker if role == "simple-queue" else ParanoidWorker
            options = {} if role == "simple-queue" else {"heartbeat_interval": 1.0}
            workers.append(worker("w1", connect=backend, **options).start())
        assert answered(endpoint)
        before = rss_mb(process.process.pid)
        ctx = zmq.Context()
        ctx.linger = 0
        hostile = ctx.socket(zmq.DEALER)
        hostile.sndhwm = 1  # each send returns once the previous frame went to the wire
        hostile.reconnect_ivl = 1  # the role drops it at every frame: come straight back
        hostile.copy_threshold = 2 * TEN_MB  # copy, not zero-copy (which starts a GC thread)
        hostile.connect(endpoint)
        payload = b"\x00" * TEN_MB
        for n in range(1, 101):
            hostile.send(payload)
            if n % 25 == 0:
                assert answered(endpoint), f"a normal request after {n} big frames"
        grown = rss_mb(process.process.pid) - before
        ctx.destroy()
        for worker in workers:
            worker.stop()
        assert grown < 50, f"{role} grew by {grown:.0f} MB"
        assert process.stop() == 0


def test_rejections_are_printed_a_few_per_window_then_summed_up_exactly():
    now = [0.0]
    lines: list[str] = []
    log = EventLog(quiet=True, first=3, summary_every=10, clock=lambda: now[0],
                   write=lines.append)
    for n in range(1000):
        log(Event(0, "queue", "reject", f"junk {n}"))
    log(Event(0, "queue", "recv", "a message"))  # per message: not with --quiet
    log(Event(0, "queue", "purge", "w1 silent"))  # notable: always
    assert len(lines) == 4 and "further ones summed up every 10 s" in lines[2]
    assert "purge" in lines[3]
    now[0] = 10.0
    log.tick()
    assert lines[4] == "summary: 997 more reject (1000 in all)"
    log.tick()
    for n in range(5):  # a new window: a few lines again, then counted
        log(Event(0, "queue", "reject", f"later {n}"))
    assert len(lines) == 8 and "later 2" in lines[7] and "summed up" in lines[7]
    log.close()  # a role that stops prints what is left, so its counts add up
    assert lines[8:] == ["summary: 2 more reject (1005 in all)"]


def test_without_quiet_every_message_is_printed():
    lines: list[str] = []
    log = EventLog(quiet=False, write=lines.append)
    log(Event(0, "queue", "recv", "a message", peer="w1"))
    assert lines == ["   0.000s  queue <- w1  recv  a message"]
