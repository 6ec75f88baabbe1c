"""Where sockets listen: 127.0.0.1 on a port the OS picks, so two notebooks never collide.

Binding every interface (`tcp://*:5555`, `tcp://0.0.0.0:5555`) exposes the service to the
whole network. It is an explicit opt-in for a classroom, never a default.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

LOCAL = "tcp://127.0.0.1:*"
"""The default: loopback only, a random free port (libzmq picks it; `bind` reports it)."""


def bind(socket: zmq.Socket, endpoint: str = LOCAL) -> str:
    """Bind `socket` and return the endpoint it really got (the port filled in)."""
    socket.bind(endpoint)
    return socket.last_endpoint.decode()


REBIND_TIMEOUT_S = 2.0


def bind_when_free(
    socket: zmq.Socket,
    endpoint: str,
    *,
    pause: Callable[[float], None],
    timeout: float = REBIND_TIMEOUT_S,
) -> str:
    """`bind`, retrying for up to `timeout` s while the port is still taken.

    libzmq frees a closed socket's port asynchronously, so a server that rebinds the endpoint
    it just left (or a restarted broker) can see EADDRINUSE for a moment. The caller is an
    actor: it passes its own `pause`, so it stays responsive to `stop()` while it waits.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bind(socket, endpoint)
        except zmq.ZMQError as error:
            if error.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            pause(0.005)


def is_public(endpoint: str) -> bool:
    """True when `endpoint` listens on every interface rather than one address."""
    host = endpoint.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("*", "0.0.0.0", "[::]", "::")
