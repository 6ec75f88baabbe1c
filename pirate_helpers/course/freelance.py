"""The Freelance lesson's machinery: the three models run against the same faults, and the
exercise's check (played through the real `FreelanceState` on a fake clock)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from ..actor import stop_all
from ..freelance import (
    MODELS,
    PING,
    PONG,
    ROUTER,
    FreelanceClient,
    FreelanceServer,
    FreelanceState,
    NoReply,
    Send,
)
from ..trace import Trace
from ..views.tables import Table
from .exercises import NotYet, waits_for_answer

Progress = Callable[[int, int], None]


def run_model(model: int, *, requests: int = 60, kill_at: int = 15, freeze_at: int = 30,
              freeze_s: float = 1.0, restart_at: int = 45, idle_s: float = 0.5,
              timeout: float = 0.25,
              tries: int = 3, ping_interval: float = 0.1, trace: Trace | None = None,
              progress: Callable[[], None] | None = None) -> dict:
    """One model, three fresh echo servers, one request at a time. Before request
    `kill_at` server 1 is stopped (its connections close, as when a process dies); before
    `freeze_at` server 2 stops reading for `freeze_s` with its connections open; before
    `restart_at` server 1 comes back on its endpoint. The faults hit the server that models 1
    and 3 are using at that moment. The client is idle for `idle_s` after the kill (a client
    between two bursts), and busy through the freeze.

    Every copy sent ends one of four ways, counted when the client has closed: its reply was
    used, dropped as stale, not yet read (`replies after close`), or no server answered it
    (`copies never answered`: sent to a dead or unreconnected server, or unread by a frozen
    one)."""
    trace = trace if trace is not None else Trace()
    servers = [FreelanceServer(f"s{n}", trace=trace).start() for n in (1, 2, 3)]
    every_server = list(servers)  # the killed server 1 and its restart both count
    waits: list[float | None] = []
    client = FreelanceClient([s.endpoint for s in servers], model=model, timeout=timeout,
                             tries=tries, ping_interval=ping_interval, name=MODELS[model],
                             trace=trace)
    try:
        with client:
            for n in range(1, requests + 1):
                if n == kill_at:
                    servers[0].stop()
                    time.sleep(idle_s)  # the client's idle time: part of the scenario
                if n == freeze_at:
                    servers[1].freeze(freeze_s)
                if n == restart_at:
                    servers[0] = FreelanceServer("s1", bind=servers[0].endpoint,
                                                 trace=trace).start()
                    every_server.append(servers[0])
                sent = time.monotonic()
                try:
                    reply = client.request(str(n).encode())
                    waits.append(time.monotonic() - sent if reply == [str(n).encode()] else None)
                except NoReply:
                    waits.append(None)
                if progress:
                    progress()
            state = client.state
            assert state is not None
            copies = sum(state.load.values())
            pings = state.pings
        replied = sum(server.answered for server in every_server)  # the client has closed
    finally:
        for server in servers:
            server.stop()
    answered = [w for w in waits if w is not None]
    return {"model": f"{model} {MODELS[model]}", "lost": len(waits) - len(answered),
            "worst wait s": max(answered, default=0.0),
            "median wait ms": 1000 * statistics.median(answered) if answered else 0.0,
            "copies per request": copies / requests, "stale replies dropped": state.stale,
            "replies after close": replied - len(answered) - state.stale,
            "copies never answered": copies - replied, "copies": copies,
            "waits": waits, "pings": pings}


def compare_models(progress: Progress | None = None, **faults: float) -> tuple[Table, dict]:
    """The three models on the same faults: a table, and each request's wait by model."""
    runs, done = [], 0
    total = 3 * int(faults.get("requests", 60))

    def step() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    try:
        for model in MODELS:
            runs.append(run_model(model, progress=step, **faults))
    finally:
        stop_all()
    columns = ["model", "lost", "worst wait s", "median wait ms", "copies per request",
               "stale replies dropped", "replies after close", "copies never answered"]
    table = Table(columns, [[run[c] for c in columns] for run in runs],
                  title="the same faults for each model: a server killed, one frozen, one "
                  "restarted")
    return table, {run["model"]: run["waits"] for run in runs}


def silence_before_dead(ping_interval: float, liveness: int, *, rtt: float = 0.002,
                        lost_pong: bool = False, late: float = 0.02, dies_at: float | None = None,
                        until: float = 5.0) -> float | None:
    """Play one server through `FreelanceState` (model 3) on a fake clock, in 1 ms steps:
    each pong comes back `rtt` after its ping; with `lost_pong` the second pong is lost; with
    `dies_at` the server answers no ping sent from then on. After a lost pong the next ones
    are `late` (a busy network does not lose one pong and deliver the next on time). Returns
    how long after the last pong the client counted the server dead, or None if it never
    did."""
    state = FreelanceState(["s"], model=ROUTER, ping_interval=ping_interval,
                           liveness=liveness, now=0.0)
    pongs_due: list[float] = []
    last_pong, pings, step = None, 0, 0
    while (now := step / 1000) <= until:
        step += 1
        if pongs_due and pongs_due[0] <= now:
            last_pong = pongs_due.pop(0)
            state.received("s", [PONG], now)
        for action in state.tick(now):
            if isinstance(action, Send) and action.frames == [PING]:
                pings += 1
                if not (dies_at is not None and now >= dies_at or lost_pong and pings == 2):
                    pongs_due.append(now + rtt + (late if lost_pong and pings > 2 else 0.0))
        if last_pong is not None and not state.servers[0].alive:
            return now - last_pong
    return None


@waits_for_answer
def check_ping_choice(ping_interval_ms: float, liveness: int) -> str:
    """Lesson exercise: model 3's pings must (1) count a dead server dead within 600 ms of
    its last pong, whenever it dies, (2) survive one lost pong, (3) cost at most 20 pings a
    second per server. Judged on the real state machine, worst case first."""
    if isinstance(liveness, bool) or not isinstance(liveness, int) or liveness < 1:
        raise NotYet(f"my_liveness is a whole number of intervals, at least 1, not {liveness!r}")
    if not isinstance(ping_interval_ms, (int, float)) or ping_interval_ms <= 0:
        raise NotYet(f"my_ping_interval_ms is a time above 0, not {ping_interval_ms!r}")
    interval = ping_interval_ms / 1000
    if 1 / interval > 20:
        raise NotYet(f"one ping every {ping_interval_ms:g} ms is {1 / interval:.0f} pings a "
                     "second for every server: keep it to 20 at most")
    if silence_before_dead(interval, liveness, lost_pong=True, until=20 * interval) is not None:
        raise NotYet(f"with liveness {liveness}, one lost pong leaves {liveness} x "
                     f"{ping_interval_ms:g} ms without news and a live server is counted "
                     "dead: give it one more interval")
    worst = 0.0
    for tenth in range(10):  # deaths spread over one interval: the worst is just after a pong
        dies_at = 1.0 + interval * tenth / 10
        silence = silence_before_dead(interval, liveness, dies_at=dies_at, until=dies_at + 10)
        assert silence is not None, "a server that stopped answering was never counted dead"
        worst = max(worst, silence)
    if worst > 0.6 + 0.01:
        raise NotYet(f"a server that dies just after a pong is counted dead {worst * 1000:.0f} "
                     f"ms later (liveness x interval = {liveness} x {ping_interval_ms:g} ms): "
                     "that is over 600 ms")
    return (f"✔ a dead server is skipped within {worst * 1000:.0f} ms, one lost pong is "
            f"survived, {1 / interval:.0f} pings a second per server")
