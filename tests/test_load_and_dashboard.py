"""A steady load that says who sent what, and the live table an instructor projects."""

import io
import re
import signal

from processes import Role
from rich.console import Console

from pirate_helpers import Faults, LazyServer, ParanoidQueue, ParanoidWorker, SteadyLoad, Trace
from pirate_helpers.views.console import render


def test_a_steady_load_counts_answered_retried_and_lost_and_names_its_requests():
    trace = Trace()
    with LazyServer(faults=Faults(drop={3}), trace=trace) as server:
        load = SteadyLoad(server.endpoint, "alice", rate=500, requests=6, timeout=0.1,
                          trace=trace).start()
        assert load.join(10)
        summary = load.summary()
        assert (summary["answered"], summary["retried"], summary["lost"]) == (6, 1, 0)
        assert 0 < summary["median ms"] <= summary["p95 ms"]
        bodies = [e.detail for e in trace.of(server.name, "recv")]
        assert bodies[:3] == ["alice:1", "alice:2", "alice:3"]
        load.stop()


def test_a_steady_load_rides_out_an_outage_counting_what_it_lost():
    with LazyServer(faults=Faults(crash_after=0)) as dead:
        load = SteadyLoad(dead.endpoint, "bob", rate=1000, requests=3, timeout=0.05,
                          retries=2).start()
        assert load.join(10)
        assert (load.answered, load.lost, load.retried) == (0, 3, 3), load.summary()
        assert "0 answered, 3 retried, 3 lost" in load.summary_line()
        load.stop()


def test_the_steady_load_is_paced_by_its_rate():
    with LazyServer() as server:
        load = SteadyLoad(server.endpoint, "pace", rate=50, requests=10).start()
        assert load.join(10)
        assert load.summary()["elapsed s"] >= 9 / 50 - 0.01, "10 requests at 50/s take 0.18 s"
        load.stop()


def test_lazy_client_forever_keeps_a_live_summary_and_exits_on_signals():
    with Role("lazy-server") as server:
        join = server.expect(r"join \(clients\): (\S+)").group(1)
        for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            client = Role("lazy-client", "--join", join, "--name", "carol", "--forever",
                          "--rate", "100", "--summary-ms", "100")
            client.expect(r"live: carol: [1-9]\d* answered, 0 retried, 0 lost, 0 mismatched, "
                          "latency")
            client.process.send_signal(signum)
            assert client.stop() == status
            final = client.expect(r"stopped: carol: (\d+) answered", timeout=2)
            assert int(final.group(1)) >= 1
        server.expect(r"recv\s+carol:1$")
        assert server.stop() == 0


def test_majordomo_client_honours_name_forever_rate_and_summary_ms_as_lazy_client_does():
    """Once it took these options and ignored them (`--forever --rate 5` sent 10 requests
    flat out and exited 0); now both clients share one code path."""
    with Role("majordomo-broker") as broker:
        join = broker.expect(r"join \(clients\): (\S+)").group(1)
        worker = Role("majordomo-worker", "--join", join, "--service", "echo", "--name", "e1")
        try:
            worker.expect("e1 offers echo")
            client = Role("majordomo-client", "--join", join, "--service", "echo", "--name",
                          "dora", "--forever", "--rate", "20", "--summary-ms", "100")
            first = client.expect(r"live: dora: ([1-9]\d*) answered, 0 retried, 0 lost, "
                                  r"0 mismatched, latency .* in ([\d.]+) s")
            answered, elapsed = int(first.group(1)), float(first.group(2))
            assert answered <= 20 * elapsed + 1, "--rate 20 paces it"
            assert client.stop() == 143, client.stderr  # --forever: it ran until stopped
            final = client.expect(r"stopped: dora: (\d+) answered, 0 retried, 0 lost", 2)
            assert int(final.group(1)) >= answered
            broker.expect(r"dora:1\b")  # the bodies carry the name
        finally:
            assert worker.stop() == 0, worker.stderr


def test_the_terminal_table_shows_workers_counts_and_failed_handshakes():
    snapshot = {"workers": {"alice": "ready", "alice#2": "busy", "bob": "expired"},
                "counts": {"answered": 12, "failed handshakes": 3},
                "served": {"alice": 7, "alice#2": 5}, "last heard": {"alice": 0.4,
                                                                     "alice#2": 0.1}}
    console = Console(record=True, width=100, color_system=None)
    console.print(render(snapshot, "classroom"))
    text = console.export_text()
    assert re.search(r"alice\s+│ ready\s+│\s+7 │\s+0.4 s ago", text), text
    assert re.search(r"alice#2\s+│ busy", text) and re.search(r"bob\s+│ expired\s+│\s+- │", text)
    assert "answered: 12" in text and "failed handshakes: 3" in text
    assert "wrong or missing key" in text


def test_the_paranoid_snapshot_feeds_the_table():
    with ParanoidQueue() as queue, ParanoidWorker("dora", connect=queue.backend_endpoint):
        assert queue.trace.wait_for(lambda: queue.state.ready, 5)
        console = Console(record=True, width=100, color_system=None)
        console.print(render(queue.snapshot()))
        assert re.search(r"dora\s+│ ready\s+│\s+0 │", console.export_text())


def test_queue_dashboard_role_prints_the_table():
    with Role("simple-queue", "--dashboard") as queue:
        queue.expect(r"join \(workers\): (\S+)")
        assert queue.stop() == 0
    text = "\n".join(queue.seen + [queue.lines.get() for _ in range(queue.lines.qsize())])
    assert "worker" in text and "last heard" in text and "failed handshakes: 0" in text


def test_the_tables_show_chaos_in_progress():
    from pirate_helpers.views.widgets import render as render_html

    snapshot = {"workers": {"bob": "expired"}, "counts": {},
                "chaos": ["bob cut off, 4.2 s left", "queue frozen, 1.0 s left"]}
    console = Console(record=True, width=100, color_system=None)
    console.print(render(snapshot))
    text = console.export_text()
    assert "chaos: bob cut off, 4.2 s left" in text and "chaos: queue frozen" in text
    assert "<b>chaos:</b> bob cut off, 4.2 s left" in render_html(snapshot)


def test_the_instructor_types_chaos_on_the_queues_terminal():
    """`cut NAME SECONDS` and `freeze SECONDS` typed on the queue's terminal (here, also
    under --dashboard): the worker is purged and returns, every worker backs off and
    returns, the load loses nothing; a mistake gets one line."""
    beat = ("--heartbeat-ms", "100", "--liveness", "3")
    with Role("paranoid-queue", *beat, stdin=True) as queue:
        clients = queue.expect(r"join \(clients\): (\S+)").group(1)
        workers = queue.expect(r"join \(workers\): (\S+)").group(1)
        assert workers.endswith("/heartbeat-100ms-liveness-3")
        queue.expect(r"type: cut NAME SECONDS")
        names = ("ann", "ben")
        started = [Role("paranoid-worker", "--join", workers, "--name", name,
                        "--reconnect-min-ms", "100", "--quiet") for name in names]
        try:
            for _ in names:
                queue.expect(r"join\s+(ann|ben) joined")
            load = Role("lazy-client", "--join", clients, "--name", "load", "--forever",
                        "--rate", "50", "--timeout-ms", "500", "--retries", "5",
                        "--summary-ms", "100")
            load.expect(r"live: load: [1-9]\d* answered")
            queue.type("cut ann 1")
            queue.expect(r"partition\s+ann cut off for 1 s")
            queue.expect(r"purge\s+ann silent for 0.3 s")
            queue.expect(r"heal\s+ann reachable again", timeout=10)
            queue.expect(r"join\s+ann joined", timeout=10)
            queue.type("freeze 0.6")
            queue.expect(r"freeze\s+queue frozen for 0.6 s")
            queue.expect(r"thaw\s+queue running again")
            back: set[str] = set()  # on a fresh connection: its READY, or a failed send, tells
            while back != set(names):
                back.add(queue.expect(r"\s(?:reconnect|join)\s+(ann|ben) "
                                      r"(?:reconnected|joined)$", timeout=10).group(1))
            queue.type("freeze soon")
            queue.expect(r"freeze: expected seconds above 0, at most 3600, not 'soon'")
            queue.type("explode")
            queue.expect(r"unknown command 'explode'; type one of: cut NAME SECONDS")
            live = load.expect(r"live: load: (\d+) answered, \d+ retried, (\d+) lost, "
                               r"(\d+) mismatched")
            assert int(live.group(1)) > 0 and live.group(2) == live.group(3) == "0"
            assert load.stop() == 143
        finally:
            codes = [worker.stop() for worker in started]
        assert codes == [0, 0]
        assert queue.stop() == 0
    assert not [line for line in queue.all_lines() if "mismatch" in line or "warning" in line]
    for worker in started:
        assert not [line for line in worker.all_lines() if "mismatch" in line]


def test_a_dashboard_of_thousands_draws_a_screenful_and_counts_the_rest():
    """8,000 dead workers once took a core to draw five times a second."""
    workers = {f"w{n:05d}": "ready" if n % 2 else "busy" for n in range(8000)}
    console = Console(width=100, record=True)
    console.print(render({"workers": workers, "counts": {}}, "classroom"))
    text = console.export_text()
    assert "w00000" in text and "w00039" in text and "w00040" not in text
    assert "… 7960 more" in text and "3980 busy, 3980 ready" in text


def test_a_live_dashboard_redraws_at_most_once_a_second():
    from pirate_helpers.views.console import TerminalDashboard

    now = [0.0]
    snapshots = []

    def snapshot():
        snapshots.append(now[0])
        return {"workers": {}, "counts": {}}

    view = TerminalDashboard(snapshot, console=Console(file=io.StringIO()),
                             clock=lambda: now[0])
    with view:
        for step in range(1, 21):  # the serving loop asks every 0.2 s for 4 s
            now[0] = step * 0.2
            view.refresh()
    assert len(snapshots) == 1 + 4 + 1, snapshots  # made, once a second, the last on exit
