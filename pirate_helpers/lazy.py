"""Lazy Pirate: reliability on the client alone (ZeroMQ Guide, chapter 4).

The client sends on a REQ socket and waits for the reply *with a timeout*. If none comes, it
closes the socket (a REQ that sent and got nothing can never send again), opens a new one,
and resends; after `retries` tries in all it gives up with one clear exception instead of
hanging forever. The server is a plain REP echo server: it needs no change at all.
"""

from __future__ import annotations

import time

import zmq

from .actor import Actor
from .endpoints import LOCAL, bind_when_free
from .faults import NONE, Faults
from .trace import Trace, show_bytes


class ServerUnavailable(Exception):
    """The server did not answer any of the client's tries."""

    def __init__(self, endpoint: str, tries: int, timeout: float) -> None:
        super().__init__(
            f"no reply from {endpoint} after {tries} tries of {timeout:g} s each; giving up"
        )
        self.endpoint = endpoint
        self.tries = tries
        self.timeout = timeout


class LazyServer(Actor):
    """A REP server that echoes every request (all frames), with faults on purpose.

    A REP socket must reply before it may receive again, so to *drop* a request (the article's
    `continue`, which breaks its REP) this server closes its socket and binds a fresh one at
    the same endpoint: the pending request is forgotten, just as if it had been lost.
    """

    def __init__(
        self,
        name: str = "server",
        *,
        bind: str = LOCAL,
        work_s: float = 0.0,
        faults: Faults = NONE,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.bind_to = bind
        self.work_s = work_s
        self.faults = faults
        self.endpoint = ""
        self.received = self.answered = self.dropped = 0
        self.crashed = False

    def setup(self) -> None:
        self.rep = self._bind(self.bind_to)
        self.trace.name_endpoint(self.endpoint, self.name)

    def run(self) -> None:
        while True:
            self.poll([self.rep], None)
            try:  # readable can mean a malformed message, which REP then discards
                request = self.rep.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            self.received += 1
            self.trace.add(self.name, "recv", show_bytes(request))
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
                self.trace.add(self.name, "drop", show_bytes(request))
                self._reset()
                continue
            self.answered += 1  # counted before the client can see the reply
            self.trace.add(self.name, "reply", show_bytes(request))
            self.rep.send_multipart(request)

    def _reset(self) -> None:
        """Replace the REP socket: the only correct way for a REP to skip a reply."""
        self.close(self.rep)
        self.rep = self._bind(self.endpoint)

    def _bind(self, endpoint: str) -> zmq.Socket:
        """A new REP at `endpoint`, waiting (bounded) while a closed socket frees the port."""
        rep = self.socket(zmq.REP)
        self.endpoint = bind_when_free(rep, endpoint, pause=self.pause)
        return rep


class LazyPirateClient:
    """A REQ client that times out, reconnects and resends, then gives up.

    `timeout` is seconds per try; `retries` is the number of tries in all (the Guide's
    REQUEST_RETRIES). Every reply is checked against its request (the servers here echo);
    a mismatched reply is counted and the request is sent again on a fresh socket.

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
    ) -> None:
        if retries < 1:
            raise ValueError("retries counts tries in all, so it is at least 1")
        self.endpoint = endpoint
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
            req.send_multipart(message)
            self.sent += 1
            self.trace.add(self.name, "send", show_bytes(message), peer=server)
            if not self._wait(req):
                self.timeouts += 1
                self.trace.add(self.name, "timeout", f"no reply in {self.timeout:g} s")
                continue
            reply = req.recv_multipart()
            self.trace.add(self.name, "recv", show_bytes(reply), peer=server)
            if reply == message:
                self.answered += 1
                return reply
            self.mismatched += 1
            self.trace.add(self.name, "mismatch", f"expected {show_bytes(message)}")
        self.gave_up += 1
        self._close_socket()
        self.trace.add(self.name, "give-up", f"after {self.retries} tries")
        raise ServerUnavailable(self.endpoint, self.retries, self.timeout)

    def _socket(self) -> zmq.Socket:
        if self._req is None:
            if self._actor is not None:
                self._req = self._actor.socket(zmq.REQ)
            else:
                assert self._context is not None, "this client was closed"
                self._req = self._context.socket(zmq.REQ)
            self._req.connect(self.endpoint)
        return self._req

    def _wait(self, req: zmq.Socket) -> bool:
        if self._actor is not None:
            return req in self._actor.poll([req], self.timeout)
        return bool(req.poll(int(self.timeout * 1000)))

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
