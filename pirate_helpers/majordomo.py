"""Majordomo: many services behind one broker, found by name (RFC 7 MDP/0.1, RFC 8 MMI).

Paranoid Pirate has one kind of worker. A Majordomo worker says which *service* it offers
(READY "echo"), a client names the service it wants, and the broker keeps, per service, the
workers waiting for work (least recently used first) and the requests waiting for a worker.
Heartbeats and expiry are Paranoid Pirate's, now on one ROUTER that clients (REQ) and
workers (DEALER) share: the header frame tells them apart.

- A request whose worker dies (or disconnects, or sends nonsense) goes back to the *front*
  of its service's queue: at-least-once, so work must be safe to repeat. A late reply from a
  forgotten worker is refused with DISCONNECT, so a client never gets two.
- A request for a service nobody offers waits in its queue, for `request_expiry` at most
  (RFC 7's SHOULD); then it is dropped and the client's retries take over.
- Anything malformed or out of order from a worker earns it a DISCONNECT; the broker logs
  and counts it and never crashes on input.
- MMI (RFC 8): `mmi.service` answers "200" when at least one worker offers the service now,
  "404" otherwise; any other `mmi.*` answers "501". A worker may not offer `mmi.*`.

Wire format (https://rfc.zeromq.org/spec:7/MDP, https://rfc.zeromq.org/spec:8/MMI), as the
broker's ROUTER sees it (the sender's routing id first, then REQ's or DEALER's empty frame):

    client -> broker  [client, "", "MDPC01", service, body...]
    broker -> client  [client, "", "MDPC01", service, body...]
    worker <-> broker [worker, "", "MDPW01", command, ...]
        READY 0x01 service | REQUEST 0x02 client, "", body... | REPLY 0x03 client, "", body...
        HEARTBEAT 0x04 | DISCONNECT 0x05

The same ROUTER also speaks MDP/0.2 (RFC 18, a draft) as majortomo frames it: the empty
first frame kept, headers `MDPC02`/`MDPW02`, clients send REQUEST 0x01 and get their reply
in parts, PARTIAL 0x02... then FINAL 0x03 (body only, no service frame); worker commands are
renumbered (READY 1, REQUEST 2, PARTIAL 3, FINAL 4, HEARTBEAT 5, DISCONNECT 6). Versions
mix freely per peer; a 0.1 client of a 0.2 worker gets the FINAL part only.

`BrokerState` holds the decisions (messages and `now` in, messages out) and
`MajordomoBroker` is the thin socket loop around it. `GuideMajordomoState` models the
ZeroMQ Guide's mdbroker.py, bugs included, for comparison. The worker reuses Paranoid
Pirate's `WorkerLiveness`; the client is Lazy Pirate speaking MDP.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq

from .actor import Actor, ActorStopped
from .endpoints import LOCAL, bind_when_free, connect, receive
from .faults import NONE, Faults
from .lazy import LazyPirateClient, ServerUnavailable
from .paranoid import WorkerAction, WorkerLiveness
from .trace import Trace, show_bytes

MDPC = b"MDPC01"  # the client header, first frame after the empty one
MDPW = b"MDPW01"  # the worker header
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
COMMAND_NAMES = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", HEARTBEAT: "HEARTBEAT",
                 DISCONNECT: "DISCONNECT"}
# MDP/0.2 (RFC 18, draft) as majortomo speaks it: the same empty first frame, new headers,
# renumbered worker commands, and replies in parts (PARTIAL...) ended by FINAL.
MDPC2, MDPW2 = b"MDPC02", b"MDPW02"
C2_REQUEST, C2_PARTIAL, C2_FINAL = b"\x01", b"\x02", b"\x03"
PARTIAL = b"\x13"  # inside the broker only: a 0.2 worker's PARTIAL, put in 0.1 terms
W2_COMMANDS = {b"\x01": READY, b"\x02": REQUEST, b"\x03": PARTIAL, b"\x04": REPLY,
               b"\x05": HEARTBEAT, b"\x06": DISCONNECT}  # 0.2 code -> the 0.1 code
W2_CODES = {ours: theirs for theirs, ours in W2_COMMANDS.items()}
W2_NAMES = {**COMMAND_NAMES, REPLY: "FINAL", PARTIAL: "PARTIAL"}
WORKER_HEADERS = (MDPW, MDPW2)
MMI = b"mmi."
MMI_FOUND, MMI_NOT_FOUND, MMI_NOT_IMPLEMENTED = b"200", b"404", b"501"
MAX_QUEUED = 10_000  # requests waiting in all services before new ones are refused
PURGED_REMEMBERED = 5  # workers lately forgotten (expired, gone) a dashboard still shows


def describe(message: list[bytes]) -> str:
    """How the trace shows a message between broker and worker (the routing id left out):
    the command's name, plus the body of a request or reply."""
    if len(message) >= 3 and message[0] == b"" and message[1] in WORKER_HEADERS:
        code = message[2] if message[1] == MDPW else W2_COMMANDS.get(message[2], message[2])
        names = COMMAND_NAMES if message[1] == MDPW else W2_NAMES
        command = names.get(code, message[2].hex())
        rest = message[3:]
        if code in (REQUEST, REPLY, PARTIAL) and b"" in rest:
            rest = rest[rest.index(b"") + 1:]
        return f"{command} {show_bytes(rest)}".rstrip()
    return show_bytes(message)


def _name(identity: bytes) -> str:
    """A peer's identity as text: a worker's chosen name, or the hex of libzmq's random one
    (never raw control bytes in a log line)."""
    return show_bytes([identity], limit=64)


# -- the broker's decisions ---------------------------------------------------------------
@dataclass
class Request:
    """A client's request as the broker keeps it: who asked, which service, what."""

    client: bytes
    service: bytes
    body: list[bytes]
    expires_at: float = float("inf")  # while queued; a worker holding it does not expire it
    version: int = 1  # the client's MDP/0.x: how its reply is framed


@dataclass
class Worker:
    """A registered worker. It holds at most one request: None means waiting for work."""

    identity: bytes
    service: bytes
    expires_at: float
    request: Request | None = None
    version: int = 1  # the worker's MDP/0.x: how messages to it are framed


@dataclass
class Service:
    """Workers waiting for work (insertion order = least recently used first) and requests
    waiting for a worker (oldest first). `workers` counts every registered worker of it."""

    name: bytes
    waiting: dict[bytes, Worker] = field(default_factory=dict)
    requests: deque[Request] = field(default_factory=deque)
    workers: int = 0


class BrokerState:
    """Which worker gets which request, who expired, what to send next.

    Feed it every message the ROUTER delivers with `on_message(frames, now)` and call
    `tick(now)` by `next_wakeup()`. It appends what to send to `outbox` (whole messages,
    routing id first) and what happened to `notes` (kind, detail); the caller sends, records
    and clears them. If a send fails (the peer is gone), tell it with `peer_unreachable`.
    Input never raises: anything it cannot use is counted in `rejected` and noted.
    """

    def __init__(
        self,
        heartbeat_interval: float = 1.0,
        liveness: int = 3,
        now: float = 0.0,
        *,
        request_expiry: float | None = None,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        if heartbeat_interval <= 0 or liveness < 1:
            raise ValueError("heartbeat_interval must be > 0 and liveness >= 1")
        if request_expiry is not None and request_expiry <= 0:
            raise ValueError("request_expiry must be > 0 (or None: never)")
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.request_expiry = request_expiry
        self.max_queued = max_queued
        self.services: dict[bytes, Service] = {}
        self.workers: dict[bytes, Worker] = {}
        self.queued = 0  # requests waiting, all services together
        self.heartbeat_at = now + heartbeat_interval
        self._check_at = self.heartbeat_at  # nothing can expire or be due before this
        self.answered: Counter[bytes] = Counter()  # replies delivered, per service
        self.requeued = self.expired = self.rejected = self.disconnected = 0
        self.unreachable = self.mmi_answered = self.partials_dropped = 0
        self.purged: deque[tuple[bytes, bytes]] = deque(maxlen=PURGED_REMEMBERED)  # newest last
        self.outbox: list[list[bytes]] = []
        self.notes: list[tuple[str, str]] = []

    @property
    def silence_limit(self) -> float:
        """How long a worker may stay silent before it counts as dead."""
        return self.heartbeat_interval * self.liveness

    def offers(self, service: bytes) -> bool:
        """True when at least one worker offers `service` now: what `mmi.service` says."""
        entry = self.services.get(service)
        return entry is not None and entry.workers > 0

    # -- input ------------------------------------------------------------------------
    def on_message(self, frames: list[bytes], now: float) -> None:
        """Anything the ROUTER delivered, `[sender, "", header, ...]`."""
        self.tick(now)  # never hand work to a worker that expired a moment ago
        if len(frames) < 3 or frames[1] != b"":
            self.reject(f"no MDP envelope: {show_bytes(frames)}")
        elif frames[2] == MDPC:
            self._on_client(frames[0], frames[3:], now)
        elif frames[2] == MDPW:
            self._on_worker(frames[0], frames[3:], now)
        elif frames[2] == MDPC2:
            if frames[3:4] == [C2_REQUEST]:
                self._on_client(frames[0], frames[4:], now, version=2)
            else:
                self.reject(f"client {frames[0].hex()}: not a 0.2 REQUEST")
        elif frames[2] == MDPW2:
            command = W2_COMMANDS.get(frames[3], b"?") if len(frames) > 3 else b""
            self._on_worker(frames[0], [command, *frames[4:]], now, version=2)
        else:
            self.reject(f"unknown header from {show_bytes(frames[:1])}: "
                         f"{show_bytes(frames[2:3])}")

    def peer_unreachable(self, identity: bytes, now: float) -> None:
        """A send to `identity` failed (EHOSTUNREACH): its connection is gone. A worker is
        forgotten at once and what it held goes to another; a client's reply is lost (its
        retry asks again)."""
        self.unreachable += 1
        worker = self.workers.get(identity)
        if worker is not None:
            self._forget(worker, f"{_name(identity)} is gone", now, kind="unreachable",
                         send=False)
        else:
            self.notes.append(("unreachable", f"client {show_bytes([identity])} is gone"))

    def _on_client(self, client: bytes, message: list[bytes], now: float,
                   version: int = 1) -> None:
        if not message:
            self.reject(f"client {client.hex()}: no service frame")
            return
        service, body = message[0], message[1:]
        if service.startswith(MMI):
            self._answer_mmi(Request(client, service, body, version=version))
        elif self.queued >= self.max_queued:
            self.reject(f"client {client.hex()}: {self.queued} requests queued already")
        else:
            entry = self.services.get(service) or self.services.setdefault(
                service, Service(service))
            self._queue(entry, Request(client, service, body, version=version), now)
            self._dispatch(entry)

    def _answer_mmi(self, request: Request) -> None:
        if request.service == b"mmi.service":
            asked = request.body[-1] if request.body else b""
            code = MMI_FOUND if self.offers(asked) else MMI_NOT_FOUND
        else:
            code = MMI_NOT_IMPLEMENTED
        self.mmi_answered += 1
        self._to_client(request, [code])

    def _to_client(self, request: Request, body: list[bytes], *, final: bool = True) -> None:
        if request.version == 1:
            self.outbox.append([request.client, b"", MDPC, request.service, *body])
        else:
            self.outbox.append([request.client, b"", MDPC2, C2_FINAL if final else C2_PARTIAL,
                                *body])

    def _to_worker(self, identity: bytes, version: int, command: bytes, *rest: bytes) -> None:
        if version == 1:
            self.outbox.append([identity, b"", MDPW, command, *rest])
        else:
            self.outbox.append([identity, b"", MDPW2, W2_CODES[command], *rest])

    def _on_worker(self, identity: bytes, message: list[bytes], now: float,
                   version: int = 1) -> None:
        worker = self.workers.get(identity)
        command = message[0] if message else b""
        if worker is not None and worker.version != version:
            self._protocol_error(identity, worker, f"switched to MDP/0.{version}", now)
            return
        if command == DISCONNECT and len(message) == 1:
            if worker is not None:
                self._forget(worker, f"{_name(identity)} said DISCONNECT", now, kind="leave",
                             send=False)
            return
        if command == READY and len(message) == 2 and worker is None:
            service = message[1]
            if not service or service.startswith(MMI):
                self._protocol_error(identity, None, f"may not offer {show_bytes([service])!r}",
                                     now, version)
                return
            worker = self.workers[identity] = Worker(identity, service, now + self.silence_limit,
                                                     version=version)
            entry = self.services.get(service) or self.services.setdefault(
                service, Service(service))
            entry.workers += 1
            self._check_at = min(self._check_at, worker.expires_at)
            self.notes.append(("ready", f"{_name(identity)} offers {_name(service)}"))
            self._make_waiting(worker)
            return
        if worker is None:
            self._protocol_error(identity, None,
                                 f"unknown worker sent {describe([b'', MDPW, *message])}", now,
                                 version)
            return
        if command == HEARTBEAT and len(message) == 1:
            worker.expires_at = now + self.silence_limit
            return
        request = worker.request
        if (command in (REPLY, PARTIAL) and len(message) >= 3 and message[2] == b""
                and request is not None and message[1] == request.client):
            worker.expires_at = now + self.silence_limit
            if command == PARTIAL:  # a 0.2 worker's reply in parts; it keeps the request
                if request.version == 1:
                    self.partials_dropped += 1  # a 0.1 client takes one reply: the FINAL
                else:
                    self._to_client(request, message[3:], final=False)
                return
            worker.request = None
            self.answered[worker.service] += 1
            self._to_client(request, message[3:])
            self._make_waiting(worker)
            return
        self._protocol_error(identity, worker,
                             f"out of order: {describe([b'', MDPW, *message])}", now)

    # -- time -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Purge silent workers (re-queueing what they held), drop requests queued too long,
        and send heartbeats to every worker, busy or not, on schedule."""
        if now < self._check_at:
            return
        expired = [w for w in self.workers.values() if w.expires_at <= now]
        for worker in expired:  # all of them first: none is handed a request meanwhile
            self._forget(worker, f"{_name(worker.identity)} silent for "
                         f"{self.silence_limit:g} s", now, kind="purge", send=False,
                         dispatch=False)
        for service in {w.service for w in expired} & self.services.keys():
            self._dispatch(self.services[service])
        if self.request_expiry is not None:
            for entry in list(self.services.values()):
                kept = deque(r for r in entry.requests if r.expires_at > now)
                for request in entry.requests:
                    if request.expires_at <= now:
                        self.expired += 1
                        self.notes.append(("expire", f"{_name(entry.name)}: "
                                           f"{show_bytes(request.body)} waited "
                                           f"{self.request_expiry:g} s"))
                self.queued -= len(entry.requests) - len(kept)
                entry.requests = kept
                self._drop_if_unused(entry)
        if now >= self.heartbeat_at:
            for worker in self.workers.values():
                self._to_worker(worker.identity, worker.version, HEARTBEAT)
            self.heartbeat_at = now + self.heartbeat_interval
        self._check_at = min([self.heartbeat_at]
                             + [w.expires_at for w in self.workers.values()]
                             + [r.expires_at for s in self.services.values() for r in s.requests])

    def next_wakeup(self) -> float:
        """When `tick` next has something to do (maybe a little early, never late)."""
        return self._check_at

    # -- the moves --------------------------------------------------------------------
    def _queue(self, entry: Service, request: Request, now: float, *, front: bool = False) -> None:
        if self.request_expiry is not None:
            request.expires_at = now + self.request_expiry
            self._check_at = min(self._check_at, request.expires_at)
        if front:
            entry.requests.appendleft(request)
        else:
            entry.requests.append(request)
        self.queued += 1

    def _dispatch(self, entry: Service) -> None:
        while entry.waiting and entry.requests:
            worker = entry.waiting.pop(next(iter(entry.waiting)))
            request = worker.request = entry.requests.popleft()
            self.queued -= 1
            self._to_worker(worker.identity, worker.version, REQUEST, request.client, b"",
                            *request.body)

    def _make_waiting(self, worker: Worker) -> None:
        entry = self.services[worker.service]
        entry.waiting[worker.identity] = worker
        self._dispatch(entry)

    def _forget(self, worker: Worker, why: str, now: float, *, kind: str,
                send: bool = True, dispatch: bool = True) -> None:
        """Take a worker off every list; its request goes first in line for another."""
        del self.workers[worker.identity]
        self.purged.append((worker.identity, worker.service))
        entry = self.services[worker.service]
        entry.waiting.pop(worker.identity, None)
        entry.workers -= 1
        self.notes.append((kind, why))
        if send:
            self.disconnected += 1
            self._to_worker(worker.identity, worker.version, DISCONNECT)
        request, worker.request = worker.request, None
        if request is not None:
            self.requeued += 1
            self.notes.append(("requeue", f"{show_bytes(request.body)} from "
                               f"{_name(worker.identity)}"))
            self._queue(entry, request, now, front=True)
            if dispatch:
                self._dispatch(entry)
        self._drop_if_unused(entry)

    def _protocol_error(self, identity: bytes, worker: Worker | None, why: str,
                        now: float, version: int = 1) -> None:
        """Log, count, DISCONNECT (in the peer's MDP version); a registered worker is
        forgotten too."""
        self.rejected += 1
        if worker is not None:
            self._forget(worker, f"{_name(identity)}: {why}", now, kind="reject")
        else:
            self.notes.append(("reject", f"{_name(identity)}: {why}"))
            self.disconnected += 1
            self._to_worker(identity, version, DISCONNECT)

    def _drop_if_unused(self, entry: Service) -> None:
        """A service with no worker and no request is forgotten: names cannot pile up."""
        if not entry.workers and not entry.requests:
            self.services.pop(entry.name, None)

    def reject(self, why: str) -> None:
        """Count and note a message nobody can use (the socket loop's too, e.g. too many
        frames)."""
        self.rejected += 1
        self.notes.append(("reject", why))


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
                self.notes.append(("purge", _name(worker.identity)))
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


# -- the broker's socket loop ---------------------------------------------------------------
BATCH = 64  # messages read per pass before timers get a look


class MajordomoBroker(Actor):
    """One ROUTER for clients and workers, around `BrokerState` (or `GuideMajordomoState`).

    The ROUTER is ROUTER_MANDATORY: a send to a peer that is gone raises EHOSTUNREACH, and
    the state is told (a worker's request goes to another at once). A full high-water mark
    (EAGAIN) is treated the same way: the broker never blocks on one slow peer.
    `trace_messages=False` keeps only the notable events (purge, requeue, reject, expire).
    """

    def __init__(
        self,
        name: str = "broker",
        *,
        bind: str = LOCAL,
        heartbeat_interval: float = 0.1,
        liveness: int = 3,
        request_expiry: float | None = None,
        trace: Trace | None = None,
        trace_messages: bool = True,
        logic: type[BrokerState] | type[GuideMajordomoState] = BrokerState,
    ) -> None:
        super().__init__(name, trace)
        self.bind_at = bind
        self.endpoint = ""
        self.trace_messages = trace_messages
        self.state = logic(heartbeat_interval, liveness, time.monotonic(),
                           request_expiry=request_expiry)

    def setup(self) -> None:
        self.router = self.socket(zmq.ROUTER)
        self.router.router_mandatory = 1
        self.endpoint = bind_when_free(self.router, self.bind_at, pause=self.pause)
        self.trace.name_endpoint(self.endpoint, self.name)

    def run(self) -> None:
        state, router = self.state, self.router
        while True:
            timeout = max(0.0, state.next_wakeup() - time.monotonic())
            if self.poll((router,), timeout):
                now = time.monotonic()
                for _ in range(BATCH):
                    frames = receive(router)
                    if frames is None:
                        state.reject("too many frames")
                    else:
                        if self.trace_messages and frames[2:3] in ([MDPW], [MDPW2]):
                            self.trace.add(self.name, "recv", describe(frames[1:]),
                                           peer=_name(frames[0]))
                        state.on_message(frames, now)
                    self._flush(now)
                    if not router.get(zmq.EVENTS) & zmq.POLLIN:
                        break
                with self.changes:  # a caller may be waiting for what just changed
                    self.changes.notify_all()
            now = time.monotonic()
            state.tick(now)
            if self._flush(now):
                with self.changes:
                    self.changes.notify_all()

    def _flush(self, now: float) -> bool:
        """Send what the state decided, and record it; tell it of peers that are gone.
        True if anything notable (a note) happened."""
        state = self.state
        changed = bool(state.notes)
        while state.outbox or state.notes:
            for kind, detail in state.notes:
                self.trace.add(self.name, kind, detail)
            state.notes.clear()
            outbox, state.outbox = state.outbox, []
            for message in outbox:
                try:
                    self.router.send_multipart(message, zmq.NOBLOCK)
                except zmq.ZMQError as error:
                    if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                        raise
                    state.peer_unreachable(message[0], now)
                    continue
                if self.trace_messages and message[2] in WORKER_HEADERS:
                    self.trace.add(self.name, "send", describe(message[1:]),
                                   peer=_name(message[0]))
        return changed

    # -- read from any thread -------------------------------------------------------------
    def snapshot(self, service: str | None = None) -> dict:
        """What a live dashboard shows, for one service or all: each worker waiting
        ("ready"), busy or lately expired, and the counts. Reads copies CPython makes in one
        step, a moment old and never torn; needs `BrokerState`."""
        state = self.state
        wanted = None if service is None else service.encode()
        tracked = [w for w in list(state.workers.values()) if wanted in (None, w.service)]
        workers = {_name(w.identity): "ready" if w.request is None else "busy" for w in tracked}
        for identity, offered in list(state.purged):
            if wanted in (None, offered):
                workers.setdefault(_name(identity), "expired")
        services = [s for s in list(state.services.values()) if wanted in (None, s.name)]
        answered = dict(state.answered)
        counts = {"in flight": sum(w.request is not None for w in tracked),
                  "waiting": sum(len(s.requests) for s in services),
                  "answered": answered.get(wanted, 0) if wanted else sum(answered.values()),
                  "requeued": state.requeued, "unreachable": state.unreachable,
                  "expired requests": state.expired, "rejected": state.rejected}
        return {"workers": workers, "counts": counts}


# -- the worker -----------------------------------------------------------------------------
def echo(body: list[bytes]) -> list[bytes]:
    return body


class MajordomoWorker(Actor):
    """A DEALER worker offering `service`; by default it echoes every request body.

    It heartbeats on schedule, also while busy (a request's reply is scheduled `work_s`
    ahead and sent from the same loop); a broker silent for `liveness` intervals, or a
    DISCONNECT, makes it reconnect after Paranoid Pirate's back-off. Each connection has its
    own identity (`name`, then `name.2`, ...), so a broker never takes a reconnection for a
    second READY. Stopping it sends DISCONNECT, so the broker forgets it at once. Faults
    (`Faults`) are counted per request: crash, drop, freeze, slow.
    """

    def __init__(
        self,
        name: str = "worker",
        *,
        connect: str,
        service: str = "echo",
        heartbeat_interval: float = 0.1,
        liveness: int = 3,
        work_s: float = 0.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 1.0,
        handler: Callable[[list[bytes]], list[bytes]] = echo,
        faults: Faults = NONE,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.endpoint = connect
        self.service = service.encode()
        self.work_s = work_s
        self.handler = handler
        self.faults = faults
        self.liveness = WorkerLiveness(heartbeat_interval, liveness, reconnect_min,
                                       reconnect_max)
        self.dealer: zmq.Socket | None = None
        self.identity = b""
        self.work: deque[tuple[float, list[bytes]]] = deque()  # (reply due at, request)
        self.received = self.answered = self.reconnects = self.disconnects = 0
        self.rejected = 0
        self.crashed = False

    def setup(self) -> None:
        self._connect()

    def _connect(self) -> None:
        self.dealer = self.socket(zmq.DEALER)
        suffix = f".{self.reconnects + 1}" if self.reconnects else ""
        self.identity = f"{self.name}{suffix}".encode()
        self.dealer.identity = self.identity
        connect(self.dealer, self.endpoint)
        self.dealer.send_multipart([b"", MDPW, READY, self.service])
        self.liveness.on_connect(time.monotonic())

    def run(self) -> None:
        try:
            self._loop()
        except ActorStopped:
            self._say_goodbye()
            raise

    def _loop(self) -> None:
        while True:
            wakeup = self.liveness.next_wakeup()
            if self.work:
                wakeup = min(wakeup, self.work[0][0])
            sockets = (self.dealer,) if self.dealer is not None else ()
            if self.poll(sockets, max(0.0, wakeup - time.monotonic())):
                outcome = self._receive()
                if outcome == "crash":
                    return
                if outcome == "froze":
                    continue  # read what arrived meanwhile before judging the broker
            now = time.monotonic()
            while self.work and self.work[0][0] <= now:
                self._reply(self.work.popleft()[1])
            while action := self.liveness.tick(now):
                self._act(action)

    def _act(self, action: WorkerAction) -> None:
        if action == "heartbeat":
            assert self.dealer is not None
            self.dealer.send_multipart([b"", MDPW, HEARTBEAT])
        elif action == "disconnect":
            self._drop_connection(f"broker silent; reconnecting in {self.liveness.waited:g} s")
        else:
            self.reconnects += 1
            self._connect()
            self.trace.add(self.name, "reconnect", f"READY again as {_name(self.identity)}")

    def _drop_connection(self, why: str) -> None:
        assert self.dealer is not None
        self.close(self.dealer)
        self.dealer = None
        lost = ", abandoning " + ",".join(show_bytes(r[2:]) for _, r in self.work)
        self.trace.add(self.name, "backoff", f"{why}{lost if self.work else ''}")
        self.work.clear()

    def _receive(self) -> str | None:
        assert self.dealer is not None
        message = receive(self.dealer)
        now = time.monotonic()
        if message is None:
            self.rejected += 1
            self.trace.add(self.name, "reject", "too many frames")
            return None
        if message == [b"", MDPW, DISCONNECT]:
            self._disconnected(now)
            return None
        self.liveness.on_message(now)  # the broker is alive, whatever it sent
        if message[:3] == [b"", MDPW, REQUEST] and len(message) >= 5 and message[4] == b"":
            return self._accept(message[3:])
        if message != [b"", MDPW, HEARTBEAT]:
            self.rejected += 1
            self.trace.add(self.name, "reject", f"not MDP: {describe(message)}")
        return None

    def _disconnected(self, now: float) -> None:
        """The broker said DISCONNECT: reconnect (RFC 7), after the back-off, which doubles
        if the broker keeps refusing before it is heard from again."""
        self.disconnects += 1
        liveness = self.liveness
        liveness.connected = False
        liveness.reconnect_at = now + liveness.backoff
        liveness.waited = liveness.backoff
        liveness.backoff = min(2 * liveness.backoff, liveness.reconnect_max)
        self._drop_connection(f"the broker said DISCONNECT; reconnecting in "
                              f"{liveness.waited:g} s")

    def _accept(self, request: list[bytes]) -> str | None:
        """Schedule the reply to `[client, "", body...]`, or apply the fault this request
        number draws; "crash" or "froze" tell the loop what happened."""
        self.received += 1
        decision = self.faults.decide(self.received)
        if decision.action == "crash":
            self.crashed = True
            self.trace.add(self.name, "crash", f"on request #{self.received}")
            return "crash"
        if decision.frozen:
            self.trace.add(self.name, "freeze", f"{self.faults.freeze_s:g} s, no heartbeats")
            self.pause(self.faults.freeze_s)
        if decision.action == "drop":
            self.trace.add(self.name, "drop", show_bytes(request[2:]))
        else:
            busy_until = self.work[-1][0] if self.work else time.monotonic()
            self.work.append((busy_until + self.work_s + self.faults.slow_s, request))
        return "froze" if decision.frozen else None

    def _reply(self, request: list[bytes]) -> None:
        assert self.dealer is not None
        envelope, body = request[:2], request[2:]
        self.answered += 1  # counted before the client can see the reply
        self.dealer.send_multipart([b"", MDPW, REPLY, *envelope, *self.handler(body)])

    def _say_goodbye(self) -> None:
        """DISCONNECT on the way out, given a moment to leave before the socket closes."""
        if self.dealer is not None:
            self.dealer.linger = 100
            try:
                self.dealer.send_multipart([b"", MDPW, DISCONNECT], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass


# -- the client -----------------------------------------------------------------------------
class MajordomoClient(LazyPirateClient):
    """Lazy Pirate over MDP: `request(service, *body)` returns the reply's body.

    A reply counts when it carries the MDP client header and the service asked; anything else
    is a mismatch and the request goes again on a fresh socket. After `retries` tries in all:
    `ServerUnavailable`. `offers(service)` asks MMI before sending.
    """

    def request(self, service: bytes | str, *body: bytes) -> list[bytes]:  # type: ignore[override]
        name = service.encode() if isinstance(service, str) else service
        return super().request(MDPC, name, *body)[2:]

    def accepts(self, request: list[bytes], reply: list[bytes]) -> bool:
        return len(reply) >= 2 and reply[:2] == request[:2]

    def offers(self, service: bytes | str) -> bool:
        """MMI: does at least one worker offer `service` now?"""
        name = service.encode() if isinstance(service, str) else service
        return self.request(b"mmi.service", name) == [MMI_FOUND]


class MajordomoRequester(Actor):
    """A Majordomo client in the background: asks `service` for `requests` ("1", "2", ...)
    in order, so a notebook cell can start workers while it waits. It stops early when the
    broker gives no answer (`gave_up` holds the exception); read `replies` after `join()`."""

    def __init__(
        self,
        endpoint: str,
        service: str,
        name: str = "client",
        *,
        requests: int = 1,
        timeout: float = 1.0,
        retries: int = 3,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.service = service
        self.bodies = [str(n).encode() for n in range(1, requests + 1)]
        self.client = MajordomoClient(endpoint, timeout=timeout, retries=retries, name=name,
                                      trace=self.trace, actor=self)
        self.replies: list[list[bytes]] = []
        self.gave_up: ServerUnavailable | None = None

    def run(self) -> None:
        try:
            for body in self.bodies:
                self.replies.append(self.client.request(self.service, body))
                with self.changes:
                    self.changes.notify_all()
        except ServerUnavailable as error:
            self.gave_up = error
