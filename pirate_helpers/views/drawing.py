"""Pictures of what really happened: a trace drawn as a Mermaid sequence diagram.

JupyterLab 4.1+ renders Mermaid from Markdown, so a `SequenceDiagram` shows itself as a
diagram in a notebook, and `str()` of it is the Mermaid text (which check cells can assert
on). Long runs keep their beginning and end, with one line saying how much was left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..trace import Event, Trace

NOTE_KINDS = {  # plain words: emoji are missing from many fonts, and Mermaid shows a box
    "timeout": "timeout:",
    "retry": "retry:",
    "give-up": "give up:",
    "crash": "CRASH",
    "drop": "dropped",
    "freeze": "frozen for",
    "mismatch": "mismatched reply, expected",
    "hang": "still waiting:",
    "reject": "rejected:",
    "lost": "lost:",
    "error": "error:",
    "purge": "purged:",
    "requeue": "requeued:",
    "backoff": "backing off:",
    "reconnect": "reconnecting:",
}


class SequenceDiagram:
    """Mermaid text that renders as a diagram in JupyterLab.

    Where Mermaid is not rendered (GitHub's and nbviewer's previews, a terminal) the notebook
    shows the plain-text form instead: `repr()` is the same story as a list of arrows.
    """

    def __init__(self, mermaid: str) -> None:
        self.mermaid = mermaid

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.mermaid}\n```"

    def __str__(self) -> str:
        return self.mermaid

    def __repr__(self) -> str:
        lines = [line.strip() for line in self.mermaid.splitlines()[1:]]
        heads = [line for line in lines if line.startswith("participant ")]
        who = [line.removeprefix("participant ") for line in heads]
        steps = [_plain(line) for line in lines if line not in heads]
        return "\n".join([f"sequence diagram ({', '.join(who)}):"] + steps)


def _plain(line: str) -> str:
    """One Mermaid step as plain text: `client -> server: 1` or `[server] CRASH`."""
    if line.startswith("Note over "):
        who, _, text = line.removeprefix("Note over ").partition(": ")
        return f"  [{who}] {text}"
    source, _, rest = line.partition("->>")
    return f"  {source} -> {rest}"


def _clean(text: str) -> str:
    """Keep message text from breaking Mermaid's syntax (and say "request #2" as "request 2")."""
    return re.sub(r"\s+", " ", re.sub(r"[;#<>{}]", " ", text)).strip() or " "


def _line(event: Event) -> str | None:
    if event.peer is not None and event.kind in ("send", "recv"):
        source, target = event.actor, event.peer
        if event.kind == "recv":
            source, target = target, source
        return f"    {_clean(source)}->>{_clean(target)}: {_clean(event.detail)}"
    label = NOTE_KINDS.get(event.kind)
    if label is None:
        return None  # bookkeeping (a server's own recv/reply) is drawn by the peer's arrow
    text = f"{label} {_clean(event.detail)}".strip()
    return f"    Note over {_clean(event.actor)}: {text}"


def sequence_diagram(
    trace: Trace | Iterable[Event], *, participants: Iterable[str] = (), max_lines: int = 40
) -> SequenceDiagram:
    """Draw `trace` as a sequence diagram, at most `max_lines` arrows and notes.

    `participants` fixes the left-to-right order; anyone else appears in order of first event.
    """
    events = trace.events if isinstance(trace, Trace) else list(trace)
    lines = [line for line in map(_line, events) if line is not None]
    order = list(dict.fromkeys(participants))
    for event in events:
        for name in (event.actor, event.peer):
            if name is not None and name not in order and _line(event) is not None:
                order.append(name)
    head = ["sequenceDiagram"] + [f"    participant {_clean(name)}" for name in order]
    if len(lines) > max_lines:
        keep = max_lines // 2
        left_out = len(lines) - 2 * keep
        span = f"{_clean(order[0])},{_clean(order[-1])}" if len(order) > 1 else _clean(order[0])
        lines = lines[:keep] + [f"    Note over {span}: … {left_out} more steps …"] + lines[-keep:]
    return SequenceDiagram("\n".join(head + lines))
