"""`blackout exercise start/detect/act/status/room/end/leaderboard`: a hidden-fault exercise from the shell.

Each team plays on its own stack in its own runs folder (runs/teams/<team>, with its own .control.json), on
ports the runtime picks (or a port block of the instructor's), so several teams share one machine."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from chaos.control_client import ControlClient, supervisor_running
from chaos.engine.fit import topology_for
from chaos.engine.scenario import SIGNS
from chaos.faults.fault_types import NAMES as FAULT_TYPES
from chaos.library import LOCAL_SCENARIOS
from chaos.profile_files import PROFILES
from chaos.topology import Topology, load_topology
from chaos.workshop.collect import collect, write_collected
from chaos.workshop.config import ACTION_NAMES, TEAM, ExerciseConfig, load_config
from chaos.workshop.cpus import pinned
from chaos.workshop.draft import write_leaderboard
from chaos.workshop.hidden import draw
from services.common.errors import BlackoutError, UsageError
from services.common.policy import LIBRARY_NAME, load_profile

BOARD = Path("runs") / "teams"
COLLECTED = Path("runs") / "collected"  # the leaderboard merged from several machines


def team_runs(args: argparse.Namespace) -> Path:
    runs: Path = args.runs or (args.board / args.team)
    return runs


def cmd_start(args: argparse.Namespace) -> int:
    allow = [a.strip() for a in args.allow.split(",") if a.strip()] if args.allow else None
    config = load_config(
        args.config,
        team=args.team,  # None unless given: the config file's `team:` (else the default) holds
        scenario=args.scenario,
        seed=args.seed,
        users=args.users,
        profile=args.profile,
        allow=allow,
        control=args.control,
        round_id=args.round_id,
        onset=args.onset,
        round=args.round,
        hold=args.hold,
    )
    profile_file = PROFILES / f"{config.profile}.yaml"
    topology = team_topology(profile_file, args.ports)
    with tempfile.TemporaryDirectory() as scratch:  # an unknown scenario is refused before any stack starts
        draw(stage_scenario(config, Path(scratch)), 0, Path(scratch) / "draw", Path(scratch))
    runs = team_runs(argparse.Namespace(runs=args.runs, board=args.board, team=config.team))
    runs.mkdir(parents=True, exist_ok=True)
    config = stage_scenario(config, runs)
    if not supervisor_running(runs):
        wait_stack(start_stack(runs, profile_file, topology, config.team), config.team)
    client = ControlClient(runs)
    body = {**config.model_dump(mode="json"), "leaderboard": True}  # the board: the folder holding the team's runs
    answer = client.call("POST", "/exercise", body)
    lo, hi = answer["fault_window_s"]
    print(
        f"team {answer['team']} is on call. Users are arriving; something will break {lo:g}-{hi:g} s later than you think."
    )
    print(f"allowed actions: {', '.join(answer['allow']) or 'none'} (at most {answer['actions_left']})")
    print(f"the team's link (give it to team {answer['team']} only): {client.url}/room?code={answer['team_code']}")
    print(f"the watchers' link (read-only, Wheel of Misfortune): {client.room_url}/room?watch={answer['watch_code']}")
    print(f"the instructor's control room (never the team's): {client.url}/room?token={client.token}")
    print(f"the game master's console (after the instructor's link, same browser): {client.url}/console")
    print(
        f'declare: blackout exercise detect "..." --team {answer["team"]}    act: blackout exercise act power-on dc-east --team {answer["team"]}'
    )
    return 0


def start_stack(
    runs: Path,
    profile_file: Path,
    topology: Topology,
    team: str,
    cpus: list[int] | None = None,
    room_bind: str | None = None,
) -> subprocess.Popen[str]:
    """Start the team's stack in the background (``blackout up --detach``, on ``cpus`` when given: see cpus.py;
    its room also on ``room_bind``); the caller waits for it with ``wait_stack`` (several teams' stacks start
    side by side)."""
    topology_file = runs / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump(), sort_keys=False))
    print(f"starting team {team}'s stack in {runs} ...")
    command = [sys.executable, "-m", "chaos.cli", "up", "--detach", "--profile", str(profile_file)]
    command += ["--topology", str(topology_file), "--runs", str(runs)]
    if room_bind:
        command += ["--room-bind", room_bind]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pinned(cpus))


def wait_stack(up: subprocess.Popen[str], team: str) -> None:
    out, err = up.communicate()
    if up.returncode != 0:
        raise BlackoutError(f"team {team}'s stack did not start: {err.strip() or out.strip()}")


def stage_scenario(config: ExerciseConfig, runs: Path) -> ExerciseConfig:
    """A scenario given as a file goes into the stack's own library (<runs>/scenarios): the control API takes
    library names only, never paths."""
    if not config.scenario or Path(config.scenario).suffix not in (".yaml", ".yml"):
        return config
    source = Path(config.scenario)
    if not re.fullmatch(LIBRARY_NAME, source.stem):
        raise UsageError(f"{source}: a scenario file's name is lowercase letters, digits and dashes (.yaml)")
    if not source.is_file():
        raise UsageError(f"{source}: no such scenario file")
    folder = runs / LOCAL_SCENARIOS
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the instructor's: its file names the round's scenario
    shutil.copyfile(source, folder / source.name.replace(".yml", ".yaml"))
    return config.model_copy(update={"scenario": source.stem})


def team_topology(profile_file: Path, ports: int | str) -> Topology:
    """The profile's topology on free ports ("any") or on the block starting at ``ports`` (instance n: base + n)."""
    if not profile_file.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise UsageError(f"no profile '{profile_file.stem}'; profiles: {known}")
    topology = load_topology(topology_for(load_profile(profile_file)))
    if ports == "any":
        return topology.with_any_ports()
    names = list(topology.instances())
    return topology.with_ports(lambda name: int(ports) + names.index(name))


def cmd_detect(args: argparse.Namespace) -> int:
    body = {"symptom": args.symptom, "where": args.where, "fault": args.fault, "text": args.text or ""}
    answer = ControlClient(team_runs(args)).call("POST", "/exercise/detect", body)
    print(f"declared at {answer['clock_s']:g}s on the exercise clock ({answer['declarations']} so far)")
    return 0


def cmd_hint(args: argparse.Namespace) -> int:
    answer = ControlClient(team_runs(args)).call("POST", "/exercise/hint")
    print(f"hint {answer['n']} (-{answer['cost']} points, {answer['hints_left']} left): {answer['text']}")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    answer = ControlClient(team_runs(args)).call("POST", "/exercise/ack")
    print(f"acknowledged {answer['acked_at'] - answer['t']:.1f} s after the page")
    return 0


def cmd_act(args: argparse.Namespace) -> int:
    answer = ControlClient(team_runs(args)).call(
        "POST", "/exercise/act", {"action": args.action, "target": _target(args.target)}
    )
    print(f"{answer['action']} {answer['target'] or ''}: {answer['status']}")
    return 0


def _target(text: str | None) -> str | dict[str, Any] | None:
    """A name, or a lever's spec written as a YAML mapping: '{dc: dc-east, boot_order: [auth, views]}'."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"the target is not a YAML mapping: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("the target is a name or a YAML mapping such as '{dc: dc-east, boot_order: [auth]}'")
    return value


def cmd_status(args: argparse.Namespace) -> int:
    view = ControlClient(team_runs(args)).call("GET", "/exercise")
    print(json.dumps(view, indent=2, default=str) if args.json else _line(view))
    return 0


def cmd_room(args: argparse.Namespace) -> int:
    client = ControlClient(team_runs(args))
    try:
        view = client.call("GET", "/exercise")
        print(f"the team's link: {client.url}/room?code={view['team_code']}")
        print(f"the watchers' link: {client.room_url}/room?watch={view['watch_code']}")
    except UsageError:
        pass  # no exercise on this stack (404): there is no team link, only the instructor's
    print(f"the instructor's control room: {client.url}/room?token={client.token}")
    print(f"the game master's console: {client.url}/console")
    return 0


def cmd_end(args: argparse.Namespace) -> int:
    runs = team_runs(args)
    client = ControlClient(runs)
    view = client.call("POST", "/exercise/end", timeout=300)
    s = view["score"]
    print(
        f"team {view['team']}: {view['hidden']['title']} (scenario {view['hidden']['scenario']}, "
        f"{view['hidden']['offset_s']:g}s late, seed {view['seed']})"
    )
    for name in ("ack", "detect", "mitigate", "recover"):
        value = s[f"{name}_s"]
        shown = "no page" if name == "ack" and not s["paged"] else "never" if value is None else f"{value:g} s"
        print(f"  time to {name}: {shown}")
    print(
        f"  requests not served after the onset: ~{s['unserved']} of ~{s['expected']} ({s['failed']} failed, the rest never "
        f"answered); false alarms: {s['false_alarms']}; "
        f"lost writes: {'not measured' if s['lost_writes'] is None else s['lost_writes']}"
    )
    print(f"  localization: {s['localization']:g}, root cause: {'right' if s['root_cause'] else 'wrong'}")
    parts = ", ".join(
        [*(f"{k} {v}" for k, v in s["parts"].items()), *(f"{k} n/a ({why})" for k, why in s["not_scored"].items())]
    )
    lost = ", ".join(f"{k} -{v}" for k, v in s["penalties"].items() if v)
    print(f"  score: {s['points']} of {s['out_of']} ({parts}{'; ' + lost if lost else ''})")
    print(f"post-mortem draft: {view['draft']}")
    if view.get("leaderboard"):
        print(f"leaderboard: {view['leaderboard']}")
    if args.down:
        client.call("POST", "/shutdown")
        print("the team's stack is stopping")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    if args.collect:
        collected = collect(args.collect)
        for line in collected.set_aside:
            print(f"note: {line}")
        print(write_collected(collected, args.out).read_text(), end="")
        return 0
    if not args.board.is_dir():
        raise UsageError(f"{args.board}: no such folder (teams play under runs/teams/<team>)")
    print(write_leaderboard(args.board).read_text(), end="")
    return 0


def _line(view: dict[str, Any]) -> str:
    detected = view["detected_after_s"]
    return (
        f"team {view['team']}: {view['state']}, clock {view['clock_s']:.0f}s, {len(view['declarations'])} declarations, "
        f"{len(view['actions'])} actions, detected: {'no' if detected is None else f'{detected:g}s after the fault'}"
    )


def _onset(text: str) -> dict[str, str]:
    """--onset 20s-90s (or one duration: exactly then), later than the scenario's own timeline."""
    low, _, high = text.partition("-")
    if not low:
        raise argparse.ArgumentTypeError(f"{text}: give MIN-MAX, e.g. 20s-90s (or one duration)")
    return {"min": low, "max": high or low}


def _team(text: str) -> str:
    if not re.fullmatch(TEAM[1:-1], text):
        raise argparse.ArgumentTypeError(f"{text}: a team name is 1-30 lowercase letters, digits or dashes")
    return text


def _ports(text: str) -> int | str:
    if text == "any":
        return text
    if not text.isdigit() or not 1024 <= int(text) <= 65000:
        raise argparse.ArgumentTypeError(f"{text}: give 'any' or the first port of a free block (1024-65000)")
    return int(text)


def add_exercise_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exercise = sub.add_parser("exercise", help="a hidden-fault exercise for a team: start, detect, act, end")
    verbs = exercise.add_subparsers(dest="exercise_command", required=True)

    def where(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--team", type=_team, default="team", help="the team's name (its runs folder)")
        parser.add_argument("--board", type=Path, default=BOARD, help="the folder every team plays under")
        parser.add_argument("--runs", type=Path, help="the team's runs folder (default: <board>/<team>)")

    start = verbs.add_parser(
        "start", help="start the team's stack under load; a fault comes at a moment nobody is told"
    )
    which = start.add_mutually_exclusive_group()
    which.add_argument("--scenario", help="a scenario of the library (default: drawn by the seed)")
    which.add_argument("--random", action="store_true", help="draw the scenario from the library (the default)")
    start.add_argument("--seed", type=int, help="repeat an exercise: the same scenario, moment and victims")
    start.add_argument("--profile", help="the profile the stack starts with (a name in profiles/; default naive)")
    start.add_argument("--users", type=int, help="simulated users (default: the scenario's)")
    start.add_argument(
        "--allow", help=f"remediation actions the team may take, comma-separated: {', '.join(ACTION_NAMES)}"
    )
    start.add_argument(
        "--control", type=float, help="the chance (0-1) of a no-fault control round, drawn by the seed (default 0)"
    )
    start.add_argument("--round-id", help="the round the leaderboard ranks the team in (default: round)")
    start.add_argument(
        "--round", help="users keep coming at least this long, e.g. 10m (default: the scenario's duration + onset)"
    )
    start.add_argument(
        "--onset",
        type=_onset,
        help="the fault comes MIN-MAX later than the scenario says, e.g. 20s-90s (default 10s-60s)",
    )
    start.add_argument(
        "--hold", action="store_true", default=None, help="nothing heals by itself: restoring service is the team's job"
    )
    start.add_argument("--config", type=Path, help="an exercise YAML (team, scenario, seed, onset, allow, max_actions)")
    start.add_argument(
        "--ports", type=_ports, default="any", help="'any' (default) or the first port of the team's block"
    )
    where(start)
    start.set_defaults(func=cmd_start, team=None)  # no --team: the config file's (else "team")

    detect = verbs.add_parser(
        "detect", help="declare what you found: blackout exercise detect failed_requests dc-east power-loss"
    )
    detect.add_argument("symptom", help=f"what users see: {', '.join(SIGNS)}")
    detect.add_argument("where", help="a data center, service or instance")
    detect.add_argument("fault", help=f"the fault type: {', '.join(FAULT_TYPES)}")
    detect.add_argument("text", nargs="?", help="in your own words, for the debrief")
    where(detect)
    detect.set_defaults(func=cmd_detect)

    hint = verbs.add_parser("hint", help="the card's next hint (each costs points: 25, 50, 100)")
    where(hint)
    hint.set_defaults(func=cmd_hint)

    ack = verbs.add_parser("ack", help="acknowledge the page (time to acknowledge is scored)")
    where(ack)
    ack.set_defaults(func=cmd_ack)

    act = verbs.add_parser(
        "act",
        help="remediate: power-on DC|'{dc: DC, boot_order: [...]}', power-off DC, profile NAME (a deploy), "
        "restart-instance NAME, drain DC, shed-logins PER_S, dependency '{callers, dependency, timeout_s, attempts, "
        "breaker}', remove-fault ID",
    )
    act.add_argument("action", choices=ACTION_NAMES)
    act.add_argument("target", nargs="?")
    where(act)
    act.set_defaults(func=cmd_act)

    status = verbs.add_parser("status", help="the exercise's clock, declarations and actions")
    status.add_argument("--json", action="store_true")
    where(status)
    status.set_defaults(func=cmd_status)

    room = verbs.add_parser(
        "room", help="print the team's link (room, detect, act only) and the instructor's (everything: keep it)"
    )
    where(room)
    room.set_defaults(func=cmd_room)

    end = verbs.add_parser(
        "end", help="stop the fault, reveal it, score the team, write the post-mortem draft and the leaderboard"
    )
    end.add_argument("--down", action="store_true", help="also stop the team's stack")
    where(end)
    end.set_defaults(func=cmd_end)

    board = verbs.add_parser("leaderboard", help="each round's teams under the board folder, ranked per round")
    board.add_argument("--board", type=Path, default=BOARD)
    board.add_argument(
        "--collect",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="instead: merge the score files under these folders (copied from each machine) into one leaderboard",
    )
    board.add_argument("--out", type=Path, default=COLLECTED, help="with --collect: where the merged leaderboard goes")
    board.set_defaults(func=cmd_leaderboard)
