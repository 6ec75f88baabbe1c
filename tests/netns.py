"""A classroom of real hosts on one Linux machine: the queue's namespace has one veth link to
each student's namespace (`pirate_helpers.netns`), so taking a link down cuts one student off
(a real partition: no TCP close, no RST, just silence). The addresses are from 198.18.0.0/15
(set aside for benchmarks, RFC 2544) and exist only inside these namespaces. The tests and
the classroom benchmark share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pirate_helpers.netns import Network, Unavailable, ip, network

__all__ = ["Classroom", "Unavailable", "classroom"]


@dataclass
class Classroom:
    """The namespaces: `queue`, and `students[n]` for n in 1..N, each with its own link to
    the queue's; `address(n)` is the queue's address as student n reaches it."""

    net: Network
    queue: str
    students: dict[int, str]

    SHARED = "198.19.0.1"
    """The queue's one address every student reaches (each over its own link), for a join
    line that is the same for the whole room."""

    @staticmethod
    def address(n: int) -> str:
        return f"198.18.{n}.1"

    def cut(self, n: int) -> None:
        self.net.cut("q", f"s{n}")

    def heal(self, n: int) -> None:
        self.net.heal("q", f"s{n}")


@contextmanager
def classroom(students: int) -> Iterator[Classroom]:
    """Make the namespaces and links; remove them all afterwards. Raises `Unavailable` with
    the reason where namespaces cannot be made."""
    if students > 250:
        raise ValueError("one /24 per student: at most 250")
    numbers = range(1, students + 1)
    links = [("q", f"{Classroom.address(n)}/24", f"s{n}", f"198.18.{n}.2/24") for n in numbers]
    with network(["q", *(f"s{n}" for n in numbers)], links) as net:
        room = Classroom(net, net.namespaces["q"], {n: net.namespaces[f"s{n}"] for n in numbers})
        for n, student in room.students.items():
            ip(student, "route", "add", f"{room.SHARED}/32", "via", room.address(n))
        ip(room.queue, "addr", "add", f"{room.SHARED}/32", "dev", "lo")
        yield room
