"""What every queue with a client side and a worker side shares: two ROUTERs, bound with
the queue's security, their failed handshakes and closed worker connections counted, and the
join lines people paste.

The Simple and Paranoid queues differ in their decisions, not in this; each calls
`bind_both()` in its `setup()`, polls `watch_events` beside its ROUTERs and calls
`read_watches()` in its loop.
"""

from __future__ import annotations

import zmq

from .actor import Actor
from .endpoints import LOCAL
from .security import LOOPBACK, ConnectionWatch, Security
from .trace import Trace


class TwoSidedQueue(Actor):
    """An actor with a ROUTER `frontend` for clients and a ROUTER `backend` for workers."""

    def __init__(self, name: str, *, frontend: str = LOCAL, backend: str = LOCAL,
                 security: Security = LOOPBACK, trace: Trace | None = None) -> None:
        super().__init__(name, trace)
        self.frontend_endpoint, self.backend_endpoint = frontend, backend  # ports filled in
        self.security = security
        self.watches: list[ConnectionWatch] = []  # the frontend's, the backend's

    def bind_both(self) -> None:
        """Make and bind both ROUTERs (in the actor's thread). The backend hands a routing
        id to a worker reconnecting under it, and fails a send to a gone worker
        (`ROUTER_MANDATORY`) instead of dropping it."""
        self.frontend = self.socket(zmq.ROUTER)
        self.frontend.router_mandatory = 1  # a reply a client cannot take raises: counted
        self.backend = self.socket(zmq.ROUTER)
        self.backend.router_handover = 1
        self.backend.router_mandatory = 1
        self.security.check(self.frontend_endpoint)
        self.security.check(self.backend_endpoint)
        self.security.start(self.context, self.cleanups)
        self.watches = [ConnectionWatch(self.monitor, sock, self.trace, self.name)
                        for sock in (self.frontend, self.backend)]
        self.frontend_endpoint = self.security.bind(self.frontend, self.frontend_endpoint,
                                                    pause=self.pause)
        self.backend_endpoint = self.security.bind(self.backend, self.backend_endpoint,
                                                   pause=self.pause)
        self.trace.name_endpoint(self.frontend_endpoint, self.name)
        self.trace.name_endpoint(self.backend_endpoint, self.name)

    @property
    def watch_events(self) -> tuple[zmq.Socket, ...]:
        """The monitor sockets the loop polls beside its ROUTERs."""
        return tuple(watch.events for watch in self.watches)

    def read_watches(self, readable: set[zmq.Socket]) -> None:
        """Count the monitor events that arrived; a caller waiting on `changes` wakes."""
        for watch in self.watches:
            if watch.events in readable:
                watch.read()
                with self.changes:
                    self.changes.notify_all()

    # -- read from any thread -------------------------------------------------------------
    @property
    def join_clients(self) -> str:
        """What a client on another machine pastes (`tcp://HOST:PORT[/KEY]`)."""
        return self.security.join(self.frontend_endpoint)

    @property
    def join_workers(self) -> str:
        """What a worker on another machine pastes."""
        return self.security.join(self.backend_endpoint)

    @property
    def handshake_failures(self) -> int:
        """Peers that connected but failed the handshake (a wrong or missing key)."""
        return sum(watch.failed for watch in self.watches)

    @property
    def closed_before_handshake(self) -> int:
        """Connections closed before their handshake ended (a port scan): not a key."""
        return sum(watch.closed_early for watch in self.watches)

    @property
    def disconnects(self) -> int:
        """Worker connections that libzmq saw close (a crash, a kill, a failed handshake)."""
        return self.watches[1].disconnected if self.watches else 0

    def wait_for_disconnects(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (bounded) until `count` worker connections have closed in all."""
        return self.wait_until(lambda: self.disconnects >= count, timeout)
