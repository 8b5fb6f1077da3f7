"""The one reader of ``requests.csv`` (written by loadtest/records.py): typed rows, all at once when a run is
over (``read_all``) or as they are appended while it goes (``RequestsReader.read_new``).

Locust may be killed in the middle of a row: a last line without its newline is never read (a live reader
reads it once it is whole). Every complete row must parse; a bad one names the file and the line. Only
t, dc, action, ok and latency_ms are required: a column missing from an older file reads as its default
(a symptom added since reads 0).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from services.common.errors import ConfigError
from services.common.symptoms import RECORDED, symptom

REQUIRED = ("t", "dc", "action", "ok", "latency_ms")
_NO_SYMPTOMS: Mapping[str, int] = MappingProxyType({})  # shared by every row without one: most rows


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One user request, as its user saw it."""

    t: float  # when it started (epoch seconds)
    dc: str  # the user's home data center
    action: str
    ok: bool
    latency_ms: float  # the app's own tries included
    user: str = ""
    status: int = 0  # 0: no HTTP answer
    tries: int = 1
    attempts: int = 0  # HTTP attempts the services made for it (X-Blackout-Attempts)
    calls: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)  # recorded symptom -> count, the nonzero ones
    error: str = ""

    @property
    def finished(self) -> float:
        return self.t + self.latency_ms / 1000.0

    def symptom(self, name: str) -> int:
        """How many times this request showed the symptom (services/common/symptoms.py)."""
        shown = symptom(name)
        if self.action != shown.action:
            return 0
        return self.counts.get(name, 0) if shown.recorded else int(not self.ok)


class RequestsReader:
    """Rows appended since the last ``read_new``: only the new bytes are read, so a live reader can ask every
    second however long the run. Before the file or its header exists there is nothing to read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._columns: list[str] | None = None  # the header, once read
        self._line = 0  # lines read so far: a bad row is named by its line in the file

    def read_new(self) -> list[RequestRow]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(str(self.path), f"cannot read: {exc}") from None
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a row being written is read once it is whole
        try:
            reader = csv.reader(io.StringIO(complete.decode("utf-8"), newline=""))
            columns, rows = self._columns, list[RequestRow]()
            for fields in reader:
                if not fields:
                    continue  # a blank line
                if columns is None:
                    columns = self._header(fields)
                else:
                    rows.append(self._row(columns, fields, self._line + reader.line_num))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(str(self.path), f"not readable as CSV: {exc}") from None
        # advanced only once the whole chunk parsed: a bad row is named again, not skipped
        self._offset, self._columns, self._line = self._offset + len(complete), columns, self._line + reader.line_num
        return rows

    def _header(self, fields: list[str]) -> list[str]:
        missing = [c for c in REQUIRED if c not in fields]
        if missing:
            raise ConfigError(str(self.path), f"missing column(s) {', '.join(missing)} (header: {', '.join(fields)})")
        return fields

    def _row(self, columns: list[str], fields: list[str], line: int) -> RequestRow:
        if len(fields) != len(columns):
            raise ConfigError(str(self.path), f"line {line}: {len(fields)} fields, the header has {len(columns)}")
        raw = dict(zip(columns, fields, strict=True))
        counts = {name: n for name in RECORDED if (n := self._int(raw, name, line))}
        return RequestRow(
            t=self._float(raw, "t", line),
            dc=raw["dc"],
            action=raw["action"],
            ok=bool(self._int(raw, "ok", line)),
            latency_ms=self._float(raw, "latency_ms", line),
            user=raw.get("user", ""),
            status=self._int(raw, "status", line),
            tries=self._int(raw, "tries", line, default=1),
            attempts=self._int(raw, "attempts", line),
            calls=self._int(raw, "calls", line),
            counts=counts or _NO_SYMPTOMS,
            error=raw.get("error", ""),
        )

    def _int(self, raw: dict[str, str], column: str, line: int, default: int = 0) -> int:
        if column not in raw:
            return default
        try:
            return int(raw[column])
        except ValueError:
            raise self._not_a_number(raw, column, line) from None

    def _float(self, raw: dict[str, str], column: str, line: int) -> float:
        try:
            value = float(raw[column])
        except ValueError:
            raise self._not_a_number(raw, column, line) from None
        if not math.isfinite(value):
            raise self._not_a_number(raw, column, line)
        return value

    def _not_a_number(self, raw: dict[str, str], column: str, line: int) -> ConfigError:
        return ConfigError(str(self.path), f"line {line}: column {column!r}: {raw[column]!r} is not a finite number")


def read_all(path: Path) -> list[RequestRow]:
    """Every complete row of a run's requests.csv; a missing file is an error (a run that had users has one)."""
    if not path.exists():
        raise ConfigError(str(path), "not found (a run directory holds the requests.csv its load generator wrote)")
    return RequestsReader(path).read_new()
