"""Lesson 10's exercise: how many times does a stored request run when its worker comes back?
The answers are the models' own (`titanic_guide.copies_executed`), so the check follows the
code; each classic wrong answer gets its own explanation."""

from __future__ import annotations

from ..majordomo import BrokerState, GuideMajordomoState
from ..titanic_guide import copies_executed
from .exercises import NotYet, as_whole_number, waits_for_answer

SCENARIO = """\
a worker of "echo" registers at t=0 and falls silent: purged at t=3 (heartbeat 1 s, liveness 3)
t=3.5  Titanic stores a request for "echo"; it asks mmi.service, and sends only on "200"
       a send unanswered after 1 s is given up; Titanic asks again at once (a fresh socket)
t=8.0  a worker of "echo" comes back and works off whatever the broker queued for it
"""

QUESTIONS = {"guide": "times the request runs behind the Guide's broker (mdbroker.py)",
             "ours": "times it runs behind the course's broker"}


def truth() -> dict[str, int]:
    return {"guide": copies_executed(GuideMajordomoState), "ours": copies_executed(BrokerState)}


@waits_for_answer
def check_copies(answers: dict) -> str:
    """Compare `answers` ({"guide": N, "ours": N}) with the models; `NotYet` says why not."""
    if not isinstance(answers, dict) or set(answers) != set(QUESTIONS):
        raise NotYet("answers is a dict with the keys 'guide' and 'ours', each a number")
    right = truth()
    for key in QUESTIONS:
        given = as_whole_number(answers[key])
        if given is None:
            raise NotYet(f"{key!r} is a whole number of runs, not {answers[key]!r}")
        if given == right[key]:
            continue
        if key == "guide" and given == 1:
            why = ("the Guide's MMI says 200 for a service it has seen, worker or not: every "
                   "send that times out stays queued in the broker, one more copy per retry")
        elif key == "guide":
            why = ("count the sends between t=3.5 and t=8.0: ask, send, wait 1 s for nothing, "
                   "again; each send leaves one copy queued, and a copy goes out at t=8.0 too")
        elif given == 0:
            why = "the request is not lost: Titanic keeps it and sends it once MMI says 200"
        else:
            why = ("our MMI says 404 while no worker offers echo, so Titanic sends nothing "
                   "until t=8.0: nothing piles up in the broker")
        raise NotYet(f"{key!r}: not {given}. {why}")
    return f"✔ right: {right['guide']} runs behind the Guide's broker, {right['ours']} behind ours"
