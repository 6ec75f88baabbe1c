"""The ZeroMQ Guide's own C peers against the course's roles, and the course's clients and
workers against the Guide's C brokers (issue 20). The Guide's peers use fixed ports (5555 for
clients or the broker, 5556 for a queue's workers), so each test runs in a network namespace
of its own; skipped with the one-line reason where gcc, libczmq or root is missing.
"""

from __future__ import annotations

import itertools
import re
import subprocess

import pytest
from guide_peers import Missing, Namespace, build
from processes import Role

from pirate_helpers import netns

BROKER = "tcp://127.0.0.1:5555"  # the Guide's broker, or a queue's clients
BACKEND = "tcp://127.0.0.1:5556"  # a Guide queue's workers
SCALED = 10_000  # mdclient2's 100,000 requests, scaled down for `make test`
MDCLIENT2 = f"mdclient2_{SCALED}"
PROGRAMS = ("mdbroker", "mdworker", "ppqueue", "ppworker_nofault", MDCLIENT2)
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
RUNS = itertools.count(1)  # one namespace per test
ANSWERED = r"(\d+) of (\d+) answered, (\d+) timeouts?, (\d+) mismatched"


@pytest.fixture(scope="module")
def binaries():
    try:
        return build(PROGRAMS, edits={MDCLIENT2: ("mdclient2", f"100000 -> {SCALED}")})
    except Missing as missing:
        pytest.skip(str(missing))


@pytest.fixture
def namespace():
    try:
        with Namespace(next(RUNS)) as made:
            yield made
    except Missing as missing:
        pytest.skip(str(missing))


def started(namespace: Namespace, *commands: list[str]) -> list[subprocess.Popen]:
    return [namespace.start(command, **QUIET) for command in commands]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait(10)


def test_a_busy_worker_behind_the_guides_mdbroker_keeps_it_for_a_10_s_request(binaries,
                                                                              namespace):
    """mdbroker.c heartbeats only idle workers: for the 10 s our worker works, the broker is
    silent (4 heartbeat intervals of 2.5 s). The worker must neither give the broker up (it
    did at 8.9 s) nor abandon the request."""
    guide = started(namespace, [str(binaries / "mdbroker")])
    worker = Role("majordomo-worker", "--connect", BROKER, "--service", "echo", "--name",
                  "slow", "--work-ms", "10000", namespace=namespace.name)
    client = None
    try:
        worker.expect("offers echo")
        assert namespace.wait_for_connections(5555, 1, alive=guide[0])
        client = Role("majordomo-client", "--connect", BROKER, "--service", "echo",
                      "--requests", "1", "--timeout-ms", "20000", "--retries", "1",
                      namespace=namespace.name)
        answered = client.expect(ANSWERED, timeout=40)
        assert answered.groups()[:2] == ("1", "1"), answered.string
        assert client.stop(signum=None) == 0
        assert worker.process.poll() is None
    finally:
        if client is not None:
            client.stop()
        assert worker.stop() == 0, worker.stderr[-2000:]
        stop(guide)
    gave_up = [line for line in worker.all_lines() if re.search(r"silent|reconnect", line)]
    assert not gave_up, gave_up


@pytest.mark.parametrize("setting, answered", [
    (("--max-queued", "100000", "--max-queued-per-client", "100000"), SCALED),
    ((), None),  # the defaults: one client may have 1,000 waiting
])
def test_the_guides_async_client_through_our_broker(binaries, namespace, setting, answered):
    """mdclient2 sends all its requests before it reads a reply. With the setting the README
    and `--help` give, every one is answered; with the defaults the broker refuses what one
    client queues past its share, counted, and the client sees timeouts."""
    broker = Role("majordomo-broker", "--quiet", "--bind", BROKER, *setting,
                  namespace=namespace.name)
    workers = []
    try:
        assert broker.endpoint() == BROKER
        workers = started(namespace, *[[str(binaries / "mdworker")]] * 2)
        assert namespace.wait_for_connections(5555, 2)
        client = subprocess.run(netns.command(namespace.name, str(binaries / MDCLIENT2)),
                                capture_output=True, text=True, timeout=300)
        replies = int(re.fullmatch(r"(\d+) replies received", client.stdout.strip())[1])
    finally:
        stop(workers)
        assert broker.stop() == 0, broker.stderr[-2000:]
    if answered is not None:
        assert replies == answered
        assert not broker.newest("reject"), broker.all_lines()[-5:]
    else:
        assert 1000 <= replies < SCALED
        refused = broker.newest(r"summary: \d+ more reject \((\d+) in all\)")
        assert refused and int(refused[1]) >= SCALED - replies, broker.all_lines()[-5:]


def test_our_client_through_the_guides_mdbroker_covers_a_crashed_worker(binaries, namespace):
    """mdbroker.c never sends a crashed worker's request again: our Majordomo client's
    Lazy Pirate retry does, and the Guide's C worker answers it; every reply is checked."""
    guide = started(namespace, [str(binaries / "mdbroker")])
    ours = Role("majordomo-worker", "--connect", BROKER, "--service", "echo", "--name",
                "crashes", "--crash-after", "2", namespace=namespace.name)
    theirs = []
    try:
        ours.expect("offers echo")
        theirs = started(namespace, [str(binaries / "mdworker")])
        assert namespace.wait_for_connections(5555, 2, alive=guide[0])
        client = Role("majordomo-client", "--connect", BROKER, "--service", "echo",
                      "--requests", "10", "--timeout-ms", "1000", "--retries", "3", "--quiet",
                      namespace=namespace.name)
        answered, asked, timeouts, mismatched = map(int, client.expect(ANSWERED, 60).groups())
        assert client.stop(signum=None) == 0
        assert (answered, asked, mismatched) == (10, 10, 0)
        assert timeouts >= 1  # the request our worker took down with it
        assert ours.process.wait(10) != 0  # it crashed, as told
    finally:
        ours.stop()
        stop(theirs + guide)


def test_our_worker_comes_back_to_a_restarted_guide_ppqueue(binaries, namespace):
    """ppqueue.c heartbeats at 1 s, liveness 3, as our worker's defaults: ours serves through
    it, gives the killed queue up as silent, says READY to the queue started again and
    serves through it."""
    queue = started(namespace, [str(binaries / "ppqueue")])
    worker = Role("paranoid-worker", "--connect", BACKEND, "--name", "ours",
                  namespace=namespace.name)
    client = None
    try:
        assert namespace.wait_for_connections(5556, 1, alive=queue[0])
        client = Role("lazy-client", "--connect", BROKER, "--requests", "3", "--quiet",
                      namespace=namespace.name)
        assert client.expect(ANSWERED, 30).groups()[:2] == ("3", "3")
        assert client.stop(signum=None) == 0
        stop(queue)
        worker.expect("queue silent", 10)  # 3 heartbeats of 1 s with no queue
        queue = started(namespace, [str(binaries / "ppqueue")])
        worker.expect("READY again", 10)
        client = Role("lazy-client", "--connect", BROKER, "--requests", "3", "--quiet",
                      "--timeout-ms", "1000", "--retries", "10", namespace=namespace.name)
        answered = client.expect(ANSWERED, 60)
        assert answered.groups()[:2] == ("3", "3") and answered[4] == "0", answered.string
        assert client.stop(signum=None) == 0
        assert worker.process.poll() is None
    finally:
        if client is not None:
            client.stop()
        assert worker.stop() == 0, worker.stderr[-2000:]
        stop(queue)
