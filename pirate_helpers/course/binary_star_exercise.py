"""Lesson 11's exercise: the shortest settle delay after which a client's first request to
the backup is never refused, judged on the worst case through `BinaryStarState` itself."""

from __future__ import annotations

from ..binary_star import BinaryStarState, State
from .exercises import NotYet, waits_for_answer


def refused(settle_ms: int, heartbeat_ms: int, timeout_ms: int) -> bool:
    """The worst case: the backup heard the primary at t=0, the primary died at once, and
    the client had sent its request at t=0. It times out, settles, then asks the backup."""
    backup = BinaryStarState(False, heartbeat_ms, now=0)  # whole ms: no rounding at the edge
    backup.on_peer(State.ACTIVE, now=0)
    served, _ = backup.on_client_request(now=timeout_ms + settle_ms)
    return not served


@waits_for_answer
def check_settle(settle_ms: object, *, heartbeat_ms: int = 100, timeout_ms: int = 50) -> str:
    if isinstance(settle_ms, bool) or not isinstance(settle_ms, int) or settle_ms < 0:
        raise NotYet(f"the settle delay is a whole number of ms, 0 or more, not {settle_ms!r}")
    if refused(settle_ms, heartbeat_ms, timeout_ms):
        raise NotYet(f"{settle_ms} ms is too short: the request reaches the backup "
                     f"{timeout_ms + settle_ms} ms after the primary's last state, while the "
                     "backup still counts the primary as alive; it drops the request and the "
                     "client waits another timeout")
    if settle_ms > 0 and not refused(settle_ms - 1, heartbeat_ms, timeout_ms):
        raise NotYet(f"{settle_ms} ms always works, but is longer than it must be: every "
                     "failover would wait for nothing (the timeout already counts)")
    return (f"✔ {settle_ms} ms: timeout ({timeout_ms}) + settle = 2 heartbeats "
            f"({2 * heartbeat_ms} ms), just when the backup counts the primary as gone")
