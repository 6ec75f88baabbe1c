"""Titanic (RFC 9, TSP over MDP/0.1): requests stored on disk, so they outlive every process.

A client gives Titanic a request (`titanic.request [service, body...]`) and gets back a UUID
at once (`200 uuid`): the request is on disk first. Titanic then dispatches it in the
background, as an ordinary Majordomo client, and stores the reply. The client comes back
whenever it likes for the reply (`titanic.reply [uuid]`: `200` + reply, `300` pending, `400`
unknown, `500` retry later) and finally deletes it (`titanic.close [uuid]`: always `200`).
Workers need no change: Titanic is a worker to clients and a client to workers.

- The store is SQLite (one file, WAL, `synchronous=FULL`): a request is committed before
  `200` goes back, a reply before the request counts as done; a restart on the same file
  picks up exactly where it stopped. At most `max_stored` requests are kept: past that,
  `500` and a warning.
- A stored request is sent only when `mmi.service` says `200` (a worker offers it now), so
  nothing piles up in the broker while no worker exists. It is executed twice only when a
  process dies between sending it and storing its reply: make such services idempotent
  (`ReplyCache`).
- Decisions are `Dispatcher`'s (what to send next, what a reply means, when to retry):
  messages and `now` in, steps out. `Titanic` is the thin socket loop around it and the store.
- Malformed TSP requests get a status (`400`), never a crash.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
import uuid as uuids
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

import zmq

from .actor import Actor, ActorStopped
from .endpoints import receive
from .majordomo.protocol import DISCONNECT, HEARTBEAT, MDPC, MDPW, READY, REPLY, REQUEST
from .paranoid import WorkerLiveness
from .security import Join
from .trace import Trace, show_bytes

REQUEST_SERVICE, REPLY_SERVICE, CLOSE_SERVICE = b"titanic.request", b"titanic.reply", \
    b"titanic.close"
SERVICES = (REQUEST_SERVICE, REPLY_SERVICE, CLOSE_SERVICE)
OK, PENDING, UNKNOWN, ERROR = b"200", b"300", b"400", b"500"
MAX_STORED = 10_000  # requests kept at once; past it titanic.request answers 500
MAX_BODY_FRAMES = 56  # so a request, and a reply with its status, fit every hop's 64 frames
MAX_REQUEST_BYTES = 1 << 20  # a stored request's body, in all
SCHEMA_VERSION = 1
_connections = count(1)


def status(reply: list[bytes]) -> bytes:
    """A TSP status frame is three digits, maybe followed by a space and text to ignore."""
    return reply[0][:3] if reply else b""


def is_uuid(frame: bytes) -> bool:
    """32 hexadecimal characters (RFC 9); either case, as the Guide's C Titanic writes capitals."""
    return len(frame) == 32 and all(c in b"0123456789abcdefABCDEF" for c in frame)


# -- the store ------------------------------------------------------------------------------
class StoreError(Exception):
    """The store file cannot be used (damaged, truncated, not a Titanic store): one line."""


def pack(frames: list[bytes]) -> bytes:
    """Frames as one blob: each a 4-byte length, then its bytes (no pickle: data, not code)."""
    return b"".join(struct.pack(">I", len(f)) + f for f in frames)


def unpack(blob: bytes) -> list[bytes]:
    frames, at = [], 0
    while at < len(blob):
        (size,) = struct.unpack_from(">I", blob, at)
        frames.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return frames


class TitanicStore:
    """Requests and replies in one SQLite file. Every change is committed before it returns:
    with `synchronous="FULL"` (the default) it is on disk when the call returns."""

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous is OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            check = self.db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            self.db.execute("CREATE TABLE IF NOT EXISTS requests (uuid TEXT PRIMARY KEY, "
                            "service BLOB NOT NULL, body BLOB NOT NULL, reply BLOB)")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, "
                                            f"expected {SCHEMA_VERSION}")
            self.db.execute("SELECT uuid, service, body, reply FROM requests LIMIT 1")
        except sqlite3.Error as error:
            if hasattr(self, "db"):
                self.db.close()
            raise StoreError(f"{path}: not a usable Titanic store ({error})") from None

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM requests").fetchone()[0]

    def add(self, uuid: str, service: bytes, body: list[bytes]) -> None:
        self.db.execute("INSERT INTO requests (uuid, service, body) VALUES (?, ?, ?)",
                        (uuid, service, pack(body)))

    def request(self, uuid: str) -> tuple[bytes, list[bytes]] | None:
        row = self.db.execute("SELECT service, body FROM requests WHERE uuid = ?",
                              (uuid,)).fetchone()
        return None if row is None else (row[0], unpack(row[1]))

    def reply(self, uuid: str) -> list[bytes] | None | bool:
        """The stored reply; None while pending; False for an unknown UUID."""
        row = self.db.execute("SELECT reply FROM requests WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            return False
        return None if row[0] is None else unpack(row[0])

    def store_reply(self, uuid: str, reply: list[bytes]) -> bool:
        """Keep `reply`; False if the request was closed meanwhile (nothing to keep it for)."""
        done = self.db.execute("UPDATE requests SET reply = ? WHERE uuid = ?",
                               (pack(reply), uuid))
        return done.rowcount == 1

    def close_request(self, uuid: str) -> None:
        self.db.execute("DELETE FROM requests WHERE uuid = ?", (uuid,))

    def pending(self) -> list[tuple[str, bytes]]:
        """(uuid, service) of each request without a reply, oldest first."""
        return self.db.execute("SELECT uuid, service FROM requests WHERE reply IS NULL "
                               "ORDER BY rowid").fetchall()

    def close(self) -> None:
        self.db.close()


# -- the decisions --------------------------------------------------------------------------
@dataclass
class Step:
    """What the socket loop does next: ask MMI about `service`, send the stored request
    `uuid`, or give up waiting (`timeout`: throw the REQ socket away, a fresh one next)."""

    action: str  # "ask", "send", "timeout", or "done" (store the reply)
    uuid: str
    service: bytes


@dataclass
class Dispatcher:
    """Which stored request goes next, and when; one at a time, oldest first.

    For each: ask `mmi.service`; on `200` send it, on anything else wait `retry_after` before
    asking about that service again. No answer within `timeout` (the broker died, or the
    worker did): the service waits `retry_after`, then the same request goes again.
    """

    timeout: float = 2.0
    retry_after: float = 0.5
    pending: dict[bytes, OrderedDict[str, int]] = field(default_factory=dict)
    not_before: dict[bytes, float] = field(default_factory=dict)
    busy: Step | None = None
    deadline: float = 0.0
    order: int = 0
    asked = sent = refused = timeouts = done = 0

    def add(self, uuid: str, service: bytes) -> None:
        self.order += 1
        self.pending.setdefault(service, OrderedDict())[uuid] = self.order

    def remove(self, uuid: str) -> None:
        """Closed by its client: never send it (again)."""
        for queue in self.pending.values():
            queue.pop(uuid, None)

    def waiting(self) -> int:
        return sum(len(queue) for queue in self.pending.values())

    def next_step(self, now: float) -> Step | None:
        if self.busy is not None:
            if now < self.deadline:
                return None
            step, self.busy = self.busy, None
            self.timeouts += 1
            self.not_before[step.service] = now + self.retry_after
            return Step("timeout", step.uuid, step.service)
        heads = [(next(iter(queue.values())), service) for service, queue in self.pending.items()
                 if queue and self.not_before.get(service, 0.0) <= now]
        if not heads:
            return None
        _, service = min(heads)
        uuid = next(iter(self.pending[service]))
        return self._start(Step("ask", uuid, service), now)

    def _start(self, step: Step, now: float) -> Step:
        self.busy, self.deadline = step, now + self.timeout
        if step.action == "ask":
            self.asked += 1
        else:
            self.sent += 1
        return step

    def on_reply(self, reply: list[bytes], now: float) -> Step | None:
        """A reply on the REQ: MMI's answer (then maybe `send`), or the service's reply (then
        the caller stores it and the request is done). Anything else is ignored."""
        step = self.busy
        if step is None or len(reply) < 2 or reply[0] != MDPC:
            return None
        if step.action == "ask" and reply[1] == b"mmi.service":
            self.busy = None
            if step.uuid not in self.pending.get(step.service, ()):
                return None  # closed while we asked: nothing to send, nobody to blame
            if reply[2:] == [OK]:
                return self._start(Step("send", step.uuid, step.service), now)
            self.refused += 1
            self.not_before[step.service] = now + self.retry_after
            return None
        if step.action == "send" and reply[1] == step.service:
            self.busy = None
            self.done += 1
            self.pending[step.service].pop(step.uuid, None)
            return Step("done", step.uuid, step.service)
        return None

    def next_wakeup(self, now: float) -> float:
        if self.busy is not None:
            return self.deadline
        times = [self.not_before.get(s, 0.0) for s, queue in self.pending.items() if queue]
        return max(now, min(times)) if times else now + 3600


def answer(service: bytes, body: list[bytes], store: TitanicStore,
           make_uuid: Callable[[], str], *, max_stored: int = MAX_STORED,
           max_request_bytes: int = MAX_REQUEST_BYTES) -> tuple[list[bytes], str, str]:
    """A TSP request in, its answer out, with what happened (a trace kind and detail).
    The store is written before the answer is returned: `200` means on disk."""
    if service == REQUEST_SERVICE:
        if not body or not body[0] or body[0].startswith(b"mmi.") or body[0] in SERVICES:
            return [UNKNOWN + b" no service named"], "reject", "titanic.request without a service"
        if len(body) - 1 > MAX_BODY_FRAMES or sum(map(len, body)) > max_request_bytes:
            return [UNKNOWN + b" request too large"], "reject", "titanic.request too large"
        if len(store) >= max_stored:
            return [ERROR + b" store full"], "warning", (f"store full ({max_stored} requests): "
                                                         "refused with 500")
        uuid = make_uuid()
        store.add(uuid, body[0], body[1:])
        return [OK, uuid.encode()], "kept", f"{uuid} {body[0].decode(errors='replace')} " \
            f"{show_bytes(body[1:])}"
    if len(body) != 1 or not is_uuid(body[0]):
        return [UNKNOWN + b" expected one UUID"], "reject", f"{service.decode()} without a UUID"
    uuid = body[0].decode().lower()
    if service == CLOSE_SERVICE:
        store.close_request(uuid)
        return [OK], "close", uuid
    reply = store.reply(uuid)
    if reply is False:
        return [UNKNOWN], "recv", f"reply {uuid}: unknown"
    if reply is None:
        return [PENDING], "recv", f"reply {uuid}: pending"
    if len(reply) > MAX_BODY_FRAMES + 1:
        return [ERROR + b" reply too large to return"], "reject", f"reply {uuid} too large"
    return [OK, *reply], "recv", f"reply {uuid}: done"


# -- the socket loop ------------------------------------------------------------------------
class Titanic(Actor):
    """The three TSP services (one MDP worker connection each) and the dispatcher (an MDP
    client), in one thread that owns the store.

    Each service connection heartbeats and reconnects as a Majordomo worker does
    (`WorkerLiveness`); the dispatcher's REQ is thrown away after a timeout (Lazy Pirate).
    """

    def __init__(
        self,
        name: str = "titanic",
        *,
        connect: str,
        store: str,
        heartbeat_interval: float = 0.1,
        liveness: int = 3,
        reconnect_min: float = 0.1,
        reconnect_max: float = 1.0,
        dispatch_timeout: float = 2.0,
        retry_after: float = 0.2,
        max_stored: int = MAX_STORED,
        synchronous: str = "FULL",
        make_uuid: Callable[[], str] = lambda: uuids.uuid4().hex,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.join_token = Join.parse(connect)
        self.store_path, self.synchronous = store, synchronous
        self.timing = (heartbeat_interval, liveness, reconnect_min, reconnect_max)
        self.dispatcher = Dispatcher(dispatch_timeout, retry_after)
        self.max_stored = max_stored
        self.make_uuid = make_uuid
        self.store: TitanicStore | None = None
        self.connections: dict[bytes, zmq.Socket | None] = {}
        self.liveness = {s: WorkerLiveness(*self.timing) for s in SERVICES}
        self.reconnects = 0
        self.stored = self.answered = self.rejected = self.refused_full = 0
        self.req: zmq.Socket | None = None

    def setup(self) -> None:
        self.store = TitanicStore(self.store_path, synchronous=self.synchronous)
        self.cleanups.append(self.store.close)
        for uuid, service in self.store.pending():
            self.dispatcher.add(uuid, service)
        if self.dispatcher.waiting():
            self.trace.add(self.name, "resume", f"{self.dispatcher.waiting()} stored "
                           "requests still to dispatch")
        now = time.monotonic()
        for service in SERVICES:
            self._connect(service, now)

    def _connect(self, service: bytes, now: float) -> None:
        dealer = self.socket(zmq.DEALER)
        # unique per connection, also across restarts in one process (a notebook's)
        dealer.identity = f"{self.name}.{service.decode()}.{os.getpid()}.{next(_connections)}" \
            .encode()
        self.join_token.connect(dealer)
        dealer.send_multipart([b"", MDPW, READY, service], zmq.NOBLOCK)
        self.connections[service] = dealer
        self.liveness[service].on_connect(now)

    def _fresh_req(self) -> zmq.Socket:
        if self.req is not None:
            self.close(self.req)
        self.req = self.socket(zmq.REQ)
        self.join_token.connect(self.req)
        return self.req

    def run(self) -> None:
        try:
            self._serve_forever()
        except ActorStopped:  # say DISCONNECT, so the broker forgets these services at once
            for dealer in self.connections.values():
                if dealer is not None:
                    dealer.linger = 100
                    self._send(dealer, [b"", MDPW, DISCONNECT])
            raise

    def _serve_forever(self) -> None:
        self._fresh_req()
        while True:
            now = time.monotonic()
            self._keep_connections(now)
            self._dispatch(self.dispatcher.next_step(now))
            wakeups = [self.dispatcher.next_wakeup(now),
                       *(live.next_wakeup() for live in self.liveness.values())]
            sockets = [s for s in self.connections.values() if s is not None]
            readable = self.poll([*sockets, self.req], max(0.0, min(wakeups) - now))
            now = time.monotonic()
            for service, dealer in list(self.connections.items()):
                if dealer in readable:
                    self._serve(service, dealer, now)
            if self.req in readable:
                self._dispatched(now)
            with self.changes:  # a caller may be waiting for what just changed
                self.changes.notify_all()

    def _keep_connections(self, now: float) -> None:
        for service, live in self.liveness.items():
            while (action := live.tick(now)) is not None:
                dealer = self.connections.get(service)
                if action == "heartbeat" and dealer is not None:
                    self._send(dealer, [b"", MDPW, HEARTBEAT])
                elif action == "disconnect" and dealer is not None:
                    self.close(dealer)
                    self.connections[service] = None
                    self.trace.add(self.name, "backoff", f"{service.decode()}: broker silent")
                elif action == "reconnect":
                    self.reconnects += 1
                    self._connect(service, now)
                    self.trace.add(self.name, "reconnect", f"{service.decode()} READY again")

    def _send(self, sock: zmq.Socket, message: list[bytes]) -> None:
        """Never blocks: no broker connected, or one that stopped reading, costs a message
        (heartbeats and retries cover it), counted in `unsent`."""
        self.send_or_count(sock, message, "drop", "broker not taking messages ({} dropped)")

    def _serve(self, service: bytes, dealer: zmq.Socket, now: float) -> None:
        message = receive(dealer)
        live = self.liveness[service]
        if message == [b"", MDPW, DISCONNECT]:
            live.connected, live.reconnect_at = False, now + live.backoff
            self.close(dealer)
            self.connections[service] = None
            return
        live.on_message(now)
        if message is None or message[:3] != [b"", MDPW, REQUEST] or len(message) < 5 \
                or message[4] != b"":
            if message != [b"", MDPW, HEARTBEAT]:
                self.rejected += 1
                self.trace.add(self.name, "reject", "not an MDP request")
            return
        client, body = message[3], message[5:]
        assert self.store is not None
        try:
            reply, kind, detail = answer(service, body, self.store, self.make_uuid,
                                         max_stored=self.max_stored)
        except sqlite3.Error as error:  # a full disk, say: the client retries later (RFC 9)
            reply, kind, detail = [ERROR + b" store failed"], "warning", f"store: {error}"
        if kind == "kept":
            self.stored += 1
            uuid = reply[1].decode()
            self.dispatcher.add(uuid, body[0])
        elif kind == "close":
            self.dispatcher.remove(detail)
        elif kind == "reject":
            self.rejected += 1
        elif kind == "warning" and reply[0].startswith(ERROR + b" store full"):
            self.refused_full += 1
        self.trace.add(self.name, kind, detail)
        self._send(dealer, [b"", MDPW, REPLY, client, b"", *reply])

    def _dispatch(self, step: Step | None) -> None:
        assert self.req is not None and self.store is not None
        if step is None:
            return
        if step.action == "timeout":
            self.trace.add(self.name, "timeout", f"{step.uuid}: no answer; again later")
            self._fresh_req()
        elif step.action == "ask":
            self._send(self.req, [MDPC, b"mmi.service", step.service])
        else:
            stored = self.store.request(step.uuid)
            if stored is None:  # closed meanwhile
                self.dispatcher.remove(step.uuid)
                self.dispatcher.busy = None
                return
            self.trace.add(self.name, "send", f"{step.uuid} {show_bytes(stored[1])}",
                           peer=self.trace.who(self.join_token.endpoint))
            self._send(self.req, [MDPC, stored[0], *stored[1]])

    def _dispatched(self, now: float) -> None:
        assert self.req is not None and self.store is not None
        try:
            reply = receive(self.req)
        except zmq.Again:
            return
        if reply is None:
            return
        step = self.dispatcher.on_reply(reply, now)
        if step is None:
            return
        if step.action != "done":
            self._dispatch(step)
        elif self.store.store_reply(step.uuid, reply[2:]):  # on disk, then done
            self.answered += 1
            self.trace.add(self.name, "stored", f"{step.uuid} {show_bytes(reply[2:])}")


# -- the cure for the one duplicate Titanic cannot avoid ------------------------------------
class ReplyCache:
    """An idempotent service: requests carry `[client id, sequence, body...]`; a repeat of a
    client's last sequence is answered from the cache, not executed again. Wrap a worker's
    handler: `MajordomoWorker(handler=ReplyCache(handler))`. Keeps `max_clients` at most."""

    def __init__(self, handler: Callable[[list[bytes]], list[bytes]],
                 max_clients: int = 10_000) -> None:
        self.handler, self.max_clients = handler, max_clients
        self.last: OrderedDict[bytes, tuple[bytes, list[bytes]]] = OrderedDict()
        self.executed = self.repeats = 0

    def __call__(self, body: list[bytes]) -> list[bytes]:
        if len(body) < 2:
            return self.handler(body)
        client, sequence = body[0], body[1]
        cached = self.last.get(client)
        if cached is not None and cached[0] == sequence:
            self.repeats += 1
            return cached[1]
        self.executed += 1
        reply = self.handler(body)
        self.last[client] = (sequence, reply)
        self.last.move_to_end(client)
        while len(self.last) > self.max_clients:
            self.last.popitem(last=False)
        return reply
