"""What every role shares: the registry, the log a role prints, and serving until stopped."""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO

from ..actor import Actor
from ..endpoints import is_public
from ..security import Security, advertised, is_loopback
from ..trace import Event, Trace

ROLES: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {}


def role(name: str, summary: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a `pirate NAME` role: its one-line summary, its options, and its body."""

    def register(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        ROLES[name] = (summary, arguments, body)
        return body

    return register


def say(role_name: str, text: str, *, error: bool = False) -> None:
    write_line(f"{role_name}: {text}", sys.stderr if error else sys.stdout)


def write_line(line: str, stream: TextIO | None = None) -> None:
    """One write per line: `print` writes the text and its newline apart, so a line an
    actor's thread logs could land between them, in the middle of the main thread's."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


PER_MESSAGE = frozenset({"send", "recv", "request", "reply", "kept", "stored", "close"})
"""Event kinds that happen once per message: `--quiet` leaves them out."""

RATE_LIMITED = frozenset({
    "reject", "unreachable", "handshake-failed", "connect-only",  # junk, strangers, scans
    "join", "duplicate", "ready", "leave", "purge", "requeue", "mismatch",  # workers come, go
    "expire",  # requests for a service nobody offers
    "overdue",  # workers that heartbeat and never answer
    "refused", "connection", "closed", "backpressure",  # the relay's connections
    "accept-failed",  # out of file descriptors
    "unsent",  # replies to clients that stopped reading
})
"""Event kinds a peer can cause at will (12,000 fake workers join, leave and are purged):
a few lines, then a summary with exact counts."""

FIRST_PER_WINDOW = {"join": 50, "purge": 50, "unreachable": 50, "accept-failed": 1}
"""Kinds with another budget than `EventLog.first`: a whole class joins at once, or loses
the room's Wi-Fi at once, and the instructor reads who arrived and who was lost; out of file
descriptors, libzmq retries a failed accept at once, thousands of times a second, and one
line says it all."""


class EventLog:
    """Prints a role's events: in every `summary_every` s, the first `first` of each
    rate-limited kind, then one summary of how many more. Counts are exact; only printing is
    limited, so an instructor still sees who joins while a flood costs a line per window.

    Every other kind (a crash, a reconnect, a cut) is always printed; per-message kinds only
    without `--quiet`. Called from actor threads, so it takes a lock.
    """

    def __init__(self, *, quiet: bool, first: int = 5, summary_every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] = write_line) -> None:
        self.quiet, self.first, self.summary_every = quiet, first, summary_every
        self.clock, self.write = clock, write
        self.seen: Counter[str] = Counter()  # in all
        self.in_window: Counter[str] = Counter()  # since the last summary
        self.unprinted: Counter[str] = Counter()
        self.summary_at = clock() + summary_every
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.kind in RATE_LIMITED:
                self._summarize_if_due()  # a new window may begin with this event
                self.seen[event.kind] += 1
                self.in_window[event.kind] += 1
                first = FIRST_PER_WINDOW.get(event.kind, self.first)
                if self.in_window[event.kind] > first:
                    self.unprinted[event.kind] += 1
                    return
                if self.in_window[event.kind] == first:
                    event = Event(event.t, event.actor, event.kind,
                                  f"{event.detail} (further ones summed up every "
                                  f"{self.summary_every:g} s)", event.peer)
            elif self.quiet and event.kind in PER_MESSAGE:
                return
            self.write(str(event))

    def tick(self) -> None:
        """Print the summary if one is due (the role's main loop calls this)."""
        with self._lock:
            self._summarize_if_due()

    def close(self) -> None:
        """Print what is left unsummed, so the counts a role printed add up when it stops."""
        with self._lock:
            self._summarize_if_due(now=True)

    def _summarize_if_due(self, now: bool = False) -> None:
        if self.clock() < self.summary_at and not now:
            return
        self.summary_at = self.clock() + self.summary_every
        for kind, more in sorted(self.unprinted.items()):
            self.write(f"summary: {more} more {kind} ({self.seen[kind]} in all)")
        self.unprinted.clear()
        self.in_window.clear()


TRACE_KEPT = 1000  # a role prints its events; it need not hold a workshop's worth of them
_logs: list[EventLog] = []


def tick_logs() -> None:
    """Print the summaries that are due (a role's main loop calls this)."""
    for log in _logs:
        log.tick()


def close_logs() -> None:
    """Print what is left unsummed, so the counts a stopping role printed add up."""
    for log in _logs:
        log.close()


def make_trace(args: argparse.Namespace) -> Trace:
    log = EventLog(quiet=args.quiet)
    _logs.append(log)
    return Trace(on_event=log, keep=TRACE_KEPT)


class LiveView(Protocol):
    """What `serve` shows while it waits: entered once, refreshed, exited."""

    def __enter__(self) -> LiveView: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def refresh(self) -> None: ...


class UsageError(Exception):
    """Options that are each valid but do not fit together; `main` prints one line."""


class Terminated(Exception):
    """SIGTERM arrived (raised in the main thread by the handler `on_signals` installs)."""


def exit_status(stop: BaseException) -> int:
    """The shell's convention: 128 + the signal's number."""
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


class StopSignals:
    """SIGINT and SIGTERM, noted for a role's main loop to see.

    The handler only appends to a list: one that set a `threading.Event` could deadlock
    when a second signal (a double Ctrl-C) lands while the main thread, inside that Event's
    `wait`, holds its lock. The loop checks the list between short sleeps instead.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, _: self.received.append(signum))

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s; True once a signal has arrived."""
        if not self.received:
            time.sleep(timeout)
        return bool(self.received)


def raise_on_signals() -> None:
    """Make SIGTERM raise `Terminated` in the main thread, and SIGINT KeyboardInterrupt even
    when the process started with SIGINT ignored (`&` in a script, nohup, some CI runners),
    so every role stops on both, as `StopSignals` does for the serving ones."""

    def handler(*_: object) -> None:
        raise Terminated

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


def _read_lines(lines: queue.SimpleQueue[str]) -> None:
    for line in sys.stdin:
        lines.put(line)


def serve(role_name: str, *actors: Actor, announce: Sequence[str] = (),
          farewell: Callable[[], str] | None = None,
          view: Callable[[], LiveView] | None = None,
          commands: Callable[[str], str | None] | None = None) -> int:
    """Print the `announce` lines, then keep started actors running until the first one ends
    (a crash), Ctrl-C or SIGTERM; then the `farewell` line (a worker's served count).
    `view` makes a live view (a terminal table) shown below the announced lines.
    `commands` carries out each line typed on standard input and returns what to print.

    The signal is only noted (`StopSignals`): raising inside a thread join can leave the
    thread looking finished while it still runs. The handlers are in place before the
    endpoints are announced, so a SIGTERM sent as soon as they appear is never lost.
    """
    signals = StopSignals()
    for line in announce:
        say(role_name, line)
    live = view().__enter__() if view is not None else None
    typed: queue.SimpleQueue[str] = queue.SimpleQueue()
    if commands is not None:
        threading.Thread(target=_read_lines, args=(typed,), daemon=True).start()
    try:
        while all(actor.running for actor in actors):
            tick_logs()
            while commands is not None and not typed.empty():
                if (answer := commands(typed.get())) is not None:
                    say(role_name, answer)
            if live is not None:
                live.refresh()
            if signals.wait(0.2):
                say(role_name, "stopping")
                break
    finally:
        if live is not None:
            live.__exit__(None, None, None)
        for actor in reversed(actors):
            actor.stop()
        close_logs()
        if farewell is not None:
            say(role_name, farewell())
    if any(getattr(actor, "crashed", False) for actor in actors):
        say(role_name, "crashed (an injected fault)", error=True)
        return 1
    return 0


def warn_about_reach(role_name: str, security: Security, *endpoints: str) -> None:
    """One warning line per endpoint open to the network that `--insecure` leaves open to
    anyone, and per one whose join line would name this machine's loopback (it found no
    network address), which no other machine can use."""
    for endpoint in endpoints:
        if is_loopback(endpoint):
            continue
        if security.mode == "insecure":
            say(role_name, f"warning: --insecure: {endpoint} lets anyone on the network "
                "connect, read and forge messages (fine for a trusted classroom LAN; "
                "--curve is the safe choice)", error=True)
        named = advertised(endpoint, security.advertise)
        if is_loopback(named):
            say(role_name, f"warning: {endpoint} is open to the network, but its join line "
                f"names {named}, which only this machine reaches (no network address found): "
                "give the address students reach with --advertise HOST", error=True)


def join_lines(security: Security | None = None, **lines: str) -> list[str]:
    """`join (clients): JOIN` (and `join (workers): JOIN`): what the instructor projects.
    With `security` the values are bound endpoints; without, join tokens made already (a
    Paranoid queue's workers line carries its heartbeat settings)."""
    return [f"join ({who}): {security.join(line) if security else line}"
            for who, line in lines.items()]


def warn_if_public(role_name: str, endpoint: str) -> None:
    """The relay's warning (it forwards bytes, so CURVE between its ends passes through it)."""
    if is_public(endpoint):
        say(role_name, f"listening on every interface ({endpoint}): anyone on the network "
            "can reach it (fine for a classroom LAN, never the default)", error=True)
