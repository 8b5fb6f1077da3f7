"""The workshop's pages (the control room and the game master's console): their files, and the one route that
serves a page's scripts and styles."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent / "static"


def serve_assets(router: APIRouter, prefix: str, assets: dict[str, str]) -> None:
    """``GET <prefix>/static/<name>`` for each name in ``assets`` (name -> media type); nothing else is served."""

    @router.get(prefix + "/static/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        path = STATIC / name
        if name not in assets or not path.is_file():  # an asset missing from an install: 404, not 500
            raise HTTPException(status_code=404, detail=f"no asset '{name}'")
        return FileResponse(path, media_type=assets[name])
