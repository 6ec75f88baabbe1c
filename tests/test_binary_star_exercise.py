"""Lesson 11's exercise check: the right answer passes, each named wrong one is told why."""

import pytest

from pirate_helpers.course.binary_star_exercise import check_settle
from pirate_helpers.course.exercises import WAITING, NotYet


def test_the_shipped_placeholder_waits():
    assert check_settle(...) == WAITING


def test_the_shortest_settle_is_two_heartbeats_less_the_timeout():
    assert check_settle(150).startswith("✔ 150 ms")
    assert check_settle(1950, heartbeat_ms=1000, timeout_ms=50).startswith("✔")


@pytest.mark.parametrize("wrong, says", [
    (0, "too short"),  # ask the backup at once: it still counts the primary as alive
    (100, "too short"),  # one heartbeat: not yet expired
    (149, "too short"),
    (200, "longer than it must be"),  # the Guide's 2 heartbeats, forgetting the timeout
    (250, "longer than it must be"),
    (-1, "whole number"),
    (150.0, "whole number"),
    ("150", "whole number"),
    (True, "whole number"),
])
def test_each_wrong_answer_gets_its_reason(wrong, says):
    with pytest.raises(NotYet, match=says):
        check_settle(wrong)
