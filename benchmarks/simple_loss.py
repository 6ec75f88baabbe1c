"""How many requests the article's Simple Pirate loses, against ours, under the same crashes.

Both designs get the same seeded fault schedule: each worker incarnation crashes on the n-th
request it receives exactly when the other design's would, and a supervisor restarts it.
"article" is zmq.proxy-style ROUTER-DEALER, REP workers and a client that never resends;
"lru" is the LRU queue, REQ workers and the Lazy Pirate client. Prints a table; not a test.

    .venv/bin/python benchmarks/simple_loss.py --requests 200 --workers 3 --crash-rate 0.05
"""

from __future__ import annotations

import argparse

from pirate_helpers.simple import run_load


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=200)
    options.add_argument("--workers", type=int, default=3)
    options.add_argument("--crash-rate", type=float, default=0.05)
    options.add_argument("--timeout-ms", type=float, default=250)
    options.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = options.parse_args()
    print(f"{args.requests} requests, {args.workers} workers, crash rate {args.crash_rate:g}, "
          f"client timeout {args.timeout_ms:g} ms")
    print(f"{'seed':>4}  {'design':<8} {'answered':>8} {'lost':>5} {'crashes':>7} {'seconds':>7}")
    totals = {"article": [0, 0], "lru": [0, 0]}
    for seed in args.seeds:
        for design in ("article", "lru"):
            result = run_load(design, workers=args.workers, requests=args.requests,
                              crash_rate=args.crash_rate, timeout=args.timeout_ms / 1000,
                              seed=seed)
            totals[design][0] += result.lost
            totals[design][1] += result.crashes
            print(f"{seed:>4}  {design:<8} {result.answered:>8} {result.lost:>5} "
                  f"{result.crashes:>7} {result.seconds:>7.2f}")
    sent = args.requests * len(args.seeds)
    for design, (lost, crashes) in totals.items():
        print(f"{design}: lost {lost} of {sent} ({lost / sent:.1%}) through {crashes} crashes")


if __name__ == "__main__":
    main()
