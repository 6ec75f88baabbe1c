"""The workshop kit installs with no index at all, by the line `docs/workshop.md` gives.

Making a kit downloads wheels (`make workshop-kit`, or `benchmarks/workshop_kit.py --here`
for this machine only), so this test runs only when `WORKSHOP_KIT` names a kit folder; it
installs from it into a fresh environment, with pip told to look nowhere else, and runs the
course's roles and imports from there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs" / "workshop.md"


def install_line() -> str:
    lines = re.findall(r"^\.venv/bin/python -m pip install --no-index .*$", DOCS.read_text(),
                       re.MULTILINE)
    assert len(lines) == 1, lines
    return lines[0]


def test_the_documented_install_line_pastes_into_any_shell():
    line = install_line()
    assert not set(line) & set("?&*!;|<>^%$#@,'\"(){}[]`"), line
    assert "--find-links ../pirate-kit" in line and "-r ../pirate-kit/requirements.txt" in line


@pytest.mark.skipif(not os.environ.get("WORKSHOP_KIT"),
                    reason="set WORKSHOP_KIT to a kit folder (make workshop-kit) to test it")
def test_a_fresh_environment_installs_from_the_kit_alone(tmp_path):
    kit = Path(os.environ["WORKSHOP_KIT"]).resolve()
    course = tmp_path / "course"
    course.mkdir()
    (tmp_path / "pirate-kit").symlink_to(kit)  # beside the course folder, as the page says
    venv.create(course / ".venv", with_pip=True)
    started = time.monotonic()
    # no configured index, find-links or cache may help: the kit alone
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("PIP_")}
    environment.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
    subprocess.run(install_line().split(), cwd=course, env=environment, check=True,
                   timeout=600)
    took = time.monotonic() - started
    python = str(course / ".venv" / "bin" / "python")
    roles = subprocess.run([python, "-m", "pirate_helpers", "--help"], capture_output=True,
                           text=True, timeout=60)
    assert roles.returncode == 0 and "paranoid-queue" in roles.stdout
    subprocess.run([python, "-c", "import jupyterlab, ipywidgets, matplotlib, zmq, rich"],
                   check=True, timeout=60)
    print(f"\ninstalled from {kit} in {took:.1f} s (Python {sys.version.split()[0]})")
