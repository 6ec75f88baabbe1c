"""The lessons' experiments say how long they will take from their own seeded plan, and
their progress bars move while they run."""

import time

import pytest

from pirate_helpers import stop_all
from pirate_helpers.course import experiments


@pytest.fixture(autouse=True)
def stop_actors():
    yield
    stop_all()


def test_the_lazy_estimate_follows_the_seeded_drops():
    """10 requests, a 50% drop rate: which tries are dropped is fixed by the seed."""
    estimates = {experiments.lazy_expected_s(1000, 3, 0.5, seed) for seed in range(5)}
    assert len(estimates) > 1, "different seeds, different drops, different estimates"
    assert experiments.lazy_expected_s(1000, 3, 0.0, 1) == 3.0, "no drops: only the give-up"


def test_the_lazy_estimate_matches_a_real_run():
    started = time.monotonic()
    table = experiments.lazy_experiment(100, 3, 0.5, seed=2)
    took = time.monotonic() - started
    planned = experiments.lazy_expected_s(100, 3, 0.5, seed=2)
    assert table[0]["timeouts"] + 3 == round(planned / 0.1), "the plan's timeouts happened"
    assert planned <= took < planned + 0.5


def test_the_simple_estimate_counts_the_seeded_crashes_of_both_designs():
    """The old estimate assumed requests x crash_rate crashes (3 of 30); seed 1 with three
    workers meets 5 in each design, so 2500 ms cost 25 s against 15 s promised."""
    assert experiments.planned_crashes(3, 30, 0.1, 1, tries=1) == 5
    assert experiments.planned_crashes(3, 30, 0.1, 1, tries=3) == 5
    assert experiments.simple_expected_s(3, 0.1, 2500, 1) == pytest.approx(25.3)
    assert experiments.simple_expected_s(3, 0.0, 2500, 1) == pytest.approx(0.3)


def test_the_simple_estimate_matches_a_real_run_within_a_crash_each():
    seed, timeout_ms = 1, 100
    started = time.monotonic()
    table = experiments.simple_experiment(3, 0.1, timeout_ms, seed)
    took = time.monotonic() - started
    for design, tries in (("article", 1), ("lru", 3)):
        planned = experiments.planned_crashes(3, 30, 0.1, seed, tries)
        assert abs(table.row(design)["crashes"] - planned) <= 1, design
    expected = experiments.simple_expected_s(3, 0.1, timeout_ms, seed)
    assert abs(took - expected) <= 2 * timeout_ms / 1000 + 0.5


def test_the_detection_bar_moves_while_the_queue_waits_for_the_frozen_worker():
    calls: list[tuple[int, int, float]] = []
    started = time.monotonic()
    experiments.detection_experiment(
        300, 3, progress=lambda done, total: calls.append((done, total, time.monotonic())))
    total = calls[-1][1]
    assert calls[-1][0] == total == 10, "tenths of a second: 0.9 s of silence, 0.1 s slack"
    during = [done for done, _, at in calls if 0 < done < total]
    assert len(set(during)) >= 5, f"the bar moved in steps while waiting: {calls}"
    assert calls[len(calls) // 2][2] - started > 0.3, "and not only at the end"
