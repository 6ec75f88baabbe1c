"""The Majordomo worker: Paranoid Pirate's worker speaking MDP, offering one service.

Only what MDP changes is here: READY names the service, every message has the MDP header,
a DISCONNECT from the broker means reconnect, and a request comes as `[client, "", body...]`
(answered by `handler`). The poll loop, faults and back-off are `ParanoidWorker`'s."""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from ..actor import ActorStopped
from ..endpoints import receive
from ..faults import NONE, Faults
from ..paranoid import JITTER, ParanoidWorker, WorkerAction
from ..security import KeyPair
from ..trace import Trace, show_bytes, show_identity
from .protocol import DISCONNECT, HEARTBEAT, MDPW, READY, REPLY, REQUEST, describe


def echo(body: list[bytes]) -> list[bytes]:
    return body


class MajordomoWorker(ParanoidWorker):
    """A DEALER worker offering `service`; by default it echoes every request body.

    Paranoid Pirate's worker (its poll loop, faults and back-off) speaking MDP. It heartbeats
    on schedule, also while busy (a request's reply is scheduled `work_s` ahead and sent
    from the same loop); a broker silent for `liveness` intervals, or a DISCONNECT, makes it
    reconnect after Paranoid Pirate's back-off. Each connection has its own identity
    (`name`, then `name.2`, ...), so a broker never takes a reconnection for a second READY.
    Stopping it sends DISCONNECT, so the broker forgets it at once. Faults (`Faults`) are
    counted per request: crash, drop, freeze, slow.
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
        jitter: float = JITTER,
        seed: int | bytes | None = None,
        handler: Callable[[list[bytes]], list[bytes]] = echo,
        faults: Faults = NONE,
        trace: Trace | None = None,
        keys: KeyPair | None = None,
    ) -> None:
        super().__init__(name, connect=connect, keys=keys,
                         heartbeat_interval=heartbeat_interval, liveness=liveness,
                         work_s=work_s, reconnect_min=reconnect_min,
                         reconnect_max=reconnect_max, jitter=jitter, seed=seed,
                         faults=faults, trace=trace)
        self.service = service.encode()
        self.handler = handler
        self.identity = b""
        self.disconnects = self.rejected = 0

    busy_keeps_queue = True
    """RFC 7 says both sides heartbeat, but the Guide's C broker (mdbroker.c) heartbeats only
    idle workers: a worker busy longer than liveness x interval would give it up and abandon
    its request. So a broker silent while this worker holds a request is not counted dead;
    it is judged again, as usual, once the work is done (liberal in what we accept)."""

    def shown(self, request: list[bytes]) -> str:
        """A request `[client, "", body...]` as the trace shows it: its body."""
        return show_bytes(request[2:])

    def _connect(self) -> None:
        self.dealer = self.socket(zmq.DEALER)
        suffix = f".{self.reconnects + 1}" if self.reconnects else ""
        self.identity = f"{self.name}{suffix}".encode()
        self.dealer.identity = self.identity
        self.join_token.connect(self.dealer)  # a join token's CURVE keys, if it has them
        self._send([b"", MDPW, READY, self.service])
        self.liveness.on_connect(time.monotonic())

    def run(self) -> None:
        try:
            super().run()
        except ActorStopped:
            self._say_goodbye()
            raise

    def _act(self, action: WorkerAction) -> None:
        if action == "heartbeat":
            self._send([b"", MDPW, HEARTBEAT])
        elif action == "disconnect":
            self._drop_connection(f"broker silent; reconnecting in {self.liveness.waited:.3g} s")
        else:
            self.reconnects += 1
            self._connect()
            self.trace.add(self.name, "reconnect", f"READY again as {show_identity(self.identity)}")

    def _drop_connection(self, why: str) -> None:
        assert self.dealer is not None
        self.close(self.dealer)
        self.dealer = None
        lost = ", abandoning " + ",".join(self.shown(r) for _, r in self.work)
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
        """The broker said DISCONNECT: reconnect (RFC 7), after the jittered back-off, which
        doubles if the broker keeps refusing before it is heard from again."""
        self.disconnects += 1
        self.liveness.give_up(now)
        self._drop_connection(f"the broker said DISCONNECT; reconnecting in "
                              f"{self.liveness.waited:.3g} s")

    def _reply(self, request: list[bytes]) -> None:
        envelope, body = request[:2], request[2:]
        self.answered += 1  # counted before the client can see the reply
        if not self._send([b"", MDPW, REPLY, *envelope, *self.handler(body)]):
            self.answered -= 1

    def _say_goodbye(self) -> None:
        """DISCONNECT on the way out, given a moment to leave before the socket closes."""
        if self.dealer is not None:
            self.dealer.linger = 100
            try:
                self.dealer.send_multipart([b"", MDPW, DISCONNECT], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
