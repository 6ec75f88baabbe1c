"""Ctrl-C in a notebook cell ("interrupt the kernel" sends SIGINT to the kernel process) must
end in a plain KeyboardInterrupt, leave no thread behind, and let the cleanup work after.

Each test raises SIGINT from a helper thread once the code under test has reached the point
it waits at (an event, never a guess), exactly as the kernel would. A kernel has Python's
SIGINT handler; a test process may not (`make test &`, nohup and CI runners start it with
SIGINT ignored, and Python then installs none), so each test installs it for its duration.
"""

import os
import signal
import sys
import threading
import time

import pytest

from pirate_helpers import Actor, Trace, running_actors, stop_all
from pirate_helpers.course import experiments


@pytest.fixture(autouse=True)
def kernel_sigint_handler():
    """SIGINT raises KeyboardInterrupt here, as in a kernel, however pytest was started."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def main_thread_in(function: str) -> bool:
    """Whether the main thread is inside a call of `function` (by name) right now."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def interrupt_when(ready: threading.Event, inside: str, timeout: float = 5.0) -> threading.Thread:
    """Send this process SIGINT (the kernel's interrupt) once `ready` is set and the main
    thread waits inside `inside`: the moment a learner would press the stop button."""

    def send() -> None:
        deadline = time.monotonic() + timeout
        if not ready.wait(timeout):
            return
        while not main_thread_in(inside):
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)  # polling a condition with a bound, not waiting on a guess
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=send, name="interrupter")
    thread.start()
    return thread


class Waits(Actor):
    """Tells the test it is in its loop, then waits for stop()."""

    def __init__(self, name, in_loop):
        super().__init__(name, Trace())
        self.in_loop = in_loop

    def run(self):
        self.in_loop.set()
        self.pause(None)


def test_ctrl_c_while_joining_an_actor_leaves_it_stoppable():
    """CPython 3.11 marks a thread stopped when a join on it is interrupted; the actor must
    not believe it (it would terminate the context under the running thread: ETERM)."""
    in_loop = threading.Event()
    actor = Waits("waits", in_loop).start()
    interrupter = interrupt_when(in_loop, inside="join")
    with pytest.raises(KeyboardInterrupt):
        actor.join(10)
    interrupter.join()
    assert actor.running, "the thread runs on after an interrupted join"
    assert actor in running_actors()
    actor.stop()  # no ContextTerminated re-raised from the thread
    assert not actor.running and actor.trace.count("error") == 0
    assert stop_all() == []


def traced(kind: str) -> tuple[Trace, threading.Event]:
    """A trace that sets the returned event when an event of `kind` is added."""
    seen = threading.Event()
    return Trace(on_event=lambda event: seen.set() if event.kind == kind else None), seen


def interrupted(run, ready: threading.Event, inside: str) -> None:
    """Run `run()` in this (the main) thread and press Ctrl-C once `ready` and `inside`."""
    interrupter = interrupt_when(ready, inside)
    try:
        with pytest.raises(KeyboardInterrupt):
            run()
    finally:
        interrupter.join()
    # the autouse fixture checks that no actor and no thread is left; the cleanup works:
    assert running_actors() == []
    assert stop_all() == []


def test_ctrl_c_in_the_lazy_experiment():
    trace, dropped = traced("drop")
    interrupted(lambda: experiments.lazy_experiment(2000, 3, 0.5, seed=1, trace=trace),
                dropped, inside="join")


def test_ctrl_c_while_giving_up_on_a_dead_server():
    started = threading.Event()
    started.set()
    interrupted(lambda: experiments.seconds_to_give_up(2500, 3), started, inside="_receive")


def test_ctrl_c_in_the_simple_pirate_load_run():
    trace, crashed = traced("crash")
    interrupted(lambda: experiments.simple_experiment(3, 0.1, 2500, seed=1, trace=trace),
                crashed, inside="join")


def test_ctrl_c_while_waiting_for_a_purge():
    trace, frozen = traced("freeze")
    interrupted(lambda: experiments.detection_time(1000, 3, trace=trace), frozen,
                inside="wait_for")
