import threading

from pirate_helpers import Trace, sequence_diagram
from pirate_helpers.trace import show_bytes


def test_trace_keeps_every_event_from_many_threads_in_time_order():
    trace = Trace()

    def add_many(name):
        for n in range(500):
            trace.add(name, "send", str(n))

    threads = [threading.Thread(target=add_many, args=(f"a{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    events = trace.events
    assert len(events) == 2000
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert trace.count("send", actor="a2") == 500


def test_an_event_is_stamped_under_the_lock_so_a_slower_thread_cannot_land_out_of_order():
    """Thread A reads the clock, then is held until thread B has read it too (or 0.3 s).
    Stamped outside the lock, B appends its later time first: out of order, every time.
    Stamped under the lock, B cannot read the clock while A holds it, so A's wait times out
    and the order stays the clock's."""
    times = iter([0.0, 1.0, 2.0])  # the trace's start, then one reading per event
    a_read, b_read = threading.Event(), threading.Event()

    def clock():
        now = next(times)
        if threading.current_thread().name == "a":
            a_read.set()
            b_read.wait(0.3)
        elif threading.current_thread().name == "b":
            b_read.set()
        return now

    trace = Trace(clock=clock)
    a = threading.Thread(target=trace.add, args=("a", "note"), name="a")
    a.start()
    assert a_read.wait(5)
    b = threading.Thread(target=trace.add, args=("b", "note"), name="b")
    b.start()
    a.join(5)
    b.join(5)
    assert [(e.actor, e.t) for e in trace.events] == [("a", 1.0), ("b", 2.0)]


def test_trace_names_endpoints_and_echoes_events():
    seen = []
    trace = Trace(on_event=seen.append)
    trace.name_endpoint("tcp://127.0.0.1:5", "server")
    assert trace.who("tcp://127.0.0.1:5") == "server"
    assert trace.who("tcp://127.0.0.1:6") == "tcp://127.0.0.1:6"
    event = trace.add("client", "send", "1", peer="server")
    assert seen == [event]
    assert "client -> server" in str(event)


def test_diagram_draws_arrows_from_the_side_that_knows_both_ends_and_notes_for_faults():
    trace = Trace()
    trace.add("client", "send", "1", peer="server")
    trace.add("server", "recv", "1")  # no peer: drawn by the client's arrow, not twice
    trace.add("server", "crash", "on request 1")
    trace.add("client", "timeout", "no reply")
    text = str(sequence_diagram(trace, participants=["client", "server"]))
    assert text.splitlines() == [
        "sequenceDiagram",
        "    participant client",
        "    participant server",
        "    client->>server: 1",
        "    Note over server: CRASH on request 1",
        "    Note over client: timeout: no reply",
    ]
    assert sequence_diagram(trace)._repr_markdown_().startswith("```mermaid\nsequenceDiagram")


def test_long_runs_keep_both_ends_and_say_how_much_was_left_out():
    trace = Trace()
    for n in range(100):
        trace.add("client", "send", str(n), peer="server")
    lines = str(sequence_diagram(trace, max_lines=10)).splitlines()
    assert lines[3] == "    client->>server: 0"
    assert lines[-1] == "    client->>server: 99"
    assert "90 more steps" in lines[8]
    assert len(lines) == 3 + 11


def test_text_that_would_break_mermaid_is_cleaned():
    trace = Trace()
    trace.add("client", "send", "a;b#c<d>", peer="server")
    assert "client->>server: a b c d" in str(sequence_diagram(trace))


def test_show_bytes_shortens_and_shows_binary_as_hex():
    assert show_bytes([b"hello", b"\x01\xff"]) == "hello|01ff"
    assert show_bytes([b"x" * 100], limit=5) == "xxxx…"


def test_wait_for_wakes_at_each_new_event_and_gives_up_after_its_timeout():
    trace = Trace()
    adder = threading.Thread(target=lambda: [trace.add("a", "tick") for _ in range(3)])
    adder.start()
    assert trace.wait_for(lambda: trace.count("tick") == 3, timeout=5)
    adder.join(5)
    assert not trace.wait_for(lambda: trace.count("tick") == 4, timeout=0.05)


def test_a_bounded_trace_keeps_only_the_newest_events():
    trace = Trace(keep=3)
    for n in range(10):
        trace.add("a", "send", str(n))
    assert [event.detail for event in trace.events] == ["7", "8", "9"]


def test_a_diagram_reads_as_text_where_mermaid_is_not_rendered():
    from pirate_helpers.trace import plural

    trace = Trace()
    trace.add("client", "send", "1", peer="server")
    trace.add("server", "crash", "on request #2")
    trace.add("client", "give-up", "after 1 try")
    text = repr(sequence_diagram(trace))
    assert "at 0x" not in text
    assert text.splitlines() == [
        "sequence diagram (client, server):",
        "  client -> server: 1",
        "  [server] CRASH on request 2",
        "  [client] give up: after 1 try",
    ]
    assert [plural(1, "try"), plural(3, "try"), plural(1, "timeout"), plural(0, "timeout")] == [
        "1 try", "3 tries", "1 timeout", "0 timeouts"]
