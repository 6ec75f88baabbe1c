"""`pirate majordomo-broker`, `pirate majordomo-worker` and `pirate majordomo-client`."""

from __future__ import annotations

import argparse

from ..endpoints import LOCAL
from ..majordomo import MMI, MajordomoBroker, MajordomoClient, MajordomoWorker
from ..majordomo.protocol import MAX_QUEUED, MAX_QUEUED_PER_CLIENT
from .common import (
    UsageError,
    join_lines,
    make_trace,
    role,
    serve,
    warn_about_reach,
)
from .lazy import client_options, run_client
from .options import (
    add_busy_option,
    add_fault_options,
    add_held_options,
    add_join_option,
    add_reconnect_options,
    add_security_options,
    add_work_option,
    bind_endpoint,
    count,
    default_name,
    milliseconds,
    name,
    security_from,
)
from .paranoid import heartbeating_worker

MDP_HEARTBEAT_MS = 2500  # RFC 7's example interval, and the Guide's mdbroker.py's


def mdp_heartbeat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heartbeat-ms", type=milliseconds, default=MDP_HEARTBEAT_MS,
                        metavar="MS", help=f"send a heartbeat this often (default "
                        f"{MDP_HEARTBEAT_MS})")
    parser.add_argument("--liveness", type=count, default=3, metavar="N",
                        help="a peer silent for N heartbeats is dead (default 3)")


def service_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--service", required=True, type=name, metavar="NAME",
                        help=f"the service {what}, e.g. echo")


def majordomo_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where clients and workers connect (default: 127.0.0.1, a "
                        "random port)")
    mdp_heartbeat_options(parser)
    parser.add_argument("--request-expiry-ms", type=milliseconds, metavar="MS",
                        help="drop a request that waited this long for a worker "
                        "(default: never, but 10 s for a service nobody offers)")
    parser.add_argument("--max-queued", type=count, default=MAX_QUEUED, metavar="N",
                        help="requests waiting in all services before new ones are refused "
                        f"(default {MAX_QUEUED}; half of it at most for services nobody "
                        "offers); the Guide's mdclient2 (100,000 at once) needs 100000")
    parser.add_argument("--max-queued-per-client", type=count, default=MAX_QUEUED_PER_CLIENT,
                        metavar="N", help="requests one client may have waiting (default "
                        f"{MAX_QUEUED_PER_CLIENT}); mdclient2 needs 100000")
    add_held_options(parser)
    add_busy_option(parser)
    add_security_options(parser)


@role("majordomo-broker", "the Majordomo broker: services by name, RFC 7 MDP/0.1 and "
      "RFC 8 MMI", majordomo_broker_options)
def majordomo_broker(args: argparse.Namespace) -> int:
    expiry = None if args.request_expiry_ms is None else args.request_expiry_ms / 1000
    broker = MajordomoBroker("majordomo-broker", bind=args.bind,
                             heartbeat_interval=args.heartbeat_ms / 1000,
                             liveness=args.liveness, request_expiry=expiry,
                             max_queued=args.max_queued,
                             max_queued_per_client=args.max_queued_per_client,
                             max_queued_bytes=args.max_queued_bytes,
                             max_queued_bytes_per_client=args.max_queued_bytes_per_client,
                             max_busy=args.max_busy_ms / 1000,
                             security=security_from(args, args.bind),
                             trace=make_trace(args), trace_messages=not args.quiet)
    broker.start()
    warn_about_reach("majordomo-broker", broker.security, broker.endpoint)
    return serve("majordomo-broker", broker, announce=[
        f"listening on {broker.endpoint}",
        *join_lines(broker.security, clients=broker.endpoint, workers=broker.endpoint)])


def majordomo_worker_options(parser: argparse.ArgumentParser) -> None:
    add_join_option(parser, "the broker's join line")
    parser.add_argument("--name", type=name, metavar="NAME", default=default_name(),
                        help="the worker's identity at the broker (default: worker-PID; "
                        "NAME.2, NAME.3, ... after reconnections)")
    service_option(parser, "this worker offers")
    add_work_option(parser)
    mdp_heartbeat_options(parser)
    add_reconnect_options(parser, "broker")
    add_fault_options(parser)


@role("majordomo-worker", "a Majordomo worker: offers a service, echoes each request body",
      majordomo_worker_options)
def majordomo_worker(args: argparse.Namespace) -> int:
    if args.service.encode().startswith(MMI):
        raise UsageError(f"argument --service: {args.service!r}: mmi.* services are the "
                         "broker's own (RFC 8)")
    worker = MajordomoWorker(args.name, service=args.service, **heartbeating_worker(args))
    worker.start()
    return serve("majordomo-worker", worker,
                 announce=[f"{args.name} offers {args.service} at {args.join.endpoint}"])


def majordomo_client_options(parser: argparse.ArgumentParser) -> None:
    client_options(parser)
    service_option(parser, "to ask")


@role("majordomo-client", "a Majordomo client: Lazy Pirate retries over MDP, checks each echo",
      majordomo_client_options)
def majordomo_client(args: argparse.Namespace) -> int:
    return run_client(args, "majordomo-client", MajordomoClient, (args.service.encode(),))
