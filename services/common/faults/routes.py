"""The admin routes the chaos controller drives: put (or renew), list and lift faults.

Every route sits behind the instance's admin guard (BLACKOUT_ADMIN_SECRET). Bad input is a 422 whose
``detail`` names the field, e.g. ``PUT /admin/faults/f1: field 'lease_s': Input should be ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.common.api import ADMIN_FAULTS
from services.common.config_files import describe
from services.common.faults.model import FAULT_ID_PATTERN, FaultSpec
from services.common.faults.registry import FaultRegistry

_FAULT_ID = re.compile(FAULT_ID_PATTERN)


def fault_router(faults: FaultRegistry, guard: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix=ADMIN_FAULTS, tags=["ops"], dependencies=[Depends(guard)])

    @router.put("/{fault_id}")
    async def put_fault(fault_id: str, request: Request) -> JSONResponse:
        """Inject the fault, or replace the one with this id and restart its lease (renewal)."""
        source = f"PUT /admin/faults/{fault_id}"
        if not _FAULT_ID.fullmatch(fault_id):
            return _refuse(f"{source}: field 'fault_id': must match {FAULT_ID_PATTERN}")
        try:
            data = await request.json()
        except ValueError:
            return _refuse(f"{source}: body is not JSON: send a fault as a JSON object")
        try:
            spec = FaultSpec.model_validate(data)
        except ValidationError as exc:
            return _refuse(f"{source}: {describe(exc)}")
        fault = faults.put(fault_id, spec)
        expires_in_s = round(faults.expires_in_s(fault), 3)
        return JSONResponse({"id": fault.id, "kind": fault.kind, "expires_in_s": expires_in_s})

    @router.get("")
    async def list_faults() -> list[dict[str, Any]]:
        return faults.active()

    @router.delete("/{fault_id}")
    async def delete_fault(fault_id: str) -> dict[str, Any]:
        return {"removed": faults.remove(fault_id)}

    @router.delete("")
    async def delete_all_faults() -> dict[str, Any]:
        return {"removed": faults.clear()}

    return router


def _refuse(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=422)
