"""A thread-safe record of what happened, so background threads never need to print.

Every actor appends events here; a notebook cell (the foreground) reads them and shows a
table or a diagram. A message arrow is recorded by the side that knows both ends of it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One thing that happened: `t` seconds after the trace began, `actor` did `kind`.

    For `send` the arrow goes actor -> peer; for `recv` it goes peer -> actor. Events without
    a peer are drawn as notes.
    """

    t: float
    actor: str
    kind: str
    detail: str = ""
    peer: str | None = None

    def __str__(self) -> str:
        arrow = {"send": f" -> {self.peer}", "recv": f" <- {self.peer}"}.get(self.kind, "")
        if self.peer is None:
            arrow = ""
        return f"{self.t:8.3f}s  {self.actor}{arrow}  {self.kind}  {self.detail}".rstrip()


class Trace:
    """Events from many threads, in the order they happened.

    `on_event` (optional) is called with each event as it is added: the command line uses it
    to print a log line; notebooks leave it unset and read the trace afterwards. `keep`
    bounds memory for processes that run for hours: only the newest `keep` events stay.
    `clock` (injectable for tests) is read under the lock, so the events' order is their
    times' order even when threads add at the same moment.
    """

    def __init__(
        self, on_event: Callable[[Event], None] | None = None, keep: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()  # reentrant: a wait_for condition may read the trace
        self._changed = threading.Condition(self._lock)
        self._events: deque[Event] = deque(maxlen=keep)
        self._names: dict[str, str] = {}
        self._clock = clock
        self._start = clock()
        self._on_event = on_event

    def add(self, actor: str, kind: str, detail: str = "", peer: str | None = None) -> Event:
        with self._changed:
            event = Event(round(self._clock() - self._start, 6), actor, kind, detail, peer)
            self._events.append(event)
            self._changed.notify_all()
        if self._on_event is not None:
            self._on_event(event)
        return event

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until `condition()` holds, checking it again at every new event; False if
        `timeout` s pass first. The foreground waits for what actors do without sleeping.

        The condition runs with the trace locked (actors adding events wait): keep it quick.
        """
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def name_endpoint(self, endpoint: str, actor: str) -> None:
        """Remember who is bound at `endpoint`, so a peer that connects can name it."""
        with self._lock:
            self._names[endpoint] = actor

    def who(self, endpoint: str) -> str:
        with self._lock:
            return self._names.get(endpoint, endpoint)

    @property
    def events(self) -> list[Event]:
        """A snapshot copy: safe to read while actors keep adding."""
        with self._lock:
            return list(self._events)

    def of(self, actor: str | None = None, kind: str | None = None) -> list[Event]:
        return [
            event
            for event in self.events
            if (actor is None or event.actor == actor) and (kind is None or event.kind == kind)
        ]

    def count(self, kind: str, actor: str | None = None) -> int:
        return len(self.of(actor, kind))

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._start = self._clock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __str__(self) -> str:
        return "\n".join(str(event) for event in self.events)


SHOWN_FRAMES = 8


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 try`, `2 tries`, `0 timeouts`: a count and its noun, agreed."""
    if count == 1:
        return f"{count} {noun}"
    if many is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in "aeiou"
        many = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count} {many}"


def show_bytes(frames: list[bytes] | tuple[bytes, ...], limit: int = 24) -> str:
    """A short, printable summary of a message for the trace.

    It reads at most `limit` bytes of at most `SHOWN_FRAMES` frames, so describing a 10 MB
    frame costs what describing a small one does.
    """
    parts = []
    for frame in frames[:SHOWN_FRAMES]:
        head = frame[:limit]
        text = head.decode("ascii") if all(32 <= byte < 127 for byte in head) else head.hex()
        if len(frame) > limit or len(text) > limit:
            text = text[: limit - 1] + "…"
        parts.append(text)
    if len(frames) > SHOWN_FRAMES:
        parts.append(f"(+{len(frames) - SHOWN_FRAMES} frames)")
    return "|".join(parts)


def show_identity(identity: bytes, limit: int = 64) -> str:
    """A peer's identity as text: the name a worker chose (any printable UTF-8), or the hex
    of libzmq's random one; never raw control bytes in a log line."""
    try:
        name = identity[:limit].decode()
    except UnicodeDecodeError:
        name = ""
    if not name.isprintable() or not name:
        return show_bytes([identity], limit)
    return name if len(identity) <= limit else name[: limit - 1] + "…"
