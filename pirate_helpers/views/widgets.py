"""A live dashboard for a running broker: workers ready, busy or expired, and the counts.

The dashboard is an actor like the broker it watches: its thread reads a `snapshot()` a few
times a second and sets the value of an HTML widget that the notebook displayed from the
main thread. It never prints and never writes into a cell (output from a thread would land
in whichever cell runs next); it stops with the actor it watches, or with `stop_all()`.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from ..actor import Actor

Snapshot = dict  # {"workers": {name: "ready" | "busy" | "expired"}, "counts": {label: int}}

STATE_COLOURS = {"ready": "#2e7d32", "busy": "#ef6c00", "expired": "#9e9e9e"}


def render(snapshot: Snapshot, title: str = "") -> str:
    """The snapshot as a small HTML panel (a pure function: easy to test and to look at)."""
    workers, served = snapshot.get("workers", {}), snapshot.get("served", {})
    badges = "".join(
        f'<span style="display:inline-block;margin:2px;padding:2px 8px;border-radius:10px;'
        f'color:white;background:{STATE_COLOURS.get(state, "#607d8b")}">'
        f"{html.escape(name)}: {html.escape(state)}"
        f"{f' · {served[name]} served' if name in served else ''}</span>"
        for name, state in sorted(workers.items())
    ) or "<i>no workers</i>"
    counts = "".join(
        f"<td style='padding:0 12px'><b>{value}</b><br><small>{html.escape(label)}</small></td>"
        for label, value in snapshot.get("counts", {}).items()
    )
    heading = f"<b>{html.escape(title)}</b><br>" if title else ""
    chaos = "".join(f"<div style='color:#ad1457'><b>chaos:</b> {html.escape(line)}</div>"
                    for line in snapshot.get("chaos", []))
    return (f"<div class='pirate-dashboard'>{heading}{badges}<table><tr>{counts}</tr></table>"
            f"{chaos}</div>")


class Dashboard(Actor):
    """Shows `snapshot()` live in a notebook; display `dashboard.widget` in a cell.

    `watch` is the actor the dashboard follows: when it stops, the dashboard draws once more
    and stops too.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        watch: Actor | None = None,
        title: str = "",
        interval: float = 0.1,
        name: str = "dashboard",
    ) -> None:
        import ipywidgets

        super().__init__(name)
        self.snapshot = snapshot
        self.watch = watch
        self.title = title
        self.interval = interval
        self.widget = ipywidgets.HTML(render({}, title))
        self.updates = 0

    def refresh(self) -> None:
        self.widget.value = render(self.snapshot(), self.title)
        self.updates += 1

    def run(self) -> None:
        while self.watch is None or self.watch.running:
            self.refresh()
            self.pause(self.interval)
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def with_clients(snapshot: Callable[[], Snapshot], clients: list) -> Callable[[], Snapshot]:
    """`snapshot` plus what only the clients (`LazyPirateClient`s) know: how many requests
    they retried. `clients` may grow while a dashboard runs."""

    def combined() -> Snapshot:
        view = snapshot()
        # every failed try is followed by a retry, or by giving up
        view["counts"]["retried"] = sum(client.timeouts + client.mismatched - client.gave_up
                                        for client in clients)
        return view

    return combined


class Progress:
    """A progress bar with the expected time, for a run longer than a few seconds.

    Made and called from the main thread (the cell that runs the experiment): `progress(done,
    total)`. A run expected to take under `show_from_s` shows nothing: a bar that flashes by
    says nothing, and CI runs the small defaults.
    """

    SHOW_FROM_S = 3.0

    def __init__(self, expected_s: float, what: str = "", show_from_s: float = SHOW_FROM_S):
        self.expected_s = expected_s
        self.what = what
        self.shown = expected_s >= show_from_s
        self.done = self.total = 0
        if self.shown:
            import ipywidgets
            from IPython.display import display

            self.bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0)
            self.label = ipywidgets.Label(self._text())
            display(ipywidgets.HBox([self.bar, self.label]))

    def _text(self) -> str:
        counted = f"{self.done} of {self.total} " if self.total else ""
        return f"{self.what} {counted}(expected about {self.expected_s:.0f} s)".strip()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.shown:
            self.bar.value = done / total if total else 0.0
            self.label.value = self._text()
