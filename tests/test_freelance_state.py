"""Freelance's decisions on a fake clock: where each try goes in each model, which reply
counts, who is alive; and, over random event sequences, that every request ends once, in
time, and only with its own reply."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pirate_helpers.freelance import (
    PING,
    PONG,
    ROUTER,
    SEQUENTIAL,
    SHOTGUN,
    Answer,
    Fail,
    FreelanceState,
    GuideAgentModel,
    Send,
)

SERVERS = ["a", "b", "c"]


def pings(actions):
    return [a.server for a in actions if isinstance(a, Send) and a.frames == [PING]]


def requests_to(actions):
    return [a.server for a in actions if isinstance(a, Send) and a.frames != [PING]]


def test_sequential_tries_one_server_at_a_time_then_gives_up_within_timeout_x_tries():
    state = FreelanceState(SERVERS, model=SEQUENTIAL, timeout=1.0, tries=3)
    assert requests_to(state.request([b"x"], now=0.0)) == ["a"]
    assert state.tick(0.999) == []
    assert requests_to(state.tick(1.0)) == ["b"]
    assert requests_to(state.tick(2.0)) == ["c"]
    assert state.tick(3.0) == [Fail("no reply after 3 tries of 1 s each")]
    assert state.next_wakeup() is None  # idle: model 1 sends nothing between requests


def test_sequential_starts_where_the_last_reply_came_from():
    state = FreelanceState(SERVERS, model=SEQUENTIAL, timeout=1.0)
    state.request([b"1"], now=0.0)
    state.tick(1.0)  # a did not answer; b gets the second try
    assert state.received("b", [b"1", b"one"], now=1.1) == [Answer([b"one"])]
    assert requests_to(state.request([b"2"], now=2.0)) == ["b"]


def test_shotgun_sends_every_try_to_every_server_and_the_first_reply_wins():
    state = FreelanceState(SERVERS, model=SHOTGUN)
    assert requests_to(state.request([b"x"], now=0.0)) == SERVERS
    assert state.received("b", [b"1", b"x"], now=0.01) == [Answer([b"x"])]
    assert state.received("a", [b"1", b"x"], now=0.02) == []  # late copy: dropped by its CCF
    assert state.stale == 1
    assert state.load == {"a": 1, "b": 1, "c": 1}


def test_router_pings_every_server_while_idle_and_routes_to_the_first_live_one():
    state = FreelanceState(SERVERS, model=ROUTER, ping_interval=0.5, liveness=3)
    assert pings(state.tick(0.0)) == SERVERS  # pings at once, before any request
    assert state.request([b"x"], now=0.0) == []  # nobody is known to be alive yet: it waits
    assert state.received("b", [PONG], now=0.01) == [Send("b", [b"1", b"x"])]
    assert state.received("b", [b"1", b"x"], now=0.02) == [Answer([b"x"])]
    state.received("a", [PONG], now=0.03)
    assert requests_to(state.request([b"y"], now=0.1)) == ["a"]  # first in the list
    assert pings(state.tick(0.5)) == SERVERS  # and the pings go on, request or not


def test_router_counts_a_silent_server_dead_after_liveness_intervals_and_retries_at_once():
    state = FreelanceState(SERVERS, model=ROUTER, timeout=5.0, ping_interval=0.5, liveness=3)
    state.tick(0.0)
    state.received("a", [PONG], now=0.0)
    state.received("b", [PONG], now=0.0)
    assert requests_to(state.request([b"x"], now=0.1)) == ["a"]
    state.received("b", [PONG], now=1.0)
    assert requests_to(state.tick(1.49)) == []  # a is alive until 1.5
    assert requests_to(state.tick(1.5)) == ["b"]  # a expired: its try moves on, not at 5.1
    assert state.pending.tries == 2


def test_router_skips_a_server_libzmq_has_no_connection_to():
    state = FreelanceState(SERVERS, model=ROUTER, timeout=5.0)
    state.tick(0.0)
    for server in SERVERS:
        state.received(server, [PONG], now=0.0)
    assert requests_to(state.request([b"x"], now=0.1)) == ["a"]
    assert requests_to(state.unreachable("a", now=0.1)) == ["b"]
    assert not state.servers[0].alive


def test_router_does_not_send_again_to_a_server_that_let_a_try_time_out():
    state = FreelanceState(SERVERS, model=ROUTER, timeout=0.2, ping_interval=1.0)
    state.tick(0.0)
    for server in SERVERS:
        state.received(server, [PONG], now=0.0)
    state.request([b"1"], now=0.1)
    assert requests_to(state.tick(0.31)) == ["b"]  # a froze: the next try goes to b
    state.received("b", [b"1", b"1"], now=0.31)
    assert requests_to(state.request([b"2"], now=0.4)) == ["b"]  # not to the frozen a


def test_a_pong_is_news_of_a_live_server_where_the_guide_agent_dies_of_it():
    with pytest.raises(ValueError):
        GuideAgentModel().received("a", [PONG])
    state = FreelanceState(SERVERS, model=ROUTER)
    assert state.received("a", [PONG], now=0.0) == [] and state.servers[0].alive


def test_replies_from_strangers_or_without_a_control_frame_change_nothing():
    state = FreelanceState(SERVERS, model=SHOTGUN)
    state.request([b"x"], now=0.0)
    assert state.received("z", [b"1", b"x"], now=0.0) == []
    assert state.received("a", [], now=0.0) == []
    assert state.received("a", [b"2", b"x"], now=0.0) == []
    assert state.pending is not None


@pytest.mark.parametrize("bad", [
    dict(servers=[]), dict(servers=["a", "a"]), dict(model=4), dict(tries=0),
    dict(timeout=0), dict(liveness=0), dict(ping_interval=-1)])
def test_impossible_settings_are_refused(bad):
    settings_ = dict(servers=SERVERS) | bad
    with pytest.raises(ValueError):
        FreelanceState(settings_.pop("servers"), **settings_)


# -- random event sequences ------------------------------------------------------------------
event = st.one_of(
    st.tuples(st.just("request")),
    st.tuples(st.just("pong"), st.sampled_from(SERVERS)),
    st.tuples(st.just("reply"), st.sampled_from(SERVERS), st.booleans()),
    st.tuples(st.just("unreachable"), st.sampled_from(SERVERS)),
    st.tuples(st.just("wait"), st.floats(0.001, 0.4)),
)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from([SEQUENTIAL, SHOTGUN, ROUTER]), events=st.lists(event, max_size=60))
def test_every_request_ends_once_in_time_and_only_with_its_own_reply(model, events):
    timeout, tries = 0.1, 3
    state = FreelanceState(SERVERS, model=model, timeout=timeout, tries=tries,
                           ping_interval=0.05, liveness=2)
    now, started, ended, current = 0.0, {}, {}, 0
    sent: dict[int, set[str]] = {}

    def take(actions, at):
        for action in actions:
            if isinstance(action, Send):
                assert action.server in SERVERS
                if action.frames != [PING]:
                    number = int(action.frames[0])
                    assert number == current, "only the pending request is ever sent"
                    if model == ROUTER:
                        view = next(v for v in state.servers if v.endpoint == action.server)
                        assert view.alive, "model 3 sends requests only to live servers"
                    sent.setdefault(number, set()).add(action.server)
            else:
                assert current not in ended, "a request ends once"
                ended[current] = (action, at)

    for item in events:
        kind = item[0]
        if kind == "request":
            current += 1
            started[current] = now
            take(state.request([str(current).encode()], now), now)
        elif kind == "pong":
            take(state.received(item[1], [PONG], now), now)
        elif kind == "reply":
            number = current if item[2] else current - 1
            replied_by = item[1] in sent.get(number, ())
            actions = state.received(item[1], [str(number).encode(), b"body"], now)
            answers = [a for a in actions if isinstance(a, Answer)]
            assert not answers or (number == current and replied_by)
            take(actions, now)
        elif kind == "unreachable":
            take(state.unreachable(item[1], now), now)
        else:
            target = now + item[1]
            while (wakeup := state.next_wakeup()) is not None and wakeup <= target:
                now = max(now, wakeup)
                take(state.tick(now), now)
            now = target
            take(state.tick(now), now)
    for number, (_, at) in ended.items():
        assert at - started[number] <= timeout * tries + 1e-9
    if state.pending is not None:  # never left pending past its last try's deadline
        assert now - started[current] < timeout * tries + 1e-9
