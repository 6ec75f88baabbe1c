"""Titanic (RFC 9): the dispatcher on a fake clock, the SQLite store, TSP answers."""

import itertools
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pirate_helpers.majordomo import MDPC
from pirate_helpers.titanic import (
    CLOSE_SERVICE,
    MAX_BODY_FRAMES,
    REPLY_SERVICE,
    REQUEST_SERVICE,
    Dispatcher,
    ReplyCache,
    StoreError,
    TitanicStore,
    answer,
    is_uuid,
    pack,
    status,
    unpack,
)

MMI_OK = [MDPC, b"mmi.service", b"200"]
MMI_NO = [MDPC, b"mmi.service", b"404"]


def uuids():
    numbers = itertools.count(1)
    return lambda: f"{next(numbers):032x}"


@pytest.fixture
def store(tmp_path):
    s = TitanicStore(str(tmp_path / "titanic.db"))
    yield s
    s.close()


def test_a_request_is_sent_only_after_mmi_says_200_and_done_on_its_reply():
    d = Dispatcher(timeout=1.0, retry_after=0.5)
    d.add("a", b"echo")
    step = d.next_step(0.0)
    assert (step.action, step.uuid, step.service) == ("ask", "a", b"echo")
    assert d.next_step(0.1) is None, "one thing at a time"
    assert d.on_reply(MMI_NO, 0.1) is None and d.refused == 1
    assert d.next_step(0.5) is None and d.next_wakeup(0.5) == pytest.approx(0.6)
    assert d.next_step(0.6).action == "ask"
    assert d.on_reply(MMI_OK, 0.7).action == "send"
    assert d.on_reply([MDPC, b"other", b"x"], 0.8) is None, "not the service asked"
    done = d.on_reply([MDPC, b"echo", b"x"], 0.9)
    assert done.action == "done" and done.uuid == "a" and d.waiting() == 0


def test_no_answer_within_the_timeout_means_the_same_request_again_later():
    d = Dispatcher(timeout=1.0, retry_after=0.5)
    d.add("a", b"echo")
    d.next_step(0.0)
    d.on_reply(MMI_OK, 0.1)
    assert d.next_step(1.09) is None
    assert d.next_step(1.1).action == "timeout"
    assert d.next_step(1.5) is None
    assert (d.next_step(1.6).action, d.timeouts) == ("ask", 1)


def test_a_service_nobody_offers_does_not_hold_up_another():
    d = Dispatcher(timeout=1.0, retry_after=5.0)
    d.add("a", b"print")
    d.add("b", b"echo")
    assert d.next_step(0.0).uuid == "a"
    d.on_reply(MMI_NO, 0.0)
    assert d.next_step(0.0).uuid == "b"


events = st.lists(st.tuples(
    st.sampled_from(["add", "close", "mmi-ok", "mmi-no", "reply", "wait"]),
    st.integers(0, 5), st.sampled_from([b"echo", b"print"]), st.floats(0, 2)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_any_sequence_never_sends_unasked_closed_or_two_at_once(sequence):
    """Whatever arrives: a send follows MMI's 200 for that very request, a closed request
    is never sent, one thing is in flight at most; with MMI always 200 every request ends."""
    d = Dispatcher(timeout=1.0, retry_after=0.3)
    now, open_ = 0.0, {}
    for kind, n, service, dt in sequence:
        uuid = f"u{n}"
        if kind == "add" and uuid not in open_:
            open_[uuid] = service
            d.add(uuid, service)
        elif kind == "close":
            open_.pop(uuid, None)
            d.remove(uuid)
        elif kind == "wait":
            now += dt
        asked = d.busy
        reply = {"mmi-ok": MMI_OK, "mmi-no": MMI_NO,
                 "reply": [MDPC, asked.service if asked else b"echo", b"r"]}.get(kind)
        step = d.on_reply(reply, now) if reply else d.next_step(now)
        if step and step.action == "send":
            assert kind == "mmi-ok" and asked.action == "ask" and asked.uuid == step.uuid
            assert step.uuid in open_
        if step and step.action == "done":
            assert asked.action == "send" and asked.uuid == step.uuid
    # then a broker that always has a worker: everything still open gets done
    for _ in range(3 * len(open_) + 5):
        step = d.next_step(now)
        while step is not None and step.action in ("ask", "send"):
            reply = MMI_OK if step.action == "ask" else [MDPC, step.service, b"r"]
            step = d.on_reply(reply, now)
        now += 1.5
    assert d.waiting() == 0


def test_the_store_keeps_requests_across_a_restart_and_close_deletes(tmp_path):
    path = str(tmp_path / "s.db")
    s = TitanicStore(path)
    make = uuids()
    first = answer(REQUEST_SERVICE, [b"echo", b"one"], s, make)[0]
    second = answer(REQUEST_SERVICE, [b"echo", b"two", b""], s, make)[0]
    assert status(first) == b"200" and is_uuid(first[1]) and status(second) == b"200"
    assert s.store_reply(first[1].decode(), [b"ONE"])
    s.close()  # a restart: a new process opens the same file
    s = TitanicStore(path)
    assert s.pending() == [(second[1].decode(), b"echo")]
    assert s.request(second[1].decode()) == (b"echo", [b"two", b""])
    assert answer(REPLY_SERVICE, [first[1]], s, make)[0] == [b"200", b"ONE"]
    assert answer(REPLY_SERVICE, [first[1]], s, make)[0] == [b"200", b"ONE"], "idempotent"
    assert answer(REPLY_SERVICE, [second[1].upper()], s, make)[0] == [b"300"]
    assert answer(CLOSE_SERVICE, [first[1]], s, make)[0] == [b"200"]
    assert answer(REPLY_SERVICE, [first[1]], s, make)[0] == [b"400"]
    assert answer(CLOSE_SERVICE, [first[1]], s, make)[0] == [b"200"], "unknown: 200 too"
    assert not s.store_reply(first[1].decode(), [b"late"]), "closed: nothing to keep"
    assert len(s) == 1
    s.close()


@pytest.mark.parametrize("service, body", [
    (REQUEST_SERVICE, []), (REQUEST_SERVICE, [b""]), (REQUEST_SERVICE, [b"mmi.service", b"x"]),
    (REQUEST_SERVICE, [b"titanic.request", b"x"]),
    (REQUEST_SERVICE, [b"echo", *[b"x"] * (MAX_BODY_FRAMES + 1)]),
    (REQUEST_SERVICE, [b"echo", b"x" * (1 << 20)]),
    (REPLY_SERVICE, []), (REPLY_SERVICE, [b"not a uuid"]), (REPLY_SERVICE, [b"g" * 32]),
    (REPLY_SERVICE, [b"a" * 32, b"extra"]), (CLOSE_SERVICE, []), (CLOSE_SERVICE, [b"\xff" * 32]),
])
def test_a_malformed_tsp_request_gets_400_never_a_crash(store, service, body):
    reply, kind, _ = answer(service, body, store, uuids())
    assert status(reply) == b"400" and kind == "reject" and len(store) == 0


def test_past_the_stated_limit_a_request_gets_500_and_a_warning(store):
    make = uuids()
    for _ in range(3):
        assert status(answer(REQUEST_SERVICE, [b"echo", b"x"], store, make, max_stored=3)[0]) \
            == b"200"
    reply, kind, detail = answer(REQUEST_SERVICE, [b"echo", b"x"], store, make, max_stored=3)
    assert status(reply) == b"500" and kind == "warning" and "store full (3" in detail


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-schema"])
def test_a_damaged_store_gets_one_clear_error(tmp_path, damage):
    path = tmp_path / "s.db"
    s = TitanicStore(str(path))
    for n in range(300):
        answer(REQUEST_SERVICE, [b"echo", b"x" * 100], s, lambda n=n: f"{n:032x}")
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version=7")
        db.commit()
        db.close()
    with pytest.raises(StoreError, match=r"s\.db: not a usable Titanic store \(.+\)"):
        TitanicStore(str(path))


def test_frames_pack_and_unpack_exactly():
    frames = [b"", b"a", b"\x00" * 5, b"xyz"]
    assert unpack(pack(frames)) == frames and unpack(pack([])) == []


def test_an_idempotent_service_answers_a_repeat_from_its_cache():
    calls = []
    service = ReplyCache(lambda body: calls.append(body) or [body[-1].upper()], max_clients=2)
    assert service([b"c1", b"1", b"a"]) == [b"A"]
    assert service([b"c1", b"1", b"a"]) == [b"A"], "a repeat: from the cache"
    assert service([b"c1", b"2", b"b"]) == [b"B"]
    service([b"c2", b"1", b"x"])
    service([b"c3", b"1", b"y"])  # c1 is the oldest of three: forgotten
    service([b"c1", b"2", b"b"])
    assert (service.executed, service.repeats, len(calls)) == (5, 1, 5)
