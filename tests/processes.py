"""Run `pirate ROLE ...` as real processes, reading their output with a bound."""

from __future__ import annotations

import contextlib
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time

from pirate_helpers import netns

# How a role is started: as `python -m pirate_helpers`, with its threads' stacks dumped to
# stderr on SIGUSR1, so a role that does not stop in time shows where it was stuck.
LAUNCH = ("import faulthandler, runpy, signal; "
          "faulthandler.register(signal.SIGUSR1, all_threads=True); "
          "runpy.run_module('pirate_helpers', run_name='__main__')")


class Role:
    """A `pirate` role in its own process; lines of its stdout arrive on a queue.

    `namespace`: run it inside that Linux network namespace (`ip netns exec` execs the
    command, so the process is the role itself and a signal reaches it). `code`: run this
    Python source (with `args` as its argv) instead of a role, e.g. a hostile peer.
    `max_files`: the child's limit of open file descriptors (`ulimit -n`), set before it
    starts.
    """

    def __init__(self, *args: str, stdin: bool = False, namespace: str | None = None,
                 code: str | None = None, max_files: int | None = None) -> None:
        self.args = args
        program = ["-c", LAUNCH if code is None else code]
        self.process = subprocess.Popen(
            netns.command(namespace, sys.executable, *program, *args),
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=None if max_files is None else lambda: _limit_files(max_files),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 10) -> re.Match:
        """Wait at most `timeout` s in all (however chatty the role) for a stdout line
        matching `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                message = f"{self.args}: no line matching {pattern!r}: {self.seen[-30:]}"
                raise AssertionError(message) from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def all_lines(self) -> list[str]:
        """Every stdout line so far (of a stopped role: all of them)."""
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return list(self.seen)

    def newest(self, pattern: str) -> re.Match | None:
        """The newest stdout line so far matching `pattern` (a live summary's latest)."""
        for line in reversed(self.all_lines()):
            if match := re.search(pattern, line):
                return match
        return None

    def type(self, line: str) -> None:
        """Type a line on the role's standard input (started with `stdin=True`)."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def endpoint(self, name: str = "listening on") -> str:
        return self.expect(rf"{name} (\S+)").group(1)

    def stop(self, timeout: float = 10, signum: int | None = signal.SIGTERM) -> int:
        """Send `signum` (if still running; None: the test sent one already), wait, and keep
        what it wrote to stderr. A role still running after `timeout` s fails the test with
        its threads' stacks."""
        if self.process.stdout.closed:
            return self.process.returncode
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # the dump is written at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1)
            self._close(timeout)
            raise AssertionError(f"{self.args} still running {timeout} s after a signal; "
                                 f"its threads:\n{self.stderr[-6000:]}") from None
        finally:
            self._close(timeout)

    def _close(self, timeout: float) -> None:
        """Kill if need be, read every line and what it wrote to stderr, close the pipes."""
        if self.process.stdout.closed:
            return
        self.process.kill()
        self.process.wait(timeout)
        self._reader.join(timeout)  # the pipe ends with the process: read every line
        self.stderr += self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        if self.process.stdin is not None:
            self.process.stdin.close()

    def __enter__(self) -> Role:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _limit_files(count: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, min(count, hard)))


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pirate_helpers", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def poll_until(condition, timeout: float = 5.0) -> bool:
    """Check `condition` until it holds, with a bound: for counters another thread or
    process updates with no event to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
