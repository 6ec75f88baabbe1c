"""`pirate lazy-server` and `pirate lazy-client`."""

from __future__ import annotations

import argparse
import time

from ..endpoints import LOCAL
from ..lazy import LazyPirateClient, LazyServer, ServerUnavailable
from .common import (
    Terminated,
    exit_status,
    make_trace,
    raise_on_sigterm,
    role,
    say,
    serve,
    warn_if_public,
)
from .options import (
    add_fault_options,
    add_work_option,
    bind_endpoint,
    connect_endpoint,
    count,
    faults_from,
    milliseconds,
)


def lazy_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where to listen (default: 127.0.0.1, a random port)")
    add_work_option(parser)
    add_fault_options(parser)


@role("lazy-server", "a REP echo server, with faults on purpose", lazy_server_options)
def lazy_server(args: argparse.Namespace) -> int:
    server = LazyServer("lazy-server", bind=args.bind, work_s=args.work_ms / 1000,
                        faults=faults_from(args), trace=make_trace(args))
    server.start()
    warn_if_public("lazy-server", server.endpoint)
    return serve("lazy-server", server, announce=[f"listening on {server.endpoint}"])


def client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", required=True, type=connect_endpoint, metavar="ENDPOINT",
                        help="the server's or queue's endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--requests", type=count, default=10, metavar="N",
                        help="how many requests to send: '1', '2', ... (default 10)")
    parser.add_argument("--timeout-ms", type=milliseconds, default=2500, metavar="MS",
                        help="wait this long for each reply (default 2500)")
    parser.add_argument("--retries", type=count, default=3, metavar="N",
                        help="tries in all before giving up (default 3)")


@role("lazy-client", "the Lazy Pirate client: timeout, reconnect, resend, give up",
      client_options)
def lazy_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    raise_on_sigterm()
    with LazyPirateClient(args.connect, timeout=args.timeout_ms / 1000, retries=args.retries,
                          name="lazy-client", trace=make_trace(args)) as client:

        def summary() -> str:
            return (f"{client.answered} of {args.requests} answered, {client.timeouts} "
                    f"timeout{'' if client.timeouts == 1 else 's'}, "
                    f"in {time.monotonic() - started:.2f} s")

        try:
            for n in range(1, args.requests + 1):
                client.request(str(n).encode())
        except ServerUnavailable as error:
            say("lazy-client", str(error), error=True)
            return 2
        except (KeyboardInterrupt, Terminated) as stop:
            say("lazy-client", f"stopped: {summary()}")
            return exit_status(stop)
        say("lazy-client", summary())
    return 0
