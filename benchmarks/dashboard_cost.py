"""CPU of `pirate simple-queue --dashboard` at rest, on a terminal, holding many dead workers.

Starts the queue with its stdout on a pseudo-terminal (so rich draws live, as for an
instructor), connects N workers that say READY and vanish (a Simple queue cannot see them
die), then measures the queue process's CPU over 10 s with nothing happening. Not a test.

    ulimit -n 4096; .venv/bin/python benchmarks/dashboard_cost.py --workers 8000
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import subprocess
import sys
import threading
import time

import zmq

from pirate_helpers.simple import READY


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--workers", type=int, default=8000)
    options.add_argument("--seconds", type=float, default=10.0)
    args = options.parse_args()
    master, terminal = pty.openpty()
    queue = subprocess.Popen([sys.executable, "-m", "pirate_helpers", "simple-queue",
                              "--dashboard"], stdout=terminal, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, COLUMNS="120", LINES="40"))
    screen = os.fdopen(master, "rb", buffering=0)
    seen = b""
    while (found := re.search(rb"backend \(workers\) on (\S+)", seen)) is None:
        seen += screen.read(4096)

    def drain() -> None:  # a terminal that reads what is drawn
        try:
            while screen.read(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    for first in range(0, args.workers, 400):  # 400 sockets at a time: file descriptors
        context = zmq.Context()
        context.linger = 2000  # READY is delivered before the socket goes
        for n in range(first, min(args.workers, first + 400)):
            worker = context.socket(zmq.DEALER)
            worker.routing_id = b"dead-%d" % n
            worker.connect(found.group(1).decode())
            worker.send_multipart([b"", READY])
            worker.close()
        context.term()
    time.sleep(3)  # the queue takes them in; then nothing happens
    before, started = cpu_seconds(queue.pid), time.monotonic()
    time.sleep(args.seconds)
    share = (cpu_seconds(queue.pid) - before) / (time.monotonic() - started)
    queue.terminate()
    queue.wait(20)
    print(f"{args.workers} dead workers, dashboard at rest: {share:.1%} of a core")


if __name__ == "__main__":
    main()
