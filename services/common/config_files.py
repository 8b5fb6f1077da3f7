"""Reading configuration files (topologies, profiles, scenarios) with errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from services.common.errors import ConfigError


def load_yaml(path: str | Path) -> object:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {_where(exc)}") from None


def _where(exc: yaml.YAMLError) -> str:
    """What is wrong and where, never the line itself: str(exc) quotes the file's text (a secret, over HTTP)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    mark = exc.problem_mark or exc.context_mark
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{exc.problem or exc.context or 'cannot parse'}{at}"


def describe(exc: ValidationError) -> str:
    """Every problem pydantic found, each as `field 'a.b.c': reason`."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{field}': {err['msg']}")
    return "; ".join(parts)
