"""The workshop's exercise: a learner's own Paranoid Pirate worker, checked automatically.

The learner writes `worker(join, name, stop, heartbeat_interval, liveness, reconnect_min,
reconnect_max)`: a function that runs until `stop` (a threading.Event) is set, using pyzmq
directly. `check_worker` runs it in a thread against a queue played by the check itself (a
ROUTER on loopback that controls every frame and every silence), and proves the four things
RFC 6 asks of a worker, in order, each failing with its own message:

1. READY first: its first message is the single byte 0x01;
2. the envelope echoed: a request `[client, b"", body...]` comes back unchanged;
3. heartbeats: one at least every two intervals while the queue heartbeats it;
4. reconnect with back-off: once the queue falls silent, READY again after about
   `liveness` intervals (not before), then again with a longer wait each time.

The notebook ships the worker as a skeleton with `...` where each rule goes: the check then
says in one line that it waits (`unwritten`), so Run All reaches the end.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import threading
import time
from collections.abc import Callable

import zmq

from ..endpoints import bind, scramble_generated_ids
from ..paranoid import PPP_HEARTBEAT, PPP_READY, ParanoidWorker
from .exercises import WAITING

INTERVAL, LIVENESS = 0.05, 3
RECONNECT_MIN, RECONNECT_MAX = 0.2, 1.6
SLACK = 0.25  # scheduling delay allowed on a loaded machine


class ExerciseFailed(AssertionError):
    """The learner's worker broke one rule; the message says which and what was seen."""


WorkerFunction = Callable[..., None]


class _FakeQueue:
    def __init__(self) -> None:
        self.context = zmq.Context()
        self.context.linger = 0
        scramble_generated_ids()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.router_handover = 1  # the worker reconnects under its identity
        self.endpoint = bind(self.router)

    def receive(self, timeout: float) -> list[bytes] | None:
        if not self.router.poll(int(timeout * 1000)):
            return None
        return self.router.recv_multipart()

    def next_non_heartbeat(self, timeout: float, identity: bytes, *, answer: bool = True
                           ) -> list[bytes] | None:
        """The next message other than a heartbeat (answering heartbeats meanwhile)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                return None
            if message[1:] == [PPP_HEARTBEAT]:
                if answer:
                    self.router.send_multipart([identity, PPP_HEARTBEAT])
                continue
            return message
        return None

    def ready_while_heartbeating(self, seconds: float, identity: bytes) -> bool:
        """Heartbeat the worker for `seconds`; True if it said READY meanwhile."""
        deadline = send_at = time.monotonic()
        deadline += seconds
        while (now := time.monotonic()) < deadline:
            if now >= send_at:
                self.router.send_multipart([identity, PPP_HEARTBEAT])
                send_at = now + INTERVAL
            message = self.receive(max(0.0, min(send_at, deadline) - time.monotonic()))
            if message is not None and message[1:] == [PPP_READY]:
                return True
        return False

    def close(self) -> None:
        self.router.close()
        self.context.term()


def unwritten(worker: WorkerFunction) -> bool:
    """True while the worker's source still holds a bare `...` (the skeleton's placeholder
    for a rule); False when its source cannot be read (the check then runs it)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(worker)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
               and node.value.value is Ellipsis for node in ast.walk(tree))


def check_worker(worker: WorkerFunction, name: str = "exercise") -> str:
    """Run `worker` against a queue this check plays, and raise ExerciseFailed naming the
    first rule it breaks. Returns a one-line report when every rule holds (about 3 s), or
    the one-line "waiting" message while the skeleton's `...` are still there."""
    if unwritten(worker):
        return WAITING
    queue = _FakeQueue()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker(queue.endpoint, name, stop, heartbeat_interval=INTERVAL, liveness=LIVENESS,
                   reconnect_min=RECONNECT_MIN, reconnect_max=RECONNECT_MAX)
        except BaseException as error:  # shown in the check's message, never lost
            errors.append(error)

    thread = threading.Thread(target=run, name=f"exercise-{name}", daemon=True)
    thread.start()
    try:
        return _check(queue, errors)
    finally:
        stop.set()
        thread.join(2)
        queue.close()
        if thread.is_alive():
            raise ExerciseFailed("the worker did not return within 2 s of `stop.set()`: "
                                 "check `stop.is_set()` in its loop")


def _gave_up_early() -> ExerciseFailed:
    return ExerciseFailed(f"READY again while the queue heartbeats every {INTERVAL:g} s: give "
                          f"a queue up only after {LIVENESS} intervals with nothing from it "
                          "(and count any message as a sign of life)")


def _crash_note(errors: list[BaseException]) -> str:
    return f" (your worker raised {type(errors[0]).__name__}: {errors[0]})" if errors else ""


def _check(queue: _FakeQueue, errors: list[BaseException]) -> str:
    first = queue.receive(1.0)
    if first is None:
        raise ExerciseFailed("READY first: nothing arrived within 1 s" + _crash_note(errors))
    identity = first[0]
    if first[1:] != [PPP_READY]:
        raise ExerciseFailed(f"READY first: the first message was {first[1:]!r}, not "
                             f"[{PPP_READY!r}] (one frame, the byte 0x01)")

    request = [identity, b"client-7", b"", b"body", b"\x00second frame"]
    queue.router.send_multipart(request)
    reply = queue.next_non_heartbeat(1.0, identity)
    if reply != request:
        raise ExerciseFailed(f"envelope echoed: sent {request[1:]!r}, got back "
                             f"{None if reply is None else reply[1:]!r}; a reply is the "
                             "whole request: the client's address, the empty frame, every "
                             "body frame" + _crash_note(errors))

    beats, started = 0, time.monotonic()
    last_beat = send_at = started
    while (now := time.monotonic()) - started < 6 * INTERVAL:
        if now >= send_at:  # the queue heartbeats on its own schedule
            queue.router.send_multipart([identity, PPP_HEARTBEAT])
            send_at = now + INTERVAL
        if now - last_beat > 2 * INTERVAL + SLACK:
            raise ExerciseFailed(f"heartbeats: silent for more than {2 * INTERVAL:g} s while "
                                 f"the queue heartbeats every {INTERVAL:g} s (send "
                                 f"{PPP_HEARTBEAT!r} every heartbeat_interval)"
                                 + _crash_note(errors))
        message = queue.receive(max(0.0, send_at - time.monotonic()))
        if message is None:
            continue
        if message[1:] == [PPP_HEARTBEAT]:
            beats += 1
            last_beat = time.monotonic()
        elif message[1:] == [PPP_READY]:
            raise _gave_up_early()
    if beats < 3 and queue.ready_while_heartbeating(RECONNECT_MIN + SLACK, identity):
        raise _gave_up_early()  # it was backing off meanwhile
    if beats < 3:
        raise ExerciseFailed(f"heartbeats: {beats} in {6 * INTERVAL:g} s, expected about 6")

    silence = LIVENESS * INTERVAL
    silent_since = time.monotonic()  # the queue falls silent from here on
    ready_at = []
    while len(ready_at) < 3:
        limit = silence + RECONNECT_MAX + 2 * SLACK
        message = queue.next_non_heartbeat(limit, identity, answer=False)
        if message is None:
            raise ExerciseFailed(f"reconnect: the queue has been silent for "
                                 f"{time.monotonic() - silent_since:.2f} s and no READY came: "
                                 f"after {LIVENESS} silent intervals, close the socket, wait, "
                                 "open a new one and send READY" + _crash_note(errors))
        if message[1:] == [PPP_READY]:
            ready_at.append(time.monotonic())
    waits = [b - a for a, b in zip([silent_since, *ready_at], ready_at, strict=False)]
    # its last message from us came up to one interval before `silent_since`
    if waits[0] - RECONNECT_MIN < silence - 1.5 * INTERVAL:
        raise ExerciseFailed(f"READY again {waits[0]:.2f} s into the silence, too early: "
                             f"wait for {LIVENESS} missed heartbeats ({silence:g} s), then "
                             f"{RECONNECT_MIN:g} s, before reconnecting")
    if waits[2] - waits[1] < RECONNECT_MIN * 0.75:
        raise ExerciseFailed(f"back-off: the waits between READYs were "
                             f"{', '.join(f'{w:.2f} s' for w in waits)}; double the wait "
                             f"after each failed attempt, from {RECONNECT_MIN:g} s up to "
                             f"{RECONNECT_MAX:g} s")
    return (f"✔ READY first, envelope echoed, {beats} heartbeats, reconnected after "
            f"{', '.join(f'{w:.2f}' for w in waits)} s of silence (backing off)")


def student_view(worker: ParanoidWorker) -> dict:
    """What a student watches of their own worker in a room (a dashboard snapshot): ready
    (connected) or backing off, served and reconnections, in the queue dashboard's words.
    Nothing here waits for the load to start."""
    state = "ready" if worker.liveness.connected else "backing off"
    return {"workers": {worker.name: state}, "served": {worker.name: worker.answered},
            "counts": {"served": worker.answered, "reconnections": worker.reconnects}}
