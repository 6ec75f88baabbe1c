"""A cell run out of order names the cell to run first, in one line."""

import pytest
import zmq

from pirate_helpers import Actor, stop_all
from pirate_helpers.course.lesson import RunFirst, need


def test_a_missing_name_names_the_section():
    with pytest.raises(RunFirst, match="run the cells under 'Set-up' first: `queue` is not def"):
        need({}, "the cells under 'Set-up'", "queue")


def test_a_stopped_actor_says_run_again():
    actor = Actor("lesson-actor").start()
    namespace = {"queue": actor, "trace": object()}
    need(namespace, "the cell 'Set-up'", "queue", "trace")  # all there: nothing raised
    stop_all()  # the learner ran the cleanup cell mid-way
    with pytest.raises(RunFirst, match="run the cell 'Set-up' again: `queue` has stopped"):
        need(namespace, "the cell 'Set-up'", "queue")


def test_a_closed_socket_says_run_again():
    context = zmq.Context()
    socket = context.socket(zmq.REQ)
    need({"req": socket}, "the cells from the top", "req")
    context.destroy(linger=0)
    with pytest.raises(RunFirst, match="run the cells from the top again: the socket `req`"):
        need({"req": socket}, "the cells from the top", "req")


def test_a_terminated_context_says_run_again():
    context = zmq.Context()
    need({"ctx": context}, "the Set-up cell", "ctx")
    context.destroy(linger=0)
    with pytest.raises(RunFirst, match="run the Set-up cell again: the context `ctx` was term"):
        need({"ctx": context}, "the Set-up cell", "ctx")


def test_ipython_shows_the_hint_alone():
    assert RunFirst("run the cells of 'X' first")._render_traceback_() == [
        "RunFirst: run the cells of 'X' first"]
