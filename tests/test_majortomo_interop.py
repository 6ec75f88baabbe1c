"""majortomo (PyPI, MDP/0.2) against our broker: its Worker serves our clients; its Client is
refused, because it numbers client commands as worker commands.

majortomo is not one of our dependencies (and 0.2.0 needs `six` without declaring it); these
tests run only where it imports, e.g. `python3 -m venv /tmp/mt && /tmp/mt/bin/pip install
majortomo six pyzmq pytest && /tmp/mt/bin/pip install -e .`, then
`/tmp/mt/bin/pytest tests/test_majortomo_interop.py`. Its worker runs in a child process
(its `wait_for_request` cannot be interrupted), killed at the end.
"""

import subprocess
import sys
import textwrap

import pytest
import zmq

from pirate_helpers import Trace
from pirate_helpers.majordomo import (
    C2_FINAL,
    C2_REQUEST,
    MDPC2,
    MajordomoBroker,
    MajordomoClient,
)

majortomo = pytest.importorskip(
    "majortomo", reason="majortomo (MDP/0.2, not a dependency of ours) is not importable here; "
    "0.2.0 also needs `six`, which it does not declare")
majortomo_error = pytest.importorskip("majortomo.error")
majortomo_protocol = pytest.importorskip("majortomo.protocol")

# majortomo's own worker: "echo" answers FINAL with the body; "stream" sends each frame of the
# body as a PARTIAL, then FINAL "done".
WORKER = textwrap.dedent("""
    import sys
    from majortomo import Worker
    worker = Worker(sys.argv[1], sys.argv[2].encode(), heartbeat_interval=0.1,
                    heartbeat_timeout=5.0)
    worker.connect()
    while True:
        client, body = worker.wait_for_request()
        if sys.argv[2] == "stream":
            worker.send_reply_from_iterable(client, ([frame] for frame in body), final=[b"done"])
        else:
            worker.send_reply_final(client, body)
""")


@pytest.fixture
def broker():
    broker = MajordomoBroker(heartbeat_interval=0.1, trace=Trace()).start()
    yield broker
    broker.stop()


@pytest.fixture
def majortomo_worker(broker):
    children = []

    def start(service: str) -> None:
        before = broker.state.offers(service.encode())
        children.append(subprocess.Popen([sys.executable, "-c", WORKER, broker.endpoint,
                                          service]))
        assert not before
        assert broker.wait_until(lambda: broker.state.offers(service.encode()), 10), \
            "majortomo's READY reached the broker"

    yield start
    for child in children:
        child.kill()
        child.wait(5)


def test_majortomos_worker_serves_our_01_client_and_mmi_sees_it(broker, majortomo_worker):
    majortomo_worker("echo")
    with MajordomoClient(broker.endpoint, timeout=5, retries=1) as client:
        assert client.offers("echo")
        assert client.request("echo", b"a", b"b") == [b"a", b"b"]
        assert client.request("echo", b"again") == [b"again"]
    assert broker.state.answered[b"echo"] == 2
    assert broker.state.rejected == 0 and broker.state.requeued == 0


def test_majortomos_partials_stream_to_an_rfc18_client_and_a_01_client_gets_the_final(
        broker, majortomo_worker):
    majortomo_worker("stream")
    context = zmq.Context.instance()
    rfc18 = context.socket(zmq.DEALER)
    rfc18.linger = 0
    rfc18.connect(broker.endpoint)
    try:
        rfc18.send_multipart([b"", MDPC2, C2_REQUEST, b"stream", b"1", b"2"])
        parts = []
        while not parts or parts[-1][2] != C2_FINAL:
            assert rfc18.poll(5000), f"no FINAL after {parts}"
            parts.append(rfc18.recv_multipart())
    finally:
        rfc18.close()
    assert [part[3:] for part in parts] == [[b"1"], [b"2"], [b"done"]]
    with MajordomoClient(broker.endpoint, timeout=5, retries=1) as client:
        assert client.request("stream", b"x", b"y") == [b"done"]
    assert broker.state.partials_dropped == 2 and broker.state.rejected == 0


def test_majortomos_client_numbers_its_request_as_a_worker_would_and_is_refused(broker):
    """RFC 18 numbers client commands REQUEST 1, PARTIAL 2, FINAL 3 (our broker's); majortomo
    0.2.0 uses its worker numbers for clients too (REQUEST 2, PARTIAL 3, FINAL 4). Its REQUEST
    is refused, so it times out; if it were accepted, it would read our FINAL (3) as PARTIAL."""
    client = majortomo.Client(broker.endpoint)
    client.connect()
    try:
        client.send(b"echo", b"hello")
        with pytest.raises(majortomo_error.Timeout):
            client.recv_part(timeout=0.3)
    finally:
        client.close()
    assert broker.wait_until(lambda: broker.state.rejected == 1, 5)
    assert any("not a 0.2 REQUEST" in event.detail for event in broker.trace.events
               if event.kind == "reject")
    code, _body = majortomo.Client._parse_message([b"", MDPC2, C2_FINAL, b"done"])
    assert code == majortomo_protocol.PARTIAL
