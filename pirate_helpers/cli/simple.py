"""`pirate simple-queue` and `pirate simple-worker`."""

from __future__ import annotations

import argparse

from ..paranoid import ParanoidQueue
from ..simple import SimplePirateQueue, SimpleWorker
from .common import make_trace, role, serve, warn_if_public
from .options import add_broker_options, add_fault_options, add_worker_options, faults_from


def serve_broker(role_name: str, queue: SimplePirateQueue | ParanoidQueue) -> int:
    """Start a queue, say where clients and workers connect, and serve until stopped."""
    queue.start()
    for endpoint in (queue.frontend_endpoint, queue.backend_endpoint):
        warn_if_public(role_name, endpoint)
    return serve(role_name, queue, announce=[f"frontend (clients) on {queue.frontend_endpoint}",
                                             f"backend (workers) on {queue.backend_endpoint}"])


@role("simple-queue", "the Simple Pirate queue: each request to the least recently used worker",
      add_broker_options)
def simple_queue(args: argparse.Namespace) -> int:
    queue = SimplePirateQueue("simple-queue", frontend=args.frontend, backend=args.backend,
                              trace=make_trace(args))
    return serve_broker("simple-queue", queue)


def simple_worker_options(parser: argparse.ArgumentParser) -> None:
    add_worker_options(parser)
    add_fault_options(parser)


@role("simple-worker", "a Simple Pirate worker: says READY, then echoes every request",
      simple_worker_options)
def simple_worker(args: argparse.Namespace) -> int:
    worker = SimpleWorker(args.name, connect=args.connect, work_s=args.work_ms / 1000,
                          faults=faults_from(args), trace=make_trace(args))
    worker.start()
    return serve("simple-worker", worker, announce=[f"{args.name} connected to {args.connect}"])
