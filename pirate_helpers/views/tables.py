"""Results as a small table a person reads: HTML in a notebook, aligned text everywhere else.

No pandas: a lesson's table has a handful of rows, and a check cell reads it by row and
column (`table[0]["lost"]`, `table.row("lru")`, `table.column("seconds")`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


class Table:
    """Rows of values under named columns; the first column names each row."""

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = ""):
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.title = title
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} does not fit the columns {self.columns!r}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(zip(self.columns, self.rows[index], strict=True))

    def row(self, name: Any) -> dict[str, Any]:
        """The row whose first value is `name`."""
        for row in self.rows:
            if row[0] == name:
                return dict(zip(self.columns, row, strict=True))
        raise KeyError(f"no row {name!r}; the rows are {[row[0] for row in self.rows]}")

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def add(self, row: Sequence[Any]) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"row {row!r} does not fit the columns {self.columns!r}")
        self.rows.append(list(row))

    def transposed(self, corner: str = "") -> Table:
        """Columns as rows: a wide table (many measures, few rows) read down the page."""
        names = [str(row[0]) for row in self.rows]
        rows = [[column, *[row[i] for row in self.rows]]
                for i, column in enumerate(self.columns) if i > 0]
        return Table([corner or self.columns[0], *names], rows, self.title)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(column)}</th>" for column in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_shown(value))}</td>" for value in row) + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def markdown(self) -> str:
        """The table in Markdown, for a README generated from a run."""
        cells = [[_shown(value).replace("|", "\\|") for value in row] for row in self.rows]
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])

    def __str__(self) -> str:
        cells = [self.columns] + [[_shown(value) for value in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
                 .rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(([self.title] if self.title else []) + lines)

    def __repr__(self) -> str:
        return str(self)
