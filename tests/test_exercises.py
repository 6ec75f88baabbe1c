"""Each exercise check passes the right answer and rejects every wrong one its lesson's
solution names, with its own message (NotYet), never a library traceback."""

import pytest
import zmq

from pirate_helpers.course.exercises import (
    NotYet,
    check_heartbeat_choice,
    check_lazy_choice,
    check_lru_prediction,
    check_one_socket_lazy_pirate,
    lru_dispatch,
    purged_after,
    round_robin,
    worst_silence,
)


# -- lesson 02 ---------------------------------------------------------------------------
@pytest.mark.parametrize("timeout_ms", [50, 250, 300])
def test_lazy_right_answers_pass(timeout_ms):
    assert check_lazy_choice(timeout_ms, 3).startswith("✔ well chosen")


def test_lazy_two_retries_fail_with_the_checks_message():
    with pytest.raises(NotYet, match="request 2 was never answered: the server lost 2 tries in a"):
        check_lazy_choice(250, 2)


@pytest.mark.parametrize("timeout_ms, retries", [(400, 3), (2500, 3), (250, 4)])
def test_lazy_too_slow_to_give_up(timeout_ms, retries):
    with pytest.raises(NotYet, match="not under 1 s"):
        check_lazy_choice(timeout_ms, retries)


def test_lazy_counts_typed_as_text_pass_as_in_every_lesson():
    assert check_lazy_choice("250", "3").startswith("✔ well chosen")


@pytest.mark.parametrize("answer", [(10, 3), (250, 0), (250.5, 3), ("250 ms", 3), (250, True)])
def test_lazy_nonsense_gets_a_message(answer):
    with pytest.raises(NotYet):
        check_lazy_choice(*answer)


# -- lesson 03 ---------------------------------------------------------------------------
def test_lru_right_answer():
    assert lru_dispatch() == ["a", "b", "c", "a", "a"]
    assert check_lru_prediction(["a", "b", "c", "a", "a"]) == "✔ right: ['a', 'b', 'c', 'a', 'a']"


def test_lru_round_robin_is_named():
    assert round_robin() == ["a", "b", "c", "a", "b"]
    with pytest.raises(NotYet, match="round-robin"):
        check_lru_prediction(["a", "b", "c", "a", "b"])


@pytest.mark.parametrize("answer, message", [
    (["a", "a", "a", "a", "a"], "request 2 went to b"),
    ("abcaa", "a list of five names"),
    (["a", "b"], "five names"),
    (["a", "b", "c", "a", "z"], "five names"),
])
def test_lru_other_wrong_answers(answer, message):
    with pytest.raises(NotYet, match=message):
        check_lru_prediction(answer)


# -- lesson 04 ---------------------------------------------------------------------------
def test_heartbeat_right_answer():
    assert check_heartbeat_choice(100, 4).startswith("✔ well chosen")


@pytest.mark.parametrize("heartbeat_ms, liveness", [(100, 3), (200, 2), (100, 2)])
def test_heartbeat_pause_is_dropped_in_the_worst_case(heartbeat_ms, liveness):
    """The solution names 100 ms x 3 and 200 ms x 2 as wrong: in the worst case the pause is
    silent for one interval + 0.2 s + a late heartbeat, which is at least their limit."""
    with pytest.raises(NotYet, match="it is dropped"):
        check_heartbeat_choice(heartbeat_ms, liveness)


@pytest.mark.parametrize("heartbeat_ms, liveness", [(100, 5), (250, 2), (1000, 3)])
def test_heartbeat_dead_worker_too_slow(heartbeat_ms, liveness):
    with pytest.raises(NotYet, match="not under 0.5 s"):
        check_heartbeat_choice(heartbeat_ms, liveness)


def test_the_fake_clock_follows_the_queues_rules():
    assert purged_after(0.1, 3, None) == pytest.approx(0.3), "dead: dropped at liveness x interval"
    assert purged_after(0.1, 3, 0.29) is None, "a heartbeat just in time keeps it"
    assert purged_after(0.1, 3, 0.31) == pytest.approx(0.3)
    assert worst_silence(0.1, 0.2) == pytest.approx(0.32)


# -- lesson 07 ---------------------------------------------------------------------------
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
    with pytest.raises(NotYet, match=message):
        check_one_socket_lazy_pirate(answer)


def test_a_check_waits_for_the_placeholder_and_still_checks_real_answers():
    from pirate_helpers.course.exercises import WAITING, NotYet, waits_for_answer

    @waits_for_answer
    def check_positive(answer, *, names=("x",)) -> str:
        if any(value <= 0 for value in answer.values()):
            raise NotYet("every value must be positive")
        return "✔"

    assert check_positive(...) == WAITING
    assert check_positive({"a": 1, "b": ...}) == WAITING
    assert check_positive({"a": 1}, names=[...]) == WAITING
    assert check_positive({"a": 1}) == "✔"
    with pytest.raises(NotYet, match="positive"):
        check_positive({"a": -1})


def test_lesson_06_waits_for_the_shipped_placeholder():
    from pirate_helpers.course.exercises import WAITING

    assert check_one_socket_lazy_pirate(...) == WAITING


def test_lesson_01_right_answer_is_played_live():
    from pirate_helpers.course.exercises import check_plain_client_prediction

    assert check_plain_client_prediction(2, 3).startswith("✔")


@pytest.mark.parametrize(("answer", "message"), [
    ((3, 4), "answers 2 requests, then crashes"),  # one answer too many
    ((2, 4), "cannot send again"),  # the client moving on to request 4
    ((1, 2), "it got 2 replies"),
])
def test_lesson_01_wrong_answers_get_the_checks_message(answer, message):
    from pirate_helpers.course.exercises import NotYet, check_plain_client_prediction

    with pytest.raises(NotYet, match=message):
        check_plain_client_prediction(*answer)


def test_the_lessons_checks_wait_for_their_placeholders():
    from pirate_helpers.course.exercises import (
        WAITING,
        check_heartbeat_choice,
        check_lazy_choice,
        check_lru_prediction,
        check_plain_client_prediction,
    )

    assert check_plain_client_prediction(..., ...) == WAITING
    assert check_lazy_choice(..., 3) == WAITING
    assert check_lru_prediction(...) == WAITING
    assert check_lru_prediction(["a", ..., "c", "a", "a"]) == WAITING
    assert check_heartbeat_choice(100, ...) == WAITING


def test_lesson_04b_reconnect_window():
    from pirate_helpers.course.exercises import WAITING, check_reconnect_window

    assert check_reconnect_window(4.0, 4.5).startswith("✔")
    assert check_reconnect_window(4, 4.5).startswith("✔")
    assert check_reconnect_window(..., ...) == WAITING


@pytest.mark.parametrize(("answer", "message"), [
    ((3.0, 3.5), "when it gives the queue up"),
    ((4.0, 4.0), "forgets the jitter"),
    ((1.0, 1.5), "silence first"),
    (("4", "4.5"), "two numbers"),
    ((4000, 4500), "in seconds: 4000 and 4500 look like milliseconds"),
    ((4.0, 4500), "in seconds"),
])
def test_lesson_04b_named_wrong_answers(answer, message):
    from pirate_helpers.course.exercises import NotYet, check_reconnect_window

    with pytest.raises(NotYet, match=message):
        check_reconnect_window(*answer)
