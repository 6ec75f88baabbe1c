"""The workshop: the exercise's check accepts the right worker and names each wrong one;
the instructor's partition from the queue's side purges a worker and loses nothing."""

from contextlib import ExitStack

import pytest
from exercise_workers import RIGHT, WRONG

from pirate_helpers import (
    PPP_HEARTBEAT,
    PPP_READY,
    LazyPirateClient,
    ParanoidQueue,
    ParanoidWorker,
    QueueState,
    SteadyLoad,
    Trace,
)
from pirate_helpers.course.workshop import ExerciseFailed, check_worker
from pirate_helpers.names import wire_identity


def test_the_check_accepts_a_right_worker():
    report = check_worker(RIGHT)
    assert report.startswith("✔") and "backing off" in report


@pytest.mark.parametrize("rule", sorted(WRONG))
def test_the_check_names_the_rule_a_wrong_worker_breaks(rule):
    with pytest.raises(ExerciseFailed) as failure:
        check_worker(WRONG[rule])
    assert str(failure.value).startswith(rule), str(failure.value)


def test_a_worker_that_raises_is_reported_with_its_error():
    def broken(join, name, stop, **_):
        raise RuntimeError("oops")

    with pytest.raises(ExerciseFailed, match="READY first.*RuntimeError: oops"):
        check_worker(broken)


def test_a_partition_ignores_a_worker_both_ways_until_it_heals():
    state = QueueState(heartbeat_interval=1.0, liveness=3)
    w = wire_identity("w")
    state.on_worker_message([w, PPP_READY], 0.0)
    assert state.partition("w", 5.0, now=0.0) and not state.partition("nobody", 1, 0.0)
    state.to_workers.clear()
    state.tick(1.0)
    assert not state.to_workers, "no heartbeat crosses the cut"
    state.on_worker_message([w, PPP_HEARTBEAT], 1.0)
    assert state.ignored == 1
    state.tick(3.0)
    assert w not in state.workers, "purged within liveness x interval"
    state.on_worker_message([w, PPP_READY], 6.0)
    assert w in state.ready and state.notes[-1][0] != "reject"


def test_a_partitioned_worker_is_purged_in_time_and_nothing_is_lost():
    trace = Trace()
    options = {"heartbeat_interval": 0.05, "liveness": 3}
    with ExitStack() as stack:
        queue = stack.enter_context(ParanoidQueue(trace=trace, trace_messages=False, **options))
        cut = stack.enter_context(ParanoidWorker("cut", connect=queue.join_workers,
                                                 reconnect_min=0.05, trace=trace, **options))
        stack.enter_context(ParanoidWorker("steady", connect=queue.join_workers, trace=trace,
                                           **options))
        assert trace.wait_for(lambda: len(queue.state.ready) == 2, 5)
        load = stack.enter_context(SteadyLoad(queue.join_clients, "load", rate=100,
                                              requests=60, timeout=0.5, trace=trace))
        assert trace.wait_for(lambda: load.answered >= 5, 5)
        queue.partition("cut", 0.6)
        assert trace.wait_for(lambda: trace.count("partition") == 1, 5), "the loop applied it"
        [applied] = trace.of("queue", "partition")
        assert applied.detail == "cut cut off for 0.6 s", applied.detail

        def purges_after_the_cut() -> list:
            return [e for e in trace.of("queue", "purge") if e.t >= applied.t]

        assert trace.wait_for(purges_after_the_cut, 5)
        # liveness x interval exactly on the fake clock (above); here a busy machine's slack
        assert purges_after_the_cut()[0].t - applied.t <= 0.15 + 0.05 + 1.0
        assert load.join(15)
        assert (load.answered, load.lost) == (60, 0), load.summary()
        assert trace.wait_for(lambda: cut.identity in queue.state.workers, 5), "it came back"
        with LazyPirateClient(queue.join_clients, timeout=1) as client:
            assert client.request(b"after") == [b"after"]


def notebook_cell(tag_or_text: str) -> str:
    """The source of notebook 91's code cell tagged or containing `tag_or_text`."""
    import json
    from pathlib import Path

    notebook = Path(__file__).parent.parent / "notebooks" / "91-workshop-student.ipynb"
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        tags = cell["metadata"].get("tags", [])
        if cell["cell_type"] == "code" and (tag_or_text in tags or tag_or_text in source):
            return source
    raise AssertionError(f"no cell {tag_or_text!r} in notebook 91")


def test_the_shipped_skeleton_waits_for_the_learner_and_the_right_worker_is_checked(tmp_path,
                                                                                   monkeypatch):
    from pirate_helpers.course.exercises import WAITING
    from pirate_helpers.course.workshop import unwritten

    skeleton = notebook_cell("def my_worker(")
    assert skeleton.count("...  # rule") == 5, "the four rules are the learner's to write"
    (tmp_path / "skeleton.py").write_text("from pirate_helpers import Join\n" + skeleton)
    monkeypatch.syspath_prepend(str(tmp_path))
    import skeleton as shipped

    assert unwritten(shipped.my_worker) and not unwritten(RIGHT)
    assert check_worker(shipped.my_worker) == WAITING
