"""Paranoid Pirate as processes from the command line, under seeded chaos."""

import random
import time

import pytest
from processes import Role, run

FAST = ["--heartbeat-ms", "50", "--liveness", "3"]


@pytest.mark.parametrize("role", ["paranoid-queue", "paranoid-worker"])
def test_the_paranoid_roles_have_help(role):
    result = run(role, "--help")
    assert result.returncode == 0 and "--heartbeat-ms" in result.stdout


def start_queue(*args: str) -> tuple[Role, str, str]:
    queue = Role("paranoid-queue", *FAST, "--quiet", *args)
    frontend = queue.expect(r"frontend \(clients\) on (\S+)").group(1)
    backend = queue.expect(r"backend \(workers\) on (\S+)").group(1)
    return queue, frontend, backend


def test_the_queue_listens_on_loopback_and_stops_cleanly_on_sigterm():
    queue, frontend, backend = start_queue()
    assert frontend.startswith("tcp://127.0.0.1:") and backend.startswith("tcp://127.0.0.1:")
    assert frontend != backend
    assert queue.stop() == 0


def test_chaos_workers_killed_and_replaced_and_the_queue_restarted_lose_no_request():
    """3 workers SIGKILLed at seeded random moments and replaced, the queue SIGKILLed and
    restarted once on the same endpoints: two Lazy Pirate clients get every reply, each
    matching its request."""
    rng = random.Random(20250130)
    started = time.monotonic()
    queue, frontend, backend = start_queue()
    names = iter(f"w{n}" for n in range(1, 100))

    def start_worker() -> Role:
        name = next(names)
        worker = Role("paranoid-worker", "--connect", backend, "--name", name, *FAST,
                      "--work-ms", "60", "--reconnect-min-ms", "50", "--reconnect-max-ms", "400")
        worker.expect(rf"{name} connected")
        return worker

    workers = [start_worker() for _ in range(3)]
    clients = [Role("lazy-client", "--connect", frontend, "--requests", "40",
                    "--timeout-ms", "1000", "--retries", "10") for _ in range(2)]
    everything = [queue, *workers, *clients]
    try:
        done_under_load = []
        # the restart in the middle: at most 2 kills follow, so a worker lives through it
        for fault in ["kill-worker"] * 2 + ["restart-queue"] + ["kill-worker"] * 2:
            time.sleep(rng.uniform(0.2, 0.5))  # the fault schedule, seeded
            done_under_load.append(all(c.process.poll() is None for c in clients))
            if fault == "kill-worker":
                victim = workers.pop(rng.randrange(len(workers)))
                victim.process.kill()
                workers.append(start_worker())
                everything.append(workers[-1])
            else:
                queue.process.kill()
                queue, _, _ = start_queue("--frontend", frontend, "--backend", backend)
                everything.append(queue)
                at_restart = list(workers)
        assert all(done_under_load), "the clients finished before the chaos did: make them longer"
        for client in clients:
            summary = client.expect(r"lazy-client: (\d+) of 40 answered", timeout=30)
            assert summary.group(1) == "40"
            assert client.process.wait(10) == 0
            assert not [line for line in client.seen if " mismatch " in line]
        assert all(w.process.poll() is None for w in workers)
        for worker in [w for w in at_restart if w in workers]:
            worker.expect(r"backoff\s+queue silent", timeout=5)  # it noticed the dead queue
            worker.expect(r"reconnect\s+READY again", timeout=5)
    finally:
        for role in everything:
            role.stop()
    assert time.monotonic() - started < 60
