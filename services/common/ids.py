"""Shapes of identifiers every service validates at its edge."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ID = re.compile(ID_PATTERN)

Id = Annotated[str, Field(pattern=ID_PATTERN)]
PathId = Annotated[str, Path(pattern=ID_PATTERN)]
