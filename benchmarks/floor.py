"""The floor: the barest brokers pyzmq can run, for `guide.py` to measure beside ours.

    python benchmarks/floor.py queue       # Paranoid Pirate: clients at 5555, workers at 5556
    python benchmarks/floor.py majordomo   # MDP/0.1 on one ROUTER at 5555

What the Guide's `ppqueue.c` and `mdbroker.c` do on the happy path and nothing more, in
plain pyzmq: an LRU list of workers (per service), heartbeats out once a second, no expiry
of workers, no frame caps, no counts, no tracing, no check of who sends what. Not brokers
to use (one hostile or dead peer breaks them): a measure of what any Python broker built on
pyzmq costs before it decides anything of its own, so a ratio of ours to the Guide's C can
be read against the best a Python loop reaches.
"""

import sys
import time
from collections import deque

import zmq

INTERVAL = 1.0
PPP_READY, PPP_HEARTBEAT = b"\x01", b"\x02"
MDPC, MDPW = b"MDPC01", b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT = b"\x01", b"\x02", b"\x03", b"\x04"


def queue(context: zmq.Context) -> None:
    frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
    frontend.bind("tcp://*:5555")
    backend.bind("tcp://*:5556")
    workers: dict[bytes, None] = {}  # insertion order: least recently used first
    both, workers_only = zmq.Poller(), zmq.Poller()
    for poller in (both, workers_only):
        poller.register(backend, zmq.POLLIN)
    both.register(frontend, zmq.POLLIN)
    heartbeat_at = time.monotonic() + INTERVAL
    while True:
        ready = dict((both if workers else workers_only).poll(INTERVAL * 1000))
        if backend in ready:
            frames = backend.recv_multipart()
            workers[frames[0]] = None
            if len(frames) > 2 or frames[1] not in (PPP_READY, PPP_HEARTBEAT):
                frontend.send_multipart(frames[1:])
        if frontend in ready:
            worker = next(iter(workers))
            del workers[worker]
            backend.send_multipart([worker, *frontend.recv_multipart()])
        if time.monotonic() >= heartbeat_at:
            for worker in workers:
                backend.send_multipart([worker, PPP_HEARTBEAT])
            heartbeat_at = time.monotonic() + INTERVAL


def majordomo(context: zmq.Context) -> None:
    router = context.socket(zmq.ROUTER)
    router.bind("tcp://*:5555")
    services: dict[bytes, tuple[dict[bytes, None], deque]] = {}  # waiting workers, requests
    offered: dict[bytes, bytes] = {}  # worker -> its service
    heartbeat_at = time.monotonic() + INTERVAL

    def dispatch(waiting: dict[bytes, None], requests: deque) -> None:
        while waiting and requests:
            worker = next(iter(waiting))
            del waiting[worker]
            router.send_multipart([worker, b"", MDPW, REQUEST, *requests.popleft()])

    while True:
        if router.poll(INTERVAL * 1000):
            sender, _, header, *rest = router.recv_multipart()
            if header == MDPC:
                waiting, requests = services.setdefault(rest[0], ({}, deque()))
                requests.append([sender, b"", *rest[1:]])
                dispatch(waiting, requests)
            elif rest[0] == REPLY:
                service = offered[sender]
                router.send_multipart([rest[1], b"", MDPC, service, *rest[3:]])
                waiting, requests = services[service]
                waiting[sender] = None
                dispatch(waiting, requests)
            elif rest[0] == READY:
                offered[sender] = rest[1]
                waiting, requests = services.setdefault(rest[1], ({}, deque()))
                waiting[sender] = None
                dispatch(waiting, requests)
        if time.monotonic() >= heartbeat_at:
            for worker in offered:
                router.send_multipart([worker, b"", MDPW, HEARTBEAT])
            heartbeat_at = time.monotonic() + INTERVAL


if __name__ == "__main__":
    {"queue": queue, "majordomo": majordomo}[sys.argv[1]](zmq.Context())
