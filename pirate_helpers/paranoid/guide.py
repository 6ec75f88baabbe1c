"""The ZeroMQ Guide's ppqueue.py as a model, its bug kept, to compare with `QueueState`."""

from __future__ import annotations

from ..names import DisplayNames
from ..trace import show_identity as _name
from .protocol import COMMAND_NAMES, HEARTBEAT_MESSAGE, describe


class GuideQueueState:
    """The ZeroMQ Guide's ppqueue.py decisions, kept small and faithful to show its bugs.

    Any message from a worker, a heartbeat included, puts it (back) on the ready list, so a
    busy worker that heartbeats is handed a second request. Busy workers are not tracked, so
    one that dies takes its request with it; heartbeats go only to ready workers, and only
    when a worker message has just arrived. Same interface as `QueueState`; requests are
    read only while a worker is ready (`reads_always` False), as ppqueue.py does.
    """

    reads_always = False

    def __init__(self, heartbeat_interval: float = 1.0, liveness: int = 3, now: float = 0.0,
                 **_limits: float):
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.ready: dict[bytes, float] = {}  # identity -> expires_at, oldest first
        self.names = DisplayNames()  # never filled: the Guide shows the raw identity
        self.heartbeat_at = now + heartbeat_interval
        self.rejected = 0
        self.to_workers: list[tuple[bytes, list[bytes]]] = []
        self.to_clients: list[list[bytes]] = []
        self.notes: list[tuple[str, str]] = []

    @property
    def accepting(self) -> bool:
        return bool(self.ready)

    def on_request(self, frames: list[bytes], now: float) -> None:
        identity = next(iter(self.ready))
        del self.ready[identity]
        self.to_workers.append((identity, frames))

    def on_worker_message(self, frames: list[bytes], now: float) -> None:
        identity, message = frames[0], frames[1:]
        self.ready.pop(identity, None)
        self.ready[identity] = now + self.heartbeat_interval * self.liveness  # the bug
        if len(message) > 1:
            self.to_clients.append(message)
        elif message[0] not in COMMAND_NAMES:
            self.rejected += 1
            self.notes.append(("reject", f"from {_name(identity)}: {describe(message)}"))
        if now >= self.heartbeat_at:
            self.to_workers.extend((identity, HEARTBEAT_MESSAGE) for identity in self.ready)
            self.heartbeat_at = now + self.heartbeat_interval

    def worker_unreachable(self, identity: bytes, now: float) -> None:
        """The Guide sets no ROUTER_MANDATORY: what it sent to a gone worker is lost."""
        self.ready.pop(identity, None)

    def tick(self, now: float) -> None:
        for identity, expires_at in list(self.ready.items()):
            if now < expires_at:
                break
            del self.ready[identity]
            self.notes.append(("purge", _name(identity)))

    def stalled(self, now: float) -> None:
        """The Guide's queue takes no care of its own stalls (see `QueueState.stalled`)."""

    def next_wakeup(self) -> float:
        return min([self.heartbeat_at, *self.ready.values()])
