"""Simple Pirate: a least-recently-used queue between clients and workers (Guide, chapter 4).

Clients are Lazy Pirate clients (REQ) and talk to the queue's ROUTER frontend. Workers are REQ
sockets on the ROUTER backend: each says READY (the single byte 0x01) once, then answers every
request with its envelope. The queue hands each request to the worker that has waited longest
and never to a busy one, so a slow worker gets only what it can take, and a request lost with
a dead worker is simply sent again by its client and given to someone else.

`LruQueue` is the whole decision, with no sockets; `SimplePirateQueue` is the socket loop
around it; `SimpleWorker` is the worker. At the end, the article's version for comparison:
`zmq.proxy` over ROUTER-DEALER (round-robin, not LRU) and a client that never resends.

A worker whose connection is gone when the queue sends to it costs nothing: the backend sets
`ROUTER_MANDATORY`, so libzmq raises EHOSTUNREACH instead of dropping the message, and the
request goes to the next worker. Simple Pirate's own limit is what keeps a connection open: a
worker (or queue) that is frozen, or a network that silently stops carrying anything. The
request handed to such a worker waits there, and its client pays a whole timeout. Paranoid
Pirate's heartbeats fix this.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

import zmq
from zmq.utils.monitor import recv_monitor_message

from .actor import Actor
from .endpoints import LOCAL, MAX_FRAMES, bind, fits_round_trip, receive
from .faults import NONE, Faults
from .held import MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_CLIENT, MAX_WAITING, HeldBytes, size_of
from .lazy import LazyClient, LazyServer, ServerUnavailable, StrictEcho
from .names import AddressMask, DisplayNames, wire_identity
from .queue_sockets import TwoSidedQueue
from .security import LOOPBACK, Join, KeyPair, Security
from .trace import Trace, show_bytes

READY = b"\x01"
"""A worker's first message: "I can take a request" (the Guide's PPP_READY)."""

RECONNECT_S = 0.1
"""How long a worker whose fresh socket could not say READY waits before the next one."""

WORKER_ENVELOPE = 2
"""Frames a reply comes back with beyond its request: the REQ worker's id and empty frame."""


class Rejected(ValueError):
    """A message that breaks the protocol. The queue logs and counts it and keeps serving."""


@dataclass(frozen=True)
class Request:
    """A client's request: `envelope` (its return address, ending with the empty delimiter)
    and `body` (the frames the worker sees)."""

    envelope: tuple[bytes, ...]
    body: tuple[bytes, ...]

    @classmethod
    def parse(cls, frames: Sequence[bytes]) -> Request:
        """Split at the first empty frame; there must be an address before it and a body after."""
        if b"" not in frames[1:-1]:
            raise Rejected(f"no envelope and body: {show_bytes(frames)}")
        delimiter = frames.index(b"", 1)
        return cls(tuple(frames[: delimiter + 1]), tuple(frames[delimiter + 1 :]))

    @property
    def frames(self) -> list[bytes]:
        return [*self.envelope, *self.body]

    @property
    def size(self) -> int:
        """Bytes held for it while it waits."""
        return size_of(self.envelope) + size_of(self.body)

    def masked(self, mask: Callable[[bytes], bytes]) -> Request:
        """This request as a worker sees it: the client's address through `mask`."""
        return Request((mask(self.envelope[0]), *self.envelope[1:]), self.body)


@dataclass(frozen=True)
class Dispatch:
    """Send `request` to `worker` now."""

    worker: bytes
    request: Request


class LruQueue:
    """Who is ready (least recently used first), what waits, and who holds what. No sockets.

    Each method takes one event and returns the one dispatch it makes possible, if any: one
    event adds at most one ready worker or one waiting request, so at most one can pair up.
    A message that breaks the protocol raises `Rejected` and changes nothing.

    Waiting requests are bounded in number (`max_waiting`) and in bytes, in all and per
    client (`held.py`). The queue cannot see a worker die. A dead worker stays in `busy` with
    its request (so it is never handed another) until its name says READY again, or in
    `ready` until a send to it fails (`unreachable`): that memory grows with the number of
    worker names, never with the number of requests.
    """

    def __init__(self, max_waiting: int = MAX_WAITING,
                 mask: Callable[[bytes], bytes] | None = None, *,
                 max_queued_bytes: int = MAX_QUEUED_BYTES,
                 max_queued_bytes_per_client: int = MAX_QUEUED_BYTES_PER_CLIENT) -> None:
        self.max_waiting = max_waiting
        self.held = HeldBytes(max_queued_bytes, max_queued_bytes_per_client)  # of `waiting`
        self.mask = mask or AddressMask()  # what workers see of a client's address
        self.ready: OrderedDict[bytes, None] = OrderedDict()
        self.waiting: deque[Request] = deque()
        self.busy: dict[bytes, Request] = {}
        self.answered = 0
        self.served: dict[bytes, int] = {}  # replies per worker
        self.lost = 0  # requests held by a worker that then said READY again
        self.unreachable_workers = 0  # handed a request after their connection was gone

    def worker_ready(self, worker: bytes) -> Dispatch | None:
        """A REQ worker says READY once per life, so a second READY means it restarted: if it
        held a request, that died with it; if it was idle, it goes to the back of the line."""
        if self.busy.pop(worker, None) is not None:
            self.lost += 1
        self.ready.pop(worker, None)
        self.ready[worker] = None
        return self._dispatch()

    def request(self, request: Request) -> Dispatch | None:
        if not fits_round_trip(len(request.frames), WORKER_ENVELOPE):
            raise Rejected(f"{len(request.frames)} frames: its reply would come back over the "
                           f"{MAX_FRAMES}-frame limit")
        if len(self.waiting) >= self.max_waiting:
            raise Rejected(f"{self.max_waiting} requests waiting already")
        if (why := self.held.refusal(request.envelope[0], request.size)) is not None:
            raise Rejected(why)
        self.held.add(request.envelope[0], request.size)
        self.waiting.append(request)
        return self._dispatch()

    def reply(self, worker: bytes, frames: Sequence[bytes]) -> tuple[Request, Dispatch | None]:
        """The answer to send the client (its real envelope, the worker's body) and the
        worker's next request, if any."""
        held = self.busy.get(worker)
        if held is None:
            raise Rejected("a reply from a worker that holds no request")
        answer = Request.parse(frames)
        if answer.envelope != held.masked(self.mask).envelope:
            raise Rejected("a reply to a request this worker does not hold")
        del self.busy[worker]
        self.answered += 1
        self.served[worker] = self.served.get(worker, 0) + 1
        self.ready[worker] = None
        return Request(held.envelope, answer.body), self._dispatch()

    def unreachable(self, worker: bytes) -> Dispatch | None:
        """Sending to `worker` failed: its connection is gone (libzmq said EHOSTUNREACH). It
        never got the request, so that goes first in line again, to the next ready worker.
        The worker is forgotten; if it is alive it comes back with READY."""
        request = self.busy.pop(worker)
        self.waiting.appendleft(request)
        self.held.add(request.envelope[0], request.size)
        self.unreachable_workers += 1
        return self._dispatch()

    def _dispatch(self) -> Dispatch | None:
        if not self.ready or not self.waiting:
            return None
        worker, _ = self.ready.popitem(last=False)
        request = self.waiting.popleft()
        self.held.remove(request.envelope[0], request.size)
        self.busy[worker] = request
        return Dispatch(worker, request)


class SimplePirateQueue(TwoSidedQueue):
    """The LRU queue on sockets: ROUTER `frontend` for clients, ROUTER `backend` for workers.

    The queue knows each worker's identity, so it traces the queue <-> worker arrows; clients
    trace their own arrows to it (the frontend is named after the queue). Malformed messages
    on either side are traced as "reject", counted in `rejected`, and dropped.

    A request still waits here after its client gave up on it; a worker may then answer it,
    and the ROUTER drops that reply, since the client's old socket is gone. Work is wasted,
    never delivered twice.
    """

    def __init__(
        self,
        name: str = "queue",
        *,
        frontend: str = LOCAL,
        backend: str = LOCAL,
        max_waiting: int = MAX_WAITING,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        max_queued_bytes_per_client: int = MAX_QUEUED_BYTES_PER_CLIENT,
        trace: Trace | None = None,
        security: Security = LOOPBACK,
    ) -> None:
        super().__init__(name, frontend=frontend, backend=backend, security=security,
                         trace=trace)
        self.lru = LruQueue(max_waiting, max_queued_bytes=max_queued_bytes,
                            max_queued_bytes_per_client=max_queued_bytes_per_client)
        self.names = DisplayNames()  # unique, even for workers sharing a --name
        self.last_heard: dict[bytes, float] = {}
        self.rejected = 0

    def setup(self) -> None:
        self.bind_both()

    def run(self) -> None:
        watched = [self.frontend, self.backend, *self.watch_events]
        while True:
            readable = self.poll(watched, None)
            with self.changes:
                self.read_watches(readable)
                for sock, handle in ((self.backend, self._from_worker),
                                     (self.frontend, self._from_client)):
                    if sock in readable:
                        frames = receive(sock)
                        if frames is None:
                            self._reject("a peer", Rejected("too many frames"))
                        else:
                            handle(frames)
                self.changes.notify_all()

    def _from_client(self, frames: list[bytes]) -> None:
        try:
            request = Request.parse(frames)
            self.trace.add(self.name, "request", show_bytes(request.body))
            self._send(self.lru.request(request))
        except Rejected as why:
            self._reject("client", why)

    def _from_worker(self, frames: list[bytes]) -> None:
        worker = frames[0]
        if worker in self.lru.ready or worker in self.lru.busy or frames[2:] == [READY]:
            self.last_heard[worker] = time.monotonic()
        try:
            if len(frames) < 3 or frames[1] != b"":
                raise Rejected(f"not from a REQ worker: {show_bytes(frames)}")
            if frames[2:] == [READY]:
                for kind, detail in self.names.add(worker):  # none for a known worker
                    self.trace.add(self.name, kind, detail)
                self.trace.add(self.name, "recv", "READY", peer=self.names[worker])
                lost_before = self.lru.lost
                dispatch = self.lru.worker_ready(worker)
                if self.lru.lost > lost_before:
                    self.trace.add(self.name, "lost", f"{self.names[worker]} came back without it")
                self._send(dispatch)
                return
            answer, dispatch = self.lru.reply(worker, frames[2:])
            self.trace.add(self.name, "recv", show_bytes(answer.body), peer=self.names[worker])
            self.reply_to_client(self.frontend, answer.frames)
            self._send(dispatch)
        except Rejected as why:
            self._reject(self.names[worker], why)

    def _send(self, dispatch: Dispatch | None) -> None:
        """Send a dispatch; if its worker is gone, give the request to the next one."""
        while dispatch is not None:
            worker, request = dispatch.worker, dispatch.request
            # traced first: the worker's thread may trace its part of the trip before we return
            self.trace.add(self.name, "send", show_bytes(request.body), peer=self.names[worker])
            try:
                self.backend.send_multipart([worker, b"", *request.masked(self.lru.mask).frames],
                                            zmq.NOBLOCK)
            except zmq.ZMQError as error:
                if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    raise
                self.trace.add(self.name, "unreachable", f"{self.names[worker]} is gone; "
                               f"{show_bytes(request.body)} goes to the next worker")
                dispatch = self.lru.unreachable(worker)
                self.names.remove(worker)
                continue
            return

    def _reject(self, sender: str, why: Rejected) -> None:
        self.rejected += 1
        self.trace.add(self.name, "reject", f"from {sender}: {why}")

    # -- read from any thread -------------------------------------------------------------
    def ready_workers(self) -> list[str]:
        """Workers on the ready list, the next to get work first."""
        with self.changes:
            return [self.names[worker] for worker in self.lru.ready]

    def busy_workers(self) -> dict[str, str]:
        """Which worker holds which request (its body), as far as the queue knows."""
        with self.changes:
            return {self.names[w]: show_bytes(r.body) for w, r in self.lru.busy.items()}

    def wait_for_workers(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (bounded) until `count` workers are on the ready list."""
        return self.wait_until(lambda: len(self.lru.ready) >= count, timeout)

    def snapshot(self) -> dict:
        """What a live dashboard shows (`pirate_helpers.views.widgets`): each worker as the queue
        sees it, and the counts. A dead worker stays "busy": the queue cannot see it die."""
        with self.changes:
            workers = {self.names[worker]: "ready" for worker in self.lru.ready}
            workers.update((self.names[worker], "busy") for worker in self.lru.busy)
            counts = {"in flight": len(self.lru.busy), "waiting": len(self.lru.waiting),
                      "answered": self.lru.answered, "lost": self.lru.lost,
                      "unreachable": self.lru.unreachable_workers, "rejected": self.rejected,
                      "failed handshakes": self.handshake_failures,
                      "closed before handshake": self.closed_before_handshake}
            shown = [*self.lru.ready, *self.lru.busy]
            served = {self.names[w]: self.lru.served.get(w, 0) for w in shown}
            now = time.monotonic()
            heard = {self.names[w]: now - self.last_heard[w] for w in shown
                     if w in self.last_heard}
        return {"workers": workers, "counts": counts, "served": served, "last heard": heard}


class SimpleWorker(StrictEcho):
    """A REQ worker: READY, then echo every request (envelope and body) unchanged.

    Its routing id is its name plus a random suffix (`names.wire_identity`), so two workers
    given one name both serve; the queue shows the name, so its trace reads "queue ->> w1".
    Faults come from the shared vocabulary: a crash ends the worker with its request; a drop
    makes it start over on a fresh socket and say READY again (the queue then knows the
    request was lost).

    A REQ whose connection libzmq drops (a malformed message, a queue that died) would wait
    forever for a reply that cannot come; the worker watches its socket's monitor and, on
    DISCONNECTED, starts over on a fresh socket with READY (counted in `reconnects`). It
    cannot notice a queue that is alive but frozen, or a link that silently stops carrying
    anything: that needs heartbeats (Paranoid Pirate).
    """

    def __init__(
        self,
        name: str = "worker",
        *,
        connect: str,
        work_s: float = 0.0,
        faults: Faults = NONE,
        trace: Trace | None = None,
        keys: KeyPair | None = None,
    ) -> None:
        super().__init__(name, work_s=work_s, faults=faults, trace=trace)
        self.join_token = Join.parse(connect, keys)
        self.endpoint = self.join_token.endpoint
        self.identity = wire_identity(name)  # the same on every fresh socket
        self.reconnects = 0

    def fresh_socket(self) -> zmq.Socket:
        """A new REQ that has said READY. A blocking send could wait for good (its new
        connection may be dropped at once), so READY goes without blocking, and if it
        cannot go the worker starts over a moment later (`pause`: `stop()` still works)."""
        while True:
            req = self.socket(zmq.REQ)
            req.routing_id = self.identity
            self.events = self.monitor(req, zmq.EVENT_DISCONNECTED)
            self.join_token.connect(req)
            try:
                req.send(READY, zmq.NOBLOCK)
                return req
            except zmq.Again:
                self.close(self.events)
                self.close(req)
                self.pause(RECONNECT_S)

    def watched(self) -> list[zmq.Socket]:
        return [self.strict, self.events]

    def renew(self) -> None:
        self.close(self.events)
        super().renew()

    def on_other(self, readable: set[zmq.Socket]) -> None:
        if self.events in readable and recv_monitor_message(self.events)["event"] == (
            zmq.EVENT_DISCONNECTED
        ):
            self.reconnects += 1
            self.trace.add(self.name, "reconnect", f"connection dropped; READY again on a "
                           f"fresh socket (#{self.reconnects})")
            self.renew()

    def shown(self, request: list[bytes]) -> str:
        return show_bytes(request[-1:])  # the body, not the client's binary address


# -- The article's version: zmq.proxy over ROUTER-DEALER, REP workers, a client that gives up --
class ArticleProxy(Actor):
    """The article's queue: `zmq.proxy(frontend, backend)` with a ROUTER and a DEALER.

    This runs the same forwarding loop as `zmq.proxy` (it forwards from the frontend only when
    the DEALER can send), written out so the actor can be stopped and can count the workers
    connected. DEALER deals requests round-robin to every connected REP worker, busy or not,
    and forgets them: a request handed to a worker that dies is lost.
    """

    def __init__(
        self,
        name: str = "proxy",
        *,
        frontend: str = LOCAL,
        backend: str = LOCAL,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.frontend_endpoint = frontend
        self.backend_endpoint = backend
        self.workers_connected = 0

    def setup(self) -> None:
        self.frontend = self.socket(zmq.ROUTER)
        self.backend = self.socket(zmq.DEALER)
        monitor_endpoint = f"inproc://{self.name}-backend-monitor"
        self.backend.monitor(
            monitor_endpoint, zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        self.monitor = self.socket(zmq.PAIR)
        self.monitor.connect(monitor_endpoint)
        self.frontend_endpoint = bind(self.frontend, self.frontend_endpoint)
        self.backend_endpoint = bind(self.backend, self.backend_endpoint)
        self.trace.name_endpoint(self.frontend_endpoint, self.name)
        self.trace.name_endpoint(self.backend_endpoint, self.name)

    def run(self) -> None:
        while True:
            can_send = bool(self.backend.get(zmq.EVENTS) & zmq.POLLOUT)
            watched = [self.backend, self.monitor] + ([self.frontend] if can_send else [])
            readable = self.poll(watched, None if can_send else 0.01)
            if self.frontend in readable:
                self.backend.send_multipart(self.frontend.recv_multipart(), zmq.NOBLOCK)
            if self.backend in readable:
                self.frontend.send_multipart(self.backend.recv_multipart())
            if self.monitor in readable:
                event = recv_monitor_message(self.monitor)["event"]
                with self.changes:
                    self.workers_connected += 1 if event == zmq.EVENT_HANDSHAKE_SUCCEEDED else -1
                    self.changes.notify_all()

    def wait_for_workers(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (bounded) until `count` workers are connected, so DEALER deals to all of them."""
        return self.wait_until(lambda: self.workers_connected >= count, timeout)


class ArticleClient(LazyClient):
    """The article's client: one try per request. On a timeout it opens a new socket and
    moves on to the next request: the timed-out request is dropped, silently, for good.

    With `retries` above 1 it is a Lazy Pirate client that still goes on after giving up
    on a request, which lets `run_load` count the losses of both designs the same way.
    """

    def __init__(
        self, endpoint: str, name: str = "article-client", *, retries: int = 1, **options: Any
    ) -> None:
        super().__init__(endpoint, name, retries=retries, **options)
        self.dropped: list[bytes] = []

    def run(self) -> None:
        started = time.monotonic()
        for body in self.bodies:
            try:
                self.answered.extend(self.client.request(body))
            except ServerUnavailable:
                self.dropped.append(body)
        self.elapsed_s = time.monotonic() - started


# -- The same faults against both designs ---------------------------------------------------
@dataclass(frozen=True)
class LoadResult:
    """One client's run: how many requests were answered and lost, the crashes it took, time."""

    design: str
    answered: int
    lost: int
    crashes: int
    seconds: float


Design = Literal["article", "lru"]


def load_faults(crash_rate: float, seed: int, index: int, incarnation: int) -> Faults:
    """The seeded faults of `run_load`'s worker `index` in its `incarnation`-th life."""
    return Faults(crash_rate=crash_rate,
                  seed=random.Random(f"{seed}/{index}/{incarnation}").getrandbits(32))


def run_load(
    design: Design,
    *,
    workers: int = 3,
    requests: int = 30,
    crash_rate: float = 0.1,
    timeout: float = 0.2,
    retries: int = 3,
    seed: int = 0,
    trace: Trace | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Send `requests` through one design while workers crash at a seeded rate.

    A crashed worker is restarted at once under its name, as a process supervisor would; the
    n-th request a worker incarnation receives crashes it or not exactly as in the other
    design, so both face the same fault schedule. "article" is the proxy, REP workers and the
    client that never resends; "lru" is the LRU queue, REQ workers and a Lazy Pirate client
    making `retries` tries. Either client goes on to the next request after giving one up.
    `progress(done)` is called with the number of requests done so far, from this thread.

    Every actor is started inside one `ExitStack`, so Ctrl-C at any point stops them all.
    """
    with ExitStack() as stack:
        return _run_load(stack, design, workers, requests, crash_rate, timeout, retries, seed,
                         trace if trace is not None else Trace(), progress)


def _run_load(stack: ExitStack, design: Design, workers: int, requests: int, crash_rate: float,
              timeout: float, retries: int, seed: int, trace: Trace,
              progress: Callable[[int], None] | None) -> LoadResult:
    prefix = f"load-{design}"
    broker: ArticleProxy | SimplePirateQueue
    if design == "article":
        broker = stack.enter_context(ArticleProxy(f"{prefix}-proxy", trace=trace))
    else:
        broker = stack.enter_context(SimplePirateQueue(f"{prefix}-queue", trace=trace))

    def worker(index: int, incarnation: int) -> Actor:
        name = f"{prefix}-w{index}"
        faults = load_faults(crash_rate, seed, index, incarnation)
        if design == "article":
            return LazyServer(name, connect=broker.backend_endpoint, faults=faults, trace=trace)
        return SimpleWorker(name, connect=broker.backend_endpoint, faults=faults, trace=trace)

    pool = [stack.enter_context(worker(index, 0)) for index in range(workers)]
    if not broker.wait_for_workers(workers):
        raise TimeoutError(f"{design}: not all {workers} workers joined within 5 s")
    client = stack.enter_context(ArticleClient(
        broker.frontend_endpoint, f"{prefix}-client", requests=requests, timeout=timeout,
        retries=1 if design == "article" else retries, trace=trace))
    incarnations = [0] * workers
    while not client.join(0.005):  # supervise: restart every crashed worker
        for index, member in enumerate(pool):
            if not member.running:
                member.stop()
                incarnations[index] += 1
                pool[index] = stack.enter_context(worker(index, incarnations[index]))
        if progress is not None:
            progress(len(client.answered) + len(client.dropped))
    client.stop()
    answered = len(client.answered)
    return LoadResult(design, answered, requests - answered, sum(incarnations),
                      client.elapsed_s)
