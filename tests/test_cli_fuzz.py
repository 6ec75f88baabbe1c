"""Any command line a person could type gets either a role or one line, `pirate ROLE: error:`,
exit status 2: never a traceback, never a hang. Hypothesis drives each role's parser with its
own options and values chosen to break things (huge, tiny, not a number, not a file).

Parse-only, so it is fast; the checks made after parsing are covered case by case in
`test_cli_errors.py`. Hosts are literals or localhost: no name lookup leaves the machine.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pirate_helpers.cli import parse, parser

TOP = parser()
ROLE_PARSERS = TOP._subparsers._group_actions[0].choices

HOSTILE = [
    "", " ", "0", "-1", "1", "0.5", "1e300", "-1e300", "1e-300", "nan", "inf", "-inf", "1e",
    "2147483647", "2147483648", "9223372036854775807", "9223372036854775808", "9" * 5000,
    "0x10", "1,2,3", ",", "a,b", "\0", "\x00abc", "é" * 300, "x" * 256, "--", "-",
    "tcp://127.0.0.1:0", "tcp://127.0.0.1:*", "tcp://127.0.0.1:65536", "tcp://*:1",
    "tcp://[::1]:5", "tcp://localhost:5555", "tcp://lo:0", "ipc:///tmp/x", "udp://1.2.3.4:5",
    "tcp://127.0.0.1:5/" + "0" * 64, "tcp://127.0.0.1:5/zz", "/etc/passwd", "/etc", "/dev/null",
    "/nonexistent/k", "/etc/passwd/k", "mmi.echo", "0.0.0.0", "::",
]
values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                   st.floats(allow_nan=True).map(repr),
                   st.integers(-(2**70), 2**70).map(str))


def _options(role: str) -> list[tuple[str, bool]]:
    """A role's options, each with whether it takes a value."""
    return [(action.option_strings[0], action.nargs != 0)
            for action in ROLE_PARSERS[role]._actions
            if action.option_strings and action.option_strings[0] != "-h"]


@st.composite
def command_lines(draw, role: str) -> list[str]:
    argv = [role]
    for option, takes_value in draw(st.lists(st.sampled_from(_options(role)), max_size=6)):
        argv.append(option)
        if takes_value:
            argv.append(draw(values))
    return argv


def _outcome(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parse(argv, TOP)
            return 0, err.getvalue()
        except SystemExit as exit:
            return exit.code, err.getvalue()


@pytest.mark.parametrize("role", sorted(ROLE_PARSERS))
def test_any_command_line_is_a_role_or_one_error_line(role):
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(command_lines(role))
    def check(argv):
        status, err = _outcome(argv)
        if status == 0:
            assert err == ""
            return
        assert status == 2, (argv, status, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"pirate {role}: error: "), (argv, err)
        assert "Traceback" not in err

    check()
