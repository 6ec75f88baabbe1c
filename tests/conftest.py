import threading

import pytest

from pirate_helpers import running_actors, stop_all


@pytest.fixture(autouse=True)
def no_stray_actors():
    """Every test must leave no actor or actor thread behind."""
    threads_before = set(threading.enumerate())
    yield
    left = running_actors()
    stop_all()
    assert not left, f"test left actors running: {left}"
    stray = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not stray, f"test left threads running: {stray}"
