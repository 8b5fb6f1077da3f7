"""Benchmark: the load generator alone. 5,000 simulated users in locust's distributed mode against stub gateways.

The real locustfile and ``chaos.loadgen.LoadGenerator`` (a master and one worker per core) drive two stub
gateways (benchmarks/support/stub_gateway.py: constant well-formed answers, one process, well under a
millisecond each), so every figure is the generator's: how many users it started, how many actions a
second they made once all were in (or once the start gave up), what latency they saw, how much CPU each
locust process used (one near 100% of a core is saturated: that is where a bottleneck shows) and what an
action costs the workers in CPU, hence how many worker cores the users' rate takes. About a minute, both
cores busy. Prints the figures, saves JSON, exits 1 if a goal is missed. Run:
    .venv/bin/python benchmarks/load_generator.py [--users 5000 --think 5-15 --spawn-rate 500 --steady 20 --workers N]
Users think as viewers do: 5-15 s between actions (a watched video, then the next), so 5,000 users ask for
~500 actions/s, twice what the whole stack serves on one core here (benchmarks/overload.py): they are enough to
saturate it. ``--think 0.5-1.5`` is the demo's compressed pace (~1 action/s a user): there it measures the
generator's ceiling, how many actions/s its workers can make at all.
Goals:
- every user started: each user's first request is its login, so every account the users take appears in
  requests.csv (creators share the 30 creator accounts: 5,000 users take 4,280 accounts), and at least as
  many logins as users, within users / spawn rate + 20 s;
- actions/s >= 90% of what the users ask for: a user acts, then thinks (5-15 s, 10 s on average), so with
  instant answers 5,000 users ask for 500 actions/s; a generator that cannot keep up stretches every user's
  cycle and makes fewer. Measured from one longest pause after the last user came in, so the window does
  not start while users who arrived together are all thinking;
- latency p50 < 50 ms and p99 < 250 ms: the stub answers at once, so what a user waits is the generator's
  own delay (a busy worker's event loop, request handling). Blackout judges what the stack serves against
  the edge's 0.5-s try timeout and the resilient profile's 2-s deadline: with p99 under half the try
  timeout the generator alone never makes a try time out or an action miss its deadline, and a p50 of
  tens of ms stays small next to the latencies a loaded stack shows (hundreds of ms, docs/benchmarks.md);
- >= 99.9% of requests answered 2xx: the stub refuses nothing, so a failure is the generator's (a
  connection it could not make, or one it kept idle past the gateways' 5-s keep-alive because its users'
  cycles stretched: the stub keeps uvicorn's default, as the real gateways do);
- every process it started (master, workers, stub) gone at the end, on an error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from support.cpus import cpu_seconds
from support.results import conclude
from support.stub_gateway import stub_gateways

from chaos.loadgen import LoadGenerator
from chaos.rundir import REQUESTS_FILE
from chaos.runtime.base import RuntimeError_
from chaos.scenario_commands import think
from loadtest.requests_reader import RequestRow, read_all
from services.common.accounts import MAX_USERS, account

VIEWER_THINK_S = (5.0, 15.0)
LOGGED_IN_SLACK_S = 20.0  # beyond the ramp (users / spawn rate): the time locust may take to start them all
GONE_WITHIN_S = 10.0
SAMPLE_S = 0.05  # how often each process's state is sampled in the measured window


def still_alive(pids: list[int], timeout_s: float) -> list[int]:
    """Poll until every pid is gone (a zombie counts as gone); those still running at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)  # poll interval


def percentile(values: list[float], q: int) -> float | None:
    return round(statistics.quantiles(values, n=100)[q - 1], 1) if len(values) > 1 else None


def steady_figures(rows: list[RequestRow], since: float, until: float) -> dict:
    """Actions started within [since, until): their rate, latency and share answered 2xx."""
    chosen = [r for r in rows if since <= r.t < until]
    latencies = [r.latency_ms for r in chosen]
    return {
        "window_s": round(until - since, 1),
        "actions": len(chosen),
        "actions_per_s": round(len(chosen) / (until - since), 1),
        "ok_share": round(sum(r.ok for r in chosen) / len(chosen), 5) if chosen else None,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "by_action": {a: sum(1 for r in chosen if r.action == a) for a in sorted({r.action for r in chosen})},
        "errors": sorted({r.error for r in chosen if not r.ok})[:5],
    }


def runnable(pids: dict[str, int]) -> dict[str, bool]:
    """Whether each process's main thread (the gevent loop, for locust) is on a CPU or waiting for one."""
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).status() == psutil.STATUS_RUNNING  # Linux "R": running or runnable
        except psutil.NoSuchProcess:
            out[name] = False
    return out


def window(pids: dict[str, int], seconds: float) -> dict:
    """Sample the processes for ``seconds`` while the load runs: (since, until) in epoch seconds, each one's CPU
    seconds and share of samples found runnable, and how busy the whole machine was (others' work included).

    CPU% alone cannot tell a saturated worker on a shared machine: one that always has work but gets half a
    core shows 50%. Found runnable in nearly every sample, it wanted more CPU than it got."""
    cpu0, machine0, since = cpu_seconds(pids), psutil.cpu_times(), time.time()
    samples = {name: 0 for name in pids}
    taken = 0
    while time.time() < since + seconds:
        for name, running in runnable(pids).items():
            samples[name] += running
        taken += 1
        time.sleep(SAMPLE_S)
    cpu1, machine1, until = cpu_seconds(pids), psutil.cpu_times(), time.time()
    busy = sum(machine1) - machine1.idle - (sum(machine0) - machine0.idle)
    return {
        "since": since,
        "until": until,
        "cpu_s": {n: cpu1[n] - cpu0[n] for n in pids},
        "runnable_share": {n: round(k / taken, 2) for n, k in samples.items()},
        "machine_busy_percent": round(100 * busy / (sum(machine1) - sum(machine0)), 1),
    }


def run(
    run_dir: Path, users: int, think_s: tuple[float, float], spawn_rate: float, steady_s: float, workers: int
) -> dict:
    """Start the stubs and the generator, let every user in, measure ``steady_s``; stop all of it, whatever happens."""
    result: dict = {"users": users, "think_s": think_s, "spawn_rate": spawn_rate, "workers": workers}
    pids: dict[str, int] = {}
    with stub_gateways() as stub:
        load = LoadGenerator(
            run_dir,
            stub.urls,
            users,
            spawn_rate=spawn_rate,
            workers=workers,
            seed=1,
            think_s=think_s,
            max_seconds=users / spawn_rate + LOGGED_IN_SLACK_S + think_s[1] + steady_s + 30,
        )
        try:
            started = time.monotonic()
            pids["master"] = load.start()
            pids.update({f"worker {n}": proc.pid for n, proc in enumerate(load.worker_procs)})
            pids["stub gateways"] = stub.pid
            try:
                load.wait_logged_in(timeout_s=LOGGED_IN_SLACK_S)
                result["all_in_after_s"] = round(time.monotonic() - started, 1)
            except RuntimeError_ as exc:  # a result, not a crash: measure what did start
                result["all_in_after_s"], result["start_problem"] = None, str(exc)
            # Users that arrived within seconds of each other act in step at first (login, a first action, then
            # all thinking): the window starts once each has been through a whole pause, at its own pace.
            time.sleep(think_s[1])
            measured = window(pids, steady_s)
            result["load_1m"] = round(psutil.getloadavg()[0], 1)
        finally:
            load.stop()
    result["left_running"] = still_alive(list(pids.values()), GONE_WITHIN_S)
    since, until, spent = measured["since"], measured["until"], measured["cpu_s"]
    result["machine_busy_percent"] = measured["machine_busy_percent"]
    result["cpu_percent"] = {name: round(100 * s / (until - since), 1) for name, s in spent.items()}
    result["runnable_share"] = measured["runnable_share"]
    rows = read_all(run_dir / REQUESTS_FILE)
    expected = {account(n % MAX_USERS)[0] for n in range(users)}
    result["accounts"] = {
        "expected": len(expected),
        "seen": len(expected & {r.user for r in rows}),
        "logins": sum(1 for r in rows if r.action == "login"),
    }
    result["steady"] = steady = steady_figures(rows, since, until)
    # What an action costs the workers, so a reader can tell how many cores the users' asked rate takes.
    worker_s = sum(s for name, s in spent.items() if name.startswith("worker"))
    result["worker_cpu_ms_per_action"] = round(1000 * worker_s / steady["actions"], 2) if steady["actions"] else None
    return result


def report(result: dict, users: int) -> list[tuple[str, str, str, bool]]:
    """Print the figures; the (figure, measured, goal, met) checks."""
    steady, accounts, cpu, wanting = (
        result["steady"],
        result["accounts"],
        result["cpu_percent"],
        result["runnable_share"],
    )
    lo, hi = result["think_s"]
    print(
        f"load generator: {users} users thinking {lo:g}-{hi:g} s, {result['workers']} workers, "
        f"spawn rate {result['spawn_rate']:g}/s; "
        f"machine busy {result['machine_busy_percent']}% of {psutil.cpu_count()} cores, "
        f"load average {result['load_1m']}"
    )
    print(f"  users: {accounts}; all in after {result['all_in_after_s']} s {result.get('start_problem', '')}")
    print(f"  steady window: {steady}")
    for name, percent in cpu.items():
        saturated = "  (saturated: always had work)" if wanting[name] >= 0.9 else ""
        print(f"  {name:>13}: CPU {percent:5.1f}% of a core, runnable in {wanting[name]:.0%} of samples{saturated}")
    asked = users / ((lo + hi) / 2)
    per_action = result["worker_cpu_ms_per_action"]
    if per_action:
        print(
            f"  workers' CPU per action: {per_action} ms: the {asked:,.0f} actions/s the users ask take "
            f"~{asked * per_action / 1000:.1f} cores of workers; one worker core makes up to "
            f"~{1000 / per_action:,.0f} actions/s"
        )
    rate, p50, p99, ok = (steady[k] or 0 for k in ("actions_per_s", "p50_ms", "p99_ms", "ok_share"))
    all_in = accounts["seen"] == accounts["expected"] and accounts["logins"] >= users
    return [
        (
            "users started",
            f"{accounts['seen']}/{accounts['expected']} accounts, {accounts['logins']} logins, "
            f"all in after {result['all_in_after_s']} s",
            f"all {users} (every account, >= {users} logins)",
            all_in,
        ),
        (
            "actions/s in the window",
            f"{rate:,.0f}/s = {rate / asked:.0%} of the {asked:,.0f}/s the users ask",
            ">= 90%",
            rate >= 0.9 * asked,
        ),
        (
            "latency users saw from the stub",
            f"p50 {p50} ms, p99 {p99} ms",
            "p50 < 50 ms, p99 < 250 ms",
            steady["actions"] > 0 and p50 < 50 and p99 < 250,
        ),
        ("requests answered 2xx", f"{ok:.2%}", ">= 99.9%", ok >= 0.999),
        ("every process it started gone", f"{len(result['left_running'])} left", "0", not result["left_running"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument(
        "--think",
        type=think,
        default=VIEWER_THINK_S,
        metavar="MIN-MAX",
        help="seconds each user pauses after an action (default: a viewer's 5-15)",
    )
    parser.add_argument(
        "--spawn-rate", type=float, default=500.0, help="users started per second, all workers together"
    )
    parser.add_argument("--steady", type=float, default=20.0, help="seconds measured once every user is in")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="locust workers (default: one per core)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS or not 1 <= args.spawn_rate <= 5000 or not 5 <= args.steady <= 120:
        parser.error(f"--users must be 1..{MAX_USERS}, --spawn-rate 1..5000 and --steady 5..120")
    if args.think[1] == 0:
        parser.error("--think: users that never pause ask for an unbounded rate; give MAX > 0")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64 (this benchmark is about distributed mode)")
    os.environ["NO_PROXY"] = "127.0.0.1"  # locust's requests must reach the stubs directly, whatever the shell says
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="blackout-bench-loadgen-") as scratch:
        result = run(Path(scratch), args.users, args.think, args.spawn_rate, args.steady, args.workers)
    return conclude("load_generator", result, report(result, args.users), started)


if __name__ == "__main__":
    sys.exit(main())
