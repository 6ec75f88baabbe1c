"""Titanic as processes: SIGKILLed with the broker and the workers, restarted on its store."""

import random
import re
import time
from collections import Counter

import pytest
from processes import Role, run

FAST = ["--heartbeat-ms", "50", "--liveness", "3"]
REQUESTS = 200


def test_the_titanic_roles_have_help_and_a_damaged_store_gets_one_line(tmp_path):
    assert "--store" in run("titanic", "--help").stdout
    assert "--poll-max-ms" in run("titanic-client", "--help").stdout
    store = tmp_path / "broken.db"
    store.write_bytes(b"not a database, just bytes" * 200)
    result = run("titanic", "--connect", "tcp://127.0.0.1:9", "--store", str(store))
    assert result.returncode == 2, result.stderr
    assert "argument --store:" in result.stderr and "not a usable Titanic store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_chaos_titanic_broker_and_workers_killed_every_request_answered(tmp_path):
    """A seeded schedule SIGKILLs Titanic (restarted on the same store), the broker
    (restarted on its endpoint) and workers (replaced) while a client submits 200 requests
    and collects their replies. Every request is answered with its own echo; a request is
    executed more than once only where a kill could have cut it between send and store."""
    rng = random.Random(20261206)
    started = time.monotonic()
    store = str(tmp_path / "titanic.db")
    broker = Role("majordomo-broker", *FAST)  # its log shows each request sent to a worker
    endpoint = broker.endpoint()
    names = iter(f"w{n}" for n in range(1, 100))
    titanic_args = ["titanic", "--connect", endpoint, "--store", store, *FAST,
                    "--reconnect-min-ms", "50", "--reconnect-max-ms", "200",
                    "--dispatch-timeout-ms", "1000"]

    def start_worker() -> Role:
        name = next(names)
        worker = Role("majordomo-worker", "--connect", endpoint, "--service", "echo",
                      "--name", name, *FAST, "--work-ms", "5", "--reconnect-min-ms", "50",
                      "--reconnect-max-ms", "200")
        worker.expect(rf"{name} offers echo")
        return worker

    titanic = Role(*titanic_args)
    titanic.expect("serving titanic.request")
    workers = [start_worker(), start_worker()]
    client = Role("titanic-client", "--connect", endpoint, "--service", "echo", "--name", "c",
                  "--requests", str(REQUESTS), "--timeout-ms", "500", "--retries", "30",
                  "--poll-max-ms", "200", "--quiet")
    everything = [broker, titanic, *workers, client]
    kills: Counter[str] = Counter()
    try:
        for fault in rng.sample(["titanic", "titanic", "broker", "worker", "worker"], 5):
            time.sleep(rng.uniform(0.1, 0.3))
            assert client.process.poll() is None, "the client finished before the chaos did"
            kills[fault] += 1
            if fault == "titanic":
                titanic.process.kill()
                titanic = Role(*titanic_args)
                everything.append(titanic)
            elif fault == "broker":
                broker.process.kill()
                broker = Role("majordomo-broker", *FAST, "--bind", endpoint)
                assert broker.endpoint() == endpoint
                everything.append(broker)
            else:
                workers.pop(rng.randrange(len(workers))).process.kill()
                workers.append(start_worker())
                everything.append(workers[-1])
        summary = client.expect(rf"(\d+) of {REQUESTS} answered, (\d+) mismatched, (\d+) lost",
                                timeout=40)
        assert summary.groups() == (str(REQUESTS), "0", "0")
        assert client.process.wait(10) == 0
    finally:
        for role in everything:
            role.stop()
    executed = Counter()
    dispatched, stored = Counter(), Counter()
    for role in everything:
        for line in role.all_lines():
            if role.args[0] == "majordomo-broker" and (
                    m := re.search(r"-> w\d+\S*\s+send\s+REQUEST c:(\d+)$", line)):
                executed[m.group(1)] += 1  # sent to a worker: executed, or lost with it
            if role.args[0] == "titanic":
                if m := re.search(r"\bsend\s+(\w{32})", line):
                    dispatched[m.group(1)] += 1
                if m := re.search(r"\bkept\s+(\w{32}) echo c:(\d+)", line):
                    stored[m.group(2)] += 1
    assert set(executed) == {str(n) for n in range(1, REQUESTS + 1)}, "every request executed"
    duplicates = sum(n - 1 for n in executed.values())
    resubmitted = sum(n - 1 for n in stored.values())
    redispatched = sum(n - 1 for n in dispatched.values())
    print(f"\nchaos: {REQUESTS} requests, kills {dict(kills)}, answered {summary.group(1)}, "
          f"executed twice or more: {duplicates} (requests stored twice because a "
          f"titanic.request reply was lost: {resubmitted}; dispatched again after a timeout or "
          f"a restart: {redispatched}), in {time.monotonic() - started:.1f} s")
    # one request is in flight at a time: a kill cuts at most one dispatch, plus (Titanic or
    # the broker) at most one client's titanic.request whose answer never came back
    assert duplicates <= 2 * (kills["titanic"] + kills["broker"]) + kills["worker"]
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("args, says", [
    (["titanic", "--connect", "tcp://127.0.0.1:5555"],
     "the following arguments are required: --store"),
    (["titanic", "--connect", "tcp://127.0.0.1:5555", "--store", "x.db", "--max-stored", "0"],
     "--max-stored: expected 1 or more"),
    (["titanic", "--connect", "tcp://127.0.0.1:5555", "--store", "x.db",
      "--reconnect-min-ms", "500", "--reconnect-max-ms", "100"], "--reconnect-max-ms"),
    (["titanic-client", "--connect", "tcp://127.0.0.1:5555", "--service", "",
      "--requests", "1"], "--service: a name cannot be empty"),
])
def test_a_wrong_option_gets_one_line_and_status_2(args, says):
    result = run(*args)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_faults_every_request_runs_exactly_once(tmp_path):
    with Role("majordomo-broker", *FAST) as broker:
        endpoint = broker.endpoint()
        with Role("titanic", "--connect", endpoint, "--store", str(tmp_path / "t.db"), *FAST,
                  "--quiet") as titanic, \
                Role("majordomo-worker", "--connect", endpoint, "--service", "echo",
                     "--name", "w1", *FAST) as worker:
            titanic.expect("serving")
            worker.expect("w1 offers echo")
            result = run("titanic-client", "--connect", endpoint, "--service", "echo",
                         "--name", "c", "--requests", "30", "--timeout-ms", "2000", "--quiet")
            assert "30 of 30 answered, 0 mismatched, 0 lost" in result.stdout, result.stderr
    sent = Counter(m.group(1) for line in broker.all_lines()
                   if (m := re.search(r"-> w1\s+send\s+REQUEST c:(\d+)$", line)))
    assert sent == Counter({str(n): 1 for n in range(1, 31)})
