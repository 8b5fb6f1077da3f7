"""`blackout up/down/status/power-off/power-on`: a stack that stays up while you break it by hand.

`up` runs in the foreground (Ctrl-C tears everything down) or, with --detach, as a background
supervisor. Either way the supervisor owns every service process and serves the control API.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chaos.console import terminal
from chaos.control_api import room_address
from chaos.control_client import ControlClient, supervisor_running
from chaos.engine.fit import topology_for
from chaos.journal import EventName, new_run_dir, read_events
from chaos.rundir import JOURNAL
from chaos.runtime import netlink, netns_owner
from chaos.runtime.base import RuntimeError_
from chaos.runtime.choice import RUNTIMES
from chaos.runtime.pids import is_process, start_time
from chaos.stack import Stack
from chaos.topology import load_topology
from services.common.errors import BlackoutError
from services.common.policy import load_profile

DETACH_TIMEOUT_S = 120.0


def cmd_up(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    topology = load_topology(args.topology or topology_for(profile))
    args.runs.mkdir(parents=True, exist_ok=True)
    if supervisor_running(args.runs):
        raise BlackoutError("a stack is already running: `blackout status` shows it, `blackout down` stops it")
    if args.detach:
        return _detach(args)
    run_dir = new_run_dir(args.runs, f"up-{topology.name}")
    console = terminal()
    # On leaving (normally, Ctrl-C, SIGTERM, an exception) every fault is rolled back, the control API stops and
    # every process is gone.
    with Stack(args.runs, runtime=args.runtime, serve=True, runs=True, room_bind=args.room_bind) as stack:
        stack.open(run_dir)
        with console.status("starting the services..."):
            runtime = stack.power_up(topology, args.profile.resolve())
        stack.arm(profile, random.Random())
        _print_status(console, runtime.status())
        console.print(f"run directory {run_dir}; Ctrl-C or `blackout down` stops everything")
        assert stack.server is not None
        while not stack.server.shutdown.wait(timeout=1.0):
            pass
    return 0


def _detach(args: argparse.Namespace) -> int:
    command = [
        sys.executable,
        "-m",
        "chaos.cli",
        "up",
        "--profile",
        str(args.profile),
        "--runs",
        str(args.runs),
        "--runtime",
        args.runtime,
    ]
    if args.topology:
        command += ["--topology", str(args.topology)]
    if args.room_bind:
        command += ["--room-bind", args.room_bind]
    with (args.runs / "supervisor.log").open("ab") as log:
        proc = subprocess.Popen[bytes](
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        client = _wait_for_control(args.runs, proc)
    except BaseException:  # a failure, or Ctrl-C: no stack may come up unseen behind it
        proc.terminate()
        raise
    _print_status(terminal(), client.call("GET", "/status")["instances"])
    print(f"supervisor pid {proc.pid}; stop everything with `blackout down`")
    return 0


def _wait_for_control(runs: Path, proc: subprocess.Popen[bytes]) -> ControlClient:
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (runs / "supervisor.log").read_text(errors="replace").splitlines()[-5:]
            raise BlackoutError("the supervisor stopped while starting:\n" + "\n".join(tail))
        if (client := _control_of(runs, proc.pid)) is not None:
            return client
        time.sleep(0.2)  # poll interval
    raise RuntimeError_(f"the stack did not come up within {DETACH_TIMEOUT_S:g}s; see {runs / 'supervisor.log'}")


def _control_of(runs: Path, pid: int) -> ControlClient | None:
    """The control file once ``pid`` wrote it: one left behind by a killed supervisor is not it."""
    try:
        client = ControlClient(runs)
    except BlackoutError:
        return None  # not there yet, or being written
    return client if client.pid == pid else None


def cmd_down(args: argparse.Namespace) -> int:
    # What a netns stack whose controller was SIGKILLed (and its watcher with it) left: namespaces, links
    if not netlink.why_unsupported() and (removed := netns_owner.sweep()):
        print(f"removed what dead netns stacks left: {', '.join(removed)}")
    client = ControlClient(args.runs)
    started = start_time(client.pid)  # the supervisor, told from a later process that may get its pid
    client.call("POST", "/shutdown")
    deadline = time.monotonic() + 30
    while started is not None and is_process(client.pid, started) and time.monotonic() < deadline:
        time.sleep(0.1)  # poll interval
    stopping = started is not None and is_process(client.pid, started)
    print(f"supervisor {client.pid} is still stopping" if stopping else "stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _print_status(terminal(), ControlClient(args.runs).call("GET", "/status")["instances"])
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    event = ControlClient(args.runs).call("POST", f"/power/{args.dc}/{args.action}")
    verb = "killed in" if args.action == "off" else "healthy again in"
    print(f"power {args.action} {args.dc}: {len(event['instances'])} instances {verb} {event['seconds']:.2f}s")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)  # refuse a bad file here, naming the file and the field
    client = ControlClient(args.runs)
    answer = client.call("PUT", "/profile", profile.model_dump(mode="json"))
    for name, outcome in answer["instances"].items():
        print(f"{name}: {outcome}")
    failed = [name for name, outcome in answer["instances"].items() if outcome != "ok"]
    running = running_topology(client)
    if running is not None and profile.topology != running:
        print(f"note: {profile.name} is meant for the '{profile.topology}' topology; this stack runs '{running}'")
    return 1 if failed else 0


def running_topology(client: ControlClient) -> str | None:
    """The running stack's topology, from its journal's last ``up`` event: every runtime records it there (only the
    local runtime writes state.json, so a Docker stack has none to read)."""
    events = read_events(Path(client.run_dir) / JOURNAL)
    return next((str(e["topology"]) for e in reversed(events) if e["event"] == EventName.UP and "topology" in e), None)


def _print_status(console: Console, instances: dict[str, Any]) -> None:
    table = Table("instance", "data center", "service", "port", "state", "pid")
    for name, info in instances.items():
        style = "green" if info["state"] == "running" else "red"
        table.add_row(
            name,
            info["dc"],
            info["service"],
            str(info["port"]),
            f"[{style}]{info['state']}[/]",
            str(info["pid"] or "-"),
        )
    console.print(table)


def add_supervisor_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from chaos.engine.run import DEFAULT_PROFILE

    def runs_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go")

    up = sub.add_parser("up", help="start every instance and keep them running")
    up.add_argument("--topology", type=Path, help="topology YAML (default: the one the profile names)")
    up.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    up.add_argument("-d", "--detach", action="store_true", help="run the supervisor in the background")
    up.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="local",
        help="local processes, a network namespace per data center (Linux, root), Docker containers, or a Docker Swarm",
    )
    up.add_argument(
        "--room-bind",
        type=room_address,
        metavar="ADDRESS",
        help="also serve the team rooms on this address (e.g. the LAN's), team codes only: never the control "
        "API, which stays on 127.0.0.1 (docs/workshop.md says the risks)",
    )
    runs_option(up)
    up.set_defaults(func=cmd_up)

    for name, func, text in (
        ("down", cmd_down, "stop everything `up` started"),
        ("status", cmd_status, "show every instance"),
    ):
        parser = sub.add_parser(name, help=text)
        runs_option(parser)
        parser.set_defaults(func=func)

    switch = sub.add_parser("profile", help="switch the running stack's resilience profile live")
    switch.add_argument("profile", type=Path, help="profile YAML, e.g. profiles/resilient.yaml")
    runs_option(switch)
    switch.set_defaults(func=cmd_profile)

    for action in ("off", "on"):
        parser = sub.add_parser(
            f"power-{action}",
            help=("cut the power of" if action == "off" else "restore the power of") + " a whole data center",
        )
        parser.add_argument("dc", help="data center, e.g. dc-east")
        runs_option(parser)
        parser.set_defaults(func=cmd_power, action=action)
