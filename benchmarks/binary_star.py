"""Binary Star: how long after the primary's SIGKILL the backup serves, against 2 heartbeats.

    .venv/bin/python benchmarks/binary_star.py [--rounds 5] [--requests 2000]

For heartbeats of 50, 100 and 200 ms: a primary and a backup (`pirate binary-star`, the
state link over ipc) and a client process (`pirate binary-star-client`, timeout one
heartbeat, settle two) sending `--requests` echo requests one at a time. At a seeded random
moment 0.1-0.4 s into the client's run the primary is SIGKILLed. Failover is the time from
the kill to the backup's line saying it became active; the bound is the client's timeout + 2
heartbeats (a request sent just before the kill times out, the client settles, then asks a
backup that has just seen the primary expire). Lost is requests not answered.
"""

from __future__ import annotations

import argparse
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PIRATE = [sys.executable, "-m", "pirate_helpers"]


class Process:
    """A role whose stdout lines arrive on a queue with the time each was read."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*PIRATE, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line))

    def expect(self, pattern: str, timeout: float = 30) -> tuple[float, re.Match]:
        deadline = time.monotonic() + timeout
        while True:
            at, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if match := re.search(pattern, line):
                return at, match

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def one_failover(heartbeat_ms: int, requests: int, rng: random.Random) -> tuple[float, int,
                                                                                 float]:
    """(seconds from kill to active, requests lost, the client's longest wait)."""
    with tempfile.TemporaryDirectory() as folder:
        def server(who: str, peer: str) -> Process:
            return Process("binary-star", f"--{who}", "--quiet", "--heartbeat-ms",
                           str(heartbeat_ms), "--publish", f"ipc://{folder}/{who}",
                           "--subscribe", f"ipc://{folder}/{peer}")

        primary, backup = server("primary", "backup"), server("backup", "primary")
        try:
            frontends = [p.expect(r"listening on (\S+)")[1].group(1) for p in (primary, backup)]
            backup.expect("passive  heard an active peer")
            client = Process("binary-star-client", "--connect", frontends[0], "--connect",
                             frontends[1], "--requests", str(requests), "--name", "c",
                             "--timeout-ms", str(heartbeat_ms),
                             "--settle-ms", str(2 * heartbeat_ms))
            client.expect(r"recv  c:100$")  # under load: 100 answered already
            time.sleep(rng.uniform(0, heartbeat_ms / 1000))  # any phase of a heartbeat
            primary.process.kill()
            killed_at = time.monotonic()
            active_at, _ = backup.expect("active  a client asked")
            _, summary = client.expect(r"(\d+) of (\d+) answered.*longest wait ([\d.]+) s")
            client.stop()
            answered, asked = int(summary.group(1)), int(summary.group(2))
            return active_at - killed_at, asked - answered, float(summary.group(3))
        finally:
            primary.stop()
            backup.stop()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--requests", type=int, default=2000)
    args = options.parse_args()
    rng = random.Random(20261206)
    print("| heartbeat | 2 x heartbeat | bound (timeout + 2 hb) | failover median | "
          "failover max | longest client wait | lost |")
    print("|---|---|---|---|---|---|---|")
    for heartbeat_ms in (50, 100, 200):
        runs = [one_failover(heartbeat_ms, args.requests, rng) for _ in range(args.rounds)]
        failovers = [run[0] for run in runs]
        print(f"| {heartbeat_ms} ms | {2 * heartbeat_ms} ms | {3 * heartbeat_ms} ms | "
              f"{statistics.median(failovers) * 1000:.0f} ms | {max(failovers) * 1000:.0f} ms "
              f"| {max(run[2] for run in runs) * 1000:.0f} ms | "
              f"{sum(run[1] for run in runs)} of {args.rounds * args.requests} |", flush=True)


if __name__ == "__main__":
    main()
