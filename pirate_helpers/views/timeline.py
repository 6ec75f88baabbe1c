"""A trace drawn as a timeline: one lane per actor, time left to right.

Where a sequence diagram shows the order of messages, the timeline shows *when*: how long a
client waited before its retry, how many heartbeats passed before a worker was declared dead.
matplotlib is imported only when a timeline is drawn (it is a notebook extra, not a core need).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable

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
    "active": ("s", "tab:green", "becomes active"),
    "passive": ("s", "tab:gray", "becomes passive"),
    "failover": ("o", "tab:orange", "asks the other server"),
    "refuse": ("^", "tab:gray", "request refused (not active)"),
    "fatal": ("X", "tab:red", "split brain: fatal"),
}
HEARTBEAT_WORDS = ("heartbeat", "HEARTBEAT", "02")


def is_heartbeat(event: Event) -> bool:
    return event.kind == "heartbeat" or event.detail in HEARTBEAT_WORDS


class Timeline:
    """A drawn timeline; shows itself as a PNG in a notebook.

    `lanes` (top to bottom) and `marks` (how many of each kind were drawn) let a check cell
    assert on what the picture shows.
    """

    def __init__(self, figure, lanes: list[str], marks: Counter) -> None:
        self.figure = figure
        self.lanes = lanes
        self.marks = marks

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
    for event in events:
        if event.peer is not None and event.kind in ("send", "recv"):
            source, target = event.actor, event.peer
            if event.kind == "recv":
                source, target = target, source
            heartbeat = is_heartbeat(event)
            kind = "heartbeat" if heartbeat else "message"
            axes.annotate(
                "", xy=(event.t, row[target]), xytext=(event.t, row[source]),
                arrowprops={"arrowstyle": "->", "lw": 0.6 if heartbeat else 1.2,
                            "color": "tab:green" if heartbeat else "tab:blue",
                            "alpha": 0.4 if heartbeat else 0.8},
            )
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

    end = max((event.t for event in events), default=1.0)
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
    return Timeline(figure, lanes, marks)
