"""Paranoid Pirate's frames (RFC 6, PPP) and the pace both sides keep: what the queue and its
workers share."""

from ..trace import show_bytes

PPP_READY = b"\x01"  # worker -> queue: "I can take a request"
PPP_HEARTBEAT = b"\x02"  # both ways: "I am still here"
COMMAND_NAMES = {PPP_READY: "READY", PPP_HEARTBEAT: "HEARTBEAT"}
READY_MESSAGE, HEARTBEAT_MESSAGE = [PPP_READY], [PPP_HEARTBEAT]  # as frames after the identity
WORKER_ENVELOPE = 1  # a reply comes back with the DEALER worker's id in front of its request
BUNCHED = 0.02  # of our interval: heartbeats this close were held up on the way, not sent so
MISMATCH_FACTOR = 1.5  # heartbeats this much further apart (or closer) than ours: settings differ



def describe(message: list[bytes]) -> str:
    """How the trace shows a message: a command's name, or the body without its envelope."""
    if len(message) == 1 and message[0] in COMMAND_NAMES:
        return COMMAND_NAMES[message[0]]
    if b"" in message:
        message = message[message.index(b"") + 1 :]
    return show_bytes(message)


def envelope_size(message: list[bytes]) -> int:
    """Frames up to and including the empty delimiter, or 0 if the message has none (or
    has nothing after it): such a message is not a request or a reply."""
    try:
        delimiter = message.index(b"", 1)
    except ValueError:
        return 0
    return delimiter + 1 if delimiter < len(message) - 1 else 0
