"""The lessons' exercise checks: each takes the learner's answer and returns a verdict line,
or raises `NotYet` with a message that says what is wrong. Never a library traceback.

A timing check judges the *worst case*, computed from the pattern's own rules (and, for
Paranoid Pirate, played through the real `QueueState` on a fake clock), not one lucky run:
a choice that works only when a pause happens to start at a good moment is wrong.
`tests/test_exercises.py` runs each check with the right answer and each wrong one the
lesson's solution names.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence

import zmq

from ..faults import Faults
from ..lazy import LazyPirateClient, LazyServer, ServerUnavailable
from ..paranoid import JITTER, PPP_HEARTBEAT, PPP_READY, QueueState, WorkerLiveness
from ..simple import LruQueue, Request


class NotYet(AssertionError):
    """The answer is not right yet; the message says why. An AssertionError, so a check
    cell fails the way every other check cell does."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, without frames
        return [f"NotYet: {self}"]


def _has_placeholder(answer: object) -> bool:
    if answer is ...:
        return True
    if isinstance(answer, dict):
        return any(_has_placeholder(value) for value in answer.values())
    if isinstance(answer, (list, tuple, set)):
        return any(_has_placeholder(value) for value in answer)
    return False


WAITING = "⏳ waiting for your answer: replace the `...` above, then run this cell again"


def waits_for_answer(check: Callable[..., str]) -> Callable[..., str]:
    """A check called with the shipped placeholder `...` (anywhere in its answer) says in one
    line that it waits, instead of failing: exercises ship unanswered and Run All still
    reaches the end of the lesson."""

    @functools.wraps(check)
    def waiting_or_checked(*answers: object, **options: object) -> str:
        if _has_placeholder(answers) or _has_placeholder(options):
            return WAITING
        return check(*answers, **options)

    return waiting_or_checked


def as_whole_number(value: object) -> int | None:
    """`value` as an int when it is one however typed (2, 2.0, "2", "'2'"), else None: every
    lesson's check takes a count the same way, and never truncates 2.5 or takes True."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", text := value.strip().strip("'\"")):
        return int(text)
    return None


def _whole_number(name: str, value: object, smallest: int) -> int:
    number = as_whole_number(value)
    if number is None or number < smallest:
        raise NotYet(f"{name} must be a whole number of at least {smallest}, not {value!r}")
    return number


# -- lesson 01: where a plain client hangs ---------------------------------------------------
def plain_client_run(crash_after: int, requests: int = 4, wait_s: float = 0.3) -> tuple[int, int]:
    """A plain REQ client sends 1, 2, ... to a server that crashes after `crash_after`
    answers, waiting at most `wait_s` for each reply (a real one would wait for ever):
    (replies it got, the request it is stuck on)."""
    with LazyServer("exercise-server", faults=Faults(crash_after=crash_after)) as server, \
            zmq.Context() as context:
        context.linger = 0
        req = context.socket(zmq.REQ)
        req.connect(server.endpoint)
        for number in range(1, requests + 1):
            req.send(str(number).encode())
            if not req.poll(int(wait_s * 1000)):
                return number - 1, number
            req.recv()
    return requests, 0


@waits_for_answer
def check_plain_client_prediction(replies: int, stuck_on: int, *, crash_after: int = 2) -> str:
    """Lesson 01: with `Faults(crash_after=crash_after)`, how many replies does a plain REQ
    client get, and on which request does it wait for ever? Played live to check."""
    replies = _whole_number("my_replies", replies, 0)
    stuck_on = _whole_number("my_stuck_on", stuck_on, 1)
    real_replies, real_stuck_on = plain_client_run(crash_after)
    if (replies, stuck_on) == (real_replies, real_stuck_on):
        return (f"✔ right: {real_replies} replies, then it waits for ever on request "
                f"{real_stuck_on}")
    if replies != real_replies:
        raise NotYet(f"it got {real_replies} replies, not {replies}: crash_after={crash_after} "
                     f"answers {crash_after} requests, then crashes on the next one")
    raise NotYet(f"it is stuck on request {real_stuck_on}, not {stuck_on}: a REQ that got no "
                 f"reply cannot send again (EFSM), so it never gets further")


# -- lesson 02: timeout and retries ---------------------------------------------------------
SHORTEST_TIMEOUT_MS = 50
"""Below this a busy laptop's scheduling delay alone can exceed the timeout, and a live server
would be taken for a dead one (a normal reply here takes about 1 ms)."""


@waits_for_answer
def check_lazy_choice(
    timeout_ms: int, retries: int, *, drops: Sequence[int] = (2, 3), give_up_within_s: float = 1.0
) -> str:
    """Lesson 02: every request is answered by a server that drops `drops` (received request
    numbers), and a dead server is given up on within `give_up_within_s`.

    The give-up time is computed: a Lazy Pirate client gives up after `retries` tries of
    `timeout` each, never later. Then the live run, with the client's failure turned into
    this check's message.
    """
    timeout_ms = _whole_number("my_timeout_ms", timeout_ms, 1)
    retries = _whole_number("my_retries", retries, 1)
    if timeout_ms < SHORTEST_TIMEOUT_MS:
        raise NotYet(f"a {timeout_ms} ms timeout is shorter than a busy machine's scheduling "
                     f"delay: take at least {SHORTEST_TIMEOUT_MS} ms, or a live server looks dead")
    give_up_s = timeout_ms * retries / 1000
    if give_up_s >= give_up_within_s:
        raise NotYet(f"a dead server is given up on after timeout x retries = {timeout_ms} ms x "
                     f"{retries} = {give_up_s:g} s, not under {give_up_within_s:g} s")
    in_a_row = _longest_run(drops)
    with LazyServer("exercise-server", faults=Faults(drop=frozenset(drops))) as server, \
            LazyPirateClient(server.endpoint, timeout=timeout_ms / 1000, retries=retries,
                             name="exercise-client") as client:
        for n in range(1, len(drops) + 3):
            try:
                client.request(str(n).encode())
            except ServerUnavailable:
                raise NotYet(f"request {n} was never answered: the server lost {in_a_row} tries "
                             f"in a row and {retries} tries in all were not enough") from None
    return (f"✔ well chosen: every request answered, and a dead server is given up on after "
            f"{give_up_s:g} s at most")


def _longest_run(numbers: Sequence[int]) -> int:
    """The longest run of consecutive numbers: that many tries in a row are lost."""
    longest = run = 0
    previous = None
    for number in sorted(set(numbers)):
        run = run + 1 if previous is not None and number == previous + 1 else 1
        longest, previous = max(longest, run), number
    return longest


# -- lesson 03: who gets each request --------------------------------------------------------
def lru_dispatch(workers: Sequence[str] = ("a", "b", "c"), requests: int = 5,
                 answers_at_once: str = "a") -> list[str]:
    """The lesson 03 scenario through `LruQueue`: who gets each request, in order."""
    queue = LruQueue()
    for name in workers:
        queue.worker_ready(name.encode())
    given_to = []
    for n in range(1, requests + 1):
        dispatch = queue.request(Request((b"client", b""), (str(n).encode(),)))
        if dispatch is None:
            given_to.append("(waits)")
            continue
        given_to.append(dispatch.worker.decode())
        if dispatch.worker == answers_at_once.encode():
            queue.reply(dispatch.worker, dispatch.request.frames)
    return given_to


def round_robin(workers: Sequence[str] = ("a", "b", "c"), requests: int = 5) -> list[str]:
    """What the article's DEALER would do: deal in turn, busy or not."""
    return [workers[n % len(workers)] for n in range(requests)]


@waits_for_answer
def check_lru_prediction(prediction: Sequence[str]) -> str:
    """Lesson 03: `prediction` names the worker of each of the five requests."""
    if isinstance(prediction, str) or not isinstance(prediction, Sequence):
        raise NotYet(f"write a list of five names, like ['a', 'b', 'c', 'a', 'b'], "
                     f"not {prediction!r}")
    prediction = list(prediction)
    if len(prediction) != 5 or not set(prediction) <= {"a", "b", "c"}:
        raise NotYet(f"five names, each 'a', 'b' or 'c': {prediction!r}")
    given_to = lru_dispatch()
    if prediction == given_to:
        return f"✔ right: {given_to}"
    if prediction == round_robin():
        raise NotYet("that is round-robin, the article's DEALER: it hands request 5 to b, "
                     "which is still busy. The LRU queue gives work only to a ready worker.")
    pairs = enumerate(zip(prediction, given_to, strict=True), 1)
    wrong = next(n for n, (mine, real) in pairs if mine != real)
    raise NotYet(f"request {wrong} went to {given_to[wrong - 1]}, not {prediction[wrong - 1]}: "
                 f"who is ready, and who has waited longest, at that moment?")


# -- lesson 04: heartbeat interval and liveness ----------------------------------------------
HEARTBEAT_DELAY_S = 0.02
"""How late a heartbeat may arrive on a busy machine (thread wake-up and delivery)."""


def purged_after(heartbeat_s: float, liveness: int, silent_s: float | None) -> float | None:
    """When the real `QueueState`, on a fake clock, purges a worker that said READY at 0 and
    then nothing for `silent_s` (None: forever, frozen or cut off); None if it is never purged.

    (A crashed worker is found sooner: its connection closes, and the queue's next send to it
    fails. Silence is how the queue finds the workers that look alive.)"""
    state = QueueState(heartbeat_s, liveness, now=0.0)
    state.on_worker_message([b"w", PPP_READY], 0.0)
    while True:
        now = state.next_wakeup()
        if silent_s is not None and now >= silent_s:
            state.on_worker_message([b"w", PPP_HEARTBEAT], silent_s)  # it speaks: alive
            state.tick(silent_s)
            return None if b"w" in state.workers else silent_s
        state.tick(now)
        if any(kind == "purge" for kind, _ in state.notes):
            return now


def worst_silence(heartbeat_s: float, pause_s: float) -> float:
    """The longest a worker pausing `pause_s` is silent: its last heartbeat went out just
    before the pause would have let the next one go, so one whole interval, the pause, and a
    heartbeat that arrives a little late."""
    return heartbeat_s + pause_s + HEARTBEAT_DELAY_S


@waits_for_answer
def check_heartbeat_choice(
    heartbeat_ms: int, liveness: int, *, pause_s: float = 0.2, dead_within_s: float = 0.5
) -> str:
    """Lesson 04: a frozen worker (silent, connection open) is dropped within `dead_within_s`,
    and a worker that pauses `pause_s` is never dropped, whenever its pause starts (the worst
    case, computed)."""
    heartbeat_ms = _whole_number("my_heartbeat_ms", heartbeat_ms, 1)
    liveness = _whole_number("my_liveness", liveness, 1)
    heartbeat_s = heartbeat_ms / 1000
    dead_after = purged_after(heartbeat_s, liveness, None)
    assert dead_after is not None, "a silent worker is always purged"
    if dead_after >= dead_within_s:
        raise NotYet(f"a frozen worker is dropped only after {dead_after:.3g} s (liveness x "
                     f"interval = {liveness} x {heartbeat_ms} ms), not under {dead_within_s:g} s")
    silence = worst_silence(heartbeat_s, pause_s)
    if purged_after(heartbeat_s, liveness, silence) is not None:
        raise NotYet(f"a worker pausing {pause_s:g} s can be silent for {silence:.3g} s (one "
                     f"interval, the pause, a late heartbeat), and the queue drops it after "
                     f"{dead_after:.3g} s of silence: it is dropped")
    return (f"✔ well chosen: a frozen worker is dropped after {dead_after:.3g} s; a "
            f"{pause_s:g} s pause (silent {silence:.3g} s at worst) is survived")


# -- lesson 07: one REQ socket that resends ------------------------------------------------
LATE_S = 0.3  # the server's work: its reply comes after the client's timeout
TIMEOUT_S = 0.1


def one_socket_lazy_pirate(options: dict[int, int]) -> bytes:
    """A REQ with `options` sends b"1" to a slow echo server, times out, sends b"2" on the
    SAME socket and returns the reply it takes for b"2" (lesson 07's exercise)."""
    with LazyServer("exercise-server", work_s=LATE_S) as server, zmq.Context() as context:
        context.linger = 0
        req = context.socket(zmq.REQ)
        for option, value in options.items():
            req.setsockopt(option, value)
        req.connect(server.endpoint)
        req.send(b"1")
        if req.poll(int(TIMEOUT_S * 1000)):
            raise NotYet("the reply came before the timeout: the server was too fast")
        req.send(b"2")  # raises EFSM on a strict REQ
        if not req.poll(int((2 * LATE_S + 1.0) * 1000)):
            raise NotYet("no reply at all to the second request")
        return req.recv()


@waits_for_answer
def check_one_socket_lazy_pirate(options: dict[int, int]) -> str:
    """Lesson 07's exercise: the socket options that let one REQ socket time out, resend and
    get the reply to the *new* request. Returns a line of praise, or raises NotYet."""
    if not isinstance(options, dict) or not all(
        isinstance(key, int) and isinstance(value, int) for key, value in options.items()
    ):
        raise NotYet("give a dict of socket options, e.g. {zmq.REQ_RELAXED: 1}")
    try:
        reply = one_socket_lazy_pirate(options)
    except zmq.ZMQError as error:
        if error.errno != zmq.EFSM:
            raise NotYet(f"setting those options failed: {error}") from None
        if options.get(zmq.REQ_CORRELATE):
            raise NotYet("the second send failed with EFSM: REQ_CORRELATE alone changes "
                              "nothing, a REQ still may not send twice in a row") from None
        raise NotYet("the second send failed with EFSM: a strict REQ must get its reply "
                          "before it may send again; which option relaxes that?") from None
    if reply == b"1":
        raise NotYet("the late reply to b'1' was taken for the reply to b'2': with "
                          "REQ_RELAXED alone, a REQ cannot tell them apart; add the option "
                          "that tags each request")
    if reply != b"2":
        raise NotYet(f"unexpected reply {reply!r}")
    return "✔ one socket, a timeout, a resend, and the reply to the new request"


# -- lesson 05: when a worker comes back --------------------------------------------------
class _Extreme(random.Random):
    """An rng that always draws the same number: the earliest (0) or latest (1) jitter."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


def first_reconnect_s(draw: float, heartbeat_s: float = 1.0, liveness: int = 3,
                      reconnect_min: float = 1.0, jitter: float = JITTER) -> float:
    """When a worker that last heard its queue at 0 reconnects, on a fake clock, with the
    jitter drawn as `draw` (0 earliest, 1 latest)."""
    worker = WorkerLiveness(heartbeat_s, liveness, reconnect_min, 32.0, jitter,
                            _Extreme(draw))
    worker.on_connect(0.0)
    now = 0.0
    while worker.tick(now) != "reconnect":
        now = worker.next_wakeup()
    return now


@waits_for_answer
def check_reconnect_window(earliest_s: float, latest_s: float) -> str:
    """Lesson 05: heartbeats every 1 s, liveness 3, reconnect_min 1 s, jitter 0.5; the
    queue dies just after the worker heard it at 0 s. When, at the earliest and at the
    latest, does the worker reconnect? Played on a fake clock through `WorkerLiveness`."""
    earliest, latest = first_reconnect_s(0.0), first_reconnect_s(1.0)
    answer = (earliest_s, latest_s)
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool)
               for value in answer):
        raise NotYet(f"two numbers of seconds, like 2.0 and 2.5, not {answer!r}")
    if abs(earliest_s - earliest) < 1e-6 and abs(latest_s - latest) < 1e-6:
        return f"✔ right: between {earliest:g} s and {latest:g} s"
    if max(earliest_s, latest_s) >= 100:
        raise NotYet(f"the answer is in seconds: {earliest_s:g} and {latest_s:g} look like "
                     "milliseconds")
    if abs(earliest_s - 3.0) < 1e-6:
        raise NotYet("3 s is when it gives the queue up (liveness x interval); then it "
                     "waits its back-off before reconnecting")
    if abs(earliest_s - earliest) < 1e-6 and abs(latest_s - earliest) < 1e-6:
        raise NotYet("that forgets the jitter: the wait is lengthened by up to half of "
                     "itself, at random")
    raise NotYet("not quite: silence first (liveness x interval), then the back-off of "
                 "reconnect_min, lengthened by 0 to jitter x reconnect_min")
