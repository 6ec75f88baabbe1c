"""Each serving role out of file descriptors: started under `ulimit -n 64`, flooded with 150
plain TCP connections (held open), then: the role's CPU seconds over 2 s of flood, the
failed accepts it counted, whether it still runs, and its exit status on SIGTERM.

    python benchmarks/descriptor_flood.py [ROLE ...]
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from processes import Role  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
ROLES = {
    "relay": ["--target", "tcp://127.0.0.1:9"],  # nothing listens there: flood is refused
    "lazy-server": [], "simple-queue": [], "paranoid-queue": [], "majordomo-broker": [],
    "freelance-server": [],
    "binary-star": ["--primary", "--publish", "tcp://127.0.0.1:*", "--subscribe",
                    "tcp://127.0.0.1:9"],
}


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def probe(name: str, target: socket.socket) -> str:
    options = ROLES[name]
    if name == "relay":
        options = ["--target", f"tcp://127.0.0.1:{target.getsockname()[1]}"]
    with Role(name, *options, max_files=64) as role:
        endpoint = role.expect(r"(?:listening on|join \(clients\):) (tcp://\S+)").group(1)
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        flood = []
        for _ in range(150):
            try:
                flood.append(socket.create_connection((host, int(port)), timeout=0.5))
            except OSError:
                break  # the listen backlog is full too
        before = cpu_s(role.process.pid)
        time.sleep(2)
        cpu = cpu_s(role.process.pid) - before
        running = role.process.poll() is None
        for sock in flood:
            sock.close()
        status = role.stop(timeout=5)
    lines = role.all_lines()
    summed = [int(m.group(1)) for line in lines
              if (m := re.search(r"more accept-failed \((\d+) in all\)", line))]
    printed = sum("accept-failed  " in line for line in lines)
    failures = summed[-1] if summed else printed
    return (f"| {name} | {len(flood)} | {cpu:.2f} | {failures:,} | {printed} | "
            f"{'yes' if running else 'no'} | {status} |")


def main() -> None:
    names = sys.argv[1:] or list(ROLES)
    print("| role | connections opened | CPU s over 2 s | failed accepts counted "
          "| lines printed | still running | exit on SIGTERM |")
    print("|---|---|---|---|---|---|---|")
    target = socket.create_server(("127.0.0.1", 0), backlog=200)
    for name in names:
        print(probe(name, target), flush=True)
    target.close()


if __name__ == "__main__":
    main()
