"""The lessons' experiments: what a Run button calls, returning a `Table`.

Each one starts its actors inside a `with` (an `ExitStack`), so Ctrl-C at any moment (the
kernel's interrupt) ends it with a plain KeyboardInterrupt and no thread left; each takes an
optional `progress(done, total)` (a `widgets.Progress` bar in a notebook) and has an
`..._expected_s` twin that says how long it will take before it starts. Small defaults keep
a lesson to seconds; the article's values are arguments away.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import ExitStack

from ..faults import Faults
from ..lazy import LazyClient, LazyPirateClient, LazyServer, ServerUnavailable
from ..paranoid import ParanoidQueue, ParanoidWorker
from ..simple import load_faults, run_load
from ..trace import Trace
from ..views.tables import Table

Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    """The default: report nothing."""


# -- lesson 02: Lazy Pirate ------------------------------------------------------------------
def seconds_to_give_up(timeout_ms: float, retries: int) -> float:
    """How long a Lazy Pirate client takes to give up on a server that never answers."""
    with LazyServer("dead-server", faults=Faults(crash_after=0)) as dead, \
            LazyPirateClient(dead.endpoint, timeout=timeout_ms / 1000, retries=retries,
                             name="give-up-client") as client:
        started = time.monotonic()
        try:
            client.request(b"anyone there?")
        except ServerUnavailable:
            return time.monotonic() - started
    raise AssertionError("a dead server answered")


def lazy_expected_s(timeout_ms: float, retries: int, drop_rate: float, seed: int,
                    requests: int = 10) -> float:
    """How long `lazy_experiment` takes, from its plan: the server's seeded drops decide which
    tries time out (one server sees every try, in order), then the give-up on a dead one."""
    drops = Faults(drop_rate=drop_rate, seed=seed)
    received = timeouts = 0
    for _ in range(requests):
        for _ in range(retries):
            received += 1
            if drops.decide(received).action != "drop":
                break
            timeouts += 1
        else:
            break  # every try dropped: the client gives up and stops
    return timeout_ms / 1000 * (timeouts + retries)


def lazy_experiment(
    timeout_ms: float = 100,
    retries: int = 3,
    drop_rate: float = 0.3,
    seed: int = 1,
    *,
    requests: int = 10,
    progress: Progress = _no_progress,
    trace: Trace | None = None,
) -> Table:
    """`requests` against a server dropping a seeded share, then the time to give up on a
    dead one."""
    timeout = timeout_ms / 1000
    with ExitStack() as stack:
        lossy = stack.enter_context(LazyServer(
            "experiment-server", faults=Faults(drop_rate=drop_rate, seed=seed), trace=trace))
        runner = stack.enter_context(LazyClient(
            lossy.endpoint, "experiment-client", requests=requests, timeout=timeout,
            retries=retries, trace=lossy.trace))
        while not runner.join(0.05):
            progress(len(runner.answered), requests + 1)
    progress(requests, requests + 1)
    give_up_s = seconds_to_give_up(timeout_ms, retries)
    progress(requests + 1, requests + 1)
    gave_up = "yes" if runner.gave_up is not None else "no"
    return Table(
        ["timeout (ms)", "retries", "drop rate", "requests", "answered", "timeouts", "gave up",
         "dead server given up after (s)"],
        [[timeout_ms, retries, drop_rate, requests, len(runner.answered),
          runner.client.timeouts, gave_up, round(give_up_s, 3)]],
    )


def give_up_sweep(
    timeouts_ms: Iterable[float] = (50, 100, 150),
    retries: Iterable[int] = (1, 2, 3),
    *,
    progress: Progress = _no_progress,
) -> Table:
    """The time to give up on a dead server, measured for each timeout and retry count."""
    points = [(timeout_ms, tries) for timeout_ms in timeouts_ms for tries in retries]
    table = Table(["timeout (ms)", "retries", "timeout x retries (s)", "measured (s)"], [])
    for done, (timeout_ms, tries) in enumerate(points):
        progress(done, len(points))
        table.add([timeout_ms, tries, timeout_ms * tries / 1000,
                   round(seconds_to_give_up(timeout_ms, tries), 3)])
    progress(len(points), len(points))
    return table


def give_up_sweep_expected_s(timeouts_ms: Iterable[float], retries: Iterable[int]) -> float:
    return sum(t * r for t in timeouts_ms for r in retries) / 1000


# -- lesson 03: Simple Pirate ----------------------------------------------------------------
DESIGNS = {"article": "the article's zmq.proxy, one try", "lru": "our LRU queue, Lazy Pirate"}
SIMPLE_TRIES = 3  # the Lazy Pirate client's tries in the LRU design


def planned_crashes(workers: int, requests: int, crash_rate: float, seed: int,
                    tries: int) -> int:
    """How many crashes `run_load` meets, from its seeded plan, if requests go round the
    workers in turn (the proxy deals in turn; the LRU queue, with one client, ends up doing
    the same) and a restarted worker joins at the back. Who is first in line is up to timing,
    so a real run can differ by a crash or so."""
    line = deque(range(workers))
    incarnation, received = [0] * workers, [0] * workers
    crashes = 0
    for _ in range(requests):
        for _ in range(tries):
            index = line.popleft()
            line.append(index)
            received[index] += 1
            if load_faults(crash_rate, seed, index, incarnation[index]).decide(
                    received[index]).action != "crash":
                break
            crashes += 1
            incarnation[index], received[index] = incarnation[index] + 1, 0
    return crashes


def simple_expected_s(workers: int, crash_rate: float, timeout_ms: float, seed: int,
                      requests: int = 30) -> float:
    """How long `simple_experiment` takes, from its plan: each crash costs one timeout, in
    each design (the proxy's client tries once, ours three times)."""
    crashes = sum(planned_crashes(workers, requests, crash_rate, seed, tries)
                  for tries in (1, SIMPLE_TRIES))
    return crashes * timeout_ms / 1000 + 0.3


def simple_experiment(
    workers: int = 3,
    crash_rate: float = 0.1,
    timeout_ms: float = 100,
    seed: int = 1,
    *,
    requests: int = 30,
    progress: Progress = _no_progress,
    trace: Trace | None = None,
) -> Table:
    """`requests` through the article's proxy and through the LRU queue, same seeded crashes."""
    table = Table(["design", "what it is", "answered", "lost", "crashes", "seconds"], [])
    for round_number, design in enumerate(DESIGNS):
        run = run_load(design, workers=workers, requests=requests, crash_rate=crash_rate,
                       timeout=timeout_ms / 1000, retries=SIMPLE_TRIES, seed=seed, trace=trace,
                       progress=lambda done, n=round_number: progress(n * requests + done,
                                                                      2 * requests))
        table.add([design, DESIGNS[design], run.answered, run.lost, run.crashes,
                   round(run.seconds, 2)])
    return table


# -- lesson 04: Paranoid Pirate --------------------------------------------------------------
def detection_time(heartbeat_ms: float = 100, liveness: int = 3, *,
                   trace: Trace | None = None, progress: Progress = _no_progress) -> float:
    """Freeze a worker (alive, connection open, silent) on its first request and measure how
    long the queue takes to drop it. A crash is found sooner, at the next send (the queue's
    ROUTER_MANDATORY); a freeze only by silence, which is what heartbeats are for.
    `progress(tenths, total)` counts tenths of a second waited, so a bar moves meanwhile."""
    interval = heartbeat_ms / 1000
    silence_limit = interval * liveness
    trace = trace if trace is not None else Trace()
    with ExitStack() as stack:
        queue = stack.enter_context(ParanoidQueue(
            "experiment-queue", heartbeat_interval=interval, liveness=liveness, trace=trace))
        stack.enter_context(ParanoidWorker(
            "experiment-worker", connect=queue.backend_endpoint, heartbeat_interval=interval,
            liveness=liveness, trace=trace,
            faults=Faults(freeze_at=1, freeze_s=silence_limit + 5)))
        if not trace.wait_for(lambda: queue.state.ready, 5):
            raise TimeoutError("the worker did not join within 5 s")
        stack.enter_context(LazyClient(queue.frontend_endpoint, "experiment-client", requests=1,
                                       timeout=silence_limit + 5, retries=1, trace=trace))
        started, total = time.monotonic(), round(10 * detection_expected_s(heartbeat_ms,
                                                                              liveness))
        while not trace.wait_for(lambda: trace.count("purge", "experiment-queue"), 0.1):
            waited = time.monotonic() - started
            if waited > silence_limit + 5:
                raise TimeoutError("the queue never dropped the frozen worker")
            progress(min(round(10 * waited), total), total)
        progress(total, total)
        froze = trace.of("experiment-worker", "freeze")[0].t
        purged = trace.of("experiment-queue", "purge")[0].t
    return purged - froze


def detection_expected_s(heartbeat_ms: float, liveness: int) -> float:
    return heartbeat_ms / 1000 * liveness + 0.1


def detection_experiment(heartbeat_ms: float = 100, liveness: int = 3, *,
                         progress: Progress = _no_progress) -> Table:
    detected = detection_time(heartbeat_ms, liveness, progress=progress)
    return Table(["heartbeat (ms)", "liveness", "limit: liveness x interval (s)",
                  "dropped after (s)"],
                 [[heartbeat_ms, liveness, heartbeat_ms * liveness / 1000, round(detected, 3)]])


def detection_sweep(
    heartbeats_ms: Iterable[float] = (50, 100, 150, 200),
    liveness: int = 3,
    *,
    progress: Progress = _no_progress,
) -> Table:
    """Detection time of a frozen worker for each heartbeat interval."""
    points = list(heartbeats_ms)
    table = Table(["heartbeat (ms)", "liveness", "limit: liveness x interval (s)",
                   "dropped after (s)"], [])
    for done, heartbeat_ms in enumerate(points):
        progress(done, len(points))
        table.add([heartbeat_ms, liveness, heartbeat_ms * liveness / 1000,
                   round(detection_time(heartbeat_ms, liveness), 3)])
    progress(len(points), len(points))
    return table
