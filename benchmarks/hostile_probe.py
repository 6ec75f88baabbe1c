"""The issue-9 probes against the `pirate` roles as processes, printing what each one cost.

For each serving role: RSS before and after one peer sends 100 frames of 10 MB, with a
normal request answered meanwhile; the role's CPU time for one printable 10 MB frame it is
allowed to take (`--max-message-bytes 20000000`), and how long a normal request waited.

    python benchmarks/hostile_probe.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from processes import Role  # noqa: E402

from pirate_helpers import LazyPirateClient, ParanoidWorker  # noqa: E402
from pirate_helpers.endpoints import MAX_MESSAGE_BYTES, set_max_message_bytes  # noqa: E402
from pirate_helpers.simple import SimpleWorker  # noqa: E402

TEN_MB = 10_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1e6


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(role: str, *options: str) -> tuple[Role, str, list]:
    """The role as a process, the endpoint clients use, and its worker actors."""
    process = Role(role, "--quiet", *options)
    if role == "lazy-server":
        return process, process.endpoint(), []
    frontend = process.endpoint(r"frontend \(clients\) on")
    backend = process.endpoint(r"backend \(workers\) on")
    worker_class = SimpleWorker if role == "simple-queue" else ParanoidWorker
    options = {} if role == "simple-queue" else {"heartbeat_interval": 1.0}
    return process, frontend, [worker_class("probe-worker", connect=backend, **options).start()]


def request_seconds(endpoint: str) -> float:
    started = time.monotonic()
    with LazyPirateClient(endpoint, timeout=2, retries=5) as client:
        assert client.request(b"normal") == [b"normal"]
    return time.monotonic() - started


def big_frames(role: str) -> tuple[float, float, float]:
    """RSS before, after 100 frames of 10 MB from one peer, and a normal request's time."""
    process, endpoint, workers = start(role)
    try:
        request_seconds(endpoint)
        before = rss_mb(process.process.pid)
        ctx = zmq.Context()
        ctx.linger = 0
        hostile = ctx.socket(zmq.DEALER)
        hostile.sndhwm = 0
        hostile.connect(endpoint)
        payload = zmq.Frame(b"\x00" * TEN_MB)
        for _ in range(100):
            hostile.send(payload, copy=False)
        waited = request_seconds(endpoint)
        time.sleep(1.0)  # a probe, not a test: let the peer's data arrive
        hostile.close()
        ctx.term()
        after = rss_mb(process.process.pid)
        return before, after, waited
    finally:
        for worker in workers:
            worker.stop()
        process.stop()


def printable_frame(role: str) -> tuple[float, float]:
    """The role's CPU for one printable 10 MB frame it may take, and a request's wait."""
    set_max_message_bytes(2 * TEN_MB)  # our client and workers take it too
    process, endpoint, workers = start(role, "--max-message-bytes", str(2 * TEN_MB))
    try:
        request_seconds(endpoint)
        ctx = zmq.Context()
        ctx.linger = 0
        with LazyPirateClient(endpoint, timeout=5, retries=1) as big:
            cpu_before = cpu_s(process.process.pid)
            assert big.request(b"x" * TEN_MB) == [b"x" * TEN_MB]
            cpu = cpu_s(process.process.pid) - cpu_before
        waited = request_seconds(endpoint)
        ctx.term()
        return cpu, waited
    finally:
        set_max_message_bytes(MAX_MESSAGE_BYTES)
        for worker in workers:
            worker.stop()
        process.stop()


def main() -> None:
    print(f"{'role':16} {'RSS before':>11} {'after 100x10MB':>15} {'growth':>8} "
          f"{'request':>9} | {'CPU, 10 MB echo':>16} {'request':>9}")
    for role in ("lazy-server", "simple-queue", "paranoid-queue"):
        before, after, waited = big_frames(role)
        cpu, waited_big = printable_frame(role)
        print(f"{role:16} {before:9.1f}MB {after:13.1f}MB {after - before:6.1f}MB "
              f"{waited * 1000:7.1f}ms | {cpu * 1000:14.0f}ms {waited_big * 1000:7.1f}ms")
    print("(CPU: the role's process time to receive, describe and forward one 10 MB request "
          "and its reply; its page size makes the resolution", 1000 // TICKS, "ms)")


if __name__ == "__main__":
    main()
