"""`blackout calibrate` and `blackout metastability`: this machine's capacity, and where the stack comes back."""

from __future__ import annotations

import argparse
from pathlib import Path

from chaos.scenario_commands import profile_path
from services.common.errors import UsageError


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: give a number > 0")
    return value


def cmd_calibrate(args: argparse.Namespace) -> int:
    from chaos.calibration import calibrate

    if args.max_rate < args.first_rate:
        raise UsageError(f"--max-rate ({args.max_rate:g}) is below --first-rate ({args.first_rate:g})")
    print(f"calibrating with {args.profile}: user actions stepped up until goodput stops following (about a minute)")
    result = calibrate(
        args.profile,
        args.runs,
        step_s=args.step_seconds,
        max_rate=args.max_rate,
        first_rate=args.first_rate,
        say=lambda line: print(line, flush=True),
    )
    print(
        f"capacity: {result.capacity_per_s:g} user actions/s ({result.cpus} CPUs, profile {result.profile}); "
        f"saved in {args.runs / 'calibration.json'}"
    )
    return 0


def _numbers(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: give comma-separated numbers (e.g. 5,10,15)") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text}: every number must be > 0")
    return sorted(set(values))


def cmd_metastability(args: argparse.Namespace) -> int:
    import time

    from chaos.calibration import load
    from chaos.engine.scenario import load_scenario
    from chaos.metastability import draw, sweep_profile, write_csv
    from chaos.profile_files import profile_file

    scenario = load_scenario(args.scenario)
    calibration = load(args.runs)  # no calibration: the message says to run `blackout calibrate`
    profiles = [profile_file(name) for name in args.profiles.split(",")]
    out_dir = args.runs / f"metastability-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"capacity {calibration.capacity_per_s:g} actions/s (calibrated {calibration.date}); "
        f"{len(args.durations) * len(args.loads) * args.repeats} cells per profile, each up to "
        f"~{max(args.durations) + args.observe:g}s after its load is steady"
    )
    cells = []
    for profile in profiles:
        cells += sweep_profile(
            profile,
            scenario,
            calibration,
            args.durations,
            args.loads,
            args.repeats,
            out_dir,
            args.observe,
            say=lambda line: print(line, flush=True),
        )
    csv_path = args.out.with_suffix(".csv")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(cells, csv_path)
    draw(
        cells,
        args.out,
        f"{scenario.name}: recovered within {args.observe:g}s of the trigger's end, or stuck "
        f"(capacity {calibration.capacity_per_s:g} actions/s, {calibration.cpus} CPUs)",
    )
    print(f"written: {args.out} and {csv_path} (runs in {out_dir})")
    return 0


def add_calibration_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from chaos.calibration import FIRST_RATE, MAX_RATE, STEP_S
    from chaos.engine.run import DEFAULT_PROFILE

    calibrate = sub.add_parser(
        "calibrate",
        help="measure this machine's capacity for the stack and save it "
        "(scenarios with `load: {capacity: 0.8}` size their users to it)",
    )
    calibrate.add_argument(
        "--profile",
        type=profile_path,
        default=DEFAULT_PROFILE,
        help="resilience profile of the measured stack (default: naive)",
    )
    calibrate.add_argument("--runs", type=Path, default=Path("runs"), help="where calibration.json goes")
    calibrate.add_argument("--step-seconds", type=_positive, default=STEP_S, help="seconds per offered rate")
    calibrate.add_argument("--first-rate", type=_positive, default=FIRST_RATE, help="first offered actions/s")
    calibrate.add_argument("--max-rate", type=_positive, default=MAX_RATE, help="stop the search here (actions/s)")
    calibrate.set_defaults(func=cmd_calibrate)

    meta = sub.add_parser(
        "metastability",
        help="sweep a scenario's trigger duration x load and map where the "
        "stack recovers and where it stays down, per profile (PNG + CSV)",
    )
    meta.add_argument("--scenario", default="retry-storm", help="its first timeline step is the trigger")
    meta.add_argument("--profiles", default="naive,resilient", help="comma-separated, drawn side by side")
    meta.add_argument(
        "--durations", type=_numbers, default=[5.0, 10.0, 15.0], metavar="S,S,...", help="trigger durations, seconds"
    )
    meta.add_argument(
        "--loads",
        type=_numbers,
        default=[0.05, 0.1, 0.15],
        metavar="F,F,...",
        help="load, fractions of the calibrated capacity",
    )
    meta.add_argument("--repeats", type=int, choices=range(1, 6), default=1, metavar="1..5")
    meta.add_argument(
        "--observe",
        type=_positive,
        default=20.0,
        help="seconds after the trigger within which the hypothesis must hold again, else stuck",
    )
    meta.add_argument("--runs", type=Path, default=Path("runs"), help="where the calibration is and the runs go")
    meta.add_argument("--out", type=Path, default=Path("runs/metastability.png"), help="the map; the CSV beside it")
    meta.set_defaults(func=cmd_metastability)
