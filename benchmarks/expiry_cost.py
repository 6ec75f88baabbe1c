"""CPU cost of the Majordomo broker's request expiry, without sockets: `BrokerState` on a fake
clock, 2000 requests/s to a service nobody offers, expiry 4 s, 20 simulated s (so 8,000
requests wait at any time). Prints CPU seconds and the share of a core; not a test.

    .venv/bin/python benchmarks/expiry_cost.py
"""

from __future__ import annotations

import time

from pirate_helpers.majordomo.protocol import MDPC
from pirate_helpers.majordomo.state import BrokerState

RATE, SECONDS, EXPIRY_S = 2000, 20, 4.0


def main() -> None:
    state = BrokerState(2.5, 3, 0.0, request_expiry=EXPIRY_S)
    started = time.process_time()
    for n in range(RATE * SECONDS):
        state.on_message([b"c%d" % (n % 50), b"", MDPC, b"absent", b"%d" % n], n / RATE)
        state.outbox.clear()
        state.notes.clear()
    cpu = time.process_time() - started
    print(f"{RATE * SECONDS} requests over {SECONDS} simulated s: {cpu:.2f} CPU s "
          f"({cpu / SECONDS:.1%} of a core at {RATE}/s); expired {state.expired}, "
          f"waiting {state.queued}")


if __name__ == "__main__":
    main()
