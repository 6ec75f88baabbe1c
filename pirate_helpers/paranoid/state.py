"""The Paranoid queue's decisions, `QueueState`: messages and `now` in, messages to send out.
No sockets and no clock of its own, so tests drive it on a fake clock (`queue` is the loop)."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..endpoints import MAX_FRAMES, fits_round_trip
from ..held import (
    MAX_BUSY_S,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_BYTES_PER_CLIENT,
    MAX_WAITING,
    HeldBytes,
    size_of,
)
from ..names import AddressMask, DisplayNames
from ..trace import show_bytes
from .protocol import (
    BUNCHED,
    HEARTBEAT_MESSAGE,
    MISMATCH_FACTOR,
    READY_MESSAGE,
    WORKER_ENVELOPE,
    describe,
    envelope_size,
)

PURGED_REMEMBERED = 5  # expired workers a dashboard can still show
LATE_REMEMBERED = 256  # purged workers whose late heartbeat would show a settings mismatch
GAVE_UP_EARLY = 3  # times in a row a worker left us with short heartbeat gaps: it is faster


@dataclass
class TrackedWorker:
    """A worker as the queue sees it. It holds at most one request: None means ready."""

    identity: bytes
    expires_at: float
    request: list[bytes] | None = None
    echo: list[bytes] = field(default_factory=list)  # what its reply to `request` starts with
    served: int = 0
    last_heard: float = 0.0
    last_heartbeat: float | None = None  # while idle, on this connection (READY starts another)
    heartbeat_gap: float | None = None  # between its last two heartbeats while idle: its interval
    short_gaps: int = 0  # heartbeats in a row closer together than ours
    busy_until: float = float("inf")  # while it holds a request: when it has held it too long

    @property
    def due(self) -> float:
        """When the queue must next look at it: silence, or a request held too long."""
        return min(self.expires_at, self.busy_until if self.request else float("inf"))


class QueueState:
    """Who is ready, who is busy, who expires when, and what to send next.

    Feed it messages with `on_request` (from clients) and `on_worker_message` (from workers,
    identity first), and call `tick(now)` by `next_wakeup()`. It appends what to send to
    `to_workers` (identity, frames) and `to_clients` (frames), and what happened to `notes`
    (kind, detail); the caller sends, records, and clears them.

    Only READY or a reply makes a worker ready; a heartbeat only keeps it alive. Requests wait
    in `pending` only while no worker is ready, within `max_waiting` requests and the byte
    budgets (`held.py`); past them a request is refused (its client retries). A worker that
    holds one request for `max_busy` is given up and the request dropped (`overdue`).
    """

    reads_always = True
    """The socket loop reads requests even while no worker is ready: this state holds them
    within its budgets (so a client gone leaves nothing unbounded behind in libzmq)."""

    def __init__(self, heartbeat_interval: float = 1.0, liveness: int = 3, now: float = 0.0,
                 mask: Callable[[bytes], bytes] | None = None, *,
                 max_waiting: int = MAX_WAITING, max_queued_bytes: int = MAX_QUEUED_BYTES,
                 max_queued_bytes_per_client: int = MAX_QUEUED_BYTES_PER_CLIENT,
                 max_busy: float = MAX_BUSY_S):
        if heartbeat_interval <= 0 or liveness < 1 or max_busy <= 0:
            raise ValueError("heartbeat_interval and max_busy must be > 0 and liveness >= 1")
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.mask = mask or AddressMask()  # what workers see of a client's address
        self.workers: dict[bytes, TrackedWorker] = {}
        self.ready: dict[bytes, TrackedWorker] = {}  # in the order they became ready (LRU)
        self.pending: deque[list[bytes]] = deque()
        self.max_waiting, self.max_busy = max_waiting, max_busy
        self.held = HeldBytes(max_queued_bytes, max_queued_bytes_per_client)  # of `pending`
        self.heartbeat_at = now + heartbeat_interval
        self._check_at = self.heartbeat_at  # nothing can expire or be due before this
        self.rejected = self.answered = self.requeued = self.unreachable = self.overdue = 0
        self.purged: deque[bytes] = deque(maxlen=PURGED_REMEMBERED)  # newest last
        self.names = DisplayNames()  # what views show: unique, even for a shared --name
        self.late: OrderedDict[bytes, float | None] = OrderedDict()  # purged -> last heartbeat
        self.cut_off: dict[bytes, float] = {}  # identity -> until when (a partition on purpose)
        self.frozen_until = self.frozen_at = 0.0  # the whole queue frozen on purpose, when
        self.backlog_until = 0.0  # heartbeats read before then piled up while we stalled
        self.ignored = 0
        self.warned: OrderedDict[bytes, None] = OrderedDict()  # named in a mismatch warning
        self.gave_up_early: OrderedDict[bytes, int] = OrderedDict()  # identity -> times in a row
        self.to_workers: list[tuple[bytes, list[bytes]]] = []
        self.to_clients: list[list[bytes]] = []
        self.notes: list[tuple[str, str]] = []

    @property
    def silence_limit(self) -> float:
        """How long a worker may stay silent before it counts as dead."""
        return self.heartbeat_interval * self.liveness

    @property
    def accepting(self) -> bool:
        return bool(self.ready)

    def on_request(self, frames: list[bytes], now: float) -> None:
        """A client's request `[client, b"", body...]`, as the frontend ROUTER delivers it."""
        self.tick(now)  # never hand work to a worker that expired a moment ago
        if not envelope_size(frames):
            self._reject(f"from a client, no envelope: {show_bytes(frames)}")
        elif not fits_round_trip(len(frames), WORKER_ENVELOPE):
            self._reject(f"from a client, {len(frames)} frames: its reply would come back "
                         f"over the {MAX_FRAMES}-frame limit")
        elif self.ready:
            self._assign(self.ready.pop(next(iter(self.ready))), frames, now)
        elif len(self.pending) >= self.max_waiting:
            self._reject(f"from a client: {self.max_waiting} requests waiting already")
        elif (why := self.held.refusal(frames[0], size := size_of(frames))) is not None:
            self._reject(f"from a client: {why}")
        else:
            self.held.add(frames[0], size)
            self.pending.append(frames)

    def on_worker_message(self, frames: list[bytes], now: float) -> None:
        """Anything from a worker, `[identity, ...]`, as the backend ROUTER delivers it."""
        identity, message = frames[0], frames[1:]
        if identity in self.cut_off:
            if now < self.cut_off[identity]:
                self.ignored += 1  # as if the network lost it
                return
            del self.cut_off[identity]
            self.notes.append(("heal", f"{self.names[identity]} reachable again"))
        worker = self.workers.get(identity)
        if message == READY_MESSAGE:
            if worker is None:
                worker = self.workers[identity] = TrackedWorker(identity, now)
                self.late.pop(identity, None)
                self.notes.extend(self.names.add(identity))
            else:  # it gave us up and reconnected while we still heard it
                self.notes.append(("reconnect", f"{self.names[identity]} reconnected"))
                self._gave_up(identity, worker.heartbeat_gap)
                worker.last_heartbeat = worker.heartbeat_gap = None
                worker.short_gaps = 0
                if worker.request is not None:  # what it held is gone
                    self._requeue(worker)
            worker.expires_at = now + self.silence_limit
            worker.last_heard = now
            self._make_ready(worker, now)
            return
        if worker is None:
            if message == HEARTBEAT_MESSAGE and identity in self.late:
                self._late_heartbeat(identity, now)
                return
            self._reject(f"from unknown worker {self.names[identity]}: {describe(message)}")
            return
        worker.expires_at = now + self.silence_limit  # any message proves it is alive
        worker.last_heard = now
        if message == HEARTBEAT_MESSAGE:
            # a worker may block while it works (the Guide's ppworker), and what piled up
            # while this queue stalled arrives all at once: neither gap shows its interval
            if worker.request is not None or now < self.backlog_until:
                worker.last_heartbeat = None
                return
            last = worker.last_heartbeat
            if last is not None and (gap := now - last) > BUNCHED * self.heartbeat_interval:
                worker.heartbeat_gap = gap
                short = gap < self.heartbeat_interval / MISMATCH_FACTOR
                worker.short_gaps = worker.short_gaps + 1 if short else 0
                # heartbeats bunched by a stalled link come at most `liveness` in a row
                if worker.short_gaps > 2 * self.liveness:
                    self._mismatch(identity, gap)
            worker.last_heartbeat = now
            return
        request, size = worker.request, len(worker.echo)
        if request is not None and len(message) > size and message[:size] == worker.echo:
            worker.request = None
            worker.served += 1
            self.answered += 1
            self.to_clients.append(request[:size] + message[size:])  # the real address
            self._make_ready(worker, now)
        else:
            self._reject(f"from {self.names[identity]}, not a reply it owes: "
                         f"{describe(message)}")

    def tick(self, now: float) -> None:
        """Purge workers silent too long (re-queueing what they held), give up on workers
        that held a request too long (dropping it), and send heartbeats."""
        if now < self._check_at or now < self.frozen_until:
            return
        for worker in [w for w in self.workers.values() if w.expires_at <= now]:
            del self.workers[worker.identity]
            self.purged.append(worker.identity)
            self.ready.pop(worker.identity, None)
            self.names.remove(worker.identity)
            self.notes.append(("purge", f"{self.names[worker.identity]} silent for "
                               f"{self.silence_limit:g} s"))
            gap = worker.heartbeat_gap
            if gap is not None and gap > MISMATCH_FACTOR * self.heartbeat_interval:
                self._mismatch(worker.identity, gap)
            else:  # its interval shows in the gap between its next two heartbeats
                self.late[worker.identity] = None
                while len(self.late) > LATE_REMEMBERED:
                    self.late.popitem(last=False)
            if worker.request is not None:
                self._requeue(worker)
        for worker in [w for w in self.workers.values() if w.due <= now]:
            self._give_up(worker)
        self._assign_pending(now)
        if now >= self.heartbeat_at:
            self.to_workers.extend((identity, HEARTBEAT_MESSAGE) for identity in self.workers
                                   if identity not in self.cut_off)
            self.heartbeat_at = now + self.heartbeat_interval
        self._check_at = min([self.heartbeat_at] + [w.due for w in self.workers.values()])

    def partition(self, name: str, seconds: float, now: float) -> bool:
        """Chaos from the queue's side: for `seconds`, act as if the network between this
        queue and the worker shown as `name` were cut (nothing read from it, nothing sent
        to it). Its heartbeats stop arriving, so it is purged within liveness x interval;
        it gives the queue up too, and is back with READY once the cut heals."""
        identity = next((i for i, shown in self.names.live.items() if shown == name), None)
        if identity is None:
            return False
        self.cut_off[identity] = now + seconds
        self.notes.append(("partition", f"{name} cut off for {seconds:g} s"))
        return True

    def freeze(self, seconds: float, now: float) -> None:
        """Chaos from the queue's side: for `seconds` the queue does nothing at all (the
        socket loop reads nothing, `tick` sends no heartbeat), as if its process were
        stopped. Every worker gives it up after liveness x its interval and backs off."""
        self.frozen_until = now + seconds
        self.frozen_at = now
        self.notes.append(("freeze", f"queue frozen for {seconds:g} s: no heartbeats, "
                           "nothing read or sent"))

    def thaw(self, now: float) -> None:
        """The freeze is over. The silence was the queue's own doing, so no worker is
        blamed for it: each gets a full `silence_limit` to be heard again (the ones that
        backed off say READY once they are back), the freeze does not count towards
        `max_busy`, and the heartbeats that piled up meanwhile, read all at once, say
        nothing of anyone's interval."""
        self.frozen_until = 0.0
        for worker in self.workers.values():
            worker.expires_at = max(worker.expires_at, now + self.silence_limit)
            worker.busy_until += now - self.frozen_at
            worker.last_heartbeat = worker.heartbeat_gap = None
            worker.short_gaps = 0
        self.heartbeat_at = self._check_at = now
        self.backlog_until = now + self.heartbeat_interval  # what piled up says nothing
        self.notes.append(("thaw", "queue running again"))

    def worker_unreachable(self, identity: bytes, now: float) -> None:
        """A send to this worker failed: its connection is gone (EHOSTUNREACH). Forget it as
        a purge would, and give what it held (it never got it) to the next ready worker."""
        worker = self.workers.pop(identity, None)
        if worker is None:
            return
        self.ready.pop(identity, None)
        self.purged.append(identity)
        self.names.remove(identity)
        self.unreachable += 1
        self.notes.append(("unreachable", f"{self.names[identity]} is gone"))
        self._gave_up(identity, worker.heartbeat_gap)  # it may have closed its socket on us
        if worker.request is not None:
            self._requeue(worker)
        self._assign_pending(now)

    def stalled(self, now: float) -> None:
        """The socket loop ran more than an interval late (a machine too busy to run it):
        what workers sent meanwhile is still unread. Nobody is purged for that silence
        before the loop has read it, and heartbeats read in a bunch measure nothing. (A
        queue that cannot run once an interval cannot judge anyone's silence.)"""
        for worker in self.workers.values():
            worker.expires_at = max(worker.expires_at, now + self.heartbeat_interval)
        self.backlog_until = now + self.heartbeat_interval

    def next_wakeup(self) -> float:
        """When `tick` next has something to do (maybe a little early, never late)."""
        return self._check_at

    def _late_heartbeat(self, identity: bytes, now: float) -> None:
        """A heartbeat from a worker purged for silence. Two of them in a row show its
        interval: far above ours, its settings differ (a worker that was only frozen
        heartbeats at our rate again once it wakes)."""
        previous = self.late.pop(identity)
        self.rejected += 1
        if previous is not None and now - previous > MISMATCH_FACTOR * self.heartbeat_interval:
            self._mismatch(identity, now - previous)
            return
        if previous is None:
            self.late[identity] = now
        self.notes.append(("reject", f"from unknown worker {self.names[identity]}: HEARTBEAT"))

    def _gave_up(self, identity: bytes, gap: float | None) -> None:
        """The worker left us (a READY again, or its connection gone). One whose patience is
        shorter than our interval does so again and again, short gaps between its heartbeats
        each time; once proves nothing: a stall bunches anyone's heartbeats and ends their
        patience too."""
        if gap is None:  # too short a stay to measure anything
            return
        if gap >= self.heartbeat_interval / MISMATCH_FACTOR:
            self.gave_up_early.pop(identity, None)
            return
        times = self.gave_up_early[identity] = self.gave_up_early.pop(identity, 0) + 1
        while len(self.gave_up_early) > LATE_REMEMBERED:
            self.gave_up_early.popitem(last=False)
        if times >= GAVE_UP_EARLY:
            self._mismatch(identity, gap)

    def _mismatch(self, identity: bytes, gap: float) -> None:
        """Name a worker whose heartbeat interval differs from ours, once per worker."""
        if identity in self.warned:
            return
        self.warned[identity] = None
        while len(self.warned) > LATE_REMEMBERED:
            self.warned.popitem(last=False)
        if gap > self.heartbeat_interval:
            effect = f"it is purged after {self.liveness} of ours pass without one"
        else:
            effect = "it gives this queue up too early and keeps reconnecting"
        self.notes.append(("mismatch", f"warning: {self.names[identity]} heartbeats every "
                           f"~{gap:.2g} s, this queue every {self.heartbeat_interval:g} s: "
                           f"{effect}; start it with the join line alone (it carries the "
                           "queue's settings) or give both the same --heartbeat-ms"))

    def _make_ready(self, worker: TrackedWorker, now: float) -> None:
        if self.pending:  # just heard from: it takes the oldest waiting request
            self._assign(worker, self._take_pending(), now)
        else:
            self.ready[worker.identity] = worker

    def _take_pending(self) -> list[bytes]:
        request = self.pending.popleft()
        self.held.remove(request[0], size_of(request))
        return request

    def _assign_pending(self, now: float) -> None:
        """Hand waiting requests (oldest first) to ready workers (least recently used first)."""
        while self.pending and self.ready:
            self._assign(self.ready.pop(next(iter(self.ready))), self._take_pending(), now)

    def _give_up(self, worker: TrackedWorker) -> None:
        """A worker held one request for `max_busy`: it heartbeats but does not answer. The
        request is dropped, not re-queued (it may be what stops workers; its client's retry
        decides), and the worker forgotten: with no heartbeats from us it reconnects."""
        assert worker.request is not None
        del self.workers[worker.identity]
        self.purged.append(worker.identity)
        self.names.remove(worker.identity)
        self.overdue += 1
        self.notes.append(("overdue", f"{self.names[worker.identity]} held "
                           f"{describe(worker.request)} for over {self.max_busy:g} s: request "
                           "dropped, worker forgotten"))
        worker.request = None

    def _assign(self, worker: TrackedWorker, request: list[bytes], now: float) -> None:
        masked = [self.mask(request[0]), *request[1:]]
        worker.request, worker.echo = request, masked[:envelope_size(request)]
        worker.busy_until = now + self.max_busy
        worker.last_heartbeat = None  # its interval is measured again once it is idle
        if worker.identity not in self.cut_off:  # else lost on the way, as in a real cut
            self.to_workers.append((worker.identity, masked))

    def _requeue(self, worker: TrackedWorker) -> None:
        """Put the request a lost worker held first in line: it has waited longest."""
        assert worker.request is not None
        self.notes.append(("requeue", f"{describe(worker.request)} from "
                           f"{self.names[worker.identity]}"))
        self.pending.appendleft(worker.request)
        self.held.add(worker.request[0], size_of(worker.request))
        self.requeued += 1
        worker.request = None

    def _reject(self, why: str) -> None:
        self.rejected += 1
        self.notes.append(("reject", why))
