"""The Majordomo client: Lazy Pirate speaking MDP, and a requester that runs one in the
background."""

from __future__ import annotations

from ..actor import Actor
from ..lazy import LazyPirateClient, ServerUnavailable
from ..trace import Trace
from .protocol import MDPC, MMI_FOUND


class MajordomoClient(LazyPirateClient):
    """Lazy Pirate over MDP: `request(service, *body)` returns the reply's body.

    A reply counts when it carries the MDP client header and the service asked; anything else
    is a mismatch and the request goes again on a fresh socket. After `retries` tries in all:
    `ServerUnavailable`. `offers(service)` asks MMI before sending.
    """

    def request(self, service: bytes | str, *body: bytes) -> list[bytes]:  # type: ignore[override]
        """The reply's body. Each request goes out on a fresh connection: MDP/0.1 carries
        no request id, and a REQ takes any reply left on its connection (a broker that
        answered twice, a reply that came after its timeout) as the next request's, so the
        connection that carried one request never carries another."""
        name = service.encode() if isinstance(service, str) else service
        try:
            return super().request(MDPC, name, *body)[2:]
        finally:
            self._close_socket()

    def accepts(self, request: list[bytes], reply: list[bytes]) -> bool:
        return len(reply) >= 2 and reply[:2] == request[:2]

    def offers(self, service: bytes | str) -> bool:
        """MMI: does at least one worker offer `service` now?"""
        name = service.encode() if isinstance(service, str) else service
        return self.request(b"mmi.service", name) == [MMI_FOUND]


class MajordomoRequester(Actor):
    """A Majordomo client in the background: asks `service` for `requests` ("1", "2", ...)
    in order, so a notebook cell can start workers while it waits. It stops early when the
    broker gives no answer (`gave_up` holds the exception); read `replies` after `join()`."""

    def __init__(
        self,
        endpoint: str,
        service: str,
        name: str = "client",
        *,
        requests: int = 1,
        timeout: float = 1.0,
        retries: int = 3,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(name, trace)
        self.service = service
        self.bodies = [str(n).encode() for n in range(1, requests + 1)]
        self.client = MajordomoClient(endpoint, timeout=timeout, retries=retries, name=name,
                                      trace=self.trace, actor=self)
        self.replies: list[list[bytes]] = []
        self.gave_up: ServerUnavailable | None = None

    def run(self) -> None:
        try:
            for body in self.bodies:
                self.replies.append(self.client.request(self.service, body))
                with self.changes:
                    self.changes.notify_all()
        except ServerUnavailable as error:
            self.gave_up = error
