"""The article's comparison table, measured: five designs under the same seeded faults.

The designs are plain REQ-REP, Lazy Pirate, the article's Simple Pirate (`zmq.proxy` over
ROUTER-DEALER, REP workers, a client that tries once), our Simple Pirate (LRU queue) and
Paranoid Pirate. Each gets the same client load, one request after another, under each fault:

- "worker crash": the worker that gets the `fault_at`-th request dies on it; a supervisor
  starts it again `restart_s` later (for plain REQ-REP and Lazy Pirate the worker is the server);
- "worker freeze": that worker goes silent for `freeze_s`, connection open, then carries on;
- "queue restart": the broker stops after `fault_at` requests and is back `restart_s` later on
  the same endpoints (designs without a broker have nothing to restart).

A plain REQ-REP client has no timeout: it waits up to `patience_s` and is then counted as hung
for good (a REQ that got no reply can never send again). Measured per run: requests lost, the
longest any request waited (until its reply, or until the client gave up on it), the client's
latency p50 and p99, and, without faults, requests per second relative to plain REQ-REP.
`benchmarks/compare.py` runs this at full size and prints the table.
"""

from __future__ import annotations

import inspect
import io
import textwrap
import time
import tokenize
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass

import zmq

from ..actor import Actor
from ..faults import Faults
from ..lazy import LazyPirateClient, LazyServer, ServerUnavailable
from ..paranoid import ParanoidQueue, ParanoidWorker, QueueState, TrackedWorker, WorkerLiveness
from ..simple import ArticleProxy, LruQueue, Request, SimplePirateQueue, SimpleWorker
from ..views.tables import Table
from .exercises import waits_for_answer

DESIGNS = ["plain REQ-REP", "Lazy Pirate", "article's Simple", "our Simple", "Paranoid"]
FAULTS = ["none", "worker crash", "worker freeze", "queue restart"]
BROKERED = {"article's Simple", "our Simple", "Paranoid"}

# The article's stars (complexity, reliability, performance), as words; plain REQ-REP is not
# in its table.
ARTICLE_STARS = {
    "Lazy Pirate": ("low", "medium", "high"),
    "article's Simple": ("medium", "high", "medium"),
    "our Simple": ("medium", "high", "medium"),
    "Paranoid": ("high", "very high", "medium"),
}


@dataclass(frozen=True)
class Settings:
    """Small by default, so a notebook runs the whole table in seconds."""

    requests: int = 12
    calm_requests: int = 200  # the run without faults, for latency and throughput
    calm_repeats: int = 3  # keep the fastest of this many calm runs (a shared machine is noisy)
    timeout_s: float = 0.1
    retries: int = 3
    fault_at: int = 4
    restart_s: float = 0.3
    freeze_s: float = 0.5
    heartbeat_s: float = 0.05
    liveness: int = 3
    patience_s: float = 1.0
    workers: int = 2


@dataclass
class Run:
    """One design under one fault."""

    design: str
    fault: str
    lost: int
    latencies: list[float]  # answered requests only
    longest_wait_s: float
    hung: bool
    seconds: float

    def percentile(self, share: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Supervisor(Actor):
    """Restarts a crashed actor `restart_s` after it died, as a process supervisor would."""

    def __init__(self, name: str, watched: Actor, make: Callable[[], Actor], restart_s: float):
        super().__init__(name)
        self.watched, self.make, self.restart_s = watched, make, restart_s
        self.started: list[Actor] = []

    def run(self) -> None:
        while self.watched.running or not getattr(self.watched, "crashed", False):
            self.pause(0.005)
        self.pause(self.restart_s)
        self.started.append(_start_retrying(self.make, self.pause))


def _start_retrying(make: Callable[[], Actor], pause: Callable[[float], None],
                    timeout: float = 2.0) -> Actor:
    """Start an actor that binds a port its predecessor just left (freed asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return make().start()
        except zmq.ZMQError as error:
            if error.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            pause(0.01)


class _PlainClient:
    """The tutorial client: REQ, send, recv. It waits `patience_s` (a stand-in for forever)."""

    def __init__(self, endpoint: str, patience_s: float) -> None:
        self.context = zmq.Context()
        self.context.linger = 0
        self.req = self.context.socket(zmq.REQ)
        self.req.connect(endpoint)
        self.patience_s = patience_s

    def request(self, body: bytes) -> list[bytes]:
        self.req.send(body)
        if not self.req.poll(int(self.patience_s * 1000)):
            raise TimeoutError("hung: a plain REQ waits forever")
        return self.req.recv_multipart()

    def close(self) -> None:
        self.context.destroy()


def _worker_faults(fault: str, settings: Settings, nth: int) -> Faults:
    """The fault for the worker that receives request number `nth` (of its own)."""
    if fault == "worker crash":
        return Faults(crash_after=nth - 1)
    if fault == "worker freeze":
        return Faults(freeze_at=nth, freeze_s=settings.freeze_s)
    return Faults()


def run_design(design: str, fault: str, settings: Settings = Settings()) -> Run | None:
    """Send `settings.requests` through `design` under `fault`; None if it does not apply."""
    if fault == "queue restart" and design not in BROKERED:
        return None
    with ExitStack() as stack:
        return _run(stack, design, fault, settings)


def _run(stack: ExitStack, design: str, fault: str, s: Settings) -> Run:
    prefix = f"cmp-{DESIGNS.index(design)}"
    # The faulty worker is the first to join, so in every brokered design it gets request 1
    # (first in line, or first in turn) and, as the workers take turns, the fault hits its
    # n-th request, about the fault_at-th of the run; a lone server's is exactly that one.
    share = 1 if design not in BROKERED else s.workers
    nth = max(1, -(-s.fault_at // share))
    broker: Actor | None = None

    def make_broker(frontend: str = "tcp://127.0.0.1:*",
                    backend: str = "tcp://127.0.0.1:*") -> Actor:
        if design == "article's Simple":
            return ArticleProxy(f"{prefix}-proxy", frontend=frontend, backend=backend)
        if design == "our Simple":
            return SimplePirateQueue(f"{prefix}-queue", frontend=frontend, backend=backend)
        return ParanoidQueue(f"{prefix}-queue", frontend=frontend, backend=backend,
                             heartbeat_interval=s.heartbeat_s, liveness=s.liveness,
                             trace_messages=False)

    def make_worker(index: int, faults: Faults, endpoint: str) -> Actor:
        name = f"{prefix}-w{index}"
        if design in ("plain REQ-REP", "Lazy Pirate"):
            return LazyServer(name, bind=endpoint, faults=faults)
        if design == "article's Simple":
            return LazyServer(name, connect=endpoint, faults=faults)
        if design == "our Simple":
            return SimpleWorker(name, connect=endpoint, faults=faults)
        return ParanoidWorker(name, connect=endpoint, faults=faults,
                              heartbeat_interval=s.heartbeat_s, liveness=s.liveness,
                              reconnect_min=s.heartbeat_s, reconnect_max=4 * s.heartbeat_s)

    faults = _worker_faults(fault, s, nth)
    if design in BROKERED:
        broker = stack.enter_context(make_broker())
        backend = broker.backend_endpoint  # type: ignore[attr-defined]
        front = broker.frontend_endpoint  # type: ignore[attr-defined]
        workers = [stack.enter_context(make_worker(0, faults, backend))]
        _wait_joined(broker, 1)  # the faulty worker first in line
        workers += [stack.enter_context(make_worker(i, Faults(), backend))
                    for i in range(1, s.workers)]
        _wait_joined(broker, s.workers)
    else:
        workers = [stack.enter_context(make_worker(0, faults, "tcp://127.0.0.1:*"))]
        backend = front = workers[0].endpoint  # type: ignore[attr-defined]
    if fault == "worker crash":
        first = workers[0]
        supervisor = stack.enter_context(_Supervisor(
            f"{prefix}-supervisor", first,
            lambda: make_worker(0, Faults(), backend if design in BROKERED else front),
            s.restart_s))
        stack.callback(lambda: [actor.stop() for actor in supervisor.started])

    if design == "plain REQ-REP":
        client: _PlainClient | LazyPirateClient = _PlainClient(front, s.patience_s)
    else:
        tries = 1 if design == "article's Simple" else s.retries
        client = LazyPirateClient(front, timeout=s.timeout_s, retries=tries, name=f"{prefix}-c")
    stack.callback(client.close)

    requests = s.requests
    if fault == "none":  # more requests for the latency figures, after one not counted
        client.request(b"0")  # (it sets the connections up)
        requests = s.calm_requests
    latencies: list[float] = []
    longest = 0.0
    lost = 0
    hung = False
    started = time.monotonic()
    for n in range(1, requests + 1):
        if hung:
            lost += 1
            continue
        if fault == "queue restart" and n == s.fault_at + 1:
            assert broker is not None
            broker.stop()
            endpoints = (broker.frontend_endpoint, broker.backend_endpoint)  # type: ignore
            stack.enter_context(_Restarter(f"{prefix}-restarter",
                                           lambda ends=endpoints: make_broker(*ends),
                                           s.restart_s))
        sent = time.monotonic()
        try:
            reply = client.request(str(n).encode())
            waited = time.monotonic() - sent
            if reply[-1:] == [str(n).encode()]:
                latencies.append(waited)
            else:
                lost += 1
        except ServerUnavailable:
            waited = time.monotonic() - sent
            lost += 1
        except TimeoutError:
            waited = float("inf")
            lost += 1
            hung = True
        longest = max(longest, waited)
    return Run(design, fault, lost, latencies, longest, hung, time.monotonic() - started)


class _Restarter(Actor):
    """Starts a broker again `restart_s` from now, on the endpoints the old one had."""

    def __init__(self, name: str, make: Callable[[], Actor], restart_s: float) -> None:
        super().__init__(name)
        self.make, self.restart_s = make, restart_s
        self.started: Actor | None = None

    def run(self) -> None:
        self.pause(self.restart_s)
        self.started = _start_retrying(self.make, self.pause)
        self.pause(None)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self.started is not None:
            self.started.stop()


def _wait_joined(broker: Actor, count: int, timeout: float = 5.0) -> None:
    if isinstance(broker, ParanoidQueue):
        # its loop takes no lock and notifies nobody (the hot path): look, with a bound
        deadline = time.monotonic() + timeout
        while len(broker.state.ready) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        ok = len(broker.state.ready) >= count
    else:
        ok = broker.wait_for_workers(count, timeout)  # type: ignore[attr-defined]
    if not ok:
        raise TimeoutError(f"{broker.name}: {count} workers did not join within {timeout} s")


# -- lines of code ------------------------------------------------------------------------
PARTS: dict[str, list[object]] = {
    "plain REQ-REP": [_PlainClient],
    "Lazy Pirate": [LazyPirateClient],
    "article's Simple": [LazyPirateClient, ArticleProxy],
    "our Simple": [LazyPirateClient, Request, LruQueue, SimplePirateQueue, SimpleWorker],
    "Paranoid": [LazyPirateClient, TrackedWorker, QueueState, WorkerLiveness, ParanoidQueue,
                 ParanoidWorker],
}
"""What each design adds in this course's code. Left out, since every design shares them: the
echo server's body and the fault injection (`StrictEcho`, `Faults`), the actor base, the trace."""


def code_lines(*parts: object) -> int:
    """Lines of code in these classes and functions: no blank lines, comments or docstrings."""
    total = 0
    for part in parts:
        source = inspect.getsource(part)  # type: ignore[arg-type]
        lines: set[int] = set()
        previous = tokenize.NEWLINE
        for token in tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline):
            docstring = token.type == tokenize.STRING and previous in (
                tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT)
            if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                                  tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER) \
                    and not docstring:
                lines.update(range(token.start[0], token.end[0] + 1))
            if token.type not in (tokenize.COMMENT, tokenize.NL):
                previous = token.type
        total += len(lines)
    return total


# -- the table ----------------------------------------------------------------------------
def measure(settings: Settings = Settings(), designs: Iterable[str] = DESIGNS,
            faults: Iterable[str] = FAULTS,
            progress: Callable[[int, int], None] | None = None) -> list[Run]:
    """Every design under every fault that applies to it. The calm runs (throughput) go in
    turns, every design once a round, and each keeps its fastest: a busy moment on a shared
    machine then slows every design alike instead of the one that ran through it."""
    designs, faults = list(designs), list(faults)
    calm_rounds = settings.calm_repeats if "none" in faults else 0
    faulty = [(d, f) for d in designs for f in faults if f != "none"
              and not (f == "queue restart" and d not in BROKERED)]
    steps = calm_rounds * len(designs) + len(faulty)
    done = 0

    def step(design: str, fault: str) -> Run | None:
        nonlocal done
        if progress is not None:
            progress(done, steps)
        done += 1
        return run_design(design, fault, settings)

    fastest: dict[str, Run] = {}
    for _ in range(calm_rounds):
        for design in designs:
            run = step(design, "none")
            if run is not None and (design not in fastest
                                    or run.seconds < fastest[design].seconds):
                fastest[design] = run
    runs = []
    for design in designs:
        runs += [fastest[design]] if design in fastest else []
        runs += [run for d, f in faulty if d == design and (run := step(d, f)) is not None]
    if progress is not None:
        progress(steps, steps)
    return runs


def expected_s(settings: Settings = Settings()) -> float:
    """About how long `measure` takes: per design a calm run, a restart after a crash, a
    freeze, a queue restart and a give-up; plain REQ-REP's hang costs its patience."""
    s = settings
    requests = s.calm_requests * s.calm_repeats + 3 * s.requests
    per_design = requests * 0.001 + 0.3 + s.restart_s + s.freeze_s + s.timeout_s * s.retries
    return len(DESIGNS) * per_design + s.patience_s


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value == float("inf"):
        return "forever (hangs)"
    return f"{value:.3f}"


def table(runs: list[Run], settings: Settings = Settings()) -> Table:
    """One row per design: lost requests and the longest wait under each fault, latency and
    throughput without faults, lines of code, and the article's stars beside them."""
    by = {(run.design, run.fault): run for run in runs}
    columns = ["design"]
    for fault in FAULTS[1:]:
        columns += [f"{fault}: lost", f"{fault}: longest wait (s)"]
    columns += ["p50 (ms), no faults", "p99 (ms), no faults", "p99 (ms), worker crash",
                "throughput vs plain", "lines of code", "article: complexity / reliability / "
                "performance"]
    designs = list(dict.fromkeys(run.design for run in runs))
    baseline = by.get(("plain REQ-REP", "none"))
    rows = []
    for design in designs:
        row: list[object] = [design]
        for fault in FAULTS[1:]:
            run = by.get((design, fault))
            row += ["–", "–"] if run is None else [
                f"{run.lost} of {settings.requests}", _seconds(run.longest_wait_s)]
        calm, crash = by.get((design, "none")), by.get((design, "worker crash"))
        p50 = calm.percentile(0.5) if calm else None
        p99 = calm.percentile(0.99) if calm else None
        crash_p99 = crash.percentile(0.99) if crash else None
        row += [f"{p50 * 1000:.2f}" if p50 is not None else "–",
                f"{p99 * 1000:.2f}" if p99 is not None else "–",
                f"{crash_p99 * 1000:.1f}" if crash_p99 is not None else "–"]
        if calm and baseline and calm.latencies and baseline.latencies:
            row.append(f"{baseline.seconds / calm.seconds:.2f}")
        else:
            row.append("–")
        row.append(code_lines(*PARTS[design]))
        stars = ARTICLE_STARS.get(design)
        row.append(" / ".join(stars) if stars else "(not in its table)")
        rows.append(row)
    return Table(columns, rows, title=f"{settings.requests} requests, one at a time; "
                 f"timeout {settings.timeout_s:g} s x {settings.retries} tries")


# -- the article's words against the figures ----------------------------------------------
RELIABILITY = ["none", "medium", "high", "very high"]
"""The article's reliability words, lowest first, each given a rule a run can check:
"very high" loses nothing under any fault, "high" at most one request a fault, "medium"
never hangs (its caller hears within timeout x retries), "none" hangs."""


def measured_reliability(runs: Iterable[Run]) -> str:
    """The highest of the article's reliability words whose rule these faulty runs keep."""
    faulty = [run for run in runs if run.fault != "none"]
    if any(run.hung for run in faulty):
        return "none"
    if all(run.lost == 0 for run in faulty):
        return "very high"
    return "high" if all(run.lost <= 1 for run in faulty) else "medium"


def verdicts(runs: list[Run], settings: Settings = Settings()) -> Table:
    """Per design: the article's reliability word, the one its figures earn (the rule of
    `RELIABILITY`), the verdict that follows, and the figures it rests on."""
    by_design: dict[str, list[Run]] = {}
    for run in runs:
        by_design.setdefault(run.design, []).append(run)
    baseline = next((r for r in runs if (r.design, r.fault) == ("plain REQ-REP", "none")), None)
    rows = []
    for design, design_runs in by_design.items():
        said = ARTICLE_STARS[design][1] if design in ARTICLE_STARS else None
        earned = measured_reliability(design_runs)
        if said is None:
            verdict = "(not in its table)"
        else:
            order = RELIABILITY.index(earned) - RELIABILITY.index(said)
            verdict = "agrees" if order == 0 else "better" if order > 0 else "worse"
        lost = " / ".join(f"{run.fault}: {run.lost}" for run in design_runs
                          if run.fault != "none")
        calm = next((r for r in design_runs if r.fault == "none"), None)
        ratio = (f"{baseline.seconds / calm.seconds:.2f}" if calm and baseline else "–")
        rows.append([design, said or "–", earned, verdict, lost, ratio])
    return Table(["design", "article: reliability", "figures earn", "verdict",
                  f"lost of {settings.requests}", "throughput vs plain"], rows)


# -- the article's decision flow ------------------------------------------------------------
def decide(need_reliability: bool, can_run_broker: bool, workers_come_and_go: bool,
           need_fast_detection: bool) -> tuple[str, str]:
    """The article's decision flow: the pattern, and why (with what the figures add)."""
    if not need_reliability:
        return ("plain REQ-REP", "no reliability needed; but one lost reply hangs the client "
                "forever, so even then give every receive a timeout")
    if not can_run_broker:
        return ("Lazy Pirate", "reliability on the client alone: timeout, new socket, resend, "
                "give up after timeout x retries")
    if not workers_come_and_go:
        return ("Simple Pirate", "a fixed pool behind an LRU queue: a busy worker never gets a "
                "second request, and a crash costs one client timeout")
    if not need_fast_detection:
        return ("Simple Pirate", "workers join and leave as they like; a frozen one is found "
                "only by a client's timeout, which you accept")
    return ("Paranoid Pirate", "heartbeats both ways: a frozen or cut-off worker is dropped "
            "within liveness x interval and its request handed on, workers survive a queue "
            "restart")


CASE = {"need_reliability": True, "can_run_broker": True, "workers_come_and_go": True,
        "need_fast_detection": True}
"""Lesson 06's exercise: a payment service behind one broker, its workers containers that
come and go, and a frozen worker must be found within a second."""

CASE_HINTS = {
    "plain REQ-REP": "one lost reply and a payment client hangs for ever",
    "Lazy Pirate": "a broker is possible here, and a client's retries alone cannot find a "
                   "frozen worker or hand its request on",
    "Simple Pirate": "a frozen worker keeps its connection open: without heartbeats only a "
                     "client's timeout finds it, and the LRU queue keeps it on its list",
}


class WrongChoice(AssertionError):
    """Lesson 06's exercise: a pattern the case rules out, and why."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, without frames
        return [f"WrongChoice: {self}"]


@waits_for_answer
def check_pattern_choice(pattern: str) -> str:
    """Lesson 06's exercise: the pattern for `CASE`, as the article's decision flow gives it."""
    right, reason = decide(**CASE)
    names = ["plain REQ-REP", "Lazy Pirate", "Simple Pirate", "Paranoid Pirate"]
    if pattern not in names:
        raise WrongChoice(f"one of {', '.join(map(repr, names))}, not {pattern!r}")
    if pattern != right:
        raise WrongChoice(f"not {pattern}: {CASE_HINTS[pattern]}")
    return f"✔ {right}: {reason}"
