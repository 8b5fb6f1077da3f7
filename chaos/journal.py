"""The run directory, the single record of a run, and its event journal (one JSON object per line)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from chaos.events import EventBus

JOURNAL = "journal.jsonl"


def new_run_dir(root: Path, scenario: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        run_dir = root / (f"{stamp}-{scenario}" if n == 0 else f"{stamp}-{scenario}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a run directory under {root}")


class Journal:
    def __init__(self, run_dir: Path, bus: EventBus | None = None) -> None:
        self.path = run_dir / JOURNAL
        self.bus = bus
        self._lock = threading.Lock()  # several threads record (control API, engine, lease renewer)

    def record(self, event: str, **fields: Any) -> dict:
        entry = {"t": time.time(), "event": event, **fields}
        with self._lock, self.path.open("a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
        if self.bus is not None:
            self.bus.publish(entry)
        return entry

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
