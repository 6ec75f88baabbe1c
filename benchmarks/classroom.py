"""A classroom's queue: replies per second and the time to purge a cut-off worker, with and
without CURVE, on loopback and across real hosts (network namespaces), as ratios to plain
loopback measured in the same run.

    .venv/bin/python benchmarks/classroom.py [--workers 100] [--clients 30] [--seconds 4]

Every role is its own `pirate` process, as in a workshop: one `paranoid-queue`, `--workers`
`paranoid-worker`s and `--clients` steady loads (`lazy-client --forever`, as fast as replies
come, one request at a time each). On 2+ cores the queue is pinned to core 0 and everything
else to the others, which cuts the run-to-run spread. Replies per second are summed over the
clients' own counters across `--seconds`, `--repeat` times (the median is shown).

The cut-off worker is one worker alone on its own host: with namespaces its link is taken
down (a partition: no TCP close), on loopback it is frozen (SIGSTOP: its connection stays
open, it says nothing); then it is brought back and rejoins, `--repeat` times. The queue
should purge it within liveness x interval of the cut. Namespaces need root and `ip netns`;
without them only loopback is measured.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import netns  # noqa: E402  (the tests' classroom of namespaces and their process helper)
from processes import Role  # noqa: E402

INTERVAL_MS, LIVENESS = 200, 3
STUDENTS = 10  # namespaces the workers and clients are spread over; one more for the cut-off
BEAT = ("--heartbeat-ms", str(INTERVAL_MS), "--liveness", str(LIVENESS))
LIVE = re.compile(r"live: \S+: (\d+) answered, .* in ([\d.]+) s$")


@dataclass
class Result:
    network: str
    curve: bool
    rates: list[float]  # replies per second, one per window
    purges: list[float]  # seconds from the cut to the purge, one per cut


def pin(role: Role, cores: set[int]) -> None:
    """Run `role` on `cores` only (its exec keeps the affinity)."""
    os.sched_setaffinity(role.process.pid, cores)


class Room:
    """Where the roles run: loopback in this namespace, or one namespace per host."""

    def __init__(self, room: netns.Classroom | None) -> None:
        self.room = room
        self.name = "namespaces" if room else "loopback"
        self.ports: dict[str, str] = {}
        self.rest: dict[str, str] = {}  # after the port: the key, the workers' settings

    def start_queue(self, curve: bool) -> Role:
        """The queue, bound where its hosts reach it; learns its ports and key."""
        if self.room is None:  # 127.0.0.1, random ports
            queue = Role("paranoid-queue", "--quiet", *BEAT, *(["--curve"] if curve else []))
        else:
            queue = Role("paranoid-queue", "--quiet", *BEAT, "--frontend=tcp://*:5555",
                         "--backend=tcp://*:5556", "--curve" if curve else "--insecure",
                         namespace=self.room.queue)
        for side in ("clients", "workers"):
            token = queue.expect(rf"join \({side}\): tcp://[^\s/]+:(\d+)(/\S+)?$")
            self.ports[side], self.rest[side] = token.group(1), token.group(2) or ""
        return queue

    def join(self, side: str, host: int) -> str:
        """The join line as a student on `host` pastes it (the queue's address on that link)."""
        address = self.room.address(host) if self.room else "127.0.0.1"
        return f"tcp://{address}:{self.ports[side]}{self.rest[side]}"

    def start(self, host: int, *args: str) -> Role:
        return Role(*args, namespace=self.room.students[host] if self.room else None)

    def cut(self, worker: Role) -> None:
        if self.room is None:
            worker.process.send_signal(signal.SIGSTOP)
        else:
            self.room.cut(STUDENTS + 1)

    def heal(self, worker: Role) -> None:
        if self.room is None:
            worker.process.send_signal(signal.SIGCONT)
        else:
            self.room.heal(STUDENTS + 1)


def newest(client: Role) -> tuple[int, float]:
    """(answered, elapsed s) from the newest live line a steady load printed (one has been
    waited for)."""
    live = client.newest(LIVE.pattern)
    return int(live.group(1)), float(live.group(2))


def measure(room: Room, curve: bool, workers: int, clients: int, seconds: float,
            repeat: int) -> Result:
    cores = os.sched_getaffinity(0)
    others = cores - {min(cores)} or cores  # one core: everything shares it
    roles: list[Role] = []
    try:
        queue = room.start_queue(curve)
        roles.append(queue)
        pin(queue, {min(cores)})

        def host(n: int) -> int:
            return 1 + n % STUDENTS

        for n in range(workers - 1):
            roles.append(room.start(host(n), "paranoid-worker", "--quiet", *BEAT,
                                    "--name", f"w{n}", "--join", room.join("workers", host(n))))
        cut_off = room.start(STUDENTS + 1, "paranoid-worker", "--quiet", *BEAT, "--name",
                             "cutoff", "--reconnect-min-ms", "100", "--reconnect-max-ms",
                             "400", "--join", room.join("workers", STUDENTS + 1))
        roles.append(cut_off)
        for _ in range(workers):
            queue.expect(r"\sjoin\s", timeout=120)
        loads = [room.start(host(n), "lazy-client", "--forever", "--rate", "1000000",
                            "--summary-ms", "250", "--timeout-ms", "2000", "--name", f"c{n}",
                            "--join", room.join("clients", host(n)))
                 for n in range(clients)]
        roles += loads
        for role in roles[1:]:
            pin(role, others)
        for load in loads:
            load.expect(LIVE.pattern, timeout=60)
        rates = []
        for _ in range(repeat):
            before = [newest(load) for load in loads]
            time.sleep(seconds)  # the measuring window: the clients count, we only wait
            after = [newest(load) for load in loads]
            rates.append(sum((a1 - a0) / (e1 - e0)
                             for (a0, e0), (a1, e1) in zip(before, after, strict=True)))
        purges = []
        for _ in range(repeat):
            cut_at = time.monotonic()
            room.cut(cut_off)
            queue.expect(r"\spurge\s+cutoff\s", timeout=10)
            purges.append(time.monotonic() - cut_at)
            room.heal(cut_off)
            queue.expect(r"\sjoin\s+cutoff\s", timeout=30)
        return Result(room.name, curve, rates, purges)
    finally:
        for role in reversed(roles):
            role.stop()


@contextmanager
def places(use_namespaces: bool) -> Iterator[list[Room]]:
    """Loopback, and a classroom of namespaces where this machine can make one."""
    with ExitStack() as stack:
        found = [Room(None)]
        if use_namespaces:
            try:
                found.append(Room(stack.enter_context(netns.classroom(STUDENTS + 1))))
            except netns.Unavailable as why:
                print(f"namespaces skipped: {why}")
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=4.0, help="each measuring window")
    parser.add_argument("--repeat", type=int, default=3, help="windows and cuts per setup")
    parser.add_argument("--loopback-only", action="store_true")
    args = parser.parse_args()
    limit = LIVENESS * INTERVAL_MS / 1000
    print(f"{args.workers} workers, {args.clients} clients, heartbeat {INTERVAL_MS} ms x "
          f"{LIVENESS} (purge due {limit:g} s after a cut), {len(os.sched_getaffinity(0))} "
          f"cores, median of {args.repeat}")
    results: list[Result] = []
    with places(not args.loopback_only) as found:
        for place in found:
            for curve in (False, True):
                result = measure(place, curve, args.workers, args.clients, args.seconds,
                                 args.repeat)
                results.append(result)
                print(f"  measured {place.name}, {'CURVE' if curve else 'plain'}", flush=True)
    baseline = statistics.median(results[0].rates)
    print()
    print("| hosts | security | replies/s (min-max) | vs plain loopback | purged after "
          "(median, max) |")
    print("|---|---|---|---|---|")
    for result in results:
        rate = statistics.median(result.rates)
        print(f"| {result.network} | {'CURVE' if result.curve else 'plain'} | {rate:.0f} "
              f"({min(result.rates):.0f}-{max(result.rates):.0f}) | {rate / baseline:.2f} | "
              f"{statistics.median(result.purges):.3f} s, {max(result.purges):.3f} s |")


if __name__ == "__main__":
    main()
