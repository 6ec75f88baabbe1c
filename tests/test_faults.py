import pytest
from hypothesis import given
from hypothesis import strategies as st

from pirate_helpers import Decision, Faults


def test_no_faults_answers_everything():
    assert all(Faults().decide(n) == Decision("answer") for n in range(1, 100))
    assert not Faults()


def test_drop_hits_exactly_the_named_requests():
    faults = Faults(drop={3, 4})
    actions = [faults.decide(n).action for n in range(1, 7)]
    assert actions == ["answer", "answer", "drop", "drop", "answer", "answer"]


def test_crash_after_answers_n_then_crashes_forever():
    faults = Faults(crash_after=2)
    assert [faults.decide(n).action for n in range(1, 6)] == ["answer"] * 2 + ["crash"] * 3


def test_freeze_delays_one_request_and_slow_delays_all():
    faults = Faults(freeze_at=2, freeze_s=1.5, slow_s=0.1)
    assert faults.decide(1) == Decision("answer", 0.1, False)
    assert faults.decide(2) == Decision("answer", 1.6, True)
    assert faults.decide(3) == Decision("answer", 0.1, False)


def test_seeded_rates_repeat_and_differ_by_seed():
    def drops(seed):
        return [Faults(drop_rate=0.3, seed=seed).decide(n).action for n in range(1, 200)]

    assert drops(7) == drops(7)
    assert drops(7) != drops(8)
    assert 30 < drops(7).count("drop") < 90  # about 0.3 of 199


def test_rates_must_be_probabilities():
    with pytest.raises(ValueError):
        Faults(drop_rate=1.5)


@given(
    seed=st.integers(0, 2**32),
    drop_rate=st.floats(0, 1),
    crash_after=st.none() | st.integers(0, 50),
    order=st.permutations(list(range(1, 40))),
)
def test_decisions_depend_on_the_request_number_alone(seed, drop_rate, crash_after, order):
    faults = Faults(drop_rate=drop_rate, crash_after=crash_after, seed=seed)
    in_order = {n: faults.decide(n) for n in range(1, 40)}
    shuffled = {n: faults.decide(n) for n in order}
    assert in_order == shuffled
    if crash_after is not None:
        assert all((d.action == "crash") == (n > crash_after) for n, d in in_order.items())
