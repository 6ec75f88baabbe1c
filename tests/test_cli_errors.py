"""Every mistake on the command line gets one line, `pirate ROLE: error: ...`, exit status 2."""

from __future__ import annotations

import socket
import time

import pytest
import zmq
from processes import Role, run

from pirate_helpers.cli import main

CONNECT = ("--connect", "tcp://127.0.0.1:5555")
BAD = [
    # (argv, the option the line must name)
    (["lazy-server", "--bind", "foo"], "--bind"),
    (["lazy-server", "--bind", "tcp://999.1.1.1:1"], "--bind"),
    (["lazy-server", "--bind", "tcp://127.0.0.1:99999"], "--bind"),
    (["lazy-server", "--bind", "tcp://127.0.0.1:0x10"], "--bind"),
    (["lazy-server", "--bind", "udp://127.0.0.1:5555"], "--bind"),
    (["lazy-server", "--bind", "tcp://127.0.0.1"], "--bind"),
    (["lazy-server", "--work-ms", "-5"], "--work-ms"),
    (["lazy-server", "--drop", "a,b"], "--drop"),
    (["lazy-server", "--drop", "0"], "--drop"),
    (["lazy-server", "--drop-rate", "1.5"], "--drop-rate"),
    (["lazy-server", "--crash-rate", "nan"], "--crash-rate"),
    (["lazy-server", "--crash-after", "-1"], "--crash-after"),
    (["lazy-server", "--freeze-at", "0"], "--freeze-at"),
    (["lazy-server", "--freeze-ms", "inf"], "--freeze-ms"),
    (["lazy-server", "--max-message-bytes", "0"], "--max-message-bytes"),
    (["lazy-client"], "--connect"),
    (["lazy-client", "--connect", "tcp://999.1.1.1:1"], "--connect"),
    (["lazy-client", "--connect", "tcp://nowhere.invalid:5555"], "--connect"),
    (["lazy-client", "--connect", "tcp://127.0.0.1:*"], "--connect"),
    (["lazy-client", *CONNECT, "--retries", "0"], "--retries"),
    (["lazy-client", *CONNECT, "--requests", "-1"], "--requests"),
    (["lazy-client", *CONNECT, "--requests", "2.5"], "--requests"),
    (["lazy-client", *CONNECT, "--timeout-ms", "0"], "--timeout-ms"),
    (["lazy-client", *CONNECT, "--timeout-ms", "nan"], "--timeout-ms"),
    (["lazy-client", *CONNECT, "--timeout-ms", "inf"], "--timeout-ms"),
    (["simple-queue", "--frontend", "tcp://127.0.0.1:65536"], "--frontend"),
    (["simple-queue", "--backend", "*:5556"], "--backend"),
    (["simple-worker", "--connect", "tcp://999.1.1.1:1"], "--connect"),
    (["simple-worker", *CONNECT, "--name", ""], "--name"),
    (["simple-worker", *CONNECT, "--name", "x" * 256], "--name"),
    (["paranoid-queue", "--heartbeat-ms", "0"], "--heartbeat-ms"),
    (["paranoid-queue", "--heartbeat-ms", "nan"], "--heartbeat-ms"),
    (["paranoid-queue", "--heartbeat-ms", "-inf"], "--heartbeat-ms"),
    (["paranoid-queue", "--liveness", "-1"], "--liveness"),
    (["paranoid-worker", *CONNECT, "--liveness", "0"], "--liveness"),
    (["paranoid-worker", *CONNECT, "--reconnect-min-ms", "0"], "--reconnect-min-ms"),
    (["paranoid-worker", *CONNECT, "--reconnect-min-ms", "500", "--reconnect-max-ms", "100"],
     "--reconnect-max-ms"),
    (["paranoid-worker", *CONNECT, "--unknown-option"], "--unknown-option"),
    (["relay", "--target", "tcp://127.0.0.1:5555", "--listen", "tcp://*:0"], "--listen"),
    (["no-such-role"], "no-such-role"),
    # values that passed the checks and then broke the role (issue 21)
    (["paranoid-queue", "--heartbeat-ms", "1e300"], "--heartbeat-ms"),
    (["majordomo-broker", "--heartbeat-ms", "1e300"], "--heartbeat-ms"),
    (["majordomo-broker", "--request-expiry-ms", "1e300"], "--request-expiry-ms"),
    (["paranoid-worker", *CONNECT, "--heartbeat-ms", "1e300"], "--heartbeat-ms"),
    (["majordomo-worker", *CONNECT, "--service", "echo", "--heartbeat-ms", "1e300"],
     "--heartbeat-ms"),
    (["paranoid-worker", *CONNECT, "--reconnect-min-ms", "1e300"], "--reconnect-min-ms"),
    (["paranoid-worker", *CONNECT, "--reconnect-max-ms", "1e300"], "--reconnect-max-ms"),
    (["paranoid-worker", *CONNECT, "--heartbeat-ms", "0.5"], "--heartbeat-ms"),
    (["lazy-client", *CONNECT, "--rate", "1e-300"], "--rate"),
    (["lazy-client", *CONNECT, "--summary-ms", "1e300"], "--summary-ms"),
    (["lazy-server", "--freeze-ms", "1e300"], "--freeze-ms"),
    (["relay", "--target", "tcp://127.0.0.1:5555", "--latency-ms", "1e300"], "--latency-ms"),
    (["lazy-server", "--max-message-bytes", "9223372036854775808"], "--max-message-bytes"),
    (["lazy-server", "--max-message-bytes", "9" * 5000], "--max-message-bytes"),
    (["lazy-client", *CONNECT, "--key-file", "/etc/passwd"], "--key-file"),
    (["lazy-client", *CONNECT, "--key-file", "/etc"], "--key-file"),
    (["lazy-client", *CONNECT, "--key-file", "/etc/passwd/key"], "--key-file"),
    (["lazy-server", "--curve", "--key-file", "/etc/passwd"], "--key-file"),
    (["relay", "--target", "tcp://127.0.0.1:5555", "--listen", "tcp://lo:0"], "--listen"),
]


def one_line_error(capsys, argv: list[str]) -> str:
    try:
        status = main(argv)
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    assert status == 2, (argv, status, captured)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(("argv", "option"), BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_a_bad_value_gets_one_line_naming_the_option(capsys, argv, option):
    line = one_line_error(capsys, argv)
    role = argv[0] if argv[0] != "no-such-role" else ""
    assert line.startswith(f"pirate {role}".rstrip() + ": error: "), line
    assert option in line and "Traceback" not in line


@pytest.mark.parametrize("option", ["--bind", "--frontend", "--backend"])
def test_a_port_in_use_names_the_option_and_the_endpoint(capsys, option):
    ctx = zmq.Context()
    taken = ctx.socket(zmq.ROUTER)
    taken.linger = 0
    taken.bind("tcp://127.0.0.1:*")
    endpoint = taken.last_endpoint.decode()
    role = "lazy-server" if option == "--bind" else "simple-queue"
    try:
        line = one_line_error(capsys, [role, option, endpoint, "--quiet"])
    finally:
        ctx.destroy()
    assert line == f"pirate {role}: error: argument {option}: {endpoint}: Address already in use"


def test_as_a_real_process_a_bad_line_is_one_line_and_no_traceback():
    result = run("paranoid-queue", "--heartbeat-ms", "nan")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("pirate paranoid-queue: error: argument --heartbeat-ms: "
                             "expected a finite number, not 'nan'\n")


def test_a_key_file_that_cannot_be_created_is_one_line_naming_the_option(capsys, tmp_path):
    """Its folder passes the parse-time check (missing: made when the key is written), but
    a file stands where a folder must be made: said when the key is made, in one line."""
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "sub" / "key"
    line = one_line_error(capsys, ["lazy-client", *CONNECT, "--key-file", str(target)])
    assert line.startswith("pirate lazy-client: error: argument --key-file: "), line
    assert "Not a directory" in line


def test_a_relay_latency_typed_out_of_range_is_one_line_and_the_relay_runs_on():
    from pirate_helpers.cli.relay import apply

    class Relay:
        latency_s = 0.0

        def latency(self, seconds):
            self.latency_s = seconds

    relay = Relay()
    assert apply(relay, "latency 1e300") == ("latency: expected a time from 0 to 2147483647 "
                                             "ms, not '1e300'")
    assert apply(relay, "latency 250") is None and relay.latency_s == 0.25


@pytest.mark.parametrize("role", ["lazy-server", "relay"])
def test_a_port_in_use_is_one_line_at_once_from_a_real_process(role):
    """Not a traced error on stdout too, and no 2 s of retries: the port is another
    program's (a bind is retried only for an endpoint this process left itself)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
    argv = (["lazy-server", "--bind", endpoint] if role == "lazy-server" else
            ["relay", "--target", "tcp://127.0.0.1:5555", "--listen", endpoint])
    option = argv[-2]
    try:
        started = time.monotonic()
        result = run(*argv)
        elapsed = time.monotonic() - started
        started = time.monotonic()  # the same role refused at parse time: its start-up cost
        run(*argv, "--max-message-bytes", "0")
        baseline = time.monotonic() - started
    finally:
        taken.close()
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr == (f"pirate {role}: error: argument {option}: {endpoint}: "
                             "Address already in use\n")
    assert elapsed - baseline < 1.5, (f"{elapsed:.2f} s against {baseline:.2f} s: retried as "
                                      "if the port were its own (for 2 s)")


def test_the_largest_times_each_option_takes_still_start_and_stop_a_role():
    """At the bounds, every clock sum and poll timeout fits: the queue and a worker start,
    say where they are and stop on SIGTERM (1e300 once ended in an OverflowError)."""
    longest = str(2**31 - 1)
    queue = Role("paranoid-queue", "--heartbeat-ms", longest, "--liveness",
                 str(2**63 - 1), "--quiet")
    try:
        backend = queue.expect(r"backend \(workers\) on (\S+)").group(1)
        worker = Role("paranoid-worker", "--connect", backend, "--heartbeat-ms", longest,
                      "--reconnect-min-ms", longest, "--reconnect-max-ms", longest,
                      "--freeze-ms", longest, "--quiet")
        try:
            worker.expect("connected to")
        finally:
            assert worker.stop() == 0, worker.stderr
    finally:
        assert queue.stop() == 0, queue.stderr
