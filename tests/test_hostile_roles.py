"""Hostile input, round two (issue 20): no single peer takes a role out of service.

Each role runs as a process; the hostile peers are written here from the RFCs.
"""

from __future__ import annotations

import pytest
import zmq
from test_routing_ids import context, named_worker, start_role

from pirate_helpers import LazyPirateClient
from pirate_helpers.majordomo import MajordomoClient
from pirate_helpers.majordomo.protocol import MDPC


def normal_requests_answered(role: str, endpoint: str, count: int = 3) -> int:
    if role == "majordomo-broker":
        with MajordomoClient(endpoint, timeout=2, retries=2) as client:
            return sum(client.request("echo", b"n%d" % n) == [b"n%d" % n] for n in range(count))
    with LazyPirateClient(endpoint, timeout=2, retries=2) as client:
        return sum(client.request(b"n%d" % n) == [b"n%d" % n] for n in range(count))


@pytest.mark.parametrize("role", ["simple-queue", "paranoid-queue", "majordomo-broker"])
@pytest.mark.parametrize("body_frames", [59, 61, 62])
def test_requests_near_the_frame_limit_never_take_the_worker_out_of_service(role, body_frames):
    process, endpoint, backend = start_role(role)
    ctx = context()
    worker = named_worker(role.split("-")[0], backend)
    try:
        assert normal_requests_answered(role, endpoint, 1) == 1
        header = [MDPC, b"echo"] if role == "majordomo-broker" else []
        for _ in range(2):  # each a request a hop could carry one way but not back
            req = ctx.socket(zmq.REQ)
            req.connect(endpoint)
            req.send_multipart([*header, *[b"f"] * body_frames])
            req.poll(500)  # answered whole, or refused at the door (it then times out)
        assert normal_requests_answered(role, endpoint) == 3
    finally:
        ctx.destroy()
        worker.stop()
        assert process.stop() == 0, process.stderr[-2000:]
