"""`pirate freelance-server` and `pirate freelance-client` (RFC 10, no broker)."""

from __future__ import annotations

import argparse
import time

from ..endpoints import LOCAL
from ..freelance import MODELS, ROUTER, FreelanceClient, FreelanceServer, NoReply
from .common import (
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
    add_request_options,
    add_security_options,
    bind_endpoint,
    client_keys,
    count,
    faults_from,
    join_token,
    key_file,
    milliseconds,
    security_from,
)


def server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where to listen (default: 127.0.0.1, a random port); the "
                        "server's identity is this endpoint, as RFC 10 asks")
    add_security_options(parser)
    add_fault_options(parser)


@role("freelance-server", "a Freelance (RFC 10) echo server: PING gets PONG, requests echo",
      server_options)
def freelance_server(args: argparse.Namespace) -> int:
    server = FreelanceServer("freelance-server", bind=args.bind, faults=faults_from(args),
                             security=security_from(args, args.bind), trace=make_trace(args))
    server.start()
    warn_about_reach("freelance-server", server.security, server.endpoint)
    return serve("freelance-server", server, announce=[
        f"listening on {server.endpoint}", *join_lines(server.security, clients=server.endpoint)])


def client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", "--join", dest="servers", action="append", required=True,
                        type=join_token, metavar="JOIN",
                        help="a server's join line (tcp://HOST:PORT, with CURVE followed by "
                        "/KEY); give one --connect per server")
    parser.add_argument("--model", type=int, choices=sorted(MODELS), default=ROUTER,
                        help="1 sequential (one server at a time, the next after a timeout), "
                        "2 shotgun (every server at once, first reply wins), 3 router (pings, "
                        "the first live server) (default 3)")
    add_request_options(parser)
    parser.add_argument("--timeout-ms", type=milliseconds, default=1000, metavar="MS",
                        help="wait this long for each try (default 1000)")
    parser.add_argument("--tries", type=count, default=3, metavar="N",
                        help="tries in all for each request before it is lost (default 3)")
    parser.add_argument("--ping-ms", type=milliseconds, default=1000, metavar="MS",
                        help="model 3: ping every server this often (default 1000)")
    parser.add_argument("--liveness", type=count, default=3, metavar="N",
                        help="model 3: a server silent for N pings is skipped (default 3)")
    parser.add_argument("--key-file", type=key_file, metavar="FILE",
                        help="keep this client's own CURVE key pair in FILE (created when "
                        "missing); default: a fresh pair each run")


@role("freelance-client", "a Freelance (RFC 10) client in the Guide's model 1, 2 or 3",
      client_options)
def freelance_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    raise_on_signals()
    if len({join.endpoint for join in args.servers}) != len(args.servers):
        args.parser.error("argument --connect: each server once")
    lost = mismatched = 0
    client = FreelanceClient([str(join) for join in args.servers], model=args.model,
                             timeout=args.timeout_ms / 1000, tries=args.tries,
                             ping_interval=args.ping_ms / 1000, liveness=args.liveness,
                             name="freelance-client", keys=client_keys(args),
                             trace=make_trace(args))

    def summary() -> str:
        return (f"{client.answered - mismatched} of {args.requests} answered, {mismatched} "
                f"mismatched, {lost} lost, in {time.monotonic() - started:.2f} s")

    with client:
        try:
            for n in range(1, args.requests + 1):
                body = [f"{args.name}:{n}".encode()]
                try:
                    reply = client.request(*body)
                except NoReply as error:
                    lost += 1
                    say("freelance-client", f"request {n} lost: {error}", error=True)
                    continue
                if reply != body:
                    mismatched += 1
                    say("freelance-client", f"mismatch: sent {body}, got {reply}", error=True)
        except (KeyboardInterrupt, Terminated) as stop:
            say("freelance-client", f"stopped: {summary()}")
            return exit_status(stop)
    say("freelance-client", summary())
    return 0 if lost == mismatched == 0 else 1
