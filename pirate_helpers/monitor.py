"""Socket monitor events, read by the thread that owns the socket, with a bound.

libzmq tells an application about its connections only through a monitor: CONNECTED,
DISCONNECTED, CONNECT_RETRIED (with the wait before the next try), HANDSHAKE_SUCCEEDED,
HANDSHAKE_FAILED_*. An event names the socket's endpoint and a number (a file descriptor, a
wait, an error), never the peer's routing id: a ROUTER cannot learn *which* peer went away.

`Monitor` records each event in a trace (as "disconnected", "connect_retried", ...), so the
timelines can draw what libzmq did beside what the application did.
"""

from __future__ import annotations

import errno
import itertools
import time
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

from .trace import Trace

_numbers = itertools.count(1)


@dataclass(frozen=True)
class MonitorEvent:
    """One event: when it was read (time.monotonic), what, on which endpoint, and its value."""

    t: float
    event: zmq.Event
    endpoint: str
    value: int

    @property
    def name(self) -> str:
        return self.event.name

    @property
    def meaning(self) -> str:
        """The value in words: libzmq packs a different thing into it for each event (a
        protocol error code such as 285212673, a wait in ms, an errno, a descriptor)."""
        return describe(self.event, self.value)


_PROTOCOL_ERRORS = {getattr(zmq, name): name.removeprefix("PROTOCOL_ERROR_")
                    for name in dir(zmq) if name.startswith("PROTOCOL_ERROR_")}


def describe(event: zmq.Event, value: int) -> str:
    """zmq_socket_monitor(3)'s meaning of an event's value."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return _PROTOCOL_ERRORS.get(value, f"protocol error {value:#x}")
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"ZAP status {value}"
    if event in (zmq.EVENT_CONNECT_RETRIED,):
        return f"next try in {value} ms"
    if event in (zmq.EVENT_CONNECT_DELAYED, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                 zmq.EVENT_BIND_FAILED, zmq.EVENT_ACCEPT_FAILED, zmq.EVENT_CLOSE_FAILED):
        return f"errno {value} ({errno.errorcode.get(value, '?')})" if value else "no error"
    if event in (zmq.EVENT_CONNECTED, zmq.EVENT_LISTENING, zmq.EVENT_ACCEPTED,
                 zmq.EVENT_CLOSED, zmq.EVENT_DISCONNECTED):
        return f"file descriptor {value}"
    return str(value)


class Monitor:
    """Watch `sock`'s connections. Use it from the thread that owns `sock`, and `close()` it
    before closing `sock`."""

    def __init__(self, sock: zmq.Socket, name: str = "socket", trace: Trace | None = None):
        self.socket = sock
        self.name = name
        self.trace = trace
        self.events: list[MonitorEvent] = []
        # our own address: pyzmq's default names it after the descriptor, which a closed
        # socket's successor may reuse while the old monitor is still being torn down
        address = f"inproc://pirate-monitor-{next(_numbers)}"
        sock.monitor(address, zmq.EVENT_ALL)
        self._pipe = sock.context.socket(zmq.PAIR)
        self._pipe.linger = 0
        self._pipe.connect(address)

    def read(self, timeout: float) -> list[MonitorEvent]:
        """The events that arrive within `timeout` s (all of them: it waits the whole time)."""
        new = []
        deadline = time.monotonic() + timeout
        while self._pipe.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            new.append(self._record())
        return new

    def wait_for(self, *wanted: zmq.Event, timeout: float) -> MonitorEvent | None:
        """The first of `wanted` to arrive within `timeout` s (events before it are kept in
        `events`), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self._pipe.poll(max(1, int(left * 1000))):
                break
            event = self._record()
            if event.event in wanted:
                return event
        return None

    def watch(self, other: zmq.Socket, timeout: float) -> bool:
        """Wait up to `timeout` s for `other` to be readable, recording events as they come
        (so their times are right); True if `other` is readable."""
        poller = zmq.Poller()
        poller.register(other, zmq.POLLIN)
        poller.register(self._pipe, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(max(1, int(left * 1000))))
            if self._pipe in ready:
                self._record()
            if other in ready:
                return True
        return False

    def seen(self, *wanted: zmq.Event) -> list[MonitorEvent]:
        return [event for event in self.events if event.event in wanted]

    def _record(self) -> MonitorEvent:
        message = recv_monitor_message(self._pipe)
        event = MonitorEvent(
            time.monotonic(), zmq.Event(message["event"]),
            message["endpoint"].decode("utf-8", "replace"), int(message["value"]),
        )
        self.events.append(event)
        if self.trace is not None:
            self.trace.add(self.name, event.name.lower(), f"{event.endpoint} ({event.meaning})")
        return event

    def close(self) -> None:
        if self._pipe is not None:
            self.socket.disable_monitor()
            self._pipe.close()
            self._pipe = None

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
