"""A real network partition for lesson 05, beside the relay's imitation of one.

A Paranoid Pirate worker runs as a process (`pirate paranoid-worker`) in a Linux network
namespace of its own, joined to this one by a veth link; `cut()` takes the link down. Nothing
closes: no FIN, no RST, and a new connection's SYN goes unanswered, which the relay (it
accepts connections and acknowledges bytes itself) cannot show. The worker's lines are added
to a `Trace` as they arrive, so it shares the kernel's timeline with the queue.

Needs root and iproute2's `ip netns`; `Unavailable` says in one line why not. Names and the
198.19.N.0/24 subnet (benchmark space, RFC 2544) are made from the process id, so two
notebooks do not collide; `with` removes the namespace and both ends of the link.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..trace import Trace

LINE = re.compile(r"^\s*[\d.]+s\s+(\S+)\s+(\S+)\s+(.*)$")  # "  1.044s  w1  backoff  queue silent"


class Unavailable(Exception):
    """This machine cannot make network namespaces (not root, no `ip`, no permission)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Link:
    """The veth link to the namespace: `address` is this side's, the worker connects to it."""

    namespace: str
    device: str
    address: str

    def cut(self) -> None:
        _ip("link", "set", self.device, "down")

    def heal(self) -> None:
        _ip("link", "set", self.device, "up")

    def connecting(self) -> int:
        """Connections the namespace has started to `address` and not completed (SYN-SENT)."""
        out = subprocess.run(["ip", "netns", "exec", self.namespace, "ss", "-Htn", "state",
                              "syn-sent", "dst", self.address], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        return len(out.splitlines())

    def wait_connecting(self, timeout: float = 2.0) -> int:
        """`connecting()` once it is above 0, or 0 after `timeout` (a worker's connect is
        started by libzmq's I/O thread a moment after the worker says it reconnects)."""
        deadline = time.monotonic() + timeout
        while (pending := self.connecting()) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # a bounded poll of the kernel's socket table; nothing to wait on
        return pending


@contextmanager
def linked_namespace() -> Iterator[Link]:
    """A namespace and a veth link to it, removed afterwards; `Unavailable` where impossible."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("ss") is None:
        raise Unavailable("a real partition needs root, iproute2's `ip netns` and `ss`")
    tag = os.getpid() % 100000
    namespace, here, there = f"pp{tag}", f"pp{tag}h", f"pp{tag}t"
    subnet = f"198.19.{1 + os.getpid() % 250}"
    try:
        _ip("netns", "add", namespace)
    except subprocess.CalledProcessError as error:
        raise Unavailable(f"cannot make a network namespace here: "
                          f"{error.stderr.decode().strip()}") from None
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/24", "dev", here)
        _ip("link", "set", here, "up")
        for args in (("addr", "add", f"{subnet}.2/24", "dev", there),
                     ("link", "set", there, "up"), ("link", "set", "lo", "up")):
            _ip("netns", "exec", namespace, "ip", *args)
        yield Link(namespace, here, f"{subnet}.1")
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)


@contextmanager
def worker_in(link: Link, connect: str, trace: Trace, *options: str) -> Iterator[None]:
    """`pirate paranoid-worker --connect connect OPTIONS` inside the namespace; each line it
    prints (backoff, reconnect, ...) becomes an event of `trace` when it arrives."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", link.namespace, sys.executable, "-m", "pirate_helpers",
         "paranoid-worker", "--connect", connect, *options],
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
