"""``blackout audit RUN_DIR``: the data audit of a finished run, from its directory alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from chaos.audit.check import audit_run, write_audit, write_failed
from chaos.audit.errors import EvidenceError
from chaos.audit.render import render_audit, render_failed
from chaos.console import terminal


def cmd_audit(args: argparse.Namespace) -> int:
    """Exit 1 when the audit found what the design forbids, or lacked evidence (its reasons), else 0."""
    try:
        audit = audit_run(args.run_dir)
    except EvidenceError as exc:
        write_failed(exc.reasons, args.run_dir)
        render_failed(exc.reasons, terminal())
        return 1
    write_audit(audit, args.run_dir)
    render_audit(audit, terminal())
    return 1 if audit.reasons else 0


def add_audit_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="check a finished run's data against what users were told (Jepsen-style)")
    audit.add_argument("run_dir", type=Path)
    audit.set_defaults(func=cmd_audit)
