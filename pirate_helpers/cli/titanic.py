"""`pirate titanic` (RFC 9 on a SQLite store) and `pirate titanic-client`."""

from __future__ import annotations

import argparse
import time

from ..lazy import ServerUnavailable
from ..majordomo import MajordomoClient
from ..titanic import (
    CLOSE_SERVICE,
    ERROR,
    MAX_STORED,
    OK,
    PENDING,
    REPLY_SERVICE,
    REQUEST_SERVICE,
    StoreError,
    Titanic,
    status,
)
from .common import (
    Terminated,
    UsageError,
    exit_status,
    make_trace,
    raise_on_signals,
    role,
    say,
    serve,
)
from .lazy import client_options
from .majordomo import mdp_heartbeat_options, service_option
from .options import (
    add_join_option,
    add_reconnect_options,
    count,
    milliseconds,
    reconnect_range_error,
)


def titanic_options(parser: argparse.ArgumentParser) -> None:
    add_join_option(parser, "the broker's join line")
    parser.add_argument("--store", required=True, metavar="PATH",
                        help="the SQLite file requests and replies are kept in (made if new)")
    parser.add_argument("--max-stored", type=count, default=MAX_STORED, metavar="N",
                        help=f"requests kept at once; past it 500 and a warning "
                        f"(default {MAX_STORED})")
    parser.add_argument("--dispatch-timeout-ms", type=milliseconds, default=2500, metavar="MS",
                        help="wait this long for a service's reply before sending again "
                        "(default 2500)")
    mdp_heartbeat_options(parser)
    add_reconnect_options(parser, "broker")


@role("titanic", "Titanic, RFC 9: requests kept on disk (SQLite) until their reply is "
      "collected", titanic_options)
def titanic(args: argparse.Namespace) -> int:
    if why := reconnect_range_error(args):
        raise UsageError(why)
    server = Titanic("titanic", connect=args.join, store=args.store,
                     heartbeat_interval=args.heartbeat_ms / 1000, liveness=args.liveness,
                     reconnect_min=args.reconnect_min_ms / 1000,
                     reconnect_max=args.reconnect_max_ms / 1000,
                     dispatch_timeout=args.dispatch_timeout_ms / 1000,
                     max_stored=args.max_stored, trace=make_trace(args))
    try:
        server.start()
    except StoreError as error:
        raise UsageError(f"argument --store: {error}") from None
    return serve("titanic", server, announce=[
        f"serving titanic.request, titanic.reply, titanic.close at {args.join.endpoint}; "
        f"store {args.store}"],
        farewell=lambda: f"stored {server.stored}, replies stored {server.answered}")


def titanic_client_options(parser: argparse.ArgumentParser) -> None:
    client_options(parser)
    service_option(parser, "Titanic is to ask")
    parser.add_argument("--poll-max-ms", type=milliseconds, default=1000, metavar="MS",
                        help="polls for replies back off up to this (default 1000)")


@role("titanic-client", "a Titanic client: submits every request, collects the replies "
      "later, closes them", titanic_client_options)
def titanic_client(args: argparse.Namespace) -> int:
    started = time.monotonic()
    raise_on_signals()
    bodies = [f"{args.name}:{n}".encode() for n in range(1, args.requests + 1)]
    answered = mismatched = lost = 0
    with MajordomoClient(args.join, timeout=args.timeout_ms / 1000, retries=args.retries,
                         name="titanic-client", trace=make_trace(args)) as client:

        def call(service: bytes, *frames: bytes) -> list[bytes]:
            while True:  # 500: retry later (RFC 9)
                reply = client.request(service, *frames)
                if status(reply) != ERROR:
                    return reply
                time.sleep(0.1)

        def summary() -> str:
            return (f"{answered} of {args.requests} answered, {mismatched} mismatched, "
                    f"{lost} lost, in {time.monotonic() - started:.2f} s")

        try:
            waiting: dict[bytes, bytes] = {}
            for body in bodies:
                reply = call(REQUEST_SERVICE, args.service.encode(), body)
                if status(reply) != OK or len(reply) != 2:
                    raise UsageError(f"titanic.request refused: {reply!r}")
                waiting[reply[1]] = body
            backoff = 0.01
            while waiting:
                for uuid, body in list(waiting.items()):
                    reply = call(REPLY_SERVICE, uuid)
                    if status(reply) == PENDING:
                        continue
                    if status(reply) == OK:
                        answered += 1
                        if reply[1:] != [body]:
                            mismatched += 1
                            say("titanic-client", f"mismatch: sent {body}, got {reply[1:]}",
                                error=True)
                    else:
                        lost += 1
                        say("titanic-client", f"{uuid.decode()}: {reply!r}", error=True)
                    call(CLOSE_SERVICE, uuid)
                    del waiting[uuid]
                if waiting:
                    time.sleep(backoff)
                    backoff = min(2 * backoff, args.poll_max_ms / 1000)
        except ServerUnavailable as error:
            say("titanic-client", f"{error}; {summary()}", error=True)
            return 2
        except (KeyboardInterrupt, Terminated) as stop:
            say("titanic-client", f"stopped: {summary()}")
            return exit_status(stop)
        say("titanic-client", summary())
    return 1 if mismatched or lost else 0
