"""Background actors: a thread that owns its sockets and is steered through a pipe.

This follows CZMQ's zactor and pyzmq's ThreadAuthenticator. The thread creates its own
sockets (a zmq socket must never be touched by two threads), `start()` returns only once the
thread is ready, and `stop()` sends a command down an inproc PAIR pipe, joins the thread with
a bound and re-raises whatever exception the thread hit: a failure is never silent.

Every started actor is registered by name. Starting another actor with the same name stops
the old one first, so re-running a notebook cell (or "Run All" twice) never leaves a stray
thread behind; `stop_all()` stops everything, and so does interpreter exit.
"""

from __future__ import annotations

import atexit
import itertools
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable

import zmq

from .endpoints import ROUTING_SOCKETS, guard, scramble_generated_ids, send
from .trace import Trace

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
MAX_POLL_MS = 2**31 - 1  # zmq_poll takes a long, a C int on some platforms
BUSY_S = 0.005
"""While messages keep coming, how often a busy loop still looks at its monitor sockets and
at `stop()` (see `Actor.poll`)."""
_STOP = b"$STOP"
_numbers = itertools.count(1)


class ActorStopped(Exception):
    """Raised inside the actor's thread when it is told to stop; unwinds `run()`."""


class Actor:
    max_message_bytes: int | None = None
    """Subclasses create sockets in `setup()` with `self.socket(...)` and loop in `run()`.

    Inside the thread, wait with `self.poll(...)` and `self.pause(...)` (never `time.sleep`):
    both return at once when `stop()` is called. `run()` returning ends the actor, e.g. an
    injected crash; its sockets are closed either way.

    Every socket made with `self.socket(...)` is guarded (`endpoints.guard`): frames over
    `max_message_bytes` (None: the process-wide cap) are refused and queues are bounded.

    State that callers read (a broker's ready list, say) is changed under `self.changes` and
    `self.changes.notify_all()` follows, so a caller can `wait_until(...)` it with a bound.
    """

    def __init__(self, name: str, trace: Trace | None = None) -> None:
        self.name = name
        self.trace = trace if trace is not None else Trace()
        self.error: BaseException | None = None
        self.context: zmq.Context | None = None
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()  # set by the thread itself as its last act
        self._ready = False
        self._pipe: zmq.Socket | None = None
        self._thread_pipe: zmq.Socket | None = None
        self._sockets: list[zmq.Socket] = []
        self._pollers: dict[tuple[bool | zmq.Socket, ...], zmq.Poller] = {}  # (pipe?, *sockets)
        self._busy_until = 0.0  # `poll` with `side`: until then, only the message sockets
        self.cleanups: list[Callable[[], None]] = []  # run in the thread after its sockets close
        self._monitored: set[zmq.Socket] = set()
        self.changes = threading.Condition()

    # -- the caller's side ------------------------------------------------------------------
    def start(self) -> Actor:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already; make a new one")
        _registry.replace(self)
        self.context = zmq.Context()
        self.context.linger = 0
        self._pipe = self.context.socket(zmq.PAIR)
        address = f"inproc://actor-{next(_numbers)}"
        self._pipe.bind(address)
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(address, started), name=self.name, daemon=True
        )
        self._thread.start()
        if not started.wait(START_TIMEOUT_S):
            self.stop()
            raise TimeoutError(f"{self.name} did not start within {START_TIMEOUT_S} s")
        if not self._ready:
            self.stop()  # re-raises the error from setup()
        return self

    @property
    def running(self) -> bool:
        """Started and not yet ended.

        Judged by an event the thread sets, never by `Thread.is_alive()`: CPython 3.11 marks a
        thread as stopped when a `Thread.join()` on it is interrupted by Ctrl-C (its
        bpo-45274 handling), although the thread runs on.
        """
        return self._thread is not None and not self._ended.is_set()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the actor to end by itself; True if it did.

        Re-raises an exception the thread hit.
        """
        if self._thread is not None:
            self._ended.wait(timeout)
        self._raise_error()
        return not self.running

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait up to `timeout` s until `condition()` holds; True if it does.

        The condition is checked again each time the thread notifies `self.changes`, and
        when the thread ends (so a crash is not waited out to the bound).
        """
        with self.changes:
            return self.changes.wait_for(condition, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread, close everything, and re-raise the thread's exception if any.

        Safe to call again after a stop cut short by Ctrl-C: the actor stays registered until
        it has really stopped, so `stop_all()` finishes the job.
        """
        if self.running and self._pipe is not None:
            try:
                self._pipe.send(_STOP, zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the thread is ending already: its pipe end is gone
            self._ended.wait(timeout)
        if self.running:
            frame = sys._current_frames().get(self._thread.ident)
            where = "".join(traceback.format_stack(frame, limit=3)) if frame else "?"
            raise TimeoutError(f"{self.name} did not stop within {timeout} s; it is at\n{where}")
        if self._thread is not None:
            self._thread.join(timeout)  # it has ended its work: only returning is left
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self.context is not None:
            self.context.term()  # cannot hang: every socket is closed, linger is 0
            self.context = None
        _registry.forget(self)
        self._raise_error()

    def _raise_error(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error

    def __enter__(self) -> Actor:
        if self._thread is not None:
            return self
        try:
            return self.start()
        except BaseException:  # Ctrl-C inside start(): `with` would not call __exit__
            _stop_quietly(self)
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    # -- the thread's side ------------------------------------------------------------------
    def setup(self) -> None:
        """Create and bind or connect sockets (runs in the actor's thread)."""

    def run(self) -> None:
        """The actor's loop (runs in the actor's thread). Returning ends the actor."""
        self.pause(None)

    def socket(self, socket_type: int) -> zmq.Socket:
        """A socket owned by this actor's thread, closed when the actor ends."""
        assert self.context is not None
        if socket_type in ROUTING_SOCKETS:
            scramble_generated_ids()
        sock = self.context.socket(socket_type)
        sock.linger = 0
        self._sockets.append(sock)  # closed at the end even if an option below is refused
        return guard(sock, self.max_message_bytes)

    def monitor(self, sock: zmq.Socket, events: int) -> zmq.Socket:
        """A PAIR socket that receives `sock`'s monitor events (read them with
        `zmq.utils.monitor.recv_monitor_message`); close it with `close()`.

        libzmq keeps one monitor per socket: a second would silently replace the first,
        so asking twice is an error (ask once, for every event wanted)."""
        if sock in self._monitored:
            raise ValueError("this socket has a monitor already: libzmq keeps one per socket")
        self._monitored.add(sock)
        address = f"inproc://monitor-{next(_numbers)}"
        sock.monitor(address, events)
        events_socket = self.socket(zmq.PAIR)
        events_socket.connect(address)
        return events_socket

    def close(self, sock: zmq.Socket) -> None:
        """Close one of this actor's sockets early (to reset a REQ or REP, say)."""
        self._sockets.remove(sock)
        self._monitored.discard(sock)
        self.unwatch(sock)
        sock.close()

    def unwatch(self, sock: object) -> None:
        """Forget the pollers that watch `sock`; call it before closing a plain socket
        (`poll` takes those too) that the actor opened and closes itself."""
        self._pollers = {key: p for key, p in self._pollers.items() if sock not in key}

    def poll(self, sockets: Iterable[zmq.Socket], timeout: float | None,
             side: Iterable[zmq.Socket] | None = None) -> set[zmq.Socket]:
        """The sockets that are readable within `timeout` s (None: no limit); maybe none.

        Raises ActorStopped as soon as `stop()` is called. A loop that passes `side` (its
        monitor sockets, maybe none) is a busy one: for `BUSY_S` after a poll that found one
        of `sockets` readable, only `sockets` are polled (libzmq checks every polled socket
        with syscalls of its own, a good part of a message's cost at one request in flight);
        `side` and `stop()` are looked at again once a poll finds nothing, or after `BUSY_S`.
        """
        key = tuple(sockets)
        if side is None:
            return self._poll(key, timeout, pipe=True)
        now = time.monotonic()
        if now < self._busy_until:
            left = self._busy_until - now
            ready = self._poll(key, left if timeout is None else min(timeout, left), pipe=False)
            if ready:
                return ready
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - now))
        ready = self._poll(key + tuple(side), timeout, pipe=True)
        self._busy_until = 0.0 if ready.isdisjoint(key) else time.monotonic() + BUSY_S
        return ready

    def _poll(self, key: tuple[zmq.Socket, ...], timeout: float | None, *,
              pipe: bool) -> set[zmq.Socket]:
        poller = self._pollers.get((pipe, *key))
        if poller is None:
            poller = self._pollers[(pipe, *key)] = zmq.Poller()
            if pipe:
                poller.register(self._thread_pipe, zmq.POLLIN)
            for sock in key:
                poller.register(sock, zmq.POLLIN)
        # rounded up: a timer due in 0.3 ms fires 0.7 ms late rather than spin on poll(0)
        ms = None if timeout is None else min(max(0, math.ceil(timeout * 1000)), MAX_POLL_MS)
        ready = dict(poller.poll(ms))  # a longer wait returns early: every loop polls again
        if pipe and self._thread_pipe in ready:
            self._thread_pipe.recv()
            raise ActorStopped
        return set(ready)

    def pause(self, seconds: float | None) -> None:
        """Wait `seconds` (work, a freeze, a back-off) while staying responsive to `stop()`."""
        self.poll((), seconds)

    unsent = 0  # messages a peer could not take: its queue full, or its connection gone

    def send_or_count(self, socket: zmq.Socket, frames: list[bytes], kind: str,
                      line: str) -> bool:
        """Send a whole message without ever blocking. One its peer cannot take now (its
        queue full; on a ROUTER_MANDATORY socket, its connection gone) is lost, counted in
        `unsent` and traced once per ten, as `kind`, `line` given the count: a retry or the
        next heartbeat covers it, and a peer that stops reading costs a line per ten."""
        try:
            send(socket, frames)
        except zmq.ZMQError as error:
            if error.errno not in (zmq.EAGAIN, zmq.EHOSTUNREACH):
                raise
            self.unsent += 1
            if self.unsent % 10 == 1:
                self.trace.add(self.name, kind, line.format(self.unsent))
            return False
        return True

    def reply_to_client(self, socket: zmq.Socket, frames: list[bytes]) -> bool:
        """A reply on a ROUTER_MANDATORY socket, never blocking: one a client does not take
        (it stopped reading, or left) is counted and lost; its own retry recovers it."""
        return self.send_or_count(socket, frames, "unsent",
                                  "a client is not taking replies ({} unsent)")

    def _main(self, address: str, started: threading.Event) -> None:
        assert self.context is not None
        self._thread_pipe = self.context.socket(zmq.PAIR)
        self._thread_pipe.linger = 0
        self._thread_pipe.connect(address)
        try:
            self.setup()
            self._ready = True
            started.set()
            self.run()
        except ActorStopped:
            pass
        except BaseException as error:  # kept, and re-raised by start(), stop() or join()
            self.error = error
            if self._ready:  # start() raises a setup error itself: one report, not two
                self.trace.add(self.name, "error", f"{type(error).__name__}: {error}")
        finally:
            started.set()
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
            self._monitored.clear()
            self._pollers.clear()
            self._thread_pipe.close()
            while self.cleanups:  # e.g. an authenticator's thread, before the context ends
                self.cleanups.pop()()
            self._ended.set()
            with self.changes:
                self.changes.notify_all()


class _Registry:
    """The actors started in this process, by name, so one call stops them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actors: dict[str, Actor] = {}

    def replace(self, actor: Actor) -> None:
        with self._lock:
            previous = self._actors.pop(actor.name, None)
            self._actors[actor.name] = actor
        if previous is not None and previous is not actor:
            _stop_quietly(previous)

    def forget(self, actor: Actor) -> None:
        with self._lock:
            if self._actors.get(actor.name) is actor:
                del self._actors[actor.name]

    def all(self) -> list[Actor]:
        with self._lock:
            return list(self._actors.values())


def _stop_quietly(actor: Actor) -> None:
    """Stop an actor being replaced by a re-run cell; its error is in the trace already."""
    try:
        actor.stop()
    except Exception:
        pass


_registry = _Registry()


def running_actors() -> list[Actor]:
    """Every actor started and not yet stopped, oldest first."""
    return _registry.all()


def stop_all() -> list[str]:
    """Stop every actor (newest first) and return their names.

    All are stopped even if some fail; then the first error an actor hit is raised.
    """
    actors = running_actors()[::-1]
    errors = []
    for actor in actors:
        try:
            actor.stop()
        except Exception as error:
            errors.append(error)
    if errors:
        raise errors[0]
    return [actor.name for actor in actors]


atexit.register(stop_all)
