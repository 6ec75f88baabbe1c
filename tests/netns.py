"""A classroom of real hosts on one Linux machine: network namespaces joined by veth links.

The queue's namespace has one link to each student's namespace, so taking a link down cuts
one student off (a real partition: no TCP close, no RST, just silence). The addresses are
from 198.18.0.0/15 (set aside for benchmarks, RFC 2544) and exist only inside these
namespaces. Needs root and iproute2's `ip netns`; the tests and the classroom benchmark
share it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class Unavailable(Exception):
    """This machine cannot make network namespaces (not root, no `ip`, no permission)."""


def ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace,
                                                        "ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


@dataclass
class Classroom:
    """The namespaces: `queue`, and `students[n]` for n in 1..N, each with its own link to
    the queue's; `address(n)` is the queue's address as student n reaches it."""

    prefix: str
    queue: str
    students: dict[int, str]

    SHARED = "198.19.0.1"
    """The queue's one address every student reaches (each over its own link), for a join
    line that is the same for the whole room."""

    @staticmethod
    def address(n: int) -> str:
        return f"198.18.{n}.1"

    def link(self, n: int) -> str:
        return f"{self.prefix}v{n}q"  # the queue's end of student n's link

    def cut(self, n: int) -> None:
        ip("link", "set", self.link(n), "down", namespace=self.queue)

    def heal(self, n: int) -> None:
        ip("link", "set", self.link(n), "up", namespace=self.queue)


@contextmanager
def classroom(students: int) -> Iterator[Classroom]:
    """Make the namespaces and links; remove them all (with their veth ends) afterwards.
    Raises `Unavailable` with the reason where namespaces cannot be made."""
    if students > 250:
        raise ValueError("one /24 per student: at most 250")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise Unavailable("needs root and iproute2's `ip netns`")
    prefix = f"pc{os.getpid() % 10000}"
    names = [f"{prefix}q"] + [f"{prefix}s{n}" for n in range(1, students + 1)]
    made: list[str] = []
    try:
        try:
            for namespace in names:
                ip("netns", "add", namespace)
                made.append(namespace)
                ip("link", "set", "lo", "up", namespace=namespace)
        except subprocess.CalledProcessError as error:
            raise Unavailable(f"cannot make network namespaces here: "
                              f"{error.stderr.decode().strip()}") from None
        room = Classroom(prefix, names[0], dict(enumerate(names[1:], start=1)))
        for n, student in room.students.items():
            far = f"{prefix}v{n}s"
            ip("link", "add", room.link(n), "netns", room.queue, "type", "veth", "peer",
               "name", far, "netns", student)
            ip("addr", "add", f"{room.address(n)}/24", "dev", room.link(n), namespace=room.queue)
            ip("addr", "add", f"198.18.{n}.2/24", "dev", far, namespace=student)
            ip("link", "set", room.link(n), "up", namespace=room.queue)
            ip("link", "set", far, "up", namespace=student)
            ip("route", "add", f"{room.SHARED}/32", "via", room.address(n), namespace=student)
        ip("addr", "add", f"{room.SHARED}/32", "dev", "lo", namespace=room.queue)
        yield room
    finally:
        for namespace in made:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
