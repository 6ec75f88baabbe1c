"""`pirate lazy-server` and `pirate lazy-client`."""

from __future__ import annotations

import argparse
import sys
import time

from ..endpoints import LOCAL
from ..lazy import LazyPirateClient, LazyServer, ServerUnavailable, SteadyLoad
from ..trace import plural
from .common import (
    StopSignals,
    Terminated,
    exit_status,
    join_lines,
    make_trace,
    raise_on_signals,
    role,
    say,
    serve,
    warn_about_reach,
)
from .options import (
    add_fault_options,
    add_join_option,
    add_request_options,
    add_security_options,
    add_work_option,
    bind_endpoint,
    client_keys,
    count,
    faults_from,
    milliseconds,
    per_second,
    security_from,
)


def lazy_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where to listen (default: 127.0.0.1, a random port)")
    add_work_option(parser)
    add_security_options(parser)
    add_fault_options(parser)


@role("lazy-server", "an echo server for REQ clients, with faults on purpose",
      lazy_server_options)
def lazy_server(args: argparse.Namespace) -> int:
    server = LazyServer("lazy-server", bind=args.bind, work_s=args.work_ms / 1000,
                        faults=faults_from(args), security=security_from(args, args.bind),
                        trace=make_trace(args))
    server.start()
    warn_about_reach("lazy-server", server.security, server.endpoint)
    return serve("lazy-server", server, announce=[
        f"listening on {server.endpoint}",
        *join_lines(server.security, clients=server.endpoint)])


def client_options(parser: argparse.ArgumentParser) -> None:
    add_join_option(parser, "the server's or queue's clients' join line")
    add_request_options(parser)
    parser.add_argument("--timeout-ms", type=milliseconds, default=2500, metavar="MS",
                        help="wait this long for each reply (default 2500)")
    parser.add_argument("--retries", type=count, default=3, metavar="N",
                        help="tries in all before giving up (default 3)")
    load = parser.add_argument_group("a steady load (what an instructor runs during chaos)")
    load.add_argument("--forever", action="store_true",
                      help="keep sending until Ctrl-C or SIGTERM; a request that fails every "
                      "try counts as lost and the next one goes; one live summary line")
    load.add_argument("--rate", type=per_second, metavar="R",
                      help="requests per second at most (default with --forever: 10)")
    load.add_argument("--summary-ms", type=milliseconds, default=1000, metavar="MS",
                      help="refresh the live summary this often (default 1000)")


@role("lazy-client", "the Lazy Pirate client: timeout, reconnect, resend, give up",
      client_options)
def lazy_client(args: argparse.Namespace) -> int:
    return run_client(args, "lazy-client")


def run_client(args: argparse.Namespace, role_name: str,
               client_class: type[LazyPirateClient] = LazyPirateClient,
               prefix: tuple[bytes, ...] = ()) -> int:
    """What every client role does with its options (`lazy-client`, and `majordomo-client`
    with its `MajordomoClient` and the service as `prefix`): `--requests` bodies
    `NAME:1`, `NAME:2`, ... each checked to come back as its echo, then one summary line;
    or with `--forever` / `--rate`, a steady load. Exit status 2 when it gave up (or lost
    a request under load), 1 when a reply was not its echo, else 0."""
    if args.forever or args.rate is not None:
        return steady_load(args, role_name, client_class, prefix)
    started = time.monotonic()
    raise_on_signals()
    mismatched = 0
    with client_class(args.join, timeout=args.timeout_ms / 1000, retries=args.retries,
                      name=role_name, keys=client_keys(args), trace=make_trace(args)) as client:

        def summary() -> str:
            return (f"{client.answered} of {args.requests} answered, "
                    f"{plural(client.timeouts, 'timeout')}, {mismatched} mismatched, "
                    f"in {time.monotonic() - started:.2f} s")

        try:
            for n in range(1, args.requests + 1):
                body = f"{args.name}:{n}".encode()
                reply = client.request(*prefix, body)
                if reply != [body]:
                    mismatched += 1
                    say(role_name, f"mismatch: sent {body!r}, got {reply!r}"[:200], error=True)
        except ServerUnavailable as error:
            say(role_name, str(error), error=True)
            return 2
        except (KeyboardInterrupt, Terminated) as stop:
            say(role_name, f"stopped: {summary()}")
            return exit_status(stop)
        say(role_name, summary())
    return 1 if mismatched else 0


def steady_load(args: argparse.Namespace, role_name: str,
                client_class: type[LazyPirateClient], prefix: tuple[bytes, ...]) -> int:
    """`--forever` / `--rate`: a `SteadyLoad` with one live summary line (rewritten in place
    on a terminal, one line per refresh otherwise), and the final one on the way out."""
    if args.forever:
        args.quiet = True  # a line per message would bury the live summary
    signals = StopSignals()
    load = SteadyLoad(args.join, args.name, rate=args.rate or 10.0,
                      requests=None if args.forever else args.requests,
                      timeout=args.timeout_ms / 1000, retries=args.retries,
                      keys=client_keys(args), trace=make_trace(args),
                      client_class=client_class, prefix=prefix)
    in_place = sys.stdout.isatty()
    load.start()
    every = args.summary_ms / 1000
    next_summary = time.monotonic() + every
    try:
        while load.running and not signals.wait(min(0.05, every)):
            if time.monotonic() < next_summary:
                continue
            next_summary += every
            if in_place:
                print(f"\r{load.summary_line()}\x1b[K", end="", flush=True)
            else:
                say(role_name, f"live: {load.summary_line()}")
    finally:
        load.stop()
    if in_place:
        print()
    if signals.received:
        say(role_name, f"stopped: {load.summary_line()}")
        return 128 + signals.received[0]
    say(role_name, load.summary_line())
    if load.lost:
        return 2
    return 1 if load.summary()["mismatched"] else 0
