"""Who may reach a serving socket, and the one line that tells a student how to join it.

Loopback is the default everywhere: nothing off this machine can connect. Anything else is a
classroom, and a classroom is either CURVE (standard ZeroMQ encryption and authentication, via
pyzmq's `zmq.auth`, so a learner's own socket that sets `curve_serverkey` can join) or an
explicit, warned `insecure` opt-in. `Security` holds that choice for a server; every serving
socket is set up by `Security.bind` and every connecting one by `Join.connect`, here and
nowhere else.

A join token is what the instructor projects and a student pastes: `tcp://HOST:PORT`, and with
CURVE `/` plus the server's public key as 64 hex digits (hex, not Z85: Z85 has characters such
as `&`, `<`, `|` and `^` that bash, PowerShell and cmd would each interpret). A queue that
heartbeats adds its settings, `/heartbeat-1000ms-liveness-3`, so a worker started with the
join line alone runs at the queue's pace (letters, digits and `-` only: no shell treats them).

A wrong key looks exactly like a dead server to the peer (CURVE never answers a handshake it
cannot decrypt), so the serving side counts failed handshakes from socket monitor events
(`ConnectionWatch`): a rising count with no replies means "wrong key", a flat one "no route".
"""

from __future__ import annotations

import binascii
import dataclasses
import fcntl
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from .endpoints import bind_when_free, connect
from .trace import Trace

Mode = Literal["loopback", "insecure", "curve"]

WRONG_KEY = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
"""A ZeroMQ peer that spoke its part of the handshake and failed it: a wrong server key
(a cryptographic error), no key on a CURVE socket (mechanism mismatch), or a key that
`--allow` does not admit (ZAP said no)."""

CLOSED_EARLY = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
"""A connection that closed before its handshake ended (libzmq 4.3.5 on a CURVE socket):
a bare TCP connect and close, a port scan, a peer that gave up; now and then a peer with no
key that hung up first on seeing CURVE's greeting. Never a wrong key: the server finds that
itself when it cannot decrypt the peer's HELLO (a protocol error)."""

HANDSHAKE_FAILURES = WRONG_KEY | CLOSED_EARLY
"""Monitor events of a peer that connected but could not complete the handshake."""

KEY_HEX_DIGITS = 64
SETTINGS = re.compile(r"heartbeat-(\d+(?:\.\d+)?)ms-liveness-(\d+)")
"""The last part of a heartbeating queue's join line: its interval and liveness."""


class OpenToNetwork(ValueError):
    """A bind off loopback without CURVE or an explicit insecure opt-in."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"{endpoint} is reachable from other machines: give --curve "
                         "(encrypted, only holders of the join line get in) or --insecure "
                         "(anyone on the network can join)")
        self.endpoint = endpoint


# -- endpoints: loopback or not, and the host a student types ------------------------------
def _host_of(endpoint: str) -> tuple[str, str, str]:
    transport, _, address = endpoint.partition("://")
    host, _, port = address.rpartition(":")
    return transport, host.strip("[]"), port


def interface_address(name: str) -> str | None:
    """The IPv4 address of a network interface (`eth0`), or None (Linux only: SIOCGIFADDR)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None


def _addresses(host: str) -> list[str]:
    """Every address `host` stands for: itself, an interface's address, or what it resolves to."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    if host in {name for _, name in socket.if_nameindex()}:
        address = interface_address(host)
        return [address] if address else [host]
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except (OSError, UnicodeError):
        return [host]


def _is_loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_loopback(endpoint: str) -> bool:
    """True when only this machine can reach `endpoint`: a loopback address, a name or
    interface that stands only for loopback, or `ipc://`/`inproc://`. Every interface (`*`,
    `0.0.0.0`), an interface name like `eth0` and a LAN address are not."""
    transport, host, _ = _host_of(endpoint)
    if transport in ("ipc", "inproc"):
        return True
    if host in ("*", "0.0.0.0", "::", ""):
        return False
    return all(_is_loopback_address(address) for address in _addresses(host))


def reachable_host() -> str:
    """This machine's address on the network it would use to reach others.

    Connecting a UDP socket sends nothing; it only asks the kernel which source address a
    route would use. Without a route (a classroom router with no uplink): the first
    interface's address that is not loopback, then the host name's address, then loopback.
    """
    for probe_address in ("192.0.2.1", "2001:db8::1"):  # documentation ranges: never used
        family = socket.AF_INET6 if ":" in probe_address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((probe_address, 9))
                return probe.getsockname()[0]
        except OSError:
            continue
    for _, name in socket.if_nameindex():
        address = interface_address(name)
        if address and not _is_loopback_address(address):
            return address
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def advertised(endpoint: str, advertise: str | None = None) -> str:
    """The endpoint a peer on another machine types: `*`, `0.0.0.0` or an interface name are
    replaced by an address of this machine (or by `advertise`, when given)."""
    transport, host, port = _host_of(endpoint)
    if transport != "tcp":
        return endpoint
    if advertise:
        host = advertise
    elif host in ("*", "0.0.0.0", "::", ""):
        host = reachable_host()
    elif host in {name for _, name in socket.if_nameindex()}:
        host = interface_address(host) or host
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


# -- keys ---------------------------------------------------------------------------------
def key_hex(z85_key: bytes) -> str:
    """A Z85 CURVE key as 64 hex digits (what a join token carries)."""
    return z85.decode(z85_key).hex()


def key_z85(hex_key: str) -> bytes:
    return z85.encode(bytes.fromhex(hex_key))


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair, both halves Z85 as libzmq takes them."""

    public: bytes
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(*zmq.curve_keypair())

    @classmethod
    def load_or_create(cls, path: str | os.PathLike) -> KeyPair:
        """The pair kept in `path` (a zmq.auth certificate), created when missing, so a server
        restarted with the same file keeps its join line. The public half is also written
        to `<path>.public.key`, the file an instructor puts in an `--allow` folder."""
        path = Path(path)
        if path.exists():
            public, secret = zmq.auth.load_certificate(path)
            if not public or not secret:
                raise ValueError(f"{path} holds no CURVE key pair (public-key and secret-key)")
            return cls(public, secret)
        pair = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(_certificate(pair.public, pair.secret))
        Path(f"{path}.public.key").write_text(_certificate(pair.public, None))
        return pair

    @property
    def public_hex(self) -> str:
        return key_hex(self.public)


def _certificate(public: bytes, secret: bytes | None) -> str:
    """zmq.auth's certificate text (ZPL), which `zmq.auth.load_certificate(s)` reads."""
    lines = ["#   ZeroMQ CURVE certificate, written by pirate_helpers", "curve",
             f'    public-key = "{public.decode()}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return "\n".join(lines) + "\n"


# -- the client's side: a join token --------------------------------------------------------
@dataclass(frozen=True)
class Join:
    """Where to connect, with CURVE the server's public key, and for a heartbeating queue its
    heartbeat interval (s) and liveness. `str()` is the token."""

    endpoint: str
    server_key: bytes | None = None  # Z85
    keys: KeyPair | None = field(default=None, repr=False, compare=False)
    heartbeat_interval: float | None = None
    liveness: int | None = None

    @classmethod
    def parse(cls, token: str | Join, keys: KeyPair | None = None) -> Join:
        """`tcp://HOST:PORT`, then optionally `/<64 hex digits>` (the key) and
        `/heartbeat-<MS>ms-liveness-<N>` (a queue's settings); also a plain endpoint."""
        if isinstance(token, Join):  # parsed already (the command line does): add the keys
            return token if keys is None else dataclasses.replace(token, keys=keys)
        head, slash, tail = token.rpartition("/")
        if slash and "://" in head and (settings := SETTINGS.fullmatch(tail)):
            interval_ms, liveness = float(settings[1]), int(settings[2])
            if interval_ms <= 0 or liveness < 1:
                raise ValueError(f"{token!r}: the heartbeat must be above 0 ms and the "
                                 "liveness at least 1")
            keyed = cls.parse(head, keys)
            return dataclasses.replace(keyed, heartbeat_interval=interval_ms / 1000,
                                       liveness=liveness)
        if slash and "://" in head and len(tail) == KEY_HEX_DIGITS:
            try:
                return cls(head, key_z85(tail), keys)
            except (ValueError, binascii.Error):
                pass
        looks_keyed = head.startswith("tcp://") and head.rpartition(":")[2].isdigit()
        if looks_keyed and tail and all(c in "0123456789abcdefABCDEF" for c in tail):
            raise ValueError(f"{token!r}: a server key is {KEY_HEX_DIGITS} hex digits, "
                             f"not {len(tail)}")
        return cls(token, None, keys)

    def __str__(self) -> str:
        token = self.endpoint + (f"/{key_hex(self.server_key)}" if self.server_key else "")
        if self.heartbeat_interval is not None and self.liveness is not None:
            token += f"/heartbeat-{self.heartbeat_interval * 1000:g}ms-liveness-{self.liveness}"
        return token

    @property
    def curve(self) -> bool:
        return self.server_key is not None

    def connect(self, sock: zmq.Socket) -> None:
        """Set the CURVE client keys (its own pair: `keys`, or a fresh one each time) and
        connect. A socket must be configured before it connects."""
        if self.server_key is not None:
            pair = self.keys or KeyPair.generate()
            sock.curve_serverkey = self.server_key
            sock.curve_publickey = pair.public
            sock.curve_secretkey = pair.secret
        connect(sock, self.endpoint)


# -- the server's side ----------------------------------------------------------------------
@dataclass(frozen=True)
class Security:
    """How a server's sockets let peers in: loopback only (the default), CURVE, or insecure.

    `allow`: a folder of client public keys (`*.key` certificates); with it, only those
    clients pass the handshake. `advertise`: the host join tokens name.
    """

    mode: Mode = "loopback"
    keys: KeyPair | None = field(default=None, repr=False)
    allow: str | None = None
    advertise: str | None = None

    @classmethod
    def curve(cls, keys: KeyPair | None = None, *, allow: str | None = None,
              advertise: str | None = None) -> Security:
        return cls("curve", keys or KeyPair.generate(), allow, advertise)

    @classmethod
    def insecure(cls, *, advertise: str | None = None) -> Security:
        return cls("insecure", advertise=advertise)

    def check(self, endpoint: str) -> None:
        """Refuse a bind that other machines could reach unless CURVE or insecure was chosen."""
        if self.mode == "loopback" and not is_loopback(endpoint):
            raise OpenToNetwork(endpoint)

    def start(self, context: zmq.Context, cleanups: list[Callable[[], None]]) -> None:
        """Start the ZAP handler in `context` (before any CURVE socket binds); its stop is
        appended to `cleanups`, which must run before the context terminates."""
        if self.mode != "curve":
            return
        authenticator = ThreadAuthenticator(context)
        authenticator.start()
        authenticator.configure_curve(domain="*", location=self.allow or zmq.auth.CURVE_ALLOW_ANY)
        cleanups.append(authenticator.stop)

    def bind(self, sock: zmq.Socket, endpoint: str, *, pause: Callable[[float], None]) -> str:
        """Check, set the CURVE server keys, and bind; the endpoint really bound."""
        self.check(endpoint)
        if self.mode == "curve":
            assert self.keys is not None
            sock.curve_server = True
            sock.curve_publickey = self.keys.public
            sock.curve_secretkey = self.keys.secret
        return bind_when_free(sock, endpoint, pause=pause)

    def join(self, bound: str, *, heartbeat_interval: float | None = None,
             liveness: int | None = None) -> str:
        """The token a peer on another machine pastes to reach the socket bound at `bound`
        (with a heartbeating queue's settings, for its workers)."""
        server_key = self.keys.public if self.mode == "curve" and self.keys else None
        return str(Join(advertised(bound, self.advertise), server_key,
                        heartbeat_interval=heartbeat_interval, liveness=liveness))


LOOPBACK = Security()


class ConnectionWatch:
    """Counts, from a socket's monitor events, the peers that connected but failed its
    handshake (`failed`: a wrong or missing key, a NULL peer on a CURVE socket), the
    connections that closed before a handshake ended (`closed_early`: a port scan, a
    connect and close; counted apart, since they say nothing about keys) and the
    connections that closed (a peer that crashed or was killed), and the connections libzmq
    could not accept (`accept_failed`: out of file descriptors, EMFILE; libzmq leaves them
    waiting in the listen backlog, serves the connections it has and tries again).

    libzmq keeps one monitor per socket (a second replaces the first), so both counts come
    from this one. The actor polls `events` with its other sockets and calls `read` when
    it is readable.
    """

    def __init__(self, monitor: Callable[[zmq.Socket, int], zmq.Socket], sock: zmq.Socket,
                 trace: Trace, owner: str):
        self.events = monitor(sock, HANDSHAKE_FAILURES | zmq.EVENT_DISCONNECTED
                              | zmq.EVENT_ACCEPT_FAILED)
        self.trace, self.owner = trace, owner
        self.failed = self.closed_early = self.disconnected = self.accept_failed = 0

    def read(self, most: int = 100) -> None:
        """Count what arrived, `most` events at a time, and trace them (a view waiting on
        the trace wakes up). Bounded: out of descriptors, libzmq reports a failed accept
        thousands of times a second, and the actor must get back to its poll (and stop)."""
        for _ in range(most):
            if not self.events.get(zmq.EVENTS) & zmq.POLLIN:
                return
            message = recv_monitor_message(self.events)
            event = message["event"]
            if event == zmq.EVENT_ACCEPT_FAILED:
                self.accept_failed += 1
                self.trace.add(self.owner, "accept-failed", f"{zmq.strerror(message['value'])}"
                               f" on {message['endpoint'].decode(errors='replace')}: serving "
                               "the connections it has, accepting again once some close "
                               f"({self.accept_failed} in all)")
            elif event & WRONG_KEY:
                self.failed += 1
                self.trace.add(self.owner, "handshake-failed", "a peer with a wrong or "
                               f"missing key ({self.failed} in all)")
            elif event & CLOSED_EARLY:
                self.closed_early += 1
                self.trace.add(self.owner, "connect-only", "a connection closed before its "
                               "handshake ended: a port scan or a peer that gave up, not a "
                               f"key ({self.closed_early} in all)")
            elif event == zmq.EVENT_DISCONNECTED:
                self.disconnected += 1
