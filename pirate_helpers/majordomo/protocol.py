"""Majordomo's frames: the MDP/0.1 and MDP/0.2 headers and commands, MMI's codes, and how
the trace shows a message.

Wire format (https://rfc.zeromq.org/spec:7/MDP, https://rfc.zeromq.org/spec:8/MMI), as the
broker's ROUTER sees it (the sender's routing id first, then REQ's or DEALER's empty frame):

    client -> broker  [client, "", "MDPC01", service, body...]
    broker -> client  [client, "", "MDPC01", service, body...]
    worker <-> broker [worker, "", "MDPW01", command, ...]
        READY 0x01 service | REQUEST 0x02 client, "", body... | REPLY 0x03 client, "", body...
        HEARTBEAT 0x04 | DISCONNECT 0x05

The same ROUTER also speaks MDP/0.2 (RFC 18, a draft) with the empty first frame that
majortomo keeps: headers `MDPC02`/`MDPW02`, clients send REQUEST 0x01 and get their reply
in parts, PARTIAL 0x02... then FINAL 0x03 (body only, no service frame); worker commands are
renumbered (READY 1, REQUEST 2, PARTIAL 3, FINAL 4, HEARTBEAT 5, DISCONNECT 6). Versions
mix freely per peer; a 0.1 client of a 0.2 worker gets the FINAL part only. majortomo
0.2.0's worker works with it; its client does not, as it numbers client commands as worker
ones (REQUEST 2, PARTIAL 3, FINAL 4), against RFC 18 (tests/test_majortomo_interop.py).
"""

from __future__ import annotations

from ..trace import show_bytes

MDPC = b"MDPC01"  # the client header, first frame after the empty one
MDPW = b"MDPW01"  # the worker header
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"
COMMAND_NAMES = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", HEARTBEAT: "HEARTBEAT",
                 DISCONNECT: "DISCONNECT"}
# MDP/0.2 (RFC 18, draft) with majortomo's empty first frame: new headers, renumbered
# worker commands, and replies in parts (PARTIAL...) ended by FINAL.
MDPC2, MDPW2 = b"MDPC02", b"MDPW02"
C2_REQUEST, C2_PARTIAL, C2_FINAL = b"\x01", b"\x02", b"\x03"
PARTIAL = b"\x13"  # inside the broker only: a 0.2 worker's PARTIAL, put in 0.1 terms
W2_COMMANDS = {b"\x01": READY, b"\x02": REQUEST, b"\x03": PARTIAL, b"\x04": REPLY,
               b"\x05": HEARTBEAT, b"\x06": DISCONNECT}  # 0.2 code -> the 0.1 code
W2_CODES = {ours: theirs for theirs, ours in W2_COMMANDS.items()}
W2_NAMES = {**COMMAND_NAMES, REPLY: "FINAL", PARTIAL: "PARTIAL"}
WORKER_HEADERS = (MDPW, MDPW2)
MMI = b"mmi."
MMI_FOUND, MMI_NOT_FOUND, MMI_NOT_IMPLEMENTED = b"200", b"404", b"501"
MAX_QUEUED = 10_000  # requests waiting in all services before new ones are refused
MAX_QUEUED_PER_CLIENT = 1_000  # requests one client may have waiting
UNOFFERED_SHARE = 0.5  # of MAX_QUEUED, the most that requests to services nobody offers use
UNOFFERED_EXPIRY_S = 10.0  # a request to a service nobody offers waits this long at most
PURGED_REMEMBERED = 5  # workers lately forgotten (expired, gone) a dashboard still shows


def describe(message: list[bytes]) -> str:
    """How the trace shows a message between broker and worker (the routing id left out):
    the command's name, plus the body of a request or reply."""
    if len(message) >= 3 and message[0] == b"" and message[1] in WORKER_HEADERS:
        code = message[2] if message[1] == MDPW else W2_COMMANDS.get(message[2], message[2])
        names = COMMAND_NAMES if message[1] == MDPW else W2_NAMES
        command = names.get(code, message[2].hex())
        rest = message[3:]
        if code in (REQUEST, REPLY, PARTIAL) and b"" in rest:
            rest = rest[rest.index(b"") + 1:]
        return f"{command} {show_bytes(rest)}".rstrip()
    return show_bytes(message)
