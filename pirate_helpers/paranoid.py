"""Paranoid Pirate: a queue and workers that check each other with heartbeats (RFC 6, PPP).

Simple Pirate's queue cannot tell a dead worker from a slow one: it learns of a crash only
by handing the dead worker a request, which is lost. Here queue and workers send each other a
HEARTBEAT every `heartbeat_interval`; a peer silent for `liveness` intervals is dead.

- The queue forgets a silent worker and gives the request it held to another worker. That is
  *at-least-once* delivery: a worker that was only frozen may have done the work already, so
  a request can be executed twice. Requests must be safe to repeat (idempotent), or carry an
  id the server uses to drop duplicates. A late reply from a forgotten worker is rejected, so
  a client never gets two replies from the queue for one request.
- A worker that hears nothing from its queue closes its socket, waits (doubling the wait up
  to a maximum, back to the minimum once the queue answers; each wait lengthened at random so
  workers that lost their queue together do not come back together) and reconnects with READY.

Wire format (https://rfc.zeromq.org/spec:6/PPP): READY and HEARTBEAT are one-frame messages
holding the single bytes 0x01 and 0x02; a request reaches a worker as `[client, b"", body...]`
and the reply comes back with that envelope unchanged. The decisions live in two pure state
machines, `QueueState` and `WorkerLiveness`, which take `now` as an argument (so tests use a
fake clock); `ParanoidQueue` and `ParanoidWorker` are thin socket loops around them.
`GuideQueueState` models the ZeroMQ Guide's ppqueue.py, bug included, for comparison.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Literal

import zmq

from .actor import Actor
from .endpoints import LOCAL, MAX_FRAMES, fits_round_trip, receive, send, waiting
from .faults import NONE, Faults
from .held import (
    MAX_BUSY_S,
    MAX_QUEUED_BYTES,
    MAX_QUEUED_BYTES_PER_CLIENT,
    MAX_WAITING,
    HeldBytes,
    size_of,
)
from .names import AddressMask, DisplayNames, wire_identity
from .queue_sockets import TwoSidedQueue
from .security import LOOPBACK, Join, KeyPair, Security
from .trace import Trace, show_bytes
from .trace import show_identity as _name

PPP_READY = b"\x01"  # worker -> queue: "I can take a request"
PPP_HEARTBEAT = b"\x02"  # both ways: "I am still here"
COMMAND_NAMES = {PPP_READY: "READY", PPP_HEARTBEAT: "HEARTBEAT"}
READY_MESSAGE, HEARTBEAT_MESSAGE = [PPP_READY], [PPP_HEARTBEAT]  # as frames after the identity
PURGED_REMEMBERED = 5  # expired workers a dashboard can still show
LATE_REMEMBERED = 256  # purged workers whose late heartbeat would show a settings mismatch
BATCH = 64  # messages read per pass before timers get a look
WORKER_ENVELOPE = 1  # a reply comes back with the DEALER worker's id in front of its request
DEFAULT_HEARTBEAT_S, DEFAULT_LIVENESS = 0.1, 3  # a worker's, when its join line says nothing
BUNCHED = 0.02  # of our interval: heartbeats this close were held up on the way, not sent so
MISMATCH_FACTOR = 1.5  # heartbeats this much further apart (or closer) than ours: settings differ
GAVE_UP_EARLY = 3  # times in a row a worker left us with short heartbeat gaps: it is faster
JITTER = 0.5  # a worker's wait before reconnecting is lengthened by up to half, at random


def describe(message: list[bytes]) -> str:
    """How the trace shows a message: a command's name, or the body without its envelope."""
    if len(message) == 1 and message[0] in COMMAND_NAMES:
        return COMMAND_NAMES[message[0]]
    if b"" in message:
        message = message[message.index(b"") + 1 :]
    return show_bytes(message)


def envelope_size(message: list[bytes]) -> int:
    """Frames up to and including the empty delimiter, or 0 if the message has none (or
    has nothing after it): such a message is not a request or a reply."""
    try:
        delimiter = message.index(b"", 1)
    except ValueError:
        return 0
    return delimiter + 1 if delimiter < len(message) - 1 else 0



# -- the queue's decisions ----------------------------------------------------------------
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


# -- the worker's decisions ---------------------------------------------------------------
WorkerAction = Literal["heartbeat", "disconnect", "reconnect"]


class WorkerLiveness:
    """When a worker heartbeats, when it gives its queue up for dead, when it reconnects.

    Every `heartbeat_interval` without a message from the queue costs one point of
    `liveness`; at zero the worker disconnects and waits before reconnecting. The wait is
    `backoff` lengthened by up to `jitter` of itself, drawn from `rng`: workers that lost
    their queue together come back spread out instead of all at once, at the price of a
    first reconnect up to `jitter x reconnect_min` later. `backoff` doubles at each failed
    attempt, up to `reconnect_max`, and is back to `reconnect_min` as soon as the queue is
    heard from again. Pass a seeded `random.Random` (a worker seeds it with its identity);
    `jitter=0` gives the plain doubling.
    """

    def __init__(
        self,
        heartbeat_interval: float = 1.0,
        liveness: int = 3,
        reconnect_min: float = 1.0,
        reconnect_max: float = 32.0,
        jitter: float = JITTER,
        rng: random.Random | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or liveness < 1 or not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need heartbeat_interval > 0, liveness >= 1, "
                             "0 < reconnect_min <= reconnect_max")
        if not 0 <= jitter <= 1:
            raise ValueError("need 0 <= jitter <= 1")
        self.heartbeat_interval = heartbeat_interval
        self.max_liveness = liveness
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.jitter = jitter
        self.rng = rng if rng is not None else random.Random(0)
        self.liveness = 0
        self.connected = False
        self.backoff = reconnect_min  # the wait before the next reconnection, before jitter
        self.waited = 0.0  # the wait chosen at the last disconnection, jitter included
        self.heartbeat_at = self.check_at = self.reconnect_at = 0.0

    def on_connect(self, now: float) -> None:
        """Just connected and sent READY: full liveness, first heartbeat one interval away."""
        self.connected = True
        self.liveness = self.max_liveness
        self.heartbeat_at = self.check_at = now + self.heartbeat_interval

    def on_message(self, now: float) -> None:
        """Anything from the queue: it is alive, and reconnecting works again."""
        self.liveness = self.max_liveness
        self.check_at = now + self.heartbeat_interval
        self.backoff = self.reconnect_min

    def hold(self, now: float) -> None:
        """Keep the queue counted alive for now, as if it had spoken (a worker busy behind a
        broker that heartbeats only idle workers); reconnecting's back-off is untouched."""
        self.liveness = self.max_liveness
        self.check_at = now + self.heartbeat_interval

    def tick(self, now: float) -> WorkerAction | None:
        """What to do now, if anything; call again until it returns None."""
        if not self.connected:
            return "reconnect" if now >= self.reconnect_at else None
        if now >= self.check_at:
            self.liveness -= 1
            self.check_at += self.heartbeat_interval
            if self.liveness == 0:
                self.give_up(now)
                return "disconnect"
            return self.tick(now)
        if now >= self.heartbeat_at:
            self.heartbeat_at = now + self.heartbeat_interval
            return "heartbeat"
        return None

    def give_up(self, now: float) -> None:
        """The queue is gone: wait the back-off plus its jitter, and double the back-off."""
        self.connected = False
        self.waited = self.backoff * (1 + self.jitter * self.rng.random())
        self.reconnect_at = now + self.waited
        self.backoff = min(2 * self.backoff, self.reconnect_max)

    def next_wakeup(self) -> float:
        if not self.connected:
            return self.reconnect_at
        return min(self.heartbeat_at, self.check_at)


# -- the socket loops ---------------------------------------------------------------------
class ParanoidQueue(TwoSidedQueue):
    """A ROUTER frontend for clients (REQ, Lazy Pirate) and a ROUTER backend for workers.

    The queue records its arrows to and from workers (it knows their names); clients record
    their own. `trace_messages=False` keeps only the notable events (purge, requeue,
    reject), which is what a busy queue wants: a trace line per message costs throughput.
    `logic=GuideQueueState` runs the Guide's decisions on the same sockets. `limits` go to
    `QueueState`: `max_waiting`, `max_queued_bytes`, `max_queued_bytes_per_client`,
    `max_busy` (the Guide's model has none).
    """

    def __init__(
        self,
        name: str = "queue",
        *,
        frontend: str = LOCAL,
        backend: str = LOCAL,
        heartbeat_interval: float = 0.1,
        liveness: int = 3,
        trace: Trace | None = None,
        trace_messages: bool = True,
        logic: type[QueueState] | type[GuideQueueState] = QueueState,
        security: Security = LOOPBACK,
        **limits: float,
    ) -> None:
        super().__init__(name, frontend=frontend, backend=backend, security=security,
                         trace=trace)
        self._chaos: SimpleQueue[tuple[str | None, float]] = SimpleQueue()  # (name, s)
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.trace_messages = trace_messages
        self.state = logic(heartbeat_interval, liveness, time.monotonic(), **limits)

    def setup(self) -> None:
        self.bind_both()

    def run(self) -> None:
        state, frontend, backend = self.state, self.frontend, self.backend
        events = self.watch_events
        both, workers_only = (frontend, backend), (backend,)
        while True:
            timeout = max(0.0, state.next_wakeup() - time.monotonic())
            polled = both if state.reads_always or state.accepting else workers_only
            readable = self.poll(polled, timeout, side=events)
            now = time.monotonic()
            if now - state.next_wakeup() > self.heartbeat_interval:
                state.stalled(now)  # what piled up meanwhile is still to be read
            self.read_watches(readable)
            # per socket, True: a message waits; False: none did; None: read since, so ask
            from_worker = backend in readable
            from_client = frontend in readable if polled is both else None
            for _ in range(BATCH):  # a poll costs more than a message: read what waits
                if from_worker is None:
                    from_worker = waiting(backend)
                if from_worker:
                    from_worker = None
                    frames = receive(backend)
                    if frames is None or len(frames) < 2:
                        self._refuse("a worker")
                    else:
                        state.on_worker_message(frames, now)  # first: it names a new worker
                        if self.trace_messages:
                            self.trace.add(self.name, "recv", describe(frames[1:]),
                                           peer=state.names[frames[0]])
                # a worker that just replied gets the next request in the same pass;
                # the Guide's model leaves requests in the socket while no worker is ready;
                # ours holds them, within its budgets
                if state.reads_always or state.accepting:
                    if from_client is None:
                        from_client = waiting(frontend)
                    if from_client:
                        from_client = None
                        frames = receive(frontend)
                        if frames is None:
                            self._refuse("a client")
                        else:
                            if self.trace_messages:  # clients draw their own arrows: a line
                                self.trace.add(self.name, "request", describe(frames))
                            state.on_request(frames, now)
                self._flush(now)
                if from_worker is False and (from_client is False
                                             or not (state.reads_always or state.accepting)):
                    break
            while not self._chaos.empty():
                name, seconds = self._chaos.get()
                if name is None:
                    state.freeze(seconds, now)
                elif not state.partition(name, seconds, now):
                    self.trace.add(self.name, "partition", f"no worker shown as {name!r}")
            state.tick(now)
            self._flush(now)
            if now < state.frozen_until:
                self.pause(state.frozen_until - now)  # nothing read, nothing sent
                state.thaw(time.monotonic())
                self._flush(time.monotonic())

    def _refuse(self, sender: str) -> None:
        self.state.rejected += 1
        self.trace.add(self.name, "reject", f"from {sender}: too many frames")

    def _flush(self, now: float) -> None:
        """Send what the state decided, and record it. A send to a worker whose connection
        is gone tells the state, which may decide more sends (the request, to another)."""
        state, backend = self.state, self.backend
        while state.notes or state.to_workers:
            for kind, detail in state.notes:  # first: a purge comes before the requeued send
                self.trace.add(self.name, kind, detail)
            state.notes.clear()
            sends, state.to_workers = state.to_workers, []
            for identity, message in sends:
                try:
                    send(backend, [identity, *message])
                except zmq.ZMQError as error:
                    if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                        raise
                    state.worker_unreachable(identity, now)
                    continue
                if self.trace_messages:
                    self.trace.add(self.name, "send", describe(message),
                                   peer=state.names[identity])
        for message in state.to_clients:
            self.reply_to_client(self.frontend, message)
        state.to_clients.clear()

    # -- read from any thread -------------------------------------------------------------
    @property
    def join_workers(self) -> str:
        """What a worker pastes: the backend, the key, and this queue's heartbeat interval
        and liveness, so a worker given only this line runs at the queue's pace."""
        return self.security.join(self.backend_endpoint, heartbeat_interval=self.heartbeat_interval,
                                  liveness=self.liveness)

    def partition(self, name: str, seconds: float) -> None:
        """Cut the worker shown as `name` off for `seconds` (see `QueueState.partition`);
        safe from any thread: the loop applies it within one heartbeat interval."""
        self._chaos.put((name, seconds))

    def freeze(self, seconds: float) -> None:
        """Freeze the whole queue for `seconds` (see `QueueState.freeze`); safe from any
        thread, applied within one heartbeat interval."""
        self._chaos.put((None, seconds))

    def snapshot(self) -> dict:
        """What a live dashboard shows: each worker ready, busy or expired, and the counts.

        The loop takes no lock (it is the hot path), so this reads copies CPython makes in
        one step (a dict's values, a deque): a moment old, never torn. "expired" are workers
        purged lately and not heard from since. Needs `QueueState` (the Guide's model tracks
        no busy workers).
        """
        state, now = self.state, time.monotonic()
        tracked = list(state.workers.values())
        names = state.names
        workers = {names[w.identity]: "ready" if w.request is None else "busy" for w in tracked}
        served = {names[w.identity]: w.served for w in tracked}
        heard = {names[w.identity]: now - w.last_heard for w in tracked}
        for identity in list(state.purged):
            workers.setdefault(names[identity], "expired")
        counts = {"in flight": sum(w.request is not None for w in tracked),
                  "waiting": len(state.pending), "answered": state.answered,
                  "requeued": state.requeued, "unreachable": state.unreachable,
                  "overdue": state.overdue, "rejected": state.rejected,
                  "failed handshakes": self.handshake_failures,
                  "closed before handshake": self.closed_before_handshake}
        chaos = [f"{names[identity]} cut off, {until - now:.1f} s left"
                 for identity, until in list(state.cut_off.items()) if until > now]
        if state.frozen_until > now:
            chaos.append(f"queue frozen, {state.frozen_until - now:.1f} s left")
        return {"workers": workers, "counts": counts, "served": served, "last heard": heard,
                "chaos": chaos}


class ParanoidWorker(Actor):
    """A DEALER worker that echoes every request with its envelope. Its routing id is its
    name plus a random suffix (`names.wire_identity`), so two workers given one name both
    serve; the queue shows the name.

    `connect` is the queue's backend endpoint or join token (`tcp://HOST:PORT/KEY`). The
    heartbeat interval and liveness come from the join line when it carries them (a
    `ParanoidQueue`'s does), so a worker given nothing else runs at its queue's pace; given
    here as well and different, the worker says so in one warning. A queue whose heartbeats
    keep coming at another pace than ours is named in one warning too.

    Work never blocks heartbeats: a request's reply is scheduled `work_s` ahead and sent
    from the same poll loop that heartbeats. Faults (`Faults`) are counted per request:
    crash (the thread ends, the request is lost), drop (never answered), freeze (silent for
    `freeze_s`, connection kept: no heartbeats, nothing read) and slow work.

    Its back-off jitter (`WorkerLiveness`) is drawn from a `random.Random` seeded with
    `seed`, by default its routing id: workers differ, and a test can fix it.
    """

    def __init__(
        self,
        name: str = "worker",
        *,
        connect: str | Join,
        heartbeat_interval: float | None = None,
        liveness: int | None = None,
        work_s: float = 0.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 1.0,
        jitter: float = JITTER,
        seed: int | bytes | None = None,
        faults: Faults = NONE,
        trace: Trace | None = None,
        keys: KeyPair | None = None,
        trace_messages: bool = False,
    ) -> None:
        super().__init__(name, trace)
        self.trace_messages = trace_messages  # its side of a timeline, when the queue is far
        self.join_token = room = Join.parse(connect, keys)
        self.endpoint = self.join_token.endpoint
        self.identity = wire_identity(name)  # the same across reconnections
        self.work_s = work_s
        self.faults = faults
        self.heartbeat_interval = (heartbeat_interval or room.heartbeat_interval
                                   or DEFAULT_HEARTBEAT_S)
        chosen_liveness = liveness or room.liveness or DEFAULT_LIVENESS
        rng = random.Random(self.identity if seed is None else seed)
        self.liveness = WorkerLiveness(self.heartbeat_interval, chosen_liveness,
                                       reconnect_min, reconnect_max, jitter, rng)
        self.mismatch_warned = False
        self._queue_beat_at: float | None = None  # the queue's last heartbeat, this connection
        self._odd_gaps = 0  # its heartbeats in a row at another pace than ours
        self.dealer: zmq.Socket | None = None
        self.work: deque[tuple[float, list[bytes]]] = deque()  # (reply due at, request)
        self.received = self.answered = self.reconnects = 0
        self.send_dropped = 0  # messages its queue could not take (a full pipe, no connection)
        self.crashed = False

    busy_keeps_queue = False
    """Whether a queue silent while this worker holds work still counts as alive. A PPP
    queue heartbeats busy workers too, so its silence always means trouble."""

    def shown(self, request: list[bytes]) -> str:
        """How the trace shows a request (a subclass with another envelope says otherwise)."""
        return describe(request)

    def setup(self) -> None:
        room, mine = self.join_token, self.liveness
        if room.heartbeat_interval is not None and (
                abs(room.heartbeat_interval - mine.heartbeat_interval) > 1e-9
                or room.liveness != mine.max_liveness):
            self._mismatch(f"every {room.heartbeat_interval:g} s, liveness {room.liveness} "
                           "(its join line says)")
        self._connect()

    def _mismatch(self, queue_pace: str) -> None:
        if not self.mismatch_warned:
            self.mismatch_warned = True
            self.trace.add(self.name, "mismatch", f"warning: {self.name} heartbeats every "
                           f"{self.heartbeat_interval:g} s, liveness {self.liveness.max_liveness}; "
                           f"the queue {queue_pace}: start the worker with the join line alone, "
                           "or give both the same --heartbeat-ms and --liveness")

    def _connect(self) -> None:
        self.dealer = self.socket(zmq.DEALER)
        self.dealer.identity = self.identity
        self.join_token.connect(self.dealer)
        self._send(READY_MESSAGE)
        self.liveness.on_connect(time.monotonic())
        self._queue_beat_at = None  # a gap spans one connection; odd ones count across them

    def _send(self, frames: list[bytes]) -> bool:
        """Send without ever blocking: a queue that stopped reading, or a connection libzmq
        dropped (a frame over our cap), must not stop heartbeats, replies or `stop()`. What
        cannot go now is counted in `send_dropped` and traced once per ten (bounded)."""
        assert self.dealer is not None
        try:
            self.dealer.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.send_dropped += 1
            if self.send_dropped % 10 == 1:
                self.trace.add(self.name, "drop", f"queue not taking messages "
                               f"({self.send_dropped} dropped)")
            return False
        if self.trace_messages:
            self.trace.add(self.name, "send", describe(frames), peer="queue")
        return True

    def run(self) -> None:
        while True:
            wakeup = self.liveness.next_wakeup()
            if self.work:
                wakeup = min(wakeup, self.work[0][0])
            sockets = (self.dealer,) if self.dealer is not None else ()
            # read before judging liveness: after a freeze, the queue's messages are waiting
            if self.poll(sockets, max(0.0, wakeup - time.monotonic())):
                outcome = self._receive()
                if outcome == "crash":
                    return
                if outcome == "froze":
                    continue  # read what arrived meanwhile before judging the queue
            now = time.monotonic()
            while self.work and self.work[0][0] <= now:
                self._reply(self.work.popleft()[1])
            if self.work and self.busy_keeps_queue and self.liveness.connected:
                self.liveness.hold(now)
            while action := self.liveness.tick(now):
                self._act(action)

    def _act(self, action: WorkerAction) -> None:
        if action == "heartbeat":
            self._send(HEARTBEAT_MESSAGE)
        elif action == "disconnect":
            assert self.dealer is not None
            self.close(self.dealer)
            self.dealer = None
            lost = ", abandoning " + ",".join(self.shown(r) for _, r in self.work)
            self.trace.add(self.name, "backoff", f"queue silent; reconnecting in "
                           f"{self.liveness.waited:.3g} s{lost if self.work else ''}")
            self.work.clear()
        else:
            self._connect()
            self.reconnects += 1
            self.trace.add(self.name, "reconnect", f"READY again (#{self.reconnects})")

    def _receive(self) -> str | None:
        assert self.dealer is not None
        message = receive(self.dealer)
        self.liveness.on_message(time.monotonic())
        if message is None:
            self.trace.add(self.name, "reject", "too many frames")
            return None
        if self.trace_messages:
            self.trace.add(self.name, "recv", describe(message), peer="queue")
        if len(message) > 1:
            return self._accept(message)
        if message == HEARTBEAT_MESSAGE:
            self._queue_heartbeat(time.monotonic())
        return None

    def _queue_heartbeat(self, now: float) -> None:
        """Measure the queue's pace: heartbeats bunched after a stall come fewer than
        `liveness` in a row, a freeze spreads one gap; a different setting keeps on (also
        across reconnections: a queue purges a slow worker, so it may hear only a few)."""
        mine = self.heartbeat_interval
        if self._queue_beat_at is not None and (gap := now - self._queue_beat_at) > BUNCHED * mine:
            odd = gap < mine / MISMATCH_FACTOR or gap > mine * MISMATCH_FACTOR
            self._odd_gaps = self._odd_gaps + 1 if odd else 0
            if self._odd_gaps > self.liveness.max_liveness:
                self._mismatch(f"every ~{gap:.2g} s (measured)")
        self._queue_beat_at = now

    def _accept(self, request: list[bytes]) -> str | None:
        """Schedule a request's reply, or apply the fault this request number draws;
        "crash" or "froze" tell the loop what happened."""
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
            self.trace.add(self.name, "drop", self.shown(request))
        else:
            busy_until = self.work[-1][0] if self.work else time.monotonic()
            self.work.append((busy_until + self.work_s + self.faults.slow_s, request))
        return "froze" if decision.frozen else None

    def _reply(self, request: list[bytes]) -> None:
        self.answered += 1  # counted before the client can see the reply
        if not self._send(request):
            self.answered -= 1
