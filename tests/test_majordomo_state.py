"""The Majordomo broker's decisions with a fake clock: no sockets, no sleeps."""

from collections import Counter, deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pirate_helpers.majordomo import (
    C2_FINAL,
    C2_PARTIAL,
    C2_REQUEST,
    DISCONNECT,
    HEARTBEAT,
    MDPC,
    MDPC2,
    MDPW,
    MDPW2,
    READY,
    REPLY,
    REQUEST,
    BrokerState,
    GuideMajordomoState,
)


def ready(worker: bytes, service: bytes) -> list[bytes]:
    return [worker, b"", MDPW, READY, service]


def command(worker: bytes, code: bytes, *rest: bytes) -> list[bytes]:
    return [worker, b"", MDPW, code, *rest]


def ask(service: bytes, *body: bytes, client: bytes = b"c1") -> list[bytes]:
    return [client, b"", MDPC, service, *body]


def reply(worker: bytes, body: bytes, client: bytes = b"c1") -> list[bytes]:
    return command(worker, REPLY, client, b"", body)


W2_READY, W2_REQUEST, W2_PARTIAL, W2_FINAL, W2_HEARTBEAT, W2_DISCONNECT = (
    bytes([n]) for n in range(1, 7))  # MDP/0.2's worker commands


def command2(worker: bytes, code: bytes, *rest: bytes) -> list[bytes]:
    return [worker, b"", MDPW2, code, *rest]


def ask2(service: bytes, *body: bytes, client: bytes = b"c1") -> list[bytes]:
    return [client, b"", MDPC2, C2_REQUEST, service, *body]


def requests_sent(state) -> list[tuple[bytes, list[bytes]]]:
    """(worker, [client, "", body...]) for each REQUEST in the outbox; clears the outbox."""
    sent = [(m[0], m[4:]) for m in state.outbox if m[2:4] == [MDPW, REQUEST]]
    state.outbox.clear()
    return sent


def to_clients(state) -> list[list[bytes]]:
    return [m for m in state.outbox if m[2:3] == [MDPC]]


def disconnected(state) -> list[bytes]:
    return [m[0] for m in state.outbox if m[2:] == [MDPW, DISCONNECT]]


def broker(*workers: tuple[bytes, bytes], now: float = 0.0, **options) -> BrokerState:
    state = BrokerState(heartbeat_interval=1.0, liveness=3, now=now, **options)
    for worker, service in workers:
        state.on_message(ready(worker, service), now)
    return state


# -- services, LRU, envelopes ------------------------------------------------------------
def test_a_request_goes_to_the_least_recently_used_worker_of_its_service_only():
    state = broker((b"e1", b"echo"), (b"t1", b"time"), (b"e2", b"echo"))
    state.on_message(ask(b"echo", b"a"), 0.1)
    state.on_message(ask(b"echo", b"b", b"\x00", client=b"c2"), 0.1)
    state.on_message(ask(b"time", b"now"), 0.1)
    assert requests_sent(state) == [(b"e1", [b"c1", b"", b"a"]),
                                    (b"e2", [b"c2", b"", b"b", b"\x00"]),
                                    (b"t1", [b"c1", b"", b"now"])]
    state.on_message(reply(b"e2", b"B", client=b"c2"), 0.2)
    assert to_clients(state) == [[b"c2", b"", MDPC, b"echo", b"B"]]
    state.outbox.clear()
    state.on_message(reply(b"e1", b"A"), 0.3)
    state.on_message(ask(b"echo", b"c"), 0.4)
    assert requests_sent(state)[-1][0] == b"e2", "e2 has waited longest"
    assert state.answered == {b"echo": 2}


def test_a_request_for_a_service_nobody_offers_yet_waits_then_goes_to_its_first_worker():
    state = broker()
    state.on_message(ask(b"late", b"x"), 0.0)
    assert not requests_sent(state) and state.queued == 1
    state.on_message(ready(b"w1", b"other"), 0.5)
    assert not requests_sent(state)
    state.on_message(ready(b"w2", b"late"), 0.6)
    assert requests_sent(state) == [(b"w2", [b"c1", b"", b"x"])] and state.queued == 0



def test_notes_name_peers_as_every_queue_does_utf8_as_text_random_ids_in_hex():
    state = broker(("josé".encode(), "café".encode()), (b"\x00\x8b\x45", b"echo"))
    assert [detail for kind, detail in state.notes if kind == "ready"] == [
        "josé offers café", "008b45 offers echo"]

# -- heartbeats and expiry -----------------------------------------------------------------
def test_heartbeats_go_to_every_worker_busy_or_not_on_schedule_without_traffic():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"a"), 0.0)  # w1 busy, w2 waiting: both get heartbeats
    state.outbox.clear()
    beats = []
    for now in (0.5, 0.99, 1.0, 1.5, 1.99, 2.0):
        state.tick(now)
        beats.append(sorted(m[0] for m in state.outbox if m[2:] == [MDPW, HEARTBEAT]))
        state.outbox.clear()
    assert beats == [[], [], [b"w1", b"w2"], [], [], [b"w1", b"w2"]]


def test_any_command_but_disconnect_refreshes_a_worker():
    state = broker((b"w1", b"s"))
    state.on_message(command(b"w1", HEARTBEAT), 2.5)
    state.tick(5.4)
    assert b"w1" in state.workers
    state.on_message(ask(b"s", b"a"), 5.4)
    state.on_message(reply(b"w1", b"a"), 5.45)  # the reply refreshes it too
    state.tick(8.44)
    assert b"w1" in state.workers
    state.tick(8.45)
    assert b"w1" not in state.workers


def test_a_busy_worker_silent_too_long_is_purged_and_its_request_goes_first_to_another():
    state = broker((b"w1", b"s"))
    state.on_message(ask(b"s", b"held"), 0.0)
    state.on_message(ask(b"s", b"queued", client=b"c2"), 0.1)
    assert requests_sent(state) == [(b"w1", [b"c1", b"", b"held"])]
    state.on_message(command(b"w1", HEARTBEAT), 1.0)  # last heard at 1.0: dead at 4.0
    state.tick(3.99)
    assert b"w1" in state.workers
    state.tick(4.0)
    assert b"w1" not in state.workers and state.requeued == 1
    assert [r.body for r in state.services[b"s"].requests] == [[b"held"], [b"queued"]]
    state.on_message(ready(b"w2", b"s"), 4.1)
    assert requests_sent(state) == [(b"w2", [b"c1", b"", b"held"])], "the older request first"
    kinds = [kind for kind, _ in state.notes]
    assert kinds[-3:-1] == ["purge", "requeue"]


def test_a_broker_that_stalled_reads_what_piled_up_before_it_purges_anyone():
    """The loop woke 5 s late: the heartbeat w1 sent meanwhile is still unread, and a
    request read first must not find w1 purged; a worker really gone is purged an
    interval later."""
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.stalled(5.0)
    state.on_message(ask(b"s", b"job"), 5.0)  # ticks first: nobody purged
    state.on_message(command(b"w1", HEARTBEAT), 5.0)
    assert set(state.workers) == {b"w1", b"w2"} and "purge" not in [k for k, _ in state.notes]
    state.tick(5.99)
    assert b"w2" in state.workers
    state.tick(6.0)
    assert set(state.workers) == {b"w1"}, "w2 sent nothing: purged one interval on"


def test_a_late_reply_from_a_purged_worker_is_refused_with_disconnect_and_never_delivered():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"job"), 0.0)
    state.on_message(command(b"w2", HEARTBEAT), 2.9)
    state.tick(3.0)  # w1 purged, job to w2
    assert requests_sent(state) == [(b"w1", [b"c1", b"", b"job"]), (b"w2", [b"c1", b"", b"job"])]
    state.on_message(reply(b"w1", b"job"), 3.1)
    assert not to_clients(state) and disconnected(state) == [b"w1"] and state.rejected == 1
    state.outbox.clear()
    state.on_message(reply(b"w2", b"job"), 3.2)
    assert to_clients(state) == [[b"c1", b"", MDPC, b"s", b"job"]]


def test_all_expired_workers_are_purged_before_any_gets_a_requeued_request():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"a"), 0.0)
    requests_sent(state)
    state.tick(3.0)  # both silent since 0.0
    assert not requests_sent(state), "no request handed to w2, dead too"
    assert state.requeued == 1 and state.queued == 1 and not state.workers


def test_a_worker_that_disconnects_is_forgotten_at_once_holding_nothing():
    state = broker((b"idle", b"s"), (b"busy", b"s"))
    state.on_message(ask(b"s", b"a"), 0.0)
    state.on_message(command(b"busy", DISCONNECT), 0.1)  # not the LRU: idle got "a"
    state.on_message(command(b"idle", DISCONNECT), 0.2)
    assert not state.workers and state.queued == 1, "idle held a, which waits again"
    assert disconnected(state) == [], "no DISCONNECT answers a DISCONNECT"
    state.tick(10.0)  # the purge that crashes the Guide's broker
    assert not state.offers(b"s")


def test_a_second_ready_is_a_protocol_error_its_request_requeued():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"a"), 0.0)
    requests_sent(state)
    state.on_message(ready(b"w1", b"s"), 0.1)
    assert disconnected(state) == [b"w1"] and b"w1" not in state.workers
    assert requests_sent(state) == [(b"w2", [b"c1", b"", b"a"])] and state.rejected == 1


@pytest.mark.parametrize("message", [
    command(b"stranger", HEARTBEAT),
    reply(b"stranger", b"x"),
    command(b"stranger", REQUEST, b"c1", b"", b"x"),
    command(b"stranger", b"\x09"),
    ready(b"stranger", b"mmi.service"),
    ready(b"stranger", b""),
    command(b"stranger", READY),
    command(b"stranger", READY, b"s", b"extra"),
])
def test_an_unknown_worker_or_a_bad_registration_gets_disconnect_and_is_counted(message):
    state = broker()
    state.on_message(message, 0.0)
    assert disconnected(state) == [b"stranger"] and state.rejected == 1
    assert not state.workers and not state.services
    assert state.notes[-1][0] == "reject"


@pytest.mark.parametrize("message", [
    command(b"w1", HEARTBEAT, b"extra"),
    command(b"w1", REQUEST, b"c1", b"", b"x"),
    reply(b"w1", b"x"),  # it holds nothing
    command(b"w1", REPLY, b"c1"),
    command(b"w1", DISCONNECT, b"extra"),
    [b"w1", b"", MDPW],
])
def test_a_registered_worker_out_of_order_is_disconnected_and_forgotten(message):
    state = broker((b"w1", b"s"))
    state.on_message(message, 0.1)
    assert disconnected(state) == [b"w1"] and not state.workers and state.rejected == 1


def test_a_reply_for_another_client_than_the_one_held_is_a_protocol_error():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"a", client=b"c1"), 0.0)
    requests_sent(state)
    state.on_message(reply(b"w1", b"a", client=b"c9"), 0.1)
    assert not to_clients(state) and disconnected(state) == [b"w1"]
    assert requests_sent(state) == [(b"w2", [b"c1", b"", b"a"])]


@pytest.mark.parametrize("message", [
    [], [b"c1"], [b"c1", b""], [b"c1", b"x", MDPC, b"s"], [b"c1", b"", b"MDPC02", b"s"],
    [b"c1", b"", MDPC],
])
def test_malformed_messages_are_counted_never_raise_and_get_no_answer(message):
    state = broker((b"w1", b"s"))
    state.on_message(message, 0.1)
    assert state.rejected == 1 and not state.outbox and b"w1" in state.workers


def test_an_unreachable_worker_is_forgotten_and_its_request_redispatched_at_once():
    state = broker((b"w1", b"s"), (b"w2", b"s"))
    state.on_message(ask(b"s", b"a"), 0.0)
    requests_sent(state)
    state.peer_unreachable(b"w1", 0.1)
    assert requests_sent(state) == [(b"w2", [b"c1", b"", b"a"])]
    assert disconnected(state) == [] and state.unreachable == 1
    state.peer_unreachable(b"c1", 0.2)  # a client gone: its reply is simply lost
    assert state.unreachable == 2 and b"w2" in state.workers


# -- request expiry ------------------------------------------------------------------------
def test_queued_requests_expire_after_the_configured_time_and_only_while_queued():
    state = broker((b"w1", b"s"), request_expiry=2.0)
    state.on_message(ask(b"s", b"held"), 0.0)
    state.on_message(ask(b"s", b"queued"), 0.5)
    state.on_message(ask(b"nobody", b"x"), 1.0)
    state.on_message(command(b"w1", HEARTBEAT), 2.4)
    assert state.next_wakeup() == 2.5, "woken for the first expiry, before the heartbeat"
    state.tick(2.49)
    assert state.expired == 0
    state.tick(2.5)
    assert state.expired == 1 and [r.body for r in state.services[b"s"].requests] == []
    state.tick(3.0)
    assert state.expired == 2 and b"nobody" not in state.services, "a forgotten name"
    assert state.workers[b"w1"].request.body == [b"held"], "a held request never expires"
    assert [k for k, _ in state.notes].count("expire") == 2


def test_without_request_expiry_a_request_waits_for_a_worker_the_service_has():
    state = broker((b"w1", b"s"), max_busy=2000.0)  # the work may take 1000 s
    state.on_message(ask(b"s", b"first"), 0.0)  # w1 busy with it
    state.on_message(ask(b"s", b"x"), 0.0)
    for now in range(1, 1000):  # w1 keeps heartbeating while it works
        state.on_message(command(b"w1", HEARTBEAT), float(now))
    state.on_message(reply(b"w1", b"first"), 1000.0)
    assert requests_sent(state)[-1] == (b"w1", [b"c1", b"", b"x"])
    assert state.expired == 0


def test_a_request_to_a_service_nobody_offers_expires_by_default():
    state = broker(unoffered_expiry=10.0)
    state.on_message(ask(b"nobody", b"x"), 0.0)
    state.tick(9.9)
    assert state.expired == 0 and state.queued == 1
    state.tick(10.0)
    assert state.expired == 1 and state.queued == 0 and not state.queued_by


def test_one_client_cannot_take_every_queue_slot():
    state = broker(max_queued=100, max_queued_per_client=10)
    for n in range(15):
        state.on_message(ask(b"s", b"%d" % n, client=b"greedy"), 0.0)
    assert state.queued_by[b"greedy"] == 10 and state.rejected == 5
    state.on_message(ask(b"s", b"mine", client=b"other"), 0.0)
    state.on_message(ready(b"w1", b"s"), 0.0)
    assert state.queued_by[b"greedy"] == 9, "one went to w1: the client may queue one more"


def test_requests_to_services_nobody_offers_leave_room_for_live_ones():
    state = broker((b"w1", b"live"), max_queued=100, max_queued_per_client=1000)
    for n in range(120):
        state.on_message(ask(b"nobody-%d" % n, b"x", client=b"c%d" % n), 0.0)
    assert state.queued == 50 and state.rejected == 70
    for n in range(40):
        state.on_message(ask(b"live", b"%d" % n, client=b"d%d" % n), 0.0)
    assert state.rejected == 70, "live services still have room"


def test_a_requeued_request_waits_its_full_expiry_again():
    state = broker((b"w1", b"s"), request_expiry=1.0)
    state.on_message(ask(b"s", b"a"), 0.0)
    state.tick(3.0)  # w1 purged at 3.0: "a" queued again until 4.0
    assert state.queued == 1 and state.expired == 0
    state.tick(3.99)
    assert state.expired == 0
    state.tick(4.0)
    assert state.expired == 1 and state.queued == 0


def test_two_alike_requests_are_two_and_the_queued_one_expires():
    """Expiry takes the request that is due out of its line, not one equal to it."""
    state = broker((b"w1", b"s"), request_expiry=1.0)
    state.on_message(ask(b"s", b"same"), 0.0)  # given to w1
    state.on_message(ask(b"s", b"same"), 0.5)  # alike, queued
    state.on_message(command(b"w1", HEARTBEAT), 1.4)
    state.tick(1.5)
    assert state.expired == 1 and state.queued == 0
    assert state.workers[b"w1"].request.body == [b"same"], "the held one stays held"


def test_a_tick_costs_what_is_due_not_what_is_queued():
    """8,000 queued requests and a tick with nothing due: no request is looked at (the
    broker once rescanned every one each tick: a core at 2,000 requests/s)."""
    state = broker(request_expiry=60.0)
    for n in range(8000):
        state.on_message(ask(b"absent", str(n).encode()), n / 1000)
    looked_at = []
    requests = state.services[b"absent"].requests
    state.services[b"absent"].requests = LoggingDeque(requests, looked_at)
    for n in range(100):
        state.on_message(ask(b"other", b"x"), 8.0 + n / 1000)
    state.tick(60.0005)  # the first one is due: one expired
    assert state.expired == 1 and looked_at == ["remove"]


class LoggingDeque(deque):
    def __init__(self, items, log):
        super().__init__(items)
        self.log = log

    def __iter__(self):
        self.log.append("iterate")
        return super().__iter__()

    def remove(self, item):
        self.log.append("remove")
        super().remove(item)


def test_the_queue_is_bounded():
    state = broker((b"w1", b"s"), max_queued=2)
    for n in range(4):  # the first goes to w1
        state.on_message(ask(b"s", str(n).encode(), client=b"c%d" % n), 0.0)
    assert state.queued == 2 and state.rejected == 1


# -- bytes held, and a worker held busy --------------------------------------------------------
MIB = 1 << 20


def test_bytes_held_for_waiting_requests_are_bounded_per_client_and_in_all():
    """The issue's probe: 100 requests of 8 x 1 MiB for a service nobody offers, one client.
    With the defaults (32 MiB per client, 256 MiB in all) 4 are held, 96 refused; other
    clients still get in, up to the total."""
    state = broker()
    body = [b"\0" * MIB] * 8  # one bytes object eight times: the test holds 1 MiB
    for _ in range(100):
        state.on_message(ask(b"nobody", *body), 0.0)
    assert (state.queued, state.held.total, state.held.refused) == (4, 32 * MIB, 96)
    assert state.rejected == 96 and "per client" in state.notes[-1][1]
    for n in range(10):  # seven clients fill the other 224 MiB; the rest is refused
        state.on_message(ask(b"nobody", *body, client=b"other%d" % n), 0.0)
        state.on_message(ask(b"nobody", *body, client=b"other%d" % n), 0.0)
        state.on_message(ask(b"nobody", *body, client=b"other%d" % n), 0.0)
        state.on_message(ask(b"nobody", *body, client=b"other%d" % n), 0.0)
    assert state.held.total == 256 * MIB and state.held.refused == 96 + 12
    assert "over the 268435456-byte limit" in state.notes[-1][1]
    state.tick(10.0)  # nobody offers it: they expire, and their bytes are free again
    assert (state.held.total, dict(state.held.by_client), state.queued) == (0, {}, 0)


def test_bytes_are_held_only_while_a_request_waits():
    state = broker(max_queued_bytes_per_client=10)
    state.on_message(ask(b"s", b"x" * 6), 0.0)
    state.on_message(ask(b"s", b"y" * 6), 0.0)  # 12 bytes: refused
    assert state.held.total == 6 and state.held.refused == 1
    state.on_message(ready(b"w1", b"s"), 0.1)  # given to w1: no longer waiting
    assert requests_sent(state) == [(b"w1", [b"c1", b"", b"x" * 6])]
    assert state.held.total == 0
    state.on_message(ask(b"s", b"z" * 10), 0.2)  # the client's budget is whole again
    assert state.held.total == 10
    state.tick(3.2)  # w1 silent: its request comes back in line, past the budget
    assert state.requeued == 1 and state.held.total == 16 and state.queued == 2


def test_a_worker_holding_one_request_past_max_busy_is_disconnected_the_request_dropped():
    """A worker that heartbeats but never answers: at `max_busy` after it got the request
    (not a heartbeat later), it is disconnected and the request dropped, counted, one note."""
    state = broker((b"w1", b"s"), (b"w2", b"s"), max_busy=5.0)
    state.on_message(ask(b"s", b"stuck"), 0.3)  # to w1, just after a heartbeat
    assert requests_sent(state) == [(b"w1", [b"c1", b"", b"stuck"])]
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):  # both keep heartbeating
        state.on_message(command(b"w1", HEARTBEAT), now)
        state.on_message(command(b"w2", HEARTBEAT), now)
    state.tick(5.29)
    assert state.overdue == 0 and b"w1" in state.workers
    assert state.next_wakeup() <= 5.3, "it would be looked at late"
    state.tick(5.3)
    assert state.overdue == 1 and b"w1" not in state.workers
    assert disconnected(state) == [b"w1"]
    assert [n for n in state.notes if n[0] == "overdue"] == [
        ("overdue", "w1 held stuck for over 5 s: request dropped, worker disconnected")]
    assert requests_sent(state) == [] and state.queued == 0, "dropped, not given to w2"
    state.on_message(ready(b"w1", b"s"), 5.4)  # READY again: welcome
    state.on_message(ask(b"s", b"next"), 5.5)
    assert [w for w, _ in requests_sent(state)] == [b"w2"]


def test_a_ten_second_request_is_answered_under_the_default_max_busy():
    state = broker((b"w1", b"s"))
    assert state.max_busy == 60.0
    state.on_message(ask(b"s", b"slow"), 0.0)
    for now in range(1, 11):
        state.on_message(command(b"w1", HEARTBEAT), float(now))
    state.on_message(reply(b"w1", b"slow"), 10.0)
    assert to_clients(state)[-1] == [b"c1", b"", MDPC, b"s", b"slow"] and state.overdue == 0


def test_the_checks_heap_grows_with_the_workers_not_with_the_requests():
    state = broker((b"w1", b"s"), max_busy=1.0)
    for n in range(1000):
        now = n * 0.001
        state.on_message(ask(b"s", b"r"), now)
        state.on_message(reply(b"w1", b"r"), now)
    assert len(state._worker_checks) <= 2


# -- MMI -----------------------------------------------------------------------------------
def mmi(state, name: bytes, service: bytes = b"mmi.service", now: float = 0.0) -> bytes:
    state.outbox.clear()
    state.on_message(ask(service, name), now)
    (answer,) = to_clients(state)
    assert answer[:4] == [b"c1", b"", MDPC, service]
    return answer[4]


def test_mmi_service_is_200_only_while_a_worker_offers_it():
    state = broker()
    state.on_message(ask(b"echo", b"waiting"), 0.0)
    assert mmi(state, b"echo") == b"404", "requested is not offered"
    state.on_message(ready(b"w1", b"echo"), 0.1)
    assert state.workers[b"w1"].request is not None
    assert mmi(state, b"echo") == b"200", "busy, it still offers the service"
    state.tick(3.1)
    assert mmi(state, b"echo", now=3.1) == b"404", "its only worker expired"


def test_other_mmi_services_answer_501_and_mmi_is_never_queued():
    state = broker()
    assert mmi(state, b"x", b"mmi.discovery") == b"501"
    assert mmi(state, b"x", b"mmi.") == b"501"
    assert not state.services and state.mmi_answered == 2
    state.outbox.clear()
    state.on_message(ask(b"mmi.service"), 0.0)  # no name at all: nobody offers it
    assert to_clients(state)[0][4] == b"404"


# -- the Guide's mdbroker.py, modelled ---------------------------------------------------
def guide(*workers):
    state = GuideMajordomoState(heartbeat_interval=1.0, liveness=3)
    for worker, service in workers:
        state.on_message(ready(worker, service), 0.0)
    return state


def test_the_guides_mmi_says_200_for_a_service_only_ever_requested():
    state = guide()
    state.on_message(ask(b"ghost", b"x"), 0.0)
    state.on_message(ask(b"mmi.service", b"ghost"), 0.1)
    assert state.outbox[-1] == [b"c1", b"", MDPC, b"mmi.service", b"200"]
    assert mmi(broker(), b"ghost") == b"404"


def test_the_guides_broker_crashes_at_the_purge_after_an_idle_workers_disconnect():
    state = guide((b"w1", b"s"))
    state.on_message(command(b"w1", DISCONNECT), 0.5)  # fine so far
    with pytest.raises(ValueError):
        state.tick(3.1)  # w1 "expires" on the broker's waiting list


def test_the_guides_broker_loses_a_dead_busy_workers_request_and_keeps_requests_forever():
    state = guide((b"w1", b"s"))
    state.on_message(ask(b"s", b"lost"), 0.0)
    state.on_message(ask(b"s", b"forever", client=b"c2"), 0.0)
    state.outbox.clear()
    for now in range(1, 100):
        state.tick(float(now))
    assert b"w1" in state.workers, "the dead busy worker is never purged"
    assert not state.outbox, "no heartbeat to it either"
    state.on_message(ready(b"w2", b"s"), 100.0)
    sent = requests_sent(state)
    assert [body for _, body in sent] == [[b"c2", b"", b"forever"]], "'lost' is gone"


def test_the_guides_broker_dies_on_a_malformed_frame():
    state = guide()
    with pytest.raises((AssertionError, IndexError)):
        state.on_message([b"c1", b"not empty", MDPC, b"s", b"x"], 0.0)
    with pytest.raises((AssertionError, IndexError)):
        state.on_message([b"c1", b""], 0.0)


# -- random event sequences ----------------------------------------------------------------
WORKERS = [b"w1", b"w2", b"w3", b"w4"]
SERVICES = [b"a", b"b", b"mmi.x"]

events = st.one_of(
    st.tuples(st.just("ready"), st.sampled_from(WORKERS), st.sampled_from(SERVICES),
              st.sampled_from([1, 2])),
    st.tuples(st.just("partial"), st.sampled_from(WORKERS)),
    st.tuples(st.just("heartbeat"), st.sampled_from(WORKERS)),
    st.tuples(st.just("reply"), st.sampled_from(WORKERS), st.booleans()),
    st.tuples(st.just("disconnect"), st.sampled_from(WORKERS)),
    st.tuples(st.just("unreachable"), st.sampled_from(WORKERS)),
    st.tuples(st.just("request"), st.sampled_from(SERVICES[:2]) | st.just(b"nobody"),
              st.sampled_from([1, 2])),
    st.tuples(st.just("mmi"), st.sampled_from(SERVICES + [b"nobody"])),
    st.tuples(st.just("wait"), st.floats(0.0, 2.0)),
    st.tuples(st.just("garbage"), st.lists(st.binary(max_size=8), max_size=6).filter(
        lambda frames: MDPC not in frames and MDPC2 not in frames)),  # else a real request
)


def check_invariants(state: BrokerState, now: float, issued: set, answered: set) -> None:
    held = [w.request for w in state.workers.values() if w.request is not None]
    queued = [r for s in state.services.values() for r in s.requests]
    ids = [r.body[0] for r in held + queued]
    assert len(ids) == len(set(ids)), "a request in two places (two workers, or held and queued)"
    assert not answered & set(ids), "an answered request still held or queued"
    assert len(issued) == (len(answered) + len(ids) + state.expired + state.held.refused
                           + state.overdue), "a request lost"
    assert state.queued == len(queued)
    assert state.held.total == sum(r.size for r in queued), "bytes held miscounted"
    assert state.held.by_client == Counter(
        {c: n for c in {r.client for r in queued}
         if (n := sum(r.size for r in queued if r.client == c))}), "bytes per client miscounted"
    # a request its worker lost comes back without asking: at most one per worker
    assert state.held.total <= state.held.limit + 2 * len(WORKERS), "over the byte budget"
    for worker in state.workers.values():
        assert worker.expires_at > now, "an expired worker is still registered"
        entry = state.services[worker.service]
        assert (worker.identity in entry.waiting) == (worker.request is None)
    for name, entry in state.services.items():
        registered = sum(w.service == name for w in state.workers.values())
        assert entry.workers == registered
        assert state.offers(name) == (registered > 0), "MMI disagrees with the registry"
        assert entry.workers or entry.requests, "an unused service kept"
        assert not (entry.waiting and entry.requests), "a waiting worker beside a request"


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=60), st.sampled_from([None, 1.5]))
def test_random_event_sequences_keep_every_request_once_and_mmi_true(script, expiry):
    """...also within a byte budget small enough to refuse, and giving up on workers that
    hold a request longer than `max_busy` (heartbeats and all)."""
    state = BrokerState(heartbeat_interval=1.0, liveness=3, request_expiry=expiry,
                        max_queued_bytes=2, max_queued_bytes_per_client=1, max_busy=0.75)
    now, serial = 0.0, 0
    issued, answered = set(), set()
    holds: dict[bytes, list[bytes]] = {}  # what each worker last got, as the worker sees it
    speaks: dict[bytes, int] = {}  # the MDP version each worker last said READY in

    def say(worker, code, *rest):  # in the worker's version; the codes are 0.1's
        if speaks.get(worker, 1) == 1:
            state.on_message(command(worker, code, *rest), now)
        else:
            code2 = {READY: W2_READY, REPLY: W2_FINAL, HEARTBEAT: W2_HEARTBEAT,
                     DISCONNECT: W2_DISCONNECT, b"partial": W2_PARTIAL}[code]
            state.on_message(command2(worker, code2, *rest), now)

    for event in script:
        kind = event[0]
        if kind == "ready":
            speaks[event[1]] = event[3]
            say(event[1], READY, event[2])
        elif kind == "heartbeat":
            say(event[1], HEARTBEAT)
        elif kind == "partial":
            if event[1] in holds:
                say(event[1], b"partial", *holds[event[1]][:2], b"part")
        elif kind == "reply":
            got = holds.pop(event[1], None)
            if got is not None and event[2]:
                say(event[1], REPLY, *got)
            else:
                say(event[1], REPLY, b"nobody", b"", b"x")
        elif kind == "disconnect":
            say(event[1], DISCONNECT)
        elif kind == "unreachable":
            state.peer_unreachable(event[1], now)
        elif kind == "request":
            serial += 1
            body = str(serial).encode()
            issued.add(body)
            asking = ask if event[2] == 1 else ask2
            state.on_message(asking(event[1], body, client=b"c" + body[-1:]), now)
        elif kind == "mmi":
            state.on_message(ask(b"mmi.service", event[1]), now)
            offered = state.outbox[-1][4] == b"200"
            assert offered == any(w.service == event[1] for w in state.workers.values())
        elif kind == "wait":
            now += event[1]
            state.tick(now)
        else:
            state.on_message(event[1], now)
        for message in state.outbox:
            if message[2:4] in ([MDPW, REQUEST], [MDPW2, W2_REQUEST]):
                holds[message[0]] = message[4:]
            elif message[2:4] == [MDPC2, C2_PARTIAL]:
                assert message[4] == b"part" and message[0] in {b"c" + i[-1:] for i in issued}
            elif (message[2:3] == [MDPC] and not message[3].startswith(b"mmi.")
                  or message[2:4] == [MDPC2, C2_FINAL]):
                assert message[4] not in answered, "answered twice"
                assert message[0] == b"c" + message[4][-1:], "a reply to the wrong client"
                answered.add(message[4])
        state.outbox.clear()
        check_invariants(state, now, issued, answered)


# -- fuzzing every frame -------------------------------------------------------------------
def frame_from(choices):
    return st.one_of(st.sampled_from(choices), st.binary(max_size=12))


fuzzed = st.lists(st.one_of(
    # a worker-looking message: every frame either a meaningful value or random bytes
    st.tuples(frame_from(WORKERS), frame_from([b""]), frame_from([MDPW, MDPC, MDPW2, MDPC2]),
              frame_from([READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT, b"\x00", b"\x06"]))
    .flatmap(lambda head: st.lists(frame_from([b"", b"a", b"mmi.service", b"c1"]), max_size=5)
             .map(lambda rest: [*head, *rest])),
    st.lists(st.binary(max_size=40), max_size=8),  # anything at all
), max_size=40)


@settings(max_examples=400, deadline=None)
@given(fuzzed)
def test_fuzzed_frames_never_raise_and_a_correct_request_is_answered_after(messages):
    state = broker((b"w1", b"a"))
    for n, message in enumerate(messages):
        state.on_message(list(message), n * 0.01)
    now = len(messages) * 0.01
    state.outbox.clear()
    state.on_message(ready(b"fresh", b"check"), now)
    state.on_message(ask(b"check", b"final", client=b"cz"), now)
    (request,) = requests_sent(state)
    assert request == (b"fresh", [b"cz", b"", b"final"])
    state.on_message(reply(b"fresh", b"final", client=b"cz"), now)
    assert to_clients(state) == [[b"cz", b"", MDPC, b"check", b"final"]]


# -- what a dashboard shows ----------------------------------------------------------------
def test_the_snapshot_per_service_shows_its_workers_and_counts_and_renders():
    from pirate_helpers.majordomo import MajordomoBroker
    from pirate_helpers.views.widgets import render

    broker = MajordomoBroker()  # never started: only its snapshot of a fake-clock state
    broker.state = state = BrokerState(heartbeat_interval=1.0, liveness=3)
    for worker, service in ((b"e1", b"echo"), (b"e2", b"echo"), (b"u1", b"upper")):
        state.on_message(ready(worker, service), 0.0)
    state.on_message(ask(b"echo", b"a"), 0.1)  # e1 busy
    state.on_message(ask(b"upper", b"b"), 0.1)
    state.on_message(reply(b"u1", b"B"), 0.2)
    state.on_message(command(b"e1", HEARTBEAT), 2.0)
    state.on_message(command(b"u1", HEARTBEAT), 2.0)
    state.tick(3.0)  # e2 expired
    state.on_message(ask(b"echo", b"c"), 3.0)  # waits: e1 is busy
    echo = broker.snapshot("echo")
    assert echo == {"workers": {"e1": "busy", "e2": "expired"},
                    "counts": {"in flight": 1, "waiting": 1, "answered": 0, "requeued": 0,
                               "unreachable": 0, "expired requests": 0, "overdue": 0,
                               "rejected": 0}}
    assert broker.snapshot("upper")["workers"] == {"u1": "ready"}
    assert broker.snapshot("upper")["counts"]["answered"] == 1
    assert set(broker.snapshot()["workers"]) == {"e1", "e2", "u1"}
    assert "e2: expired" in render(echo, "service echo")


# -- MDP/0.2 (RFC 18, majortomo's empty first frame) beside 0.1 -----------------------------
def test_a_02_worker_serves_a_01_client_and_a_01_worker_a_02_client():
    state = broker()
    state.on_message(command2(b"new", W2_READY, b"echo"), 0.0)
    state.on_message(ready(b"old", b"echo"), 0.0)
    state.on_message(ask(b"echo", b"from 0.1", client=b"c1"), 0.1)
    state.on_message(ask2(b"echo", b"from 0.2", client=b"c2"), 0.1)
    assert state.outbox == [[b"new", b"", MDPW2, W2_REQUEST, b"c1", b"", b"from 0.1"],
                            [b"old", b"", MDPW, REQUEST, b"c2", b"", b"from 0.2"]]
    state.outbox.clear()
    state.on_message(command2(b"new", W2_FINAL, b"c1", b"", b"A"), 0.2)
    state.on_message(command(b"old", REPLY, b"c2", b"", b"B"), 0.2)
    assert state.outbox == [[b"c1", b"", MDPC, b"echo", b"A"],
                            [b"c2", b"", MDPC2, C2_FINAL, b"B"]]
    assert state.answered == {b"echo": 2} and state.rejected == 0


def test_partial_replies_stream_to_a_02_client_and_the_worker_stays_busy():
    state = broker()
    state.on_message(command2(b"w", W2_READY, b"stream"), 0.0)
    state.on_message(ask2(b"stream", b"go"), 0.0)
    state.outbox.clear()
    state.on_message(command2(b"w", W2_PARTIAL, b"c1", b"", b"1"), 0.1)
    state.on_message(command2(b"w", W2_PARTIAL, b"c1", b"", b"2"), 0.2)
    assert state.workers[b"w"].request is not None, "still busy"
    state.on_message(command2(b"w", W2_FINAL, b"c1", b"", b"3"), 0.3)
    assert state.outbox == [[b"c1", b"", MDPC2, C2_PARTIAL, b"1"],
                            [b"c1", b"", MDPC2, C2_PARTIAL, b"2"],
                            [b"c1", b"", MDPC2, C2_FINAL, b"3"]]
    assert state.workers[b"w"].request is None and state.answered[b"stream"] == 1


def test_a_01_client_gets_only_the_final_part_and_the_partials_are_counted():
    state = broker()
    state.on_message(command2(b"w", W2_READY, b"stream"), 0.0)
    state.on_message(ask(b"stream", b"go"), 0.0)
    state.outbox.clear()
    state.on_message(command2(b"w", W2_PARTIAL, b"c1", b"", b"1"), 0.1)
    state.on_message(command2(b"w", W2_FINAL, b"c1", b"", b"2"), 0.2)
    assert state.outbox == [[b"c1", b"", MDPC, b"stream", b"2"]]
    assert state.partials_dropped == 1


def test_02_heartbeats_disconnects_and_mmi_speak_the_peers_version():
    state = broker()
    state.on_message(command2(b"w", W2_READY, b"echo"), 0.0)
    state.tick(1.0)
    assert state.outbox == [[b"w", b"", MDPW2, W2_HEARTBEAT]]
    state.outbox.clear()
    state.on_message(ask2(b"mmi.service", b"echo"), 1.0)
    assert state.outbox == [[b"c1", b"", MDPC2, C2_FINAL, b"200"]]
    state.outbox.clear()
    state.on_message(command2(b"w", W2_READY, b"echo"), 1.1)  # a second READY
    assert state.outbox == [[b"w", b"", MDPW2, W2_DISCONNECT]] and not state.workers
    state.outbox.clear()
    state.on_message(command2(b"x", W2_HEARTBEAT), 1.2)  # unknown
    state.on_message(command2(b"y", b"\x09"), 1.2)  # no such command
    state.on_message([b"z", b"", MDPW2], 1.2)  # no command at all
    assert state.outbox == [[peer, b"", MDPW2, W2_DISCONNECT] for peer in (b"x", b"y", b"z")]
    state.on_message(command2(b"v", W2_READY, b"echo"), 1.3)
    state.on_message(command2(b"v", W2_DISCONNECT), 1.4)
    assert not state.workers


def test_a_worker_that_switches_versions_is_disconnected_in_the_one_it_registered_with():
    state = broker((b"w", b"echo"))
    state.on_message(command2(b"w", W2_HEARTBEAT), 0.1)
    assert disconnected(state) == [b"w"] and not state.workers and state.rejected == 1


@pytest.mark.parametrize("message", [[b"c", b"", MDPC2], [b"c", b"", MDPC2, C2_FINAL, b"s"],
                                     [b"c", b"", MDPC2, C2_REQUEST]])
def test_a_02_client_message_that_is_no_request_is_counted_and_dropped(message):
    state = broker()
    state.on_message(message, 0.0)
    assert state.rejected == 1 and not state.outbox and not state.services
