"""Run `pirate ROLE ...` as real processes, reading their output with a bound."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading


class Role:
    """A `pirate` role in its own process; lines of its stdout arrive on a queue."""

    def __init__(self, *args: str, stdin: bool = False) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pirate_helpers", *args],
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
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
        """Wait (bounded) for a stdout line matching `pattern`."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                message = f"{self.args}: no line matching {pattern!r}: {self.seen}"
                raise AssertionError(message) from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def type(self, line: str) -> None:
        """Type a line on the role's standard input (started with `stdin=True`)."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def endpoint(self, name: str = "listening on") -> str:
        return self.expect(rf"{name} (\S+)").group(1)

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM (if still running), wait, and keep what it wrote to stderr."""
        if self.process.stdout.closed:
            return self.process.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
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


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pirate_helpers", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
