import pytest

from pirate_helpers.views.tables import Table


def test_table_reads_by_row_and_column_and_shows_as_text_and_html():
    table = Table(["design", "lost", "seconds"], [["article", 3, 0.61234], ["lru", 0, 0.5]])
    assert table.row("lru") == {"design": "lru", "lost": 0, "seconds": 0.5}
    assert table[0]["lost"] == 3 and table.column("lost") == [3, 0] and len(table) == 2
    assert str(table).splitlines() == [
        "design   lost  seconds",
        "-------  ----  -------",
        "article  3     0.612",
        "lru      0     0.5",
    ]
    assert "<th>design</th>" in table._repr_html_() and "<td>0.612</td>" in table._repr_html_()
    with pytest.raises(KeyError, match="no row 'proxy'"):
        table.row("proxy")
    with pytest.raises(ValueError):
        table.add([1, 2])
