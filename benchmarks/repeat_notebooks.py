"""Execute lessons again and again under a client with timeouts, to catch a rare hang.

Each run starts a fresh kernel (nbclient, as nbval and `jupyter nbconvert --execute` do) with
a bound on every cell (`--cell-timeout`) and on the wait for a cell's last output after its
reply (`--iopub-timeout`): a hang becomes a failure with the cell's number, never a silent
minute. One JSON line per run: the notebook, seconds, the slowest cell and its time, the
largest gap between a cell's reply and its kernel going idle, the seconds before the first
cell (kernel start) and after the last (shutdown), the slowest cell on the client's side and
whether it stalled after the kernel was done, and the error if any. Not a test.

    nice -n 19 .venv/bin/python benchmarks/repeat_notebooks.py notebooks/03-simple-pirate.ipynb \\
        --runs 100 --out /tmp/repeat-03.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

STALL_S = 5.0
"""A cell whose kernel went idle this long before the client saw it finish: the client missed
its wake-up (seen in lesson 03: 119 s, then the poll's timeout found the reply waiting)."""


def _seconds(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


class TimedClient(NotebookClient):
    """Times each cell on the client's side too (wall clock, as the kernel stamps its
    messages): a slow cell then shows whether the request reached the kernel late, the
    kernel was slow, or its reply reached the client late."""

    client_times: dict[int, tuple[float, float]]

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        started = time.time()
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            self.client_times[cell_index] = (started, time.time())


def _slowest_on_the_client(notebook, client_times: dict) -> dict:
    """The cell that took the client longest, split into where the time went."""
    if not client_times:
        return {}
    index, (sent, done) = max(client_times.items(), key=lambda item: item[1][1] - item[1][0])
    timing = notebook.cells[index].get("metadata", {}).get("execution", {})
    busy, idle = _seconds(timing.get("iopub.status.busy")), _seconds(
        timing.get("iopub.status.idle"))
    late = done - idle if idle else None
    return {"client_slowest_cell": index, "client_cell_s": round(done - sent, 2),
            "request_to_busy_s": round(busy - sent, 3) if busy else None,
            "idle_to_client_s": round(late, 3) if late is not None else None,
            "stalled": late is not None and late > STALL_S}


def run_once(path: Path, cell_timeout: float, iopub_timeout: float) -> dict:
    notebook = nbformat.read(path, as_version=4)
    client = TimedClient(notebook, timeout=cell_timeout, iopub_timeout=iopub_timeout,
                         raise_on_iopub_timeout=True, kernel_name="python3",
                         resources={"metadata": {"path": str(path.parent)}})
    client.client_times = {}
    started, wall_started = time.monotonic(), time.time()
    error = None
    try:
        client.execute()
    except Exception as failure:  # a timeout or a cell's error: recorded, the loop goes on
        error = f"{type(failure).__name__}: {str(failure).strip().splitlines()[0][:200]}"
    wall_ended = time.time()
    slowest, slowest_s, idle_gap = None, 0.0, 0.0
    first_busy, last_idle = None, None
    for number, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        busy, reply = _seconds(timing.get("iopub.status.busy")), _seconds(
            timing.get("shell.execute_reply"))
        idle = _seconds(timing.get("iopub.status.idle"))
        if busy is not None and reply is not None and reply - busy > slowest_s:
            slowest, slowest_s = number, reply - busy
        if reply is not None and idle is not None:
            idle_gap = max(idle_gap, idle - reply)
        first_busy = first_busy if first_busy is not None else busy
        last_idle = idle if idle is not None else last_idle
    return {"notebook": path.name, "seconds": round(time.monotonic() - started, 2),
            "slowest_cell": slowest, "slowest_cell_s": round(slowest_s, 2),
            "reply_to_idle_s": round(idle_gap, 3),
            "startup_s": round(first_busy - wall_started, 2) if first_busy else None,
            "shutdown_s": round(wall_ended - last_idle, 2) if last_idle else None,
            **_slowest_on_the_client(notebook, client.client_times), "error": error}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("notebooks", nargs="+", type=Path)
    options.add_argument("--runs", type=int, default=100, help="runs of each notebook")
    options.add_argument("--cell-timeout", type=float, default=120)
    options.add_argument("--iopub-timeout", type=float, default=10)
    options.add_argument("--until", help="stop starting runs after this UTC time, HH:MM")
    options.add_argument("--out", type=Path, help="append the JSON lines here too")
    args = options.parse_args()
    for run in range(1, args.runs + 1):
        for path in args.notebooks:
            if args.until and time.strftime("%H:%M", time.gmtime()) >= args.until:
                return
            line = json.dumps({"run": run, **run_once(path, args.cell_timeout,
                                                      args.iopub_timeout)})
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(line + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
