"""`pirate paranoid-queue` and `pirate paranoid-worker`."""

from __future__ import annotations

import argparse

from ..paranoid import ParanoidQueue, ParanoidWorker
from .common import UsageError, make_trace, role, serve
from .options import (
    add_broker_options,
    add_fault_options,
    add_heartbeat_options,
    add_worker_options,
    faults_from,
    milliseconds,
)
from .simple import serve_broker


def paranoid_queue_options(parser: argparse.ArgumentParser) -> None:
    add_broker_options(parser)
    add_heartbeat_options(parser)


@role("paranoid-queue", "the Paranoid Pirate queue: heartbeats both ways, RFC 6",
      paranoid_queue_options)
def paranoid_queue(args: argparse.Namespace) -> int:
    queue = ParanoidQueue("paranoid-queue", frontend=args.frontend, backend=args.backend,
                          heartbeat_interval=args.heartbeat_ms / 1000, liveness=args.liveness,
                          trace=make_trace(args), trace_messages=not args.quiet)
    return serve_broker("paranoid-queue", queue)


def paranoid_worker_options(parser: argparse.ArgumentParser) -> None:
    add_worker_options(parser)
    add_heartbeat_options(parser)
    parser.add_argument("--reconnect-min-ms", type=milliseconds, default=1000, metavar="MS",
                        help="first wait before reconnecting to a silent queue (default 1000)")
    parser.add_argument("--reconnect-max-ms", type=milliseconds, default=32000, metavar="MS",
                        help="the wait doubles up to this (default 32000)")
    add_fault_options(parser)


@role("paranoid-worker", "a Paranoid Pirate worker: echoes, heartbeats, reconnects",
      paranoid_worker_options)
def paranoid_worker(args: argparse.Namespace) -> int:
    if args.reconnect_min_ms > args.reconnect_max_ms:
        raise UsageError(f"argument --reconnect-max-ms: {args.reconnect_max_ms:g} is below "
                         f"--reconnect-min-ms {args.reconnect_min_ms:g}")
    worker = ParanoidWorker(args.name, connect=args.connect,
                            heartbeat_interval=args.heartbeat_ms / 1000,
                            liveness=args.liveness, work_s=args.work_ms / 1000,
                            reconnect_min=args.reconnect_min_ms / 1000,
                            reconnect_max=args.reconnect_max_ms / 1000,
                            faults=faults_from(args), trace=make_trace(args))
    worker.start()
    return serve("paranoid-worker", worker, announce=[f"{args.name} connected to {args.connect}"])
