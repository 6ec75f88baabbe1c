"""Lesson 10's exercise and the Guide's Titanic model."""

import pytest

from pirate_helpers.course.exercises import WAITING, NotYet
from pirate_helpers.course.titanic_exercise import check_copies, truth
from pirate_helpers.majordomo import BrokerState, GuideMajordomoState
from pirate_helpers.titanic_guide import copies_executed, guide_queue_pass

RIGHT = {"guide": 5, "ours": 1}


def test_the_models_decide_what_the_solution_says():
    assert truth() == RIGHT
    assert copies_executed(GuideMajordomoState, 5.0) < copies_executed(GuideMajordomoState, 10.0)
    assert copies_executed(BrokerState, 10.0) == 1


def test_the_shipped_placeholder_waits_and_the_right_answer_passes():
    assert check_copies(...) == WAITING
    assert check_copies({"guide": ..., "ours": ...}) == WAITING
    assert check_copies(RIGHT).startswith("✔")
    assert check_copies({"guide": "5", "ours": " 1 "}).startswith("✔"), "as lesson 09 takes '2'"
    assert check_copies({"guide": 5.0, "ours": "'1'"}).startswith("✔")


@pytest.mark.parametrize("answers, says", [
    ({"guide": 1, "ours": 1}, "worker or not"),
    ({"guide": 4, "ours": 1}, "count the sends"),
    ({"guide": 5, "ours": 0}, "not lost"),
    ({"guide": 5, "ours": 5}, "404"),
    ({"guide": "five", "ours": 1}, "whole number"),
    ({"guide": 5.5, "ours": 1}, "whole number"),
    ({"guide": 5, "ours": True}, "whole number"),
    ({"guide": 5}, "keys"),
    (None, "keys"),
])
def test_each_named_wrong_answer_gets_its_own_reason(answers, says):
    with pytest.raises(NotYet, match=says):
        check_copies(answers)


def test_the_guides_queue_file_marks_the_last_line_not_the_one_processed():
    runs = []

    def execute(uuid: str) -> bool:
        runs.append(uuid)
        return uuid != "c"  # c's service has no worker yet

    lines = ["-a", "-b", "-c"]
    for _ in range(3):
        lines = guide_queue_pass(lines, execute)
    assert lines == ["-a", "-b", "+c"] and runs.count("a") == 3 and runs.count("c") == 1
    runs.clear()
    lines = ["-a", "-b", "-c"]
    for _ in range(3):
        lines = guide_queue_pass(lines, execute, fixed=True)
    assert lines == ["+a", "+b", "-c"] and runs.count("a") == 1 and runs.count("c") == 3
