"""Issue 20's table, measured: every probe of "hostile input, round two" against the `pirate`
roles as processes, one row each, beside the figure the issue measured before the change.

    .venv/bin/python benchmarks/hostile_table.py [--only N ...] [--markdown]

Each probe is the scenario of a test in `tests/` (test_routing_ids, test_hostile_roles,
test_guide_interop) measured instead of asserted, or a probe of its own where the row is a
cost (memory, CPU, a rate). Rows 5-8 wait on parts A and B of the issue (the relay's buffers
and EMFILE, the send audit, byte bounds and whole-message buffering; the last column says
which): their probes run here so the table fills in once that work lands. Rows 12 and 13 need
the Guide's C peers (gcc, libczmq, root for a private namespace) and say so when they are
missing. Not probed: the 1,500-frame message of row 5 (1.5 GiB per role), clients and workers
sent such messages, and a queue that heartbeats but stops reading (row 9). On a shared
machine the times and rates move from run to run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_hostile_roles as hostile  # noqa: E402
import test_routing_ids as routing  # noqa: E402
from guide_peers import Missing, Namespace, build  # noqa: E402
from processes import LAUNCH, Role  # noqa: E402

from pirate_helpers import ServerUnavailable, netns  # noqa: E402
from pirate_helpers.majordomo import MajordomoClient  # noqa: E402
from pirate_helpers.majordomo.protocol import MDPC  # noqa: E402

MIB = 1 << 20
TICKS = os.sysconf("SC_CLK_TCK")
ROWS: list[tuple[str, str, str, Callable[[], str]]] = []  # (probe, before, part, after)


def row(probe: str, before: str, part: str = ""):
    """A row of the table: `part` names the part of issue 20 whose change it waits on."""
    def register(measure: Callable[[], str]) -> Callable[[], str]:
        ROWS.append((probe, before, part, measure))
        return measure
    return register


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (the peak) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} for {pid}")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def passes(check: Callable[[], object]) -> bool:
    """Whether a test's scenario holds (its assertions all pass)."""
    try:
        check()
        return True
    except AssertionError:
        return False


# -- 1. routing ids --------------------------------------------------------------------------
@row("squatters on libzmq's generated routing ids, then one ordinary client",
     "lazy-server, simple-queue, paranoid-queue, majordomo-broker abort (SIGABRT), "
     "also behind --curve")
def routing_ids() -> str:
    plain = [role for role in routing.ROLES
             if passes(lambda r=role: routing.test_squatters_on_the_unseeded_counter_do_not_crash_a_role(r))]  # noqa: E501
    curve = [role for role in routing.CURVE_ROLES
             if passes(lambda r=role: routing.test_squatters_holding_the_join_line_do_not_crash_a_curve_role(r))]  # noqa: E501
    told = [role for role in ("simple-queue", "paranoid-queue", "majordomo-broker")
            if passes(lambda r=role: routing.test_a_worker_cannot_learn_the_next_generated_id_from_the_addresses_it_serves(r))]  # noqa: E501
    return (f"{len(plain)} of {len(routing.ROLES)} roles serve after 48 squatters; behind "
            f"--curve {len(curve)} of {len(routing.CURVE_ROLES)} (with binary-star, "
            f"freelance-server); a worker claiming the ids after those it was shown: "
            f"{len(told)} of 3 serve")


# -- 2. requests near the frame limit ----------------------------------------------------------
@row("two requests with 59-62 body frames (under the 64-frame limit), then 3 normal ones",
     "0 of 3 normal requests answered, in all three designs (the worker stays busy)")
def near_frame_limit() -> str:
    figures = []
    for role in ("simple-queue", "paranoid-queue", "majordomo-broker"):
        process, endpoint, backend = routing.start_role(role)
        ctx = routing.context()
        worker = routing.named_worker(role.split("-")[0], backend)
        try:
            hostile.normal_requests_answered(role, endpoint, 1)
            header = [MDPC, b"echo"] if role == "majordomo-broker" else []
            for body_frames in (59, 60, 61, 62):
                for _ in range(2):
                    req = ctx.socket(zmq.REQ)
                    req.connect(endpoint)
                    req.send_multipart([*header, *[b"f"] * body_frames])
                    req.poll(500)
            figures.append(f"{role.split('-')[0]} {hostile.normal_requests_answered(role, endpoint)} of 3")  # noqa: E501
        finally:
            ctx.destroy()
            worker.stop()
            process.stop()
    return "after 8 such requests (2 each of 59-62): " + ", ".join(figures)


# -- 3. requests to services nobody offers ------------------------------------------------------
@row("one client queues 10,050 requests for services nobody offers, then leaves",
     "every request to live services refused for as long as the broker runs")
def nobody_flood() -> str:
    process, endpoint, _ = routing.start_role("majordomo-broker")
    ctx = routing.context()
    worker = routing.named_worker("majordomo", endpoint)
    try:
        hostile.normal_requests_answered("majordomo-broker", endpoint, 1)
        flood = ctx.socket(zmq.DEALER)
        flood.sndhwm = 0
        flood.connect(endpoint)
        for n in range(10_050):
            flood.send_multipart([b"", MDPC, b"nobody-%d" % (n % 50), b"x"])
        flood.send_multipart([b"", MDPC, b"mmi.service", b"echo"])
        read = flood.poll(30_000)
        flood.close()
        answered = hostile.normal_requests_answered("majordomo-broker", endpoint, 10)
    finally:
        ctx.destroy()
        worker.stop()
        process.stop()
    refused = process.newest(r"summary: \d+ more reject \((\d+) in all\)")
    return (f"{answered} of 10 live requests answered right after; "
            f"{refused[1] if refused else '?'} of 10,050 refused, counted"
            + ("" if read else " (the broker had not read the flood within 30 s)"))


@row("with expiry: 6,000 requests/s to services nobody offers, from 10 clients, for 5 s",
     "the broker stays full: live services refused")
def nobody_rate(seconds: float = 5.0, rate: int = 6000, flooders: int = 10) -> str:
    process, endpoint, _ = routing.start_role("majordomo-broker")
    ctx = routing.context()
    worker = routing.named_worker("majordomo", endpoint)
    stop, sent, refused_here = threading.Event(), [0], [0]

    def flood() -> None:
        socks = []
        for _ in range(flooders):
            sock = ctx.socket(zmq.DEALER)
            sock.connect(endpoint)
            socks.append(sock)
        tick, started, n = 0.01, time.monotonic(), 0
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            while n < due:
                try:
                    socks[n % flooders].send_multipart(
                        [b"", MDPC, b"nobody-%d" % (n % 500), b"x"], zmq.NOBLOCK)
                    sent[0] += 1
                except zmq.Again:
                    refused_here[0] += 1
                n += 1
            stop.wait(tick)
        for sock in socks:
            sock.close()

    def live(duration: float) -> tuple[int, int, float]:
        answered = asked = 0
        worst = 0.0
        with MajordomoClient(endpoint, timeout=1, retries=1) as client:
            until = time.monotonic() + duration
            while time.monotonic() < until:
                asked += 1
                began = time.monotonic()
                if client.request("echo", b"live %d" % asked) == [b"live %d" % asked]:
                    answered += 1
                worst = max(worst, time.monotonic() - began)
        return answered, asked, worst

    try:
        hostile.normal_requests_answered("majordomo-broker", endpoint, 1)
        quiet_answered, _, _ = live(2.0)
        pid = process.process.pid
        cpu_before, flood_started = cpu_s(pid), time.monotonic()
        flooding = threading.Thread(target=flood)
        flooding.start()
        try:
            answered, asked, worst = live(seconds)
        finally:
            stop.set()
            flooding.join()
        elapsed = time.monotonic() - flood_started
        cpu = (cpu_s(pid) - cpu_before) / elapsed
    finally:
        ctx.destroy()
        worker.stop()
        process.stop()
    return (f"live echo: {answered} of {asked} answered, {answered / seconds:.0f}/s "
            f"({quiet_answered / 2:.0f}/s without the flood), slowest {worst * 1000:.0f} ms; "
            f"broker {cpu:.0%} of a core; flood sent {sent[0] / elapsed:.0f}/s "
            f"({refused_here[0]} not taken by libzmq)")


# -- 4, 5. bytes (part B) -----------------------------------------------------------------------
BYTE_ROLES = ("lazy-server", "simple-queue", "paranoid-queue", "majordomo-broker")


def normal(role: str) -> list[bytes]:
    return [b"", MDPC, b"echo", b"after"] if role == "majordomo-broker" else [b"", b"after"]


@row("one message of 300 frames of 1 MiB (each under the 1 MiB cap)",
     "+288 MiB in the broker, both queues, lazy-server (libzmq buffers the whole message)", "B")
def many_big_frames(frames: int = 300) -> str:
    figures = []
    for role in BYTE_ROLES:
        process, endpoint, backend = routing.start_role(role)
        kind = routing.ROLES[role][1]
        worker = routing.named_worker(kind, backend) if kind else None
        ctx = routing.context()
        try:
            hostile.normal_requests_answered(role, endpoint, 1)
            peak = memory_mib(process.process.pid, "VmHWM")
            sock = ctx.socket(zmq.DEALER)
            sock.sndhwm = 0
            sock.connect(endpoint)
            body = zmq.Frame(b"\x00" * MIB)
            head = [b"", MDPC, b"echo"] if role == "majordomo-broker" else [b""]
            for part in head:
                sock.send(part, zmq.SNDMORE)
            for n in range(frames):
                sock.send(body, zmq.SNDMORE if n < frames - 1 else 0, copy=False)
            sock.send_multipart(normal(role))  # read after it, on the same connection
            served = sock.poll(60_000)
            grown = memory_mib(process.process.pid, "VmHWM") - peak
            figures.append(f"{role} +{grown:.0f} MiB peak{'' if served else ' (no reply)'}")
        finally:
            ctx.destroy()
            if worker is not None:
                worker.stop()
            process.stop()
    return "; ".join(figures) + " (clients and workers not probed here)"


@row("100 waiting requests of 8 x 1 MiB, the client gone",
     "802 MiB held by the broker and simple-queue", "B")
def waiting_bytes(requests: int = 100) -> str:
    figures = []
    for role in ("majordomo-broker", "simple-queue"):
        process, endpoint, _ = routing.start_role(role)
        ctx = routing.context()
        try:
            pid = process.process.pid
            before = memory_mib(pid)
            sock = ctx.socket(zmq.DEALER)
            sock.sndhwm = 0
            sock.connect(endpoint)
            body = zmq.Frame(b"\x00" * (MIB - 1024))  # under the cap with the envelope
            head = [b"", MDPC, b"slow"] if role == "majordomo-broker" else [b""]
            for _ in range(requests):
                for part in head:
                    sock.send(part, zmq.SNDMORE)
                for n in range(8):
                    sock.send(body, zmq.SNDMORE if n < 7 else 0, copy=False)
            if role == "majordomo-broker":  # answered once the broker read all before it
                sock.send_multipart([b"", MDPC, b"mmi.service", b"slow"])
                sock.poll(60_000)
            else:
                time.sleep(3)  # a probe, not a test: the queue reads nothing without workers
            sock.close()
            time.sleep(1)  # and the client is gone
            figures.append(f"{role} holds +{memory_mib(pid) - before:.0f} MiB")
        finally:
            ctx.destroy()
            process.stop()
    return "; ".join(figures)


# -- 6, 7. the relay (part A) -------------------------------------------------------------------
def listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    return server, server.getsockname()[1]


@row("the relay toward a peer that never reads, 6 s of writing",
     "+1,428 MiB in 6 s (released bytes pile up outside the hold limit)", "A")
def relay_never_reads(seconds: float = 6.0) -> str:
    target, port = listener()  # accepts (the kernel does) and never reads
    relay = Role("relay", "--quiet", "--target", f"tcp://127.0.0.1:{port}", stdin=True)
    try:
        relay_port = int(relay.endpoint().rsplit(":", 1)[1])
        before = memory_mib(relay.process.pid)
        writer = socket.create_connection(("127.0.0.1", relay_port))
        writer.setblocking(False)
        chunk, written = b"\x00" * 65536, 0
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            try:
                written += writer.send(chunk)
            except BlockingIOError:
                time.sleep(0.001)
        grown = memory_mib(relay.process.pid) - before
        writer.close()
    finally:
        relay.stop()
        target.close()
    return f"+{grown:.0f} MiB in {seconds:g} s; the writer got {written / MIB:.0f} MiB accepted"


@row("the relay out of file descriptors (ulimit -n 1023, 600 connections)",
     "traceback, exit 1", "A")
def relay_emfile(connections: int = 600) -> str:
    server = Role("lazy-server", "--quiet")
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (1023, 1023)); "
            + LAUNCH)
    relay = Role("relay", "--quiet", "--target", server.endpoint(), code=code, stdin=True)
    opened = []
    try:
        relay_port = int(relay.endpoint().rsplit(":", 1)[1])
        for _ in range(connections):
            try:
                opened.append(socket.create_connection(("127.0.0.1", relay_port), timeout=2))
            except OSError:
                break
        time.sleep(2)  # a probe: let the relay meet its limit
        alive = relay.process.poll() is None
        for sock in opened:
            sock.close()
        answered = 0
        if alive:
            try:
                answered = hostile.normal_requests_answered(
                    "lazy-server", f"tcp://127.0.0.1:{relay_port}", 1)
            except ServerUnavailable:
                pass
    finally:
        status = relay.stop()
        server.stop()
    lines = [line for line in relay.all_lines() if re.search("descriptor|EMFILE|refus", line)]
    ended = "still serving, exit" if alive else "it had exited, status"
    return (f"{len(opened)} connected, then {answered} of 1 request carried; {ended} "
            f"{status}"
            + (f"; says: {lines[0].strip()[:80]}" if lines else ""))


# -- 8, 9, 10. workers and clients --------------------------------------------------------------
@row("paranoid-worker or majordomo-worker handed one frame over its cap, then SIGTERM",
     "blocked for good in a send; SIGTERM does not stop it within 5 s")
def over_cap_worker() -> str:
    figures = []
    for role in ("paranoid-worker", "majordomo-worker"):
        ctx = routing.context()
        router, endpoint = hostile.hostile_queue(ctx)
        extra = ["--service", "echo"] if role == "majordomo-worker" else []
        worker = Role(role, "--connect", endpoint, "--heartbeat-ms", "5", "--liveness", "400",
                      "--reconnect-min-ms", "10", "--max-message-bytes", "1000", *extra)
        try:
            until = time.monotonic() + 2
            while time.monotonic() < until:
                if router.poll(100):
                    frames = router.recv_multipart()
                    router.send_multipart([frames[0], b"x" * 1001], zmq.NOBLOCK)
            began = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            try:
                status = worker.process.wait(10)
                figures.append(f"{role} stops in {time.monotonic() - began:.2f} s "
                               f"(exit {status})")
            except subprocess.TimeoutExpired:
                figures.append(f"{role} still running 10 s after SIGTERM")
        finally:
            worker.stop()
            ctx.destroy()
    return "; ".join(figures) + " (bound: 2 s)"


@row("simple-worker sent one message of over 64 frames",
     "never serves again (its REQ took it as the reply)")
def simple_worker_frames() -> str:
    serves = passes(hostile.test_a_simple_worker_sent_too_many_frames_says_ready_again_and_serves)
    return "says READY again and serves" if serves else "does not serve again"


@row("a broker that answers every request twice, the copy late",
     "MajordomoClient returns the previous request's reply (\"sent [3], got [2]\")")
def answers_twice() -> str:
    ok = passes(hostile.test_the_majordomo_client_never_takes_a_reply_meant_for_an_earlier_request)  # noqa: E501
    return "3 of 3 replies matched, 0 stale" if ok else "a stale reply was taken"


# -- 11, 12. the Guide's C peers ----------------------------------------------------------------
def guide_binaries() -> Path:
    return build(("mdbroker", "mdworker", "mdclient2"))


def mdclient2_run(binaries: Path, *setting: str) -> tuple[int, float]:
    with Namespace("t11") as namespace:
        broker = Role("majordomo-broker", "--quiet", "--bind", "tcp://127.0.0.1:5555",
                      *setting, namespace=namespace.name)
        workers = []
        try:
            broker.endpoint()
            workers = [namespace.start([str(binaries / "mdworker")],
                                       stdout=subprocess.DEVNULL) for _ in range(2)]
            namespace.wait_for_connections(5555, 2)
            began = time.monotonic()
            client = subprocess.run(netns.command(namespace.name, str(binaries / "mdclient2")),
                                    capture_output=True, text=True, timeout=600)
            took = time.monotonic() - began
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
            broker.stop()
    return int(client.stdout.split()[0]), took


@row("the Guide's async client (mdclient2, 100,000 at once), 2 C mdworkers",
     "39,977 answered: the 10,000 cap, in no --help or README")
def mdclient2() -> str:
    binaries = guide_binaries()
    setting = ("--max-queued", "100000", "--max-queued-per-client", "100000")
    answered, took = mdclient2_run(binaries, *setting)
    default, _ = mdclient2_run(binaries)
    return (f"{answered:,} of 100,000 in {took:.1f} s with `{' '.join(setting)}` (in --help "
            f"and the README); {default:,} with the defaults (1,000 per client)")


@row("a 10 s request behind the Guide's C broker (mdbroker.c heartbeats only idle workers)",
     "our majordomo-worker gives the broker up as silent at 8.9 s, abandons the request")
def busy_behind_mdbroker() -> str:
    binaries = guide_binaries()
    with Namespace("t12") as namespace:
        broker = namespace.start([str(binaries / "mdbroker")], stdout=subprocess.DEVNULL)
        worker = Role("majordomo-worker", "--connect", "tcp://127.0.0.1:5555", "--service",
                      "echo", "--name", "slow", "--work-ms", "10000", namespace=namespace.name)
        try:
            worker.expect("offers echo")
            namespace.wait_for_connections(5555, 1)
            began = time.monotonic()
            client = Role("majordomo-client", "--connect", "tcp://127.0.0.1:5555", "--service",
                          "echo", "--requests", "1", "--timeout-ms", "20000", "--retries", "1",
                          namespace=namespace.name)
            summary = client.expect(r"\d+ of 1 answered", 40)[0]
            took = time.monotonic() - began
            client.stop()
        finally:
            worker.stop()
            broker.kill()
            broker.wait()
    gave_up = sum(bool(re.search("silent|reconnect", line)) for line in worker.all_lines())
    return f"{summary} after {took:.1f} s; the worker gave its broker up {gave_up} times"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, nargs="+", metavar="N", help="rows, from 1")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()
    chosen = args.only or range(1, len(ROWS) + 1)
    if args.markdown:
        print("| # | probe | before (issue 20, main 45ea588) | after | waits on |\n"
              "|---|---|---|---|---|")
    for n in chosen:
        probe, before, part, measure = ROWS[n - 1]
        try:
            after = measure()
        except Missing as missing:
            after = f"skipped: {missing}"
        except Exception as error:  # a probe that failed is a figure too
            after = f"probe failed: {type(error).__name__}: {str(error)[:200]}"
        if args.markdown:
            print(f"| {n} | {probe} | {before} | {after} | {part and 'part ' + part} |",
                  flush=True)
        else:
            waits = f" (waits on part {part} of the issue)" if part else ""
            print(f"{n}. {probe}{waits}\n   before: {before}\n   after:  {after}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
