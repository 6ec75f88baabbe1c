""""Run All" twice in one kernel must work: re-run cells replace their helpers, never collide.

nbval runs each notebook once; this runs every notebook's cells twice in a single kernel.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_run_all_twice_in_one_kernel(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no learner settings leak into the run
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = notebook.cells + notebook.cells
    client = NotebookClient(
        notebook, timeout=60, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first cell that fails
    assert client.kc is None, "the kernel was shut down after the run"
