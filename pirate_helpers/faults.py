"""Faults injected on purpose, decided by the request number alone.

`Faults.decide(n)` is a pure function of `n` (the n-th request a server or worker receives,
counting from 1), so a run is repeatable: the same faults hit the same requests every time,
seeded randomness included. Every pattern in the course uses this one vocabulary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["answer", "drop", "crash"]


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait `delay_s` (slow or frozen), then act."""

    action: Action = "answer"
    delay_s: float = 0.0
    frozen: bool = False


@dataclass(frozen=True)
class Faults:
    """Which requests go wrong, and how.

    drop:        request numbers received and never answered, e.g. {3, 4}
    crash_after: answer this many requests, then die on the next one (it is lost)
    freeze_at:   before request `freeze_at`, go silent for `freeze_s`
                 (a worker stops its heartbeats too)
    slow_s:      extra time spent on every request
    drop_rate, crash_rate: seeded chances per request; the same seed gives the same faults
    """

    drop: frozenset[int] = field(default_factory=frozenset)
    crash_after: int | None = None
    freeze_at: int | None = None
    freeze_s: float = 0.0
    slow_s: float = 0.0
    drop_rate: float = 0.0
    crash_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "drop", frozenset(self.drop))
        for rate in (self.drop_rate, self.crash_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"a rate is a probability between 0 and 1, not {rate}")

    def chance(self, n: int, what: str) -> float:
        """A number in [0, 1) fixed by (seed, n, what): seeded, and independent of call order."""
        return random.Random(f"{self.seed}/{n}/{what}").random()

    def decide(self, n: int) -> Decision:
        frozen = self.freeze_at == n
        delay_s = self.slow_s + (self.freeze_s if frozen else 0.0)
        if self.crash_after is not None and n > self.crash_after:
            return Decision("crash")
        if self.crash_rate and self.chance(n, "crash") < self.crash_rate:
            return Decision("crash")
        if n in self.drop or (self.drop_rate and self.chance(n, "drop") < self.drop_rate):
            return Decision("drop", delay_s, frozen)
        return Decision("answer", delay_s, frozen)

    def __bool__(self) -> bool:
        return self != Faults(seed=self.seed)


NONE = Faults()
