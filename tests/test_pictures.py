"""The timeline and the live dashboard: what they draw, and that the dashboard stops."""

import threading

from pirate_helpers import Actor, Trace
from pirate_helpers.timeline import timeline
from pirate_helpers.widgets import Dashboard, render


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
