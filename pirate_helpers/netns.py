"""Separate hosts on one Linux machine: network namespaces, each with its own loopback, joined
by veth links that can really go down (no FIN, no RST, a SYN never answered), which the
course's relay cannot show. Needs Linux, root and iproute2; `unavailable()` says why not.

Every namespace is named `pp<pid>n<k><host>`, so sessions never collide and the left-overs of
a killed run are recognised by their dead pid and deleted by the next `network()`.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

CLONE_NEWNET = 0x40000000
OURS = re.compile(r"^pp(\d+)n\d+")  # the names this module gives: pp<pid>n<k>...
_numbers = itertools.count(1)
_alive: set[str] = set()  # made and not yet deleted: deleted at interpreter exit at the latest
T = TypeVar("T")


class Unavailable(Exception):
    """This machine cannot make network namespaces; the message says why, in one line."""


def unavailable() -> str | None:
    """Why namespaces cannot be made here, in one line; None when they can (tried once)."""
    reason = _missing()
    if reason is None:
        probe = f"{unique_prefix()}probe"
        try:
            ip(None, "netns", "add", probe)
        except RuntimeError as error:
            reason = str(error)
        _delete([probe])
    return reason


def _missing() -> str | None:
    if sys.platform != "linux":
        return f"needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    missing = [tool for tool in ("ip", "ss") if shutil.which(tool) is None]
    if missing:
        return f"needs iproute2 (`{'`, `'.join(missing)}` not found)"
    return None


def unique_prefix() -> str:
    """The start of names that no other process and no other call in this one uses."""
    return f"pp{os.getpid()}n{next(_numbers)}"


def command(namespace: str | None, *argv: str) -> list[str]:
    """`argv` run inside `namespace` (None: here); `ip netns exec` execs it, so a signal
    sent to the process reaches the program itself."""
    return ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)


def run(namespace: str | None, *argv: str) -> str:
    """Run `argv` inside `namespace` (None: here); its stdout. A failure raises
    RuntimeError with the command and what it said, in one line."""
    done = subprocess.run(command(namespace, *argv), capture_output=True, text=True,
                          timeout=10)
    if done.returncode:
        said = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise RuntimeError(f"`{' '.join(command(namespace, *argv))}` failed: {said}")
    return done.stdout


def ip(namespace: str | None, *args: str) -> str:
    """`ip ARGS` inside `namespace` (None: here)."""
    return run(None, "ip", *(("-n", namespace) if namespace else ()), *args)


def tcp_count(namespace: str | None, state: str, *where: str) -> int:
    """TCP sockets in `state` (`ss` states: syn-sent, established...) matching `where`."""
    return len(run(namespace, "ss", "-Htn", "state", state, *where).splitlines())


def run_inside(namespace: str, function: Callable[[], T], timeout: float = 10.0) -> T:
    """Call `function` in a fresh thread that has joined `namespace`; its result (or its
    exception). A zmq.Context whose first socket is made there keeps its I/O thread there."""
    results: list[T] = []
    errors: list[BaseException] = []

    def inside() -> None:
        try:
            with open(f"/run/netns/{namespace}") as handle:
                if ctypes.CDLL(None, use_errno=True).setns(handle.fileno(), CLONE_NEWNET):
                    raise OSError(ctypes.get_errno(), "setns failed")
            results.append(function())
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=inside, name=f"in-{namespace}", daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not results:
        raise TimeoutError(f"the call in {namespace} did not end within {timeout:g} s")
    return results[0]


@dataclass(frozen=True)
class Link:
    """A veth pair: `hosts[i]`'s end is `devices[i]` with `addresses[i]` ("addr/len");
    a host of None is this namespace."""

    hosts: tuple[str | None, str | None]
    devices: tuple[str, str]
    addresses: tuple[str, str]


@dataclass
class Network:
    """The hosts (name -> namespace) and the links between them."""

    namespaces: dict[str, str]
    links: list[Link] = field(default_factory=list)

    def namespace(self, host: str | None) -> str | None:
        return None if host is None else self.namespaces[host]

    def link(self, one: str | None, other: str | None) -> Link:
        return next(link for link in self.links if set(link.hosts) == {one, other})

    def device(self, host: str | None, toward: str | None) -> str:
        """`host`'s end of its link toward `toward`."""
        link = self.link(host, toward)
        return link.devices[link.hosts.index(host)]

    def cut(self, host: str | None, toward: str | None) -> None:
        """Take `host`'s end of the link down: nothing crosses either way, nothing closes.
        `host` also loses its route; a connect from `toward` goes out and is never answered."""
        ip(self.namespace(host), "link", "set", self.device(host, toward), "down")

    def heal(self, host: str | None, toward: str | None) -> None:
        ip(self.namespace(host), "link", "set", self.device(host, toward), "up")

    def connecting(self, host: str | None, address: str) -> int:
        """Connections `host` has started to `address` and not completed (SYN-SENT)."""
        return tcp_count(self.namespace(host), "syn-sent", "dst", address)


@contextmanager
def network(hosts: Iterable[str], links: Iterable[tuple[str | None, str, str | None, str]] = ()
            ) -> Iterator[Network]:
    """Make a namespace per host (loopback up) and a veth link per `(host, "addr/len", host,
    "addr/len")` (a host of None: this namespace), all up; delete them however the block
    ends, or at interpreter exit. Raises `Unavailable` with a one-line reason."""
    reason = _missing()
    if reason:
        raise Unavailable(reason)
    remove_left_overs()
    prefix = unique_prefix()
    net = Network({host: f"{prefix}{host}" for host in hosts})
    made: list[str] = []
    try:
        for namespace in net.namespaces.values():
            _alive.add(namespace)  # before it exists: an interrupt cannot leave it behind
            made.append(namespace)
            try:
                ip(None, "netns", "add", namespace)
            except RuntimeError as error:
                raise Unavailable(str(error)) from None
            ip(namespace, "link", "set", "lo", "up")
        for index, (left, left_address, right, right_address) in enumerate(links):
            # an end here needs a name unique on this machine; inside a namespace, v<i>a/b
            devices = tuple(f"v{index}{side}" if host else f"{prefix}v{index}"
                            for host, side in ((left, "a"), (right, "b")))
            link = Link((left, right), devices, (left_address, right_address))
            where = [("netns", net.namespace(host)) if host else () for host in link.hosts]
            ip(None, "link", "add", devices[0], *where[0], "type", "veth", "peer", "name",
               devices[1], *where[1])
            net.links.append(link)
            for host, device, address in zip(link.hosts, devices, link.addresses, strict=True):
                ip(net.namespace(host), "addr", "add", address, "dev", device)
                ip(net.namespace(host), "link", "set", device, "up")
        yield net
    finally:
        for link in net.links:  # an end here outlives its namespace while a process holds it
            if None in link.hosts:
                subprocess.run(["ip", "link", "del", link.devices[link.hosts.index(None)]],
                               capture_output=True, timeout=10)
        _delete(made)


def remove_left_overs() -> None:
    """Delete the namespaces of runs that were killed (named by a pid that no longer runs)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=10).stdout
    dead = [name for name in (line.split()[0] for line in listed.splitlines() if line.strip())
            if (match := OURS.match(name)) and not os.path.exists(f"/proc/{match[1]}")]
    _delete(dead)


@atexit.register
def _delete_left_over() -> None:
    """A kernel that exits in the middle of `network()` still leaves no namespace behind."""
    _delete(list(_alive))


def _delete(namespaces: list[str]) -> None:
    for namespace in namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        _alive.discard(namespace)
