"""`pirate ROLE ...`: every broker, worker, server and client as its own process.

Instructors run these across terminals or laptops; the tests run them as subprocesses.
Each role prints its endpoint when it starts and one line per event (unless `--quiet`),
and ends cleanly on Ctrl-C or SIGTERM. Bind addresses default to 127.0.0.1 on a random port;
binding every interface (`--bind tcp://*:5555`) is an explicit choice, warned about.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from .actor import Actor
from .endpoints import LOCAL, is_public
from .faults import Faults
from .lazy import LazyPirateClient, LazyServer, ServerUnavailable
from .majordomo import MajordomoBroker, MajordomoClient, MajordomoWorker
from .paranoid import ParanoidQueue, ParanoidWorker
from .simple import SimplePirateQueue, SimpleWorker
from .trace import Trace

ROLES: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {}


def role(name: str, summary: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a `pirate NAME` role: its one-line summary, its options, and its body."""

    def register(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        ROLES[name] = (summary, arguments, body)
        return body

    return register


def numbers(text: str) -> frozenset[int]:
    """`3,4,9` -> {3, 4, 9}"""
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 3,4 not {text!r}") from None


def add_fault_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("faults injected on purpose (deterministic)")
    group.add_argument("--drop", type=numbers, default=frozenset(), metavar="N,M,...",
                       help="never answer these requests (counting from 1)")
    group.add_argument("--crash-after", type=int, metavar="N",
                       help="answer N requests, then crash on the next")
    group.add_argument("--freeze-at", type=int, metavar="N", help="freeze before request N")
    group.add_argument("--freeze-ms", type=float, default=0.0, metavar="MS",
                       help="how long the freeze lasts")
    group.add_argument("--slow-ms", type=float, default=0.0, metavar="MS",
                       help="extra time spent on every request")
    group.add_argument("--drop-rate", type=float, default=0.0, metavar="P",
                       help="chance of dropping each request (seeded)")
    group.add_argument("--crash-rate", type=float, default=0.0, metavar="P",
                       help="chance of crashing on each request (seeded)")
    group.add_argument("--seed", type=int, default=0, metavar="S",
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


TRACE_KEPT = 1000  # a role prints its events; it need not hold a workshop's worth of them


def make_trace(args: argparse.Namespace) -> Trace:
    if args.quiet:
        return Trace(keep=TRACE_KEPT)
    return Trace(on_event=lambda event: print(event, flush=True), keep=TRACE_KEPT)


def say(role_name: str, text: str, *, error: bool = False) -> None:
    print(f"{role_name}: {text}", file=sys.stderr if error else sys.stdout, flush=True)


def serve(role_name: str, *actors: Actor, announce: Sequence[str] = ()) -> int:
    """Print the `announce` lines, then keep started actors running until the first one ends
    (a crash), Ctrl-C or SIGTERM.

    The signal only sets an event: raising inside a thread join can leave the thread looking
    finished while it still runs. The handlers are in place before the endpoints are
    announced, so a SIGTERM sent as soon as they appear is never lost.
    """
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    for line in announce:
        say(role_name, line)
    try:
        while all(actor.running for actor in actors):
            if stop_requested.wait(0.2):
                say(role_name, "stopping")
                break
    finally:
        for actor in reversed(actors):
            actor.stop()
    if any(getattr(actor, "crashed", False) for actor in actors):
        say(role_name, "crashed (an injected fault)", error=True)
        return 1
    return 0


def warn_if_public(role_name: str, endpoint: str) -> None:
    if is_public(endpoint):
        say(role_name, f"listening on every interface ({endpoint}): anyone on the network "
            "can reach it (fine for a classroom LAN, never the default)", error=True)


# -- Lazy Pirate ----------------------------------------------------------------------------
def lazy_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, metavar="ENDPOINT",
                        help="where to listen (default: 127.0.0.1, a random port)")
    parser.add_argument("--work-ms", type=float, default=0.0, metavar="MS",
                        help="time spent on each request")
    add_fault_options(parser)


@role("lazy-server", "a REP echo server, with faults on purpose", lazy_server_options)
def lazy_server(args: argparse.Namespace) -> int:
    server = LazyServer("lazy-server", bind=args.bind, work_s=args.work_ms / 1000,
                        faults=faults_from(args), trace=make_trace(args))
    server.start()
    warn_if_public("lazy-server", server.endpoint)
    return serve("lazy-server", server, announce=[f"listening on {server.endpoint}"])


def client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, metavar="ENDPOINT",
                        help="the server's or queue's endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--requests", type=int, default=10, metavar="N",
                        help="how many requests to send: '1', '2', ... (default 10)")
    parser.add_argument("--timeout-ms", type=float, default=2500, metavar="MS",
                        help="wait this long for each reply (default 2500)")
    parser.add_argument("--retries", type=int, default=3, metavar="N",
                        help="tries in all before giving up (default 3)")


@role("lazy-client", "the Lazy Pirate client: timeout, reconnect, resend, give up",
      client_options)
def lazy_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    trace = make_trace(args)
    with LazyPirateClient(args.connect, timeout=args.timeout_ms / 1000, retries=args.retries,
                          name="lazy-client", trace=trace) as client:
        try:
            for n in range(1, args.requests + 1):
                client.request(str(n).encode())
        except ServerUnavailable as error:
            say("lazy-client", str(error), error=True)
            return 2
        say("lazy-client", f"{client.answered} of {args.requests} answered, "
            f"{client.timeouts} timeouts, in {time.monotonic() - started:.2f} s")
    return 0


# -- Simple Pirate --------------------------------------------------------------------------
def broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frontend", default=LOCAL, metavar="ENDPOINT",
                        help="where clients connect (default: 127.0.0.1, a random port)")
    parser.add_argument("--backend", default=LOCAL, metavar="ENDPOINT",
                        help="where workers connect (default: 127.0.0.1, a random port)")


def serve_broker(role_name: str, queue: SimplePirateQueue | ParanoidQueue) -> int:
    """Start a queue, say where clients and workers connect, and serve until stopped."""
    queue.start()
    for endpoint in (queue.frontend_endpoint, queue.backend_endpoint):
        warn_if_public(role_name, endpoint)
    return serve(role_name, queue, announce=[f"frontend (clients) on {queue.frontend_endpoint}",
                                             f"backend (workers) on {queue.backend_endpoint}"])


@role("simple-queue", "the Simple Pirate queue: each request to the least recently used worker",
      broker_options)
def simple_queue(args: argparse.Namespace) -> int:
    queue = SimplePirateQueue("simple-queue", frontend=args.frontend, backend=args.backend,
                              trace=make_trace(args))
    return serve_broker("simple-queue", queue)


def worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, metavar="ENDPOINT",
                        help="the queue's backend, e.g. tcp://127.0.0.1:5556")
    parser.add_argument("--name", metavar="NAME", default=f"worker-{os.getpid()}",
                        help="the worker's identity at the queue (default: worker-PID)")
    parser.add_argument("--work-ms", type=float, default=0.0, metavar="MS",
                        help="time spent on each request")


def simple_worker_options(parser: argparse.ArgumentParser) -> None:
    worker_options(parser)
    add_fault_options(parser)


@role("simple-worker", "a Simple Pirate worker: says READY, then echoes every request",
      simple_worker_options)
def simple_worker(args: argparse.Namespace) -> int:
    worker = SimpleWorker(args.name, connect=args.connect, work_s=args.work_ms / 1000,
                          faults=faults_from(args), trace=make_trace(args))
    worker.start()
    return serve("simple-worker", worker, announce=[f"{args.name} connected to {args.connect}"])


# -- Paranoid Pirate ------------------------------------------------------------------------
def heartbeat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heartbeat-ms", type=float, default=1000, metavar="MS",
                        help="send a heartbeat this often (default 1000)")
    parser.add_argument("--liveness", type=int, default=3, metavar="N",
                        help="a peer silent for N heartbeats is dead (default 3)")


def paranoid_queue_options(parser: argparse.ArgumentParser) -> None:
    broker_options(parser)
    heartbeat_options(parser)


@role("paranoid-queue", "the Paranoid Pirate queue: heartbeats both ways, RFC 6",
      paranoid_queue_options)
def paranoid_queue(args: argparse.Namespace) -> int:
    queue = ParanoidQueue("paranoid-queue", frontend=args.frontend, backend=args.backend,
                          heartbeat_interval=args.heartbeat_ms / 1000, liveness=args.liveness,
                          trace=make_trace(args), trace_messages=not args.quiet)
    return serve_broker("paranoid-queue", queue)


def paranoid_worker_options(parser: argparse.ArgumentParser) -> None:
    worker_options(parser)
    heartbeat_options(parser)
    parser.add_argument("--reconnect-min-ms", type=float, default=1000, metavar="MS",
                        help="first wait before reconnecting to a silent queue (default 1000)")
    parser.add_argument("--reconnect-max-ms", type=float, default=32000, metavar="MS",
                        help="the wait doubles up to this (default 32000)")
    add_fault_options(parser)


@role("paranoid-worker", "a Paranoid Pirate worker: echoes, heartbeats, reconnects",
      paranoid_worker_options)
def paranoid_worker(args: argparse.Namespace) -> int:
    worker = ParanoidWorker(args.name, connect=args.connect,
                            heartbeat_interval=args.heartbeat_ms / 1000,
                            liveness=args.liveness, work_s=args.work_ms / 1000,
                            reconnect_min=args.reconnect_min_ms / 1000,
                            reconnect_max=args.reconnect_max_ms / 1000,
                            faults=faults_from(args), trace=make_trace(args))
    worker.start()
    return serve("paranoid-worker", worker, announce=[f"{args.name} connected to {args.connect}"])


# -- Majordomo ------------------------------------------------------------------------------
MDP_HEARTBEAT_MS = 2500  # RFC 7's suggested interval; the Guide's mdbroker.py uses it too


def mdp_heartbeat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heartbeat-ms", type=float, default=MDP_HEARTBEAT_MS, metavar="MS",
                        help=f"send a heartbeat this often (default {MDP_HEARTBEAT_MS})")
    parser.add_argument("--liveness", type=int, default=3, metavar="N",
                        help="a peer silent for N heartbeats is dead (default 3)")


def majordomo_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, metavar="ENDPOINT",
                        help="where clients and workers connect (default: 127.0.0.1, a "
                        "random port)")
    mdp_heartbeat_options(parser)
    parser.add_argument("--request-expiry-ms", type=float, metavar="MS",
                        help="drop a request that waited this long for a worker "
                        "(default: never)")


@role("majordomo-broker", "the Majordomo broker: services by name, RFC 7 MDP/0.1 and "
      "RFC 8 MMI", majordomo_broker_options)
def majordomo_broker(args: argparse.Namespace) -> int:
    expiry = None if args.request_expiry_ms is None else args.request_expiry_ms / 1000
    broker = MajordomoBroker("majordomo-broker", bind=args.bind,
                             heartbeat_interval=args.heartbeat_ms / 1000,
                             liveness=args.liveness, request_expiry=expiry,
                             trace=make_trace(args), trace_messages=not args.quiet)
    broker.start()
    warn_if_public("majordomo-broker", broker.endpoint)
    return serve("majordomo-broker", broker, announce=[f"listening on {broker.endpoint}"])


def majordomo_worker_options(parser: argparse.ArgumentParser) -> None:
    worker_options(parser)
    parser.add_argument("--service", required=True, metavar="NAME",
                        help="the service this worker offers, e.g. echo")
    mdp_heartbeat_options(parser)
    parser.add_argument("--reconnect-min-ms", type=float, default=1000, metavar="MS",
                        help="first wait before reconnecting to a silent broker (default 1000)")
    parser.add_argument("--reconnect-max-ms", type=float, default=32000, metavar="MS",
                        help="the wait doubles up to this (default 32000)")
    add_fault_options(parser)


@role("majordomo-worker", "a Majordomo worker: offers a service, echoes each request body",
      majordomo_worker_options)
def majordomo_worker(args: argparse.Namespace) -> int:
    worker = MajordomoWorker(args.name, connect=args.connect, service=args.service,
                             heartbeat_interval=args.heartbeat_ms / 1000,
                             liveness=args.liveness, work_s=args.work_ms / 1000,
                             reconnect_min=args.reconnect_min_ms / 1000,
                             reconnect_max=args.reconnect_max_ms / 1000,
                             faults=faults_from(args), trace=make_trace(args))
    worker.start()
    return serve("majordomo-worker", worker,
                 announce=[f"{args.name} offers {args.service} at {args.connect}"])


def majordomo_client_options(parser: argparse.ArgumentParser) -> None:
    client_options(parser)
    parser.add_argument("--service", required=True, metavar="NAME",
                        help="the service to ask, e.g. echo")


@role("majordomo-client", "a Majordomo client: Lazy Pirate retries over MDP, checks each echo",
      majordomo_client_options)
def majordomo_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    mismatched = 0
    with MajordomoClient(args.connect, timeout=args.timeout_ms / 1000, retries=args.retries,
                         name="majordomo-client", trace=make_trace(args)) as client:
        try:
            for n in range(1, args.requests + 1):
                body = [str(n).encode()]
                reply = client.request(args.service, *body)
                if reply != body:
                    mismatched += 1
                    say("majordomo-client", f"mismatch: sent {body}, got {reply}", error=True)
        except ServerUnavailable as error:
            say("majordomo-client", str(error), error=True)
            return 2
        say("majordomo-client", f"{client.answered} of {args.requests} answered, "
            f"{mismatched} mismatched, {client.timeouts} timeouts, "
            f"in {time.monotonic() - started:.2f} s")
    return 1 if mismatched else 0


# -- the command line -----------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pirate", description="Run one Pirate-pattern role as a process.",
        epilog="Each role has its own --help, e.g. `pirate lazy-server --help`.")
    roles = top.add_subparsers(dest="role", required=True, metavar="ROLE")
    for name, (summary, arguments, body) in ROLES.items():
        sub = roles.add_parser(name, help=summary, description=summary)
        arguments(sub)
        sub.add_argument("--quiet", action="store_true", help="print no line per event")
        sub.set_defaults(body=body)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.body(args)
    except KeyboardInterrupt:
        return 130
