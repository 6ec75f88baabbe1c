import os
import threading
import time

import pytest
import zmq
from processes import poll_until
from zmq.utils.monitor import recv_monitor_message

from pirate_helpers import Actor, Trace, running_actors, stop_all
from pirate_helpers.endpoints import bind, is_public


class Echo(Actor):
    """The smallest useful actor: a REP echo on a random local port."""

    def setup(self):
        self.rep = self.socket(zmq.REP)
        self.endpoint = bind(self.rep)

    def run(self):
        while True:
            self.poll([self.rep], None)
            self.rep.send_multipart(self.rep.recv_multipart())


class Fails(Actor):
    def run(self):
        raise ValueError("boom")


class FailsInSetup(Actor):
    def setup(self):
        raise OSError("cannot bind")


def round_trip(endpoint, body=b"ping"):
    with zmq.Context() as ctx:
        ctx.linger = 0
        req = ctx.socket(zmq.REQ)
        req.connect(endpoint)
        req.send(body)
        assert req.poll(2000), "no reply within 2 s"
        return req.recv()


def test_started_actor_is_ready_at_once_and_stops():
    echo = Echo("echo").start()
    assert echo.running and echo.endpoint.startswith("tcp://127.0.0.1:")
    assert round_trip(echo.endpoint) == b"ping"
    echo.stop()
    assert not echo.running and echo.context is None
    echo.stop()  # twice is harmless


def test_an_error_in_the_thread_is_raised_by_stop_and_traced():
    trace = Trace()
    actor = Fails("fails", trace).start()
    with pytest.raises(ValueError, match="boom"):
        actor.stop()
    assert trace.count("error") == 1


def test_an_error_in_setup_is_raised_by_start_once_and_not_traced_too():
    trace = Trace()
    with pytest.raises(OSError, match="cannot bind"):
        FailsInSetup("bad", trace).start()
    assert running_actors() == []
    assert trace.count("error") == 0, "a role would print it twice: traced, then raised"


class RefusedOption(Actor):
    max_message_bytes = 2**63  # libzmq takes an int64: setting it fails inside guard()

    def setup(self):
        self.socket(zmq.ROUTER)


def test_a_socket_whose_option_is_refused_is_still_closed_so_the_context_ends():
    """It was never closed, so stop() waited for ever in Context.term()."""
    with pytest.raises((zmq.ZMQError, OverflowError, ValueError)):
        RefusedOption("refused").start()
    assert running_actors() == []


def test_join_reraises_the_threads_error():
    actor = Fails("fails").start()
    with pytest.raises(ValueError):
        actor.join(5)
    actor.stop()


def test_starting_a_second_actor_with_the_same_name_stops_the_first():
    first = Echo("same").start()
    second = Echo("same").start()
    assert not first.running and second.running
    assert running_actors() == [second]
    second.stop()


def test_stop_all_stops_everything_and_raises_the_first_error():
    echoes = [Echo(f"echo{i}").start() for i in range(3)]
    assert sorted(stop_all()) == ["echo0", "echo1", "echo2"]
    assert not any(echo.running for echo in echoes)
    Echo("ok").start()
    Fails("fails").start()
    with pytest.raises(ValueError):
        stop_all()
    assert running_actors() == []


def test_context_manager_starts_and_stops():
    with Echo("cm") as echo:
        assert round_trip(echo.endpoint, b"x") == b"x"
    assert not echo.running


def test_stop_interrupts_a_long_pause_at_once():
    class Sleeper(Actor):
        def run(self):
            self.paused = threading.Event()
            self.paused.set()
            self.pause(3600)

    sleeper = Sleeper("sleeper").start()
    sleeper.stop(timeout=2)
    assert not sleeper.running


def test_waiting_for_a_timer_polls_a_few_times_not_in_a_spin():
    """A loop that waits for a deadline polls until it is due. Timeouts are rounded up to
    whole milliseconds: rounded down, the last millisecond was hundreds of poll(0) calls."""

    class Timer(Actor):
        def run(self):
            self.polls = 0
            for _ in range(5):  # five timers, each 2.5 ms away
                due = time.monotonic() + 0.0025
                while (left := due - time.monotonic()) > 0:
                    self.polls += 1
                    self.pause(left)
            self.done.set()
            self.pause(None)

    timer = Timer("timer")
    timer.done = threading.Event()
    timer.start()
    try:
        assert timer.done.wait(5), "five timers of 2.5 ms did not fire within 5 s"
        assert timer.polls <= 5 * 3, f"{timer.polls} polls for five timers: a spin"
    finally:
        timer.stop()


class Busy(Actor):
    """Reads one message per poll, as a busy broker does, with its monitor on the side."""

    def setup(self):
        self.pull = self.socket(zmq.PULL)
        self.endpoint = bind(self.pull)
        self.events = self.monitor(self.pull, zmq.EVENT_ACCEPTED)
        self.received = self.accepted = 0

    def run(self):
        while True:
            readable = self.poll([self.pull], 3600, side=[self.events])
            if self.events in readable:
                recv_monitor_message(self.events)
                self.accepted += 1
            if self.pull in readable:
                self.pull.recv()
                self.received += 1


def test_a_busy_loop_still_reads_its_monitor_and_stops_while_messages_keep_coming():
    """For BUSY_S after a poll that found a message, `poll(..., side=...)` polls the message
    sockets alone; the monitor and `stop()` are still looked at every BUSY_S."""
    busy = Busy("busy").start()
    flooding = threading.Event()
    done = threading.Event()

    def flood():
        with zmq.Context() as ctx:
            ctx.linger = 0
            push = ctx.socket(zmq.PUSH)
            push.sndtimeo = 100  # a stopped reader never blocks this thread for good
            push.connect(busy.endpoint)
            while not done.is_set():
                try:
                    push.send(b"x")
                except zmq.Again:
                    continue
                flooding.set()

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        assert flooding.wait(5) and poll_until(lambda: busy.received > 1000)
        with zmq.Context() as ctx:  # a second connection: its event arrives while busy
            ctx.linger = 0
            ctx.socket(zmq.PUSH).connect(busy.endpoint)
            assert poll_until(lambda: busy.accepted == 2), f"{busy.accepted} accepted seen"
        received = busy.received
        busy.stop()
        assert not busy.running and busy.received > received, "stopped while messages came"
    finally:
        done.set()
        flooder.join(5)
        busy.stop()


def test_a_started_actor_cannot_be_started_again():
    with Echo("once") as echo, pytest.raises(RuntimeError):
        echo.start()


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_fifty_start_stop_cycles_leave_nothing_behind():
    round_trip(Echo("warm").start().endpoint)  # let one-time allocations happen first
    stop_all()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(50):
        with Echo("cycle") as echo:
            assert round_trip(echo.endpoint) == b"ping"
    assert threading.active_count() == threads
    assert open_fds() <= fds + 2  # no socket or context is leaked per cycle


def test_only_wildcards_count_as_public():
    assert is_public("tcp://*:5555") and is_public("tcp://0.0.0.0:5555")
    assert not is_public("tcp://127.0.0.1:5555") and not is_public("inproc://x")
