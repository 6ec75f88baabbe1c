"""What a lesson cell says when it is run out of order: which cell to run first, in one line.

A learner runs the cleanup in the middle, restarts the kernel halfway, or skips a cell. A cell
that continues from an earlier one starts with `need(globals(), "the section", "queue", ...)`:
if a name is missing, or names an actor that has stopped, it raises `RunFirst` naming the
section to run again, instead of a NameError or a bare AssertionError three lines later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actor import Actor


class RunFirst(Exception):
    """This cell continues from an earlier one that has not run (or was undone)."""

    def _render_traceback_(self) -> list[str]:  # IPython: the hint alone, without frames
        return [f"RunFirst: {self}"]


def need(namespace: Mapping[str, Any], section: str, *names: str) -> None:
    """Raise RunFirst unless every one of `names` is defined in `namespace` and each actor
    among them is still running; `section` is the heading whose cells to run again."""
    for name in names:
        if name not in namespace:
            raise RunFirst(f"run the cells of '{section}' first: `{name}` is not defined yet")
        value = namespace[name]
        if isinstance(value, Actor) and not value.running:
            raise RunFirst(f"run the cells of '{section}' again: `{name}` has stopped "
                           f"(the cleanup cell, or a kernel interrupt, stops every actor)")
