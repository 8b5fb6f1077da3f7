"""The `blackout` command. Bad input gets one clear line and exit code 2, never a stack trace."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rich.console import Console

from chaos.console import terminal
from chaos.interrupts import interrupt
from services.common.errors import BlackoutError, UsageError

EXIT_USAGE = 2


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file on its own; a scenario also against the topologies it may meet (chaos.engine.fit)."""
    from chaos.engine.fit import topologies_for, validate
    from chaos.engine.scenario import parse_scenario
    from chaos.runtime.choice import capabilities_of
    from chaos.topology import load_topology, parse_topology
    from services.common.config_files import load_yaml
    from services.common.policy import parse_profile

    for path in args.files:
        data = load_yaml(path)
        if isinstance(data, dict) and "data_centers" in data:
            parse_topology(data, str(path))
            print(f"{path}: valid topology")
        elif isinstance(data, dict) and "timeline" in data:
            scenario = parse_scenario(data, str(path), path.stem)
            topologies = [args.topology] if args.topology else topologies_for(scenario, str(path))
            runtime = capabilities_of(args.runtime) if args.runtime else None
            for topology in topologies:
                validate(scenario, load_topology(topology), str(path), runtime)
            on = f"; runtime: {args.runtime}" if args.runtime else ""
            print(f"{path}: valid scenario (topologies: {', '.join(t.stem for t in topologies)}{on})")
        else:
            parse_profile(data, str(path))
            print(f"{path}: valid profile")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from chaos.observability.postmortem import write_postmortem
    from chaos.report import build_summary, write_summary
    from chaos.report_render import render_summary

    summary = build_summary(args.run_dir)
    write_summary(summary, args.run_dir)
    render_summary(summary, terminal())
    picture, text = write_postmortem(args.run_dir)
    print(f"written: {text} and {picture}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from chaos.comparison import compare_groups, read_run
    from chaos.report import build_summary
    from chaos.report_render import render_comparison, render_group_comparison

    console = terminal()
    if args.scenario:
        if args.runs or args.against:
            raise UsageError("give either --scenario (to run the groups) or run directories, not both")
        group_a, group_b, labels = _run_groups(args, console)
    elif args.against:
        if not args.runs:
            raise UsageError("give the runs of the first group before --against")
        group_a, group_b, labels = args.runs, args.against, ("A", "B")
    elif len(args.runs) == 2:
        render_comparison(build_summary(args.runs[0]), build_summary(args.runs[1]), console)
        return 0
    else:
        raise UsageError("give two runs, groups of runs (RUN... --against RUN...) or --scenario with --seeds")
    rows = compare_groups([read_run(d) for d in group_a], [read_run(d) for d in group_b])
    render_group_comparison(rows, labels, console)
    return 0


def _run_groups(args: argparse.Namespace, console: Console) -> tuple[list[Path], list[Path], tuple[str, str]]:
    """The scenario under each of the two profiles, once per seed, one after another: their run folders."""
    from chaos.engine.run import RunOptions
    from chaos.profile_files import profile_file
    from chaos.stack import run_scenario

    names = args.profiles.split(",")
    if len(names) != 2:
        raise UsageError(f"--profiles takes two profiles, comma-separated (got '{args.profiles}')")
    groups: tuple[list[Path], list[Path]] = ([], [])
    for seed in args.seeds:
        for group, name in zip(groups, names, strict=True):
            options = RunOptions(
                scenario=args.scenario,
                profile=profile_file(name),
                seed=seed,
                users=args.users,
                think_s=args.think,
                runs_root=args.runs_root,
            )
            result = run_scenario(options, Console(quiet=True))
            console.print(f"{name:10} seed {seed:<5} {'deviated' if result.deviated else 'held':9} {result.run_dir}")
            group.append(result.run_dir)
    return groups[0], groups[1], (names[0], names[1])


def build_parser() -> argparse.ArgumentParser:
    from chaos.observability.cli import add_prometheus_command
    from chaos.runtime.choice import RUNTIMES
    from chaos.scenario_commands import add_scenario_commands, seeds, think
    from chaos.supervisor import add_supervisor_commands
    from chaos.workshop.commands import add_exercise_commands

    parser = argparse.ArgumentParser(prog="blackout", description="A data center loses power; watch the cascade.")
    sub = parser.add_subparsers(dest="command", required=True)

    add_scenario_commands(sub, _users)
    from chaos.calibration_commands import add_calibration_commands

    add_calibration_commands(sub)

    validate = sub.add_parser("validate", help="check topology, profile and scenario files without running anything")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument(
        "--topology",
        type=Path,
        help="check scenarios against this topology (default: those of "
        "the profiles a scenario lists, else every one in topologies/)",
    )
    validate.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="also check that every step is one this runtime can do (loss, corruption and rate need netns); "
        "default: not checked",
    )
    validate.set_defaults(func=cmd_validate)

    report = sub.add_parser("report", help="rebuild and print a run's per-phase summary from its directory")
    report.add_argument("run_dir", type=Path)
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser(
        "compare",
        help="two runs side by side, or two groups of runs (several seeds each) "
        "figure by figure with 95%% intervals and significance",
    )
    compare.add_argument("runs", nargs="*", type=Path, help="run directories: two alone, or the first group")
    compare.add_argument("--against", nargs="+", type=Path, metavar="RUN", help="run directories of the second group")
    compare.add_argument("--scenario", help="run this scenario under both --profiles for every seed, then compare")
    compare.add_argument("--profiles", default="naive,resilient", help="with --scenario: two, comma-separated")
    compare.add_argument("--seeds", type=seeds, default=[7, 8, 9], metavar="S,S,...", help="with --scenario")
    compare.add_argument("--users", type=_users, help="with --scenario: users for every run")
    compare.add_argument("--think", type=think, metavar="MIN-MAX", help="with --scenario: each user's pause")
    compare.add_argument("--runs-root", type=Path, default=Path("runs"), help="with --scenario: where runs go")
    compare.set_defaults(func=cmd_compare)

    add_supervisor_commands(sub)
    from chaos.audit.cli import add_audit_command

    add_audit_command(sub)
    add_prometheus_command(sub)
    add_exercise_commands(sub)
    from chaos.workshop.selftest import add_selftest_command
    from chaos.workshop.teams import add_workshop_commands

    add_selftest_command(add_workshop_commands(sub))
    from chaos.search.cli import add_search_command

    add_search_command(sub)
    from chaos.runtime.compose import add_compose_command

    add_compose_command(sub)
    from chaos.runtime.kube import add_kube_command

    add_kube_command(sub)
    return parser


def _users(text: str) -> int:
    from services.common.accounts import MAX_USERS

    value = int(text)
    if not 1 <= value <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"{text}: give between 1 and {MAX_USERS} users (one account each)")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"blackout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BlackoutError as exc:
        print(f"blackout: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("blackout: interrupted; everything was torn down", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
