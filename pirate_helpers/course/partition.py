"""A real network partition for lesson 08: two Linux network namespaces joined by a veth
link that can be taken down, beside the course's `Relay`.

Taking a link down is what a partition is: nothing closes, nothing answers, no byte is
acknowledged, so a connect never completes and the kernel retransmits what is in flight
until it gives up. The relay cannot show either: it accepts connections and acknowledges
bytes itself. The hosts come from `pirate_helpers.netns`; where they cannot be made,
`Unavailable` says why in one line.

Code runs "on a host" through `Link.run(host, function)`: a fresh thread joins that host's
namespace and calls `function` there. A zmq.Context whose first socket is made there starts
its I/O thread there too, and an Actor started there runs there: each TCP connection either
makes or accepts lives in that namespace, whichever thread later uses its sockets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import zmq

from .. import netns
from ..netns import Unavailable as Unavailable  # the lesson catches it from here
from .exercises import NotYet, waits_for_answer

ADDRESSES = {"a": "198.18.0.1", "b": "198.18.0.2"}
"""Benchmark addresses (RFC 2544) that exist only inside the two namespaces."""
RTO_MIN_S, RTO_MAX_S = 0.2, 120.0  # Linux's retransmission timeout bounds (TCP_RTO_MIN/MAX)
T = TypeVar("T")


@dataclass
class Link:
    """Hosts "a" and "b" (namespaces), one veth link between them, addresses `ADDRESSES`."""

    net: netns.Network

    def cut(self) -> None:
        """b's end of the link down: the link is cut both ways."""
        self.net.cut("b", "a")

    def heal(self) -> None:
        self.net.heal("b", "a")

    def run(self, host: str, function: Callable[[], T]) -> T:
        """Call `function` in a thread that has joined `host`'s namespace; its result."""
        return netns.run_inside(self.net.namespaces[host], function)

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
        return _segments(netns.run(self.net.namespaces[host], "ss", "-tinH"))


def segments_out_here(port: int) -> int:
    """The same count for this kernel's own connections to 127.0.0.1:`port` (the relay)."""
    return _segments(netns.run(None, "ss", "-tinH", "dst", f"127.0.0.1:{port}"))


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
    """Make the two hosts and the link; delete them afterwards, however the block ends.
    Raises `Unavailable` with a one-line reason where that is impossible."""
    with netns.network(ADDRESSES, [("a", f"{ADDRESSES['a']}/30", "b", f"{ADDRESSES['b']}/30")]
                       ) as net:
        yield Link(net)


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
