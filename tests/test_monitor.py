"""Monitor: libzmq's connection events, read in the foreground with a bound, into the trace."""

import pytest
import zmq

from pirate_helpers import Monitor, Trace


@pytest.fixture
def ctx():
    context = zmq.Context()
    context.linger = 0
    yield context
    context.destroy(linger=0)


def test_events_are_waited_for_recorded_and_traced(ctx):
    trace = Trace()
    router = ctx.socket(zmq.ROUTER)
    endpoint = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"
    dealer = ctx.socket(zmq.DEALER)
    with Monitor(dealer, "dealer", trace) as monitor:
        dealer.connect(endpoint)
        up = monitor.wait_for(zmq.EVENT_HANDSHAKE_SUCCEEDED, timeout=2)
        assert up is not None and up.name == "HANDSHAKE_SUCCEEDED" and up.endpoint == endpoint
        assert monitor.seen(zmq.EVENT_CONNECTED), "the events before it are kept"
        assert trace.count("handshake_succeeded", "dealer") == 1
        assert monitor.wait_for(zmq.EVENT_DISCONNECTED, timeout=0.1) is None
        dealer.send(b"x")
        assert monitor.watch(router, 2), "watch returns once the other socket is readable"
        assert not monitor.watch(dealer, 0.1)
        router.close()
        assert monitor.wait_for(zmq.EVENT_DISCONNECTED, timeout=2) is not None
    again = Monitor(dealer)  # closed cleanly: the socket can be monitored again
    again.close()
    again.close()  # twice is harmless


def test_an_events_value_is_decoded_into_words():
    from pirate_helpers.monitor import describe

    assert describe(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 285212673) == "ZMTP_CRYPTOGRAPHIC"
    assert describe(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 7).startswith("protocol error 0x7")
    assert describe(zmq.EVENT_CONNECT_RETRIED, 40) == "next try in 40 ms"
    assert describe(zmq.EVENT_DISCONNECTED, 12) == "file descriptor 12"
    assert describe(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 104) == "errno 104 (ECONNRESET)"
