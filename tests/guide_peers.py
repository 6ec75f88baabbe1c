"""The ZeroMQ Guide's own C peers (`/work/shared/guide-peers`), built once per version of
their sources into a cache folder, and a private network namespace to run them in: they use
fixed ports (5555, 5556), so nothing else on the machine may listen there. Shared by the
interop tests and the benchmarks; `Missing` says in one line what this machine lacks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pirate_helpers import netns

PEERS = Path("/work/shared/guide-peers")


class Missing(Exception):
    """Something the Guide's peers need is not on this machine (the message says what)."""


def _flags() -> list[str]:
    for tool in ("gcc", "pkg-config"):
        if shutil.which(tool) is None:
            raise Missing(f"{tool} is not installed (Debian: build-essential pkg-config)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libczmq", "libzmq"],
                           capture_output=True, text=True)
    if flags.returncode:
        raise Missing("libczmq/libzmq development files not found (Debian: libczmq-dev)")
    return flags.stdout.split()


def build(programs: tuple[str, ...], peers: Path = PEERS,
          edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """Compile `programs` (each `NAME.c` in `peers`) with the README's build line into a
    cache folder named after the sources' digest, once; return the folder.

    `edits` makes variants: `{"mdclient2_1000": ("mdclient2", "100000 -> 1000")}` builds
    mdclient2.c with every `100000` replaced by `1000`, as `mdclient2_1000` (the Guide's
    peers hard-code their counts)."""
    if not (peers / "mdbroker.c").exists():
        raise Missing(f"the Guide's peers are not at {peers}")
    flags = _flags()
    digest = hashlib.sha256()
    for source in sorted(peers.glob("*.[ch]")):
        digest.update(source.name.encode() + source.read_bytes())
    out = Path(tempfile.gettempdir()) / f"pirate-guide-peers-{digest.hexdigest()[:12]}"
    out.mkdir(exist_ok=True)
    for program in programs:
        if (out / program).exists():
            continue
        source = peers / f"{program}.c"
        if edits and program in edits:
            original, change = edits[program]
            old, new = change.split(" -> ")
            source = out / f"{program}.{os.getpid()}.c"
            source.write_text((peers / f"{original}.c").read_text().replace(old, new))
        partial = out / f"{program}.{os.getpid()}.tmp"  # two sessions may build at once
        done = subprocess.run(["gcc", "-O2", "-w", "-I", str(peers), "-include",
                               "czmq3_compat.h", str(source), "-o", str(partial), *flags,
                               "-luuid", "-lpthread"],
                              cwd=peers, capture_output=True, text=True)
        if source.parent == out:
            source.unlink()
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise Missing(f"building {program}.c failed: {last}")
        partial.rename(out / program)
    return out


class Namespace:
    """A private network namespace (`pirate_helpers.netns`, loopback up), so the Guide's
    fixed ports collide with nothing else on the machine; removed on exit. `tag` ends its
    name (netns makes the rest unique)."""

    def __init__(self, tag: str | int) -> None:
        self._network = netns.network([f"g{tag}"])

    def __enter__(self) -> Namespace:
        try:
            self.name = next(iter(self._network.__enter__().namespaces.values()))
        except netns.Unavailable as why:
            raise Missing(f"cannot make a network namespace: {why}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._network.__exit__(*exc)

    def start(self, command: list[str], core: int | None = None,
              **kwargs) -> subprocess.Popen:
        """Run `command` inside the namespace (pinned to `core` if given)."""
        pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
        return subprocess.Popen(netns.command(self.name, *command), preexec_fn=pin, **kwargs)

    def connections(self, port: int) -> int:
        """Established TCP connections to `port` inside the namespace."""
        return netns.tcp_count(self.name, "established", f"( sport = :{port} )")

    def wait_for_connections(self, port: int, count: int, timeout: float = 15,
                             alive: subprocess.Popen | None = None) -> bool:
        """Wait, bounded, until `count` peers are connected to `port` (False if not in time,
        or as soon as `alive` has exited)."""
        deadline = time.monotonic() + timeout
        while self.connections(port) < count:
            if time.monotonic() > deadline or (alive is not None and alive.poll() is not None):
                return False
            time.sleep(0.05)
        return True
