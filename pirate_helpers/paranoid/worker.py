"""A Paranoid worker: `WorkerLiveness` decides when it heartbeats, gives its queue up and
reconnects (a pure state machine taking `now`); `ParanoidWorker` is the socket loop around it."""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Literal

import zmq

from ..actor import Actor
from ..endpoints import receive
from ..faults import NONE, Faults
from ..names import wire_identity
from ..security import Join, KeyPair
from ..trace import Trace
from .protocol import BUNCHED, HEARTBEAT_MESSAGE, MISMATCH_FACTOR, READY_MESSAGE, describe

DEFAULT_HEARTBEAT_S, DEFAULT_LIVENESS = 0.1, 3  # a worker's, when its join line says nothing
JITTER = 0.5  # a worker's wait before reconnecting is lengthened by up to half, at random


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


# -- the socket loop ----------------------------------------------------------------------
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
        cannot go now is counted in `unsent`."""
        assert self.dealer is not None
        if not self.send_or_count(self.dealer, frames, "drop",
                                  "queue not taking messages ({} dropped)"):
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
