"""Binary Star as processes and actors: a primary killed under load, restarted, and garbage
on both of its sockets. (The state machine alone: test_binary_star_state.py; the state link
cut: test_binary_star_partition.py.)"""

import random
import signal
import socket
import time

import pytest
import zmq
from processes import Role, poll_until, run

from pirate_helpers.binary_star import BinaryStarClient, BinaryStarServer, State
from pirate_helpers.relay import parse_tcp
from pirate_helpers.security import KeyPair

HEARTBEAT_MS = 100
TIMEOUT_MS = 100
SETTLE_MS = 2 * HEARTBEAT_MS  # the client's default rule: two heartbeats
FAILOVER_BOUND_S = (TIMEOUT_MS + SETTLE_MS) / 1000
"""A request sent just before the primary dies times out, the client waits `settle`, then
asks the backup, which has not heard the primary for 2 heartbeats by then: so the backup
takes over at most timeout + 2 heartbeats after the kill (scheduling slack aside)."""
SLACK_S = 0.4  # two shared cores under load


def server(role: str, folder, *extra: str) -> Role:
    peer = "backup" if role == "primary" else "primary"
    return Role("binary-star", f"--{role}", "--publish", f"ipc://{folder}/{role}.state",
                "--subscribe", f"ipc://{folder}/{peer}.state", "--heartbeat-ms",
                str(HEARTBEAT_MS), "--quiet", *extra)


@pytest.mark.parametrize("role, option", [("binary-star", "--subscribe"),
                                          ("binary-star-client", "--settle-ms")])
def test_the_binary_star_roles_have_help(role, option):
    result = run(role, "--help")
    assert result.returncode == 0 and option in result.stdout


def test_the_client_needs_both_servers_and_a_server_its_role():
    one = run("binary-star-client", "--connect", "tcp://127.0.0.1:5555")
    assert one.returncode == 2 and "give it twice" in one.stderr
    neither = run("binary-star", "--subscribe", "tcp://127.0.0.1:5555")
    assert neither.returncode == 2 and "--primary --backup" in neither.stderr.replace("|", "")


def test_off_loopback_a_server_needs_curve_or_insecure():
    result = run("binary-star", "--primary", "--frontend", "tcp://*:0",
                 "--subscribe", "tcp://127.0.0.1:5555")
    assert result.returncode == 2 and "give --curve" in result.stderr


def test_two_primaries_is_a_fatal_error_in_one_line(tmp_path):
    first = Role("binary-star", "--primary", "--publish", f"ipc://{tmp_path}/a",
                 "--subscribe", f"ipc://{tmp_path}/b", "--heartbeat-ms", "50", "--quiet")
    second = Role("binary-star", "--primary", "--publish", f"ipc://{tmp_path}/b",
                  "--subscribe", f"ipc://{tmp_path}/a", "--heartbeat-ms", "50", "--quiet")
    try:
        assert poll_until(lambda: first.process.poll() is not None
                     or second.process.poll() is not None, timeout=10)
        dead = first if first.process.poll() is not None else second
        assert dead.stop() == 1  # the first to hear the other; the other hears nobody now
    finally:
        first.stop(), second.stop()
    fatal = [line for line in dead.stderr.splitlines() if "fatal" in line]
    assert fatal == ["binary-star: fatal: both servers were started as primary: start one "
                     "with --primary, the other with --backup"]


def test_primary_killed_under_load_fails_over_within_the_bound_and_loses_nothing(tmp_path):
    """SIGKILL the primary while a client sends 1500 requests: every one is answered and
    matches; the backup goes active within timeout + 2 heartbeats of the kill. Restarted on
    its endpoint, the primary hears the active backup and goes passive (failback is by hand)."""
    primary, backup = server("primary", tmp_path), server("backup", tmp_path)
    try:
        frontend = primary.endpoint("primary listening on")
        backup_frontend = backup.endpoint("backup listening on")
        primary.expect("active  heard the backup")
        backup.expect("passive  heard an active peer")
        client = Role("binary-star-client", "--connect", frontend, "--connect",
                      backup_frontend, "--requests", "1500", "--timeout-ms", str(TIMEOUT_MS),
                      "--settle-ms", str(SETTLE_MS), "--name", "c")
        client.expect(r"recv  c:300$", timeout=20)
        primary.process.kill()
        killed_at = time.monotonic()
        backup.expect("active  a client asked and the peer expired", timeout=5)
        failover_s = time.monotonic() - killed_at
        summary = client.expect(r"(\d+) of 1500 answered, (\d+) mismatched, (\d+) (failovers?), "
                                r"longest wait ([\d.]+) s", timeout=30)
        assert summary.group(1, 2) == ("1500", "0"), summary.group(0)
        assert client.stop(signum=None) == 0, client.stderr
        assert int(summary.group(3)) >= 1
        assert (summary.group(4) == "failover") == (summary.group(3) == "1"), "noun agrees"
        assert failover_s <= FAILOVER_BOUND_S + SLACK_S, failover_s
        assert float(summary.group(5)) <= FAILOVER_BOUND_S + SLACK_S
        print(f"failover {failover_s:.3f} s after SIGKILL (bound {FAILOVER_BOUND_S:.3f} s = "
              f"timeout + 2 heartbeats); longest client wait {summary.group(5)} s")

        restarted = server("primary", tmp_path, "--frontend", frontend)
        try:
            restarted.expect("passive  heard an active peer")
            again = run("binary-star-client", "--connect", frontend, "--connect",
                        backup_frontend, "--requests", "20", "--timeout-ms", str(TIMEOUT_MS),
                        "--settle-ms", str(SETTLE_MS), "--quiet")
            assert "20 of 20 answered, 0 mismatched" in again.stdout, again.stderr
            assert restarted.stop() == 0
            assert "0 served" in restarted.all_lines()[-1]  # passive: it refused them all
        finally:
            restarted.stop()
        assert backup.process.poll() is None  # no split brain: the backup serves on
    finally:
        primary.stop(signum=signal.SIGKILL), backup.stop()


# -- garbage ------------------------------------------------------------------------------
GARBAGE = [[b""], [b"0"], [b"5"], [b"33"], [b"3", b"3"], [b"\xff" * 5000], [b"ACTIVE"],
           [b"3\x00"], [b"-4"]]


@pytest.fixture
def hostile_pub(tmp_path):
    """A PUB bound where a server expects its peer: it publishes whatever the test says."""
    ctx = zmq.Context()
    ctx.linger = 0
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{tmp_path}/peer")
    yield f"ipc://{tmp_path}/peer", pub
    ctx.destroy()



def test_garbage_on_the_state_socket_never_changes_the_state_nor_counts_as_a_heartbeat(
        hostile_pub):
    """A backup hears ACTIVE between random garbage: passive, garbage counted. Then only
    garbage: the peer expires as if silent, and a client's request makes the backup active."""
    endpoint, pub = hostile_pub
    rng = random.Random(24)
    backup = BinaryStarServer("backup", primary=False, subscribe=endpoint,
                              heartbeat_interval=0.05)
    with backup:
        assert poll_until(lambda: pub.send(b"3") or backup.state == State.PASSIVE)
        sent = 0
        for _ in range(300):
            pub.send_multipart(rng.choice(GARBAGE) + ([rng.randbytes(3)] if rng.random() < 0.2
                                                       else []))
            sent += 1
            if sent % 20 == 0:  # in batches the server's queue (100 messages) can hold
                assert poll_until(lambda n=sent: backup.bad_states == n)
                pub.send(b"3")
        assert poll_until(lambda: backup.bad_states == sent)
        assert backup.state == State.PASSIVE and backup.running
        with BinaryStarClient([backup.endpoint, backup.endpoint], timeout=0.2, settle=0.1,
                              retries=3) as client:
            for _ in range(5):
                pub.send_multipart(rng.choice(GARBAGE))  # not one of them is a heartbeat
            assert client.request(b"after garbage") == [b"after garbage"]
        assert backup.state == State.ACTIVE


def test_garbage_on_the_frontend_is_counted_and_the_server_serves_on(hostile_pub):
    endpoint, pub = hostile_pub
    primary = BinaryStarServer("primary", primary=True, subscribe=endpoint,
                               heartbeat_interval=0.05)
    with primary:
        assert poll_until(lambda: pub.send(b"2") or primary.state == State.ACTIVE)
        ctx = zmq.Context()
        ctx.linger = 0
        try:
            dealer = ctx.socket(zmq.DEALER)
            dealer.connect(primary.endpoint)
            for frames in ([b"no envelope"], [b"a", b"b"], [b""] * 70, [b"x" * 10_000]):
                dealer.send_multipart(frames)
            with socket.create_connection(parse_tcp(primary.endpoint)) as raw:
                # libzmq reads bytes without ZMTP's greeting as ZMTP 1.0 frames: what gets
                # through is a message without an envelope, counted like the others
                raw.sendall(random.Random(24).randbytes(4096))
            assert poll_until(lambda: primary.rejected >= 4)
            with BinaryStarClient([primary.endpoint, primary.endpoint]) as client:
                assert client.request(b"still here") == [b"still here"]
        finally:
            ctx.destroy()
        assert primary.state == State.ACTIVE and primary.served == 1


def test_with_curve_the_state_link_and_the_clients_need_the_keys(tmp_path):
    """Each server keeps its key in a file, so the peer's join line is known before it
    starts; a client with the join lines is answered."""
    keys = {who: KeyPair.load_or_create(tmp_path / f"{who}.key") for who in ("primary",
                                                                              "backup")}
    state = {who: f"ipc://{tmp_path}/{who}.state" for who in keys}

    def curve_server(who: str, peer: str) -> Role:
        return Role("binary-star", f"--{who}", "--curve", "--key-file",
                    str(tmp_path / f"{who}.key"), "--publish", state[who], "--subscribe",
                    f"{state[peer]}/{keys[peer].public_hex}", "--heartbeat-ms", "50",
                    "--quiet")

    primary, backup = curve_server("primary", "backup"), curve_server("backup", "primary")
    try:
        joins = [server.expect(r"join \(clients\): (\S+)").group(1)
                 for server in (primary, backup)]
        assert all(join.endswith(keys[who].public_hex) for join, who in zip(
            joins, keys, strict=True))
        primary.expect("active  heard the backup")
        backup.expect("passive  heard an active peer")
        answered = run("binary-star-client", "--connect", joins[0], "--connect", joins[1],
                       "--requests", "5", "--timeout-ms", "500", "--quiet")
        assert "5 of 5 answered, 0 mismatched" in answered.stdout, answered.stderr
        keyless = run("binary-star-client", "--connect", joins[0].rsplit("/", 1)[0],
                      "--connect", joins[1].rsplit("/", 1)[0], "--requests", "1",
                      "--timeout-ms", "100", "--settle-ms", "0", "--retries", "2", "--quiet")
        assert keyless.returncode == 2 and "0 of 1 answered" in keyless.stderr
    finally:
        primary.stop(), backup.stop()
