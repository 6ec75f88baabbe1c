"""What a queue or broker may hold for its clients, in bytes and in time, with no sockets.

A request that waits for a worker is kept in memory. Counting requests does not bound that
memory (one request may carry 62 frames of 1 MiB), so every queue and broker also keeps a
byte budget, in total and per client: a request that would go over either is refused at the
door and counted, and its client sees a timeout (and retries, as a Lazy Pirate does). One
client cannot take the whole budget, and no number of clients can take more than it.

A worker can also hold a request for good: it heartbeats but never answers. `MAX_BUSY_S`
is how long a queue or broker lets one request keep one worker busy before it gives up on
that worker; long enough for real work, short enough that a stuck worker is not busy for ever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

MAX_WAITING = 1000
"""Requests a queue holds while no worker is free; beyond that a request is refused (its
client retries). The Majordomo broker counts per service and client (`--max-queued`)."""

MAX_QUEUED_BYTES = 256 << 20
"""Bytes of waiting requests a queue or broker holds, all clients together (256 MiB)."""

MAX_QUEUED_BYTES_PER_CLIENT = 32 << 20
"""Bytes of waiting requests one client may have held (32 MiB)."""

MAX_BUSY_S = 60.0
"""How long one request may keep a worker busy before the queue or broker drops both."""


def size_of(frames: Sequence[bytes]) -> int:
    """A message's bytes, as held: the frames' contents."""
    return sum(map(len, frames))


class HeldBytes:
    """Bytes of waiting requests, in all and per client, against their two limits.

    `refusal` says why a request may not be held (or None); `add` and `remove` keep the
    counts as requests start and stop waiting. A request put back in line (its worker died)
    is added without asking: it was held before, and at most one per worker comes back.
    """

    def __init__(self, limit: int = MAX_QUEUED_BYTES,
                 per_client: int = MAX_QUEUED_BYTES_PER_CLIENT) -> None:
        if limit < 1 or per_client < 1:
            raise ValueError("byte limits are at least 1")
        self.limit, self.per_client = limit, per_client
        self.total = 0
        self.by_client: Counter[bytes] = Counter()
        self.refused = 0  # requests refused for bytes

    def refusal(self, client: bytes, size: int) -> str | None:
        """Why a request of `size` bytes from `client` may not be held now, or None; a
        refusal is counted."""
        if self.total + size > self.limit:
            why = f"{self.total + size} bytes would be held, over the {self.limit}-byte limit"
        elif self.by_client[client] + size > self.per_client:
            why = (f"{self.by_client[client] + size} bytes of its requests would be held, "
                   f"over the {self.per_client}-byte limit per client")
        else:
            return None
        self.refused += 1
        return why

    def add(self, client: bytes, size: int) -> None:
        self.total += size
        self.by_client[client] += size

    def remove(self, client: bytes, size: int) -> None:
        self.total -= size
        self.by_client[client] -= size
        if not self.by_client[client]:
            del self.by_client[client]  # the count stays as small as what is held
