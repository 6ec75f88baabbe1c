"""A classroom with real hosts: Linux network namespaces joined by veth links.

The queue runs in one namespace, each student in another, joining over CURVE; one student's
link is taken down (a real partition: no TCP close). Needs root and `ip netns`; skipped with
the reason otherwise. Traffic stays inside the namespaces this test makes, removed after.
"""

from __future__ import annotations

import os
import queue as queues
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

PREFIX = f"pq{os.getpid() % 10000}"


def ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace,
                                                        "ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


@pytest.fixture
def classroom():
    """Namespaces `q` (the queue), `s1` and `s2` (students), linked q<->s1 and q<->s2."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2's `ip netns`")
    made: list[str] = []
    try:
        for role in ("q", "s1", "s2"):
            ip("netns", "add", f"{PREFIX}{role}")
            made.append(f"{PREFIX}{role}")
            ip("link", "set", "lo", "up", namespace=f"{PREFIX}{role}")
    except subprocess.CalledProcessError as error:
        for namespace in made:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {error.stderr.decode().strip()}")
    q = f"{PREFIX}q"
    try:
        for n in (1, 2):
            student, near, far = f"{PREFIX}s{n}", f"{PREFIX}v{n}q", f"{PREFIX}v{n}s"
            ip("link", "add", near, "netns", q, "type", "veth", "peer", "name", far,
               "netns", student)
            ip("addr", "add", f"10.77.{n}.1/24", "dev", near, namespace=q)
            ip("addr", "add", f"10.77.{n}.2/24", "dev", far, namespace=student)
            ip("link", "set", near, "up", namespace=q)
            ip("link", "set", far, "up", namespace=student)
        yield {"queue": q, "s1": f"{PREFIX}s1", "s2": f"{PREFIX}s2"}
    finally:
        for namespace in made:  # deleting a namespace deletes its veth ends too
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)


class NsRole:
    """A `pirate` role inside a namespace; stdout lines arrive on a queue."""

    def __init__(self, namespace: str, *args: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "pirate_helpers", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queues.Queue[str] = queues.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 15) -> re.Match:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queues.Empty:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}: {self.seen[-20:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(10)
        finally:
            self.process.kill()


def test_a_cut_off_student_is_purged_in_time_and_nothing_is_lost(classroom):
    interval_ms, liveness = 100, 3
    beat = ["--heartbeat-ms", str(interval_ms), "--liveness", str(liveness)]
    roles: list[NsRole] = []
    try:
        queue = NsRole(classroom["queue"], "paranoid-queue", "--curve", "--quiet",
                       "--frontend", "tcp://*:5555", "--backend", "tcp://*:5556", *beat)
        roles.append(queue)
        key = queue.expect(r"join \(workers\): \S+/([0-9a-f]{64})").group(1)
        for n, name in ((1, "alice"), (2, "bob")):
            roles.append(NsRole(classroom[f"s{n}"], "paranoid-worker", "--name", name,
                                "--join", f"tcp://10.77.{n}.1:5556/{key}", "--quiet", *beat))
        load = NsRole(classroom["s1"], "lazy-client", "--name", "load", "--forever",
                      "--rate", "50", "--timeout-ms", "500", "--retries", "5",
                      "--summary-ms", "200", "--join", f"tcp://10.77.1.1:5555/{key}")
        roles.append(load)
        load.expect(r"live: load: [1-9]\d* answered")
        stranger = NsRole(classroom["s2"], "lazy-client", "--requests", "1",
                          "--timeout-ms", "300", "--retries", "1", "--quiet",
                          "--join", "tcp://10.77.2.1:5555")  # no key
        assert stranger.process.wait(10) == 2, "a peer without the key never gets a reply"
        cut_at = time.monotonic()
        ip("link", "set", f"{PREFIX}v2q", "down", namespace=classroom["queue"])
        queue.expect(r"purge\s+bob silent", timeout=10)
        purged_after = time.monotonic() - cut_at
        assert purged_after <= liveness * interval_ms / 1000 + 1.0, purged_after
        load.expect(r"live: load: \d+ answered")  # the load goes on with alice alone
        assert load.stop() == 143
        final = load.expect(r"stopped: load: (\d+) answered, (\d+) retried, (\d+) lost")
        assert int(final.group(1)) > 0 and final.group(3) == "0", final.group(0)
    finally:
        for role in reversed(roles):
            role.stop()
