"""The Majordomo broker's socket loop: one ROUTER for clients and workers, around
`BrokerState` (or the Guide's `GuideMajordomoState`)."""

from __future__ import annotations

import time

import zmq

from ..actor import Actor
from ..endpoints import LOCAL, receive, send, waiting
from ..held import MAX_BUSY_S, MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_CLIENT
from ..security import LOOPBACK, ConnectionWatch, Security
from ..trace import Trace, show_identity
from .guide import GuideMajordomoState
from .protocol import MAX_QUEUED, MAX_QUEUED_PER_CLIENT, MDPW, MDPW2, WORKER_HEADERS, describe
from .state import BrokerState

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
        max_queued: int = MAX_QUEUED,
        max_queued_per_client: int = MAX_QUEUED_PER_CLIENT,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        max_queued_bytes_per_client: int = MAX_QUEUED_BYTES_PER_CLIENT,
        max_busy: float = MAX_BUSY_S,
        trace: Trace | None = None,
        trace_messages: bool = True,
        logic: type[BrokerState] | type[GuideMajordomoState] = BrokerState,
        security: Security = LOOPBACK,
    ) -> None:
        super().__init__(name, trace)
        self.security = security
        self.watch: ConnectionWatch | None = None
        self.bind_at = bind
        self.endpoint = ""
        self.trace_messages = trace_messages
        self.state = logic(heartbeat_interval, liveness, time.monotonic(),
                           request_expiry=request_expiry, max_queued=max_queued,
                           max_queued_per_client=max_queued_per_client,
                           max_queued_bytes=max_queued_bytes,
                           max_queued_bytes_per_client=max_queued_bytes_per_client,
                           max_busy=max_busy)

    def setup(self) -> None:
        self.router = self.socket(zmq.ROUTER)
        self.router.router_mandatory = 1
        self.security.check(self.bind_at)
        self.security.start(self.context, self.cleanups)
        self.watch = ConnectionWatch(self.monitor, self.router, self.trace, self.name)
        self.endpoint = self.security.bind(self.router, self.bind_at, pause=self.pause)
        self.trace.name_endpoint(self.endpoint, self.name)

    def run(self) -> None:
        state, router = self.state, self.router
        assert self.watch is not None
        messages, monitor = (router,), (self.watch.events,)
        while True:
            timeout = max(0.0, state.next_wakeup() - time.monotonic())
            readable = self.poll(messages, timeout, side=monitor)
            now = time.monotonic()
            if now - state.next_wakeup() > state.heartbeat_interval:
                state.stalled(now)  # what piled up meanwhile is still unread
            if self.watch.events in readable:
                self.watch.read()
            if router in readable:
                for _ in range(BATCH):
                    frames = receive(router)
                    if frames is None:
                        state.reject("too many frames")
                    else:
                        if self.trace_messages and frames[2:3] in ([MDPW], [MDPW2]):
                            self.trace.add(self.name, "recv", describe(frames[1:]),
                                           peer=show_identity(frames[0]))
                        state.on_message(frames, now)
                    self._flush(now)
                    if not waiting(router):
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
                    send(self.router, message)
                except zmq.ZMQError as error:
                    if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                        raise
                    state.peer_unreachable(message[0], now)
                    continue
                if self.trace_messages and message[2] in WORKER_HEADERS:
                    self.trace.add(self.name, "send", describe(message[1:]),
                                   peer=show_identity(message[0]))
        return changed

    # -- read from any thread -------------------------------------------------------------
    def snapshot(self, service: str | None = None) -> dict:
        """What a live dashboard shows, for one service or all: each worker waiting
        ("ready"), busy or lately expired, and the counts. Reads copies CPython makes in one
        step, a moment old and never torn; needs `BrokerState`."""
        state = self.state
        wanted = None if service is None else service.encode()
        tracked = [w for w in list(state.workers.values()) if wanted in (None, w.service)]
        workers = {show_identity(w.identity): "ready" if w.request is None else "busy"
                   for w in tracked}
        for identity, offered in list(state.purged):
            if wanted in (None, offered):
                workers.setdefault(show_identity(identity), "expired")
        services = [s for s in list(state.services.values()) if wanted in (None, s.name)]
        answered = dict(state.answered)
        counts = {"in flight": sum(w.request is not None for w in tracked),
                  "waiting": sum(len(s.requests) for s in services),
                  "answered": answered.get(wanted, 0) if wanted else sum(answered.values()),
                  "requeued": state.requeued, "unreachable": state.unreachable,
                  "expired requests": state.expired, "overdue": state.overdue,
                  "rejected": state.rejected}
        return {"workers": workers, "counts": counts}
