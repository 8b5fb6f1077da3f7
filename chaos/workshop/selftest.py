"""`blackout workshop selftest`: what an instructor runs the day before, on each laptop or on the server.

It checks what a round needs (Python, the port blocks, CPUs, memory), then measures how many teams this machine
hosts with a steady score: a round with one team, then two at once, three, ... each exactly as `workshop start`
sets teams up (a stack per team, the same CPU plan, the same seed for all) and each team played by the scripted
responder (examples/responder.py, run as its own process from the team's link alone, as a team's program would).
Every round is the library's dc-power-loss, held (dc-east stays dark until a team powers it on). The count stops
at the first round in which a team is no longer steady against the one-team round (STEADY: its points, its users'
success and p99 before the fault, the responder's mitigation), or at ``--max-teams``, or where memory would run
out. Everything a round produced stays under ``--board`` (its runs, scores and selftest.json)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from chaos.control_client import ControlClient, supervisor_running
from chaos.engine.run import PROJECT_ROOT
from chaos.faults.model import parse_duration
from chaos.journal import new_run_dir
from chaos.profile_files import PROFILES
from chaos.report_model import percentile
from chaos.rundir import REQUESTS_FILE
from chaos.workshop import cpus
from chaos.workshop.commands import start_stack, team_topology, wait_stack
from chaos.workshop.config import ExerciseConfig, parse_config
from chaos.workshop.score import START
from chaos.workshop.teams import PORT_BLOCK, end_exercise, first_port, port_block, stop_stack, team_link
from loadtest.requests_reader import RequestRow, read_all
from services.common.errors import BlackoutError, UsageError

RESPONDER = PROJECT_ROOT / "examples" / "responder.py"
SELFTEST = Path("runs") / "selftest"
SCENARIO = "dc-power-loss"  # the default demo's card, held: the responder's first rung (power-on)
SEED = 1  # every round and every team alike: the same moment, the same victims
PYTHON = (3, 11)  # pyproject.toml's requires-python
# Steady, against the one-team round (the reference), for every team of a round:
# at most this many points more lost (below what the round could give: 1,000, 900 without a page) than it
STEADY_POINTS = 100  # a tenth of the 1,000 a round can give
STEADY_SUCCESS = 0.05  # users' success before the fault at most 5 points below it
STEADY_P99 = 2.0  # users' p99 before the fault at most twice it...
P99_SLACK_MS = 200.0  # ...or this much above it, whichever is more (a fast reference's double is still fast)
RESPONDER_SLACK_S = 120.0  # the responder is on call until the round is ended; past this, it is stopped
CLOCK_POLL_S = 1.0
PROFILE = "naive"


@dataclass
class Seat:
    """One team's result in one round."""

    team: str
    points: int | None = None
    out_of: int = START  # what the round could give: acknowledge is n/a when no page came (score.py)
    fault_came: bool = False  # within the round (a machine too busy starts the users, and so the fault, late)
    mitigated: bool = False
    mitigated_after_s: float | None = None
    success: float | None = None  # users' share served before the fault
    p99_ms: float | None = None  # users' p99 before the fault
    rss_mb: float | None = None  # the stack's resident memory at the round's end (every process's RSS summed)
    error: str = ""


@dataclass
class Round:
    teams: int
    cpus: list[list[int]] | None  # each team's CPUs, None: shared
    seats: list[Seat] = field(default_factory=list)
    steady: bool = False
    why: str = ""


def cmd_selftest(args: argparse.Namespace) -> int:
    config = round_config(args.round, args.users)  # a bad --users is refused before anything runs
    print("blackout workshop selftest: can this machine host a workshop's round, and how many teams?")
    problems = checks(args)
    if problems:
        for line in problems:
            print(f"problem: {line}")
        return 1
    if not RESPONDER.is_file():
        raise UsageError(f"the selftest plays with the scripted responder, {RESPONDER}: it is missing")
    board = new_run_dir(args.board, "selftest")
    rounds: list[Round] = []
    for n in range(1, args.max_teams + 1):
        if rounds and not fits_memory(rounds[-1], n):
            print(f"stopping before {n} teams: their stacks would not fit in the memory available now")
            break
        teams = "1 team" if n == 1 else f"{n} teams at once"
        print(f"round with {teams} ({args.round:g}s, {SCENARIO} held, seed {SEED}) ...")
        played = play(n, config, args.ports, board / f"{n}-teams")
        judge(played, rounds[0] if rounds else None)
        rounds.append(played)
        for seat in played.seats:
            print(f"  {describe(seat)}")
        print(f"  {'steady' if played.steady else 'NOT steady'}: {played.why}")
        if not played.steady:
            break
    hosted = max((r.teams for r in rounds if r.steady), default=0)
    summary = {"hosts_teams": hosted, "max_teams": args.max_teams, "round_s": args.round, "rounds": rounds}
    (board / "selftest.json").write_text(json.dumps(summary, default=asdict, indent=2))
    stopped = " (the most tried: --max-teams)" if rounds and rounds[-1].steady and hosted == args.max_teams else ""
    print(f"this machine hosts {hosted} team{'s' * (hosted != 1)} with a steady score{stopped}")
    print(
        f"method: 1, 2, ... teams at once, each played by the scripted responder; steady: every team losing at "
        f"most {STEADY_POINTS} points more than the one-team round, its users' success before the fault within "
        f"{STEADY_SUCCESS * 100:g} points and p99 within {STEADY_P99:g}x (or +{P99_SLACK_MS:g} ms), the responder "
        f"mitigating. Everything is in {board}"
    )
    return 0 if hosted else 1


def checks(args: argparse.Namespace) -> list[str]:
    """Print what the machine has; the problems that stop a round from running here."""
    problems = []
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= PYTHON
    print(f"  python {version}: {'ok' if ok else 'too old'} ({'.'.join(map(str, PYTHON))} or later needed)")
    if not ok:
        problems.append(f"Python {version}: Blackout needs {'.'.join(map(str, PYTHON))} or later")
    usable, machine = cpus.available(), psutil.cpu_count() or 0
    load = psutil.getloadavg()[0]
    busy = ": busy, so the figure below is lower than on a quiet machine" if load > len(usable) / 2 else ""
    print(f"  cpus: {len(usable)} for Blackout ({machine} on the machine); load average {load:.1f} over 1 min{busy}")
    memory = psutil.virtual_memory()
    print(f"  memory: {memory.available / 2**30:.1f} GB available of {memory.total / 2**30:.1f} GB")
    if args.ports is None:
        print("  ports: each stack on free ports of 127.0.0.1 (give --ports to check the blocks of `workshop start`)")
    else:
        topology = team_topology(PROFILES / f"{PROFILE}.yaml", "any")
        last = args.ports + (args.max_teams - 1) * PORT_BLOCK + len(topology.instances()) - 1
        try:
            for n in range(args.max_teams):
                port_block(topology, args.ports + n * PORT_BLOCK)
            print(f"  ports: the blocks of {args.max_teams} teams from {args.ports} (to {last}) are free")
        except UsageError as exc:
            problems.append(str(exc))
    return problems


def round_config(round_s: float, users: int | None) -> ExerciseConfig:
    """Every team's exercise: the card held, its fault at the card's own moment, the responder's levers allowed."""
    return parse_config(
        {
            "scenario": SCENARIO,
            "seed": SEED,
            "onset": {"min": 0, "max": 0},  # the card's own moment: 20 s into the users' run
            "round": round_s,
            "hold": True,
            "users": users,
            "allow": ["power-on", "restart-instance", "drain", "profile"],  # the responder's levers
        },
        "--round/--users",
    )


def play(n: int, config: ExerciseConfig, ports: int | None, board: Path) -> Round:
    """One round for ``n`` teams at once, set up as `workshop start` does; always torn down."""
    teams = [f"team-{i + 1}" for i in range(n)]
    sets = cpus.plan(teams, None)
    played = Round(teams=n, cpus=[sets[t] for t in teams] if sets else None)
    profile = PROFILES / f"{PROFILE}.yaml"
    topology = team_topology(profile, "any")
    starting: dict[str, subprocess.Popen[str]] = {}
    responders: dict[str, subprocess.Popen[str]] = {}
    try:
        for i, team in enumerate(teams):
            runs = board / team
            runs.mkdir(parents=True)
            placed = topology if ports is None else port_block(topology, ports + i * PORT_BLOCK)
            starting[team] = start_stack(runs, profile, placed, team, sets[team] if sets else None)
        for team, up in starting.items():
            wait_stack(up, team)
        round_s = config.round or 0.0
        for team in teams:
            client = ControlClient(board / team)
            view = client.call("POST", "/exercise", config.model_copy(update={"team": team}).model_dump(mode="json"))
            responders[team] = responder(team_link(client, view), round_s)
        for team in teams:  # every team is scored over the same round
            client = ControlClient(board / team)
            while client.call("GET", "/exercise", timeout=30)["clock_s"] < round_s:
                time.sleep(CLOCK_POLL_S)
        rss = {team: stack_rss_mb(board / team) for team in teams}
        with ThreadPoolExecutor(max_workers=n) as pool:  # at once, as `workshop end` does
            ended = dict(zip(teams, pool.map(end_exercise, [board / t for t in teams]), strict=True))
        for team in teams:
            played.seats.append(seat(team, ended[team], responders.pop(team), rss[team]))
    finally:
        for proc in responders.values():
            proc.kill()
            proc.wait()
        for team, up in starting.items():
            up.wait()
            if supervisor_running(board / team):
                stop_stack(board / team)
    return played


def responder(link: str, round_s: float) -> subprocess.Popen[str]:
    """The scripted responder on call for the round, as its own process (the team's side of the link)."""
    command = [sys.executable, str(RESPONDER), link, "--budget", f"{round_s + RESPONDER_SLACK_S:g}"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def seat(team: str, view: dict[str, Any] | str, proc: subprocess.Popen[str], rss_mb: float | None) -> Seat:
    """A team's result: its score from the end's view, what its users saw before the fault, the responder's
    own account (its last line: {"mitigated", "after_s"})."""
    result = Seat(team=team, rss_mb=rss_mb)
    try:
        out, _ = proc.communicate(timeout=RESPONDER_SLACK_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines = out.strip().splitlines()
    try:
        played = json.loads(lines[-1]) if lines else {}
    except ValueError:
        played = {}
    if not isinstance(played, dict) or "mitigated" not in played:
        result.error = f"the responder did not finish: {(lines or ['no output'])[-1][:200]}"
    else:
        result.mitigated, result.mitigated_after_s = bool(played["mitigated"]), played.get("after_s")
    if isinstance(view, str):
        result.error = result.error or view
        return result
    result.points, result.out_of = view["score"]["points"], view["score"]["out_of"]
    result.fault_came = view.get("onset") is not None
    if view.get("run_dir"):
        try:
            rows = read_all(Path(view["run_dir"]) / REQUESTS_FILE)
        except BlackoutError:
            rows = []
        result.success, result.p99_ms = steady_state(rows, view.get("onset"))
    return result


def steady_state(rows: list[RequestRow], onset: float | None) -> tuple[float | None, float | None]:
    """Users' success and p99 over the requests finished before the fault (all of them if it never came)."""
    before = [r for r in rows if onset is None or r.finished < onset]
    if not before:
        return None, None
    return sum(r.ok for r in before) / len(before), percentile([r.latency_ms for r in before], 99)


def stack_rss_mb(runs: Path) -> float | None:
    """The resident memory of a team's stack: its supervisor and every process under it (the services, the
    users' load generator). Each process's RSS counts the pages it shares with the others too: an upper bound."""
    try:
        pids = cpus.stack_pids(ControlClient(runs).pid)
    except BlackoutError:
        return None
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue  # gone since it was listed
    return round(total / 2**20, 1)


def judge(played: Round, reference: Round | None) -> None:
    """Steady or not, and why: the one-team round needs the responder to mitigate; a bigger one needs every team
    within the tolerances of the one-team round."""
    broken = [f"{s.team}: {s.error}" for s in played.seats if s.error]
    if broken:
        played.why = "; ".join(broken)
        return
    if reference is None:
        (one,) = played.seats
        why = drifted(one, one)  # against itself: only the fault's coming and the mitigation can fail
        played.steady = not why
        played.why = "; ".join(why) or "the reference"
        return
    (ref,) = reference.seats
    why = [w for s in played.seats for w in drifted(s, ref)]
    played.steady = not why
    played.why = "; ".join(why) or "every team within the tolerances of the one-team round"


def drifted(seat: Seat, ref: Seat) -> list[str]:
    """How ``seat`` fell outside the tolerances of the one-team round ``ref`` (nothing: steady)."""
    why = []
    if not seat.fault_came:
        why.append(f"{seat.team}: the fault did not come within the round (its users started that late)")
    elif not seat.mitigated:
        why.append(f"{seat.team}: the responder did not bring users back within the round")
    # points lost, not points: a page that fired in one round and not in the other changes what each can give
    if seat.points is not None and ref.points is not None:
        lost, ref_lost = seat.out_of - seat.points, ref.out_of - ref.points
        if lost > ref_lost + STEADY_POINTS:
            why.append(
                f"{seat.team}: {seat.points} points of {seat.out_of}, {lost - ref_lost} more lost than one team's "
                f"{ref.points} of {ref.out_of}"
            )
    if seat.success is not None and ref.success is not None and seat.success < ref.success - STEADY_SUCCESS:
        why.append(f"{seat.team}: users' success before the fault {seat.success:.1%} (one team: {ref.success:.1%})")
    if seat.p99_ms is not None and ref.p99_ms is not None:
        allowed = max(STEADY_P99 * ref.p99_ms, ref.p99_ms + P99_SLACK_MS)
        if seat.p99_ms > allowed:
            why.append(f"{seat.team}: users' p99 before the fault {seat.p99_ms:.0f} ms (one team: {ref.p99_ms:.0f})")
    return why


def fits_memory(last: Round, n: int) -> bool:
    """Whether ``n`` teams' stacks fit in the memory available now, at the largest stack measured so far."""
    measured = [s.rss_mb for s in last.seats if s.rss_mb is not None]
    if not measured:
        return True
    return n * max(measured) * 2**20 < psutil.virtual_memory().available  # the last round's stacks are down now


def describe(seat: Seat) -> str:
    if seat.error:
        return f"{seat.team}: {seat.error}"
    if not seat.fault_came:
        mitigated = "had no fault to fix (it did not come within the round)"
    elif seat.mitigated:
        mitigated = f"brought users back {seat.mitigated_after_s:g}s after its first lever"
    else:
        mitigated = "did not bring users back"
    success = "no requests" if seat.success is None else f"{seat.success:.1%} served"
    p99 = "" if seat.p99_ms is None else f", p99 {seat.p99_ms:.0f} ms"
    rss = "" if seat.rss_mb is None else f"; stack {seat.rss_mb:.0f} MB"
    return f"{seat.team}: {seat.points} points; the responder {mitigated}; users before the fault: {success}{p99}{rss}"


def _seconds(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 30 <= seconds <= 1800:
        raise argparse.ArgumentTypeError(f"{text}: a round of 30s to 30m (the fault comes ~20 s into the users' run)")
    return seconds


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 32:
        raise argparse.ArgumentTypeError(f"{text}: give a number of teams, 1-32")
    return int(text)


def add_selftest_command(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    selftest = verbs.add_parser(
        "selftest",
        help="the day before: check Python, ports, CPUs and memory, then measure how many teams this machine "
        "hosts with a steady score (rounds of 1, 2, ... teams played by the scripted responder)",
    )
    selftest.add_argument(
        "--max-teams",
        type=_count,
        default=min(len(cpus.available()), 8),
        help="stop after a round with this many teams (default: one per CPU, at most 8)",
    )
    selftest.add_argument(
        "--round", type=_seconds, default=60.0, help="each round's length, e.g. 60s or 2m (default 60s; 30s-30m)"
    )
    selftest.add_argument("--users", type=int, help="simulated users per team (default: the scenario's, 20)")
    selftest.add_argument(
        "--ports", type=first_port, help="check and use the port blocks `workshop start --ports` would (default: free)"
    )
    selftest.add_argument("--board", type=Path, default=SELFTEST, help="where the rounds' runs and scores go")
    selftest.set_defaults(func=cmd_selftest)
