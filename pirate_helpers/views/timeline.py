"""A trace drawn as a timeline: one lane per actor, time left to right.

Where a sequence diagram shows the order of messages, the timeline shows *when*: how long a
client waited before its retry, how many heartbeats passed before a worker was declared dead.
matplotlib is imported only when a timeline is drawn (it is a notebook extra, not a core need).

A reader must be able to count the arrows, so each one leans (it ends a little to the right of
where it starts, a dot marking its start) and an arrow that would lie on or touch another one
at any lane it spans is moved right until they stand `ARROW_GAP` of the picture's width apart:
two messages a millisecond apart are two arrows, and an arrow from the queue to `w2` crosses
`w1`'s lane away from `w1`'s own arrows. The time axis stays true to within a few gaps.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from ..trace import Event, Trace

# kind -> (marker, colour, label); other kinds are bookkeeping and are not drawn
MARKS = {
    "timeout": ("x", "tab:red", "timeout"),
    "retry": ("o", "tab:orange", "retry"),
    "give-up": ("X", "black", "give up"),
    "crash": ("*", "tab:red", "crash"),
    "drop": ("v", "tab:gray", "dropped request"),
    "freeze": ("s", "tab:cyan", "freeze"),
    "purge": ("D", "tab:purple", "expired (purged)"),
    "unreachable": ("o", "tab:purple", "gone (a send failed)"),
    "reject": ("^", "tab:brown", "rejected"),
    "reconnect": ("P", "tab:green", "reconnect"),
    "backoff": ("<", "tab:olive", "back off"),
    "lost": ("v", "tab:red", "request lost"),
    "requeue": (">", "tab:blue", "requeued"),
    "leave": ("d", "tab:purple", "left (DISCONNECT)"),
    "expire": ("1", "tab:gray", "request expired"),
    "hang": ("|", "tab:red", "still waiting"),
    "cut": ("$\\times$", "black", "network cut"),
    "heal": ("$\\checkmark$", "tab:green", "network healed"),
    "reset": ("$\\oslash$", "tab:red", "connections reset"),
    "disconnected": ("d", "tab:pink", "connection dropped (libzmq)"),
    "handshake_succeeded": ("+", "tab:green", "connection up (libzmq)"),
    "cancelled": ("x", "tab:gray", "cancelled"),
    "thaw": ("s", "tab:green", "queue thawed"),
    "partition": ("$\\times$", "tab:purple", "cut off by the queue"),
    "active": ("s", "tab:green", "becomes active"),
    "passive": ("s", "tab:gray", "becomes passive"),
    "failover": ("o", "tab:orange", "asks the other server"),
    "refuse": ("^", "tab:gray", "request refused (not active)"),
    "fatal": ("X", "tab:red", "split brain: fatal"),
}
HEARTBEAT_WORDS = ("heartbeat", "HEARTBEAT", "02")
ARROW_GAP = 0.008  # the least distance between two arrows at any lane, as a share of the width


def is_heartbeat(event: Event) -> bool:
    return event.kind == "heartbeat" or event.detail in HEARTBEAT_WORDS


class Arrow(NamedTuple):
    """An arrow as drawn: from lane `source` at x `start` to lane `target` at x `end`."""

    kind: str  # "message" or "heartbeat"
    t: float  # when it happened
    start: float
    end: float
    source: int
    target: int

    def at(self, lane: int) -> float | None:
        """Where the arrow is when it crosses `lane`, or None if it does not reach it."""
        low, high = sorted((self.source, self.target))
        if not low <= lane <= high:
            return None
        if low == high:
            return self.start
        return self.start + (self.end - self.start) * (lane - self.source) / (self.target
                                                                             - self.source)


def place(arrows: list[Arrow], kind: str, t: float, source: int, target: int,
          gap: float) -> Arrow:
    """The arrow for a message at `t`, moved right until it stands at least `gap` away from
    every arrow of its kind already placed, at every lane both span."""
    start = t
    while True:
        arrow = Arrow(kind, t, start, start + gap, source, target)
        clash = max((other.start for other in arrows
                     if other.kind == kind and other.end > start - 2 * gap
                     and too_close(arrow, other, gap)), default=None)
        if clash is None:
            return arrow
        start = max(start, clash) + gap / 4


def too_close(arrow: Arrow, other: Arrow, gap: float) -> bool:
    low = max(min(arrow.source, arrow.target), min(other.source, other.target))
    high = min(max(arrow.source, arrow.target), max(other.source, other.target))
    for lane in range(low, high + 1):
        here, there = arrow.at(lane), other.at(lane)
        if here is not None and there is not None and abs(here - there) < gap * 0.999:
            return True
    return False


class Timeline:
    """A drawn timeline; shows itself as a PNG in a notebook.

    `lanes` (top to bottom), `marks` (how many of each kind were drawn) and `arrows` (where
    each arrow was drawn) let a check cell assert on what the picture shows.
    """

    def __init__(self, figure, lanes: list[str], marks: Counter, arrows: list[Arrow]) -> None:
        self.figure = figure
        self.lanes = lanes
        self.marks = marks
        self.arrows = arrows

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def timeline(
    trace: Trace | Iterable[Event], *, participants: Iterable[str] = (), title: str = ""
) -> Timeline:
    """Draw `trace`: messages as arrows between lanes, faults and timeouts as markers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    events = trace.events if isinstance(trace, Trace) else list(trace)
    lanes = list(dict.fromkeys(participants))
    for event in events:
        for name in (event.actor, event.peer):
            if name is not None and name not in lanes:
                lanes.append(name)
    row = {name: index for index, name in enumerate(lanes)}

    figure = Figure(figsize=(10, 0.7 * len(lanes) + 1.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    marks: Counter = Counter()
    labelled: set[str] = set()
    arrows: list[Arrow] = []
    end = max((event.t for event in events), default=1.0)
    gap = ARROW_GAP * (end * 1.05 + 0.01)
    for event in events:
        if event.peer is not None and event.kind in ("send", "recv"):
            source, target = event.actor, event.peer
            if event.kind == "recv":
                source, target = target, source
            heartbeat = is_heartbeat(event)
            kind = "heartbeat" if heartbeat else "message"
            arrow = place(arrows, kind, event.t, row[source], row[target], gap)
            arrows.append(arrow)
            colour = "tab:green" if heartbeat else "tab:blue"
            axes.annotate(
                "", xy=(arrow.end, arrow.target), xytext=(arrow.start, arrow.source),
                arrowprops={"arrowstyle": "->", "lw": 0.6 if heartbeat else 1.2,
                            "color": colour, "alpha": 0.4 if heartbeat else 0.8,
                            "shrinkA": 0, "shrinkB": 0},
            )
            if not heartbeat:
                axes.plot(arrow.start, arrow.source, ".", color=colour, markersize=3)
            marks[kind] += 1
            continue
        if event.kind not in MARKS:
            continue  # bookkeeping such as a server's own recv: its peer drew the arrow
        marker, colour, label = MARKS[event.kind]
        style = {"color": colour, "s": 70}
        if event.kind == "retry":  # a ring drawn around the timeout that caused it
            style = {"facecolors": "none", "edgecolors": colour, "s": 150}
        axes.scatter(event.t, row[event.actor], marker=marker, zorder=3,
                     label=None if label in labelled else label, **style)
        labelled.add(label)
        marks[event.kind] += 1

    end = max([end, *(arrow.end for arrow in arrows)])
    axes.set_xlim(-0.02 * end, end * 1.03 + 0.01)
    axes.set_ylim(max(len(lanes), 1) - 0.5, -0.5)
    axes.set_yticks(range(len(lanes)), lanes)
    axes.set_xlabel("seconds")
    axes.grid(axis="x", alpha=0.3)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    if labelled:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize="small")
    if title:
        axes.set_title(title)
    return Timeline(figure, lanes, marks, arrows)
