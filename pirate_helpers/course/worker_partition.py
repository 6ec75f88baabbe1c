"""A real network partition for lesson 05, beside the relay's imitation of one.

A Paranoid Pirate worker runs as a process (`pirate paranoid-worker`) in a Linux network
namespace of its own, joined to this one by a veth link; `cut()` takes the link down. Nothing
closes: no FIN, no RST, and a new connection's SYN goes unanswered, which the relay (it
accepts connections and acknowledges bytes itself) cannot show. The worker's lines are added
to a `Trace` as they arrive, so it shares the kernel's timeline with the queue.

The namespace is `pirate_helpers.netns`'s (`Unavailable` says in one line why it cannot be
made); the 198.19.N.0/24 subnet (benchmark space, RFC 2544) is made from the process id, so
two notebooks do not collide; `with` removes the namespace and both ends of the link.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .. import netns
from ..netns import Unavailable as Unavailable  # the lesson catches it from here
from ..trace import Trace

LINE = re.compile(r"^\s*[\d.]+s\s+(\S+)\s+(\S+)\s+(.*)$")  # "  1.044s  w1  backoff  queue silent"


@dataclass
class Link:
    """The veth link to the namespace: `address` is this side's, the worker connects to it."""

    net: netns.Network
    address: str

    @property
    def namespace(self) -> str:
        return self.net.namespaces["worker"]

    @property
    def device(self) -> str:
        return self.net.device(None, "worker")

    def cut(self) -> None:
        self.net.cut(None, "worker")

    def heal(self) -> None:
        self.net.heal(None, "worker")

    def wait_connecting(self, timeout: float = 2.0) -> int:
        """Connections the namespace has started to `address` and not completed (SYN-SENT)
        once there are any, or 0 after `timeout` (a worker's connect is started by libzmq's
        I/O thread a moment after the worker says it reconnects)."""
        deadline = time.monotonic() + timeout
        pending = self.net.connecting("worker", self.address)
        while pending == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # a bounded poll of the kernel's socket table; nothing to wait on
            pending = self.net.connecting("worker", self.address)
        return pending


@contextmanager
def linked_namespace() -> Iterator[Link]:
    """A namespace and a veth link to it, removed afterwards; `Unavailable` where impossible."""
    subnet = f"198.19.{1 + os.getpid() % 250}"
    with netns.network(["worker"], [(None, f"{subnet}.1/24", "worker", f"{subnet}.2/24")]
                       ) as net:
        yield Link(net, f"{subnet}.1")


@contextmanager
def worker_in(link: Link, connect: str, trace: Trace, *options: str) -> Iterator[None]:
    """`pirate paranoid-worker --connect connect OPTIONS` inside the namespace; each line it
    prints (backoff, reconnect, ...) becomes an event of `trace` when it arrives."""
    process = subprocess.Popen(
        netns.command(link.namespace, sys.executable, "-m", "pirate_helpers",
                      "paranoid-worker", "--connect", connect, *options),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if match := LINE.match(line):
                trace.add(*match.groups())

    reader = threading.Thread(target=read, name="partition-worker-lines", daemon=True)
    reader.start()
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        reader.join(5)
