"""Lazy Pirate on real sockets, with faults injected on purpose."""

import time

import pytest
import zmq

from pirate_helpers import (
    Actor,
    Faults,
    LazyClient,
    LazyPirateClient,
    LazyServer,
    ServerUnavailable,
    Trace,
)
from pirate_helpers.endpoints import bind


def test_echoes_every_frame_unchanged():
    with LazyServer() as server, LazyPirateClient(server.endpoint) as client:
        assert client.request(b"a", b"", b"\x00\xff") == [b"a", b"", b"\x00\xff"]
        assert server.answered == 1


def test_dropped_requests_are_retried_on_a_fresh_socket_and_answered():
    trace = Trace()
    with LazyServer(faults=Faults(drop={2, 3}), trace=trace) as server, \
            LazyPirateClient(server.endpoint, timeout=0.2, retries=3, trace=trace) as client:
        replies = [client.request(str(n).encode()) for n in range(1, 5)]
    assert replies == [[b"1"], [b"2"], [b"3"], [b"4"]]
    # request 2 is dropped, its retry (the server's 3rd request) too, the next try works
    assert server.dropped == 2 and client.timeouts == 2 and client.sent == 6
    assert trace.count("retry") == 2 and trace.count("give-up") == 0


def test_gives_up_after_its_tries_within_timeout_times_retries():
    trace = Trace()
    server = LazyServer(faults=Faults(crash_after=1), trace=trace).start()
    client = LazyPirateClient(server.endpoint, timeout=0.2, retries=3, trace=trace)
    assert client.request(b"1") == [b"1"]
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as caught:
        client.request(b"2")
    waited = time.monotonic() - started
    client.close()
    server.stop()
    assert 0.6 <= waited < 0.6 + 0.5
    assert caught.value.tries == 3 and caught.value.endpoint == server.endpoint
    assert server.endpoint in str(caught.value) and "3 tries" in str(caught.value)
    assert server.crashed and trace.count("crash") == 1 and trace.count("give-up") == 1


def test_a_server_that_is_not_there_at_all_gives_a_clear_error():
    with LazyPirateClient("tcp://127.0.0.1:9", timeout=0.05, retries=2) as client:
        with pytest.raises(ServerUnavailable, match="after 2 tries"):
            client.request(b"x")


class WrongOnce(Actor):
    """A broken server: its first reply is not an echo of the request."""

    def setup(self):
        self.rep = self.socket(zmq.REP)
        self.endpoint = bind(self.rep)

    def run(self):
        replies = 0
        while True:
            self.poll([self.rep], None)
            request = self.rep.recv_multipart()
            replies += 1
            self.rep.send_multipart([b"wrong"] if replies == 1 else request)


def test_a_mismatched_reply_is_counted_and_the_request_resent():
    with WrongOnce("wrong") as server, LazyPirateClient(server.endpoint, timeout=1) as client:
        assert client.request(b"7") == [b"7"]
        assert client.mismatched == 1 and client.sent == 2


def test_garbage_on_the_wire_is_counted_and_the_server_keeps_serving():
    with LazyServer() as server, zmq.Context() as ctx:
        ctx.linger = 0
        raw = ctx.socket(zmq.DEALER)  # a DEALER must add REP's empty delimiter itself
        raw.connect(server.endpoint)
        for garbage in ([b"\xff" * 3], [b"a", b"b", b"c"], [b""]):
            raw.send_multipart(garbage)
        raw.send_multipart([b"", b"valid"])  # same connection: handled after the garbage
        assert raw.poll(2000), "the server stopped answering"
        assert raw.recv_multipart() == [b"", b"valid"]
        assert server.received == 1, "garbage never reaches the server as a request"
        with LazyPirateClient(server.endpoint, timeout=1) as client:
            assert client.request(b"still here") == [b"still here"]
        assert server.running and server.answered == 2
    assert not server.running, "stop() is prompt even after garbage woke the server"


def test_the_background_client_rides_out_a_crash_when_the_server_restarts():
    trace = Trace()
    first = LazyServer("server", faults=Faults(crash_after=3), trace=trace).start()
    client = LazyClient(first.endpoint, requests=6, timeout=0.2, retries=10, trace=trace)
    client.start()
    assert first.join(5) and first.crashed  # request 4 is lost with the server
    first.stop()
    second = LazyServer("server", bind=first.endpoint, trace=trace).start()  # same port again
    assert client.join(5)
    assert client.answered == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert client.gave_up is None and client.client.timeouts >= 1
    client.stop()
    second.stop()


def test_the_background_client_gives_up_when_the_server_stays_down():
    with LazyServer(faults=Faults(crash_after=2)) as server:
        client = LazyClient(server.endpoint, requests=5, timeout=0.1, retries=2).start()
        assert client.join(5)
        assert client.answered == [b"1", b"2"]
        assert isinstance(client.gave_up, ServerUnavailable)
        client.stop()


def test_stopping_the_background_client_mid_wait_is_prompt():
    with LazyServer(faults=Faults(drop={1})) as server:
        client = LazyClient(server.endpoint, requests=1, timeout=30).start()
        started = time.monotonic()
        client.stop()
        assert time.monotonic() - started < 1
