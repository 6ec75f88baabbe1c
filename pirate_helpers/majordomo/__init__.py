"""Majordomo: many services behind one broker, found by name (RFC 7 MDP/0.1, RFC 8 MMI).

Paranoid Pirate has one kind of worker. A Majordomo worker says which *service* it offers
(READY "echo"), a client names the service it wants, and the broker keeps, per service, the
workers waiting for work (least recently used first) and the requests waiting for a worker.
Heartbeats and expiry are Paranoid Pirate's, now on one ROUTER that clients (REQ) and
workers (DEALER) share: the header frame tells them apart.

- A request whose worker dies (or disconnects, or sends nonsense) goes back to the *front*
  of its service's queue: at-least-once, so work must be safe to repeat. A late reply from a
  forgotten worker is refused with DISCONNECT, so a client never gets two.
- A request for a service nobody offers waits in its queue, for `request_expiry` at most
  (RFC 7's SHOULD; 10 s when no expiry is set); then it is dropped and the client's retries
  take over. Requests waiting are bounded in all (`max_queued`, half of it at most for
  services nobody offers) and per client (`max_queued_per_client`): one client cannot deny
  service to others. MDP/0.1 has no error reply: a refused client sees a timeout.
- Anything malformed or out of order from a worker earns it a DISCONNECT; the broker logs
  and counts it and never crashes on input.
- MMI (RFC 8): `mmi.service` answers "200" when at least one worker offers the service now,
  "404" otherwise; any other `mmi.*` answers "501". A worker may not offer `mmi.*`.

One module per piece, each short enough to read in one sitting:

- `protocol`: the frames (MDP/0.1 and the MDP/0.2 draft), MMI's codes, `describe`.
- `state`: `BrokerState`, the broker's decisions (messages and `now` in, messages out).
- `broker`: `MajordomoBroker`, the thin socket loop around it.
- `guide`: `GuideMajordomoState`, the ZeroMQ Guide's mdbroker.py, bugs included, for
  comparison.
- `worker`: `MajordomoWorker`, which reuses Paranoid Pirate's `WorkerLiveness`.
- `client`: `MajordomoClient`, Lazy Pirate speaking MDP, and `MajordomoRequester`.
"""

from .broker import BATCH, MajordomoBroker
from .client import MajordomoClient, MajordomoRequester
from .guide import GuideMajordomoState
from .protocol import (
    C2_FINAL,
    C2_PARTIAL,
    C2_REQUEST,
    COMMAND_NAMES,
    DISCONNECT,
    HEARTBEAT,
    MAX_QUEUED,
    MDPC,
    MDPC2,
    MDPW,
    MDPW2,
    MMI,
    MMI_FOUND,
    MMI_NOT_FOUND,
    MMI_NOT_IMPLEMENTED,
    PARTIAL,
    PURGED_REMEMBERED,
    READY,
    REPLY,
    REQUEST,
    W2_CODES,
    W2_COMMANDS,
    W2_NAMES,
    WORKER_HEADERS,
    describe,
)
from .state import BrokerState, Request, Service, Worker
from .worker import MajordomoWorker, echo

__all__ = [
    "BATCH", "C2_FINAL", "C2_PARTIAL", "C2_REQUEST", "COMMAND_NAMES", "DISCONNECT",
    "HEARTBEAT", "MAX_QUEUED", "MDPC", "MDPC2", "MDPW", "MDPW2", "MMI", "MMI_FOUND",
    "MMI_NOT_FOUND", "MMI_NOT_IMPLEMENTED", "PARTIAL", "PURGED_REMEMBERED", "READY", "REPLY",
    "REQUEST", "W2_CODES", "W2_COMMANDS", "W2_NAMES", "WORKER_HEADERS", "BrokerState",
    "GuideMajordomoState", "MajordomoBroker", "MajordomoClient", "MajordomoRequester",
    "MajordomoWorker", "Request", "Service", "Worker", "describe", "echo",
]
