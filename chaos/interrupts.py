"""What Ctrl-C and SIGTERM do to a process that holds a stack: teardowns that always finish, SIGTERM as Ctrl-C.

Only the main thread may set a signal handler; elsewhere these leave the handlers as they are.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down exactly like Ctrl-C


@contextmanager
def _handling(handler: Handler, *signals: signal.Signals) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def uninterruptible() -> AbstractContextManager[None]:
    """Rollbacks always run: a second Ctrl-C or a SIGTERM during them waits until they are done."""
    return _handling(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM)


def terminate_as_interrupt() -> AbstractContextManager[None]:
    """Inside, SIGTERM raises KeyboardInterrupt, so the teardowns on the way out run (by default SIGTERM ends the
    process at once and leaves its stack's folder behind)."""
    return _handling(interrupt, signal.SIGTERM)
