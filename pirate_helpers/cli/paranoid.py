"""`pirate paranoid-queue` and `pirate paranoid-worker`."""

from __future__ import annotations

import argparse
import math

from ..paranoid import ParanoidQueue, ParanoidWorker
from .common import UsageError, make_trace, role, serve
from .options import (
    HEARTBEAT_MS,
    LIVENESS,
    add_busy_option,
    add_fault_options,
    add_heartbeat_options,
    add_reconnect_options,
    add_worker_options,
    client_keys,
    faults_from,
    reconnect_range_error,
)
from .simple import (
    CHAOS_COMMANDS,
    broker_security,
    queue_options,
    quiet_under_dashboard,
    serve_broker,
)


def paranoid_queue_options(parser: argparse.ArgumentParser) -> None:
    queue_options(parser)
    add_heartbeat_options(parser)
    add_busy_option(parser)


CHAOS_MAX_S = 3600.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= CHAOS_MAX_S:  # also refuses nan and inf
        raise ValueError(f"expected seconds above 0, at most {CHAOS_MAX_S:g}, not {text!r}")
    return value


def chaos(queue: ParanoidQueue, line: str) -> str | None:
    """Carry out one typed chaos command; the line to print, or None when the queue's log
    says what happened."""
    words = line.split()
    if not words:
        return None
    command, arguments = words[0].lower(), words[1:]
    try:
        if command == "cut" and len(arguments) == 2:
            queue.partition(arguments[0], _seconds(arguments[1]))
            return None
        if command == "freeze" and len(arguments) == 1:
            queue.freeze(_seconds(arguments[0]))
            return None
    except ValueError as error:
        return f"{command}: {error}"
    if command == "help" and not arguments:
        return ("cut NAME SECONDS: the queue ignores that worker and sends it nothing (it is "
                "purged, backs off, returns); freeze SECONDS: the whole queue stops, no "
                "heartbeats (every worker backs off)")
    return f"unknown command {line.strip()!r}; type one of: {CHAOS_COMMANDS}"


@role("paranoid-queue", "the Paranoid Pirate queue: heartbeats both ways, RFC 6; type cut "
      "NAME SECONDS or freeze SECONDS for chaos", paranoid_queue_options)
def paranoid_queue(args: argparse.Namespace) -> int:
    quiet_under_dashboard(args)
    queue = ParanoidQueue("paranoid-queue", frontend=args.frontend, backend=args.backend,
                          heartbeat_interval=args.heartbeat_ms / 1000, liveness=args.liveness,
                          security=broker_security(args), trace=make_trace(args),
                          trace_messages=not args.quiet, max_busy=args.max_busy_ms / 1000,
                          max_queued_bytes=args.max_queued_bytes,
                          max_queued_bytes_per_client=args.max_queued_bytes_per_client)
    return serve_broker("paranoid-queue", queue, args,
                        chaos=lambda line: chaos(queue, line))


def paranoid_worker_options(parser: argparse.ArgumentParser) -> None:
    add_worker_options(parser)
    add_heartbeat_options(parser, from_join=True)
    add_reconnect_options(parser, "queue")
    add_fault_options(parser)


def heartbeating_worker(args: argparse.Namespace) -> dict:
    """What a worker that heartbeats and backs off (Paranoid, Majordomo) takes from its
    options, checked together: the back-off range, the join line and its keys, the faults."""
    if why := reconnect_range_error(args):
        raise UsageError(why)
    return {"connect": args.join, "keys": client_keys(args),
            "heartbeat_interval": args.heartbeat_ms and args.heartbeat_ms / 1000,
            "liveness": args.liveness,
            "work_s": args.work_ms / 1000, "reconnect_min": args.reconnect_min_ms / 1000,
            "reconnect_max": args.reconnect_max_ms / 1000, "faults": faults_from(args),
            "trace": make_trace(args)}


@role("paranoid-worker", "a Paranoid Pirate worker: echoes, heartbeats, reconnects",
      paranoid_worker_options)
def paranoid_worker(args: argparse.Namespace) -> int:
    room = args.join  # a queue's join line carries its settings: given, they are the default
    if args.heartbeat_ms is None:
        args.heartbeat_ms = HEARTBEAT_MS if room.heartbeat_interval is None else None
    if args.liveness is None:
        args.liveness = LIVENESS if room.liveness is None else None
    worker = ParanoidWorker(args.name, **heartbeating_worker(args))
    worker.start()
    return serve("paranoid-worker", worker,
                 announce=[f"{args.name} connected to {args.join.endpoint}"],
                 farewell=lambda: f"{args.name} served {worker.answered}")
