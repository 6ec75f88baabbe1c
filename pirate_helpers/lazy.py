"""Lazy Pirate: reliability on the client alone (ZeroMQ Guide, chapter 4).

The client sends on a REQ socket and waits for the reply *with a timeout*. If none comes, it
closes the socket (a REQ that sent and got nothing can never send again), opens a new one,
and resends; after `retries` tries in all it gives up with one clear exception instead of
hanging forever. The server needs no change at all: any echo server does. Ours is a ROUTER
(a REP with the envelope in plain sight), so dropping one request on purpose is simply not
answering it, and every other client's queued request stays where it is.
"""

from __future__ import annotations

import time
from collections import deque

import zmq

from .actor import Actor
from .endpoints import LOCAL, guard, receive
from .faults import NONE, Faults
from .security import LOOPBACK, ConnectionWatch, Join, KeyPair, Security
from .trace import Trace, plural, show_bytes


class ServerUnavailable(Exception):
    """The server did not answer any of the client's tries."""

    def __init__(self, endpoint: str, tries: int, timeout: float) -> None:
        super().__init__(
            f"no reply from {endpoint} after {plural(tries, 'try')} of {timeout:g} s each; "
            "giving up"
        )
        self.endpoint = endpoint
        self.tries = tries
        self.timeout = timeout


class StrictEcho(Actor):
    """Echo every request on a strict request-reply socket (REP or REQ), with faults.

    Such a socket must reply before it may receive again, so a request can only be *dropped*
    by throwing the socket away and opening a fresh one: the pending request is forgotten,
    just as if it had been lost. (The article's server `continue`s instead, and its REP is
    broken from then on.) `fresh_socket()` is all that differs between a REP server and a
    REQ worker.

    `peer` (set by a subclass) is whom to draw arrows to: the side that knows both ends of a
    message records it, and behind the article's proxy only the server knows what it got.
    """

    def __init__(
        self, name: str, *, work_s: float = 0.0, faults: Faults = NONE, trace: Trace | None = None
    ) -> None:
        super().__init__(name, trace)
        self.work_s = work_s
        self.faults = faults
        self.received = self.answered = self.dropped = self.rejected = 0
        self.crashed = False
        self.peer: str | None = None

    def fresh_socket(self) -> zmq.Socket:
        raise NotImplementedError

    def shown(self, request: list[bytes]) -> str:
        """How the trace shows a request."""
        return show_bytes(request)

    def setup(self) -> None:
        self.strict = self.fresh_socket()

    def valid(self, request: list[bytes]) -> bool:
        """Whether a request has the shape this socket needs (REQ/REP check it themselves)."""
        return True

    def watched(self) -> list[zmq.Socket]:
        """The sockets the loop waits on; a worker adds the monitor of its connection."""
        return [self.strict]

    def renew(self) -> None:
        """Throw the socket away and start over on a fresh one."""
        self.close(self.strict)
        self.strict = self.fresh_socket()

    def on_other(self, readable: set[zmq.Socket]) -> None:
        """Something other than the strict socket woke the loop (see `watched`)."""

    def run(self) -> None:
        while True:
            readable = self.poll(self.watched(), None)
            if self.strict not in readable:
                self.on_other(readable)
                continue
            try:
                request = receive(self.strict)
            except zmq.Again:  # the socket woke us for a malformed message and discarded it
                self.rejected += 1
                self.trace.add(self.name, "reject", "malformed message (no envelope)")
                continue
            if request is None or not self.valid(request):
                self.rejected += 1
                self.trace.add(self.name, "reject", "malformed message (no envelope, or "
                               "too many frames)")
                if self.strict.type in (zmq.REQ, zmq.REP):  # it took it, so it now
                    self.renew()  # waits to send: start over (a REQ worker says READY)
                continue
            self.received += 1
            self.trace.add(self.name, "recv", self.shown(request), peer=self.peer)
            decision = self.faults.decide(self.received)
            if decision.action == "crash":
                self.crashed = True
                self.trace.add(self.name, "crash", f"on request #{self.received}")
                return
            if decision.frozen:
                self.trace.add(self.name, "freeze", f"{decision.delay_s:g} s")
            self.pause(decision.delay_s + self.work_s)
            if decision.action == "drop":
                self.dropped += 1
                self.trace.add(self.name, "drop", self.shown(request))
                self.renew()
                continue
            self.answered += 1  # counted before the client can see the reply
            if self.peer is None:
                self.trace.add(self.name, "reply", self.shown(request))
            else:
                self.trace.add(self.name, "send", self.shown(request), peer=self.peer)
            if self.strict.type == zmq.ROUTER:  # answered, even if not taken (counted)
                self.reply_to_client(self.strict, request)
                continue
            try:
                self.strict.send_multipart(request, zmq.NOBLOCK)
            except zmq.ZMQError as error:
                if error.errno not in (zmq.EAGAIN, zmq.EHOSTUNREACH):
                    raise
                self.answered -= 1  # a REQ whose connection is gone would block here for good
                self.trace.add(self.name, "reconnect", "connection gone before the reply; "
                               "READY again on a fresh socket")
                self.renew()


class LazyServer(StrictEcho):
    """An echo server (all frames of each request), with faults on purpose.

    It binds a ROUTER: REQ clients cannot tell it from a REP, and a dropped request is just
    one that gets no reply, while every other client's requests wait untouched. With
    `connect=` (an endpoint or join token) it is instead the article's Simple Pirate worker, a
    plain REP behind a ROUTER-DEALER proxy, and drops by starting over on a fresh REP; it then
    draws its own arrows to and from whoever bound that endpoint (the proxy cannot tell which
    worker got what).

    `security` (default: loopback only) decides who may connect; `join_clients` is the token
    a peer pastes, and `handshake_failures` counts peers refused by CURVE.
    """

    def __init__(
        self,
        name: str = "server",
        *,
        bind: str = LOCAL,
        connect: str | None = None,
        work_s: float = 0.0,
        faults: Faults = NONE,
        security: Security = LOOPBACK,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, work_s=work_s, faults=faults, trace=trace)
        self.join_token = Join.parse(connect) if connect else None
        self.endpoint = self.join_token.endpoint if self.join_token else bind
        self.binds = connect is None
        self.security = security
        self.watch: ConnectionWatch | None = None

    def setup(self) -> None:
        super().setup()
        if self.binds:
            self.trace.name_endpoint(self.endpoint, self.name)
        else:
            self.peer = self.trace.who(self.endpoint)

    def fresh_socket(self) -> zmq.Socket:
        if not self.binds:
            rep = self.socket(zmq.REP)
            assert self.join_token is not None
            self.join_token.connect(rep)
            return rep
        router = self.socket(zmq.ROUTER)
        router.router_mandatory = 1  # a reply a client cannot take raises: counted, not lost
        self.security.start(self.context, self.cleanups)
        self.watch = ConnectionWatch(self.monitor, router, self.trace, self.name)
        self.endpoint = self.security.bind(router, self.endpoint, pause=self.pause)
        return router

    @property
    def join_clients(self) -> str:
        """What a client on another machine pastes (`tcp://HOST:PORT[/KEY]`)."""
        return self.security.join(self.endpoint)

    @property
    def handshake_failures(self) -> int:
        return self.watch.failed if self.watch else 0

    @property
    def closed_before_handshake(self) -> int:
        return self.watch.closed_early if self.watch else 0

    def valid(self, request: list[bytes]) -> bool:
        return not self.binds or b"" in request[1:-1]  # a ROUTER: [client, b"", body...]

    def shown(self, request: list[bytes]) -> str:
        if self.binds:
            request = request[request.index(b"", 1) + 1 :]
        return show_bytes(request)

    def watched(self) -> list[zmq.Socket]:
        return [self.strict, self.watch.events] if self.watch else [self.strict]

    def on_other(self, readable: set[zmq.Socket]) -> None:
        if self.watch and self.watch.events in readable:
            self.watch.read()

    def renew(self) -> None:
        if not self.binds:  # a ROUTER owes nobody a reply: not answering is the whole drop
            super().renew()


SIGNAL_CHECK_S = 0.1  # the longest a foreground wait goes without Python seeing a signal


class LazyPirateClient:
    """A REQ client that times out, reconnects and resends, then gives up.

    `timeout` is seconds per try; `retries` is the number of tries in all (the Guide's
    REQUEST_RETRIES). Every reply is checked against its request (the servers here echo);
    a mismatched reply is counted and the request is sent again on a fresh socket.

    `endpoint` is an endpoint or a join token (`tcp://HOST:PORT/KEY` for a CURVE server):
    the client then makes its own key pair, or uses `keys`.

    Use it from one thread, e.g. a notebook cell. Inside an actor, pass `actor=` so its
    sockets and waits belong to the actor's thread and stop promptly.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 0.25,
        retries: int = 3,
        name: str = "client",
        trace: Trace | None = None,
        actor: Actor | None = None,
        keys: KeyPair | None = None,
    ) -> None:
        if retries < 1:
            raise ValueError("retries counts tries in all, so it is at least 1")
        self.join_token = Join.parse(endpoint, keys)
        self.endpoint = self.join_token.endpoint
        self.timeout = timeout
        self.retries = retries
        self.name = name
        self.trace = trace if trace is not None else (actor.trace if actor else Trace())
        self._actor = actor
        self._context: zmq.Context | None = None
        if actor is None:
            self._context = zmq.Context()
            self._context.linger = 0
        self.sent = self.answered = self.timeouts = self.mismatched = self.gave_up = 0
        self._req: zmq.Socket | None = None

    def request(self, *frames: bytes) -> list[bytes]:
        """Send `frames`, return the matching reply, or raise ServerUnavailable."""
        message = list(frames)
        server = self.trace.who(self.endpoint)
        for attempt in range(1, self.retries + 1):
            if attempt > 1:
                self.trace.add(self.name, "retry", f"try {attempt} of {self.retries}")
                self._close_socket()
            req = self._socket()
            # traced first: a broker's thread may trace its part of the trip before we return
            self.trace.add(self.name, "send", show_bytes(message), peer=server)
            try:  # never block: a REQ whose new connection was dropped may not take it
                req.send_multipart(message, zmq.NOBLOCK)
                self.sent += 1
            except zmq.Again:
                pass  # this try waits out its timeout like a lost request, then retries
            reply = self._receive(req)
            if reply is None:
                self.timeouts += 1
                self.trace.add(self.name, "timeout", f"no reply in {self.timeout:g} s")
                continue
            self.trace.add(self.name, "recv", show_bytes(reply), peer=server)
            if self.accepts(message, reply):
                self.answered += 1  # counted before the client can see the reply
                return reply
            self.mismatched += 1
            self.trace.add(self.name, "mismatch", f"expected {show_bytes(message)}")
        self.gave_up += 1
        self._close_socket()
        self.trace.add(self.name, "give-up", f"after {plural(self.retries, 'try')}")
        raise ServerUnavailable(self.endpoint, self.retries, self.timeout)

    def accepts(self, request: list[bytes], reply: list[bytes]) -> bool:
        """Is `reply` the answer to `request`? The servers here echo; a protocol over
        request-reply (Majordomo, say) checks its own header instead."""
        return reply == request

    def _socket(self) -> zmq.Socket:
        if self._req is None:
            if self._actor is not None:
                self._req = self._actor.socket(zmq.REQ)
            else:
                assert self._context is not None, "this client was closed"
                self._req = guard(self._context.socket(zmq.REQ))
            self.join_token.connect(self._req)
        return self._req

    def _receive(self, req: zmq.Socket) -> list[bytes] | None:
        """The reply, or None when the timeout passes first."""
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            if self._actor is not None:
                readable = req in self._actor.poll([req], left)
            else:
                # in slices: a signal (Ctrl-C, SIGTERM) that lands just before a blocking
                # poll is only acted on when the poll returns
                readable = bool(req.poll(max(1, int(min(left, SIGNAL_CHECK_S) * 1000))))
            if readable:
                try:
                    reply = receive(req)
                except zmq.Again:  # REQ woke us for a malformed message and discarded it
                    continue
                if reply is not None:
                    return reply
        return None

    def _close_socket(self) -> None:
        if self._req is not None:
            if self._actor is not None:
                self._actor.close(self._req)
            else:
                self._req.close()
            self._req = None

    def close(self) -> None:
        self._close_socket()
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> LazyPirateClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LazyClient(Actor):
    """A Lazy Pirate client in the background: sends `requests` ("1", "2", ...) in order.

    It stops early when the server gives no answer (`gave_up` holds the exception). Read
    `answered`, `elapsed_s` and the counters of `client` after `join()`.
    """

    def __init__(
        self,
        endpoint: str,
        name: str = "client",
        *,
        requests: int = 10,
        timeout: float = 0.25,
        retries: int = 3,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.endpoint = endpoint
        self.bodies = [str(n).encode() for n in range(1, requests + 1)]
        self.client = LazyPirateClient(
            endpoint, timeout=timeout, retries=retries, name=name, trace=self.trace, actor=self
        )
        self.answered: list[bytes] = []
        self.gave_up: ServerUnavailable | None = None
        self.elapsed_s = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            for body in self.bodies:
                self.answered.extend(self.client.request(body))
        except ServerUnavailable as error:
            self.gave_up = error
        finally:
            self.elapsed_s = time.monotonic() - started


LATENCIES_KEPT = 1000  # the recent replies a latency figure is taken from


class SteadyLoad(Actor):
    """A Lazy Pirate client that keeps a steady load: one request every `1 / rate` s (or as
    fast as replies allow, one at a time), bodies `NAME:1`, `NAME:2`, ... so a trace shows
    whose request is whose. `requests=None` goes on until stopped.

    It never gives up for good: a request unanswered after all its tries counts as lost and
    the next one goes, so it shows an outage and the recovery after it. `summary()` is safe
    to read from any thread (plain counters, a bounded deque of latencies).

    `client_class` and `prefix` let another protocol over Lazy Pirate keep the same load:
    `MajordomoClient` with `prefix=(service,)` asks a Majordomo service. A reply that is
    not the body's echo counts as mismatched.
    """

    def __init__(
        self,
        endpoint: str,
        name: str = "load",
        *,
        rate: float = 10.0,
        requests: int | None = None,
        timeout: float = 0.25,
        retries: int = 3,
        keys: KeyPair | None = None,
        trace: Trace | None = None,
        client_class: type[LazyPirateClient] = LazyPirateClient,
        prefix: tuple[bytes, ...] = (),
    ) -> None:
        if rate <= 0:
            raise ValueError("rate is requests per second, above 0")
        super().__init__(name, trace)
        self.rate, self.requests, self.prefix = rate, requests, prefix
        self.client = client_class(endpoint, timeout=timeout, retries=retries, name=name,
                                   trace=self.trace, actor=self, keys=keys)
        self.answered = self.lost = self.done = self.wrong_echo = 0
        self.latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.started_at = time.monotonic()

    def run(self) -> None:
        self.started_at = next_at = time.monotonic()
        n = 0
        while self.requests is None or n < self.requests:
            n += 1
            sent_at, body = time.monotonic(), f"{self.name}:{n}".encode()
            try:
                reply = self.client.request(*self.prefix, body)
                self.latencies.append(time.monotonic() - sent_at)
                self.answered += 1
                self.wrong_echo += reply != [body]
            except ServerUnavailable:
                self.lost += 1
            self.done += 1
            next_at = max(next_at + 1 / self.rate, time.monotonic())  # late: no burst after
            self.pause(next_at - time.monotonic())

    @property
    def retried(self) -> int:
        """Tries beyond the first, in all."""
        client = self.client
        return client.timeouts + client.mismatched - client.gave_up  # the last try: no retry

    def summary(self) -> dict:
        """answered, retried, lost, mismatched (a reply that was not its request's echo:
        retried, never taken), and the latency of recent replies (ms: median, 95th)."""
        recent = sorted(self.latencies)

        def percentile(p: float) -> float:
            return 1000 * recent[min(len(recent) - 1, int(p * len(recent)))] if recent else 0.0

        return {"answered": self.answered, "retried": self.retried, "lost": self.lost,
                "mismatched": self.client.mismatched + self.wrong_echo,
                "median ms": percentile(0.5),
                "p95 ms": percentile(0.95), "elapsed s": time.monotonic() - self.started_at}

    def summary_line(self) -> str:
        s = self.summary()
        return (f"{self.name}: {s['answered']} answered, {s['retried']} retried, {s['lost']} "
                f"lost, {s['mismatched']} mismatched, latency {s['median ms']:.1f} ms median, "
                f"{s['p95 ms']:.1f} ms p95, in {s['elapsed s']:.1f} s")
