"""A cell run out of order names the cell to run first, in one line."""

import pytest

from pirate_helpers import Actor, stop_all
from pirate_helpers.lesson import RunFirst, need


def test_a_missing_name_names_the_section():
    with pytest.raises(RunFirst, match="run the cells of 'Set-up' first: `queue` is not defined"):
        need({}, "Set-up", "queue")


def test_a_stopped_actor_says_run_again():
    actor = Actor("lesson-actor").start()
    namespace = {"queue": actor, "trace": object()}
    need(namespace, "Set-up", "queue", "trace")  # all there: nothing raised
    stop_all()  # the learner ran the cleanup cell mid-way
    with pytest.raises(RunFirst, match="run the cells of 'Set-up' again: `queue` has stopped"):
        need(namespace, "Set-up", "queue")


def test_ipython_shows_the_hint_alone():
    assert RunFirst("run the cells of 'X' first")._render_traceback_() == [
        "RunFirst: run the cells of 'X' first"]
