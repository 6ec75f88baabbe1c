"""The timeline and the live dashboard: what they draw, what the queues' snapshots tell
them, and that a dashboard stops with its queue."""

import threading
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from pirate_helpers.views.timeline import ARROW_GAP, timeline, too_close
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


def at(t: float, actor: str, kind: str, detail: str, peer: str) -> SimpleNamespace:
    """An event at a chosen time (a trace stamps events with the clock)."""
    return SimpleNamespace(t=t, actor=actor, kind=kind, detail=detail, peer=peer)


def test_two_messages_a_millisecond_apart_are_two_arrows_a_reader_can_tell_apart():
    events = [at(0.0, "client", "send", "1", "server"), at(0.001, "server", "send", "1", "client"),
              at(1.0, "client", "send", "2", "server")]
    first, second, third = timeline(events).arrows
    gap = ARROW_GAP * (1.0 * 1.05 + 0.01)
    assert second.start - first.start >= gap * 0.999, "moved apart, not drawn as one"
    # a reply leans the other way: it clears the request's head at the server's lane
    assert second.start - second.t < 2.5 * gap, "and moved no further than it had to"
    assert third.start == third.t == 1.0, "an arrow with room stays where it happened"


def test_an_arrow_to_a_far_lane_crosses_the_lane_between_away_from_its_arrows():
    """queue -> w2 passes w1's lane: the reader must not take it for queue -> w1 -> w2."""
    events = [at(0.0, "queue", "send", "a", "w1"), at(0.0, "queue", "send", "b", "w2"),
              at(0.0005, "w1", "send", "a", "queue"), at(0.5, "queue", "send", "c", "w1")]
    drawn = timeline(events, participants=["queue", "w1", "w2"])
    to_w1, to_w2, from_w1, _ = drawn.arrows
    gap = ARROW_GAP * (0.5 * 1.05 + 0.01)
    for mine in (to_w1, from_w1):
        assert abs(to_w2.at(1) - mine.at(1)) >= gap * 0.999
    assert to_w2.at(2) is not None and to_w1.at(2) is None, "only one arrow reaches w2"


def test_the_lazy_pirate_drop_story_draws_ten_separate_arrows():
    """Lesson 02: 4 requests, 4 replies, 2 resends, each round trip about a millisecond."""
    events, t = [], 0.0
    for request, tries in (("1", 1), ("2", 3), ("3", 1), ("4", 1)):
        for attempt in range(tries):
            events.append(at(t, "client", "send", request, "server"))
            if attempt == tries - 1:
                events.append(at(t + 0.0008, "client", "recv", request, "server"))
                t += 0.001
            else:
                t += 0.2
    arrows = timeline(events).arrows
    gap = ARROW_GAP * (t * 1.05 + 0.01)
    assert len(arrows) == 10
    assert not any(too_close(a, b, gap) for i, a in enumerate(arrows) for b in arrows[i + 1:])


@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 4), st.integers(0, 4)),
                min_size=1, max_size=25))
def test_no_two_arrows_touch_at_any_lane_and_none_moves_far(messages):
    lanes = ["a", "b", "c", "d", "e"]
    events = [at(t, lanes[source], "send", "x", lanes[target])
              for t, source, target in sorted(messages) if source != target]
    drawn = timeline(events, participants=lanes)
    span = max([e.t for e in events], default=1.0)
    gap = ARROW_GAP * (span * 1.05 + 0.01)
    for index, arrow in enumerate(drawn.arrows):
        assert arrow.t <= arrow.start <= arrow.t + 2.5 * index * gap + 1e-9, "moved little"
        assert not any(too_close(arrow, other, gap) for other in drawn.arrows[index + 1:])
    drawn.figure.clear()


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
                                  "unreachable": 1, "overdue": 0, "rejected": 0,
                                  "failed handshakes": 0, "closed before handshake": 0}
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
