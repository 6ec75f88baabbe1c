"""What a peer can make a role hold, measured (issue 20): RSS of each role as a process.

1. Held requests: one client sends 100 requests of 8 frames of 1 MiB to a queue or broker
   with no worker for them, then leaves. The byte budgets (`--max-queued-bytes`,
   `--max-queued-bytes-per-client`) bound what the role keeps of them.
2. One whole message: a peer sends one message of N frames (300 and 1,500 frames of 1 MiB;
   then the same byte count in 64 KiB frames under `--max-message-bytes 65536`, and a
   million empty frames). libzmq hands a message to the role only once every frame has
   arrived, so the role's peak RSS (VmHWM) pays for the whole message before `receive()`
   can refuse it for its frame count; the per-frame cap does not bound the sum.

3. The same message sent to each worker by its queue.

    python benchmarks/memory_bounds.py [held|message|worker]   # all three by default
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from processes import Role, poll_until  # noqa: E402

from pirate_helpers.majordomo.protocol import MDPC  # noqa: E402

MIB = 1 << 20
SERVING = ("simple-queue", "paranoid-queue", "majordomo-broker")


def status_mib(pid: int, field: str) -> float:
    """A field of /proc/PID/status (VmRSS now, VmHWM the peak), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def start(role: str, *options: str) -> tuple[Role, str]:
    process = Role(role, *options)
    if role in ("lazy-server", "majordomo-broker"):
        return process, process.endpoint()
    return process, process.endpoint(r"frontend \(clients\) on")


def header(role: str, service: bytes = b"nobody") -> list[bytes]:
    return [MDPC, service] if role == "majordomo-broker" else []


@contextmanager
def started_with_peer(role: str, *options: str) -> Iterator[tuple[Role, zmq.Socket]]:
    """The role started, and a DEALER connected where its clients go; both stopped after."""
    process, endpoint = start(role, *options)
    ctx = zmq.Context()
    ctx.linger = 0
    try:
        peer = ctx.socket(zmq.DEALER)
        peer.sndhwm = 0
        peer.connect(endpoint)
        yield process, peer
    finally:
        ctx.destroy()
        process.stop()


def held_requests(role: str, *options: str) -> tuple[float, float]:
    """RSS before, and once the role has read 100 requests of 8 x 1 MiB from a client that
    then left (a marker after them shows they were all read)."""
    with started_with_peer(role, *options) as (process, client):
        before = status_mib(process.process.pid, "VmRSS")
        body = [b"\x00" * MIB] * 8
        for _ in range(100):
            client.send_multipart([b"", *header(role), *body], copy=False)
        if role == "majordomo-broker":  # answered after every request before it was read
            client.send_multipart([b"", MDPC, b"mmi.service", b"nobody"])
            assert client.poll(60_000), "the broker never read the flood"
        else:  # the queue prints each request as it reads it
            client.send_multipart([b"", b"marker"])
            process.expect(r"marker", timeout=60)
        client.close()
        time.sleep(0.5)  # a probe, not a test: let the role finish its pass
        return before, status_mib(process.process.pid, "VmRSS")


def one_message(role: str, frames: int, frame_bytes: int, *options: str) -> tuple[float, float]:
    """RSS before, and peak RSS once the role refused one message of `frames` frames."""
    with started_with_peer(role, "--quiet", *options) as (process, peer):
        before = status_mib(process.process.pid, "VmRSS")
        frame = zmq.Frame(b"\x00" * frame_bytes)
        peer.send_multipart([b"", *header(role), *[frame] * frames], copy=False)
        if role == "majordomo-broker":
            peer.send_multipart([b"", MDPC, b"mmi.service", b"nobody"])
            assert peer.poll(120_000), "the broker never read the message"
        else:  # a second connection is served only after the big message was read
            assert poll_until(lambda: process.newest(r"reject") is not None, 120), \
                "the role never refused the message"
        return before, status_mib(process.process.pid, "VmHWM")


def one_message_to_worker(role: str, frames: int, frame_bytes: int) -> tuple[float, float]:
    """The same, for a worker: its queue (a ROUTER here) sends it the message."""
    ctx = zmq.Context()
    ctx.linger = 0
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    extra = {"simple-worker": [], "paranoid-worker": ["--heartbeat-ms", "1000"],
             "majordomo-worker": ["--heartbeat-ms", "1000", "--service", "echo"]}[role]
    process = Role(role, "--quiet", "--connect", f"tcp://127.0.0.1:{port}", *extra)
    try:
        assert router.poll(10_000), "the worker never said READY"
        identity = router.recv_multipart()[0]
        before = status_mib(process.process.pid, "VmRSS")
        frame = zmq.Frame(b"\x00" * frame_bytes)
        router.send_multipart([identity, b"", *[frame] * frames], copy=False)
        assert poll_until(lambda: process.newest(r"reject") is not None, 120), \
            "the worker never refused the message"
        return before, status_mib(process.process.pid, "VmHWM")
    finally:
        ctx.destroy()
        process.stop()


def main(parts: list[str]) -> None:
    if "held" in parts:
        print("100 requests of 8 x 1 MiB, no worker, the client gone: RSS MiB before -> after")
        unbounded = ("--max-queued-bytes", str(2**62), "--max-queued-bytes-per-client", str(2**62))
        for role in SERVING:
            for label, options in (("no byte budget", unbounded), ("the defaults", ())):
                before, after = held_requests(role, *options)
                print(f"  {role:17} {label:15} {before:7.0f} -> {after:7.0f}  "
                      f"(+{after - before:.0f})")
    if "message" in parts:
        print("one message refused for its frame count: RSS MiB before -> peak")
        cases = [(300, MIB, ()), (1500, MIB, ()),
                 (1500 * 16, 64 << 10, ("--max-message-bytes", "65536")),
                 (1_000_000, 0, ())]
        for frames, size, options in cases:
            for role in ("lazy-server", *SERVING):
                before, peak = one_message(role, frames, size, *options)
                print(f"  {frames:>9} x {size:>7} B {role:17} {before:7.0f} -> {peak:7.0f}  "
                      f"(+{peak - before:.0f})")
    if "worker" in parts:
        print("one message from its queue, refused for its frame count: RSS MiB before -> peak")
        for frames in (300, 1500):
            for role in ("simple-worker", "paranoid-worker", "majordomo-worker"):
                before, peak = one_message_to_worker(role, frames, MIB)
                print(f"  {frames:>9} x {MIB:>7} B {role:17} {before:7.0f} -> {peak:7.0f}  "
                      f"(+{peak - before:.0f})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["held", "message", "worker"])
