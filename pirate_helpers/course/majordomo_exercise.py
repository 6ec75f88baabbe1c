"""Lesson 09's exercise: predict what the Majordomo broker decides, checked against it.

The scenario runs on `BrokerState` with a fake clock, so the answers are the broker's own
(change the broker and the check follows it), and each classic wrong answer gets its own
explanation instead of a bare "wrong".
"""

from __future__ import annotations

from ..majordomo import HEARTBEAT, MDPC, MDPW, READY, REPLY, REQUEST, BrokerState
from .exercises import as_whole_number, waits_for_answer

SCENARIO = """\
heartbeat 1 s, liveness 3: a worker silent for 3 s is dead
t=0.0  w1 and w2 say READY for "echo"
t=0.1  a client asks "echo" for "a"
t=0.2  a client asks "echo" for "b"
t=0.3  a client asks "echo" for "c"
t=0.4  a client asks "print" for "p" (nobody offers "print")
t=0.5  a client asks mmi.service: is "print" offered?
t=1.0  w1 heartbeats (busy with its request); w2 is never heard from again
t=3.5  w1 replies to its request
"""

QUESTIONS = {
    "a goes to": "which worker is sent 'a'? ('w1' or 'w2')",
    "mmi print": "what does mmi.service answer for 'print' at t=0.5? ('200', '404' or '501')",
    "w1 next": "which request is w1 sent right after its reply at t=3.5? ('b', 'c' or 'p')",
    "b sent": "how many times in all is 'b' sent to a worker? (a number)",
}

HINTS = {
    ("a goes to", "w2"): "both workers were waiting since t=0.0; the one that has waited "
                         "longest (least recently used, the first to say READY) goes first",
    ("mmi print", "200"): "that is the Guide's bug: a request for 'print' creates a queue "
                          "for it, but no worker offers 'print'",
    ("mmi print", "501"): "501 is for the other mmi.* services; mmi.service is implemented",
    ("w1 next", "c"): "w2, silent since t=0.0, is dead from t=3.0 and purged holding 'b': a "
                      "lost worker's request goes back to the *front* of its service's queue, "
                      "ahead of 'c'",
    ("w1 next", "p"): "'p' is for the service 'print': w1 only gets 'echo' requests",
    ("b sent", 1): "'b' is not lost with w2: the broker sends it again to another worker "
                   "(at-least-once)",
}


def broker_decisions() -> dict[str, str | int]:
    """Run the scenario on the real state machine and read off the answers."""
    state = BrokerState(heartbeat_interval=1.0, liveness=3, now=0.0)
    sent: list[tuple[float, bytes, bytes]] = []  # (when, worker, body)
    answers: dict[str, str | int] = {}

    def deliver(message: list[bytes], now: float) -> None:
        state.on_message(message, now)
        for out in state.outbox:
            if out[2:4] == [MDPW, REQUEST]:
                sent.append((now, out[0], out[-1]))
            if out[2:4] == [MDPC, b"mmi.service"]:
                answers["mmi print"] = out[4].decode()
        state.outbox.clear()

    for worker in (b"w1", b"w2"):
        deliver([worker, b"", MDPW, READY, b"echo"], 0.0)
    for now, service, body in ((0.1, b"echo", b"a"), (0.2, b"echo", b"b"),
                               (0.3, b"echo", b"c"), (0.4, b"print", b"p"),
                               (0.5, b"mmi.service", b"print")):
        deliver([b"client-" + body, b"", MDPC, service, body], now)
    deliver([b"w1", b"", MDPW, HEARTBEAT], 1.0)
    (held,) = [body for _, worker, body in sent if worker == b"w1"]
    deliver([b"w1", b"", MDPW, REPLY, b"client-" + held, b"", held], 3.5)
    answers["a goes to"] = next(w.decode() for _, w, body in sent if body == b"a")
    answers["w1 next"] = next(body.decode() for when, w, body in sent
                              if w == b"w1" and when == 3.5)
    answers["b sent"] = sum(body == b"b" for _, _, body in sent)
    return answers


class WrongAnswer(AssertionError):
    """An answer the broker disagrees with, and why."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, without frames
        return [f"WrongAnswer: {self}"]


@waits_for_answer
def check_answers(answers: dict) -> str:
    """Compare the learner's `answers` with the broker's decisions; raise `WrongAnswer`
    with an explanation for the first one that differs. The shipped `...` answers wait."""
    if not isinstance(answers, dict):
        raise WrongAnswer("answers should be a dict with the keys " + ", ".join(QUESTIONS))
    missing = [key for key in QUESTIONS if key not in answers]
    if missing:
        raise WrongAnswer(f"no answer yet for {missing[0]!r}: {QUESTIONS[missing[0]]}")
    truth = broker_decisions()
    for key, right in truth.items():
        given = answers[key]
        if isinstance(right, int):
            given = as_whole_number(given)
            if given is None:
                raise WrongAnswer(f"{key!r} is a number, not {answers[key]!r}")
        else:
            given = str(given).strip().strip("'\"")
        if given != right:
            hint = HINTS.get((key, given), QUESTIONS[key])
            raise WrongAnswer(f"{key!r}: not {answers[key]!r}. Hint: {hint}")
    return "✔ all four match what the broker decided"
