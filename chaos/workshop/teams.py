"""`blackout workshop start/status/end`: one round for several teams on one machine.

Each team gets what `blackout exercise start` gives one team (its own stack, runs folder board/<team>, control
token and team link), plus its own port block and, on a machine with the cores for it, its own CPUs. Every team
of a round plays the same seed (the same scenario at the same moment: a fair race), and the round's leaderboard
ranks them together. The board's workshop.json says who plays the current round, for `status` and `end` (and a
game master's console, through `workshop status --json`)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from chaos.control_client import ControlClient, supervisor_running
from chaos.profile_files import PROFILES
from chaos.room_address import room_address
from chaos.runtime.pids import is_process, start_time
from chaos.topology import Topology
from chaos.workshop import cpus
from chaos.workshop.commands import BOARD, stage_scenario, start_stack, team_topology, wait_stack
from chaos.workshop.config import TEAM, load_config
from chaos.workshop.draft import write_leaderboard
from services.common.atomic_file import write_atomically
from services.common.errors import BlackoutError, UsageError

STATE_FILE = "workshop.json"
PORT_BLOCK = 100  # team n's instances: --ports + n x 100 on (a topology has far fewer instances than this)
STOP_TIMEOUT_S = 30.0
TEAM_RE = re.compile(TEAM)


class TeamSeat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: str
    ports: list[int] | None  # the team's block [first, last]; None: ports the runtime picked
    cpus: list[int] | None  # None: the team shares every core


class Round(BaseModel):
    """What `workshop start` set up, read back by `status` and `end` (the board's workshop.json)."""

    model_config = ConfigDict(extra="forbid")
    round_id: str
    started: float
    state: str  # "playing" or "ended"
    teams: dict[str, TeamSeat]
    rounds_before: int = 0


def read_round(board: Path) -> Round:
    path = board / STATE_FILE
    try:
        return Round.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no workshop under {board} ({path} is missing): `blackout workshop start` first") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a workshop's state ({type(exc).__name__}): remove it") from None


def write_round(board: Path, state: Round) -> None:
    write_atomically(board / STATE_FILE, state.model_dump_json(indent=2))


def team_names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give the teams, comma-separated: --teams red,blue")
    for name in names:
        if not TEAM_RE.fullmatch(name):
            raise argparse.ArgumentTypeError(f"{name}: a team name is 1-30 lowercase letters, digits or dashes")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text}: a team is named twice")
    return names


def port_block(topology: Topology, first: int) -> Topology:
    """The topology on ports first, first+1, ...: refused, naming the port, if one is taken or out of range."""
    names = list(topology.instances())
    if first + len(names) - 1 > 65535:
        raise UsageError(f"--ports: the block from {first} runs past port 65535")
    placed = topology.with_ports(lambda name: first + names.index(name))
    for name, (dc, inst) in placed.instances().items():
        with socket.socket() as probe:  # a test bind, released at once: the stack binds it next
            try:
                probe.bind((placed.address(dc), inst.port))
            except OSError:
                raise UsageError(f"--ports: port {inst.port} (for {name}) is in use; give another block") from None
    return placed


def cmd_start(args: argparse.Namespace) -> int:
    board: Path = args.board
    previous = read_round(board) if (board / STATE_FILE).exists() else None
    if previous is not None and previous.state == "playing":
        raise UsageError(f"round {previous.round_id} is playing: `blackout workshop end` first")
    rounds_before = 0 if previous is None else previous.rounds_before + 1
    round_id = args.round_id or f"round-{rounds_before + 1}"
    seed = random.SystemRandom().randrange(2**31)  # one for every team, unless the config or --seed gives it
    configs = {team: load_config(args.config, team=team, seed=args.seed, round_id=round_id) for team in args.teams}
    configs = {team: c if c.seed is not None else c.model_copy(update={"seed": seed}) for team, c in configs.items()}
    if args.bind and not ipaddress.ip_address(args.bind).is_loopback:
        print(
            f"note: the team rooms answer on {args.bind} in plain HTTP: anyone on that network who sees a team's "
            "link can play as that team (the control API stays on 127.0.0.1); see docs/workshop.md"
        )
    # CPUs for the stacks this round starts; one up since an earlier round keeps its own
    sets = cpus.plan([t for t in args.teams if not supervisor_running(board / t)], args.cpus_per_team)
    if sets is None:
        print(
            f"note: {len(cpus.available())} CPUs for {len(args.teams)} teams (fewer than {cpus.CORES_PER_TEAM} each): "
            "the teams share cores, and one team's load may slow another's stack and score"
        )
    seats: dict[str, TeamSeat] = {}
    starting: dict[str, subprocess.Popen[str]] = {}
    try:
        for n, (team, config) in enumerate(configs.items()):
            runs = board / team
            profile_file = PROFILES / f"{config.profile}.yaml"
            topology = team_topology(profile_file, "any")
            first = None if args.ports is None else args.ports + n * PORT_BLOCK
            runs.mkdir(parents=True, exist_ok=True)
            configs[team] = stage_scenario(config, runs)
            team_cpus = sets.get(team) if sets else None
            if supervisor_running(runs):  # up since an earlier round: it keeps its ports, CPUs and address
                kept = previous.teams.get(team) if previous else None
                seats[team] = kept or TeamSeat(runs=str(runs), ports=None, cpus=None)
                continue
            placed = topology if first is None else port_block(topology, first)
            starting[team] = start_stack(runs, profile_file, placed, team, team_cpus, args.bind)
            seats[team] = TeamSeat(
                runs=str(runs),
                ports=None if first is None else [first, first + len(topology.instances()) - 1],
                cpus=team_cpus,
            )
        for team, up in starting.items():
            wait_stack(up, team)
    except BaseException:
        for team, up in starting.items():  # no stack of a round that did not start stays behind it
            up.wait()
            if supervisor_running(board / team):
                stop_stack(board / team)
        raise
    state = Round(round_id=round_id, started=time.time(), state="playing", teams=seats, rounds_before=rounds_before)
    write_round(board, state)
    links = {}
    for team, config in configs.items():
        client = ControlClient(board / team)
        answer = client.call("POST", "/exercise", {**config.model_dump(mode="json"), "leaderboard": True})
        links[team] = team_link(client, answer)
    print(f"{round_id}: {len(links)} teams are on call")
    for team, link in links.items():
        seat = seats[team]
        where = "any free ports" if seat.ports is None else f"ports {seat.ports[0]}-{seat.ports[1]}"
        on = "all CPUs" if seat.cpus is None else f"CPUs {','.join(map(str, seat.cpus))}"
        print(f"  {team}: {link}  ({where}, {on})")
    print("give each team its own link only; `blackout workshop status` shows every team, `end` scores the round")
    return 0


def team_link(client: ControlClient, view: dict[str, Any]) -> str:
    return f"{client.room_url}/room?code={view['team_code']}"


def cmd_status(args: argparse.Namespace) -> int:
    status = round_status(args.board)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['round_id']} ({status['state']})")
    for t in status["teams"]:
        if t["stack"] != "up":
            print(f"  {t['team']}: stack {t['stack']}")
            continue
        ex = t["exercise"] or {}
        points = f", {ex['score']['points']} points" if ex.get("score") else ""
        on = "all CPUs" if t["cpus"] is None else f"CPUs {','.join(map(str, t['cpus']))}"
        print(
            f"  {t['team']}: {ex.get('state', 'no exercise')}, clock {ex.get('clock_s', 0):.0f}s, "
            f"{len(ex.get('declarations', []))} declarations, {len(ex.get('actions', []))} actions{points}; {on}; "
            f"room {t['room']}"
        )
    return 0


def round_status(board: Path) -> dict[str, Any]:
    """The round and every team as plain data (`workshop status --json`, for a console): each team's stack
    (up/down), the CPUs its supervisor may run on (read back from the kernel), its link, and its exercise as
    the instructor sees it."""
    state = read_round(board)
    teams = []
    for team, seat in state.teams.items():
        runs = Path(seat.runs)
        entry: dict[str, Any] = {"team": team, "runs": seat.runs, "ports": seat.ports, "stack": "down"}
        entry.update({"cpus": seat.cpus, "room": None, "exercise": None})
        if supervisor_running(runs):
            client = ControlClient(runs)
            entry["stack"] = "up"
            entry["cpus"] = cpus.allowed(client.pid)
            try:
                view = client.call("GET", "/exercise", timeout=10)
                entry["exercise"] = view
                entry["room"] = team_link(client, view)
            except BlackoutError as exc:
                entry["error"] = str(exc)
        teams.append(entry)
    return {"round_id": state.round_id, "state": state.state, "started": state.started, "teams": teams}


def cmd_end(args: argparse.Namespace) -> int:
    board: Path = args.board
    state = read_round(board)
    playing = {team: Path(seat.runs) for team, seat in state.teams.items() if supervisor_running(Path(seat.runs))}
    # at once: every team's clock stops at the same moment
    with ThreadPoolExecutor(max_workers=max(1, len(playing))) as pool:
        ended = dict(zip(playing, pool.map(end_exercise, playing.values()), strict=True))
    state.state = "ended"
    write_round(board, state)
    for team, view in ended.items():
        if isinstance(view, str):
            print(f"  {team}: {view}")
        else:
            print(f"  {team}: {view['score']['points']} points; post-mortem draft {view['draft']}")
    print(f"leaderboard: {write_leaderboard(board)}")
    if args.down:
        for runs in playing.values():
            stop_stack(runs)
        print("every team's stack stopped")
    return 0


def end_exercise(runs: Path) -> dict[str, Any] | str:
    """The team's ended exercise, or why it could not be ended (one team's trouble does not stop the others)."""
    try:
        view: dict[str, Any] = ControlClient(runs).call("POST", "/exercise/end", timeout=300)
        return view
    except BlackoutError as exc:
        return f"not scored: {exc}"


def stop_stack(runs: Path) -> None:
    """Like `blackout down`: ask the supervisor to stop and wait until it has."""
    client = ControlClient(runs)
    started = start_time(client.pid)
    client.call("POST", "/shutdown")
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while started is not None and is_process(client.pid, started) and time.monotonic() < deadline:
        time.sleep(0.1)  # poll interval


def first_port(text: str) -> int:
    if not text.isdigit() or not 1024 <= int(text) <= 65000:
        raise argparse.ArgumentTypeError(f"{text}: give the first port of the first team's block (1024-65000)")
    return int(text)


def _per_team(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number of CPUs per team (1 or more)")
    return int(text)


def add_workshop_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """`blackout workshop start/status/end`; the verbs, for the selftest's (chaos/workshop/selftest.py)."""
    workshop = sub.add_parser("workshop", help="a round for several teams at once: start, status, end, selftest")
    verbs = workshop.add_subparsers(dest="workshop_command", required=True)

    start = verbs.add_parser("start", help="one stack and one exercise per team, on the same seed")
    start.add_argument("--teams", type=team_names, required=True, help="the teams, comma-separated: red,blue,green")
    start.add_argument("--config", type=Path, help="the round's exercise YAML (its team: is replaced by each team)")
    start.add_argument("--seed", type=int, help="the round's seed (default: the config's, else drawn once)")
    start.add_argument("--round-id", help="the round the leaderboard ranks the teams in (default: round-<n>)")
    start.add_argument(
        "--ports",
        type=first_port,
        help=f"the first team's first port; team n's block starts {PORT_BLOCK} x n later (default: free ports)",
    )
    start.add_argument(
        "--cpus-per-team",
        type=_per_team,
        help=f"pin each team's stack to this many CPUs of its own (default: {cpus.CORES_PER_TEAM} when the "
        "machine has them, else the teams share cores)",
    )
    start.add_argument(
        "--bind",
        type=room_address,
        metavar="ADDRESS",
        help="also serve each team's room on this address (the LAN's) for teams on their own laptops: the rooms "
        "only, team codes only (default: 127.0.0.1 only; docs/workshop.md says the risks and a tunnel instead)",
    )
    start.add_argument("--board", type=Path, default=BOARD, help="the folder every team plays under")
    start.set_defaults(func=cmd_start)

    status = verbs.add_parser("status", help="every team: its stack, CPUs, link, clock, declarations and actions")
    status.add_argument("--json", action="store_true", help="the whole status as JSON (for a console)")
    status.add_argument("--board", type=Path, default=BOARD)
    status.set_defaults(func=cmd_status)

    end = verbs.add_parser("end", help="end every team's exercise at once, score them, write the leaderboard")
    end.add_argument("--down", action="store_true", help="also stop every team's stack")
    end.add_argument("--board", type=Path, default=BOARD)
    end.set_defaults(func=cmd_end)
    return verbs
