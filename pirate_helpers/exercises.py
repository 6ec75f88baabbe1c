"""Checks for the lessons' exercises: each runs the learner's answer on real sockets and, if
it is wrong, fails with a message that says what happened and where to look, never a
library traceback. The tests call each check with the right answer and every wrong one a
lesson names.
"""

from __future__ import annotations

import zmq

from .lazy import LazyServer

LATE_S = 0.3  # the server's work: its reply comes after the client's timeout
TIMEOUT_S = 0.1


class WrongAnswer(AssertionError):
    """The learner's answer does not do what the exercise asks; the message says why."""


def one_socket_lazy_pirate(options: dict[int, int]) -> bytes:
    """A REQ with `options` sends b"1" to a slow echo server, times out, sends b"2" on the
    SAME socket and returns the reply it takes for b"2" (lesson 06's exercise)."""
    with LazyServer("exercise-server", work_s=LATE_S) as server, zmq.Context() as context:
        context.linger = 0
        req = context.socket(zmq.REQ)
        for option, value in options.items():
            req.setsockopt(option, value)
        req.connect(server.endpoint)
        req.send(b"1")
        if req.poll(int(TIMEOUT_S * 1000)):
            raise WrongAnswer("the reply came before the timeout: the server was too fast")
        req.send(b"2")  # raises EFSM on a strict REQ
        if not req.poll(int((2 * LATE_S + 1.0) * 1000)):
            raise WrongAnswer("no reply at all to the second request")
        return req.recv()


def check_one_socket_lazy_pirate(options: dict[int, int]) -> str:
    """Lesson 06's exercise: the socket options that let one REQ socket time out, resend and
    get the reply to the *new* request. Returns a line of praise, or raises WrongAnswer."""
    if not isinstance(options, dict) or not all(
        isinstance(key, int) and isinstance(value, int) for key, value in options.items()
    ):
        raise WrongAnswer("give a dict of socket options, e.g. {zmq.REQ_RELAXED: 1}")
    try:
        reply = one_socket_lazy_pirate(options)
    except zmq.ZMQError as error:
        if error.errno != zmq.EFSM:
            raise WrongAnswer(f"setting those options failed: {error}") from None
        if options.get(zmq.REQ_CORRELATE):
            raise WrongAnswer("the second send failed with EFSM: REQ_CORRELATE alone changes "
                              "nothing, a REQ still may not send twice in a row") from None
        raise WrongAnswer("the second send failed with EFSM: a strict REQ must get its reply "
                          "before it may send again; which option relaxes that?") from None
    if reply == b"1":
        raise WrongAnswer("the late reply to b'1' was taken for the reply to b'2': with "
                          "REQ_RELAXED alone, a REQ cannot tell them apart; add the option "
                          "that tags each request")
    if reply != b"2":
        raise WrongAnswer(f"unexpected reply {reply!r}")
    return "✔ one socket, a timeout, a resend, and the reply to the new request"
