"""CPU cost of the broker's request expiry: BrokerState with a fake clock, 2000 requests/s to
a service nobody offers, expiry 4 s, 20 s of traffic (so 8,000 wait at any time)."""
import time
from pirate_helpers.majordomo.state import BrokerState
from pirate_helpers.majordomo.protocol import MDPC
state = BrokerState(2.5, 3, 0.0, request_expiry=4.0)
rate, seconds = 2000, 20
started = time.process_time()
for n in range(rate * seconds):
    now = n / rate
    state.on_message([b"c%d" % (n % 50), b"", MDPC, b"absent", b"%d" % n], now)
    state.outbox.clear(); state.notes.clear()
cpu = time.process_time() - started
print(f"{rate * seconds} requests over {seconds} simulated s: {cpu:.2f} CPU s "
      f"({cpu / seconds:.1%} of a core at {rate}/s); expired {state.expired}, queued {state.queued}")
