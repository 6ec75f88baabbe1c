"""Names people choose collide: both workers serve, the queue shows them apart and warns once.
Heartbeat settings that differ are named; a drop on the lazy server touches nobody else."""

import re

import pytest
from processes import Role, run

from pirate_helpers import (
    PPP_HEARTBEAT,
    PPP_READY,
    Faults,
    LazyClient,
    LazyPirateClient,
    LazyServer,
    ParanoidQueue,
    ParanoidWorker,
    QueueState,
    Trace,
)
from pirate_helpers.names import DisplayNames, chosen_name, wire_identity


def test_wire_identities_are_unique_and_keep_the_name():
    first, second = wire_identity("alice"), wire_identity("alice")
    assert first != second and chosen_name(first) == chosen_name(second) == "alice"
    assert chosen_name(b"plain-rfc6-worker") == "plain-rfc6-worker"
    assert len(wire_identity("x" * 255)) <= 255


def test_display_names_are_unique_among_live_workers_and_warn_once_per_name():
    names = DisplayNames()
    a, b, c = (wire_identity("alice") for _ in range(3))
    assert names.add(a) == [("join", "alice joined")] and names[a] == "alice"
    [joined, (kind, warning)] = names.add(b)
    assert joined == ("join", "alice#2 joined") and kind == "duplicate"
    assert names[b] == "alice#2" and "'alice'" in warning and "'alice#2'" in warning
    assert names.add(c) == [("join", "alice#3 joined")], "warned once per name"
    assert names[c] == "alice#3" and names.add(c) == [], "a known worker is not new"
    names.remove(a)
    assert names[a] == "alice", "a gone worker keeps its name for the views"
    d = wire_identity("alice")
    names.add(d)
    assert names[d] == "alice", "a freed name is given again"


def test_the_queue_state_tracks_two_workers_of_one_name_and_notes_it_once():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    a, b = wire_identity("alice"), wire_identity("alice")
    state.on_worker_message([a, PPP_READY], 0.0)
    state.on_worker_message([b, PPP_READY], 0.0)
    state.on_worker_message([b, PPP_READY], 0.5)  # a reconnection is not a new duplicate
    assert set(state.ready) == {a, b}
    assert [kind for kind, _ in state.notes] == ["join", "join", "duplicate", "reconnect"]


def test_a_purged_worker_whose_heartbeat_comes_late_is_named_with_both_intervals():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    slow = wire_identity("slowpoke")
    state.on_worker_message([slow, PPP_READY], 0.0)
    state.tick(3.0)
    assert slow not in state.workers
    state.notes.clear()
    state.on_worker_message([slow, PPP_HEARTBEAT], 5.0)  # it heartbeats every 5 s
    assert [kind for kind, _ in state.notes] == ["reject"]  # one gap is no interval yet
    state.notes.clear()
    state.on_worker_message([slow, PPP_HEARTBEAT], 10.0)
    [(kind, detail)] = state.notes
    assert kind == "mismatch" and "slowpoke" in detail
    assert "~5 s" in detail and "every 1 s" in detail
    state.notes.clear()
    state.on_worker_message([slow, PPP_HEARTBEAT], 15.0)
    assert [kind for kind, _ in state.notes] == ["reject"], "named once, then only rejected"


def test_a_frozen_worker_heartbeating_at_our_rate_again_is_not_called_mismatched():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("w")
    state.on_worker_message([w, PPP_READY], 0.0)
    state.tick(3.0)
    state.notes.clear()
    for now in (7.0, 8.0, 9.0):  # frozen for a while, then its heartbeats come at our rate
        state.on_worker_message([w, PPP_HEARTBEAT], now)
    assert [kind for kind, _ in state.notes] == ["reject"] * 3


@pytest.mark.parametrize("kind", ["paranoid", "simple"])
def test_two_workers_given_one_name_both_serve_and_neither_reconnects(kind):
    beat = ["--heartbeat-ms", "100"] if kind == "paranoid" else []
    with Role(f"{kind}-queue", *beat, "--quiet") as queue:
        clients_join = queue.expect(r"join \(clients\): (\S+)").group(1)
        workers_join = queue.expect(r"join \(workers\): (\S+)").group(1)
        workers = [Role(f"{kind}-worker", "--join", workers_join, "--name", "alice", *beat,
                        "--quiet") for _ in range(2)]
        try:
            queue.expect(r"two workers are named 'alice'.*'alice#2'")
            client = run("lazy-client", "--join", clients_join, "--requests", "10",
                         "--timeout-ms", "1000", "--quiet")
            assert client.returncode == 0 and "10 of 10 answered, 0 timeouts" in client.stdout
        finally:
            codes = [worker.stop() for worker in workers]
        assert codes == [0, 0]
        assert queue.stop() == 0
    assert sum("duplicate" in line for line in queue.all_lines()) == 1, "warned once"
    joined = [m.group(1) for line in queue.all_lines()
              if (m := re.search(r"\sjoin\s+(\S+) joined$", line))]
    assert sorted(joined) == ["alice", "alice#2"], "each logged once as it joined"
    served = []
    for worker in workers:
        lines = worker.all_lines()
        assert not any("reconnect" in line or "backoff" in line for line in lines), lines
        served += [int(m.group(1)) for line in lines if (m := re.search(r"served (\d+)", line))]
    assert len(served) == 2 and all(n > 0 for n in served) and sum(served) == 10, served


def test_a_slow_heartbeating_worker_is_named_in_a_warning_with_both_intervals():
    trace = Trace()
    with ParanoidQueue(trace=trace, heartbeat_interval=0.05, liveness=3) as queue:
        slow = ParanoidWorker("slowpoke", connect=queue.backend_endpoint, trace=trace,
                              heartbeat_interval=0.4, liveness=3).start()
        assert trace.wait_for(lambda: trace.count("mismatch", "queue") == 1, 5), trace
        [warning] = [e.detail for e in trace.of("queue", "mismatch")]
        assert "slowpoke" in warning and "every 0.05 s" in warning
        assert re.search(r"~0\.[3-9]", warning), warning
        # the worker measures the queue's pace too, and says so once
        assert trace.wait_for(lambda: trace.count("mismatch", "slowpoke") == 1, 5), trace
        [heard] = [e.detail for e in trace.of("slowpoke", "mismatch")]
        assert "every 0.4 s" in heard and re.search(r"queue every ~0\.0[3-7]", heard), heard
        slow.stop()
    assert trace.count("mismatch") == 2, "one warning on each side"


def test_a_dropped_request_costs_only_its_own_client_a_timeout():
    trace = Trace()
    with LazyServer(work_s=0.02, faults=Faults(drop={1}), trace=trace) as server:
        clients = [LazyClient(server.endpoint, f"c{n}", requests=2, timeout=0.5,
                              trace=trace).start() for n in range(5)]
        assert all(client.join(10) for client in clients)
        assert all(len(client.answered) == 2 for client in clients)
        assert sum(client.client.timeouts for client in clients) == 1
        assert server.dropped == 1
        for client in clients:
            client.stop()
        with LazyPirateClient(server.endpoint) as check:
            assert check.request(b"still fine") == [b"still fine"]


def test_a_worker_that_blocks_while_it_works_is_not_called_mismatched():
    """The Guide's ppworker sends no heartbeat while it works: the gap across a request says
    nothing about its interval (11 false warnings in 150 s once). Only idle gaps count."""
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("blocker")
    state.on_worker_message([w, PPP_READY], 0.0)
    for now in (1.0, 2.0):
        state.on_worker_message([w, PPP_HEARTBEAT], now)
    state.on_request([b"c1", b"", b"job"], 2.1)
    assert state.workers[w].request is not None
    state.on_worker_message([w, b"c1", b"", b"job"], 4.9)  # 2.8 s of work, no heartbeat
    state.on_worker_message([w, PPP_HEARTBEAT], 5.0)
    state.tick(8.0)  # then it dies: purged
    assert w not in state.workers
    assert "mismatch" not in [kind for kind, _ in state.notes]


def test_a_worker_idle_with_slow_heartbeats_is_still_called_mismatched():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("slow")
    state.on_worker_message([w, PPP_READY], 0.0)
    for now in (2.5, 5.0):  # idle, every 2.5 s: within the 3 s limit, but not our rate
        state.on_worker_message([w, PPP_HEARTBEAT], now)
    state.tick(8.0)
    assert "mismatch" in [kind for kind, _ in state.notes]
