"""The comparison of lesson 06: its decision flow, its line counts, and a few of its runs."""

from itertools import product

import pytest

from pirate_helpers.course import compare

FAST = compare.Settings(requests=6, calm_requests=20, timeout_s=0.1, retries=3, fault_at=2,
                        restart_s=0.2, freeze_s=0.4, heartbeat_s=0.05, patience_s=0.3)


def test_every_path_of_the_decision_flow():
    outcomes = {}
    for answers in product((False, True), repeat=4):
        outcomes[answers] = compare.decide(*answers)[0]
    assert {p for a, p in outcomes.items() if not a[0]} == {"plain REQ-REP"}
    assert {p for a, p in outcomes.items() if a[0] and not a[1]} == {"Lazy Pirate"}
    assert outcomes[(True, True, True, True)] == "Paranoid Pirate"
    for last_two in [(False, False), (False, True), (True, False)]:
        assert outcomes[(True, True, *last_two)] == "Simple Pirate"


def test_code_lines_leave_out_docstrings_comments_and_blank_lines():
    def sample(x):
        """A docstring
        over two lines."""
        # a comment

        return (x
                + 1)

    assert compare.code_lines(sample) == 3  # def, and the return over two lines


@pytest.mark.parametrize("design, fault, lost", [
    ("Paranoid", "worker crash", 0),
    ("our Simple", "worker freeze", 0),
    ("Lazy Pirate", "none", 0),
])
def test_designs_that_lose_nothing(design, fault, lost):
    run = compare.run_design(design, fault, FAST)
    assert run is not None and run.lost == lost and not run.hung


def test_the_article_proxy_loses_a_frozen_workers_requests():
    assert compare.run_design("article's Simple", "worker freeze", FAST).lost >= 1


def test_plain_req_rep_hangs_and_a_queue_restart_needs_a_queue():
    run = compare.run_design("plain REQ-REP", "worker crash", FAST)
    assert run.hung and run.lost == FAST.requests - FAST.fault_at + 1
    assert compare.run_design("Lazy Pirate", "queue restart", FAST) is None


def test_the_table_has_a_row_per_design_and_the_stars_beside():
    runs = [compare.run_design(d, "none", FAST) for d in ("plain REQ-REP", "Lazy Pirate")]
    table = compare.table(runs, FAST)
    assert table.column("design") == ["plain REQ-REP", "Lazy Pirate"]
    assert table.row("plain REQ-REP")["throughput vs plain"] == "1.00"
    assert table.row("Lazy Pirate")["article: complexity / reliability / performance"] == (
        "low / medium / high")


def _run(design, fault, lost=0, hung=False, seconds=1.0):
    return compare.Run(design, fault, lost, [0.001], 0.1, hung, seconds)


@pytest.mark.parametrize("losses, hung, word", [
    ((0, 0, 0), False, "very high"),
    ((0, 1, 1), False, "high"),
    ((0, 2, 0), False, "medium"),
    ((5, 0, 0), True, "none"),
])
def test_measured_reliability_follows_the_stated_rule(losses, hung, word):
    runs = [_run("x", "none", lost=99)] + [
        _run("x", fault, lost, hung and n == 0)
        for n, (fault, lost) in enumerate(zip(compare.FAULTS[1:], losses, strict=True))]
    assert compare.measured_reliability(runs) == word


def test_verdicts_are_derived_from_the_figures():
    runs = [_run("plain REQ-REP", "none", seconds=1.0), _run("plain REQ-REP", "worker crash", 9,
                                                             hung=True),
            _run("Paranoid", "none", seconds=2.0), _run("Paranoid", "worker crash"),
            _run("Paranoid", "queue restart", lost=1),
            _run("Lazy Pirate", "none", seconds=1.25), _run("Lazy Pirate", "worker freeze", 0)]
    verdicts = compare.verdicts(runs)
    assert verdicts.row("Paranoid")["verdict"] == "worse"  # very high said, high earned
    assert verdicts.row("Paranoid")["throughput vs plain"] == "0.50"
    assert verdicts.row("Lazy Pirate")["verdict"] == "better"  # medium said, very high earned
    assert verdicts.row("plain REQ-REP")["figures earn"] == "none"
    assert "| Paranoid | very high | high | worse |" in verdicts.markdown()


def test_lesson_05_exercise_waits_accepts_and_explains():
    from pirate_helpers.course.exercises import WAITING

    assert compare.check_pattern_choice(...) == WAITING
    assert compare.check_pattern_choice("Paranoid Pirate").startswith("✔ Paranoid Pirate")
    for wrong, reason in [("Simple Pirate", "keeps its connection open"),
                          ("Lazy Pirate", "cannot find a frozen worker"),
                          ("plain REQ-REP", "hangs for ever"), ("Paranoid", "one of")]:
        with pytest.raises(compare.WrongChoice, match=reason):
            compare.check_pattern_choice(wrong)
