"""`pirate relay`: a network fault between two roles, typed in by hand.

Put it between a worker and its queue (or a client and its server), then type `cut`, `heal`,
`latency MS`, `reset` or `status` on its standard input; each prints what happened. A cut
closes nothing: watch which side notices, and when.
"""

from __future__ import annotations

import argparse
import queue
import socket
import sys
import threading

from ..endpoints import LOCAL
from ..relay import HOLD_LIMIT_BYTES, TOTAL_LIMIT_BYTES, Relay
from ..security import is_loopback
from .common import (
    StopSignals,
    UsageError,
    close_logs,
    make_trace,
    role,
    say,
    tick_logs,
    warn_if_public,
)
from .options import bind_endpoint, byte_count, connect_endpoint, milliseconds_or_zero

COMMANDS = "cut, heal, latency MS, reset, status, help"


def relay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, type=connect_endpoint, metavar="ENDPOINT",
                        help="where to carry each connection, e.g. a queue's backend")
    parser.add_argument("--listen", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where peers connect instead (default: 127.0.0.1, a random port)")
    parser.add_argument("--latency-ms", type=milliseconds_or_zero, default=0.0, metavar="MS",
                        help="deliver each byte this long after it is read (default 0)")
    parser.add_argument("--hold-bytes", type=byte_count, default=HOLD_LIMIT_BYTES, metavar="N",
                        help="read one way of a connection only while less than N bytes "
                        f"wait to be written (default {HOLD_LIMIT_BYTES}: 1 MiB); past it the "
                        "sender is left unread (backpressure); it holds at most N + 64 KiB")
    parser.add_argument("--total-bytes", type=byte_count, default=TOTAL_LIMIT_BYTES, metavar="N",
                        help="the same for all connections together (default "
                        f"{TOTAL_LIMIT_BYTES}: 64 MiB)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow --listen off loopback: anyone on the network can connect "
                        "(the relay carries bytes; CURVE, if any, is the two ends' business)")


def apply(relay: Relay, line: str) -> str | None:
    """Carry out one typed command; the line to print, or None when the trace says it."""
    words = line.split()
    if not words:
        return None
    command, arguments = words[0].lower(), words[1:]
    if command in ("cut", "heal", "reset") and not arguments:
        getattr(relay, command)()
        return None
    if command == "latency" and len(arguments) == 1:
        try:
            milliseconds = milliseconds_or_zero(arguments[0])
        except (argparse.ArgumentTypeError, ValueError) as error:
            return f"latency: {error}"
        relay.latency(milliseconds / 1000)
        return None
    if command == "status" and not arguments:
        return (f"{'cut' if relay.is_cut else 'carrying'}, latency {relay.latency_s * 1000:g} ms"
                f", {relay.connections} connection(s) open, {relay.carried} carried in all, "
                f"{relay.bytes_up} bytes to the target, {relay.bytes_down} back, "
                f"{relay.buffered} held (bounds {relay.hold_limit} a direction, "
                f"{relay.total_limit} in all), {relay.paused} pause(s) for backpressure, "
                f"{relay.accept_failures} accept(s) failed for want of file descriptors")
    if command == "help" and not arguments:
        return ("cut: nothing passes, nothing closes (TCP never retransmits); heal: carry "
                "again, what was held first; latency MS: deliver each byte MS later; reset: "
                "close every connection with a TCP RST (a cut stays); status: what it carries "
                "and holds")
    return f"unknown command {line.strip()!r}; type one of: {COMMANDS}"


def _read_lines(lines: queue.Queue[str | None]) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)  # end of input: the relay carries on until stopped


@role("relay", "carry TCP between two roles; type cut, heal, latency MS or reset",
      relay_options)
def relay_role(args: argparse.Namespace) -> int:
    if not args.target.startswith("tcp://") or not args.listen.startswith("tcp://"):
        raise UsageError("the relay carries TCP only: --target and --listen are tcp://...")
    if not args.insecure and not is_loopback(args.listen):
        raise UsageError(f"argument --listen: {args.listen} is off loopback: anyone on the "
                         "network could connect; say --insecure to mean it")
    listen = args.listen.replace("tcp://*:", "tcp://0.0.0.0:")
    relay = Relay(args.target, "relay", listen=listen, latency=args.latency_ms / 1000,
                  hold_limit=args.hold_bytes, total_limit=args.total_bytes,
                  trace=make_trace(args))
    try:
        relay.start()
    except OSError as error:  # a port in use, or a name no address (an interface's, say)
        why = error.strerror or str(error)
        raise UsageError(f"argument --listen: {args.listen}: {why} (the relay listens on an "
                         "IPv4 address, not an interface name)"
                         if isinstance(error, socket.gaierror) else
                         f"argument --listen: {args.listen}: {why}") from None
    warn_if_public("relay", relay.endpoint)
    signals = StopSignals()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(lines,), daemon=True).start()
    say("relay", f"listening on {relay.endpoint} (carrying to {args.target})")
    say("relay", f"type: {COMMANDS}")
    try:
        while relay.running and not signals.received:
            tick_logs()
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is not None and (answer := apply(relay, line)) is not None:
                say("relay", answer)
    finally:
        say("relay", "stopping")
        relay.stop()
        close_logs()
    return 0
