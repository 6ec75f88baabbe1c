"""A parameter sweep drawn as a plot: what was measured beside what the pattern promises.

matplotlib is imported only when a plot is drawn (a notebook extra, not a core need).
"""

from __future__ import annotations

import io

from .tables import Table


class Plot:
    """A drawn plot; shows itself as a PNG in a notebook. `points` (x, y) and `reference`
    (x, y) are what it drew, for a check cell to assert on."""

    def __init__(self, figure, points: list[tuple[float, float]],
                 reference: list[tuple[float, float]]) -> None:
        self.figure = figure
        self.points = points
        self.reference = reference

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def sweep_plot(
    table: Table,
    x: str,
    y: str,
    *,
    reference: str | None = None,
    reference_label: str = "",
    group: str | None = None,
    title: str = "",
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Plot:
    """Measured `y` against `x` as dots (one colour per value of `group`), and the column
    `reference` as a dashed line: the promise the measurements should follow."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = [table[i] for i in range(len(table))]
    groups = list(dict.fromkeys(row[group] for row in rows)) if group else [None]
    points = []
    for value in groups:
        mine = [row for row in rows if group is None or row[group] == value]
        xs, ys = [row[x] for row in mine], [row[y] for row in mine]
        points += list(zip(xs, ys, strict=True))
        axes.scatter(xs, ys, zorder=3, label=f"{group} = {value}" if group else "measured")
    line: list[tuple[float, float]] = []
    if reference is not None:
        line = sorted({(row[x], row[reference]) for row in rows})
        axes.plot([p[0] for p in line], [p[1] for p in line], "--", color="tab:gray",
                  label=reference_label or reference)
    axes.set_xlabel(xlabel or x)
    axes.set_ylabel(ylabel or y)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    axes.legend(frameon=False, fontsize="small")
    if title:
        axes.set_title(title)
    return Plot(figure, points, line)
