"""The command line roles, end to end, as separate processes."""

import shutil
import sys
import time
from pathlib import Path

import pytest
from processes import Role, run


@pytest.mark.parametrize("role", ["lazy-server", "lazy-client", "simple-queue", "simple-worker"])
def test_every_role_has_help(role):
    result = run(role, "--help")
    assert result.returncode == 0 and "--quiet" in result.stdout


def test_the_pirate_command_is_installed_and_lists_the_roles():
    scripts = Path(sys.executable).parent
    assert shutil.which("pirate", path=str(scripts)), "the console script `pirate` is missing"
    result = run("--help")
    assert "lazy-server" in result.stdout and "lazy-client" in result.stdout


def test_lazy_client_gets_every_answer_through_dropped_requests():
    with Role("lazy-server", "--drop", "2,5") as server:
        endpoint = server.endpoint()
        assert endpoint.startswith("tcp://127.0.0.1:")
        client = run("lazy-client", "--connect", endpoint, "--requests", "6",
                     "--timeout-ms", "200", "--retries", "3")
        assert client.returncode == 0, client.stderr
        assert "6 of 6 answered, 2 timeouts" in client.stdout
        assert client.stdout.count(" retry ") == 2
        # the server counts what it receives: the retry of "2" was its 3rd, so its 5th is "4"
        server.expect(r"lazy-server\s+drop\s+\S+:4")
        assert server.stop() == 0  # SIGTERM ends it cleanly


def test_lazy_client_gives_up_with_one_clear_line_in_bounded_time():
    with Role("lazy-server", "--crash-after", "2", "--quiet") as server:
        endpoint = server.endpoint()
        started = time.monotonic()
        client = run("lazy-client", "--connect", endpoint, "--requests", "5",
                     "--timeout-ms", "300", "--retries", "3", "--quiet")
        took = time.monotonic() - started
        assert client.returncode == 2
        assert client.stderr.strip().splitlines() == [
            f"lazy-client: no reply from {endpoint} after 3 tries of 0.3 s each; giving up"
        ]
        assert "Traceback" not in client.stderr
        assert took < 0.9 + 2.5  # 3 tries x 0.3 s, plus Python start-up
        assert server.stop() == 1  # the injected crash ended the server process
        assert "crashed" in server.stderr


def test_binding_every_interface_needs_insecure_and_is_warned_about():
    with Role("lazy-server", "--insecure", "--bind", "tcp://*:0", "--quiet") as server:
        assert server.endpoint().startswith("tcp://0.0.0.0:")
        assert server.stop() == 0
    assert "anyone on the network" in server.stderr


def test_simple_pirate_processes_answer_everything_through_a_worker_crash():
    with Role("simple-queue") as queue:
        frontend = queue.expect(r"frontend \(clients\) on (\S+)").group(1)
        backend = queue.expect(r"backend \(workers\) on (\S+)").group(1)
        assert frontend.startswith("tcp://127.0.0.1:") and backend.startswith("tcp://127.0.0.1:")
        with Role("simple-worker", "--connect", backend, "--name", "doomed",
                  "--crash-after", "1") as doomed, \
                Role("simple-worker", "--connect", backend, "--name", "steady") as steady:
            queue.expect(r"<- (doomed|steady)\s+recv\s+READY")
            queue.expect(r"<- (doomed|steady)\s+recv\s+READY")
            client = run("lazy-client", "--connect", frontend, "--requests", "6",
                         "--timeout-ms", "400", "--quiet")
            assert client.returncode == 0, client.stderr
            assert "6 of 6 answered, 1 timeout," in client.stdout
            assert doomed.stop() == 1 and "crashed" in doomed.stderr
            assert steady.stop() == 0
        assert queue.stop() == 0
