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

from ..endpoints import LOCAL
from ..faults import Faults

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


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise Invalid(f"expected a finite number, not {text!r}")
    return value


def milliseconds(text: str) -> float:
    """A time in ms, finite and above zero (a heartbeat or timeout of 0 means nothing)."""
    value = _number(text)
    if value <= 0:
        raise Invalid(f"expected a time above 0 ms, not {text!r}")
    return value


def milliseconds_or_zero(text: str) -> float:
    """A time in ms, finite and not negative (0: no extra time)."""
    value = _number(text)
    if value < 0:
        raise Invalid(f"expected a time of 0 ms or more, not {text!r}")
    return value


def _integer(text: str, smallest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise Invalid(f"expected a whole number, not {text!r}") from None
    if value < smallest:
        raise Invalid(f"expected {smallest} or more, not {text!r}")
    return value


def count(text: str) -> int:
    """A whole number, 1 or more (requests, tries, liveness)."""
    return _integer(text, 1)


def count_or_zero(text: str) -> int:
    """A whole number, 0 or more."""
    return _integer(text, 0)


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


def add_work_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-ms", type=milliseconds_or_zero, default=0.0, metavar="MS",
                        help="time spent on each request")


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, type=connect_endpoint, metavar="ENDPOINT",
                        help="the queue's backend, e.g. tcp://127.0.0.1:5556")
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


def add_heartbeat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heartbeat-ms", type=milliseconds, default=1000, metavar="MS",
                        help="send a heartbeat this often (default 1000)")
    parser.add_argument("--liveness", type=count, default=3, metavar="N",
                        help="a peer silent for N heartbeats is dead (default 3)")
