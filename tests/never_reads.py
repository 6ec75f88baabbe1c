"""A sender pushing flat out through a relay toward a peer that never reads, and what the
relay process holds meanwhile: the probe of issue 20 (+1,428 MiB in 6 s before the relay
exerted backpressure). Shared by tests/test_relay_bounds.py and benchmarks/relay_memory.py."""

from __future__ import annotations

import select
import socket
import time

CHUNK = bytes(range(256)) * 256  # 64 KiB


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set (VmHWM), from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/PID/status")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/PID/status")


def push(sender: socket.socket, seconds: float, stalled_after: float = 1.0) -> tuple[int, bool]:
    """Write 64 KiB chunks as fast as `sender` takes them, for `seconds` at most; stop early
    once it has taken nothing for `stalled_after` s. Returns (bytes written, stalled)."""
    sender.setblocking(False)
    written, deadline = 0, time.monotonic() + seconds
    last_progress = time.monotonic()
    while time.monotonic() < deadline:
        _, writable, _ = select.select([], [sender], [], 0.1)
        if writable:
            try:
                written += sender.send(CHUNK)
                last_progress = time.monotonic()
                continue
            except BlockingIOError:
                pass
        if time.monotonic() - last_progress >= stalled_after:
            return written, True
    return written, False


def connect_through(relay_endpoint: str, listener: socket.socket) -> tuple[socket.socket,
                                                                          socket.socket]:
    """A client connected through the relay, and the target's side of that connection."""
    host, port = relay_endpoint.removeprefix("tcp://").rsplit(":", 1)
    client = socket.create_connection((host, int(port)), timeout=5)
    listener.settimeout(5)
    accepted, _ = listener.accept()
    return client, accepted
