"""A real network partition for lesson 08: two Linux network namespaces joined by a veth
link that can be taken down, beside the course's `Relay`.

Taking a link down is what a partition is: nothing closes, nothing answers, no byte is
acknowledged, so a connect never completes and the kernel retransmits what is in flight
until it gives up. The relay cannot show either: it accepts connections and acknowledges
bytes itself. Needs root and iproute2 (`ip netns`, `ss`); `Unavailable` says why not.

Code runs "on a host" through `Link.run(host, function)`: a fresh thread joins that host's
namespace and calls `function` there. A zmq.Context whose first socket is made there starts
its I/O thread there too, and an Actor started there runs there: each TCP connection either
makes or accepts lives in that namespace, whichever thread later uses its sockets.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import zmq

from .exercises import NotYet, waits_for_answer

CLONE_NEWNET = 0x40000000
ADDRESSES = {"a": "198.18.0.1", "b": "198.18.0.2"}
"""Benchmark addresses (RFC 2544) that exist only inside the two namespaces."""
RTO_MIN_S, RTO_MAX_S = 0.2, 120.0  # Linux's retransmission timeout bounds (TCP_RTO_MIN/MAX)
_numbers = itertools.count(1)
_alive: set[str] = set()  # namespaces made and not yet deleted: deleted at exit at the latest
T = TypeVar("T")


class Unavailable(Exception):
    """This machine cannot make network namespaces; the message says why, in one line."""


def _run(*command: str) -> str:
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=10)
    return done.stdout


@dataclass
class Link:
    """Hosts "a" and "b" (namespaces), one veth link between them, addresses `ADDRESSES`."""

    namespaces: dict[str, str]
    interface: str  # b's end of the link: taking it down cuts the link both ways

    def cut(self) -> None:
        _run("ip", "netns", "exec", self.namespaces["b"], "ip", "link", "set", self.interface,
             "down")

    def heal(self) -> None:
        _run("ip", "netns", "exec", self.namespaces["b"], "ip", "link", "set", self.interface,
             "up")

    def run(self, host: str, function: Callable[[], T]) -> T:
        """Call `function` in a thread that has joined `host`'s namespace; its result."""
        results: list[T] = []
        errors: list[BaseException] = []

        def inside() -> None:
            try:
                with open(f"/run/netns/{self.namespaces[host]}") as handle:
                    if ctypes.CDLL(None, use_errno=True).setns(handle.fileno(), CLONE_NEWNET):
                        raise OSError(ctypes.get_errno(), "setns failed")
                results.append(function())
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)

        thread = threading.Thread(target=inside, name=f"in-{host}", daemon=True)
        thread.start()
        thread.join(10)
        if errors:
            raise errors[0]
        if not results:
            raise TimeoutError(f"the call in host {host} did not end within 10 s")
        return results[0]

    def context(self, host: str) -> zmq.Context:
        """A context (linger 0) whose I/O thread, so every connection it makes, is in `host`."""

        def make() -> zmq.Context:
            context = zmq.Context()
            context.linger = 0
            context.socket(zmq.PAIR).close()  # the first socket starts the I/O thread: here
            return context

        return self.run(host, make)

    def segments_out(self, host: str) -> int:
        """Data segments `host`'s kernel has sent on its open TCP connections (first tries
        and retransmissions alike); a count taken before and after a send tells them apart."""
        return _segments(_run("ip", "netns", "exec", self.namespaces[host], "ss", "-tinH"))


def segments_out_here(port: int) -> int:
    """The same count for this kernel's own connections to 127.0.0.1:`port` (the relay)."""
    return _segments(_run("ss", "-tinH", "dst", f"127.0.0.1:{port}"))


def _segments(shown: str) -> int:
    return sum(int(count) for count in re.findall(r"data_segs_out:(\d+)", shown))


def give_up_s(retries: int) -> float:
    """How long Linux keeps retransmitting unacknowledged data before it drops the
    connection, for `net.ipv4.tcp_retries2` = `retries`: the timeout starts at 200 ms and
    doubles up to 120 s (the kernel's `retransmits_timed_out`)."""
    return sum(min(RTO_MIN_S * 2**n, RTO_MAX_S) for n in range(retries + 1))


def tcp_retries2() -> int:
    with open("/proc/sys/net/ipv4/tcp_retries2") as handle:
        return int(handle.read())


@contextmanager
def link() -> Iterator[Link]:
    """Make two namespaces and the link; delete them afterwards, however the block ends.
    Raises `Unavailable` with a one-line reason where that is impossible."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("ss") is None:
        raise Unavailable("a real partition needs root and iproute2 (`ip netns`, `ss`)")
    prefix = f"pp{os.getpid()}n{next(_numbers)}"
    namespaces = {host: f"{prefix}{host}" for host in ADDRESSES}
    made: list[str] = []
    try:
        try:
            for namespace in namespaces.values():
                _run("ip", "netns", "add", namespace)
                made.append(namespace)
                _alive.add(namespace)
        except subprocess.CalledProcessError as error:
            raise Unavailable(f"cannot make network namespaces here: {error.stderr.strip()}"
                              ) from None
        ends = {host: f"{prefix}{host}v" for host in ADDRESSES}
        _run("ip", "link", "add", ends["a"], "netns", namespaces["a"], "type", "veth", "peer",
             "name", ends["b"], "netns", namespaces["b"])
        for host, namespace in namespaces.items():
            inside = ("ip", "netns", "exec", namespace, "ip")
            _run(*inside, "addr", "add", f"{ADDRESSES[host]}/30", "dev", ends[host])
            _run(*inside, "link", "set", ends[host], "up")
            _run(*inside, "link", "set", "lo", "up")
        yield Link(namespaces, ends["b"])
    finally:
        _delete(made)


@atexit.register
def _delete_left_over() -> None:
    """A kernel that exits in the middle of `link()` still leaves no namespace behind."""
    _delete(list(_alive))


def _delete(namespaces: list[str]) -> None:
    for namespace in namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        _alive.discard(namespace)


# -- lesson 08's exercise -------------------------------------------------------------------
STATEMENTS = {
    "a": "a new connect to the far side completes",
    "b": "the kernel sends the request in flight again, and again",
    "c": "the applications see nothing until a heartbeat or a timeout tells them",
    "d": "with no heartbeats and no TCP_MAXRT, the connection is dropped after about 15 minutes",
}
REAL_ONLY = {"b", "d"}
_HINTS = {
    "a": "the relay accepts connections itself, so through its cut a connect completes; "
         "across a real partition the SYN is never answered",
    "c": "that one is true of both: silence is exactly what the relay shows truly",
}


@waits_for_answer
def check_real_only(letters: set[str]) -> str:
    """Lesson 08's exercise: which statements hold across a real partition but never
    through the relay's cut (a set of letters from `STATEMENTS`)."""
    if not isinstance(letters, (set, frozenset, list, tuple)) or not set(letters) <= set(
            STATEMENTS):
        raise NotYet(f"a set of letters from {sorted(STATEMENTS)}, e.g. {{'a'}}, not "
                     f"{letters!r}")
    chosen = set(letters)
    for letter in sorted(chosen - REAL_ONLY):
        raise NotYet(f"not {letter!r}: {_HINTS[letter]}")
    for letter in sorted(REAL_ONLY - chosen):
        raise NotYet(f"{letter!r} is missing: the relay acknowledges every byte itself, so "
                     f"its sender's TCP never retransmits and never gives up")
    return "✔ right: only a real network leaves bytes unacknowledged, and only then does TCP act"
