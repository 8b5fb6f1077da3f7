"""Profile files by path or by name in profiles/: how the CLI and a scenario's `profile` step name one."""

from __future__ import annotations

from pathlib import Path

from services.common.errors import UsageError

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def profile_file(text: str) -> Path:
    """A profile file, or the name of one in profiles/ (``resilient``); an unknown name lists the known ones."""
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    named = PROFILES / f"{text}.yaml"
    if not named.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise UsageError(f"{text}: no such profile file or name; profiles: {known}")
    return named
