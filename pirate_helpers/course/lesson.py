"""What a lesson cell says when it is run out of order: which cell to run first, in one line.

A learner runs the cleanup in the middle, restarts the kernel halfway, or skips a cell. A cell
that continues from an earlier one starts with `need(globals(), "the cells under 'Set-up'",
"queue", ...)`: if a name is missing, names an actor that has stopped or a socket that was
closed, it raises `RunFirst` saying what to run, instead of a NameError or a bare
AssertionError three lines later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import zmq

from ..actor import Actor


class RunFirst(Exception):
    """This cell continues from an earlier one that has not run (or was undone)."""

    def _render_traceback_(self) -> list[str]:  # IPython: the hint alone, without frames
        return [f"RunFirst: {self}"]


def need(namespace: Mapping[str, Any], where: str, *names: str) -> None:
    """Raise RunFirst unless each of `names` is defined in `namespace`, each actor among them
    is running and each socket open; `where` names the cells to run ("the cells under 'X'")."""
    for name in names:
        if name not in namespace:
            raise RunFirst(f"run {where} first: `{name}` is not defined yet")
        value = namespace[name]
        if isinstance(value, Actor) and not value.running:
            raise RunFirst(f"run {where} again: `{name}` has stopped (it crashed, or the "
                           f"cleanup cell or an interrupt stopped it)")
        if isinstance(value, zmq.Socket) and value.closed:
            raise RunFirst(f"run {where} again: the socket `{name}` is closed")
        if isinstance(value, zmq.Context) and value.closed:
            raise RunFirst(f"run {where} again: the context `{name}` was terminated (the "
                           f"cleanup cell ends it)")
