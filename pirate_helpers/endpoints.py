"""Where sockets listen, and the limits every socket that faces the network keeps.

The default is 127.0.0.1 on a port the OS picks, so two notebooks never collide. Binding
every interface (`tcp://*:5555`, `tcp://0.0.0.0:5555`) exposes the service to the whole
network: an explicit opt-in for a classroom, never a default.

A peer can send anything. `guard()` caps what libzmq accepts (`ZMQ_MAXMSGSIZE` per frame: a
bigger frame makes libzmq drop that peer's connection before Python sees a byte) and bounds
the messages queued per connection (high-water marks), so memory stays bounded whatever
arrives. `receive()` reads one message but refuses one with too many frames.

A peer can also choose its routing id. libzmq gives an anonymous peer the id `0x00` + a 32-bit
counter, and aborts the whole process (an assertion) if that id is already held by a peer
that chose it; the counter starts from the C library's `rand()`, never seeded, so it is the
same in every run. `scramble_generated_ids()` seeds it from the OS before each ROUTER or REP is
made, and the queues show workers a keyed hash of such an id (`names.AddressMask`) rather than
the id, so nobody can predict the next one (docs/libzmq-routing-id-abort.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import time
from collections.abc import Callable

import zmq

LOCAL = "tcp://127.0.0.1:*"
"""The default: loopback only, a random free port (libzmq picks it; `bind` reports it)."""

MAX_MESSAGE_BYTES = 1 << 20
"""The largest frame a socket accepts (1 MiB): plenty for the course, small enough to hold."""

HIGH_WATER_MARK = 100
"""Messages queued per connection each way; the course never has more than a few in flight."""

MAX_FRAMES = 64
"""Frames in one message: an envelope and a body need a handful."""

# Plain ints, not pyzmq's enums or named attributes (`socket.rcvmore`): those cost a Python
# call per use, and a broker uses them for every frame.
NOBLOCK, SNDMORE, RCVMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.RCVMORE)
EVENTS, POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_send = zmq.backend.Socket.send  # what `socket.send` calls after checking DRAFT-only options

def fits_round_trip(frames: int, added: int) -> bool:
    """Whether a request of `frames` frames, as a queue or broker received it, can go to a
    worker and come back: its reply arrives with `added` frames more (the hop's envelope), and
    every role refuses a message over `MAX_FRAMES`. A request that fails this is refused at
    the door (and counted), never handed to a worker whose reply would be dropped."""
    return frames + added <= MAX_FRAMES

_max_message_bytes = MAX_MESSAGE_BYTES

ROUTING_SOCKETS = (zmq.ROUTER, zmq.REP)
"""Socket types that hand anonymous peers an id libzmq generates (REP is a ROUTER inside)."""


def _c_library() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:  # no C library to load (an unusual platform): nothing to seed
        return None


_libc = _c_library()


def scramble_generated_ids() -> None:
    """Seed the C library's `rand()` from the OS, so the next ROUTER or REP made starts its
    ids for anonymous peers at an unpredictable number. libzmq takes that start from
    `rand()`, which nothing seeds: `0x00 6b8b4567` in every run, a number a squatter can
    claim in advance (and libzmq aborts when it then generates an id that is taken)."""
    if _libc is not None and hasattr(_libc, "srand"):
        _libc.srand(secrets.randbits(32))


def set_max_message_bytes(limit: int) -> None:
    """Change the frame size cap for every socket guarded from now on (`--max-message-bytes`)."""
    global _max_message_bytes
    if limit < 1:
        raise ValueError(f"a message size cap is at least 1 byte, not {limit}")
    _max_message_bytes = limit


def guard(socket: zmq.Socket, max_message_bytes: int | None = None) -> zmq.Socket:
    """Cap frame size and queue lengths, so a hostile or broken peer costs bounded memory."""
    socket.maxmsgsize = max_message_bytes or _max_message_bytes
    socket.sndhwm = socket.rcvhwm = HIGH_WATER_MARK
    return socket


def receive(socket: zmq.Socket, max_frames: int = MAX_FRAMES) -> list[bytes] | None:
    """One whole message, or None if it had more than `max_frames` frames (read and dropped:
    the frames beyond the limit are never kept). Raises zmq.Again if nothing is waiting.

    Each frame is read as a `zmq.Frame` (`copy=False`) because its `more` costs a fraction
    of `getsockopt(RCVMORE)`, which converts the option to an enum on every call."""
    recv = socket.recv
    frame = recv(NOBLOCK, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(0, False)
        if len(frames) == max_frames:  # over the limit: drain the rest, keep nothing
            while frame.more:
                frame = recv(0, False)
            return None
        frames.append(frame.bytes)
    return frames


def waiting(socket: zmq.Socket) -> bool:
    """True if a message can be read now: cheaper than a poll, or than the exception a
    non-blocking read raises on an empty socket."""
    return bool(socket.getsockopt(EVENTS) & POLLIN)


def send(socket: zmq.Socket, frames: list[bytes]) -> None:
    """Send a whole message without blocking. A full queue (zmq.Again) or a gone peer
    (EHOSTUNREACH, ROUTER_MANDATORY) raises on the first frame, before any is sent."""
    last = len(frames) - 1
    for frame in frames[:last]:
        _send(socket, frame, SNDMORE | NOBLOCK)
    _send(socket, frames[last], NOBLOCK)


class EndpointError(Exception):
    """libzmq refused an endpoint (a port in use, an address not on this machine)."""

    def __init__(self, endpoint: str, error: zmq.ZMQError) -> None:
        super().__init__(f"{endpoint}: {zmq.strerror(error.errno)}")
        self.endpoint = endpoint
        self.errno = error.errno


_bound_here: set[str] = set()  # endpoints this process has bound: its own to free again


def bind(socket: zmq.Socket, endpoint: str = LOCAL) -> str:
    """Bind `socket` and return the endpoint it really got (the port filled in)."""
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        raise EndpointError(endpoint, error) from None
    bound = socket.last_endpoint.decode()
    _bound_here.update((endpoint, bound))
    return bound


def connect(socket: zmq.Socket, endpoint: str) -> None:
    """Connect `socket`; an endpoint libzmq cannot parse raises EndpointError."""
    try:
        socket.connect(endpoint)
    except zmq.ZMQError as error:
        raise EndpointError(endpoint, error) from None


REBIND_TIMEOUT_S = 2.0


def bind_when_free(
    socket: zmq.Socket,
    endpoint: str,
    *,
    pause: Callable[[float], None],
    timeout: float = REBIND_TIMEOUT_S,
) -> str:
    """`bind`, retrying for up to `timeout` s while the port is still taken by this process.

    libzmq frees a closed socket's port asynchronously, so a server that rebinds the endpoint
    it just left (or a broker restarted in the same notebook) can see EADDRINUSE for a
    moment. A port this process never bound is another program's: that is said at once.
    The caller is an actor: it passes its own `pause`, so it stays responsive to `stop()`.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bind(socket, endpoint)
        except EndpointError as error:
            ours = endpoint in _bound_here
            if error.errno != zmq.EADDRINUSE or not ours or time.monotonic() > deadline:
                raise
            pause(0.005)


def is_public(endpoint: str) -> bool:
    """True when `endpoint` listens on every interface rather than one address."""
    host = endpoint.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("*", "0.0.0.0", "[::]", "::")
