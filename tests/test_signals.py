"""Every role stops within 2 s of SIGTERM or Ctrl-C, idle or in the middle of a request."""

from __future__ import annotations

import signal
import time

import pytest
import zmq
from processes import Role

from pirate_helpers import ParanoidQueue
from pirate_helpers.simple import SimplePirateQueue

STOP_WITHIN_S = 2.0
LONG_WORK = ("--work-ms", "20000")


def stopped_in_time(role: Role, signum: int = signal.SIGTERM) -> int:
    started = time.monotonic()
    role.process.send_signal(signum)
    status = role.stop(signum=None)
    took = time.monotonic() - started
    assert took < STOP_WITHIN_S, f"{role.args} took {took:.2f} s to stop"
    assert "Traceback" not in role.stderr, role.stderr
    return status


class Busy:
    """A request sent and never waited for: the role under test is busy with it. The socket
    is kept until `close()` (one garbage-collected with linger 0 loses its message)."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.ctx.linger = 0
        self.req = self.ctx.socket(zmq.REQ)
        self.req.connect(endpoint)
        self.req.send(b"job")

    def close(self) -> None:
        self.req.close()
        self.ctx.term()


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_lazy_server(busy):
    with Role("lazy-server", *LONG_WORK) as server:
        endpoint = server.endpoint()
        if busy:
            busy_with = Busy(endpoint)
            server.expect(r"lazy-server\s+recv\s+job")
        assert stopped_in_time(server) == 0
        if busy:
            busy_with.close()


@pytest.mark.parametrize("role", ["simple-queue", "paranoid-queue"])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_queues(role, busy):
    with Role(role) as queue:
        frontend = queue.endpoint(r"frontend \(clients\) on")
        if busy:  # no worker: the request waits in the queue
            busy_with = Busy(frontend)
        assert stopped_in_time(queue) == 0
        if busy:
            busy_with.close()


def simple_queue():
    return SimplePirateQueue("signal-queue")


def paranoid_queue():
    return ParanoidQueue("signal-queue", heartbeat_interval=1.0)  # the worker role's default


def worker_is(queue, state: str) -> bool:
    """Wait (bounded) until the queue sees w1 in `state`. The Simple queue notifies `changes`;
    the Paranoid loop takes no lock, so its trace is what changes."""
    if isinstance(queue, SimplePirateQueue):
        return queue.wait_until(lambda: "w1" in [queue.names[w] for w in (
            queue.lru.busy if state == "busy" else queue.lru.ready)], 10)
    return queue.trace.wait_for(lambda: queue.snapshot()["workers"].get("w1") == state, 10)


@pytest.mark.parametrize(("role", "make_queue"), [("simple-worker", simple_queue),
                                                  ("paranoid-worker", paranoid_queue)])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_workers(role, make_queue, busy):
    with make_queue() as queue, \
            Role(role, "--connect", queue.backend_endpoint, "--name", "w1", *LONG_WORK) as worker:
        worker.expect("w1 connected to")
        assert worker_is(queue, "ready")
        if busy:
            busy_with = Busy(queue.frontend_endpoint)
            assert worker_is(queue, "busy")
        assert stopped_in_time(worker) == 0
        if busy:
            busy_with.close()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_lazy_client_prints_its_summary_and_exits_128_plus_the_signal(signum, status):
    with Role("lazy-server", *LONG_WORK, "--quiet") as server:
        endpoint = server.endpoint()
        with Role("lazy-client", "--connect", endpoint, "--timeout-ms", "20000") as client:
            client.expect(r"lazy-client -> \S+\s+send\s+\S+:1")  # NAME:1
            assert stopped_in_time(client, signum) == status
            assert client.expect(r"lazy-client: stopped: 0 of 10 answered, 0 timeouts")


@pytest.mark.parametrize(("args", "status"), [(("paranoid-queue",), 0),
                                              (("lazy-client", "--forever"), 130)],
                         ids=["queue", "steady-load"])
def test_a_double_ctrl_c_stops_as_cleanly_as_one(args, status):
    """People press Ctrl-C twice; the second must not wedge or break the first's stop."""
    with Role("lazy-server", "--quiet") as server:
        join = server.expect(r"join \(clients\): (\S+)").group(1)
        load = "--forever" in args
        role = Role(*args, *(("--join", join, "--summary-ms", "50") if load else ()))
        role.expect(r"live: .* answered" if load else r"join \(workers\)")
        started = time.monotonic()
        role.process.send_signal(signal.SIGINT)
        role.process.send_signal(signal.SIGINT)
        assert role.stop(signum=None) == status
        assert time.monotonic() - started < STOP_WITHIN_S
        assert "Traceback" not in role.stderr, role.stderr
