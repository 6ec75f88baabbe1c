"""Majordomo: requests per second against our Paranoid queue, and how fast a dead worker's
request is sent again.

    .venv/bin/python benchmarks/majordomo.py [--seconds 1.0] [--rounds 3] [--redispatch-rounds 5]

Throughput: our Majordomo broker (one service, "echo") and our Paranoid Pirate queue, each
with 2 and then 8 echo worker processes (`pirate majordomo-worker` / `pirate
paranoid-worker`, started afresh), and the same pipelining DEALER client keeping 64 requests
in flight; every reply is checked. The broker is pinned to core 0, everything else to core 1
(it cuts the run-to-run spread on a 2-core machine). Each figure is the median of `--rounds`
runs; the ratio is Majordomo over Paranoid measured in the same run: a bare number would
mean little elsewhere. An MDP round trip moves 24 frames through the broker's Python loop
(5 in, 7 out to the worker, 7 back, 5 out) where Paranoid Pirate moves 14.

What limits it: the Python workers and the Python client share the second core, so
these figures measure the workers and the client as much as the broker (with the
Guide's C workers and load, the same brokers compare quite differently). To compare
brokers, use `benchmarks/guide.py`: C workers and load, and the Guide's own brokers.

Re-dispatch: a worker process holds a request (its work lasts 30 s), a second worker waits;
the first is SIGKILLed (its connection closes) or SIGSTOPped (frozen, the connection stays
up). The figure is the time from the signal to the broker sending the request again, for
heartbeat intervals of 50, 100 and 200 ms and liveness 3, beside `liveness x interval`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

import zmq

BROKER_CORE, OTHER_CORES = {0}, {1}
IN_FLIGHT = 64
WORKER_COUNTS = (2, 8)
BODY = b"x" * 32
INTERVALS_MS = (50, 100, 200)
LIVENESS = 3


def pinned(cores: set[int]):
    return lambda: os.sched_setaffinity(0, cores)


def serve_broker(kind: str, workers: int) -> None:
    """Run one broker in this process (the benchmark starts it pinned to its own core);
    print its endpoints, then "ready" once `workers` workers have registered."""
    from pirate_helpers.majordomo import MajordomoBroker
    from pirate_helpers.paranoid import ParanoidQueue

    if kind == "majordomo":
        broker = MajordomoBroker("bench-broker", heartbeat_interval=1.0, liveness=3,
                                 trace_messages=False).start()
        print(broker.endpoint, broker.endpoint, flush=True)
    else:
        broker = ParanoidQueue("bench-queue", heartbeat_interval=1.0, liveness=3,
                               trace_messages=False).start()
        print(broker.frontend_endpoint, broker.backend_endpoint, flush=True)
    while len(broker.state.workers) < workers:
        broker.join(0.01)
    print("ready", flush=True)
    while broker.running:  # until the benchmark kills this process
        broker.join(1.0)


def requests_per_second(endpoint: str, header: list[bytes], seconds: float) -> float:
    """A DEALER client keeping IN_FLIGHT requests outstanding; every reply is checked."""
    context = zmq.Context()
    context.linger = 0
    client = context.socket(zmq.DEALER)
    client.connect(endpoint)
    request = [b"", *header, BODY]
    try:
        client.send_multipart(request)  # one round trip first: the workers are there
        if not client.poll(10_000):
            raise TimeoutError(f"no reply through {endpoint} within 10 s")
        client.recv_multipart()
        for _ in range(IN_FLIGHT):
            client.send_multipart(request)
        replies = 0
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            if not client.poll(5_000):
                raise TimeoutError(f"{IN_FLIGHT} requests in flight and no reply in 5 s")
            if client.recv_multipart() != request:
                raise AssertionError("a reply does not match its request")
            replies += 1
            if time.perf_counter() >= deadline:
                return replies / (time.perf_counter() - started)
            client.send_multipart(request)
    finally:
        client.close()
        context.term()


def measure(kind: str, workers: int, seconds: float, rounds: int) -> float:
    """Median requests/s through a fresh broker of `kind` with `workers` echo workers."""
    broker = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(workers)],
                              text=True,
                              stdout=subprocess.PIPE, preexec_fn=pinned(BROKER_CORE))
    processes = []
    try:
        frontend, backend = broker.stdout.readline().split()
        for n in range(workers):
            role = (["majordomo-worker", "--service", "echo", "--heartbeat-ms", "1000"]
                    if kind == "majordomo" else ["paranoid-worker"])
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "pirate_helpers", *role, "--quiet", "--connect", backend,
                 "--name", f"bench-{kind}-{n}"],
                stdout=subprocess.DEVNULL, preexec_fn=pinned(OTHER_CORES)))
        header = [b"MDPC01", b"echo"] if kind == "majordomo" else []
        if broker.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} broker ended before its workers registered")
        return statistics.median(requests_per_second(frontend, header, seconds)
                                 for _ in range(rounds))
    finally:
        for process in [*processes, broker]:
            process.kill()
            process.wait()


# -- re-dispatch after a worker's death ----------------------------------------------------
def redispatch_seconds(interval_ms: int, how: signal.Signals) -> float:
    """Signal the worker holding a request; seconds until the broker sends it again."""
    from pirate_helpers import Trace, stop_all
    from pirate_helpers.majordomo import MajordomoBroker, MajordomoRequester

    trace = Trace(keep=5000)
    broker = MajordomoBroker("redispatch-broker", heartbeat_interval=interval_ms / 1000,
                             liveness=LIVENESS, trace=trace, trace_messages=False).start()
    holders = []

    def worker(name: str, work_ms: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "pirate_helpers", "majordomo-worker", "--quiet",
             "--connect", broker.endpoint, "--service", "echo", "--name", name,
             "--heartbeat-ms", str(interval_ms), "--liveness", str(LIVENESS),
             "--work-ms", str(work_ms)], stdout=subprocess.DEVNULL)
        holders.append(process)
        if not broker.wait_until(lambda: name.encode() in broker.state.workers, 10):
            raise TimeoutError(f"{name} did not register")
        return process

    try:
        victim = worker("victim", 30_000)
        client = MajordomoRequester(broker.endpoint, "echo", requests=1, timeout=30,
                                    retries=1).start()
        if not broker.wait_until(lambda: broker.state.workers[b"victim"].request is not None,
                                 10):
            raise TimeoutError("the victim never got the request")
        worker("backup", 0)
        signalled = trace.add("benchmark", "signal").t
        os.kill(victim.pid, how)
        if not trace.wait_for(lambda: trace.count("requeue") >= 1, 30):
            raise TimeoutError("the request was never sent again")
        requeued = trace.of("redispatch-broker", "requeue")[0].t
        if not client.join(10) or client.replies != [[b"1"]]:
            raise AssertionError("the re-dispatched request was not answered")
        return requeued - signalled
    finally:
        for process in holders:
            process.kill()
            process.wait()
        stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure")
    parser.add_argument("--redispatch-rounds", type=int, default=5,
                        help="deaths per interval and signal")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_broker(args.serve[0], int(args.serve[1]))
        return
    if os.cpu_count() < 2:
        sys.exit("this benchmark pins the broker and the rest to two different cores")
    os.sched_setaffinity(0, OTHER_CORES)
    print(f"throughput, {IN_FLIGHT} requests in flight (median of {args.rounds}):")
    print(f"{'workers':<9}{'paranoid queue':>20}{'majordomo broker':>20}{'ratio':>8}")
    for workers in WORKER_COUNTS:
        paranoid = measure("paranoid", workers, args.seconds, args.rounds)
        majordomo = measure("majordomo", workers, args.seconds, args.rounds)
        print(f"{workers:<9}{paranoid:>14,.0f} req/s{majordomo:>14,.0f} req/s"
              f"{majordomo / paranoid:>7.2f}x")
    print(f"\nre-dispatch after a worker's death, liveness {LIVENESS} "
          f"(median of {args.redispatch_rounds}):")
    print(f"{'interval':<10}{'signal':<9}{'re-dispatch':>13}{'/ interval':>12}"
          f"{'/ (liveness x interval)':>25}")
    for interval_ms in INTERVALS_MS:
        for how in (signal.SIGKILL, signal.SIGSTOP):
            took = statistics.median(redispatch_seconds(interval_ms, how)
                                     for _ in range(args.redispatch_rounds))
            interval = interval_ms / 1000
            print(f"{interval_ms:>5} ms  {how.name:<9}{took * 1000:>10.0f} ms"
                  f"{took / interval:>11.2f}x{took / (LIVENESS * interval):>24.2f}x")


if __name__ == "__main__":
    main()
