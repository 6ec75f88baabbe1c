"""The workshop, rehearsed with its own documented commands in a room of network namespaces.

The command lines come from `docs/workshop.md` itself (so the page and this test cannot
drift; only the queue's bind address is replaced, by the one address every student's
namespace reaches). The queue runs in one namespace; 22 students in 22 others join with the
projected workers line before any load: half with the page's `pirate paranoid-worker` line,
half with notebook 91's own worker cell, and one with an old habit, `--heartbeat-ms 250`.
Then the page's load starts and each chaos command it lists is typed once on the queue's
terminal. Nothing may be lost or mismatched; each student's worker keeps one connection
until chaos cuts it off; the warnings are exactly the two the odd student earns (one from
its worker, one from the queue).

Needs root and `ip netns` (`netns.py`); skipped with the reason otherwise. Run with `-s`
for the figures.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from processes import Role

ROOT = Path(__file__).parent.parent
STUDENTS = 22
ODD_ONE = 3  # starts with --heartbeat-ms 250 besides the join line
CLI_STUDENTS = [n for n in range(1, STUDENTS + 1) if n % 2]  # the others run notebook 91's cell

STUDENT_NOTEBOOK = """
import signal, sys, time
from pirate_helpers import Join, ParanoidWorker, Trace
JOIN, MY_NAME, cell = sys.argv[1:4]
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
trace = Trace(on_event=lambda e: e.kind in ("send", "recv") or print(e, flush=True), keep=200)
exec(cell)
print(f"{MY_NAME}: started", flush=True)
while not stopped:
    time.sleep(0.05)
worker.stop()
print(f"{MY_NAME} served {worker.answered}", flush=True)
"""


def documented() -> dict[str, list[str]]:
    """The page's command lines: the queue, a student's worker, the load, the chaos."""
    text = (ROOT / "docs" / "workshop.md").read_text()
    lines = {kind: re.findall(pattern, text, re.MULTILINE) for kind, pattern in {
        "queue": r"^pirate paranoid-queue .*$",
        "worker": r"^pirate paranoid-worker --name \S+ --join \S+$",
        "load": r"^pirate lazy-client .*--join \S+$",
        "chaos": r"^(?:cut \S+ \d+|freeze \d+)$",
    }.items()}
    assert all(len(found) == 1 for kind, found in lines.items() if kind != "chaos"), lines
    assert sorted(line.split()[0] for line in lines["chaos"]) == ["cut", "freeze"], lines
    return lines


def notebook_worker_cell() -> str:
    notebook = json.loads((ROOT / "notebooks" / "91-workshop-student.ipynb").read_text())
    [cell] = [c for c in notebook["cells"] if "student-worker" in c["metadata"].get("tags", [])]
    return "".join(cell["source"])


@pytest.fixture
def room(tmp_path, monkeypatch) -> Iterator[netns.Classroom]:
    monkeypatch.chdir(tmp_path)  # the page's --key-file classroom.key lands here
    try:
        with netns.classroom(STUDENTS) as classroom:
            yield classroom
    except netns.Unavailable as why:
        pytest.skip(str(why))


def name_of(n: int) -> str:
    return "alice" if n == 1 else f"s{n}"  # the page's student, and the one its `cut` names


def expect_names(queue: Role, pattern: str, names: set[str], timeout: float) -> None:
    """Wait until the queue has logged `pattern` (with NAME in it) for each of `names`."""
    waiting, deadline = set(names), time.monotonic() + timeout
    while waiting:
        line = queue.expect(pattern.replace("NAME", "(" + "|".join(map(re.escape, waiting))
                                            + ")"), timeout=max(0.0, deadline - time.monotonic()))
        waiting.discard(line.group(1))


def live(load: Role, at_least: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while True:
        answered = int(load.expect(r"live: load: (\d+) answered",
                                   timeout=max(0.0, deadline - time.monotonic())).group(1))
        if answered >= at_least:
            return answered


def test_the_workshop_rehearsed_with_its_documented_commands(room):
    started_at = time.monotonic()
    commands = documented()
    roles: list[Role] = []
    try:
        queue_args = shlex.split(commands["queue"][0])[1:]
        bind = {arg for arg in queue_args if arg.startswith("tcp://*:")}
        assert len(bind) == 2, queue_args
        queue_args = [arg.replace("tcp://*:", f"tcp://{room.SHARED}:") for arg in queue_args]
        queue = Role(*queue_args, namespace=room.queue, stdin=True)
        roles.append(queue)
        clients_join = queue.expect(r"join \(clients\): (\S+)").group(1)
        workers_join = queue.expect(r"join \(workers\): (\S+)").group(1)
        assert workers_join.startswith(f"tcp://{room.SHARED}:5556/")
        assert workers_join.endswith("/heartbeat-1000ms-liveness-3"), "the room's settings"

        students: dict[str, Role] = {}
        worker_line, cell = commands["worker"][0], notebook_worker_cell()
        for n in range(1, STUDENTS + 1):
            name = name_of(n)
            if n in CLI_STUDENTS:
                args = shlex.split(worker_line)[1:]
                args[args.index("--name") + 1] = name
                args[args.index("--join") + 1] = workers_join
                if n == ODD_ONE:
                    args += ["--heartbeat-ms", "250"]
                students[name] = Role(*args, namespace=room.students[n])
            else:
                students[name] = Role(workers_join, name, cell, code=STUDENT_NOTEBOOK,
                                      namespace=room.students[n])
            roles.append(students[name])
        expect_names(queue, r"\sjoin\s+NAME joined$", set(students), timeout=40)
        joined_at = time.monotonic()

        load_args = shlex.split(commands["load"][0])[1:]
        load_args[load_args.index("--join") + 1] = clients_join
        load = Role(*load_args, namespace=room.queue)
        roles.append(load)
        before_chaos = live(load, 40)
        queue.expect(rf"\smismatch\s+warning: {name_of(ODD_ONE)} heartbeats every ~0\.\d+ s, "
                     r"this queue every 1 s", timeout=20)

        typed = {line.split()[0]: line for line in commands["chaos"]}
        queue.type(typed["cut"])
        cut_name = typed["cut"].split()[1]
        assert cut_name == name_of(1)
        queue.expect(rf"partition\s+{cut_name} cut off for 5 s")
        queue.expect(rf"purge\s+{cut_name} silent for 3 s")
        queue.expect(rf"\sjoin\s+{cut_name} joined$", timeout=25)
        after_cut = live(load, before_chaos + 20)

        queue.type(typed["freeze"])
        queue.expect(r"freeze\s+queue frozen for 5 s")
        queue.expect(r"thaw\s+queue running again", timeout=10)
        # back on a fresh connection: a READY the queue reads as a reconnection, or a join
        # when a send to the closed one told it first that the worker was gone
        expect_names(queue, r"\s(?:reconnect|join)\s+NAME (?:re)?(?:connected|joined)$",
                     set(students) - {name_of(ODD_ONE)}, timeout=15)
        live(load, after_cut + 20)

        load.process.send_signal(signal.SIGTERM)
        assert load.stop(signum=None) == 128 + signal.SIGTERM, load.stderr
        final = load.expect(r"stopped: load: (\d+) answered, (\d+) retried, (\d+) lost, "
                            r"(\d+) mismatched")
        answered, retried, lost, mismatched = map(int, final.groups())
        served = {}
        for name, student in students.items():
            assert student.stop() == 0, student.stderr
            served[name] = int(student.expect(rf"{name} served (\d+)").group(1))
        assert queue.stop() == 0, queue.stderr
        took = time.monotonic() - started_at

        log = queue.all_lines()
        joins = Counter(m.group(1) for line in log if (m := re.search(r"\sjoin\s+(\S+) joined$",
                                                                       line)))
        reconnects = Counter(m.group(1) for line in log
                             if (m := re.search(r"\sreconnect\s+(\S+) reconnected$", line)))
        connections = {name: joins[name] + reconnects[name] for name in students}
        warnings = [line for role in roles for line in role.all_lines() + role.stderr.splitlines()
                    if "warning" in line.lower()]
        print(f"\nrehearsal: {STUDENTS} students joined in {joined_at - started_at:.1f} s; "
              f"load {answered} answered, {retried} retried, {lost} lost, {mismatched} "
              f"mismatched; served {sum(served.values())} in all; connections per student "
              f"{dict(sorted(Counter(connections.values()).items()))} (count: students); "
              f"{len(warnings)} warnings; {took:.1f} s")
        for line in warnings:
            print("  " + line)

        assert lost == 0 and mismatched == 0 and answered >= before_chaos + 40
        assert sum(served.values()) >= answered, "every answer was served by a student"
        assert all(count > 0 for name, count in served.items() if name != name_of(ODD_ONE))
        # one connection each, one more for the freeze; the cut student joined again
        quiet = set(students) - {name_of(1), name_of(ODD_ONE)}
        assert {connections[name] for name in quiet} <= {2, 3}, connections
        assert joins[name_of(1)] >= 2 and connections[name_of(1)] in {3, 4}, connections
        assert connections[name_of(ODD_ONE)] > 3, "the odd one keeps reconnecting"
        odd = name_of(ODD_ONE)
        assert len(warnings) == 2, warnings
        assert sum(f"{odd} heartbeats every ~0." in line for line in warnings) == 1, warnings
        assert sum(f"{odd} heartbeats every 0.25 s, liveness 3; the queue every 1 s, "
                   "liveness 3 (its join line says)" in line for line in warnings) == 1, warnings
        assert took < 60, f"the rehearsal took {took:.0f} s"
    finally:
        for role in reversed(roles):
            role.stop()
