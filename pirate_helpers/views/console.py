"""A live terminal table of a running queue: what an instructor projects during a workshop.

It shows what a queue's `snapshot()` returns (workers with their state, requests served
and how long ago each was last heard, the counts, failed CURVE handshakes, chaos in
progress: a worker cut off, the queue frozen), drawn with rich,
so the view knows nothing of sockets. `render` is a pure function of a snapshot (easy to test);
`TerminalDashboard` keeps it live while a role serves.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATE_STYLES = {"ready": "green", "busy": "yellow", "expired": "red"}
MAX_ROWS = 40
"""Workers shown by name; more are summed up in one row (a screen holds no more, and
drawing 8,000 rows five times a second took a core)."""
REFRESH_S = 1.0
"""How often a live dashboard redraws: a person reads it, "last heard" counts in tenths."""


def render(snapshot: dict, title: str = "", max_rows: int = MAX_ROWS) -> Group:
    """The snapshot as a table of workers (the first `max_rows` by name, the rest counted
    by state in one row) and a line of counts."""
    workers = Table(title=title or None, title_justify="left", expand=False)
    for column, justify in (("worker", "left"), ("state", "left"), ("served", "right"),
                            ("last heard", "right")):
        workers.add_column(column, justify=justify)
    served, heard = snapshot.get("served", {}), snapshot.get("last heard", {})
    every = snapshot.get("workers", {})
    shown = heapq.nsmallest(max_rows, every)  # by name, without sorting them all
    for name in shown:
        state, ago = every[name], heard.get(name)
        workers.add_row(name, Text(state, style=STATE_STYLES.get(state, "")),
                        str(served.get(name, "-")), "-" if ago is None else f"{ago:.1f} s ago")
    if len(every) > len(shown):
        states = Counter(every.values())
        for name in shown:
            states[every[name]] -= 1
        by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items()) if n)
        workers.add_row(Text(f"… {len(every) - len(shown)} more", style="dim"),
                        Text(by_state, style="dim"), "", "")
    if not every:
        workers.add_row(Text("no workers yet", style="dim"), "", "", "")
    counts = Text()
    for label, value in snapshot.get("counts", {}).items():
        alarming = label == "failed handshakes" and value
        counts.append(f"{label}: ", style="bold")
        counts.append(f"{value}   ", style="bold red" if alarming else "")
    if snapshot.get("counts", {}).get("failed handshakes"):
        counts.append("\n(failed handshakes: peers with a wrong or missing key; to them "
                      "this queue looks dead)", style="red")
    for chaos in snapshot.get("chaos", []):  # what the instructor broke on purpose, live
        counts.append(f"\nchaos: {chaos}", style="bold magenta")
    if snapshot.get("counts", {}).get("closed before handshake"):
        counts.append("\n(closed before handshake: connections that hung up before the "
                      "keys were checked, e.g. a port scan; never a wrong key)", style="dim")
    return Group(workers, counts)


class TerminalDashboard:
    """`with TerminalDashboard(queue.snapshot, "classroom"): ...`, calling `refresh()` now
    and then (the role's serving loop does). On a terminal the table redraws in place;
    otherwise the last one is printed when it ends."""

    def __init__(self, snapshot: Callable[[], dict], title: str = "",
                 console: Console | None = None, every: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.snapshot, self.title = snapshot, title
        self.every, self.clock = every, clock
        self.drawn_at = clock()
        self.live = Live(render(snapshot(), title), console=console, auto_refresh=False,
                         redirect_stdout=False, redirect_stderr=False)

    def refresh(self, force: bool = False) -> None:
        """Redraw, at most once per `every` s (the serving loop calls this more often)."""
        if not force and self.clock() - self.drawn_at < self.every:
            return
        self.drawn_at = self.clock()
        self.live.update(render(self.snapshot(), self.title), refresh=True)

    def __enter__(self) -> TerminalDashboard:
        self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.refresh(force=True)
        self.live.stop()
