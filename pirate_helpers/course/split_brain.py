"""Lesson 11's set-ups: a Binary Star pair in this process, and the split-brain experiment.

The experiment cuts the link between the two servers only, while clients can still reach
both. Where this machine allows (root and iproute2's `ip netns`) it is a real partition:
each server is a process in its own network namespace, the clients in a third, joined by
three veth links (primary-backup, clients-primary, clients-backup); the cut takes the
primary-backup link down, so packets are simply lost and no connection closes. Elsewhere it
is the course's relay on the state link: the relay accepts and acknowledges bytes itself, so
under its cut the connections stay up and what was sent is held and delivered, late and in
order, when the cut heals (a real network would have the senders retransmit). Both show the
same thing to the servers: their peer's state stops arriving.
"""

from __future__ import annotations

import atexit
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

from .. import netns
from ..binary_star import BinaryStarClient, BinaryStarServer
from ..lazy import ServerUnavailable
from ..relay import Relay
from ..trace import Trace


def spare_port() -> int:
    """A loopback port that is free now. The two servers must each know where the other
    publishes before either starts; everywhere else the course binds port 0 instead."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_pair(heartbeat: float, trace: Trace, *,
               via_relays: bool = False) -> tuple[BinaryStarServer, BinaryStarServer,
                                                  list[Relay]]:
    """A primary and a backup in this process, each subscribed to the other's state (each
    through a relay of its own with `via_relays`); both started."""
    publish = {who: f"tcp://127.0.0.1:{spare_port()}" for who in ("primary", "backup")}
    heard_at = ({who: f"tcp://127.0.0.1:{spare_port()}" for who in publish} if via_relays
                else publish)
    servers = {who: BinaryStarServer(who, primary=who == "primary", publish=publish[who],
                                     subscribe=heard_at["backup" if who == "primary"
                                                        else "primary"],
                                     heartbeat_interval=heartbeat, trace=trace).start()
               for who in publish}
    relays = [Relay(publish[who], f"state link from {who}", listen=heard_at[who],
                    trace=trace).start() for who in publish] if via_relays else []
    return servers["primary"], servers["backup"], relays


SUMMARY = re.compile(r"(\d+) of (\d+) answered")
STATE_LINE = re.compile(r"\s(primary|backup)  (primary|backup|active|passive|fatal)  ")


class _Server:
    """One `pirate binary-star` process in a namespace; its stdout read by a thread into
    the newest state it logged."""

    def __init__(self, namespace: str, *args: str) -> None:
        self.process = subprocess.Popen(
            netns.command(namespace, sys.executable, "-m", "pirate_helpers", "binary-star",
                          *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.state = "starting"
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if match := STATE_LINE.search(line):
                self.state = match.group(2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)


class SplitBrainLab:
    """A pair, and clients that can reach both servers; `cut()` and `heal()` the link
    between the servers only; `ask(island, n)` sends n requests from clients on `island`
    ("both": they can reach either server; "primary" or "backup": only that one) and
    returns how many were answered. `states()` is each server's newest state. Use it as a
    context manager: everything it made is removed on the way out."""

    def __init__(self, heartbeat: float = 0.1, *, namespaces: bool | None = None) -> None:
        reason = netns.unavailable() if namespaces is not False else "not asked for"
        self.namespaces = reason is None
        self.partition = ("a real partition: the link between two network namespaces "
                          "taken down" if self.namespaces else
                          f"the relay on the state link ({reason})")
        self.heartbeat = heartbeat
        self.trace = Trace()
        self._network = ExitStack()  # the namespaces, when they are used
        self.net: netns.Network | None = None
        self._servers: dict[str, _Server] = {}
        self._relays: list[Relay] = []
        self._actors: dict[str, BinaryStarServer] = {}

    # -- set-up ----------------------------------------------------------------------------
    def __enter__(self) -> SplitBrainLab:
        atexit.register(self.close)  # a kernel that exits mid-experiment leaves nothing
        try:
            self._start_namespaces() if self.namespaces else self._start_relays()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start_relays(self) -> None:
        primary, backup, self._relays = start_pair(self.heartbeat, self.trace,
                                                   via_relays=True)
        self._actors = {"primary": primary, "backup": backup}
        self._frontends = {"primary": primary.endpoint, "backup": backup.endpoint}

    def _start_namespaces(self) -> None:
        # primary-backup (the state link), clients-primary, clients-backup; .1 the left end
        links = [("primary", "198.18.101.1/24", "backup", "198.18.101.2/24"),
                 ("primary", "198.18.102.1/24", "clients", "198.18.102.2/24"),
                 ("backup", "198.18.103.1/24", "clients", "198.18.103.2/24")]
        self.net = self._network.enter_context(
            netns.network(["primary", "backup", "clients"], links))
        self._frontends = {"primary": "tcp://198.18.102.1:5555",
                           "backup": "tcp://198.18.103.1:5555"}
        publish = {"primary": "tcp://198.18.101.1:5556", "backup": "tcp://198.18.101.2:5556"}
        for who, peer in (("primary", "backup"), ("backup", "primary")):
            # --insecure: these addresses exist only inside this machine's namespaces
            self._servers[who] = _Server(self.net.namespaces[who], f"--{who}", "--insecure",
                                         "--quiet", "--frontend", self._frontends[who],
                                         "--publish", publish[who], "--subscribe",
                                         publish[peer], "--heartbeat-ms",
                                         f"{self.heartbeat * 1000:g}")

    # -- the experiment --------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        if self.namespaces:
            return {who: server.state for who, server in self._servers.items()}
        return {who: "fatal" if actor.fatal else actor.state.name.lower()
                for who, actor in self._actors.items()}

    def wait_for(self, condition: Callable[[dict[str, str]], bool],
                 timeout: float = 10.0) -> bool:
        """Wait until `condition(self.states())` holds; False if `timeout` s pass first."""
        deadline = time.monotonic() + timeout
        while not condition(self.states()):
            if time.monotonic() > deadline:
                return False
            time.sleep(self.heartbeat / 4)
        return True

    def cut(self) -> None:
        if self.namespaces:
            self.net.cut("primary", "backup")
        else:
            for relay in self._relays:
                relay.cut()

    def heal(self) -> None:
        if self.namespaces:
            self.net.heal("primary", "backup")
        else:
            for relay in self._relays:
                relay.heal()

    def ask(self, island: str, requests: int) -> int:
        """Requests from clients on `island`, one at a time (timeout three heartbeats, a
        settle of two, 4 tries); how many were answered before the first given up. A reply
        a busy machine delays past the timeout sends the clients to the backup, whose
        peer is gone: their vote makes it active, as it would a slow primary's clients."""
        servers = ([self._frontends["primary"], self._frontends["backup"]] if island == "both"
                   else [self._frontends[island]] * 2)
        timing = {"timeout": 3 * self.heartbeat, "settle": 2 * self.heartbeat, "retries": 4}
        if not self.namespaces:
            with BinaryStarClient(servers, name=f"clients on {island}", trace=self.trace,
                                  **timing) as client:
                try:
                    for n in range(1, requests + 1):
                        client.request(str(n).encode())
                except ServerUnavailable:
                    pass
                return client.answered
        namespace = self.net.namespaces["clients" if island == "both" else island]
        result = subprocess.run(
            netns.command(namespace, sys.executable, "-m", "pirate_helpers",
                          "binary-star-client", "--connect", servers[0], "--connect", servers[1],
                          "--requests", str(requests), "--name", island, "--quiet",
                          "--timeout-ms", f"{timing['timeout'] * 1000:g}",
                          "--settle-ms", f"{timing['settle'] * 1000:g}",
                          "--retries", str(timing["retries"])),
            capture_output=True, text=True, timeout=60)
        match = SUMMARY.search(result.stdout + result.stderr)
        return int(match.group(1)) if match else 0

    def close(self) -> None:
        atexit.unregister(self.close)
        for server in self._servers.values():
            server.stop()
        for actor in [*self._relays, *self._actors.values()]:
            actor.stop()
        self._network.close()
