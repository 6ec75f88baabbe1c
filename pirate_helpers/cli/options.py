"""Every option checked when it is parsed, so a mistyped value gets one clear line.

Each function here is an argparse `type=`: it returns the value or raises
`argparse.ArgumentTypeError` naming what was wrong with the text, and argparse puts the
option's name in front (`pirate lazy-client: error: argument --retries: ...`).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import socket
from pathlib import Path

from ..endpoints import LOCAL
from ..faults import Faults
from ..held import MAX_BUSY_S, MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_CLIENT
from ..security import Join, KeyPair, Security
from .common import UsageError

Invalid = argparse.ArgumentTypeError
TRANSPORTS = ("tcp", "ipc")


def _split(text: str) -> tuple[str, str, str]:
    transport, found, address = text.partition("://")
    if not found or transport not in TRANSPORTS:
        raise Invalid(f"{text!r} is not an endpoint like tcp://127.0.0.1:5555")
    host, colon, port = address.rpartition(":")
    if transport == "tcp" and (not colon or not host):
        raise Invalid(f"{text!r} needs a host and a port, like tcp://127.0.0.1:5555")
    return transport, host.strip("[]"), port


def _port(text: str, port: str, *, any_allowed: bool) -> None:
    if any_allowed and port in ("*", "0"):
        return
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Invalid(f"{text!r}: the port must be 1 to 65535" + (" or *" if any_allowed else ""))


def _resolves(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return True
    except (OSError, UnicodeError):
        return False


def _interfaces() -> set[str]:
    try:
        return {name for _, name in socket.if_nameindex()}
    except OSError:
        return set()


def bind_endpoint(text: str) -> str:
    """Where to listen: `tcp://HOST:PORT` with HOST an address, interface name or `*`, and
    PORT 1-65535 or `*` (any free port); or `ipc://PATH`."""
    transport, host, port = _split(text)
    if transport == "tcp":
        _port(text, port, any_allowed=True)
        if host != "*" and host not in _interfaces() and not _resolves(host):
            raise Invalid(f"{text!r}: {host!r} is no address or interface of this machine")
    return text


def connect_endpoint(text: str) -> str:
    """Where to connect: `tcp://HOST:PORT` with a host that resolves, or `ipc://PATH`."""
    transport, host, port = _split(text)
    if transport == "tcp":
        _port(text, port, any_allowed=False)
        if not _resolves(host):
            raise Invalid(f"{text!r}: the host {host!r} does not resolve")
    return text


def join_token(text: str) -> Join:
    """What a student pastes: an endpoint, with CURVE followed by `/` and 64 hex digits."""
    try:
        join = Join.parse(text)
    except ValueError as error:
        raise Invalid(str(error)) from None
    connect_endpoint(join.endpoint)
    return join


def host(text: str) -> str:
    """A host name or address that peers on other machines can use (`--advertise`)."""
    if not text or any(c in text for c in "/ *") or text in ("0.0.0.0", "::"):
        raise Invalid(f"{text!r} is not a host a peer can connect to")
    return text.strip("[]")


def key_file(text: str) -> str:
    """A CURVE key pair file: one that exists must hold a pair; a missing one is created
    later, so its folder must be a folder (a mistake said here, in one line, not later in a
    traceback)."""
    path = Path(text)
    try:
        if path.is_dir():
            raise Invalid(f"{text[:60]!r} is a folder, not a key file")
        if not path.exists():
            if path.parent.exists() and not path.parent.is_dir():
                raise Invalid(f"{text[:60]!r}: {str(path.parent)[:60]!r} is not a folder")
            return text
        KeyPair.load_or_create(path)
    except (OSError, ValueError, UnicodeError) as error:  # too long, a NUL, not a key
        raise Invalid(f"{text[:60]!r}: no CURVE key pair ({_reason(error)})") from None
    return text


def _reason(error: BaseException) -> str:
    """An exception as a short phrase for a one-line error."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error).splitlines()[0][:80] if str(error) else type(error).__name__


def folder(text: str) -> str:
    """An existing folder (of client public keys, for `--allow`)."""
    try:
        is_folder = Path(text).is_dir()
    except (OSError, ValueError) as error:  # a name too long, a NUL byte
        raise Invalid(f"{text[:60]!r}: {_reason(error)}") from None
    if not is_folder:
        raise Invalid(f"{text[:60]!r} is not a folder")
    return text


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise Invalid(f"expected a finite number, not {text!r}")
    return value


MAX_MS = 2**31 - 1
"""The longest time any option takes (about 24.8 days): libzmq's time options and pollers
take ms as a C int, and every clock sum below it stays exact."""

MAX_BYTES = 2**63 - 1
"""The largest byte count libzmq's `MAXMSGSIZE` (an int64) takes."""


def milliseconds(text: str) -> float:
    """A time in ms from 1 to `MAX_MS`: a heartbeat or timeout of 0 means nothing, and the
    pollers count whole ms, so less than 1 would spin."""
    value = _number(text)
    if not 1 <= value <= MAX_MS:
        raise Invalid(f"expected a time from 1 to {MAX_MS} ms, not {text!r}")
    return value


def milliseconds_or_zero(text: str) -> float:
    """A time in ms from 0 (no extra time) to `MAX_MS`."""
    value = _number(text)
    if not 0 <= value <= MAX_MS:
        raise Invalid(f"expected a time from 0 to {MAX_MS} ms, not {text!r}")
    return value


MIN_RATE, MAX_RATE = 0.001, 1_000_000.0


def per_second(text: str) -> float:
    """A rate in events per second, from one per 1000 s to a million per second."""
    value = _number(text)
    if not MIN_RATE <= value <= MAX_RATE:
        raise Invalid(f"expected a rate from {MIN_RATE:g} to {MAX_RATE:g} per second, "
                      f"not {text!r}")
    return value


def _integer(text: str, smallest: int, largest: int = 2**63 - 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise Invalid(f"expected a whole number, not {text[:40]!r}") from None
    if value < smallest:
        raise Invalid(f"expected {smallest} or more, not {text!r}")
    if value > largest:
        raise Invalid(f"expected at most {largest}, not {text[:40]!r}")
    return value


def count(text: str) -> int:
    """A whole number, 1 or more (requests, tries, liveness)."""
    return _integer(text, 1)


def count_or_zero(text: str) -> int:
    """A whole number, 0 or more."""
    return _integer(text, 0)


def byte_count(text: str) -> int:
    """A size in bytes, 1 to `MAX_BYTES` (what libzmq's `MAXMSGSIZE` takes)."""
    return _integer(text, 1, MAX_BYTES)


def seed(text: str) -> int:
    return _integer(text, -(2**63))


def rate(text: str) -> float:
    """A probability, from 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise Invalid(f"expected a chance from 0 to 1, not {text!r}")
    return value


def name(text: str) -> str:
    """A name a person chose: not empty, at most 255 bytes (a ZeroMQ identity's limit)."""
    if not text.strip():
        raise Invalid("a name cannot be empty")
    if len(text.encode()) > 255 or text.startswith("\0"):
        raise Invalid(f"{text[:20]!r}...: a name is at most 255 bytes and starts with no NUL")
    return text


def numbers(text: str) -> frozenset[int]:
    """`3,4,9` -> {3, 4, 9}: request numbers, counting from 1."""
    return frozenset(count(part.strip()) for part in text.split(",") if part.strip())


def default_name() -> str:
    return f"worker-{os.getpid()}"


def add_fault_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("faults injected on purpose (deterministic)")
    group.add_argument("--drop", type=numbers, default=frozenset(), metavar="N,M,...",
                       help="never answer these requests (counting from 1)")
    group.add_argument("--crash-after", type=count_or_zero, metavar="N",
                       help="answer N requests, then crash on the next")
    group.add_argument("--freeze-at", type=count, metavar="N", help="freeze before request N")
    group.add_argument("--freeze-ms", type=milliseconds_or_zero, default=0.0, metavar="MS",
                       help="how long the freeze lasts")
    group.add_argument("--slow-ms", type=milliseconds_or_zero, default=0.0, metavar="MS",
                       help="extra time spent on every request")
    group.add_argument("--drop-rate", type=rate, default=0.0, metavar="P",
                       help="chance of dropping each request (seeded)")
    group.add_argument("--crash-rate", type=rate, default=0.0, metavar="P",
                       help="chance of crashing on each request (seeded)")
    group.add_argument("--seed", type=seed, default=0, metavar="S",
                       help="seed for the chances above: same seed, same faults")


def faults_from(args: argparse.Namespace) -> Faults:
    return Faults(
        drop=args.drop,
        crash_after=args.crash_after,
        freeze_at=args.freeze_at,
        freeze_s=args.freeze_ms / 1000,
        slow_s=args.slow_ms / 1000,
        drop_rate=args.drop_rate,
        crash_rate=args.crash_rate,
        seed=args.seed,
    )


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """`--name` and `--requests`, the same for every client that sends numbered requests."""
    parser.add_argument("--name", type=name, default=f"client-{os.getpid()}", metavar="NAME",
                        help="request bodies say who sent them: NAME:1, NAME:2, ... "
                        "(default: client-PID)")
    parser.add_argument("--requests", type=count, default=10, metavar="N",
                        help="how many requests to send (default 10)")


def add_work_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-ms", type=milliseconds_or_zero, default=0.0, metavar="MS",
                        help="time spent on each request")


def add_join_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--join JOIN` (`--connect` is the same option), and `--key-file` for the own key pair."""
    parser.add_argument("--join", "--connect", dest="join", required=True, type=join_token,
                        metavar="JOIN", help=f"{what}: the line it printed, "
                        "tcp://HOST:PORT, with CURVE followed by /KEY (64 hex digits)")
    parser.add_argument("--key-file", type=key_file, metavar="FILE",
                        help="keep this peer's own CURVE key pair in FILE (created when "
                        "missing; FILE.public.key is what a server's --allow folder takes); "
                        "default: a fresh pair each run")


def load_keys(path: str | None) -> KeyPair | None:
    """The pair in `--key-file`, created when missing; a file that cannot be written is a
    one-line error naming the option."""
    if path is None:
        return None
    try:
        return KeyPair.load_or_create(path)
    except (OSError, ValueError, UnicodeError) as error:
        raise UsageError(f"argument --key-file: {path!r}: {_reason(error)}") from None


def client_keys(args: argparse.Namespace) -> KeyPair | None:
    return load_keys(args.key_file)


def add_security_options(parser: argparse.ArgumentParser) -> None:
    """Who may connect to a serving role: loopback only, unless one of these is given."""
    group = parser.add_argument_group("who may connect (default: this machine only)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--curve", action="store_true",
                        help="CURVE on every socket: encrypted, and only peers given the "
                        "join line (it holds the server key) get in")
    choice.add_argument("--insecure", action="store_true",
                        help="bind off loopback with no security at all: anyone on the "
                        "network can join, read and forge messages")
    group.add_argument("--key-file", type=key_file, metavar="FILE",
                       help="with --curve: keep the server key pair in FILE (created when "
                       "missing), so the join lines stay valid across restarts")
    group.add_argument("--allow", type=folder, metavar="DIR",
                       help="with --curve: admit only clients whose public key "
                       "certificates (*.key) are in DIR")
    group.add_argument("--advertise", type=host, metavar="HOST",
                       help="the host the join lines name (default: this machine's address "
                       "on its network, or the address bound)")


def security_from(args: argparse.Namespace, *endpoints: str) -> Security:
    """The `Security` the options ask for, checked against the endpoints to bind: a bind
    off loopback without --curve or --insecure raises `OpenToNetwork`."""
    if not args.curve and (args.key_file or args.allow):
        raise UsageError("--key-file and --allow go with --curve")
    if args.curve:
        keys = load_keys(args.key_file)
        security = Security.curve(keys, allow=args.allow, advertise=args.advertise)
    elif args.insecure:
        security = Security.insecure(advertise=args.advertise)
    else:
        security = Security(advertise=args.advertise)
    for endpoint in endpoints:
        security.check(endpoint)
    return security


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    add_join_option(parser, "the queue's workers' join line")
    parser.add_argument("--name", type=name, metavar="NAME", default=default_name(),
                        help="the worker's identity at the queue (default: worker-PID)")
    add_work_option(parser)


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frontend", default=LOCAL, type=bind_endpoint,
                        metavar="ENDPOINT",
                        help="where clients connect (default: 127.0.0.1, a random port)")
    parser.add_argument("--backend", default=LOCAL, type=bind_endpoint,
                        metavar="ENDPOINT",
                        help="where workers connect (default: 127.0.0.1, a random port)")
    add_security_options(parser)


def add_held_options(parser: argparse.ArgumentParser) -> None:
    """The bytes of waiting requests a queue or broker holds (`held.py`), the same options
    and defaults in every role that holds them."""
    parser.add_argument("--max-queued-bytes", type=byte_count, default=MAX_QUEUED_BYTES,
                        metavar="N", help="bytes of waiting requests held, all clients "
                        f"together, before new ones are refused (default {MAX_QUEUED_BYTES}, "
                        "256 MiB)")
    parser.add_argument("--max-queued-bytes-per-client", type=byte_count,
                        default=MAX_QUEUED_BYTES_PER_CLIENT, metavar="N",
                        help="bytes of one client's waiting requests held (default "
                        f"{MAX_QUEUED_BYTES_PER_CLIENT}, 32 MiB)")


def add_busy_option(parser: argparse.ArgumentParser) -> None:
    """How long a worker that heartbeats may hold one request (queues and brokers that hear
    their workers' heartbeats)."""
    default_ms = round(MAX_BUSY_S * 1000)
    parser.add_argument("--max-busy-ms", type=milliseconds, default=default_ms, metavar="MS",
                        help="a worker holding one request this long is given up: the "
                        f"request dropped (its client retries), counted (default {default_ms})")


HEARTBEAT_MS, LIVENESS = 1000, 3


def add_heartbeat_options(parser: argparse.ArgumentParser, *, from_join: bool = False) -> None:
    """A queue's heartbeat settings; a worker's (`from_join`) default to its join line's."""
    default = "the join line's, else " if from_join else ""
    parser.add_argument("--heartbeat-ms", type=milliseconds,
                        default=None if from_join else HEARTBEAT_MS, metavar="MS",
                        help=f"send a heartbeat this often (default {default}{HEARTBEAT_MS})")
    parser.add_argument("--liveness", type=count, default=None if from_join else LIVENESS,
                        metavar="N", help="a peer silent for N heartbeats is dead "
                        f"(default {default}{LIVENESS})")


def add_reconnect_options(parser: argparse.ArgumentParser, peer: str) -> None:
    """A worker's back-off when its `peer` (queue, broker) falls silent."""
    parser.add_argument("--reconnect-min-ms", type=milliseconds, default=1000, metavar="MS",
                        help=f"first wait before reconnecting to a silent {peer} (default 1000)")
    parser.add_argument("--reconnect-max-ms", type=milliseconds, default=32000, metavar="MS",
                        help="the wait doubles up to this (default 32000)")


def reconnect_range_error(args: argparse.Namespace) -> str | None:
    """Why `--reconnect-min-ms` and `--reconnect-max-ms` do not fit together, or None."""
    if args.reconnect_min_ms > args.reconnect_max_ms:
        return (f"argument --reconnect-max-ms: {args.reconnect_max_ms:g} is below "
                f"--reconnect-min-ms {args.reconnect_min_ms:g}")
    return None
