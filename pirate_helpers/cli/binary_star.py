"""`pirate binary-star` (one server of the pair) and `pirate binary-star-client`."""

from __future__ import annotations

import argparse
import time

from ..binary_star import PEER_EXPIRY, BinaryStarClient, BinaryStarServer
from ..endpoints import LOCAL
from ..lazy import ServerUnavailable
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
    add_request_options,
    add_security_options,
    bind_endpoint,
    client_keys,
    count,
    join_token,
    key_file,
    milliseconds,
    milliseconds_or_zero,
    security_from,
)

BSTAR_HEARTBEAT_MS = 1000  # the Guide's


def binary_star_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--primary", action="store_true", help="start as the primary")
    which.add_argument("--backup", action="store_true", help="start as the backup")
    parser.add_argument("--frontend", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where clients connect (default: 127.0.0.1, a random port)")
    parser.add_argument("--publish", default=LOCAL, type=bind_endpoint, metavar="ENDPOINT",
                        help="where this server publishes its state for the peer "
                        "(default: 127.0.0.1, a random port)")
    parser.add_argument("--subscribe", required=True, type=join_token, metavar="JOIN",
                        help="the peer's --publish endpoint (with CURVE: the peer's "
                        "'join (peer)' line)")
    parser.add_argument("--heartbeat-ms", type=milliseconds, default=BSTAR_HEARTBEAT_MS,
                        metavar="MS", help="publish the state this often; the peer is gone "
                        f"after {PEER_EXPIRY} heartbeats without one (default "
                        f"{BSTAR_HEARTBEAT_MS})")
    add_security_options(parser)


@role("binary-star", "one server of a Binary Star pair: echoes while active, fails over "
      "only when clients ask and the peer is gone", binary_star_options)
def binary_star(args: argparse.Namespace) -> int:
    who = "primary" if args.primary else "backup"
    server = BinaryStarServer(who, primary=args.primary, subscribe=str(args.subscribe),
                              frontend=args.frontend, publish=args.publish,
                              heartbeat_interval=args.heartbeat_ms / 1000,
                              security=security_from(args, args.frontend, args.publish),
                              trace=make_trace(args))
    server.start()
    warn_about_reach("binary-star", server.security, server.endpoint, server.publish_endpoint)
    status = serve("binary-star", server, announce=[
        f"{who} listening on {server.endpoint}",
        f"{who} publishing its state on {server.publish_endpoint}",
        *join_lines(server.security, clients=server.endpoint, peer=server.publish_endpoint)],
        farewell=lambda: (f"{server.served} served, {server.refused} refused while not "
                          f"active, {server.rejected} malformed, {server.bad_states} bad "
                          "states"))
    if server.fatal:
        say("binary-star", server.fatal, error=True)
        return 1
    return status


def binary_star_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--join", "--connect", dest="join", required=True, action="append",
                        type=join_token, metavar="JOIN",
                        help="a server's clients' join line; give it twice: primary, backup")
    parser.add_argument("--key-file", type=key_file, metavar="FILE",
                        help="keep this client's CURVE key pair in FILE (default: a fresh "
                        "pair each run)")
    add_request_options(parser)
    parser.add_argument("--timeout-ms", type=milliseconds, default=1000, metavar="MS",
                        help="wait this long for each reply (default 1000, the Guide's)")
    parser.add_argument("--settle-ms", type=milliseconds_or_zero,
                        default=PEER_EXPIRY * BSTAR_HEARTBEAT_MS, metavar="MS",
                        help="after a timeout, wait this long before asking the other server, "
                        "so it has seen its peer expire (default "
                        f"{PEER_EXPIRY * BSTAR_HEARTBEAT_MS}: {PEER_EXPIRY} heartbeats)")
    parser.add_argument("--retries", type=count, default=6, metavar="N",
                        help="tries in all, alternating servers, before giving up (default 6)")


@role("binary-star-client", "a Binary Star client: Lazy Pirate over the primary and the "
      "backup, checks each echo", binary_star_client_options)
def binary_star_client(args: argparse.Namespace) -> int:
    if len(args.join) != 2:
        args.parser.error("argument --connect: give it twice, the primary's and the backup's")
    started = time.monotonic()
    raise_on_signals()
    with BinaryStarClient(args.join, timeout=args.timeout_ms / 1000,
                          settle=args.settle_ms / 1000, retries=args.retries,
                          name="binary-star-client", keys=client_keys(args),
                          trace=make_trace(args)) as client:

        def summary() -> str:
            return (f"{client.answered} of {args.requests} answered, {client.mismatched} "
                    f"mismatched, {client.failovers} failovers, longest wait "
                    f"{client.longest_wait:.3f} s, in {time.monotonic() - started:.2f} s")

        try:
            for n in range(1, args.requests + 1):
                client.request(f"{args.name}:{n}".encode())
        except ServerUnavailable as error:
            say("binary-star-client", f"{error}: {summary()}", error=True)
            return 2
        except (KeyboardInterrupt, Terminated) as stop:
            say("binary-star-client", f"stopped: {summary()}")
            return exit_status(stop)
        say("binary-star-client", summary())
    return 1 if client.mismatched else 0
