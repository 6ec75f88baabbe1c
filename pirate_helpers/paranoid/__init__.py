"""Paranoid Pirate: a queue and workers that check each other with heartbeats (RFC 6, PPP).

Simple Pirate's queue cannot tell a dead worker from a slow one: it learns of a crash only
by handing the dead worker a request, which is lost. Here queue and workers send each other a
HEARTBEAT every `heartbeat_interval`; a peer silent for `liveness` intervals is dead.

- The queue forgets a silent worker and gives the request it held to another worker. That is
  *at-least-once* delivery: a worker that was only frozen may have done the work already, so
  a request can be executed twice. Requests must be safe to repeat (idempotent), or carry an
  id the server uses to drop duplicates. A late reply from a forgotten worker is rejected, so
  a client never gets two replies from the queue for one request.
- A worker that hears nothing from its queue closes its socket, waits (doubling the wait up
  to a maximum, back to the minimum once the queue answers; each wait lengthened at random so
  workers that lost their queue together do not come back together) and reconnects with READY.

Wire format (https://rfc.zeromq.org/spec:6/PPP): READY and HEARTBEAT are one-frame messages
holding the single bytes 0x01 and 0x02; a request reaches a worker as `[client, b"", body...]`
and the reply comes back with that envelope unchanged.

One module per piece, each short enough to read in one sitting:

- `protocol`: the frames, and how the trace shows a message.
- `state`: `QueueState`, the queue's decisions (messages and `now` in, messages out, so
  tests use a fake clock).
- `queue`: `ParanoidQueue`, the thin socket loop around it.
- `worker`: `WorkerLiveness`, the worker's decisions, and `ParanoidWorker`, its loop.
- `guide`: `GuideQueueState`, the ZeroMQ Guide's ppqueue.py, bug included, for comparison.
"""

from .guide import GuideQueueState
from .protocol import PPP_HEARTBEAT, PPP_READY, describe
from .queue import ParanoidQueue
from .state import QueueState, TrackedWorker
from .worker import JITTER, ParanoidWorker, WorkerAction, WorkerLiveness

__all__ = [
    "JITTER",
    "PPP_HEARTBEAT",
    "PPP_READY",
    "GuideQueueState",
    "ParanoidQueue",
    "ParanoidWorker",
    "QueueState",
    "TrackedWorker",
    "WorkerAction",
    "WorkerLiveness",
    "describe",
]
