"""Binary Star: a primary and a backup server, failover without split brain (Guide, ch. 4).

Two servers each publish their state on a PUB every heartbeat, one frame of ASCII digits
(1 PRIMARY, 2 BACKUP, 3 ACTIVE, 4 PASSIVE), and subscribe to the other's. One is active and
answers clients; the other is passive and drops their requests. A peer heard of for no
`PEER_EXPIRY` heartbeats is gone.

The whole safety argument is one rule: **a passive server becomes active only when a client
asks it *and* its peer has expired.** Clients only ask the backup when the primary does not
answer them, so a cut link between the two servers alone (clients still on the primary)
changes nothing: the clients' vote keeps the backup passive. What the pattern cannot save is
two islands, each with its own clients: both go active. When they see each other again, two
actives (or two passives) is a fatal error, said in one line; failback is by hand.

`BinaryStarState` is the pure state machine (events and `now` in, decisions out);
`BinaryStarServer` is the thin socket loop around it serving an echo; `BinaryStarClient` is
Lazy Pirate over the two servers.

One change from the Guide: its PRIMARY serves clients at once, before it has heard its peer,
so a primary restarted while the backup is active answers clients for up to a heartbeat next
to an active backup. Ours serves (and becomes active) only once the peer has expired, as a
passive server does; a restarted primary hears the active backup first and goes passive.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import IntEnum

import zmq

from .actor import Actor
from .endpoints import LOCAL, guard, receive
from .lazy import SIGNAL_CHECK_S, ServerUnavailable
from .security import LOOPBACK, ConnectionWatch, Join, KeyPair, Security
from .trace import Trace, show_bytes


class State(IntEnum):
    """A server's state, and the digit it publishes."""

    PRIMARY = 1  # starting, as the primary: waiting to hear the backup
    BACKUP = 2  # starting, as the backup: waiting to hear the primary
    ACTIVE = 3  # serving clients
    PASSIVE = 4  # standing by: dropping client requests


PEER_EXPIRY = 2
"""Heartbeats without a state from the peer after which it counts as gone (the Guide's 2)."""


class SplitBrain(Exception):
    """Both servers active, or both passive: the pair is broken and a person must decide."""


def parse_state(frames: list[bytes]) -> State | None:
    """A peer's state message, or None for anything that is not one frame "1" to "4"."""
    if len(frames) != 1 or frames[0] not in (b"1", b"2", b"3", b"4"):
        return None
    return State(int(frames[0]))


class BinaryStarState:
    """The Guide's finite state machine, with the time passed in.

    `on_peer` takes the state the peer published; `on_client_request` says whether to serve.
    Both return why the state changed (None when it did not). Two actives or two passives
    raise `SplitBrain`, and so do two primaries or two backups (a mistake in starting them:
    neither would ever serve).
    """

    def __init__(self, primary: bool, heartbeat_interval: float, now: float) -> None:
        self.state = State.PRIMARY if primary else State.BACKUP
        self.heartbeat_interval = heartbeat_interval
        self.peer_expires_at = now + PEER_EXPIRY * heartbeat_interval

    def peer_alive(self, now: float) -> bool:
        return now < self.peer_expires_at

    def on_peer(self, peer: State, now: float) -> str | None:
        self.peer_expires_at = now + PEER_EXPIRY * self.heartbeat_interval
        if self.state == State.ACTIVE and peer == State.ACTIVE:
            raise SplitBrain("fatal: both servers are active (split brain): stop one by hand")
        if self.state == State.PASSIVE and peer == State.PASSIVE:
            raise SplitBrain("fatal: both servers are passive: nobody serves; restart one")
        if self.state == peer and peer in (State.PRIMARY, State.BACKUP):
            raise SplitBrain(f"fatal: both servers were started as {peer.name.lower()}: "
                             "start one with --primary, the other with --backup")
        if self.state == State.PRIMARY and peer == State.BACKUP:
            return self._become(State.ACTIVE, "heard the backup: active")
        if self.state in (State.PRIMARY, State.BACKUP) and peer == State.ACTIVE:
            return self._become(State.PASSIVE, "heard an active peer: passive")
        if self.state == State.PASSIVE and peer in (State.PRIMARY, State.BACKUP):
            return self._become(State.ACTIVE, f"the peer restarted ({peer.name}): active")
        return None

    def on_client_request(self, now: float) -> tuple[bool, str | None]:
        """(serve it?, why the state changed). The clients' vote: a server that is not active
        takes over only if its peer has expired. A BACKUP that never heard an active
        primary never serves (it cannot tell a dead primary from one not yet started)."""
        if self.state == State.ACTIVE:
            return True, None
        if self.state == State.BACKUP or self.peer_alive(now):
            return False, None
        return True, self._become(State.ACTIVE, "a client asked and the peer expired: "
                                  "failover, active")

    def _become(self, state: State, why: str) -> str:
        self.state = state
        return why


# -- the server -----------------------------------------------------------------------------
class BinaryStarServer(Actor):
    """One server of the pair: echoes client requests on `frontend` while active, publishes
    its state on `publish` every heartbeat, and follows the peer's state at `subscribe` (an
    endpoint, or the peer's join line when it uses CURVE).

    Counted: `served`, `refused` (client requests dropped while not active), `rejected`
    (malformed client messages), `bad_states` (anything on the state socket that is not a
    state), `unsent` (replies to a client whose queue was full: it asks again).
    A split brain ends the actor with `fatal` set to its one line.
    """

    def __init__(
        self,
        name: str,
        *,
        primary: bool,
        subscribe: str,
        frontend: str = LOCAL,
        publish: str = LOCAL,
        heartbeat_interval: float = 0.1,
        security: Security = LOOPBACK,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.primary = primary
        self.peer = Join.parse(subscribe)
        self.endpoint = frontend
        self.publish_endpoint = publish
        self.heartbeat_interval = heartbeat_interval
        self.security = security
        self.served = self.refused = self.rejected = self.bad_states = 0
        self.fatal: str | None = None
        self.fsm = BinaryStarState(primary, heartbeat_interval, time.monotonic())

    @property
    def state(self) -> State:
        return self.fsm.state

    def setup(self) -> None:
        self.security.start(self.context, self.cleanups)
        self.frontend = self.socket(zmq.ROUTER)
        self.frontend.router_mandatory = 1  # a reply a client cannot take raises: counted
        self.watch = ConnectionWatch(self.monitor, self.frontend, self.trace, self.name)
        self.endpoint = self.security.bind(self.frontend, self.endpoint, pause=self.pause)
        self.statepub = self.socket(zmq.PUB)
        self.publish_endpoint = self.security.bind(self.statepub, self.publish_endpoint,
                                                   pause=self.pause)
        self.statesub = self.socket(zmq.SUB)
        self.statesub.subscribe(b"")
        self.peer.connect(self.statesub)
        self.trace.name_endpoint(self.endpoint, self.name)
        self.fsm = BinaryStarState(self.primary, self.heartbeat_interval, time.monotonic())
        self.trace.add(self.name, self.state.name.lower(), "started")

    def run(self) -> None:
        next_heartbeat = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_heartbeat:
                self.statepub.send(str(int(self.state)).encode(), zmq.NOBLOCK)  # PUB drops
                next_heartbeat = now + self.heartbeat_interval
            readable = self.poll([self.frontend, self.statesub, self.watch.events],
                                 next_heartbeat - now)
            if self.watch.events in readable:  # failed handshakes, accepts out of descriptors
                self.watch.read()
            try:
                if self.statesub in readable:
                    self._on_state()
                if self.frontend in readable:
                    self._on_client()
            except SplitBrain as error:
                self.fatal = str(error)
                self.trace.add(self.name, "fatal", self.fatal)
                return

    def _on_state(self) -> None:
        frames = receive(self.statesub)
        peer = parse_state(frames) if frames is not None else None
        if peer is None:
            self.bad_states += 1
            self.trace.add(self.name, "reject", "not a state: "
                           f"{show_bytes(frames) if frames else 'too many frames'}")
            return
        self._changed(self.fsm.on_peer(peer, time.monotonic()))

    def _on_client(self) -> None:
        try:
            message = receive(self.frontend)
        except zmq.Again:  # woken for a message libzmq then discarded
            return
        if message is None or b"" not in message[1:-1]:
            self.rejected += 1
            self.trace.add(self.name, "reject", "malformed message (no envelope, or too "
                           "many frames)")
            return
        serve, why = self.fsm.on_client_request(time.monotonic())
        self._changed(why)
        body = show_bytes(message[message.index(b"", 1) + 1:])
        if not serve:
            self.refused += 1
            self.trace.add(self.name, "refuse", f"{body} ({self.state.name.lower()})")
            return
        if not self.reply_to_client(self.frontend, message):
            return
        self.served += 1
        self.trace.add(self.name, "reply", body)

    def _changed(self, why: str | None) -> None:
        if why is not None:
            self.trace.add(self.name, self.state.name.lower(), why)
            with self.changes:
                self.changes.notify_all()


# -- the client -----------------------------------------------------------------------------
SETTLE_HEARTBEATS = PEER_EXPIRY
"""After a timeout the client waits this many heartbeats before asking the other server, so
the peer has expired there by the time it asks (the Guide's SETTLE_DELAY)."""


class BinaryStarClient:
    """Lazy Pirate over the two servers: a request that times out is sent again, after
    `settle` s, to the other server, on a fresh REQ. `retries` is the number of tries in all.

    Every reply is checked against its request (the servers echo): a mismatch is counted and
    the request is sent again. Use it from one thread.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 0.25,
        settle: float = 0.2,
        retries: int = 6,
        name: str = "client",
        trace: Trace | None = None,
        keys: KeyPair | None = None,
    ) -> None:
        if len(endpoints) != 2:
            raise ValueError("a Binary Star client knows two servers: the primary and backup")
        if retries < 1:
            raise ValueError("retries counts tries in all, so it is at least 1")
        self.joins = [Join.parse(endpoint, keys) for endpoint in endpoints]
        self.timeout, self.settle, self.retries = timeout, settle, retries
        self.name = name
        self.trace = trace if trace is not None else Trace()
        self.server = 0  # index of the server asked now
        self.answered = self.timeouts = self.failovers = self.mismatched = 0
        self.longest_wait = 0.0
        self._context = zmq.Context()
        self._context.linger = 0
        self._req: zmq.Socket | None = None

    def request(self, *frames: bytes) -> list[bytes]:
        """Send `frames`, return the matching reply, or raise ServerUnavailable."""
        message = list(frames)
        started = time.monotonic()
        for attempt in range(1, self.retries + 1):
            if attempt > 1:
                self._close_socket()
                self.server = 1 - self.server
                self.failovers += 1
                self.trace.add(self.name, "failover", f"to {self._peer()} in {self.settle:g} s")
                time.sleep(self.settle)
            req = self._socket()
            self.trace.add(self.name, "send", show_bytes(message), peer=self._peer())
            try:
                req.send_multipart(message, zmq.NOBLOCK)
            except zmq.Again:
                pass  # no connection yet: this try waits out its timeout like a lost one
            reply = self._receive(req)
            if reply is None:
                self.timeouts += 1
                self.trace.add(self.name, "timeout", f"no reply in {self.timeout:g} s")
                continue
            self.trace.add(self.name, "recv", show_bytes(reply), peer=self._peer())
            if reply != message:
                self.mismatched += 1
                self.trace.add(self.name, "mismatch", f"expected {show_bytes(message)}")
                continue
            self.answered += 1
            self.longest_wait = max(self.longest_wait, time.monotonic() - started)
            return reply
        self._close_socket()
        self.trace.add(self.name, "give-up", f"after {self.retries} tries")
        raise ServerUnavailable(" or ".join(j.endpoint for j in self.joins), self.retries,
                                self.timeout)

    def _peer(self) -> str:
        return self.trace.who(self.joins[self.server].endpoint)

    def _socket(self) -> zmq.Socket:
        if self._req is None:
            self._req = guard(self._context.socket(zmq.REQ))
            self.joins[self.server].connect(self._req)
        return self._req

    def _receive(self, req: zmq.Socket) -> list[bytes] | None:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            if req.poll(max(1, int(min(left, SIGNAL_CHECK_S) * 1000))):  # Ctrl-C is seen
                try:
                    reply = receive(req)
                except zmq.Again:
                    continue
                if reply is not None:
                    return reply
        return None

    def _close_socket(self) -> None:
        if self._req is not None:
            self._req.close()
            self._req = None

    def close(self) -> None:
        self._close_socket()
        self._context.term()

    def __enter__(self) -> BinaryStarClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
