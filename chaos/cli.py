"""The `blackout` command. Bad input gets one clear line and exit code 2, never a stack trace."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rich.console import Console

from services.common.errors import BlackoutError, UsageError

EXIT_USAGE = 2


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down exactly like Ctrl-C


def cmd_outage(args: argparse.Namespace) -> int:
    from chaos.outage import OutageOptions, run_outage

    run_outage(
        OutageOptions(
            topology=args.topology, profile=args.profile, dc=args.dc, baseline_s=args.baseline,
            outage_s=args.outage, recovery_s=args.recovery, users=args.users, runs_root=args.runs,
        )  # fmt: skip
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from chaos.topology import parse_topology
    from services.common.config_files import load_yaml
    from services.common.policy import parse_profile

    for path in args.files:
        data = load_yaml(path)
        kind = "topology" if isinstance(data, dict) and "data_centers" in data else "profile"
        (parse_topology if kind == "topology" else parse_profile)(data, str(path))
        print(f"{path}: valid {kind}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from chaos.report import build_summary, render_summary, write_summary

    summary = build_summary(args.run_dir)
    write_summary(summary, args.run_dir)
    render_summary(summary, Console())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from chaos.report import build_summary, render_comparison

    render_comparison(build_summary(args.run_a), build_summary(args.run_b), Console())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from chaos.outage import DEFAULT_PROFILE
    from chaos.observability.cli import add_prometheus_command
    from chaos.supervisor import add_supervisor_commands

    parser = argparse.ArgumentParser(prog="blackout", description="A data center loses power; watch the cascade.")
    sub = parser.add_subparsers(dest="command", required=True)

    outage = sub.add_parser("outage", help="run the power-loss demo under load and print what users saw")
    outage.add_argument("--topology", type=Path, help="topology YAML (default: the one the profile names)")
    outage.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="resilience profile (YAML)")
    outage.add_argument("--dc", default="dc-east", help="the data center that loses power")
    outage.add_argument("--baseline", type=_seconds, default=20.0, help="seconds of steady load first")
    outage.add_argument("--outage", type=_seconds, default=30.0, help="seconds without power")
    outage.add_argument("--recovery", type=_seconds, default=30.0, help="seconds after power returns")
    outage.add_argument("--users", type=_users, default=20, help="simulated users (1-20000)")
    outage.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go")
    outage.set_defaults(func=cmd_outage)

    validate = sub.add_parser("validate", help="check topology and profile files without running anything")
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(func=cmd_validate)

    report = sub.add_parser("report", help="rebuild and print a run's per-phase summary from its directory")
    report.add_argument("run_dir", type=Path)
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="print two runs side by side")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.set_defaults(func=cmd_compare)

    add_supervisor_commands(sub)
    add_prometheus_command(sub)
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text}: give between 1 and 3600 seconds")
    return value


def _users(text: str) -> int:
    from services.common.accounts import MAX_USERS

    value = int(text)
    if not 1 <= value <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"{text}: give between 1 and {MAX_USERS} users (one account each)")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
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
