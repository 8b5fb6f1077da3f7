"""JSON answers for the hot routes, encoded once by the C encoder.

A route that returns a dict makes FastAPI walk it with ``jsonable_encoder`` (pure Python, per value)
before encoding it: for a 40-video trending list that cost more than the route's own work. Routes on
the feed's path return ``json_response(...)`` instead; their content is plain JSON already.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response


def json_response(content: Any, status_code: int = 200) -> Response:
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status_code, media_type="application/json")
