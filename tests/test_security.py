"""Who may join a serving socket: loopback by default, CURVE or an explicit --insecure."""

import contextlib
import re
import socket

import pytest
import zmq
from processes import Role, poll_until, run

from pirate_helpers import (
    Faults,
    LazyPirateClient,
    LazyServer,
    ParanoidQueue,
    ParanoidWorker,
    netns,
)
from pirate_helpers.lazy import ServerUnavailable
from pirate_helpers.security import (
    Join,
    KeyPair,
    OpenToNetwork,
    Security,
    advertised,
    is_loopback,
)
from pirate_helpers.simple import SimplePirateQueue

SERVING = {"lazy-server": "--bind", "simple-queue": "--frontend", "paranoid-queue": "--backend"}


def other_interface() -> str | None:
    names = [name for _, name in socket.if_nameindex() if name != "lo"]
    return names[0] if names else None



# -- pure parts ---------------------------------------------------------------------------
def test_loopback_is_only_what_other_machines_cannot_reach():
    for local in ("tcp://127.0.0.1:5555", "tcp://127.0.0.9:1", "tcp://localhost:5555",
                  "tcp://[::1]:5555", "tcp://lo:5555", "ipc:///tmp/x", "inproc://x"):
        assert is_loopback(local), local
    for public in ("tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://192.0.2.2:5555",
                   "tcp://10.1.2.3:1", "tcp://[fd00::2]:5555"):
        assert not is_loopback(public), public
    interface = other_interface()
    if interface:
        assert not is_loopback(f"tcp://{interface}:5555"), interface


def test_a_join_token_pastes_unquoted_and_round_trips():
    keys = KeyPair.generate()
    token = Security.curve(keys).join("tcp://127.0.0.1:5555")
    # letters, digits and : / . only: nothing bash, zsh, PowerShell or cmd would interpret
    assert re.fullmatch(r"tcp://127\.0\.0\.1:5555/[0-9a-f]{64}", token), token
    join = Join.parse(token)
    assert join.endpoint == "tcp://127.0.0.1:5555" and join.server_key == keys.public
    assert str(join) == token
    assert Join.parse("tcp://127.0.0.1:5555") == Join("tcp://127.0.0.1:5555")
    with pytest.raises(ValueError, match="64 hex digits"):
        Join.parse("tcp://127.0.0.1:5555/" + "ab" * 16)
    assert Join.parse("ipc:///tmp/abc").endpoint == "ipc:///tmp/abc"


@pytest.mark.parametrize("keyed", [True, False])
def test_a_queues_join_line_carries_its_heartbeat_and_liveness(keyed):
    keys = KeyPair.generate()
    security = Security.curve(keys) if keyed else Security()
    token = security.join("tcp://127.0.0.1:5556", heartbeat_interval=0.25, liveness=4)
    # still nothing a shell interprets: letters, digits, - : / .
    assert re.fullmatch(r"tcp://[0-9.]+:5556(/[0-9a-f]{64})?/heartbeat-250ms-liveness-4", token)
    assert not set(token) & set("?&*!;|<>^%$#@,'\"(){}[]` ")
    join = Join.parse(token)
    assert (join.endpoint, join.heartbeat_interval, join.liveness) == (
        "tcp://127.0.0.1:5556", 0.25, 4)
    assert join.server_key == (keys.public if keyed else None)
    assert str(join) == token
    with pytest.raises(ValueError, match="liveness at least 1"):
        Join.parse("tcp://127.0.0.1:5556/heartbeat-100ms-liveness-0")


def test_the_advertised_host_is_one_a_student_can_type():
    for bound in ("tcp://0.0.0.0:5555", "tcp://*:5555"):
        host = advertised(bound).removeprefix("tcp://").rsplit(":", 1)[0]
        assert host not in ("0.0.0.0", "*", "") and advertised(bound).endswith(":5555")
    assert advertised("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:5555"
    assert advertised("tcp://0.0.0.0:5555", "laptop.local") == "tcp://laptop.local:5555"


def test_a_key_file_keeps_the_same_pair(tmp_path):
    path = tmp_path / "keys" / "server"
    first = KeyPair.load_or_create(path)
    assert path.exists() and (tmp_path / "keys" / "server.public.key").exists()
    assert path.stat().st_mode & 0o077 == 0, "the secret key is readable by others"
    again = KeyPair.load_or_create(path)
    assert again == first and again.secret == first.secret
    public, secret = zmq.auth.load_certificate(tmp_path / "keys" / "server.public.key")
    assert public == first.public and secret is None


def test_classes_refuse_an_open_bind_too():
    with pytest.raises(OpenToNetwork, match="--curve.*--insecure"):
        LazyServer("open", bind="tcp://0.0.0.0:0").start()


# -- CURVE on loopback, in one process ------------------------------------------------------
def test_curve_join_round_trip_through_the_paranoid_queue():
    security = Security.curve()
    with ParanoidQueue("classroom", security=security) as queue:
        assert queue.join_workers.endswith(f"/{security.keys.public_hex}"
                                           "/heartbeat-100ms-liveness-3")
        with ParanoidWorker("alice", connect=queue.join_workers), \
                LazyPirateClient(queue.join_clients, timeout=2) as client:
            assert client.request(b"hello") == [b"hello"]
        assert queue.handshake_failures == 0


def test_a_learners_own_socket_joins_with_the_standard_options():
    with LazyServer("curved", security=Security.curve()) as server, zmq.Context() as ctx:
        join = Join.parse(server.join_clients)
        req = ctx.socket(zmq.REQ)
        req.linger = 0
        req.curve_serverkey = join.server_key
        req.curve_publickey, req.curve_secretkey = zmq.curve_keypair()
        req.connect(join.endpoint)
        req.send(b"mine")
        assert req.poll(2000) and req.recv() == b"mine"
        req.close()


def test_no_key_and_a_wrong_key_never_get_a_reply_and_are_counted():
    with LazyServer("curved", security=Security.curve()) as server:
        no_key = Join(server.endpoint)
        wrong_key = Join(server.endpoint, KeyPair.generate().public)
        for join in (no_key, wrong_key):
            failed_before = server.handshake_failures
            with LazyPirateClient(join, timeout=0.3, retries=1) as client:
                with pytest.raises(ServerUnavailable):
                    client.request(b"let me in")
            if join is no_key:  # it may hang up first on CURVE's greeting: closed mid-way
                assert poll_until(lambda: server.handshake_failures
                                + server.closed_before_handshake >= 1)
            else:  # a wrong key is always found by the server: a failed handshake
                assert poll_until(lambda b=failed_before: server.handshake_failures > b)
        assert server.received == 0, "a request got past the handshake"
        with LazyPirateClient(server.join_clients, timeout=2) as client:  # the right key works
            assert client.request(b"ok") == [b"ok"]


@pytest.mark.parametrize("queue_class", [SimplePirateQueue, ParanoidQueue])
def test_strangers_on_the_workers_side_get_no_request_and_are_counted(queue_class):
    """The backend's failed handshakes count too (its disconnect monitor once replaced them)."""
    with queue_class("curved", security=Security.curve()) as queue:
        context = zmq.Context()
        context.linger = 0
        strangers = []
        try:
            for n, server_key in enumerate((None, KeyPair.generate().public), start=1):
                stranger = context.socket(zmq.DEALER)
                stranger.reconnect_ivl = -1  # one attempt: exactly one failure
                Join(queue.backend_endpoint, server_key).connect(stranger)
                with contextlib.suppress(zmq.Again):  # refused already: no connection left
                    stranger.send(b"\x01", zmq.NOBLOCK)  # READY: give me work
                strangers.append(stranger)
                # a stranger with no key may hang up first on seeing CURVE's greeting: then
                # it counts as closed mid-handshake; a wrong key is always a failed handshake
                assert queue.wait_until(lambda n=n: queue.handshake_failures
                                        + queue.closed_before_handshake == n, 5), n
                assert queue.wait_for_disconnects(n), "a failed handshake closes the connection"
            assert queue.handshake_failures >= 1, "the wrong key"
            with LazyPirateClient(queue.join_clients, timeout=0.3, retries=1) as client:
                with pytest.raises(ServerUnavailable):
                    client.request(b"for a stranger?")
            assert not any(stranger.poll(0) for stranger in strangers)
        finally:
            context.destroy()


def test_a_bare_connect_and_close_is_counted_apart_from_a_wrong_key():
    """A port scan's connect and close is no key problem: the dashboard says which is which
    (50 port-scan connects once counted as 50 peers with a wrong or missing key)."""
    with ParanoidQueue("scanned", security=Security.curve()) as queue:
        port = int(queue.frontend_endpoint.rsplit(":", 1)[1])
        for _ in range(5):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert queue.wait_until(lambda: queue.closed_before_handshake == 5, 5), \
            queue.closed_before_handshake
        assert queue.handshake_failures == 0
        with LazyPirateClient(Join(queue.frontend_endpoint, KeyPair.generate().public),
                              timeout=0.3, retries=1) as client:
            with pytest.raises(ServerUnavailable):
                client.request(b"wrong key")
        assert queue.wait_until(lambda: queue.handshake_failures >= 1, 5)  # once per retry
        counts = queue.snapshot()["counts"]
        assert counts["failed handshakes"] >= 1 and counts["closed before handshake"] == 5


def test_allow_admits_only_the_clients_whose_keys_are_in_the_folder(tmp_path):
    admitted = KeyPair.load_or_create(tmp_path / "alice")
    (tmp_path / "allowed").mkdir()
    (tmp_path / "alice.public.key").rename(tmp_path / "allowed" / "alice.key")
    security = Security.curve(allow=str(tmp_path / "allowed"))
    with LazyServer("strict", security=security) as server:
        with LazyPirateClient(server.join_clients, timeout=2, keys=admitted) as client:
            assert client.request(b"alice") == [b"alice"]
        with LazyPirateClient(server.join_clients, timeout=0.3, retries=1) as stranger:
            with pytest.raises(ServerUnavailable):
                stranger.request(b"mallory")
        assert poll_until(lambda: server.handshake_failures >= 1)
        assert server.received == 1


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("role", sorted(SERVING))
def test_every_serving_role_refuses_to_bind_off_loopback_without_a_choice(role):
    result = run(role, SERVING[role], "tcp://*:0")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--curve" in lines[0] and "--insecure" in lines[0], lines
    assert "Traceback" not in result.stderr


def test_interface_names_and_lan_addresses_are_not_loopback_either():
    endpoints = ["tcp://0.0.0.0:0", "tcp://192.0.2.2:0"]
    if other_interface():
        endpoints.append(f"tcp://{other_interface()}:0")
    for endpoint in endpoints:
        result = run("lazy-server", "--bind", endpoint)
        assert result.returncode != 0 and "--insecure" in result.stderr, (endpoint, result)


def test_insecure_binds_with_a_warning():
    with Role("lazy-server", "--insecure", "--bind", "tcp://*:0", "--quiet") as server:
        bound = server.endpoint()
        join = server.expect(r"join \(clients\): (\S+)").group(1)
        assert not re.search(r"//(0\.0\.0\.0|\*):", join) and join.endswith(bound.rsplit(":")[-1])
        loopback = bound.replace("0.0.0.0", "127.0.0.1")
        client = run("lazy-client", "--join", loopback, "--requests", "2", "--quiet")
        assert client.returncode == 0 and "2 of 2 answered" in client.stdout, client.stderr
        assert server.stop() == 0
    assert "warning: --insecure" in server.stderr


def test_a_room_with_no_route_out_still_gets_a_join_line_its_students_reach():
    """A classroom router with no uplink gives the instructor's laptop an address and no
    default route; the join line names that address. A machine with no network address at
    all says, in one warning, that its join line (loopback) reaches no one."""
    if reason := netns.unavailable():
        pytest.skip(reason)
    link = [("room", "198.18.3.1/30", "student", "198.18.3.2/30")]
    with netns.network(["room", "student", "alone"], link) as net:
        with Role("lazy-server", "--insecure", "--bind", "tcp://*:0",
                  namespace=net.namespace("room")) as server:
            join = server.expect(r"join \(clients\): (\S+)").group(1)
            assert join.startswith("tcp://198.18.3.1:"), join
            with Role("lazy-client", "--join", join, "--requests", "2",
                      namespace=net.namespace("student")) as student:
                student.expect(r"2 of 2 answered")
            assert server.stop() == 0
        assert "only this machine reaches" not in server.stderr
        with Role("lazy-server", "--insecure", "--bind", "tcp://*:0",
                  namespace=net.namespace("alone")) as alone:
            assert alone.expect(r"join \(clients\): (\S+)").group(1).startswith("tcp://127.")
            assert alone.stop() == 0
        [warning] = [line for line in alone.stderr.splitlines() if "--advertise" in line]
        assert "names tcp://127." in warning and "only this machine reaches" in warning


def test_curve_processes_join_and_the_key_file_keeps_the_join_line(tmp_path):
    key_file = str(tmp_path / "queue.key_secret")
    tokens = []
    for _ in range(2):  # the same key file twice: the same key in the join line
        with Role("paranoid-queue", "--curve", "--key-file", key_file, "--quiet",
                  "--heartbeat-ms", "200") as queue:
            clients = queue.expect(r"join \(clients\): (\S+)").group(1)
            workers = queue.expect(r"join \(workers\): (\S+)").group(1)
            assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+/[0-9a-f]{64}", clients), clients
            tokens.append(clients.rsplit("/", 1)[1])
            with Role("paranoid-worker", "--join", workers, "--name", "alice",
                      "--heartbeat-ms", "200", "--quiet") as worker:
                client = run("lazy-client", "--join", clients, "--requests", "3", "--quiet")
                assert client.returncode == 0 and "3 of 3 answered" in client.stdout, client
                assert worker.stop() == 0
            assert queue.stop() == 0
    assert tokens[0] == tokens[1]


def test_a_curve_queue_ignores_a_client_without_the_key():
    with Role("simple-queue", "--curve", "--quiet") as queue:
        clients = queue.expect(r"join \(clients\): (\S+)").group(1)
        endpoint = clients.rsplit("/", 1)[0]
        client = run("lazy-client", "--join", endpoint, "--requests", "1", "--timeout-ms", "200",
                     "--retries", "1", "--quiet")
        assert client.returncode == 2 and "no reply" in client.stderr
        assert queue.stop() == 0


def test_a_faulty_curve_server_still_drops_on_purpose():
    with LazyServer("curved", security=Security.curve(), faults=Faults(drop={1})) as server, \
            LazyPirateClient(server.join_clients, timeout=0.3) as client:
        assert client.request(b"x") == [b"x"] and client.timeouts == 1


def test_a_parsed_join_line_takes_the_workers_own_keys():
    """`--key-file` reaches the socket: the command line parses the join line first, then
    a worker adds its key pair (Paranoid and Majordomo workers alike)."""
    from pirate_helpers import MajordomoWorker, ParanoidWorker

    keys, server = KeyPair.generate(), KeyPair.generate()
    token = Join.parse(f"tcp://127.0.0.1:5555/{server.public_hex}")
    for worker_class in (ParanoidWorker, MajordomoWorker):
        worker = worker_class("w", connect=token, keys=keys)
        assert worker.join_token.keys is keys and worker.join_token.server_key == server.public
