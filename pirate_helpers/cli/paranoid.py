"""`pirate paranoid-queue` and `pirate paranoid-worker`."""

from __future__ import annotations

import argparse

from ..paranoid import ParanoidQueue, ParanoidWorker
from .common import UsageError, make_trace, role, serve
from .options import (
    add_fault_options,
    add_heartbeat_options,
    add_reconnect_options,
    add_worker_options,
    client_keys,
    faults_from,
    reconnect_range_error,
)
from .simple import broker_security, queue_options, quiet_under_dashboard, serve_broker


def paranoid_queue_options(parser: argparse.ArgumentParser) -> None:
    queue_options(parser)
    add_heartbeat_options(parser)


@role("paranoid-queue", "the Paranoid Pirate queue: heartbeats both ways, RFC 6",
      paranoid_queue_options)
def paranoid_queue(args: argparse.Namespace) -> int:
    quiet_under_dashboard(args)
    queue = ParanoidQueue("paranoid-queue", frontend=args.frontend, backend=args.backend,
                          heartbeat_interval=args.heartbeat_ms / 1000, liveness=args.liveness,
                          security=broker_security(args), trace=make_trace(args),
                          trace_messages=not args.quiet)
    return serve_broker("paranoid-queue", queue, args)


def paranoid_worker_options(parser: argparse.ArgumentParser) -> None:
    add_worker_options(parser)
    add_heartbeat_options(parser)
    add_reconnect_options(parser, "queue")
    add_fault_options(parser)


def heartbeating_worker(args: argparse.Namespace) -> dict:
    """What a worker that heartbeats and backs off (Paranoid, Majordomo) takes from its
    options, checked together: the back-off range, the join line and its keys, the faults."""
    if why := reconnect_range_error(args):
        raise UsageError(why)
    return {"connect": args.join, "keys": client_keys(args),
            "heartbeat_interval": args.heartbeat_ms / 1000, "liveness": args.liveness,
            "work_s": args.work_ms / 1000, "reconnect_min": args.reconnect_min_ms / 1000,
            "reconnect_max": args.reconnect_max_ms / 1000, "faults": faults_from(args),
            "trace": make_trace(args)}


@role("paranoid-worker", "a Paranoid Pirate worker: echoes, heartbeats, reconnects",
      paranoid_worker_options)
def paranoid_worker(args: argparse.Namespace) -> int:
    worker = ParanoidWorker(args.name, **heartbeating_worker(args))
    worker.start()
    return serve("paranoid-worker", worker,
                 announce=[f"{args.name} connected to {args.join.endpoint}"],
                 farewell=lambda: f"{args.name} served {worker.answered}")
