"""The one place that makes separate hosts (`pirate_helpers.netns`): unique names, a link that
really cuts, nothing left behind (an exception, interpreter exit, a killed run), and one line
saying why where namespaces cannot be made."""

import errno
import os
import socket
import subprocess
import sys
import time

import pytest

from pirate_helpers import netns

A, B = "198.18.0.1", "198.18.0.2"
LINK = [("a", f"{A}/30", "b", f"{B}/30")]


def listed() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture
def available():
    if reason := netns.unavailable():
        pytest.skip(reason)


def test_names_are_unique_and_carry_the_pid():
    names = {f"{netns.unique_prefix()}x" for _ in range(100)}
    assert len(names) == 100
    assert all(netns.OURS.match(name)[1] == str(os.getpid()) for name in names)


def test_without_ip_it_says_why_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ip`, no `ss` here
    reason = netns.unavailable()
    assert reason == "needs iproute2 (`ip`, `ss` not found)"
    with pytest.raises(netns.Unavailable, match=r"^needs iproute2 .*not found\)$"), \
            netns.network(["a"]):
        pass


def test_without_root_it_says_why(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "needs root for network namespaces"


def test_everything_is_deleted_after_an_exception(available):
    with pytest.raises(KeyError), netns.network(["a"], [(None, "198.18.9.1/30", "a",
                                                         "198.18.9.2/30")]) as net:
        made, here = set(net.namespaces.values()), net.device(None, "a")
        assert made <= listed()
        raise KeyError("the block failed")
    assert not made & listed()
    assert subprocess.run(["ip", "link", "show", here], capture_output=True).returncode


def test_two_networks_in_one_process_do_not_collide(available):
    with netns.network(["a"]) as one, netns.network(["a"]) as other:
        assert one.namespaces["a"] != other.namespaces["a"]


def test_a_cut_link_leaves_a_connect_unanswered_and_a_heal_restores_it(available):
    def connect() -> socket.socket:
        sock = socket.socket()
        sock.setblocking(False)
        assert sock.connect_ex((B, 9)) == errno.EINPROGRESS
        return sock

    with netns.network(["a", "b"], LINK) as net:
        net.cut("b", "a")  # the far end: a still routes to b, and hears nothing back
        sock = netns.run_inside(net.namespaces["a"], connect)
        try:
            deadline = time.monotonic() + 5
            while net.connecting("a", B) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)  # a bounded poll of the kernel's socket table
            assert net.connecting("a", B) == 1, "the SYN is never answered"
        finally:
            sock.close()
        net.heal("b", "a")
        with pytest.raises(ConnectionRefusedError):  # nothing listens on b: an RST at once
            netns.run_inside(net.namespaces["a"], lambda: socket.create_connection((B, 9), 5))


def test_interpreter_exit_deletes_what_was_not_closed(available):
    code = ("import subprocess\n"
            "from pirate_helpers import netns\n"
            "made = netns.network(['a'])\n"
            "name = made.__enter__().namespaces['a']\n"
            "listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True)\n"
            "print(name, name in listed.stdout, flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    name, existed = done.stdout.split()
    assert existed == "True" and name not in listed()


def test_a_killed_runs_namespaces_are_deleted_by_the_next(available):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    left_over = f"pp{gone.pid}n1a"
    subprocess.run(["ip", "netns", "add", left_over], check=True, timeout=10)
    try:
        with netns.network(["a"]) as net:
            assert left_over not in listed()
            assert net.namespaces["a"] in listed(), "a live process's namespace stays"
    finally:
        subprocess.run(["ip", "netns", "del", left_over], capture_output=True, timeout=10)


def test_the_exit_handler_deletes_what_is_still_open(available):
    with netns.network(["a"]) as net:
        netns._delete_left_over()  # what atexit runs, should the block never end
        assert net.namespaces["a"] not in listed()
