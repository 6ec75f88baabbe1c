"""The workshop kit: everything 30 laptops need, in one folder for a USB stick, so a room
whose Wi-Fi cannot install anything still can (`make workshop-kit`, or run this script).

It holds the course itself (`pirate-patterns.zip`, the committed folder, and the course's
own wheel), the wheels of everything it needs for Windows, macOS (Intel and Apple) and
Linux, for Python 3.10 to 3.13, and `requirements.txt`, so the one install line has no
character a shell would treat specially:

    python -m pip install --no-index --find-links pirate-kit -r pirate-kit/requirements.txt

`--here` downloads for this machine's platform and Python only (what the test of the kit
installs from); `--roles-only` leaves out JupyterLab and matplotlib (the command-line roles
need only pyzmq and rich). It prints the kit's size and how long the download took.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {  # pip's platform tags: each list is one machine kind, newest tag first
    "Windows x86-64": ["win_amd64"],
    "macOS Apple silicon": ["macosx_11_0_arm64"],
    "macOS Intel": ["macosx_10_15_x86_64", "macosx_10_9_x86_64"],
    "Linux x86-64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "Linux ARM": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
}
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Needed there only (an environment marker such as `sys_platform == "win32"` or
# `python_version < "3.11"`), which `pip download` judges by the machine it runs on, not by
# --platform and --python-version: listed by hand from the dependencies' metadata.
MARKED = {
    "Windows x86-64": ["colorama", "pywinpty"],
    "macOS Apple silicon": ["appnope"],
    "macOS Intel": ["appnope"],
}
MARKED_PYTHON = {"3.10": ["exceptiongroup", "tomli"]}


def requirements(roles_only: bool) -> list[str]:
    """The course's dependencies, as its installed metadata states them (from
    pyproject.toml, the one place for them); the `lab` extra unless `roles_only`."""
    from importlib.metadata import requires

    needs = []
    for requirement in requires("pirate-helpers") or []:
        wanted, _, marker = requirement.partition(";")
        if not marker or (not roles_only and re.search(r"extra\s*==\s*.lab.", marker)):
            needs.append(wanted.strip())
    return needs


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def make_kit(out: Path, *, here: bool, roles_only: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=zip", "--prefix=pirate-patterns/",
                    "-o", str(out / "pirate-patterns.zip"), "HEAD"], check=True)
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT))
    needs = requirements(roles_only)
    if here:
        pip("download", "--quiet", "--only-binary=:all:", "--dest", str(out), *needs)
    else:
        for kind, tags in PLATFORMS.items():
            for python in PYTHONS:
                print(f"{kind}, Python {python}", flush=True)
                marked = [] if roles_only else MARKED.get(kind, []) + MARKED_PYTHON.get(python, [])
                pip("download", "--quiet", "--only-binary=:all:", "--implementation", "cp",
                    "--python-version", python, *[f"--platform={tag}" for tag in tags],
                    "--dest", str(out), *needs, *marked)
    extra = "" if roles_only else "[lab]"
    (out / "requirements.txt").write_text(f"pirate-helpers{extra}\n")
    wheels = len(list(out.glob("*.whl")))
    print(f"kit: {out} holds {wheels} wheels, {folder_size(out) / 1e6:.1f} MB, made in "
          f"{time.monotonic() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "pirate-kit",
                        help="the kit's folder (default: pirate-kit/ beside the course)")
    parser.add_argument("--here", action="store_true",
                        help="only this machine's platform and Python")
    parser.add_argument("--roles-only", action="store_true",
                        help="only what the command-line roles need (no JupyterLab)")
    args = parser.parse_args()
    make_kit(args.out, here=args.here, roles_only=args.roles_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
