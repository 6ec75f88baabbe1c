"""The ZeroMQ Guide's Majordomo broker (mdbroker.py) as a pure state machine, bugs kept, to
compare with `BrokerState` on the same messages."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..trace import show_identity
from .protocol import (
    DISCONNECT,
    HEARTBEAT,
    MDPC,
    MDPW,
    MMI,
    MMI_FOUND,
    MMI_NOT_FOUND,
    MMI_NOT_IMPLEMENTED,
    READY,
    REPLY,
    REQUEST,
)


@dataclass(eq=False)  # compared by identity, as the Guide's Worker objects are in its lists
class _GuideWorker:
    identity: bytes
    expiry: float
    service: _GuideService | None = None


@dataclass(eq=False)
class _GuideService:
    name: bytes
    requests: list[list[bytes]] = field(default_factory=list)
    waiting: list[_GuideWorker] = field(default_factory=list)


class GuideMajordomoState:
    """The ZeroMQ Guide's mdbroker.py decisions, kept small and faithful to show its bugs.

    - Any client request creates its service's entry, and `mmi.service` asks only whether
      the entry exists: "200" for a service nobody ever offered.
    - DISCONNECT from a waiting worker takes it off its service's list but not off the
      broker's `waiting` list; when it "expires" there, the purge removes it from the
      service list again and raises ValueError: the broker dies.
    - Only waiting workers are purged or sent heartbeats: a busy worker that dies takes its
      request with it, and queued requests wait forever.
    - Input is checked with `assert`, so a malformed message raises too.

    Same interface as `BrokerState` (`on_message`, `tick`, `outbox`, `notes`).
    """

    def __init__(self, heartbeat_interval: float = 1.0, liveness: int = 3, now: float = 0.0,
                 **_options: object) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_expiry = heartbeat_interval * liveness
        self.services: dict[bytes, _GuideService] = {}
        self.workers: dict[bytes, _GuideWorker] = {}
        self.waiting: list[_GuideWorker] = []
        self.heartbeat_at = now + heartbeat_interval
        self.rejected = 0
        self.outbox: list[list[bytes]] = []
        self.notes: list[tuple[str, str]] = []

    def reject(self, why: str) -> None:
        self.rejected += 1
        self.notes.append(("reject", why))

    def peer_unreachable(self, identity: bytes, now: float) -> None:
        """The Guide sets no ROUTER_MANDATORY: what it sends to a gone peer just vanishes."""

    def offers(self, service: bytes) -> bool:
        """What the Guide's `mmi.service` says: does an entry of that name exist?"""
        return service in self.services

    def on_message(self, frames: list[bytes], now: float) -> None:
        """One pass of the Guide's `mediate` loop: the message, then purge and heartbeats."""
        message = list(frames)
        sender = message.pop(0)
        empty = message.pop(0)
        assert empty == b""
        header = message.pop(0)
        if header == MDPC:
            self._process_client(sender, message, now)
        elif header == MDPW:
            self._process_worker(sender, message, now)
        else:
            self.notes.append(("reject", "invalid message"))
        self.tick(now)

    def tick(self, now: float) -> None:
        self._purge_workers(now)
        if now > self.heartbeat_at:
            self.outbox.extend([w.identity, b"", MDPW, HEARTBEAT] for w in self.waiting)
            self.heartbeat_at = now + self.heartbeat_interval

    def next_wakeup(self) -> float:
        return self.heartbeat_at

    def _process_client(self, sender: bytes, message: list[bytes], now: float) -> None:
        assert len(message) >= 2  # service name + body
        service = message.pop(0)
        message = [sender, b"", *message]
        if service.startswith(MMI):
            code = MMI_NOT_IMPLEMENTED
            if service == b"mmi.service":
                code = MMI_FOUND if message[-1] in self.services else MMI_NOT_FOUND
            message[-1] = code
            self.outbox.append([*message[:2], MDPC, service, *message[2:]])
        else:
            self._dispatch(self._require_service(service), message, now)

    def _process_worker(self, sender: bytes, message: list[bytes], now: float) -> None:
        assert len(message) >= 1
        command = message.pop(0)
        worker_ready = sender in self.workers
        worker = self.workers.get(sender)
        if worker is None:
            worker = self.workers[sender] = _GuideWorker(sender, now + self.heartbeat_expiry)
        if command == READY:
            assert len(message) >= 1
            service = message.pop(0)
            if worker_ready or service.startswith(MMI):
                self._delete_worker(worker, disconnect=True)
            else:
                worker.service = self._require_service(service)
                self._worker_waiting(worker, now)
        elif command == REPLY:
            if worker_ready:
                client, _empty = message.pop(0), message.pop(0)
                assert worker.service is not None
                self.outbox.append([client, b"", MDPC, worker.service.name, *message])
                self._worker_waiting(worker, now)
            else:
                self._delete_worker(worker, disconnect=True)
        elif command == HEARTBEAT:
            if worker_ready:
                worker.expiry = now + self.heartbeat_expiry
            else:
                self._delete_worker(worker, disconnect=True)
        elif command == DISCONNECT:
            self._delete_worker(worker, disconnect=False)
        else:
            self.notes.append(("reject", "invalid message"))

    def _delete_worker(self, worker: _GuideWorker, disconnect: bool) -> None:
        if disconnect:
            self.outbox.append([worker.identity, b"", MDPW, DISCONNECT])
        if worker.service is not None:
            worker.service.waiting.remove(worker)  # ValueError when it is not there
        self.workers.pop(worker.identity)

    def _require_service(self, name: bytes) -> _GuideService:
        return self.services.setdefault(name, _GuideService(name))

    def _purge_workers(self, now: float) -> None:
        while self.waiting:
            worker = self.waiting[0]
            if worker.expiry < now:
                self.notes.append(("purge", show_identity(worker.identity)))
                self._delete_worker(worker, disconnect=False)
                self.waiting.pop(0)
            else:
                break

    def _worker_waiting(self, worker: _GuideWorker, now: float) -> None:
        assert worker.service is not None
        self.waiting.append(worker)
        worker.service.waiting.append(worker)
        worker.expiry = now + self.heartbeat_expiry
        self._dispatch(worker.service, None, now)

    def _dispatch(self, service: _GuideService, message: list[bytes] | None,
                  now: float) -> None:
        if message is not None:
            service.requests.append(message)
        self._purge_workers(now)
        while service.waiting and service.requests:
            message = service.requests.pop(0)
            worker = service.waiting.pop(0)
            self.waiting.remove(worker)
            self.outbox.append([worker.identity, b"", MDPW, REQUEST, *message])
