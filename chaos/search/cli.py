"""`blackout search`: the smallest sets of faults that break a user action, found automatically."""

from __future__ import annotations

import argparse
from pathlib import Path

from chaos.console import terminal
from chaos.faults.model import parse_duration
from chaos.search.oracle import ACTIONS
from services.common.errors import UsageError

MAX_FAULTS = 3  # the exact hitting-set enumeration stays instant up to here (chaos/search/pruning.py)


def cmd_search(args: argparse.Namespace) -> int:
    from chaos.profile_files import profile_file
    from chaos.search.run import SearchOptions, run_search

    try:
        budget_s = parse_duration(args.budget)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}") from None
    if not 1 <= args.max_faults <= MAX_FAULTS:
        raise UsageError(f"--max-faults: give 1 to {MAX_FAULTS} (got {args.max_faults})")
    actions = ACTIONS if args.action == "all" else (args.action,)
    options = SearchOptions(
        profile=profile_file(args.profile),
        actions=actions,
        max_faults=args.max_faults,
        budget_s=budget_s,
        seed=args.seed,
        runs_root=args.runs,
        replay=not args.no_replay,
    )
    console = terminal()
    run = run_search(options, console)
    console.print(f"written: {run.out_dir / 'report.md'}, search.json, cuts.png, scenarios/")
    unconfirmed = [r for r in run.replays if r.confirmed is False]
    return 1 if unconfirmed else 0


def add_search_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    search = sub.add_parser(
        "search", help="find the smallest sets of faults that break a user action (lineage-driven, request-scoped)"
    )
    search.add_argument("--profile", default="naive", help="a profile file or name (its topology is searched)")
    search.add_argument("--action", choices=(*ACTIONS, "all"), default="feed", help="the user action to break")
    search.add_argument("--max-faults", type=int, default=1, metavar="K", help=f"faults per set, 1..{MAX_FAULTS}")
    search.add_argument("--budget", default="10m", help="time for the search (e.g. 90s, 10m); replays come after")
    search.add_argument("--seed", type=int, default=0, help="orders the candidates: the same seed, the same search")
    search.add_argument("--no-replay", action="store_true", help="skip the live replays of the cut sets")
    search.add_argument("--runs", type=Path, default=Path("runs"), help="where the search's folder goes")
    search.set_defaults(func=cmd_search)
