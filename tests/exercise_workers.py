"""The workshop exercise's right answer, and wrong ones that each break one rule."""

from __future__ import annotations

import time

import zmq

from pirate_helpers import PPP_HEARTBEAT, PPP_READY, Join
from pirate_helpers.names import wire_identity


def make_worker(*, ready=True, echo_envelope=True, heartbeats=True, reconnects=True,
                backoff=True, patient=True):
    def worker(join, name, stop, heartbeat_interval, liveness, reconnect_min, reconnect_max):
        target = Join.parse(join)
        context = zmq.Context()
        context.linger = 0
        identity = wire_identity(name)
        wait = reconnect_min
        try:
            while not stop.is_set():
                dealer = context.socket(zmq.DEALER)
                dealer.identity = identity
                target.connect(dealer)
                dealer.send(PPP_READY if ready else PPP_HEARTBEAT)
                lives = liveness if patient else 1
                heartbeat_at = time.monotonic() + heartbeat_interval
                while lives and not stop.is_set():
                    if dealer.poll(int(heartbeat_interval * 1000)):
                        message = dealer.recv_multipart()
                        lives = liveness if patient else 1
                        wait = reconnect_min
                        if len(message) > 1:
                            dealer.send_multipart(message if echo_envelope else message[-1:])
                    elif reconnects:
                        lives -= 1
                    if heartbeats and time.monotonic() >= heartbeat_at:
                        dealer.send(PPP_HEARTBEAT)
                        heartbeat_at = time.monotonic() + heartbeat_interval
                dealer.close()
                stop.wait(wait)
                if backoff:
                    wait = min(2 * wait, reconnect_max)
        finally:
            context.destroy()

    return worker


RIGHT = make_worker()
WRONG = {
    "READY first": make_worker(ready=False),
    "envelope echoed": make_worker(echo_envelope=False),
    "heartbeats": make_worker(heartbeats=False),
    "reconnect:": make_worker(reconnects=False),
    "READY again": make_worker(patient=False),
    "back-off": make_worker(backoff=False),
}
