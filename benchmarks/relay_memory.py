"""What `pirate relay` holds toward a peer that never reads (issue 20's probe).

For each way (a client pushing toward a target that never reads, and the target pushing
toward a client that never reads): the relay process's peak RSS growth while a sender
writes 64 KiB chunks flat out for `SECONDS` (or until it is stopped for 1 s), and how many
bytes the sender got rid of.

    python benchmarks/relay_memory.py [SECONDS]
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from never_reads import connect_through, peak_rss_bytes, push, rss_bytes  # noqa: E402
from processes import Role  # noqa: E402

MiB = 1 << 20


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    print("| toward a peer that never reads | sender wrote (MiB) | sender stopped "
          "| relay peak RSS growth (MiB) |")
    print("|---|---|---|---|")
    for way in ("client -> target", "target -> client"):
        listener = socket.create_server(("127.0.0.1", 0))
        target = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with Role("relay", "--target", target, "--quiet") as relay:
            client, accepted = connect_through(relay.endpoint(), listener)
            sender = client if way.startswith("client") else accepted
            before = rss_bytes(relay.process.pid)
            written, stalled = push(sender, seconds)
            grown = peak_rss_bytes(relay.process.pid) - before
            print(f"| {way} | {written / MiB:,.0f} | {'yes' if stalled else 'no'} "
                  f"| {grown / MiB:,.1f} |")
            client.close()
            accepted.close()
        listener.close()


if __name__ == "__main__":
    main()
