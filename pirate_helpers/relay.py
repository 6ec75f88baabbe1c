"""A relay for network faults: a partition, latency or a reset, with no root and no process killed.

Every fault so far lived in a process (a crash, a freeze, a dropped request). A network
partition is different: both processes run on, no TCP connection closes, and nothing on
either side notices unless something sends and waits for an answer (a heartbeat). `Relay`
sits between the two: it listens on 127.0.0.1 (a random port), and each connection made to
it is carried to `target` byte for byte. ZMTP needs nothing more: the relay never parses it.

- `cut()`: nothing passes either way, and nothing is closed. The relay goes on reading and
  *holds* every byte, in order, up to its bounds (below); then it stops reading and the
  sender's TCP buffers fill, as on a real dead link.
  `heal()` delivers what was held, as TCP retransmission would once the link came back. A
  connection made during a cut is accepted but carried to the target only when the cut
  heals; if its client gives up and closes it first, the target never hears of it (its SYN
  was lost). Nothing is discarded mid-stream: a gap in a TCP stream is not something a
  network does (it breaks ZMTP framing).
- `latency(s)`: each byte is delivered `s` seconds after it was read, order kept.
- `reset()`: every connection is closed at once with a TCP RST, both sides: what a rebooted
  router or a NAT that forgot its table does. Both peers see the error at once.

Bounded both ways: a direction of a connection is read only while the bytes read from it and
not yet written are under `hold_limit` (1 MiB), and all connections together under
`total_limit` (64 MiB); so it holds at most `hold_limit` + one read (64 KiB) a direction
and `total_limit` + one read in all, whether the bytes wait for a heal, for their latency,
or for a peer that stopped reading. Past a bound the relay stops reading that side (counted
in `paused`): backpressure, as a slow reader on a real link would exert, never growth.
Out of file descriptors (EMFILE), it stops accepting for a moment (counted in
`accept_failures`), serves the connections it has and accepts again once some close.

What it is not: a network. The relay is a TCP endpoint of its own: it accepts each
connection and acknowledges every byte itself. So under a cut a connect still completes
(across a real partition it never does: the SYN goes unanswered), and the sender's TCP
never retransmits and never gives up (across a real partition Linux retransmits what is
unacknowledged and drops the connection after `net.ipv4.tcp_retries2` tries, about 15
minutes by default). What it shows truly is what the peers' *applications* see: silence,
then everything at once. Lesson 08 puts it beside a real partition (a link taken down
between two network namespaces).

The timing decisions (when a chunk of bytes is due, nothing being due while cut) are the
pure `Link`, one per direction of each connection; `Relay` is the socket loop around it.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .actor import Actor
from .trace import Trace

LOCAL_LISTEN = "tcp://127.0.0.1:*"
HOLD_LIMIT_BYTES = 1 << 20  # read and not yet written, a direction of a connection
TOTAL_LIMIT_BYTES = 64 << 20  # read and not yet written, all connections both ways
READ_BYTES = 65536
ACCEPT_RETRY_S = 0.5  # out of file descriptors: how soon to try accepting again
COMMAND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 1.0
SEND_RETRY_S = 0.005  # how soon to try again when a peer's receive buffer is full


def parse_tcp(endpoint: str) -> tuple[str, int]:
    """`tcp://host:port` as (host, port); a port `*` is 0 (the OS picks)."""
    if not endpoint.startswith("tcp://"):
        raise ValueError(f"the relay carries TCP only, not {endpoint!r}")
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    if not host or not port:
        raise ValueError(f"expected tcp://host:port, not {endpoint!r}")
    return host.strip("[]"), 0 if port == "*" else int(port)


# -- the decisions ------------------------------------------------------------------------
@dataclass
class Link:
    """Bytes in flight one way along one connection, in the order they were read.

    Each chunk read at `now` is due at `now + latency`, but never before the chunk read
    before it (a stream keeps its order even when the latency drops). While the relay is cut
    nothing is due; when it heals, everything overdue is due at once. `end()` marks the
    sender's close, due after its last bytes.
    """

    chunks: deque[tuple[float, bytes]] = field(default_factory=deque)
    held: int = 0
    ended: bool = False

    def push(self, data: bytes, now: float, latency: float) -> None:
        due_at = now + latency
        if self.chunks:
            due_at = max(due_at, self.chunks[-1][0])
        self.chunks.append((due_at, data))
        self.held += len(data)

    def end(self, now: float, latency: float) -> None:
        """The sender closed its side: pass that on once everything before it is out."""
        self.push(b"", now, latency)
        self.ended = True

    def take_due(self, now: float, cut: bool) -> tuple[bytes, bool]:
        """The bytes due by `now`, joined (a stream has no message boundaries), and whether
        the sender's close is due too."""
        if cut:
            return b"", False
        parts, closed = [], False
        while self.chunks and self.chunks[0][0] <= now:
            _, data = self.chunks.popleft()
            self.held -= len(data)
            closed = closed or not data
            parts.append(data)
        return b"".join(parts), closed

    def next_due(self, cut: bool) -> float | None:
        """When `take_due` next has something, None if never without more input."""
        if cut or not self.chunks:
            return None
        return self.chunks[0][0]



# -- the socket loop ----------------------------------------------------------------------
@dataclass
class _Pair:
    """One relayed connection: the client's socket, the target's (None until carried), and
    what is in flight each way with what was released but not yet written.

    `paused` names the directions ("up", "down") not read now because their bytes are at
    the bound: each pause is counted once, when it begins."""

    number: int
    client: socket.socket
    target: socket.socket | None = None
    upstream: Link = field(default_factory=Link)  # client -> target
    downstream: Link = field(default_factory=Link)  # target -> client
    to_target: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    closing: set[str] = field(default_factory=set)  # "client", "target": close once written
    paused: set[str] = field(default_factory=set)

    def unwritten(self, way: str) -> int:
        """Bytes read one way and not yet written: held in the link or released."""
        if way == "up":
            return self.upstream.held + len(self.to_target)
        return self.downstream.held + len(self.to_client)


class Relay(Actor):
    """Carry TCP connections from `endpoint` (reported after `start()`) to `target`.

    Steer it from any thread with `cut()`, `heal()`, `latency(seconds)` and `reset()`; each
    returns once the relay's thread has applied it, so the trace's "cut" is the moment the
    bytes stopped. `connections` counts connections carried now; `carried` counts all;
    `buffered` is what it holds now (read, not yet written), `paused` how many times a side
    was left unread because its bytes reached a bound, `accept_failures` how many accepts
    failed for want of file descriptors.
    """

    def __init__(
        self,
        target: str,
        name: str = "relay",
        *,
        listen: str = LOCAL_LISTEN,
        latency: float = 0.0,
        hold_limit: int = HOLD_LIMIT_BYTES,
        total_limit: int = TOTAL_LIMIT_BYTES,
        trace: Trace | None = None,
    ) -> None:
        if hold_limit < 1 or total_limit < 1:
            raise ValueError(f"the relay's bounds are bytes >= 1, not {hold_limit}, {total_limit}")
        super().__init__(name, trace)
        self.target = target
        self.target_address = parse_tcp(target)
        self.listen_address = parse_tcp(listen)
        self.hold_limit, self.total_limit = hold_limit, total_limit
        self.is_cut = False
        self.latency_s = latency
        self.endpoint = ""
        self.connections = self.carried = self.refused = 0
        self.bytes_up = self.bytes_down = 0  # delivered to the target, to the clients
        self.buffered = self.paused = self.accept_failures = 0
        self._accept_again_at = 0.0  # out of descriptors: the listener rests until then
        self._pairs: list[_Pair] = []
        self._numbers = itertools.count(1)
        self._commands: list[tuple[str, float]] = []
        self._commands_lock = threading.Lock()
        self._asked = self._applied = 0
        self._listener: socket.socket | None = None
        self._wake_in: socket.socket | None = None
        self._wake_out: socket.socket | None = None

    # -- the caller's side ----------------------------------------------------------------
    def cut(self) -> None:
        """Stop carrying bytes both ways; every connection stays open."""
        self._command("cut")

    def heal(self) -> None:
        """Carry bytes again, what was held first."""
        self._command("heal")

    def latency(self, seconds: float) -> None:
        """Deliver each byte `seconds` after it is read, from now on."""
        if not seconds >= 0:
            raise ValueError(f"latency is seconds >= 0, not {seconds}")
        self._command("latency", seconds)

    def reset(self) -> None:
        """Close every connection now with a TCP RST on both sides (the cut, if any, stays)."""
        self._command("reset")

    def _command(self, what: str, value: float = 0.0, timeout: float = COMMAND_TIMEOUT_S) -> None:
        wake = self._wake_in
        if not self.running or wake is None:
            raise RuntimeError(f"{self.name} is not running: start() it first")
        with self._commands_lock:
            self._commands.append((what, value))
            self._asked += 1
            number = self._asked
        try:
            wake.send(b"!")
        except OSError:  # full (a wake-up waits already), or the thread is ending
            pass
        if not self.wait_until(lambda: self._applied >= number or not self.running, timeout):
            raise TimeoutError(f"{self.name} did not {what} within {timeout} s")
        if self._applied < number:
            self.stop()  # re-raises what ended the thread
            raise RuntimeError(f"{self.name} ended before it could {what}")

    # -- the thread's side ----------------------------------------------------------------
    def setup(self) -> None:
        self._wake_out, self._wake_in = socket.socketpair()
        self._wake_out.setblocking(False)
        self._wake_in.setblocking(False)  # a wake-up already waiting is enough
        listener = self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self.listen_address)
        listener.listen(64)
        listener.setblocking(False)
        host, port = listener.getsockname()[:2]
        self.endpoint = f"tcp://{host}:{port}"
        self.trace.name_endpoint(self.endpoint, self.trace.who(self.target))

    def run(self) -> None:
        try:
            while True:
                now = time.monotonic()
                for pair in list(self._pairs):
                    self._release(pair, now)
                readable = self.poll(self._watched(now), self._timeout(now))
                self._on_readable(readable, time.monotonic())
        finally:
            for pair in list(self._pairs):
                self._drop(pair, abort=True)
            for sock in (self._listener, self._wake_out, self._wake_in):
                if sock is not None:
                    self.unwatch(sock)
                    sock.close()
            self._listener = self._wake_out = self._wake_in = None

    def _watched(self, now: float) -> list[socket.socket]:
        watched = [self._wake_out]
        if now >= self._accept_again_at:
            watched.append(self._listener)
        for pair in self._pairs:
            if "client" not in pair.closing and not pair.upstream.ended \
                    and self._may_read(pair, "up"):
                watched.append(pair.client)
            if pair.target is not None and "target" not in pair.closing \
                    and not pair.downstream.ended and self._may_read(pair, "down"):
                watched.append(pair.target)
        return watched

    def _may_read(self, pair: _Pair, way: str) -> bool:
        """Under both bounds; a pause that begins here is counted (and traced) once."""
        if pair.unwritten(way) < self.hold_limit and self.buffered < self.total_limit:
            pair.paused.discard(way)
            return True
        if way not in pair.paused:
            pair.paused.add(way)
            self.paused += 1
            bound = "its bound" if pair.unwritten(way) >= self.hold_limit else "the total bound"
            side = "client" if way == "up" else "target"
            self.trace.add(self.name, "backpressure", f"#{pair.number}: {side} no longer read, "
                           f"{pair.unwritten(way)} byte(s) unwritten ({bound})")
        return False

    def _timeout(self, now: float) -> float | None:
        wakeups = [self._accept_again_at] if now < self._accept_again_at else []
        for pair in self._pairs:
            if pair.to_target or pair.to_client:
                wakeups.append(now + SEND_RETRY_S)
            for link in (pair.upstream, pair.downstream):
                due = link.next_due(self.is_cut)
                if due is not None:
                    wakeups.append(due)
        return None if not wakeups else max(0.0, min(wakeups) - now)

    def _on_readable(self, readable: set, now: float) -> None:
        # zmq's poller reports a plain socket by its file descriptor
        assert self._wake_out is not None and self._listener is not None
        if self._wake_out.fileno() in readable:
            self._apply_commands(now)
        if self._listener.fileno() in readable:
            self._accept(now)
        for pair in list(self._pairs):  # the total bound is checked again before each read
            if pair.client.fileno() in readable and self._may_read(pair, "up"):
                self._read(pair, pair.client, pair.upstream, now)
            if pair in self._pairs and pair.target is not None \
                    and pair.target.fileno() in readable and self._may_read(pair, "down"):
                self._read(pair, pair.target, pair.downstream, now)

    def _apply_commands(self, now: float) -> None:
        assert self._wake_out is not None
        try:
            while self._wake_out.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._commands_lock:
            commands, self._commands = self._commands, []
        for what, value in commands:
            if what == "cut":
                self.is_cut = True
                self.trace.add(self.name, "cut", f"{self.connections} connection(s) kept open")
            elif what == "heal" and self.is_cut:
                self._accept(now)  # what waits to be accepted or read is known first:
                for pair in [p for p in self._pairs if p.target is None]:
                    while self._may_read(pair, "up") and \
                            self._read(pair, pair.client, pair.upstream, now):
                        pass  # a client that gave up during the cut is never carried
                self.is_cut = False
                self.trace.add(self.name, "heal", f"{self.buffered} byte(s) held, delivered now")
                for pair in [p for p in self._pairs if p.target is None]:
                    self._carry(pair)
            elif what == "latency":
                self.latency_s = value
                self.trace.add(self.name, "latency", f"{value * 1000:g} ms")
            elif what == "reset":
                count = len(self._pairs)
                for pair in list(self._pairs):
                    self._drop(pair, abort=True)
                self.trace.add(self.name, "reset", f"{count} connection(s) reset")
        with self.changes:
            self._applied += len(commands)
            self.changes.notify_all()

    def _accept(self, now: float) -> None:
        assert self._listener is not None
        while now >= self._accept_again_at:
            try:
                client, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                self._out_of_descriptors(now, error)
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(next(self._numbers), client)
            self._pairs.append(pair)
            if not self.is_cut:
                self._carry(pair)

    def _carry(self, pair: _Pair) -> None:
        """Connect the pair to the target; refused, the client's connection is reset (as
        when nobody listens), unless it closed already (it never reaches the target)."""
        if pair.upstream.ended:
            self._drop(pair, abort=False)
            return
        try:
            target = socket.create_connection(self.target_address, CONNECT_TIMEOUT_S)
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                self._drop(pair, abort=True)  # its client is reset, as if nobody listened
                self._out_of_descriptors(time.monotonic(), error)
                return
            self.refused += 1
            self.trace.add(self.name, "refused", f"{self.target}: {error.strerror or error}")
            self._drop(pair, abort=True)
            return
        target.setblocking(False)
        target.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair.target = target
        self.carried += 1
        with self.changes:
            self.connections += 1
            self.changes.notify_all()
        self.trace.add(self.name, "connection", f"#{pair.number} carried to {self.target}")

    def _out_of_descriptors(self, now: float, error: OSError) -> None:
        """Counted and traced (a rate-limited kind); the listener rests `ACCEPT_RETRY_S`, or
        until a connection closes, and the connections it has are served meanwhile."""
        self.accept_failures += 1
        self._accept_again_at = now + ACCEPT_RETRY_S
        self.trace.add(self.name, "accept-failed", f"{error.strerror or error}: serving the "
                       f"{len(self._pairs)} connection(s) it has, accepting again once some "
                       "close")

    def _read(self, pair: _Pair, sock: socket.socket, link: Link, now: float) -> bool:
        """Read once into `link`; True if bytes came (there may be more)."""
        try:
            data = sock.recv(READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:  # reset by that peer: reset the other side too, as a router would
            self._drop(pair, abort=True)
            return False
        if data:
            link.push(data, now, self.latency_s)
            self.buffered += len(data)
            return True
        link.end(now, self.latency_s)
        return False

    def _release(self, pair: _Pair, now: float) -> None:
        """Write what is due, and close a side whose peer's close is due."""
        if pair.target is not None:
            data, closed = pair.upstream.take_due(now, self.is_cut)
            pair.to_target += data
            if closed:
                pair.closing.add("target")
            data, closed = pair.downstream.take_due(now, self.is_cut)
            pair.to_client += data
            if closed:
                pair.closing.add("client")
            if not self._write(pair, pair.target, pair.to_target, "up"):
                return
        if not self._write(pair, pair.client, pair.to_client, "down"):
            return
        if ("target" in pair.closing and not pair.to_target) or \
                ("client" in pair.closing and not pair.to_client):
            self._drop(pair, abort=False)

    def _write(self, pair: _Pair, sock: socket.socket, buffer: bytearray, way: str) -> bool:
        """Write as much of `buffer` as the peer takes; False if the pair was dropped."""
        if not buffer:
            return True
        try:
            sent = sock.send(buffer)
        except BlockingIOError:
            return True
        except OSError:
            self._drop(pair, abort=True)
            return False
        del buffer[:sent]
        self.buffered -= sent
        if way == "up":
            self.bytes_up += sent
        else:
            self.bytes_down += sent
        return True

    def _drop(self, pair: _Pair, *, abort: bool) -> None:
        """Close both sides of a pair; `abort` sends a RST instead of a FIN."""
        if pair not in self._pairs:
            return
        self._pairs.remove(pair)
        self.buffered -= pair.unwritten("up") + pair.unwritten("down")
        self._accept_again_at = 0.0  # a descriptor or two are free again
        for sock in (pair.client, pair.target):
            if sock is None:
                continue
            self.unwatch(sock)
            if abort:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        if pair.target is not None:
            with self.changes:
                self.connections -= 1
                self.changes.notify_all()
            self.trace.add(self.name, "closed", f"#{pair.number} {'reset' if abort else 'closed'}")
