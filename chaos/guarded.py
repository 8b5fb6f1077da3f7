"""The control API's answer to a refused action (chaos/control_api.py and the workshop's routes): a user's mistake
is a 4xx with the reason, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException

from chaos.runtime.base import RuntimeError_
from services.common.errors import ConfigError, ConflictError, UsageError

T = TypeVar("T")


def guarded(action: Callable[[], T], missing: int = 404) -> T:
    """A user's mistake is a 4xx with the reason; a runtime that cannot do it now is a 409. ``missing``: the status
    of a name that does not resolve or a file it names that is invalid: 404 when the URL names it (a resource),
    422 when a request body does (the body cannot be processed: POST /exercise's scenario)."""
    try:
        return action()
    except ConfigError as exc:
        raise HTTPException(
            status_code=422 if exc.source in ("request body", "PUT /profile") else missing, detail=str(exc)
        ) from None
    except (ConflictError, RuntimeError_) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except UsageError as exc:
        raise HTTPException(status_code=missing, detail=str(exc)) from None
