"""The Majordomo broker's decisions, with no sockets: `BrokerState` takes each message and
`now`, and says what to send (`outbox`) and what happened (`notes`).

Per service it keeps the workers waiting for work (least recently used first) and the
requests waiting for a worker (oldest first). `MajordomoBroker` (`broker.py`) is the thin
socket loop around it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..endpoints import MAX_FRAMES, fits_round_trip
from ..held import MAX_BUSY_S, MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_CLIENT, HeldBytes, size_of
from ..names import AddressMask
from ..trace import show_bytes, show_identity
from .protocol import (
    C2_FINAL,
    C2_PARTIAL,
    C2_REQUEST,
    DISCONNECT,
    HEARTBEAT,
    MAX_QUEUED,
    MAX_QUEUED_PER_CLIENT,
    MDPC,
    MDPC2,
    MDPW,
    MDPW2,
    MMI,
    MMI_FOUND,
    MMI_NOT_FOUND,
    MMI_NOT_IMPLEMENTED,
    PARTIAL,
    PURGED_REMEMBERED,
    READY,
    REPLY,
    REQUEST,
    UNOFFERED_EXPIRY_S,
    UNOFFERED_SHARE,
    W2_CODES,
    W2_COMMANDS,
    describe,
)

CLIENT_ENVELOPE = 4  # [client, "", MDPC01, service] before a 0.1 request's body
WORKER_ENVELOPE = 2  # a REPLY's [worker, "", MDPW01, REPLY, client, ""] is 2 frames more


@dataclass(eq=False)  # each one is itself: two alike from one client are two requests
class Request:
    """A client's request as the broker keeps it: who asked, which service, what."""

    client: bytes
    service: bytes
    body: list[bytes]
    expires_at: float = float("inf")  # while queued; a worker holding it does not expire it
    version: int = 1  # the client's MDP/0.x: how its reply is framed
    queued: bool = False  # waiting in its service's line (not yet given to a worker)
    size: int = 0  # bytes held for it (its body) while it waits


@dataclass(eq=False)
class Worker:
    """A registered worker. It holds at most one request: None means waiting for work."""

    identity: bytes
    service: bytes
    expires_at: float
    request: Request | None = None
    echo: bytes = b""  # the client's address as it was shown the request: its reply carries it
    version: int = 1  # the worker's MDP/0.x: how messages to it are framed
    busy_until: float = float("inf")  # while it holds a request: when it has held it too long
    check_at: float = float("inf")  # when its one live entry in the checks heap is due

    @property
    def due(self) -> float:
        """When the broker must next look at it: silence, or a request held too long."""
        return min(self.expires_at, self.busy_until if self.request else float("inf"))


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
        max_queued_per_client: int = MAX_QUEUED_PER_CLIENT,
        unoffered_expiry: float = UNOFFERED_EXPIRY_S,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        max_queued_bytes_per_client: int = MAX_QUEUED_BYTES_PER_CLIENT,
        max_busy: float = MAX_BUSY_S,
        mask: Callable[[bytes], bytes] | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or liveness < 1:
            raise ValueError("heartbeat_interval must be > 0 and liveness >= 1")
        if request_expiry is not None and request_expiry <= 0:
            raise ValueError("request_expiry must be > 0 (or None: never)")
        if max_busy <= 0:
            raise ValueError("max_busy must be > 0")
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.request_expiry = request_expiry
        self.max_queued = max_queued
        self.max_queued_per_client = max_queued_per_client
        self.unoffered_expiry = unoffered_expiry
        self.queued_by: Counter[bytes] = Counter()  # requests waiting, per client
        self.held = HeldBytes(max_queued_bytes, max_queued_bytes_per_client)  # their bytes
        self.max_busy = max_busy  # a worker holding one request longer is given up
        self.mask = mask or AddressMask()  # what workers see of a client's address
        self.services: dict[bytes, Service] = {}
        self.workers: dict[bytes, Worker] = {}
        self.queued = 0  # requests waiting, all services together
        self.heartbeat_at = now + heartbeat_interval
        self._check_at = self.heartbeat_at  # nothing can expire or be due before this
        # when to look at each worker and queued request again, soonest first: a tick costs
        # what is due, not what is held (a heap entry is checked, and maybe pushed again,
        # when due; one that is stale by then is dropped)
        self._worker_checks: list[tuple[float, int, Worker]] = []
        self._request_checks: list[tuple[float, int, Request]] = []
        self._order = itertools.count()  # ties in a heap never compare workers or requests
        self.answered: Counter[bytes] = Counter()  # replies delivered, per service
        self.requeued = self.expired = self.rejected = self.disconnected = 0
        self.unreachable = self.mmi_answered = self.partials_dropped = self.overdue = 0
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
            self._forget(worker, f"{show_identity(identity)} is gone", now, kind="unreachable",
                         send=False)
        else:
            self.notes.append(("unreachable", f"client {show_bytes([identity])} is gone or "
                               "not reading: its reply is lost"))

    def _on_client(self, client: bytes, message: list[bytes], now: float,
                   version: int = 1) -> None:
        if not message:
            self.reject(f"client {client.hex()}: no service frame")
            return
        service, body = message[0], message[1:]
        if not fits_round_trip(len(body) + CLIENT_ENVELOPE, WORKER_ENVELOPE):
            self.reject(f"client {client.hex()}: {len(body)} body frames: the reply would come "
                        f"back over the {MAX_FRAMES}-frame limit")
        elif service.startswith(MMI):
            self._answer_mmi(Request(client, service, body, version=version))
        elif self.queued >= self.max_queued:
            self.reject(f"client {client.hex()}: {self.queued} requests queued already")
        elif self.queued_by[client] >= self.max_queued_per_client:
            self.reject(f"client {client.hex()}: {self.max_queued_per_client} of its requests "
                        "queued already")
        elif not self.offers(service) and self.queued >= self.max_queued * UNOFFERED_SHARE:
            self.reject(f"client {client.hex()}: {show_identity(service)} has no worker and "
                        f"{self.queued} requests are queued; the rest is kept for live services")
        elif (why := self.held.refusal(client, size := size_of(body))) is not None:
            self.reject(f"client {client.hex()}: {why}")
        else:
            entry = self.services.get(service) or self.services.setdefault(
                service, Service(service))
            self._queue(entry, Request(client, service, body, version=version, size=size), now)
            self._dispatch(entry, now)

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
                self._forget(worker, f"{show_identity(identity)} said DISCONNECT", now,
                             kind="leave", send=False)
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
            self._check_worker_at(worker, worker.expires_at)
            self.notes.append(("ready",
                               f"{show_identity(identity)} offers {show_identity(service)}"))
            self._make_waiting(worker, now)
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
                and request is not None and message[1] == worker.echo):
            worker.expires_at = now + self.silence_limit
            if command == PARTIAL:  # a 0.2 worker's reply in parts; it keeps the request
                if request.version == 1:
                    self.partials_dropped += 1  # a 0.1 client takes one reply: the FINAL
                else:
                    self._to_client(request, message[3:], final=False)
                return
            worker.request = None
            self.answered[worker.service] += 1
            self._make_waiting(worker, now)  # first: its next request leaves before this reply
            self._to_client(request, message[3:])
            return
        self._protocol_error(identity, worker,
                             f"out of order: {describe([b'', MDPW, *message])}", now)

    # -- time -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Purge silent workers (re-queueing what they held), give up on workers that held
        a request too long (dropping it), drop requests queued too long, and send heartbeats
        to every worker, busy or not, on schedule."""
        if now < self._check_at:
            return
        expired, overdue = [], []
        while self._worker_checks and self._worker_checks[0][0] <= now:
            due, _, worker = heapq.heappop(self._worker_checks)
            if self.workers.get(worker.identity) is not worker or due != worker.check_at:
                continue  # forgotten meanwhile, or an entry an earlier one replaced
            worker.check_at = float("inf")
            if worker.expires_at <= now:
                expired.append(worker)
            elif worker.due <= now:
                overdue.append(worker)
            else:  # heard from since: look again when its new time comes
                self._check_worker_at(worker, worker.due)
        for worker in overdue:
            self._give_up(worker, now)
        for worker in expired:  # all of them first: none is handed a request meanwhile
            self._forget(worker, f"{show_identity(worker.identity)} silent for "
                         f"{self.silence_limit:g} s", now, kind="purge", send=False,
                         dispatch=False)
        for service in {w.service for w in expired} & self.services.keys():
            self._dispatch(self.services[service], now)
        checks = self._request_checks
        while checks and (checks[0][0] <= now or not checks[0][2].queued):
            due, _, request = heapq.heappop(checks)
            if request.queued and request.expires_at == due:  # else given out, or requeued
                self._expire(request)
        if now >= self.heartbeat_at:
            for worker in self.workers.values():
                self._to_worker(worker.identity, worker.version, HEARTBEAT)
            self.heartbeat_at = now + self.heartbeat_interval
        self._check_at = min([self.heartbeat_at] + [heap[0][0] for heap in
                                                     (self._worker_checks, checks) if heap])

    def _expire(self, request: Request) -> None:
        """Drop a request that waited `request_expiry` for a worker (it is near the front
        of its line: the oldest expire first)."""
        entry = self.services[request.service]
        entry.requests.remove(request)
        request.queued = False
        self.queued -= 1
        self._unqueued(request)
        self.expired += 1
        self.notes.append(("expire", f"{show_identity(entry.name)}: "
                           f"{show_bytes(request.body)} waited too long"))
        self._drop_if_unused(entry)

    def _give_up(self, worker: Worker, now: float) -> None:
        """A worker held one request for `max_busy`: it heartbeats but does not answer.
        The request is dropped, not re-queued (it may be what stops workers; its client's
        retry decides), and the worker is disconnected (READY again, it is welcome)."""
        request, worker.request = worker.request, None
        assert request is not None
        self.overdue += 1
        self._forget(worker, f"{show_identity(worker.identity)} held "
                     f"{show_bytes(request.body)} for over {self.max_busy:g} s: request "
                     "dropped, worker disconnected", now, kind="overdue")

    def _check_worker_at(self, worker: Worker, when: float) -> None:
        """Look at `worker` at `when`, unless it is due sooner already (one live entry each:
        the heap grows with the workers, not with what they do)."""
        if when >= worker.check_at:
            return
        worker.check_at = when
        heapq.heappush(self._worker_checks, (when, next(self._order), worker))
        self._check_at = min(self._check_at, when)

    def stalled(self, now: float) -> None:
        """The socket loop ran more than an interval late (a machine too busy to run it):
        what workers sent meanwhile is still unread, so nobody is purged for that silence
        before the loop has read it. (A broker that cannot run once an interval cannot
        judge anyone's silence.)"""
        for worker in self.workers.values():
            worker.expires_at = max(worker.expires_at, now + self.heartbeat_interval)

    def next_wakeup(self) -> float:
        """When `tick` next has something to do (maybe a little early, never late)."""
        return self._check_at

    # -- the moves --------------------------------------------------------------------
    def _queue(self, entry: Service, request: Request, now: float, *, front: bool = False) -> None:
        wait = self.request_expiry
        if wait is None and not entry.workers:
            wait = self.unoffered_expiry  # nobody offers it (now): it may not wait for ever
        request.expires_at = float("inf")  # a check left from an earlier wait never fires
        if wait is not None:
            request.expires_at = now + wait
            heapq.heappush(self._request_checks,
                           (request.expires_at, next(self._order), request))
            self._check_at = min(self._check_at, request.expires_at)
        request.queued = True
        self.queued_by[request.client] += 1
        self.held.add(request.client, request.size)
        if front:
            entry.requests.appendleft(request)
        else:
            entry.requests.append(request)
        self.queued += 1

    def _dispatch(self, entry: Service, now: float) -> None:
        while entry.waiting and entry.requests:
            worker = entry.waiting.pop(next(iter(entry.waiting)))
            request = worker.request = entry.requests.popleft()
            request.queued = False
            self.queued -= 1
            self._unqueued(request)
            worker.busy_until = now + self.max_busy
            self._check_worker_at(worker, worker.busy_until)
            worker.echo = self.mask(request.client)
            self._to_worker(worker.identity, worker.version, REQUEST, worker.echo, b"",
                            *request.body)

    def _unqueued(self, request: Request) -> None:
        """A request left the queue (to a worker, or expired): its client may queue another."""
        self.queued_by[request.client] -= 1
        if not self.queued_by[request.client]:
            del self.queued_by[request.client]  # the count stays as small as the queue
        self.held.remove(request.client, request.size)

    def _make_waiting(self, worker: Worker, now: float) -> None:
        entry = self.services[worker.service]
        entry.waiting[worker.identity] = worker
        self._dispatch(entry, now)

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
                               f"{show_identity(worker.identity)}"))
            self._queue(entry, request, now, front=True)
            if dispatch:
                self._dispatch(entry, now)
        self._drop_if_unused(entry)

    def _protocol_error(self, identity: bytes, worker: Worker | None, why: str,
                        now: float, version: int = 1) -> None:
        """Log, count, DISCONNECT (in the peer's MDP version); a registered worker is
        forgotten too."""
        self.rejected += 1
        if worker is not None:
            self._forget(worker, f"{show_identity(identity)}: {why}", now, kind="reject")
        else:
            self.notes.append(("reject", f"{show_identity(identity)}: {why}"))
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
