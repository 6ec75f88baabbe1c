"""The wheel ships every package: `[tool.setuptools] packages` lists each folder of
`pirate_helpers` that has an `__init__.py` (a non-editable install would miss one left out)."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib comes with Python 3.11")

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "pirate_helpers").rglob("__init__.py")}
    assert "pirate_helpers.majordomo" in found
    assert found <= listed, f"missing from pyproject.toml: {sorted(found - listed)}"
