"""The comparison of lesson 05: its decision flow, its line counts, and a few of its runs."""

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
