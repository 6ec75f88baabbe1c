"""Every mistake on the command line gets one line, `pirate ROLE: error: ...`, exit status 2."""

from __future__ import annotations

import pytest
import zmq
from processes import run

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
