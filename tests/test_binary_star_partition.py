"""The state link between the two servers cut while clients reach both: a real partition
between network namespaces (root and `ip netns`), and the relay (anywhere)."""

import subprocess
import time

import pytest

from pirate_helpers import netns
from pirate_helpers.course.split_brain import SplitBrainLab

HEARTBEAT = 0.1
EXPIRY = 2 * HEARTBEAT
WAYS = ["relay", pytest.param("namespaces", marks=pytest.mark.skipif(
    netns.unavailable() is not None, reason=str(netns.unavailable())))]


def ready(states):
    return states == {"primary": "active", "backup": "passive"}


@pytest.mark.parametrize("way", WAYS)
def test_cut_state_link_with_clients_on_the_primary_makes_no_second_active(way):
    with SplitBrainLab(HEARTBEAT, namespaces=way == "namespaces") as lab:
        assert lab.namespaces == (way == "namespaces")
        assert lab.wait_for(ready)
        lab.cut()
        deadline = time.monotonic() + 4 * EXPIRY  # the backup's peer expires twice over
        answered = 0
        while time.monotonic() < deadline:
            answered += lab.ask("both", 10)
        assert answered >= 10 and lab.states() == {"primary": "active", "backup": "passive"}
        lab.heal()
        assert lab.ask("both", 5) == 5
        assert lab.states() == {"primary": "active", "backup": "passive"}


@pytest.mark.parametrize("way", WAYS)
def test_two_islands_each_with_clients_both_go_active_and_the_pair_stops_when_they_meet(way):
    with SplitBrainLab(HEARTBEAT, namespaces=way == "namespaces") as lab:
        assert lab.wait_for(ready)
        lab.cut()
        assert lab.ask("backup", 3) == 3  # its clients cannot reach the primary: failover
        assert lab.ask("primary", 3) == 3
        assert lab.states() == {"primary": "active", "backup": "active"}
        lab.heal()
        assert lab.wait_for(lambda states: "fatal" in states.values())


@pytest.mark.parametrize("way", WAYS)
def test_the_lab_leaves_nothing_behind(way):
    with SplitBrainLab(HEARTBEAT, namespaces=way == "namespaces") as lab:
        assert lab.wait_for(ready)
        made = list(lab.net.namespaces.values()) if lab.net else []
    assert all(not actor.running for actor in lab._actors.values())
    if made:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert not set(made) & {line.split()[0] for line in listed.stdout.splitlines()}
        assert all(server.process.poll() is not None for server in lab._servers.values())
