"""Scenarios and profiles by library name: how the control API (a token holder over HTTP) names files.

Over HTTP only a name is accepted (services.common.policy.LIBRARY_NAME), looked up in the library folders:
the package's scenarios or profiles, and a stack's own ``<runs>/scenarios`` (written by whoever runs the
stack, never through the API). A path never is: the API must neither read nor write outside its folders.
The CLI keeps taking paths (chaos.engine.scenario.load_scenario, chaos.faults.injector.profile_file).
"""

from __future__ import annotations

import re
from pathlib import Path

from chaos.engine.scenario import LIBRARY
from chaos.profile_files import PROFILES
from services.common.errors import ConfigError
from services.common.policy import LIBRARY_NAME

LOCAL_SCENARIOS = "scenarios"  # under a runs root: the stack's own scenarios


def scenario_file(name: str, runs_root: Path | None = None) -> Path:
    """The scenario ``name``: the stack's own (``<runs>/scenarios/<name>.yaml``) first, then the package's."""
    folders = ([runs_root / LOCAL_SCENARIOS] if runs_root is not None else []) + [LIBRARY]
    return _find(name, "scenario", folders)


def profile_named(name: str) -> Path:
    return _find(name, "profile", [PROFILES])


def scenario_names(runs_root: Path | None = None) -> list[str]:
    folders = ([runs_root / LOCAL_SCENARIOS] if runs_root is not None else []) + [LIBRARY]
    return _names(folders)


def _find(name: str, kind: str, folders: list[Path]) -> Path:
    if not re.fullmatch(LIBRARY_NAME, name):
        raise ConfigError(f"{kind} '{name}'", "a name is lowercase letters, digits and dashes (1-64), not a path")
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise ConfigError(f"{kind} '{name}'", f"unknown; {kind}s: {', '.join(_names(folders)) or 'none'}")


def _names(folders: list[Path]) -> list[str]:
    return sorted({p.stem for folder in folders for p in folder.glob("*.yaml") if re.fullmatch(LIBRARY_NAME, p.stem)})
