"""A classroom's queue on loopback: requests per second and the time to purge a cut-off
worker, with CURVE and without (the ratio is the figure; a bare number means little).

    .venv/bin/python benchmarks/classroom.py [--workers 100] [--clients 30] [--requests 50]

One Paranoid queue; `--workers` workers and `--clients` Lazy Pirate clients, all actors in
this process (each its own zmq.Context), joining with the queue's join lines. Each client
sends `--requests` requests one after another; the figure is replies per second over all of
them. Then one worker is cut off from the queue's side (`ParanoidQueue.partition`) and the
time until the queue purges it is measured against liveness x interval. Loopback only.
"""

from __future__ import annotations

import argparse
import time

from pirate_helpers import LazyClient, ParanoidQueue, ParanoidWorker, Security, Trace, stop_all

INTERVAL, LIVENESS = 0.2, 3


def run(curve: bool, workers: int, clients: int, requests: int) -> tuple[float, float]:
    trace = Trace(keep=1000)
    queue = ParanoidQueue("classroom", heartbeat_interval=INTERVAL, liveness=LIVENESS,
                          security=Security.curve() if curve else Security(), trace=trace,
                          trace_messages=False).start()
    try:
        for n in range(workers):
            ParanoidWorker(f"w{n}", connect=queue.join_workers, heartbeat_interval=INTERVAL,
                           liveness=LIVENESS, trace=trace).start()
        if not trace.wait_for(lambda: len(queue.state.workers) == workers, 60):
            raise SystemExit(f"only {len(queue.state.workers)} of {workers} workers joined")
        started = time.monotonic()
        loads = [LazyClient(queue.join_clients, f"c{n}", requests=requests, timeout=5,
                            trace=trace).start() for n in range(clients)]
        for load in loads:
            load.join(120)
        took = time.monotonic() - started
        answered = sum(len(load.answered) for load in loads)
        queue.partition("w0", 10)
        if not trace.wait_for(lambda: trace.count("purge") >= 1, 10):
            raise SystemExit("the cut-off worker was never purged")
        return answered / took, _purge_delay(trace)
    finally:
        stop_all()


def _purge_delay(trace: Trace) -> float:
    """From the partition event to the purge event, both on the trace's clock."""
    cut = next(e.t for e in trace.events if e.kind == "partition")
    purge = next(e.t for e in trace.events if e.kind == "purge")
    return purge - cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    results = {}
    for curve in (False, True):
        results[curve] = run(curve, args.workers, args.clients, args.requests)
        label = "CURVE   " if curve else "loopback"
        rate, purge = results[curve]
        print(f"{label}: {rate:8.0f} replies/s, cut-off worker purged after {purge:.3f} s "
              f"(liveness x interval = {LIVENESS * INTERVAL:g} s)")
    print(f"CURVE / plain throughput: {results[True][0] / results[False][0]:.2f}")


if __name__ == "__main__":
    main()
