"""Each exercise check accepts the right answer and rejects every wrong one its lesson names,
each with its own message."""

import pytest
import zmq

from pirate_helpers.exercises import WrongAnswer, check_one_socket_lazy_pirate

RIGHT = {zmq.REQ_RELAXED: 1, zmq.REQ_CORRELATE: 1}


def test_lesson_06_accepts_relaxed_and_correlate():
    assert check_one_socket_lazy_pirate(RIGHT).startswith("✔")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({}, "a strict REQ must get its reply"),
        ({zmq.REQ_CORRELATE: 1}, "REQ_CORRELATE alone changes nothing"),
        ({zmq.REQ_RELAXED: 1}, "the late reply to b'1' was taken"),
        ({zmq.REQ_RELAXED: 1, zmq.REQ_CORRELATE: 0}, "the late reply to b'1' was taken"),
        ("REQ_RELAXED", "give a dict of socket options"),
    ],
)
def test_lesson_06_rejects_the_named_wrong_answers(answer, message):
    with pytest.raises(WrongAnswer, match=message):
        check_one_socket_lazy_pirate(answer)
