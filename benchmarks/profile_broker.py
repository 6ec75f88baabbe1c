"""Where our broker's time goes under the Guide's load: cProfile of its loop thread.

    .venv/bin/python benchmarks/profile_broker.py majordomo|paranoid [--workers 8]
                                                  [--in-flight 64] [--seconds 3] [--top 15]
                                                  [--baseline REV]

The same set-up as `guide.py` (the Guide's C workers and `mdpload`, a private network
namespace, the broker pinned to one core), with our broker run in-process under cProfile,
per-message tracing off as with `--quiet`. Prints the top entries by own time (tottime).
cProfile slows every Python call, so read the shares, not the replies per second.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guide import BROKER_CORE, C_PROGRAMS, OTHER_CORE, PEERS, Missing, Namespace, build, extract

from pirate_helpers import netns


def serve(kind: str, out: str) -> None:
    """Inside the namespace: run the broker with its loop profiled until SIGTERM."""
    from pirate_helpers.majordomo import MajordomoBroker
    from pirate_helpers.paranoid import ParanoidQueue

    profile = cProfile.Profile()
    base = MajordomoBroker if kind == "majordomo" else ParanoidQueue

    class Profiled(base):  # type: ignore[misc, valid-type]
        def run(self) -> None:
            profile.runcall(super().run)

    if kind == "majordomo":
        broker = Profiled("profiled", bind="tcp://127.0.0.1:5555", heartbeat_interval=2.5,
                          trace_messages=False)
    else:
        broker = Profiled("profiled", frontend="tcp://127.0.0.1:5555",
                          backend="tcp://127.0.0.1:5556", heartbeat_interval=1.0,
                          trace_messages=False)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the broker's thread too
    broker.start()
    signal.sigwait({signal.SIGTERM})
    broker.stop()
    profile.dump_stats(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["majordomo", "paranoid"])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--baseline", metavar="REV",
                        help="profile our broker as it was at this git revision instead")
    parser.add_argument("--serve", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.kind, args.serve)
        return 0
    env = None
    try:
        binaries = build(C_PROGRAMS, PEERS)
        if args.baseline:
            env = {**os.environ, "PYTHONPATH": extract(args.baseline)}
    except Missing as missing:
        print(f"profile skipped: {missing}")
        return 0
    mdp = args.kind == "majordomo"
    out = Path(tempfile.mkdtemp()) / "broker.prof"
    with Namespace(0) as namespace:
        broker = namespace.start([sys.executable, __file__, args.kind, "--serve", str(out)],
                                 BROKER_CORE, env=env)
        workers = [namespace.start([str(binaries / ("mdworker" if mdp else "ppworker_nofault"))],
                                   OTHER_CORE, stdout=subprocess.DEVNULL)
                   for _ in range(args.workers)]
        deadline = time.monotonic() + 15
        while namespace.connections(5555 if mdp else 5556) < args.workers:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not connect within 15 s")
            time.sleep(0.05)
        load = subprocess.run(netns.command(namespace.name, str(binaries / "mdpload"),
                                            "mdp" if mdp else "ppp", "tcp://127.0.0.1:5555",
                                            str(args.in_flight), "0.5", str(args.seconds)),
                              capture_output=True, text=True)
        print(load.stdout.strip())
        broker.send_signal(signal.SIGTERM)
        broker.wait(30)
        for worker in workers:
            worker.kill()
            worker.wait()
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
