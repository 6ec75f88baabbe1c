"""The Guide's three Freelance models on the same faults, at full size (lesson 12's table).

Three echo servers in this process, one client, one request at a time. 400 requests; before
request 100 server 1 is killed (the client then idles 0.5 s), before 200 server 2 freezes for
1 s, before 300 server 1 restarts. 0.25 s per try, 3 tries; model 3 pings every 0.1 s,
liveness 3. Run: `.venv/bin/python benchmarks/freelance.py [runs]` (default 3 runs; each
figure is the median over runs; lost and the worst wait are the worst of any run).
"""

from __future__ import annotations

import statistics
import sys

from pirate_helpers.course.freelance import MODELS, run_model

FAULTS = dict(requests=400, kill_at=100, freeze_at=200, restart_at=300)


def main(runs: int = 3) -> None:
    print(f"{'model':<14} {'lost':>5} {'worst wait s':>13} {'median ms':>10} "
          f"{'copies/request':>15} {'stale dropped':>14} {'pings':>6}")
    for model in MODELS:
        results = [run_model(model, **FAULTS) for _ in range(runs)]
        print(f"{results[0]['model']:<14} "
              f"{max(r['lost'] for r in results):>5} "
              f"{max(r['worst wait s'] for r in results):>13.3f} "
              f"{statistics.median(r['median wait ms'] for r in results):>10.2f} "
              f"{statistics.median(r['copies per request'] for r in results):>15.2f} "
              f"{statistics.median(r['stale replies dropped'] for r in results):>14.0f} "
              f"{statistics.median(r['pings'] for r in results):>6.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
