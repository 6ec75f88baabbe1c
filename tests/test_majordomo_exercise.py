"""Lesson 09's exercise check accepts the right answers and rejects each named wrong one."""

import pytest

from pirate_helpers.course.majordomo_exercise import WrongAnswer, broker_decisions, check_answers

RIGHT = {"a goes to": "w1", "mmi print": "404", "w1 next": "b", "b sent": 2}


def test_the_broker_decides_what_the_solution_says():
    assert broker_decisions() == RIGHT


def test_the_right_answers_pass_also_written_loosely():
    assert check_answers(RIGHT).startswith("✔")
    assert check_answers({**RIGHT, "mmi print": 404, "b sent": "2", "w1 next": "'b'"})
    assert check_answers({**RIGHT, "b sent": 2.0}).startswith("✔")


@pytest.mark.parametrize("key, wrong, says", [
    ("a goes to", "w2", "least recently used"),
    ("mmi print", "200", "the Guide's bug"),
    ("mmi print", "501", "other mmi"),
    ("w1 next", "c", "front"),
    ("w1 next", "p", "only gets 'echo'"),
    ("b sent", 1, "at-least-once"),
    ("b sent", 3, "how many times"),
    ("b sent", "twice", "is a number"),
    ("b sent", 2.5, "is a number"),
    ("b sent", True, "is a number"),
])
def test_each_named_wrong_answer_is_rejected_with_its_own_explanation(key, wrong, says):
    with pytest.raises(WrongAnswer, match=says):
        check_answers({**RIGHT, key: wrong})


def test_missing_or_malformed_answers_are_told_not_crashed():
    with pytest.raises(WrongAnswer, match="no answer yet for 'b sent'"):
        check_answers({k: v for k, v in RIGHT.items() if k != "b sent"})
    with pytest.raises(WrongAnswer, match="a dict"):
        check_answers(None)


def test_the_shipped_placeholders_wait_for_the_learner():
    from pirate_helpers.course.exercises import WAITING

    assert check_answers(dict.fromkeys(RIGHT, ...)) == WAITING
    assert check_answers({**RIGHT, "b sent": ...}) == WAITING
