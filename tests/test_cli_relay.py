"""`pirate relay` as a process: carry, cut, heal, and one line for a wrong command."""

from processes import Role, run


def ask(endpoint, requests="2", timeout_ms="300", retries="2"):
    return run("lazy-client", "--connect", endpoint, "--requests", requests,
               "--timeout-ms", timeout_ms, "--retries", retries, "--quiet")


def test_the_relay_role_carries_cuts_and_heals_on_typed_commands():
    with Role("lazy-server", "--quiet") as server, \
            Role("relay", "--target", server.endpoint(), stdin=True) as relay:
        endpoint = relay.endpoint()
        assert endpoint.startswith("tcp://127.0.0.1:")
        relay.expect(r"type: cut, heal")
        assert ask(endpoint).returncode == 0, "carried"
        relay.type("cut")
        relay.expect(r"relay\s+cut")
        cut_off = ask(endpoint, requests="1", timeout_ms="200")
        assert cut_off.returncode == 2 and "giving up" in cut_off.stderr
        relay.type("heal")
        relay.expect(r"relay\s+heal")
        assert ask(endpoint).returncode == 0, "carried again"
        relay.type("latency 20")
        relay.expect(r"relay\s+latency\s+20 ms")
        relay.type("nonsense")
        relay.expect(r"unknown command 'nonsense'")
        relay.type("help")
        relay.expect(r"cut: nothing passes.*latency MS.*reset.*status")
        relay.type("status")
        relay.expect(r"carrying, latency 20 ms")
        assert relay.stop() == 0
        assert server.stop() == 0


def test_the_relay_role_refuses_what_is_not_tcp():
    result = run("relay", "--target", "ipc:///tmp/nowhere")
    assert result.returncode == 2 and "TCP only" in result.stderr
    assert "Traceback" not in result.stderr
    assert run("relay", "--help").returncode == 0
