"""Requests per second through the Paranoid Pirate queue, as a ratio to libzmq's zmq.proxy.

    .venv/bin/python benchmarks/throughput.py [--seconds 1.0] [--rounds 3]

For each broker (libzmq's ROUTER-DEALER `zmq.proxy`, a bare Python LRU loop, our queue, and
our queue running the Guide's ppqueue decisions) two `pirate paranoid-worker` echo processes
(started afresh, same program) and the same pipelining DEALER client measure replies per
second with 64, 2 and 1 requests in flight. Behind the proxy the workers' READY and
heartbeats are simply dropped. The broker is pinned to core 0, everything else to core 1,
which cuts the run-to-run spread on a 2-core machine. Each figure is the median of
`--rounds` runs, and the ratios are against the proxy measured in the same run: a bare
number would mean little elsewhere.

What limits it: the Python workers and the Python client share the second core, so
these figures measure the workers and the client as much as the broker (with the
Guide's C workers and load, the same brokers compare quite differently). To compare
brokers, use `benchmarks/guide.py`: C workers and load, and the Guide's own brokers.

Why 2 in flight too: a Paranoid queue gives each worker one request at a time, so with two
workers at most 2 requests are being worked on, however many the client sends; the proxy
deals up to its high-water mark to each worker. At 2 in flight the proxy is held to the same
concurrency, which isolates the cost of our Python loop from the cost of the protocol.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import deque

import zmq

BROKER_CORE, OTHER_CORES = {0}, {1}
IN_FLIGHT = (64, 2, 1)
BODY = b"x" * 32


def serve_broker(kind: str) -> None:
    """Run one broker in this process (the benchmark starts it pinned to its own core)."""
    if kind == "proxy":
        context = zmq.Context()
        frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
        frontend.bind("tcp://127.0.0.1:*")
        backend.bind("tcp://127.0.0.1:*")
        endpoints = (frontend.last_endpoint.decode(), backend.last_endpoint.decode())
        print(*endpoints, flush=True)
        zmq.proxy(frontend, backend)  # until the benchmark kills this process
        return
    if kind == "bare":
        serve_bare_lru()
        return
    from pirate_helpers import GuideQueueState, ParanoidQueue, QueueState

    logic = GuideQueueState if kind == "guide" else QueueState
    queue = ParanoidQueue("bench-queue", heartbeat_interval=1.0, liveness=3,
                          trace_messages=False, logic=logic).start()
    print(queue.frontend_endpoint, queue.backend_endpoint, flush=True)
    while queue.running:  # until the benchmark kills this process
        queue.join(1.0)


def serve_bare_lru() -> None:
    """The least a Python broker must do to give each worker one request at a time: an LRU
    loop with no heartbeats, no expiry, no checks. Its figures are the ceiling ours can reach."""
    context = zmq.Context()
    frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
    frontend.bind("tcp://127.0.0.1:*")
    backend.bind("tcp://127.0.0.1:*")
    print(frontend.last_endpoint.decode(), backend.last_endpoint.decode(), flush=True)
    both, workers_only = zmq.Poller(), zmq.Poller()
    for poller, sockets in ((both, (frontend, backend)), (workers_only, (backend,))):
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
    ready: deque[bytes] = deque()
    while True:  # until the benchmark kills this process
        readable = dict((both if ready else workers_only).poll())
        if backend in readable:
            worker, *message = backend.recv_multipart()
            if len(message) > 1:  # a reply; READY and heartbeats are one frame
                frontend.send_multipart(message)
            if len(message) > 1 or message == [b"\x01"]:
                ready.append(worker)
        if ready and (frontend in readable or frontend.get(zmq.EVENTS) & zmq.POLLIN):
            backend.send_multipart([ready.popleft(), *frontend.recv_multipart()])


def pinned(cores: set[int]):
    return lambda: os.sched_setaffinity(0, cores)


def requests_per_second(endpoint: str, in_flight: int, seconds: float) -> float:
    """A DEALER client keeping `in_flight` requests outstanding; every reply is checked."""
    context = zmq.Context()
    context.linger = 0
    client = context.socket(zmq.DEALER)
    client.connect(endpoint)
    try:
        client.send_multipart([b"", BODY])  # one round trip first: the workers are there
        if not client.poll(10_000):
            raise TimeoutError(f"no reply through {endpoint} within 10 s")
        client.recv_multipart()
        for _ in range(in_flight):
            client.send_multipart([b"", BODY])
        replies = 0
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            if not client.poll(5_000):
                raise TimeoutError(f"{in_flight} requests in flight and no reply in 5 s")
            if client.recv_multipart() != [b"", BODY]:
                raise AssertionError("a reply does not match its request")
            replies += 1
            if time.perf_counter() >= deadline:
                return replies / (time.perf_counter() - started)
            client.send_multipart([b"", BODY])
    finally:
        client.close()
        context.term()


def measure(kind: str, seconds: float, rounds: int) -> dict[int, float]:
    """Median requests/s for each in-flight count through a fresh broker of `kind`."""
    broker = subprocess.Popen([sys.executable, __file__, "--serve", kind], text=True,
                              stdout=subprocess.PIPE, preexec_fn=pinned(BROKER_CORE))
    workers = []
    try:
        frontend, backend = broker.stdout.readline().split()
        for n in (1, 2):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "pirate_helpers", "paranoid-worker", "--quiet",
                 "--connect", backend, "--name", f"bench-{kind}-{n}"],
                stdout=subprocess.DEVNULL, preexec_fn=pinned(OTHER_CORES)))
        results = {n: [] for n in IN_FLIGHT}
        for _ in range(rounds):
            for n in IN_FLIGHT:
                results[n].append(requests_per_second(frontend, n, seconds))
        return {n: statistics.median(rates) for n, rates in results.items()}
    finally:
        for process in [*workers, broker]:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure")
    parser.add_argument("--serve", choices=["proxy", "bare", "paranoid", "guide"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_broker(args.serve)
        return
    if os.cpu_count() < 2:
        sys.exit("this benchmark pins the broker and the rest to two different cores")
    os.sched_setaffinity(0, OTHER_CORES)
    rates = {kind: measure(kind, args.seconds, args.rounds)
             for kind in ("proxy", "bare", "paranoid", "guide")}
    print(f"{'broker':<10}" + "".join(f"{f'{n} in flight':>24}" for n in IN_FLIGHT))
    for kind, by_flight in rates.items():
        cells = "".join(f"{by_flight[n]:>12,.0f} req/s {by_flight[n] / rates['proxy'][n]:>5.2f}x"
                        for n in IN_FLIGHT)
        print(f"{kind:<10}{cells}")


if __name__ == "__main__":
    main()
