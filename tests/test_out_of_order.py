"""A learner runs the cleanup mid-way, or a cell twice: the next cell says which cell to run
(RunFirst, one line), never a NameError, a bare AssertionError or a raw EFSM."""

from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


@contextmanager
def lesson(name, tmp_path, monkeypatch):
    """A kernel on lesson `name`; yields run(text): run the one code cell containing `text`."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    code = [(i, cell) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]

    def run(text=None, *, upto=None):
        """Run the cell holding `text`, or every code cell before the one holding `upto`."""
        if upto is not None:
            for index, cell in code:
                if upto in cell.source:
                    return
                client.execute_cell(cell, index)
            raise AssertionError(f"no cell holds {upto!r}")
        [(index, cell)] = [(i, c) for i, c in code if text in c.source]
        client.execute_cell(cell, index)

    with client.setup_kernel():
        yield run


def fails_with_hint(run, text, hint):
    with pytest.raises(CellExecutionError) as failure:
        run(text)
    assert failure.value.ename == "RunFirst", failure.value.ename
    assert hint in failure.value.evalue


def test_03_cleanup_mid_way_then_a_cell_twice(tmp_path, monkeypatch):
    with lesson("03-simple-pirate.ipynb", tmp_path, monkeypatch) as run:
        run(upto='w1 = SimpleWorker("w1"')
        run("stop_all()")  # the cleanup cell, in the middle
        fails_with_hint(run, 'w1 = SimpleWorker("w1"', "run the cell above (a fresh queue")
        run("dashboard = Dashboard(")  # as the hint says
        run('w1 = SimpleWorker("w1"')
        run('assert handled_by == ["w1", "w1", "w1", "w2"]')
        fails_with_hint(run, 'w1 = SimpleWorker("w1"', "starts from a queue with no workers")
        run("before_w3 = len(trace)")  # the cell after still works: the queue was untouched


def test_01_the_hang_cell_twice(tmp_path, monkeypatch):
    with lesson("01-req-rep-hangs.ipynb", tmp_path, monkeypatch) as run:
        run(upto="assert replies_waiting == 0")
        fails_with_hint(run, 'req.send(b"2")', "run the cells from the top again: `server` has")


def test_04_cleanup_before_the_crash_then_the_crash_cell(tmp_path, monkeypatch):
    """Each story of lesson 04 starts its own queue: after the cleanup it simply runs."""
    with lesson("04-paranoid-pirate.ipynb", tmp_path, monkeypatch) as run:
        run(upto='w1 = start_worker("w1", queue, trace, faults=Faults(crash_after=0))')
        run("stop_all()")
        run("faults=Faults(crash_after=0))")
        run('assert crash_reply == [b"held by w1"]')
