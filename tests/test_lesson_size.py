"""A lesson fits a sitting: at most 1,600 words of Markdown and 250 non-blank code lines
(check cells included), and it is committed without outputs. Every lesson (the workshop
notebooks, 90 and up, are a different kind of sitting)."""

from pathlib import Path

import nbformat
import pytest

LESSONS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-8][0-9]-*.ipynb"))
MAX_WORDS, MAX_CODE_LINES = 1600, 250


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_a_lesson_fits_a_sitting(path):
    cells = nbformat.read(path, as_version=4).cells
    words = sum(len(cell.source.split()) for cell in cells if cell.cell_type == "markdown")
    code = sum(1 for cell in cells if cell.cell_type == "code"
               for line in cell.source.splitlines() if line.strip())
    assert words <= MAX_WORDS, f"{words} words of text"
    assert code <= MAX_CODE_LINES, f"{code} non-blank code lines"
    assert not any(cell.get("outputs") for cell in cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_exercises_ship_unanswered(path):
    """An answer cell holds `...  # your answer`; no lesson ships a filled-in answer."""
    sources = [cell.source for cell in nbformat.read(path, as_version=4).cells]
    checks = [n for n, source in enumerate(sources) if "course.exercises import check_" in source]
    for n in checks:
        assert "...  # your answer" in sources[n - 1], f"cell {n - 1} holds an answer"
