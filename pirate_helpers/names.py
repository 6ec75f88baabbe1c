"""Names people choose collide; identities on the wire must not.

Two students who both start `--name alice` would share one ZeroMQ routing id: with
ROUTER_HANDOVER each connection takes the id from the other in turn, both keep reconnecting
and the queue loses half its capacity without a word. So a worker's routing id is its name
plus a random suffix (`alice~3f9a2c1b`), chosen once per worker and kept across its
reconnections, and the queue shows the name part. RFC 6 is unchanged: READY is still the
single byte 0x01, and a plain worker whose id has no suffix is shown by its id.

`DisplayNames` is the queue's side: the name each live worker is shown under, `alice` for the
first and `alice#2` for a second one at the same time, with a warning the first time a name
is shared.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict

from .trace import show_identity

SUFFIX = re.compile(rb"~[0-9a-f]{8}\Z")
MAX_IDENTITY = 255  # libzmq's limit on a routing id
REMEMBERED = 256  # names of gone workers kept for views and late messages


def wire_identity(name: str) -> bytes:
    """A routing id unique to this worker: its name (cut to fit) plus `~` and 8 hex digits."""
    return name.encode()[: MAX_IDENTITY - 9] + b"~" + secrets.token_hex(4).encode()


def chosen_name(identity: bytes) -> str:
    """The name part of a routing id (the whole id when it carries no suffix), shown as
    `trace.show_identity` shows any id (bounded, binary ids in hex)."""
    return show_identity(SUFFIX.sub(b"", identity))


class DisplayNames:
    """The name each worker is shown under, unique among the live ones."""

    def __init__(self) -> None:
        self.live: dict[bytes, str] = {}
        self.remembered: OrderedDict[bytes, str] = OrderedDict()
        self.warned: set[str] = set()

    def add(self, identity: bytes) -> list[tuple[str, str]]:
        """A worker said READY: give it a unique display name if it is new. Returns what a
        queue logs, as (kind, detail): "join" for a new worker, and a "duplicate" warning,
        once per name, when it shares its name with a live worker."""
        if identity in self.live:
            return []
        chosen = chosen_name(identity)
        taken = set(self.live.values())
        shown, n = chosen, 1
        while shown in taken:
            n += 1
            shown = f"{chosen}#{n}"
        self.live[identity] = shown
        self._remember(identity, shown)
        notes = [("join", f"{shown} joined")]
        if n > 1 and chosen not in self.warned:
            self.warned.add(chosen)
            notes.append(("duplicate", f"two workers are named {chosen!r}: both serve, shown "
                          f"as {chosen!r} and {shown!r} (ask one to pick another --name)"))
        return notes

    def remove(self, identity: bytes) -> None:
        """A worker left; its name is remembered (a view still shows it) and freed."""
        self.live.pop(identity, None)

    def __getitem__(self, identity: bytes) -> str:
        return self.live.get(identity) or self.remembered.get(identity) or chosen_name(identity)

    def _remember(self, identity: bytes, shown: str) -> None:
        self.remembered[identity] = shown
        self.remembered.move_to_end(identity)
        while len(self.remembered) > REMEMBERED:
            self.remembered.popitem(last=False)


GENERATED_ID_SIZE = 5  # libzmq's id for an anonymous peer: 0x00 + a 32-bit counter


class AddressMask:
    """What a worker sees of a client's address: the address itself, except for an id libzmq
    generated (`0x00` + its counter), which becomes `0x00` + a keyed hash of 8 bytes.

    A worker sees every client's address in the requests it serves. Were it libzmq's counter,
    the worker would know the next anonymous client's id, and could claim it first: libzmq
    then aborts the queue (docs/libzmq-routing-id-abort.md). The hash is the same for every
    request of one client, cannot be turned back into the counter without the key, and is 9
    bytes long, so nobody who claims it can collide with a generated id. The queue keeps the
    real address beside each request and matches the worker's reply against the mask.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key is not None else secrets.token_bytes(16)

    def __call__(self, address: bytes) -> bytes:
        if len(address) != GENERATED_ID_SIZE or address[0] != 0:
            return address
        return b"\x00" + hashlib.blake2b(address, key=self.key, digest_size=8).digest()
