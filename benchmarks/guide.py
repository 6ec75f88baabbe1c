"""Our Majordomo broker and Paranoid queue against the ZeroMQ Guide's own brokers, with the
Guide's own C workers and a C load generator: the broker is the only thing that differs.

    .venv/bin/python benchmarks/guide.py [--seconds 2] [--rounds 3] [--in-flight 64 1]
                                         [--workers 2 8] [--traced] [--baseline REV]

Builds the Guide's peers from `/work/shared/guide-peers` (or `--peers DIR`) into a cache
folder with the README's build line, then for each setting (requests in flight x workers)
and each round runs every broker in turn, started afresh: ours (`pirate majordomo-broker
--quiet`, `pirate paranoid-queue --quiet`), the Guide's C `mdbroker` and `ppqueue` and its
Python `mdbroker.py`, and the floor (`floor.py`: the barest pyzmq brokers, what any Python
broker costs before it decides anything). Workers are the Guide's C `mdworker` (echo) and
`ppworker_nofault`; `mdpload` keeps N requests in flight on one DEALER and checks every reply
(a bad or lost reply fails the run). The broker is pinned to one core, workers and load to
the other. Each run also gives the broker's CPU per reply (all its threads, from /proc): far
steadier than replies/s on a shared machine, and what the broker alone costs.

The Guide's peers use fixed ports (5555, 5556), so each run happens in a network namespace of
its own (made and removed here: root and iproute2 needed), where nothing else listens.
Ratios are taken within a round (the brokers ran one after another, under the same load from
whatever else shares the machine) and reported as the median and the range over rounds.
`--traced` adds our brokers without `--quiet` (a line per message, to /dev/null): the cost of
tracing. `--baseline REV` adds our brokers as they were at git revision REV (its
`pirate_helpers` extracted to a temporary folder and put first on PYTHONPATH), in the same
turns: a change's before and after from one run.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from guide_peers import PEERS, Missing, Namespace, build  # noqa: E402

from pirate_helpers import netns  # noqa: E402

C_PROGRAMS = ("mdbroker", "ppqueue", "mdworker", "ppworker_nofault", "mdpload")
PIRATE = [sys.executable, "-m", "pirate_helpers"]
BROKER_CORE, OTHER_CORE = 0, 1
FLOOR = str(Path(__file__).resolve().parent / "floor.py")  # the barest pyzmq brokers


@dataclass(frozen=True)
class Broker:
    name: str
    protocol: str  # "mdp" (Majordomo: workers at 5555) or "ppp" (queue: workers at 5556)
    command: tuple[str, ...]  # with {bin} and {peers} to fill in
    python_path: str | None = None  # our package from another revision (`--baseline`)


BROKERS = [
    Broker("ours majordomo", "mdp", (*PIRATE, "majordomo-broker", "--quiet",
                                     "--bind", "tcp://127.0.0.1:5555")),
    Broker("C mdbroker", "mdp", ("{bin}/mdbroker",)),
    Broker("Python mdbroker.py", "mdp", (sys.executable, "{peers}/mdbroker.py")),
    Broker("ours paranoid", "ppp", (*PIRATE, "paranoid-queue", "--quiet",
                                    "--frontend", "tcp://127.0.0.1:5555",
                                    "--backend", "tcp://127.0.0.1:5556")),
    Broker("C ppqueue", "ppp", ("{bin}/ppqueue",)),
    Broker("floor majordomo", "mdp", (sys.executable, FLOOR, "majordomo")),
    Broker("floor queue", "ppp", (sys.executable, FLOOR, "queue")),
]
TRACED = [
    Broker("ours majordomo traced", "mdp", (*PIRATE, "majordomo-broker",
                                            "--bind", "tcp://127.0.0.1:5555")),
    Broker("ours paranoid traced", "ppp", (*PIRATE, "paranoid-queue",
                                           "--frontend", "tcp://127.0.0.1:5555",
                                           "--backend", "tcp://127.0.0.1:5556")),
]
RATIOS = [("ours majordomo", "C mdbroker"), ("ours majordomo", "Python mdbroker.py"),
          ("ours paranoid", "C ppqueue"), ("Python mdbroker.py", "C mdbroker"),
          ("floor majordomo", "C mdbroker"), ("ours majordomo", "floor majordomo"),
          ("floor queue", "C ppqueue"), ("ours paranoid", "floor queue"),
          ("ours majordomo traced", "ours majordomo"),
          ("ours paranoid traced", "ours paranoid"),
          ("before majordomo", "C mdbroker"), ("before majordomo", "Python mdbroker.py"),
          ("before paranoid", "C ppqueue"), ("ours majordomo", "before majordomo"),
          ("ours paranoid", "before paranoid")]


def extract(revision: str) -> str:
    """A temporary folder holding `pirate_helpers` as it was at `revision` (removed at exit).
    A broker started in it, with it on PYTHONPATH, runs that revision's package."""
    into = tempfile.mkdtemp(prefix="pirate-before-")
    atexit.register(shutil.rmtree, into, True)
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", revision, "pirate_helpers"],
                             capture_output=True)
    if archive.returncode:
        raise Missing(f"git archive {revision}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def baseline(revision: str) -> list[Broker]:
    """Our two brokers as they were at `revision`, run from a copy of its package."""
    before = extract(revision)
    return [Broker(ours.name.replace("ours", "before"), ours.protocol, ours.command, before)
            for ours in BROKERS if ours.name.startswith("ours")]


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, all its threads (libzmq's I/O thread too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass(frozen=True)
class Figures:
    rps: float  # replies per second: what the goals are stated in
    cpu_us: float  # the broker's CPU per reply, in µs: what the broker alone costs


def measure(broker: Broker, workers: int, in_flight: int, seconds: float, run: int,
            binaries: Path, peers: Path) -> Figures:
    """Replies per second through `broker`, and its CPU per reply; raises RuntimeError on a
    bad or lost reply."""
    command = [part.format(bin=binaries, peers=peers) for part in broker.command]
    worker = str(binaries / ("mdworker" if broker.protocol == "mdp" else "ppworker_nofault"))
    worker_port = 5555 if broker.protocol == "mdp" else 5556
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # `python -m` puts the working directory first on sys.path, before PYTHONPATH: an earlier
    # revision's brokers start in its own folder, or they would import this one's package
    env, folder = None, None
    if broker.python_path is not None:
        env, folder = {**os.environ, "PYTHONPATH": broker.python_path}, broker.python_path
    with Namespace(run) as namespace:
        started = [namespace.start(command, BROKER_CORE, env=env, cwd=folder, **quiet)]
        try:
            started += [namespace.start([worker], OTHER_CORE, **quiet) for _ in range(workers)]
            if not namespace.wait_for_connections(worker_port, workers, alive=started[0]):
                raise RuntimeError(f"{broker.name}: workers did not connect within 15 s")
            cpu_before = cpu_seconds(started[0].pid)
            load = namespace.start([str(binaries / "mdpload"), broker.protocol,
                                    "tcp://127.0.0.1:5555", str(in_flight), "0.5",
                                    str(seconds)], OTHER_CORE, stdout=subprocess.PIPE, text=True)
            out, _ = load.communicate(timeout=seconds + 30)
            cpu = cpu_seconds(started[0].pid) - cpu_before
        finally:
            for process in reversed(started):
                process.kill()
                process.wait()
    figures = dict(field.split("=") for field in out.split())
    if load.returncode or figures.get("bad") != "0" or figures.get("lost") != "0":
        raise RuntimeError(f"{broker.name}: {out.strip() or 'mdpload failed'}")
    return Figures(float(figures["rps"]), cpu / int(figures["replies"]) * 1e6)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[64, 1])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--traced", action="store_true", help="also our brokers, tracing")
    parser.add_argument("--only", nargs="+", metavar="BROKER", help="a subset, by name")
    parser.add_argument("--baseline", metavar="REV",
                        help="also our brokers as they were at this git revision")
    parser.add_argument("--peers", type=Path, default=PEERS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop peers, remove namespaces
    brokers = BROKERS + (TRACED if args.traced else [])
    try:
        if args.baseline:
            brokers += baseline(args.baseline)
        if args.only:
            brokers = [b for b in brokers if b.name in args.only]
        if len(os.sched_getaffinity(0)) < 2:
            raise Missing("needs 2 cores: the broker on one, workers and load on the other")
        if reason := netns.unavailable():
            raise Missing(f"private namespaces: {reason}")
        binaries = build(C_PROGRAMS, args.peers)
    except Missing as missing:
        print(f"guide benchmark skipped: {missing}")
        return 0
    print(f"cores: broker {BROKER_CORE}, workers and load {OTHER_CORE}; "
          f"{args.seconds:g} s per run, {args.rounds} rounds; other sessions may share "
          f"this machine, so read the spread")
    failed = 0
    run = 0
    for in_flight in args.in_flight:
        for workers in args.workers:
            rps: dict[str, list[float]] = {b.name: [] for b in brokers}
            cpu: dict[str, list[float]] = {b.name: [] for b in brokers}
            for round_number in range(args.rounds):
                turn = brokers[round_number % len(brokers):] + brokers[:round_number % len(brokers)]
                for broker in turn:
                    run += 1
                    try:
                        figures = measure(broker, workers, in_flight, args.seconds, run,
                                          binaries, args.peers)
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        failed += 1
                        print(f"  FAILED {error}")
                        figures = Figures(float("nan"), float("nan"))
                    rps[broker.name].append(figures.rps)
                    cpu[broker.name].append(figures.cpu_us)
            print(f"\n{in_flight} in flight, {workers} workers: replies/s and the broker's "
                  "CPU per reply (all its threads), median (min-max)")
            for name, values in rps.items():
                print(f"  {name:24} {statistics.median(values):9.0f} "
                      f"({min(values):.0f}-{max(values):.0f})  "
                      f"{statistics.median(cpu[name]):6.1f} µs "
                      f"({min(cpu[name]):.1f}-{max(cpu[name]):.1f})")
            for ours, theirs in RATIOS:
                if ours in rps and theirs in rps:
                    ratios = [a / b for a, b in zip(rps[ours], rps[theirs], strict=True)]
                    costs = [a / b for a, b in zip(cpu[ours], cpu[theirs], strict=True)]
                    print(f"  {ours} / {theirs}: {spread(ratios)}; CPU per reply "
                          f"{spread(costs)}")
    if failed:
        print(f"{failed} runs had bad or lost replies")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
