"""The ZeroMQ Guide's titanic.py as a model, its two bugs kept, to compare with `titanic`.

1. Its queue file marks the wrong line: after `readlines()` the file is at its end, so
   `seek(-len(entry), SEEK_CUR)` lands on the *last* line. A processed request stays `-`
   (pending) and is sent again at every pass; the last one is marked `+` (done) whether or
   not it ever ran. `guide_queue_pass` replays one pass over the lines.
2. It trusts `mmi.service`, and the Guide's broker says 200 for any service it has ever seen,
   worker or not: every retry queues one more copy in the broker, and a worker that comes
   back executes them all. `copies_executed` plays it through a broker model and our
   `Dispatcher` on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable

from .majordomo import MDPC, MDPW, READY, REPLY, REQUEST, BrokerState, GuideMajordomoState
from .titanic import Dispatcher, Step


def guide_queue_pass(lines: list[str], execute: Callable[[str], bool],
                     *, fixed: bool = False) -> list[str]:
    """One pass of the Guide's dispatcher over its queue (`-uuid` pending, `+uuid` done).
    `fixed=True` marks the line it processed, as titanic.c does."""
    lines = list(lines)
    for index, entry in enumerate(list(lines)):  # readlines(): a snapshot of the file
        if entry.startswith("-") and execute(entry[1:]):
            marked = index if fixed else len(lines) - 1  # where the file position really is
            lines[marked] = "+" + lines[marked][1:]
    return lines


def copies_executed(broker_logic: type, worker_back_at: float = 8.0, *,
                    dispatch_timeout: float = 1.0) -> int:
    """A worker of `echo` registers at t=0 and falls silent (purged at t=3); a request is
    stored at t=3.5; a worker comes back at `worker_back_at`. How many times does it run?"""
    broker = broker_logic(1.0, 3, 0.0)
    dispatcher = Dispatcher(timeout=dispatch_timeout, retry_after=0.0)
    copies, client, now = 0, 1, 0.0

    def pump() -> Step | None:
        """Deliver what the broker sends: the worker answers at once, the dispatcher reads
        its client's replies; the dispatcher's next step, if it has one."""
        nonlocal copies
        step = None
        while broker.outbox:
            for out in _drain(broker):
                if out[0] == b"w2" and out[2:4] == [MDPW, REQUEST]:
                    copies += 1
                    broker.on_message([b"w2", b"", MDPW, REPLY, out[4], b"", b"job"], now)
                elif out[0] == b"c%d" % client and out[2:3] == [MDPC]:
                    step = dispatcher.on_reply(out[2:], now) or step
        return step

    broker.on_message([b"w1", b"", MDPW, READY, b"echo"], 0.0)
    while now < worker_back_at + 4:
        broker.tick(now)
        if now >= 3.5 and not dispatcher.order:
            dispatcher.add("job", b"echo")
        if abs(now - worker_back_at) < 1e-9:
            broker.on_message([b"w2", b"", MDPW, READY, b"echo"], now)
        step = dispatcher.next_step(now)
        while step is not None and step.action != "done":
            if step.action == "timeout":  # a fresh REQ socket: a new client identity
                client += 1
                step = dispatcher.next_step(now)
                continue
            body = [b"mmi.service", b"echo"] if step.action == "ask" else [b"echo", b"job"]
            broker.on_message([b"c%d" % client, b"", MDPC, *body], now)
            step = pump()
        pump()
        now = round(now + 0.1, 6)
    return copies


def _drain(broker: BrokerState | GuideMajordomoState) -> list[list[bytes]]:
    out, broker.outbox = list(broker.outbox), []
    return out
