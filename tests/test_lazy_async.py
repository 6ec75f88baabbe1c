"""The asyncio Lazy Pirate on real sockets: drops, a crash, a restart, cancellation and
several requests in flight from one event loop. Each test runs its loop with asyncio.run."""

import asyncio
import time

import pytest

from pirate_helpers import (
    AsyncLazyPirateClient,
    ConcurrentServer,
    Faults,
    LazyServer,
    ServerUnavailable,
    Trace,
)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))  # a bound: a test never hangs


def test_echoes_every_frame_unchanged():
    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint) as client:
            return await client.request(b"a", b"", b"\x00\xff"), client

    with LazyServer() as server:
        reply, client = run(main(server.endpoint))
    assert reply == [b"a", b"", b"\x00\xff"] and client.answered == 1
    assert client.open_sockets == 0


def test_dropped_requests_are_retried_on_a_fresh_socket_and_answered():
    trace = Trace()

    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=0.2, retries=3, trace=trace) as client:
            replies = [await client.request(str(n).encode()) for n in range(1, 5)]
            return replies, client

    with LazyServer(faults=Faults(drop={2, 3}), trace=trace) as server:
        replies, client = run(main(server.endpoint))
    assert replies == [[b"1"], [b"2"], [b"3"], [b"4"]]
    assert server.dropped == 2 and client.timeouts == 2 and client.sent == 6
    assert trace.count("retry") == 2 and trace.count("give-up") == 0


def test_gives_up_after_its_tries_within_timeout_times_retries():
    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=0.2, retries=3) as client:
            assert await client.request(b"1") == [b"1"]
            started = time.monotonic()
            with pytest.raises(ServerUnavailable) as caught:
                await client.request(b"2")
            return time.monotonic() - started, caught.value, client

    with LazyServer(faults=Faults(crash_after=1)) as server:
        waited, error, client = run(main(server.endpoint))
        assert server.crashed
    assert 0.6 <= waited < 0.6 + 0.5
    assert error.tries == 3 and "3 tries" in str(error)
    assert client.gave_up == 1 and client.open_sockets == 0


def test_rides_out_a_crash_when_the_server_restarts():
    trace = Trace()
    first = LazyServer("server", faults=Faults(crash_after=1), trace=trace).start()

    async def main():
        async with AsyncLazyPirateClient(first.endpoint, timeout=0.2, retries=10,
                                         trace=trace) as client:
            assert await client.request(b"1") == [b"1"]
            pending = asyncio.create_task(client.request(b"2"))  # lost with the server
            assert await asyncio.to_thread(first.join, 5) and first.crashed
            first.stop()
            second = LazyServer("server", bind=first.endpoint, trace=trace).start()
            try:
                return await pending, client
            finally:
                second.stop()

    reply, client = run(main())
    assert reply == [b"2"] and client.timeouts >= 1 and client.gave_up == 0


def test_a_cancelled_request_leaves_no_socket_and_the_next_reply_is_its_own():
    async def main(server):
        async with AsyncLazyPirateClient(server.endpoint, timeout=5) as client:
            pending = asyncio.create_task(client.request(b"1"))
            # cancel mid-receive: the server has the request and is working on it
            has_it = lambda: server.trace.count("recv", "server") == 1  # noqa: E731
            assert await asyncio.to_thread(server.trace.wait_for, has_it, 5)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert client.open_sockets == 0 and client.cancelled == 1
            # the late reply to "1" must never be taken for "2"
            return await client.request(b"2"), client

    with LazyServer(work_s=0.2) as server:
        reply, client = run(main(server))
        assert server.trace.wait_for(lambda: server.answered == 2, 5)
    assert reply == [b"2"] and client.mismatched == 0


def test_a_wait_for_timeout_around_a_request_cancels_it_cleanly():
    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=5) as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request(b"slow"), 0.05)
            assert client.open_sockets == 0
            return await client.request(b"next")

    with LazyServer(work_s=0.2) as server:
        assert run(main(server.endpoint)) == [b"next"]


def test_concurrent_requests_from_one_loop_each_retry_on_their_own_socket():
    trace = Trace()

    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=0.2, retries=3, trace=trace) as client:
            bodies = [str(n).encode() for n in range(1, 6)]
            replies = await asyncio.gather(*(client.request(body) for body in bodies))
            return bodies, replies, client

    # the server's 2nd and 4th requests are dropped, whichever requests they turn out to be;
    # a ROUTER server holds them all at once, so a drop loses exactly one (a REP loses more)
    with ConcurrentServer(faults=Faults(drop={2, 4}), work_s=0.05, trace=trace) as server:
        started = time.monotonic()
        bodies, replies, client = run(main(server.endpoint))
        elapsed = time.monotonic() - started
    assert replies == [[body] for body in bodies], "each reply matches its own request"
    assert client.timeouts == 2 and client.sent == 7 and client.mismatched == 0
    assert client.most_open == 5, "all five in flight at once, one socket each"
    retried = {event.detail.split(":")[0] for event in trace.of(kind="retry")}
    assert len(retried) == 2, "two different requests retried, each on its own"
    assert elapsed < 5 * 0.2, "in flight together, not one after another"


def test_the_arguments_are_checked():
    with pytest.raises(ValueError):
        AsyncLazyPirateClient("tcp://127.0.0.1:9", retries=0)
    with pytest.raises(ValueError):
        AsyncLazyPirateClient("tcp://127.0.0.1:9", timeout=0)


def test_the_concurrent_server_drops_crashes_and_delays_only_what_it_is_told():
    async def main(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=0.3, retries=1) as client:
            return await asyncio.gather(*(client.request(b"%d" % n) for n in (1, 2, 3)),
                                        return_exceptions=True)

    with ConcurrentServer(faults=Faults(drop={1})) as server:
        outcomes = run(main(server.endpoint))
        assert sum(isinstance(o, ServerUnavailable) for o in outcomes) == 1
        assert server.answered == 2 and server.dropped == 1
    with ConcurrentServer(faults=Faults(freeze_at=1, freeze_s=1.0)) as server:
        outcomes = run(main(server.endpoint))  # the first one is late, the others are not
        assert sum(isinstance(o, ServerUnavailable) for o in outcomes) == 1
    with ConcurrentServer(faults=Faults(crash_after=0)) as server:
        outcomes = run(main(server.endpoint))
        assert server.join(2) and server.crashed
        assert all(isinstance(o, ServerUnavailable) for o in outcomes)


def test_the_concurrent_server_echoes_only_requests_and_survives_random_messages():
    import zmq
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pirate_helpers.endpoints import guard

    frames = st.lists(st.one_of(st.just(b""), st.binary(max_size=16),
                                st.builds(lambda n: b"x" * n, st.integers(1000, 50_000))),
                      min_size=1, max_size=5)

    async def answered(endpoint):
        async with AsyncLazyPirateClient(endpoint, timeout=0.5, retries=4) as client:
            return await client.request(b"still here") == [b"still here"]

    not_requests = []
    with ConcurrentServer("fuzz-server") as server, zmq.Context() as ctx:
        ctx.linger = 0

        @settings(max_examples=20, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(sent=st.lists(frames, min_size=1, max_size=4))
        def probe(sent):
            hostile = guard(ctx.socket(zmq.DEALER))
            hostile.connect(server.endpoint)
            for message in sent:
                hostile.send_multipart(message)
            echoed = [m for m in sent if len(m) >= 2 and m[0] == b""]
            not_requests.extend(m for m in sent if m not in echoed)
            for _ in echoed:  # a DEALER's b"" | body... is a request: it is echoed
                assert hostile.poll(2000)
                hostile.recv_multipart()
            hostile.send_multipart([b"", b"end"])  # in order: all before it was handled
            assert hostile.poll(2000) and hostile.recv_multipart() == [b"", b"end"]
            assert not hostile.poll(20), "nothing but requests is echoed"
            hostile.close()
            assert run(answered(server.endpoint))

        probe()
        assert server.running and server.rejected == len(not_requests)
