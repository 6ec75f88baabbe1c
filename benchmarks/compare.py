"""The article's comparison table, measured at full size: five designs, the same faults.

Plain REQ-REP, Lazy Pirate, the article's Simple Pirate (zmq.proxy), our Simple Pirate (LRU
queue) and Paranoid Pirate, each under no fault, a worker crash (restarted after a while), a
worker freeze and a queue restart, and the verdicts on the article's reliability
words derived from those figures; see `pirate_helpers/course/compare.py`. Throughput is
a ratio to plain REQ-REP measured in the same run, never a bare number. Prints the tables
(`--markdown`: as pasted into the README); not a test.

    .venv/bin/python benchmarks/compare.py --markdown
"""

from __future__ import annotations

import argparse
import sys
import time

from pirate_helpers.course import compare


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=100, help="per faulty run")
    options.add_argument("--calm-requests", type=int, default=2000, help="the run with no fault")
    options.add_argument("--calm-repeats", type=int, default=3, help="keep the fastest calm run")
    options.add_argument("--timeout-ms", type=float, default=250)
    options.add_argument("--retries", type=int, default=3)
    options.add_argument("--fault-at", type=int, default=20)
    options.add_argument("--restart-ms", type=float, default=1000)
    options.add_argument("--freeze-ms", type=float, default=2000)
    options.add_argument("--heartbeat-ms", type=float, default=250)
    options.add_argument("--liveness", type=int, default=3)
    options.add_argument("--patience-s", type=float, default=5.0)
    options.add_argument("--markdown", action="store_true",
                         help="print Markdown tables, as pasted into the README")
    args = options.parse_args()
    settings = compare.Settings(
        requests=args.requests, calm_requests=args.calm_requests, calm_repeats=args.calm_repeats,
        timeout_s=args.timeout_ms / 1000, retries=args.retries, fault_at=args.fault_at,
        restart_s=args.restart_ms / 1000, freeze_s=args.freeze_ms / 1000,
        heartbeat_s=args.heartbeat_ms / 1000, liveness=args.liveness,
        patience_s=args.patience_s)
    print(f"expected about {compare.expected_s(settings):.0f} s", file=sys.stderr)
    started = time.monotonic()
    runs = compare.measure(settings, progress=lambda done, total: print(
        f"  {done}/{total} runs", end="\r", flush=True, file=sys.stderr))
    print(f"measured in {time.monotonic() - started:.0f} s" + " " * 20, file=sys.stderr)
    figures = compare.table(runs, settings).transposed("measure")
    verdicts = compare.verdicts(runs, settings)
    for shown in (figures, verdicts):
        print(shown.markdown() if args.markdown else shown, end="\n\n")


if __name__ == "__main__":
    main()
