"""Lazy Pirate on asyncio: the same client, for code that `await`s (and for notebook cells).

    async with AsyncLazyPirateClient(endpoint, timeout=0.25, retries=3) as client:
        reply = await client.request(b"hello")

It behaves as `LazyPirateClient` does: each try waits `timeout` s for the reply, each retry
opens a fresh REQ socket, a reply must match its request (the servers here echo), and after
`retries` tries in all it raises `ServerUnavailable`. What asyncio adds:

- Several requests can be in flight from one event loop (`asyncio.gather`), each with its own
  retries. A REQ carries one request at a time, so every request gets its own socket; none is
  shared between two tasks.
- Cancelling a request (a `wait_for` around it, a task cancelled) closes its socket, so no
  socket is ever left half-used: the late reply of a cancelled request cannot be taken for
  the next one. The wait is a `poll` and the read a non-blocking `recv`, so no receive is
  ever pending when the cancel lands (pyzmq#1925 was a cancelled receive that lost a message).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import zmq
import zmq.asyncio

from .actor import Actor
from .endpoints import LOCAL, bind_when_free, guard, receive
from .faults import NONE, Faults
from .lazy import ServerUnavailable
from .trace import Trace, show_bytes


class AsyncLazyPirateClient:
    """A Lazy Pirate client for asyncio: `timeout` s per try, `retries` tries in all."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 0.25,
        retries: int = 3,
        name: str = "client",
        trace: Trace | None = None,
    ) -> None:
        if retries < 1:
            raise ValueError("retries counts tries in all, so it is at least 1")
        if not timeout > 0:
            raise ValueError(f"timeout is seconds > 0, not {timeout}")
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.name = name
        self.trace = trace if trace is not None else Trace()
        self.sent = self.answered = self.timeouts = self.mismatched = 0
        self.gave_up = self.cancelled = 0
        self.most_open = 0  # the most sockets open at once: one per request in flight
        self._context: zmq.asyncio.Context | None = zmq.asyncio.Context()
        self._context.linger = 0
        self._open: set[zmq.asyncio.Socket] = set()
        self._numbers = 0

    @property
    def open_sockets(self) -> int:
        return len(self._open)

    async def request(self, *frames: bytes) -> list[bytes]:
        """Send `frames`, return the matching reply, or raise ServerUnavailable."""
        message = list(frames)
        self._numbers += 1
        who = f"{self.name}#{self._numbers}"  # which request, when several are in flight
        server = self.trace.who(self.endpoint)
        try:
            for attempt in range(1, self.retries + 1):
                if attempt > 1:
                    self.trace.add(self.name, "retry", f"{who}: try {attempt} of {self.retries}")
                reply = await self._try(message, server)
                if reply is None:
                    self.timeouts += 1
                    self.trace.add(self.name, "timeout", f"{who}: no reply in {self.timeout:g} s")
                elif reply == message:
                    self.answered += 1
                    return reply
                else:
                    self.mismatched += 1
                    self.trace.add(self.name, "mismatch", f"{who}: expected "
                                   f"{show_bytes(message)}")
        except asyncio.CancelledError:
            self.cancelled += 1
            self.trace.add(self.name, "cancelled", f"{who}: its socket closed")
            raise
        self.gave_up += 1
        self.trace.add(self.name, "give-up", f"{who}: after {self.retries} tries")
        raise ServerUnavailable(self.endpoint, self.retries, self.timeout)

    async def _try(self, message: list[bytes], server: str) -> list[bytes] | None:
        """One try on a fresh socket, closed whatever happens (a timeout, a cancel)."""
        if self._context is None:
            raise RuntimeError("this client was closed")
        req = guard(self._context.socket(zmq.REQ))  # a frame size cap, bounded queues
        self._open.add(req)
        self.most_open = max(self.most_open, len(self._open))
        try:
            req.connect(self.endpoint)
            self.trace.add(self.name, "send", show_bytes(message), peer=server)
            await req.send_multipart(message)
            self.sent += 1
            deadline = time.monotonic() + self.timeout
            while (left := deadline - time.monotonic()) > 0:
                if await req.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    try:
                        reply = await req.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:  # REQ woke us for a malformed message and discarded it
                        continue
                    self.trace.add(self.name, "recv", show_bytes(reply), peer=server)
                    return reply
            return None
        finally:
            self._open.discard(req)
            req.close(linger=0)

    def close(self) -> None:
        """Close every socket still open (requests still running fail) and the context."""
        for req in list(self._open):
            req.close(linger=0)
        self._open.clear()
        if self._context is not None:
            self._context.term()
            self._context = None

    async def __aenter__(self) -> AsyncLazyPirateClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class ConcurrentServer(Actor):
    """An echo server on a ROUTER, for clients with several requests in flight.

    A REP server (`LazyServer`) can drop a request only by closing its socket, and that loses
    every request queued behind it too. A ROUTER holds many requests at once, so a fault hits
    exactly the request it names: `drop` leaves that one unanswered, `slow_s` or a freeze
    delays that one only, `crash_after` ends the server (its pending replies are lost).
    A message that is not a request (no empty frame after the sender's id, or too many
    frames) is counted in `rejected` and never echoed: the server reflects nothing it was
    not asked.
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
        self.endpoint = bind
        self.work_s = work_s
        self.faults = faults
        self.received = self.answered = self.dropped = self.rejected = 0
        self.crashed = False

    def setup(self) -> None:
        self.router = self.socket(zmq.ROUTER)
        self.endpoint = bind_when_free(self.router, self.endpoint, pause=self.pause)
        self.trace.name_endpoint(self.endpoint, self.name)

    def run(self) -> None:
        due: deque[tuple[float, list[bytes]]] = deque()  # replies in the order they are due
        while True:
            timeout = None if not due else max(0.0, due[0][0] - time.monotonic())
            if self.poll([self.router], timeout):
                request = receive(self.router)
                if request is None or len(request) < 3 or request[1] != b"":
                    self.rejected += 1
                    self.trace.add(self.name, "reject", "not a request (no envelope)")
                    continue
                self.received += 1
                self.trace.add(self.name, "recv", show_bytes(request[2:]))
                decision = self.faults.decide(self.received)
                if decision.action == "crash":
                    self.crashed = True
                    self.trace.add(self.name, "crash", f"on request #{self.received}")
                    return
                if decision.action == "drop":
                    self.dropped += 1
                    self.trace.add(self.name, "drop", show_bytes(request[2:]))
                    continue
                ready_at = time.monotonic() + self.work_s + decision.delay_s
                due.append((ready_at, request))
                due = deque(sorted(due, key=lambda item: item[0]))
            now = time.monotonic()
            while due and due[0][0] <= now:
                reply = due.popleft()[1]
                self.answered += 1  # counted before the client can see the reply
                self.trace.add(self.name, "reply", show_bytes(reply[2:]))
                self.router.send_multipart(reply)
