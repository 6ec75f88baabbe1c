"""The Paranoid queue's socket loop, `ParanoidQueue`: a ROUTER for clients and one for workers,
around `QueueState` (or the Guide's `GuideQueueState`)."""

from __future__ import annotations

import time
from queue import SimpleQueue

import zmq

from ..endpoints import LOCAL, receive, send, waiting
from ..queue_sockets import TwoSidedQueue
from ..security import LOOPBACK, Security
from ..trace import Trace
from .guide import GuideQueueState
from .protocol import describe
from .state import QueueState

BATCH = 64  # messages read per pass before timers get a look


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
