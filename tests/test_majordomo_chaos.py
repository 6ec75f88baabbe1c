"""Majordomo as processes from the command line, under seeded chaos."""

import random
import time

import pytest
from processes import Role, run

FAST = ["--heartbeat-ms", "50", "--liveness", "3"]
SERVICES = ("echo", "mirror")


@pytest.mark.parametrize("role, option", [("majordomo-broker", "--request-expiry-ms"),
                                          ("majordomo-worker", "--reconnect-max-ms"),
                                          ("majordomo-client", "--retries")])
def test_the_majordomo_roles_have_help(role, option):
    result = run(role, "--help")
    assert result.returncode == 0 and option in result.stdout


def test_a_client_asks_a_service_through_the_broker_and_stops_cleanly():
    with Role("majordomo-broker", *FAST, "--quiet") as broker:
        endpoint = broker.endpoint()
        assert endpoint.startswith("tcp://127.0.0.1:")
        with Role("majordomo-worker", "--connect", endpoint, "--service", "echo",
                  "--name", "e1", *FAST, "--reconnect-min-ms", "50") as worker:
            worker.expect("e1 offers echo")
            result = run("majordomo-client", "--connect", endpoint, "--service", "echo",
                         "--requests", "5", "--timeout-ms", "2000", "--quiet")
            assert result.returncode == 0, result.stderr
            assert "5 of 5 answered, 0 timeouts, 0 mismatched" in result.stdout
        assert broker.stop() == 0


def test_a_client_of_a_service_nobody_offers_gives_up_with_a_clear_message():
    with Role("majordomo-broker", *FAST, "--quiet", "--request-expiry-ms", "100") as broker:
        result = run("majordomo-client", "--connect", broker.endpoint(), "--service", "none",
                     "--requests", "1", "--timeout-ms", "200", "--retries", "2", "--quiet")
    assert result.returncode == 2 and "after 2 tries" in result.stderr


def test_chaos_workers_of_two_services_killed_and_the_broker_restarted_lose_no_request():
    """Workers of two services SIGKILLed at seeded random moments and replaced, the broker
    SIGKILLed and restarted once on its endpoint: clients of both services get every reply,
    each matching its request."""
    rng = random.Random(20261202)
    started = time.monotonic()
    broker = Role("majordomo-broker", *FAST, "--quiet")
    endpoint = broker.endpoint()
    names = iter(f"w{n}" for n in range(1, 100))

    def start_worker(service: str) -> tuple[str, Role]:
        name = next(names)
        worker = Role("majordomo-worker", "--connect", endpoint, "--service", service,
                      "--name", name, *FAST, "--work-ms", "30", "--reconnect-min-ms", "50",
                      "--reconnect-max-ms", "400")
        worker.expect(rf"{name} offers {service}")
        return service, worker

    workers = [start_worker(service) for service in SERVICES for _ in range(2)]
    clients = [Role("majordomo-client", "--connect", endpoint, "--service", service,
                    "--requests", "120", "--timeout-ms", "1000", "--retries", "10", "--quiet")
               for service in SERVICES]
    everything = [broker, *(w for _, w in workers), *clients]
    try:
        under_load = []
        for fault in ["kill-worker"] * 2 + ["restart-broker"] + ["kill-worker"] * 2:
            time.sleep(rng.uniform(0.2, 0.4))  # the fault schedule, seeded
            under_load.append(all(c.process.poll() is None for c in clients))
            if fault == "kill-worker":
                service, victim = workers.pop(rng.randrange(len(workers)))
                victim.process.kill()
                workers.append(start_worker(service))
                everything.append(workers[-1][1])
            else:
                broker.process.kill()
                broker = Role("majordomo-broker", *FAST, "--quiet", "--bind", endpoint)
                assert broker.endpoint() == endpoint
                everything.append(broker)
                at_restart = [w for _, w in workers]
        assert all(under_load), "the clients finished before the chaos did: make them longer"
        for client in clients:
            summary = client.expect(r"(\d+) of 120 answered, \d+ timeouts?, (\d+) mismatched",
                                    timeout=20)
            assert summary.groups() == ("120", "0")
            assert client.process.wait(10) == 0
        assert all(w.process.poll() is None for _, w in workers)
        for worker in [w for _, w in workers if w in at_restart]:
            worker.expect(r"backoff\s+broker silent", timeout=5)  # it noticed the dead broker
            worker.expect(r"reconnect\s+READY again as w\d+\.2", timeout=5)
    finally:
        for role in everything:
            role.stop()
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("args, says", [
    (["majordomo-worker", "--connect", "tcp://127.0.0.1:5555", "--service", "mmi.service"],
     "--service: 'mmi.service': mmi.* services are the broker's own"),
    (["majordomo-worker", "--connect", "tcp://127.0.0.1:5555", "--service", ""],
     "--service: a name cannot be empty"),
    (["majordomo-broker", "--request-expiry-ms", "0"], "--request-expiry-ms: expected a time"),
    (["majordomo-client", "--connect", "tcp://127.0.0.1:5555", "--service", "echo",
      "--retries", "0"], "--retries: expected 1 or more"),
])
def test_a_wrong_option_gets_one_line_and_status_2(args, says):
    result = run(*args)
    assert result.returncode == 2 and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
