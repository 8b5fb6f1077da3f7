"""`blackout run/outage/scenarios/panic/fault`: scenarios and faults from the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import yaml
from rich.table import Table

from chaos.console import terminal
from chaos.control_client import ControlClient
from chaos.engine.run import DEFAULT_PROFILE, RunOptions
from chaos.engine.scenario import library
from chaos.profile_files import profile_file
from chaos.runtime.choice import RUNTIMES
from chaos.stack import run_scenario
from loadtest.control import MAX_THINK_S, think_range
from services.common.errors import UsageError

EXIT_DEVIATED = 1


def profile_path(text: str) -> Path:
    """``--profile``: a profile file, or the name of one in profiles/ (``resilient``)."""
    try:
        return profile_file(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def think(text: str) -> tuple[float, float]:
    """``--think 5-15``: each user's pause after an action, MIN-MAX seconds (one number: always that long)."""
    lo, sep, hi = text.partition("-")
    try:
        return think_range((float(lo), float(hi if sep else lo)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text}: give MIN-MAX seconds, 0 <= MIN <= MAX <= {MAX_THINK_S:g} (e.g. 5-15)"
        ) from None


def seeds(text: str) -> list[int]:
    """``--seeds 7,8,9``: one run per seed."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: give comma-separated integers (e.g. 7,8,9)") from None


def cmd_run(args: argparse.Namespace) -> int:
    """While the scenario runs, its controller answers `blackout status/panic/fault` and streams its events."""
    if args.any_ports and args.runtime != "local":
        raise UsageError(f"--any-ports: only the local runtime binds free ports (not {args.runtime})")
    options = RunOptions(
        scenario=args.scenario,
        profile=args.profile,
        topology=args.topology,
        seed=args.seed,
        users=args.users,
        think_s=args.think,
        runs_root=args.runs,
        runtime=args.runtime,
        serve=True,
        any_ports=args.any_ports,
        prometheus_port=0 if args.any_ports else RunOptions.prometheus_port,
    )
    result = run_scenario(options)
    return EXIT_DEVIATED if result.deviated else 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    table = Table("scenario", "what happens", "users", "seconds")
    for scenario in library():
        table.add_row(scenario.name, scenario.description, scenario.load.describe(), f"{scenario.duration:g}")
    terminal().print(table)
    print("run one: blackout run <scenario> [--profile profiles/resilient.yaml]   (make outage SCENARIO=<scenario>)")
    return 0


def cmd_panic(args: argparse.Namespace) -> int:
    answer = ControlClient(args.runs).call("POST", "/panic")
    for rollback in answer["rollbacks"]:
        print(f"rolled back {rollback['id']}: {rollback['status']}")
    print("power: " + ", ".join(f"{dc} {'on' if on else 'OFF'}" for dc, on in answer["power"].items()))
    if answer.get("pending"):
        print(answer["pending"])  # a run was stopped: `blackout status` shows its rollbacks landing
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    client = ControlClient(args.runs)
    if args.fault_command == "list":
        for fault in client.call("GET", "/faults"):
            print(f"{fault['id']}: {json.dumps(fault['action'])}")
        return 0
    if args.fault_command == "remove":
        client.call("DELETE", f"/faults/{args.id}")
        print(f"removed {args.id}")
        return 0
    try:
        body = yaml.safe_load(args.spec)
    except yaml.YAMLError as exc:
        raise UsageError(f"the fault is not valid YAML: {exc}") from None
    answer = client.call("POST", "/faults", body)
    print(f"injected {answer['id']}: {json.dumps(answer['output'])}")
    return 0


def add_scenario_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], users: Callable[[str], int]
) -> None:
    for name, text in (
        ("run", "run a scenario (a name from `blackout scenarios`, or a YAML file)"),
        ("outage", "the power-loss demo: `blackout run dc-power-loss`"),
    ):
        parser = sub.add_parser(name, help=text)
        if name == "run":
            parser.add_argument("scenario", help="scenario name or file")
        else:
            parser.add_argument("--scenario", default="dc-power-loss", help="scenario name or file")
        parser.add_argument(
            "--profile",
            type=profile_path,
            default=DEFAULT_PROFILE,
            help="resilience profile: a name (naive, resilient) or a YAML file",
        )
        parser.add_argument("--topology", type=Path, help="topology YAML (default: the one the profile names)")
        parser.add_argument("--seed", type=int, help="repeat a run: the seed its journal recorded")
        parser.add_argument("--users", type=users, help="simulated users (default: the scenario's)")
        parser.add_argument(
            "--think",
            type=think,
            metavar="MIN-MAX",
            help="seconds each user pauses after an action (default: the scenario's, else 0.5-1.5; real viewers: 5-15)",
        )
        parser.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go")
        parser.add_argument(
            "--any-ports",
            action="store_true",
            help="bind free ports instead of the topology's (and Prometheus's 9090): a run beside another stack",
        )
        parser.add_argument(
            "--runtime",
            choices=RUNTIMES,
            default="local",
            help="local processes, a network namespace per data center (netns: Linux, root), Docker containers (image "
            "blackout:latest: make image), or a Docker Swarm (swarm: the lab of docker/swarm-lab.sh; docs/swarm.md)",
        )
        parser.set_defaults(func=cmd_run)

    scenarios = sub.add_parser("scenarios", help="list the scenario library with each one's purpose")
    scenarios.set_defaults(func=cmd_scenarios)

    panic = sub.add_parser("panic", help="remove every fault and restore every data center's power at once")
    panic.add_argument("--runs", type=Path, default=Path("runs"))
    panic.set_defaults(func=cmd_panic)

    fault = sub.add_parser("fault", help="inject, list or remove a fault on the running stack")
    verbs = fault.add_subparsers(dest="fault_command", required=True)
    add = verbs.add_parser(
        "add", help='e.g. blackout fault add "{latency: {from: dc-west, to: dc-east, ms: 300}, for: 20s}"'
    )
    add.add_argument("spec", help="the action as YAML/JSON, the same as a timeline step without `at`")
    remove = verbs.add_parser("remove", help="remove a fault by id")
    remove.add_argument("id")
    listing = verbs.add_parser("list", help="the active faults")
    for verb in (add, remove, listing):
        verb.add_argument("--runs", type=Path, default=Path("runs"))
    fault.set_defaults(func=cmd_fault)
