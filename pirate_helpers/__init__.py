"""Helpers for the Pirate Patterns course: reliable request-reply with ZeroMQ.

Each pattern lives in its own module (`lazy`, `simple`, ...), or package of modules
(`paranoid`, `majordomo`), each short enough to read in one sitting; the shared pieces are
the actor (`actor`), endpoints, faults, the trace and the drawings.
"""

from .actor import Actor, running_actors, stop_all
from .binary_star import BinaryStarClient, BinaryStarServer, BinaryStarState, SplitBrain
from .endpoints import LOCAL, bind
from .faults import Decision, Faults
from .lazy import LazyClient, LazyPirateClient, LazyServer, ServerUnavailable, SteadyLoad
from .lazy_async import AsyncLazyPirateClient, ConcurrentServer
from .majordomo import (
    BrokerState,
    GuideMajordomoState,
    MajordomoBroker,
    MajordomoClient,
    MajordomoRequester,
    MajordomoWorker,
)
from .monitor import Monitor
from .paranoid import (
    PPP_HEARTBEAT,
    PPP_READY,
    GuideQueueState,
    ParanoidQueue,
    ParanoidWorker,
    QueueState,
    WorkerLiveness,
)
from .relay import Relay
from .security import Join, KeyPair, Security
from .trace import Event, Trace
from .views.drawing import SequenceDiagram, sequence_diagram

__all__ = [
    "LOCAL",
    "PPP_HEARTBEAT",
    "PPP_READY",
    "Actor",
    "AsyncLazyPirateClient",
    "BinaryStarClient",
    "BinaryStarServer",
    "BinaryStarState",
    "BrokerState",
    "ConcurrentServer",
    "Decision",
    "Event",
    "Faults",
    "GuideMajordomoState",
    "GuideQueueState",
    "Join",
    "KeyPair",
    "LazyClient",
    "LazyPirateClient",
    "LazyServer",
    "MajordomoBroker",
    "MajordomoClient",
    "MajordomoRequester",
    "MajordomoWorker",
    "Monitor",
    "ParanoidQueue",
    "ParanoidWorker",
    "QueueState",
    "Security",
    "Relay",
    "SequenceDiagram",
    "ServerUnavailable",
    "SplitBrain",
    "SteadyLoad",
    "Trace",
    "WorkerLiveness",
    "bind",
    "running_actors",
    "sequence_diagram",
    "stop_all",
]
