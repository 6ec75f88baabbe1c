"""Freelance: reliability without a broker (ZeroMQ Guide, chapter 4; RFC 10, FLP).

A broker is one more thing that can die. In Freelance the client talks to several servers
directly and decides itself where each request goes. A server is a ROUTER whose identity is
its public endpoint; `PING` gets `PONG`; a request is a control frame (here the client's
sequence number) then the body, and the reply repeats the control frame, so a late reply to
an old request is recognised and dropped.

The Guide's three models differ only in *where each try of a request goes*:

1. sequential: one server at a time, the next one after a timeout (Lazy Pirate over N);
2. shotgun: every server at once, the first reply wins (N times the work for the servers);
3. router: pings keep a list of live servers, even while the client is idle; each try goes
   to the first live one, and a server that stops answering pings is skipped.

`FreelanceState` makes those decisions (a pure function of messages and `now`), so the
three models are one class with one switch. `FreelanceClient` is its thin socket loop, an
agent thread with one ROUTER connected to every server; `FreelanceServer` is an echo server.
Our client names each server by the endpoint it dialled (libzmq's `ZMQ_CONNECT_ROUTING_ID`),
so it can address a server before hearing from it, whatever identity the server chose.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import zmq

from .actor import Actor
from .endpoints import LOCAL, bind, receive
from .faults import NONE, Faults
from .lazy import SIGNAL_CHECK_S
from .security import LOOPBACK, ConnectionWatch, Join, KeyPair, Security, advertised
from .trace import Trace, plural, show_bytes

PING, PONG = b"PING", b"PONG"
SEQUENTIAL, SHOTGUN, ROUTER = 1, 2, 3
MODELS = {SEQUENTIAL: "sequential", SHOTGUN: "shotgun", ROUTER: "router"}
DRAIN_AT_MOST = 100  # messages read from the servers in a row, so no server can starve the rest


# -- the decisions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    server: str
    frames: list[bytes]


@dataclass(frozen=True)
class Answer:
    frames: list[bytes]  # the reply's body: the control frame is taken off


@dataclass(frozen=True)
class Fail:
    reason: str


Action = Send | Answer | Fail


@dataclass
class ServerView:
    """What the client believes of one server (model 3 keeps it up to date with pings)."""

    endpoint: str
    alive: bool = False
    expires_at: float = 0.0
    ping_at: float = 0.0


@dataclass
class Pending:
    control: bytes
    body: list[bytes]
    tries: int = 0
    try_deadline: float = 0.0
    sent_to: list[str] = field(default_factory=list)  # this try's servers; [] while waiting
    tried: set[str] = field(default_factory=set)


class FreelanceState:
    """Where each try of a request goes, which reply counts, who is alive: pure, `now` in.

    `timeout` is seconds per try and `tries` the tries in all, so a request is answered or
    failed within `timeout x tries`. Model 3 pings every server each `ping_interval` and
    counts a server dead after `liveness` intervals without hearing from it (RFC 10: 2-3).
    """

    def __init__(self, servers: Sequence[str], *, model: int = ROUTER, timeout: float = 0.25,
                 tries: int = 3, ping_interval: float = 0.25, liveness: int = 3,
                 now: float = 0.0) -> None:
        if model not in MODELS:
            raise ValueError(f"model is 1, 2 or 3, not {model!r}")
        if not servers or len(set(servers)) != len(servers):
            raise ValueError("give one or more servers, each once")
        if tries < 1 or liveness < 1 or timeout <= 0 or ping_interval <= 0:
            raise ValueError("tries and liveness are at least 1; times are above 0")
        self.model, self.timeout, self.tries = model, timeout, tries
        self.ping_interval, self.liveness = ping_interval, liveness
        self.servers = [ServerView(endpoint, ping_at=now) for endpoint in servers]
        self.pending: Pending | None = None
        self.sequence = 0
        self.preferred = 0  # model 1 starts where the last reply came from
        self.stale = 0  # replies to requests already answered or given up
        self.pings = 0
        self.load: dict[str, int] = {endpoint: 0 for endpoint in servers}  # requests sent

    def _server(self, endpoint: str) -> ServerView | None:
        return next((s for s in self.servers if s.endpoint == endpoint), None)

    def request(self, body: Sequence[bytes], now: float) -> list[Action]:
        """A new request, and its first try. One at a time: a request still pending (its
        caller was interrupted) is abandoned, and a late reply to it counts as stale."""
        self.sequence += 1
        self.pending = Pending(str(self.sequence).encode(), list(body))
        return self._next_try(now)

    def _targets(self, pending: Pending) -> list[str]:
        if self.model == SEQUENTIAL:
            turn = (self.preferred + pending.tries - 1) % len(self.servers)
            return [self.servers[turn].endpoint]
        if self.model == SHOTGUN:
            return [s.endpoint for s in self.servers]
        live = [s.endpoint for s in self.servers if s.alive]
        untried = [endpoint for endpoint in live if endpoint not in pending.tried]
        return (untried or live)[:1]

    def _next_try(self, now: float) -> list[Action]:
        pending = self.pending
        assert pending is not None
        if pending.tries == self.tries:
            self.pending = None
            return [Fail(f"no reply after {plural(self.tries, 'try')} of "
                         f"{self.timeout:g} s each")]
        pending.tries += 1
        pending.try_deadline = now + self.timeout
        pending.sent_to = []
        return self._send(pending)

    def _send(self, pending: Pending) -> list[Action]:
        """This try's copies; none (model 3 with no live server) means it waits for one."""
        pending.sent_to = self._targets(pending)
        pending.tried.update(pending.sent_to)
        for endpoint in pending.sent_to:
            self.load[endpoint] += 1
        return [Send(endpoint, [pending.control, *pending.body]) for endpoint in pending.sent_to]

    def received(self, server: str, frames: Sequence[bytes], now: float) -> list[Action]:
        """A message from `server`: a PONG or a reply. Either shows the server is alive."""
        view = self._server(server)
        if view is None:
            return []
        view.alive, view.expires_at = True, now + self.liveness * self.ping_interval
        if list(frames) == [PONG]:
            return self._waiting_send(now)
        pending = self.pending
        if (pending is None or not frames or frames[0] != pending.control
                or server not in pending.tried):  # a reply only counts from whom it was sent
            self.stale += 1
            return []
        self.pending = None
        self.preferred = self.servers.index(view)
        return [Answer(list(frames[1:]))]

    def unreachable(self, server: str, now: float) -> list[Action]:
        """libzmq has no connection to `server` (the send failed at once)."""
        view = self._server(server)
        if view is None or self.model != ROUTER:
            return []  # models 1 and 2 wait out the try, as a REQ or DEALER would
        view.alive = False
        return self._retry_if_abandoned(now)

    def _retry_if_abandoned(self, now: float) -> list[Action]:
        """Model 3: a try whose server is no longer live moves on, without waiting it out."""
        pending = self.pending
        if pending is None or not pending.sent_to:
            return []
        if any(view.alive for view in self.servers if view.endpoint in pending.sent_to):
            return []
        return self._next_try(now)

    def _waiting_send(self, now: float) -> list[Action]:
        pending = self.pending
        if pending is not None and not pending.sent_to and now < pending.try_deadline:
            return self._send(pending)
        return []

    def tick(self, now: float) -> list[Action]:
        """What is due at `now`: pings and expiries (model 3), a try's timeout."""
        actions: list[Action] = []
        if self.model == ROUTER:
            for view in self.servers:
                view.alive = view.alive and now < view.expires_at
            actions += self._retry_if_abandoned(now)
            for view in self.servers:
                if now >= view.ping_at:
                    view.ping_at = now + self.ping_interval
                    self.pings += 1
                    actions.append(Send(view.endpoint, [PING]))
            actions += self._waiting_send(now)
        if self.pending is not None and now >= self.pending.try_deadline:
            if self.model == ROUTER:  # no reply in time: not live again until it pongs
                for view in self.servers:
                    view.alive = view.alive and view.endpoint not in self.pending.sent_to
            actions += self._next_try(now)
        return actions

    def next_wakeup(self) -> float | None:
        """When `tick` next has something to do (None: not until a message arrives)."""
        times = [self.pending.try_deadline] if self.pending else []
        if self.model == ROUTER:
            times += [view.ping_at for view in self.servers]
            times += [view.expires_at for view in self.servers if view.alive]
        return min(times, default=None)


class GuideAgentModel:
    """The Guide's `flcliapi.py` agent, as it treats a message from a server: it reads the
    first frame as a sequence number with `int()`. A PONG is not a number, so the first PONG
    raises ValueError and ends the agent thread; its client then waits for ever."""

    def __init__(self) -> None:
        self.sequence = 1

    def received(self, server: str, frames: Sequence[bytes]) -> str:
        sequence = int(frames[0])  # the Guide's line: no PONG check before it
        return "reply" if sequence == self.sequence else "stale"


# -- the server ------------------------------------------------------------------------------
class FreelanceServer(Actor):
    """An FLP echo server: `PING` gets `PONG`, `[control, body...]` comes back as is.

    Its ROUTER's identity is its public endpoint (RFC 10), set before the bind; for a random
    port the port is found first with a bind that is then undone. `freeze(s)` makes it stop
    reading for `s` seconds with its connections open (a hung process); `faults` work as for
    every server here (request numbers count requests, not pings).
    """

    def __init__(self, name: str = "server", *, bind: str = LOCAL, faults: Faults = NONE,
                 security: Security = LOOPBACK, trace: Trace | None = None) -> None:
        super().__init__(name, trace)
        self.endpoint = bind
        self.faults, self.security = faults, security
        self.received = self.answered = self.pongs = self.rejected = 0
        self.frozen_until = 0.0
        self.watch: ConnectionWatch | None = None

    def freeze(self, seconds: float) -> None:
        """Stop reading for `seconds` from now (called from any thread)."""
        self.frozen_until = time.monotonic() + seconds

    @property
    def join_clients(self) -> str:
        """What a client on another machine pastes (`tcp://HOST:PORT[/KEY]`)."""
        return self.security.join(self.endpoint)

    def setup(self) -> None:
        self.router = self.socket(zmq.ROUTER)
        self.router.router_mandatory = 1  # a reply a client cannot take raises: counted
        self.security.start(self.context, self.cleanups)
        self.watch = ConnectionWatch(self.monitor, self.router, self.trace, self.name)
        if self.endpoint.rsplit(":", 1)[-1] in ("*", "0"):  # a port the OS picks
            self.security.check(self.endpoint)
            self.endpoint = bind(self.router, self.endpoint)
            self.router.unbind(self.endpoint)
        self.router.routing_id = advertised(self.endpoint, self.security.advertise).encode()
        self.endpoint = self.security.bind(self.router, self.endpoint, pause=self.pause)
        self.trace.name_endpoint(self.endpoint, self.name)

    def run(self) -> None:
        while True:
            readable = self.poll([self.router, self.watch.events], None)
            if self.watch.events in readable:
                self.watch.read()
            if self.router not in readable:
                continue
            if (frozen := self.frozen_until - time.monotonic()) > 0:
                self.trace.add(self.name, "freeze", f"{frozen:.2g} s, connections open")
                self.pause(frozen)
            try:
                message = receive(self.router)
            except zmq.Again:
                continue
            if message is None or len(message) < 2:
                self.rejected += 1
                self.trace.add(self.name, "reject", "no control frame, or too many frames")
                continue
            if message[1:] == [PING]:
                self.pongs += 1
                self.reply_to_client(self.router, [message[0], PONG])
                continue
            if not self._serve(message):
                return  # an injected crash

    def _serve(self, message: list[bytes]) -> bool:
        self.received += 1
        decision = self.faults.decide(self.received)
        self.trace.add(self.name, "recv", show_bytes(message[1:]))
        if decision.action == "crash":
            self.trace.add(self.name, "crash", f"on request #{self.received}")
            return False
        self.pause(decision.delay_s)
        if decision.action == "answer":
            self.answered += 1
            self.reply_to_client(self.router, message)
        return True

# -- the client ------------------------------------------------------------------------------
class NoReply(Exception):
    """No server answered a request within its tries."""


class FreelanceClient(Actor):
    """A Freelance client in any of the three models: an agent thread that owns one ROUTER
    connected to every server and runs `FreelanceState`; `request()` hands it a request
    through an inproc pipe and waits (at most `timeout x tries`, plus a margin).

    The agent keeps pinging while you are idle (model 3), so a server that died between two
    requests is already known to be dead when the next one comes. `endpoints` are endpoints
    or join tokens; clients set no identity of their own (RFC 10).
    """

    def __init__(self, endpoints: Sequence[str], *, model: int = ROUTER, timeout: float = 0.25,
                 tries: int = 3, ping_interval: float = 0.25, liveness: int = 3,
                 name: str = "client", keys: KeyPair | None = None,
                 trace: Trace | None = None) -> None:
        super().__init__(name, trace)
        self.joins = [Join.parse(endpoint, keys) for endpoint in endpoints]
        self.settings = dict(model=model, timeout=timeout, tries=tries,
                             ping_interval=ping_interval, liveness=liveness)
        FreelanceState([join.endpoint for join in self.joins], **self.settings)  # checks them
        self.answered = self.failed = 0
        self._caller: zmq.Socket | None = None
        self._requests = 0
        self.tag = b""
        self.state: FreelanceState | None = None

    # the agent's side
    def setup(self) -> None:
        self.router = self.socket(zmq.ROUTER)
        self.router.router_mandatory = True  # a send to a server not connected fails at once
        for join in self.joins:
            self.router.connect_rid = join.endpoint.encode()
            join.connect(self.router)
        self.pipe = self.socket(zmq.PAIR)
        self.address = bind(self.pipe, f"inproc://freelance-{id(self)}")
        self.state = FreelanceState([join.endpoint for join in self.joins],
                                    now=time.monotonic(), **self.settings)

    def run(self) -> None:
        state = self.state
        assert state is not None
        while True:
            self._do(state.tick(time.monotonic()))
            wakeup = state.next_wakeup()
            wait = None if wakeup is None else max(0.0, wakeup - time.monotonic())
            readable = self.poll([self.router, self.pipe], wait)
            if self.pipe in readable and (request := receive(self.pipe)):
                self.tag, *body = request
                self.trace.add(self.name, "send", show_bytes(body))
                self._do(state.request(body, time.monotonic()))
            for _ in range(DRAIN_AT_MOST):  # then pings and timeouts get their turn
                if not self.router.get(zmq.EVENTS) & zmq.POLLIN:
                    break
                message = receive(self.router)
                if message:
                    self._do(state.received(message[0].decode(errors="replace"), message[1:],
                                            time.monotonic()))
            with self.changes:  # a caller's `wait_until` on the state looks again
                self.changes.notify_all()

    def _do(self, actions: list[Action]) -> None:
        state = self.state
        assert state is not None
        for action in actions:
            if isinstance(action, Send):
                try:
                    self.router.send_multipart([action.server.encode(), *action.frames],
                                               zmq.NOBLOCK)
                except zmq.ZMQError:  # EHOSTUNREACH (not connected) or EAGAIN (full)
                    self._do(state.unreachable(action.server, time.monotonic()))
            elif isinstance(action, Answer):
                self.trace.add(self.name, "recv", show_bytes(action.frames))
                self.pipe.send_multipart([self.tag, b"OK", *action.frames], zmq.NOBLOCK)
            else:
                self.trace.add(self.name, "give-up", action.reason)
                self.pipe.send_multipart([self.tag, b"FAILED", action.reason.encode()],
                                         zmq.NOBLOCK)

    # the caller's side
    def start(self) -> FreelanceClient:
        super().start()
        assert self.context is not None
        self._caller = self.context.socket(zmq.PAIR)
        self._caller.linger = 0
        self._caller.connect(self.address)
        return self

    def request(self, *frames: bytes) -> list[bytes]:
        """Send `frames`, return the reply's body, or raise NoReply."""
        if self._caller is None:
            raise RuntimeError(f"{self.name} is not started (use `with` or .start())")
        self._requests += 1
        tag = str(self._requests).encode()  # an interrupted request's answer is skipped
        try:  # the agent reads each request at once: a full pipe means it is gone
            self._caller.send_multipart([tag, *frames], zmq.NOBLOCK)
        except zmq.Again:
            self.stop()  # re-raises the agent's error, if that is why
            raise RuntimeError(f"{self.name}'s agent is not taking requests") from None
        settings = self.settings
        deadline = time.monotonic() + settings["timeout"] * settings["tries"] + 1.0
        while True:
            while not self._caller.poll(int(SIGNAL_CHECK_S * 1000)):
                if time.monotonic() > deadline or not self.running:
                    self.stop()  # re-raises the agent's error, if that is why
                    raise RuntimeError(f"{self.name}'s agent did not answer")
            answered_tag, status, *reply = self._caller.recv_multipart()
            if answered_tag == tag:
                break
        if status != b"OK":
            self.failed += 1
            raise NoReply(reply[0].decode())
        self.answered += 1
        return reply

    def stop(self, timeout: float = 5.0) -> None:
        if self._caller is not None:
            self._caller.close()
            self._caller = None
        super().stop(timeout)
