import threading

import pytest
from hypothesis import settings

from pirate_helpers import running_actors, stop_all

# Hypothesis fails an example that takes over 200 ms; on a loaded machine (make test in the
# background, CI beside other jobs) a pure example can, with nothing wrong in it.
settings.register_profile("any-machine", deadline=None)
settings.load_profile("any-machine")


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
