"""The Guide's C Titanic and ticlient through the course's broker, and its ticlient against
our Titanic. Built from a temporary copy of ../shared/guide-peers with the fixed port 5555
replaced by a free one; skipped with the reason where gcc or libczmq is missing."""

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from processes import Role

PEERS = Path(__file__).resolve().parents[2] / "shared" / "guide-peers"
FAST = ["--heartbeat-ms", "100", "--liveness", "3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    if not PEERS.is_dir():
        pytest.skip(f"no Guide peers at {PEERS}")
    if shutil.which("gcc") is None or shutil.which("pkg-config") is None:
        pytest.skip("gcc or pkg-config is not installed")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libczmq", "libzmq"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        pytest.skip("libczmq-dev is not installed (pkg-config knows no libczmq)")
    folder = tmp_path_factory.mktemp("guide")
    port = free_port()
    for source in PEERS.iterdir():
        if source.suffix in (".c", ".h"):
            text = source.read_text().replace("127.0.0.1:5555", f"127.0.0.1:{port}")
            (folder / source.name).write_text(text)
    for program in ("titanic", "ticlient"):
        build = subprocess.run(["gcc", "-O2", "-w", "-include", "czmq3_compat.h",
                                f"{program}.c", "-o", program, *flags.stdout.split(),
                                "-luuid", "-lpthread"], cwd=folder, capture_output=True,
                               text=True)
        if build.returncode != 0:
            pytest.skip(f"{program}.c does not build here: {build.stderr.strip()[:200]}")
    return folder, f"tcp://127.0.0.1:{port}"


def ticlient(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(folder / "ticlient")], cwd=folder, capture_output=True,
                          text=True, timeout=30)


def test_the_guides_ticlient_against_our_titanic(guide, tmp_path):
    folder, endpoint = guide
    with Role("majordomo-broker", "--bind", endpoint, *FAST, "--quiet") as broker, \
            Role("majordomo-worker", "--connect", endpoint, "--service", "echo", *FAST) as w, \
            Role("titanic", "--connect", endpoint, "--store", str(tmp_path / "t.db"),
                 *FAST) as titanic:
        assert broker.endpoint() == endpoint
        w.expect("offers echo")
        titanic.expect("serving")
        result = ticlient(folder)
        titanic.expect(r"close\s+\w{32}")  # it closed what it collected
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reply: Hello world" in result.stdout


def test_the_guides_titanic_and_ticlient_through_our_broker(guide):
    folder, endpoint = guide
    with Role("majordomo-broker", "--bind", endpoint, *FAST, "--quiet") as broker, \
            Role("majordomo-worker", "--connect", endpoint, "--service", "echo", *FAST) as w:
        assert broker.endpoint() == endpoint
        w.expect("offers echo")
        titanic = subprocess.Popen([str(folder / "titanic")], cwd=folder,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            result = ticlient(folder)
        finally:
            titanic.kill()
            titanic.wait(5)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reply: Hello world" in result.stdout
