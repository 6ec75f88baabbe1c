"""The timeline and the live dashboard: what they draw, what the queues' snapshots tell
them, and that a dashboard stops with its queue."""

import threading
from types import SimpleNamespace

import pytest

from pirate_helpers import (
    Actor,
    Faults,
    LazyClient,
    LazyPirateClient,
    ParanoidQueue,
    ParanoidWorker,
    Trace,
    stop_all,
)
from pirate_helpers.simple import SimplePirateQueue, SimpleWorker
from pirate_helpers.views.timeline import timeline
from pirate_helpers.views.widgets import Dashboard, render, with_clients


@pytest.fixture(autouse=True)
def stop_actors():
    """Stop whatever a test started, re-raising any actor's error."""
    yield
    stop_all()


def lazy_story() -> Trace:
    trace = Trace()
    trace.add("client", "send", "1", peer="server")
    trace.add("server", "recv", "1")
    trace.add("server", "drop", "1")
    trace.add("client", "timeout", "no reply")
    trace.add("client", "retry", "try 2 of 3")
    trace.add("client", "send", "1", peer="server")
    trace.add("client", "recv", "1", peer="server")
    trace.add("queue", "send", "HEARTBEAT", peer="worker")
    return trace


def test_timeline_has_a_lane_per_actor_and_a_mark_per_event_it_shows():
    drawn = timeline(lazy_story(), participants=["client", "server"])
    assert drawn.lanes == ["client", "server", "queue", "worker"]
    assert drawn.marks == {"message": 3, "heartbeat": 1, "drop": 1, "timeout": 1, "retry": 1}
    png = drawn._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_an_empty_trace_still_draws():
    assert timeline(Trace()).marks == {}


def test_dashboard_html_shows_each_worker_state_and_every_count():
    panel = render(
        {"workers": {"w2": "busy", "w1": "ready", "w<3>": "expired"},
         "counts": {"answered": 7, "lost": 0}},
        title="queue",
    )
    assert panel.index("w1: ready") < panel.index("w2: busy")
    assert "w&lt;3&gt;: expired" in panel, "names are escaped"
    assert "<b>7</b><br><small>answered</small>" in panel and "<b>queue</b>" in panel
    assert "no workers" in render({})


class Watched(Actor):
    """Stands in for a broker: runs until stopped."""


def test_dashboard_follows_its_actor_and_stops_with_it():
    broker = Watched("broker").start()
    seen = threading.Event()
    counts = {"answered": 0}

    def snapshot():
        counts["answered"] += 1
        if counts["answered"] >= 3:
            seen.set()
        return {"workers": {"w1": "ready"}, "counts": dict(counts)}

    dashboard = Dashboard(snapshot, watch=broker, interval=0.01).start()
    assert seen.wait(5), "the dashboard refreshes by itself"
    broker.stop()
    assert dashboard.join(5), "it stops when the broker stops"
    assert "w1: ready" in dashboard.widget.value
    assert dashboard.updates >= 3
    dashboard.stop()


def test_simple_snapshot_shows_a_dead_worker_busy_with_its_request_and_the_counts():
    queue = SimplePirateQueue().start()
    for name, faults in (("doomed", Faults(crash_after=1)), ("steady", Faults())):
        SimpleWorker(name, connect=queue.backend_endpoint, faults=faults).start()
    assert queue.wait_for_workers(2)
    client = LazyClient(queue.frontend_endpoint, requests=8, timeout=0.3).start()
    assert client.join(10) and client.client.timeouts == 1
    snapshot = queue.snapshot()
    assert snapshot["workers"] == {"doomed": "busy", "steady": "ready"}
    assert snapshot["counts"] == {"in flight": 1, "waiting": 0, "answered": 8, "lost": 0,
                                  "unreachable": 0, "rejected": 0, "failed handshakes": 0,
                                  "closed before handshake": 0}
    assert snapshot["served"] == {"doomed": 1, "steady": 7}
    assert all(0 <= heard < 10 for heard in snapshot["last heard"].values())


def test_paranoid_snapshot_shows_a_purged_worker_expired_and_its_request_requeued():
    options = {"heartbeat_interval": 0.05, "liveness": 3}
    queue = ParanoidQueue(**options).start()
    ParanoidWorker("w1", connect=queue.backend_endpoint, faults=Faults(crash_after=0),
                   **options).start()
    assert queue.trace.wait_for(lambda: queue.state.ready, 5)
    ParanoidWorker("w2", connect=queue.backend_endpoint, **options).start()
    dashboard = Dashboard(queue.snapshot, watch=queue, interval=0.01).start()
    with LazyPirateClient(queue.frontend_endpoint, timeout=3, retries=1) as client:
        assert client.request(b"held by w1") == [b"held by w1"]
    snapshot = queue.snapshot()
    assert snapshot["workers"] == {"w1": "expired", "w2": "ready"}
    assert snapshot["counts"] == {"in flight": 0, "waiting": 0, "answered": 1, "requeued": 1,
                                  "unreachable": 1, "rejected": 0, "failed handshakes": 0,
                                  "closed before handshake": 0}
    assert snapshot["served"] == {"w2": 1} and set(snapshot["last heard"]) == {"w2"}
    queue.stop()
    assert dashboard.join(5), "the dashboard stops with its queue"
    assert "w1: expired" in dashboard.widget.value and "w2: ready" in dashboard.widget.value


def test_with_clients_adds_the_retries_only_clients_see():
    def client(timeouts, gave_up):
        return SimpleNamespace(timeouts=timeouts, mismatched=0, gave_up=gave_up)

    clients = [client(2, 1)]
    combined = with_clients(lambda: {"workers": {}, "counts": {"answered": 9}}, clients)
    clients.append(client(1, 0))  # clients may join while a dashboard runs
    assert combined()["counts"] == {"answered": 9, "retried": 2}
