"""Peers that claim the routing ids libzmq generates for anonymous peers never crash a role.

libzmq gives an anonymous peer the id 0x00 + a 32-bit counter and aborts the process if that
id is already held by a peer that chose it (docs/libzmq-routing-id-abort.md). The counter
starts from an unseeded `rand()`: the same numbers in every run. The squatters here claim
those numbers before an ordinary anonymous client connects; a hostile worker tries the next
ids after the client addresses it is shown.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import zmq
from processes import Role

from pirate_helpers.majordomo import MajordomoWorker
from pirate_helpers.majordomo.protocol import MDPC, MDPW, READY, REPLY
from pirate_helpers.names import AddressMask
from pirate_helpers.paranoid import PPP_READY, ParanoidWorker
from pirate_helpers.security import Join
from pirate_helpers.simple import SimpleWorker

TIMEOUT_MS = 5000
STARTS = 6  # counter starts squatted: those of the first ROUTERs a process makes
PER_START = 8  # ids claimed from each start on


def unseeded_starts(count: int) -> list[int]:
    """The counter starts libzmq draws in a process nobody seeded (glibc: `srand(1)`), as
    its `generate_random()` makes them: `rand() | rand() << 31`, kept to 32 bits."""
    code = ("import ctypes; c = ctypes.CDLL(None); c.srand(1); "
            f"print(*[(c.rand() | c.rand() << 31) & 0xFFFFFFFF for _ in range({count})])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return [int(start) for start in result.stdout.split()]


def generated(counter: int) -> bytes:
    return b"\x00" + (counter & 0xFFFFFFFF).to_bytes(4, "big")


def context() -> zmq.Context:
    ctx = zmq.Context()
    ctx.linger = 0
    return ctx


def ask(sock: zmq.Socket, request: list[bytes]) -> list[bytes]:
    """Send on a DEALER (as a REQ would: empty frame first) and wait, bounded, for the reply."""
    sock.send_multipart([b"", *request], zmq.NOBLOCK)
    assert sock.poll(TIMEOUT_MS), f"no reply to {request} within {TIMEOUT_MS} ms"
    return sock.recv_multipart()[1:]


def anonymous_request(ctx: zmq.Context, endpoint: str, request: list[bytes]) -> list[bytes]:
    """What an ordinary client with no routing id of its own gets (a plain REQ)."""
    req = ctx.socket(zmq.REQ)
    req.connect(endpoint)
    req.send_multipart(request)
    assert req.poll(TIMEOUT_MS), "an anonymous client got no reply"
    return req.recv_multipart()


def squat(ctx: zmq.Context, endpoint: str, ids: list[bytes],
          request: list[bytes]) -> list[zmq.Socket]:
    """Connect one DEALER per id, each claiming it; each gets a reply, so the role's ROUTER
    has registered them all before the next peer arrives. Keep the list: a squatter closed
    (by the garbage collector, say) frees its id."""
    squatters = []
    for routing_id in ids:
        squatter = ctx.socket(zmq.DEALER)
        squatter.routing_id = routing_id
        squatter.connect(endpoint)
        assert ask(squatter, request)
        squatters.append(squatter)
    return squatters


ROLES = {  # role: (its request, whether a worker is needed)
    "lazy-server": ([b"hello"], None),
    "simple-queue": ([b"hello"], "simple"),
    "paranoid-queue": ([b"hello"], "paranoid"),
    "majordomo-broker": ([MDPC, b"echo", b"hello"], "majordomo"),
}


def start_role(role: str) -> tuple[Role, str, str | None]:
    """The role as a process, the endpoint its clients use, and its workers' (if any)."""
    process = Role(role, "--quiet")
    if role in ("lazy-server", "majordomo-broker"):
        endpoint = process.endpoint()
        return process, endpoint, endpoint if role == "majordomo-broker" else None
    frontend = process.endpoint(r"frontend \(clients\) on")
    return process, frontend, process.endpoint(r"backend \(workers\) on")


def named_worker(kind: str, endpoint: str):
    """One of the course's workers (each has a routing id of its own)."""
    if kind == "simple":
        return SimpleWorker("w1", connect=endpoint).start()
    if kind == "paranoid":
        return ParanoidWorker("w1", connect=endpoint, heartbeat_interval=1.0).start()
    return MajordomoWorker("w1", connect=endpoint, service="echo", heartbeat_interval=2.5).start()


def test_libzmq_aborts_on_a_squatted_generated_id_unless_its_counter_is_seeded():
    """The defect itself, in a plain pyzmq process: a squatter at the unseeded counter's
    start, then one anonymous peer; and the same after `scramble_generated_ids()`."""
    code = textwrap.dedent(f"""
        import sys, zmq
        if sys.argv[1] == "seeded":
            from pirate_helpers.endpoints import scramble_generated_ids
            scramble_generated_ids()
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        squatter = ctx.socket(zmq.DEALER)
        squatter.routing_id = {generated(unseeded_starts(1)[0])!r}
        squatter.connect(f"tcp://127.0.0.1:{{port}}")
        squatter.send(b"first")
        print(router.recv_multipart()[0].hex(), flush=True)
        anonymous = ctx.socket(zmq.DEALER)
        anonymous.connect(f"tcp://127.0.0.1:{{port}}")
        anonymous.send(b"second")
        print(router.recv_multipart()[0].hex(), flush=True)
    """)
    unseeded = subprocess.run([sys.executable, "-c", code, "unseeded"], capture_output=True,
                              text=True, timeout=30)
    if unseeded.returncode == 0:
        pytest.skip("this libzmq or C library does not start at glibc's unseeded rand()")
    assert unseeded.returncode == -6, unseeded  # SIGABRT
    assert "Assertion failed: ok" in unseeded.stderr
    seeded = subprocess.run([sys.executable, "-c", code, "seeded"], capture_output=True,
                            text=True, timeout=30)
    assert seeded.returncode == 0, seeded.stderr
    squatter_id, anonymous_id = seeded.stdout.split()
    assert anonymous_id != squatter_id and anonymous_id.startswith("00")


@pytest.mark.parametrize("role", list(ROLES))
def test_squatters_on_the_unseeded_counter_do_not_crash_a_role(role):
    request, kind = ROLES[role]
    process, endpoint, backend = start_role(role)
    ctx = context()
    worker = named_worker(kind, backend) if kind else None
    try:
        ids = [generated(start + n) for start in unseeded_starts(STARTS)
               for n in range(PER_START)]
        squatters = squat(ctx, endpoint, ids, request)
        for n in range(3):
            body = f"ordinary {n}".encode()
            reply = anonymous_request(ctx, endpoint, [*request[:-1], body])
            assert reply[-1] == body
        assert process.process.poll() is None
        assert all(not squatter.closed for squatter in squatters)
    finally:
        ctx.destroy()
        if worker is not None:
            worker.stop()
        assert process.stop() == 0, process.stderr[-2000:]


CURVE_ROLES = {  # role: (its options, its request, whether a REQ's empty frame comes first)
    "lazy-server": ((), [b"hello"], True),
    "simple-queue": ((), [b"hello"], True),
    "paranoid-queue": ((), [b"hello"], True),
    "majordomo-broker": ((), [MDPC, b"echo", b"hello"], True),
    "binary-star": (("--primary", "--publish", "tcp://127.0.0.1:0", "--subscribe",
                     "tcp://127.0.0.1:9", "--heartbeat-ms", "50"), [b"hello"], True),
    "freelance-server": ((), [b"1", b"hello"], False),  # FLP: a control frame, no envelope
}


def curve_exchange(sock: zmq.Socket, request: list[bytes], envelope: bool) -> list[bytes]:
    """Ask until answered, within a bound (a lone Binary Star primary refuses clients until
    it has counted its peer gone); the reply without its envelope."""
    for _ in range(TIMEOUT_MS // 500):
        sock.send_multipart([b"", *request] if envelope else request, zmq.NOBLOCK)
        if sock.poll(500):
            reply = sock.recv_multipart()
            return reply[1:] if envelope else reply
    raise AssertionError(f"no reply to {request} within {TIMEOUT_MS} ms")


@pytest.mark.parametrize("role", list(CURVE_ROLES))
def test_squatters_holding_the_join_line_do_not_crash_a_curve_role(role):
    """Behind --curve anyone with the join line gets in, and may choose any routing id: each
    squatter is a CURVE client with its own valid key claiming a generated id. The role
    must answer every one of them and every ordinary (anonymous) client after them."""
    options, request, envelope = CURVE_ROLES[role]
    process = Role(role, "--quiet", "--curve", *options)
    ctx = context()
    kind = ROLES.get(role, (None, None))[1]
    worker = None
    try:
        clients = process.expect(r"join \(clients\): (\S+)").group(1)
        assert Join.parse(clients).curve
        if kind:
            worker = named_worker(kind, process.expect(r"join \(workers\): (\S+)").group(1))
        squatters = []  # kept: a closed squatter frees its id
        for start in unseeded_starts(STARTS):
            for n in range(PER_START):
                squatter = ctx.socket(zmq.DEALER)
                squatter.routing_id = generated(start + n)
                Join.parse(clients).connect(squatter)
                squatters.append(squatter)
                assert curve_exchange(squatter, request, envelope)
        for n in range(3):
            ordinary = ctx.socket(zmq.DEALER)
            Join.parse(clients).connect(ordinary)
            body = f"ordinary {n}".encode()
            assert curve_exchange(ordinary, [*request[:-1], body], envelope)[-1] == body
        assert process.process.poll() is None
    finally:
        ctx.destroy()
        if worker is not None:
            worker.stop()
        assert process.stop() == 0, process.stderr[-2000:]


def hostile_worker(ctx: zmq.Context, kind: str, endpoint: str):
    """A worker written from the RFCs that echoes and tells the test each client address
    it was shown. Returns (socket, serve): `serve()` answers everything waiting."""
    if kind == "simple":
        sock = ctx.socket(zmq.REQ)
        sock.connect(endpoint)
        sock.send(PPP_READY)
    else:
        sock = ctx.socket(zmq.DEALER)
        sock.routing_id = b"hostile"
        sock.connect(endpoint)
        sock.send_multipart([b"", MDPW, READY, b"echo"] if kind == "majordomo" else [PPP_READY])
    seen: list[bytes] = []

    def serve(timeout_ms: int = 0) -> list[bytes]:
        while sock.poll(timeout_ms):
            timeout_ms = 0
            frames = sock.recv_multipart()
            if kind == "majordomo":
                if frames[2] != b"\x02":
                    continue  # a heartbeat
                seen.append(frames[3])
                sock.send_multipart([b"", MDPW, REPLY, *frames[3:]])
            elif kind == "paranoid" and len(frames) == 1:
                continue  # a heartbeat
            else:
                seen.append(frames[0])
                sock.send_multipart(frames)
        return seen

    return sock, serve


@pytest.mark.parametrize("role", ["simple-queue", "paranoid-queue", "majordomo-broker"])
def test_a_worker_cannot_learn_the_next_generated_id_from_the_addresses_it_serves(role):
    request, kind = ROLES[role]
    process, endpoint, backend = start_role(role)
    ctx = context()
    try:
        _, serve = hostile_worker(ctx, kind, backend)
        req = ctx.socket(zmq.REQ)
        req.connect(endpoint)
        for _ in range(50):  # until the queue or broker has the worker
            req.send_multipart(request)
            if serve(200) and req.poll(TIMEOUT_MS):
                break
            req.close()
            req = ctx.socket(zmq.REQ)
            req.connect(endpoint)
        assert req.recv_multipart()[-1] == request[-1]
        shown = serve()[-1]
        assert len(shown) != 5, f"the worker was shown libzmq's counter: {shown.hex()}"
        guess = int.from_bytes(shown[1:5], "big")
        squatters = []  # kept: a closed squatter frees its id
        for n in range(1, PER_START + 1):  # claim the ids after the one it was shown
            squatter = ctx.socket(zmq.DEALER)
            squatters.append(squatter)
            squatter.routing_id = generated(guess + n)
            squatter.connect(endpoint)
            squatter.send_multipart([b"", *request], zmq.NOBLOCK)
            serve(TIMEOUT_MS)
            assert squatter.poll(TIMEOUT_MS), "a squatter's request was not answered"
        req.send_multipart([*request[:-1], b"after"])
        serve(TIMEOUT_MS)
        assert req.poll(TIMEOUT_MS) and req.recv_multipart()[-1] == b"after"
        fresh = ctx.socket(zmq.REQ)  # an anonymous client connecting after the squatters
        fresh.connect(endpoint)
        fresh.send_multipart([*request[:-1], b"fresh"])
        serve(TIMEOUT_MS)
        assert fresh.poll(TIMEOUT_MS) and fresh.recv_multipart()[-1] == b"fresh"
        assert process.process.poll() is None
    finally:
        ctx.destroy()
        assert process.stop() == 0, process.stderr[-2000:]


def test_the_mask_hides_generated_ids_only_and_keeps_one_client_one_address():
    mask = AddressMask(key=b"k" * 16)
    assert mask(b"alice~3f9a2c1b") == b"alice~3f9a2c1b"
    first, again = mask(generated(7)), mask(generated(7))
    assert first == again and first != generated(7) and len(first) == 9
    assert mask(generated(8)) != first
    assert AddressMask(key=b"j" * 16)(generated(7)) != first
