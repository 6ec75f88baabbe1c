"""`pirate ROLE ...`: every broker, worker, server and client as its own process.

Instructors run these across terminals or laptops; the tests run them as subprocesses.
Each role prints its endpoint when it starts and its events (`--quiet`: only the notable
ones), and ends cleanly on Ctrl-C or SIGTERM. Bind addresses default to 127.0.0.1 on a
random port. A mistake on the command line gets one line, `pirate ROLE: error: ...`, and
exit status 2, never a traceback: options are checked as they are parsed (`options.py`),
and an endpoint libzmq still refuses (a port in use) is named with its option.

One module per pattern registers its roles (`lazy.py`, `simple.py`, `paranoid.py`,
`majordomo.py`, `binary_star.py`, `freelance.py`, and `relay.py` for network faults).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..endpoints import MAX_MESSAGE_BYTES, EndpointError, set_max_message_bytes
from ..security import OpenToNetwork
from . import (  # noqa: F401  (each registers its roles)
    binary_star,
    freelance,
    lazy,
    majordomo,
    paranoid,
    relay,
    simple,
)
from .common import ROLES, UsageError
from .options import byte_count


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (`pirate ROLE: error: ...`), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(
        prog="pirate", description="Run one Pirate-pattern role as a process.",
        epilog="Each role has its own --help, e.g. `pirate lazy-server --help`.")
    roles = top.add_subparsers(dest="role", required=True, metavar="ROLE",
                               parser_class=OneLineParser)
    for name, (summary, arguments, body) in ROLES.items():
        sub = roles.add_parser(name, help=summary, description=summary)
        arguments(sub)
        sub.add_argument("--quiet", action="store_true",
                         help="leave out the line per message; warnings and summaries stay")
        sub.add_argument("--max-message-bytes", type=byte_count, default=MAX_MESSAGE_BYTES,
                         metavar="N", help="refuse any frame larger than this "
                         f"(default {MAX_MESSAGE_BYTES})")
        sub.set_defaults(body=body, parser=sub)
    return top


def _option_of(args: argparse.Namespace, value: str) -> str:
    """The option that gave `value`, e.g. '--frontend', for an error message."""
    for dest, given in vars(args).items():
        if given == value:
            return "--" + dest.replace("_", "-")
    return "endpoint"


def parse(argv: Sequence[str] | None = None,
          top: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The options, each checked; a mistake exits with status 2 and one line."""
    args, unknown = (top or parser()).parse_known_args(argv)
    if unknown:  # said by the role's parser, so the line names the role
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    prog = f"pirate {args.role}"
    set_max_message_bytes(args.max_message_bytes)
    try:
        return args.body(args)
    except EndpointError as error:
        print(f"{prog}: error: argument {_option_of(args, error.endpoint)}: {error}",
              file=sys.stderr)
        return 2
    except (UsageError, OpenToNetwork) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except TimeoutError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
