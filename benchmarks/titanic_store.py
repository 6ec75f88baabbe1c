"""Requests stored per second by Titanic's SQLite store, synchronous=FULL against NORMAL.

Each request is one committed transaction (on disk before `200` goes back); the store file
lives in the folder given (default: a temporary folder; its file system decides the fsync
cost). Usage: `python benchmarks/titanic_store.py [FOLDER] [REQUESTS]`.
"""

import itertools
import sys
import tempfile
import time
from pathlib import Path

from pirate_helpers.titanic import REQUEST_SERVICE, TitanicStore, answer


def stored_per_second(folder: Path, synchronous: str, requests: int) -> float:
    path = folder / f"bench-{synchronous}.db"
    for leftover in folder.glob(f"{path.name}*"):
        leftover.unlink()
    store = TitanicStore(str(path), synchronous=synchronous)
    numbers = itertools.count()
    started = time.perf_counter()
    for _ in range(requests):
        answer(REQUEST_SERVICE, [b"echo", b"x" * 100], store, lambda: f"{next(numbers):032x}",
               max_stored=requests)
    elapsed = time.perf_counter() - started
    store.close()
    return requests / elapsed


def main() -> None:
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        for synchronous in ("FULL", "NORMAL", "FULL", "NORMAL"):
            rate = stored_per_second(Path(tmp), synchronous, requests)
            print(f"synchronous={synchronous}: {rate:,.0f} requests stored per second")


if __name__ == "__main__":
    main()
