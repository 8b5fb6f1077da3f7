"""The console every command prints its tables to."""

from __future__ import annotations

import os

from rich.console import Console

PIPED_WIDTH = 140


def terminal() -> Console:
    """Rich sizes tables to the terminal; piped into a file or `tee` (a saved demo log, CI) it would assume
    80 columns and cut the report's and the audit's columns short, so there it gets 140 (COLUMNS still wins)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPED_WIDTH)
    return console
