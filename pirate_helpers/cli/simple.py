"""`pirate simple-queue` and `pirate simple-worker`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..paranoid import ParanoidQueue
from ..security import Security
from ..simple import SimplePirateQueue, SimpleWorker
from ..views.console import TerminalDashboard
from .common import join_lines, make_trace, role, serve, warn_about_reach
from .options import (
    add_broker_options,
    add_fault_options,
    add_held_options,
    add_worker_options,
    client_keys,
    faults_from,
    security_from,
)


def broker_security(args: argparse.Namespace) -> Security:
    """The security the options ask for; refuses a bind off loopback without a choice."""
    return security_from(args, args.frontend, args.backend)


CHAOS_COMMANDS = "cut NAME SECONDS (a worker), freeze SECONDS (this queue), help"


def serve_broker(role_name: str, queue: SimplePirateQueue | ParanoidQueue,
                 args: argparse.Namespace,
                 chaos: Callable[[str], str | None] | None = None) -> int:
    """Start a queue, say where clients and workers connect, and serve until stopped; with
    `--dashboard`, under a live table of its workers. `chaos` carries out the instructor's
    typed commands."""
    queue.start()
    warn_about_reach(role_name, queue.security, queue.frontend_endpoint, queue.backend_endpoint)
    announce = [f"frontend (clients) on {queue.frontend_endpoint}",
                f"backend (workers) on {queue.backend_endpoint}",
                *join_lines(clients=queue.join_clients, workers=queue.join_workers),
                *([f"type: {CHAOS_COMMANDS}"] if chaos else [])]
    table = (lambda: TerminalDashboard(queue.snapshot, f"{role_name}: workers")
             ) if args.dashboard else None  # below the join lines, which students copy
    return serve(role_name, queue, announce=announce, view=table, commands=chaos)


def queue_options(parser: argparse.ArgumentParser) -> None:
    add_broker_options(parser)
    add_held_options(parser)
    parser.add_argument("--dashboard", action="store_true",
                        help="a live table of workers (state, served, last heard), the "
                        "counts and failed handshakes, to project; implies --quiet")


def quiet_under_dashboard(args: argparse.Namespace) -> argparse.Namespace:
    if args.dashboard:
        args.quiet = True  # lines per message would scroll the table away
    return args


@role("simple-queue", "the Simple Pirate queue: each request to the least recently used worker",
      queue_options)
def simple_queue(args: argparse.Namespace) -> int:
    quiet_under_dashboard(args)
    queue = SimplePirateQueue("simple-queue", frontend=args.frontend, backend=args.backend,
                              max_queued_bytes=args.max_queued_bytes,
                              max_queued_bytes_per_client=args.max_queued_bytes_per_client,
                              security=broker_security(args), trace=make_trace(args))
    return serve_broker("simple-queue", queue, args)


def simple_worker_options(parser: argparse.ArgumentParser) -> None:
    add_worker_options(parser)
    add_fault_options(parser)


@role("simple-worker", "a Simple Pirate worker: says READY, then echoes every request",
      simple_worker_options)
def simple_worker(args: argparse.Namespace) -> int:
    worker = SimpleWorker(args.name, connect=args.join, work_s=args.work_ms / 1000,
                          faults=faults_from(args), keys=client_keys(args),
                          trace=make_trace(args))
    worker.start()
    return serve("simple-worker", worker,
                 announce=[f"{args.name} connected to {args.join.endpoint}"],
                 farewell=lambda: f"{args.name} served {worker.answered}")
