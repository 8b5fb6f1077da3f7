"""An asyncio circuit breaker driven by pybreaker's own state machine.

Why not ``pybreaker.CircuitBreaker.call_async``: it needs tornado, and it holds the breaker's
``threading.RLock`` across the ``yield``. Under asyncio every task runs on the same thread, so a
re-entrant lock held across an await excludes nothing between tasks while still blocking other
threads. Instead each call here is split in three steps, and the lock is held only in the two
synchronous ones:

1. admit   (locked)   - decide from the current state whether the call may run;
2. await   (unlocked) - run the coroutine;
3. record  (locked)   - feed the outcome through pybreaker's state object (``state.call`` with a
                        replay function), which counts failures, trips, closes and notifies.

Reset timeout: pybreaker stamps ``opened_at`` with ``datetime.now(UTC)`` (wall clock, not
injectable). We keep our own ``opened_at`` from the injectable monotonic ``clock`` (taken in the
state-change listener whenever pybreaker enters "open") and make the open -> half-open decision
ourselves, calling pybreaker's ``half_open()``. pybreaker's wall-clock check is never consulted,
because a call is only ever replayed into a closed or half-open state object.

Half-open: pybreaker lets every call through while half-open (in threaded use its lock serialises
all calls, so "one at a time" falls out of that). We admit exactly one trial at a time and
short-circuit everyone else until the trial's outcome is recorded.

Failure rate (``failure_rate``): instead of a run of consecutive failures, the breaker opens when, over the
last ``window_s``, at least ``failure_threshold`` calls failed and they were at least that share of the calls
(``FailureWindow``). An instance that fails every call opens it after as many failures as before; a burst of
timeouts among many answered calls (a saturated caller answering its own calls late) does not. Closed-state
outcomes then never reach pybreaker; we open it ourselves, and its half-open trial decides as before.

Stale outcomes: every state change bumps a generation number. An outcome is recorded only if the
state has not changed since the call was admitted, so a slow call admitted while closed cannot
decide a later half-open trial, nor re-open (and reset the timer of) an already open breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

import pybreaker

from services.common.policy import BreakerPolicy
from services.common.resilience.errors import CircuitOpen
from services.common.resilience.window import FailureWindow

T = TypeVar("T")
State = Literal["closed", "open", "half-open"]
StateChangeHook = Callable[[str, str, str], None]

log = logging.getLogger(__name__)


def _every_exception(exc: BaseException) -> bool:
    return True


class _Listener(pybreaker.CircuitBreakerListener):
    """Forwards pybreaker's state changes to the owning AsyncCircuitBreaker."""

    def __init__(self, owner: AsyncCircuitBreaker) -> None:
        self._owner = owner

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._owner._on_pybreaker_change(old_state.name if old_state else new_state.name, new_state.name)


class AsyncCircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures (with ``failure_rate``: that many in
    ``window_s``, and at least that share of its calls); open short-circuits with ``CircuitOpen``; after
    ``reset_timeout_s`` one trial call at a time decides closed or open."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout_s: float = 5.0,
        *,
        failure_rate: float | None = None,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = _every_exception,
        on_state_change: StateChangeHook | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be > 0")
        self._name = name
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._is_failure = is_failure
        self.on_state_change = on_state_change
        self._opened_at: float | None = None
        self._generation = 0
        self._trial_in_flight = False
        self._failure_rate = failure_rate
        self._window = FailureWindow(window_s) if failure_rate is not None else None
        self._cb = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=reset_timeout_s,  # informational only: we decide the timeout ourselves
            # pybreaker counts an excluded exception as a success, which is what we want.
            exclude=[lambda exc: not self._is_failure(exc)],
            listeners=[_Listener(self)],
            name=name,
            # pybreaker raises from inside its state machine when it trips (CircuitBreakerError,
            # or with False the failure itself); _record swallows either and the caller always
            # gets its own error. False just skips building an exception nobody sees.
            throw_new_error_on_trip=False,
        )

    @classmethod
    def from_policy(
        cls,
        name: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = _every_exception,
        on_state_change: StateChangeHook | None = None,
    ) -> AsyncCircuitBreaker:
        """Build from a profile's BreakerPolicy. ``policy.enabled`` is the caller's decision
        (whether to put a breaker in the call path at all), not this class's."""
        return cls(
            name,
            policy.failure_threshold,
            policy.reset_timeout_s,
            failure_rate=policy.failure_rate,
            window_s=policy.window_s,
            clock=clock,
            is_failure=is_failure,
            on_state_change=on_state_change,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> State:
        """Current state; an open breaker whose timeout has elapsed reports (and becomes) half-open."""
        with self._cb._lock:
            self._advance()
            return cast(State, self._cb.current_state)

    @property
    def failure_count(self) -> int:
        """Failures counted so far while closed: consecutive ones (pybreaker's counter), or with
        ``failure_rate`` those in the window."""
        if self._window is not None:
            return self._window.counts()[1]
        return self._cb.fail_counter

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        generation, trial = self._admit()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self._record(generation, trial, exc)
            raise
        except BaseException:
            # Cancellation (e.g. the caller's own timeout) and interpreter exits say nothing
            # about the dependency: record nothing, but free the trial slot for the next caller.
            self._release(trial)
            raise
        self._record(generation, trial, None)
        return result

    # -- the three locked steps -------------------------------------------------------------

    def _advance(self) -> None:
        """Open -> half-open once the reset timeout has elapsed on *our* clock. Lock held."""
        if self._cb.current_state != pybreaker.STATE_OPEN:
            return
        if self._opened_at is None or self._clock() - self._opened_at >= self._reset_timeout_s:
            self._cb.half_open()

    def _admit(self) -> tuple[int, bool]:
        with self._cb._lock:
            self._advance()
            state = self._cb.current_state
            if state == pybreaker.STATE_OPEN:
                raise CircuitOpen(self._name, state)
            if state == pybreaker.STATE_HALF_OPEN:
                if self._trial_in_flight:
                    raise CircuitOpen(self._name, state)
                self._trial_in_flight = True
                return self._generation, True
            return self._generation, False

    def _record(self, generation: int, trial: bool, exc: Exception | None) -> None:
        with self._cb._lock:
            if trial:
                self._trial_in_flight = False
            if generation != self._generation:
                return  # stale: the state changed while this call was in flight
            if self._window is not None and not trial:
                self._judge_rate(exc is not None and self._is_failure(exc))
                return
            if exc is None and not trial and self._cb.fail_counter == 0:
                # A success while closed with no failure counted changes nothing in pybreaker (its
                # counter is already 0, no listener of ours hears successes): skip its machinery,
                # which cost more than the rest of the breaker on every healthy call.
                return

            def replay() -> None:
                if exc is not None:
                    raise exc

            tb = exc.__traceback__ if exc is not None else None
            try:
                # The state object (closed or half-open, never open: see _admit) counts the
                # outcome and makes the transition; listeners fire from inside it.
                self._cb.state.call(replay)
            except Exception as raised:
                # pybreaker re-raises the failure (and raises again from on_failure when it
                # trips); the caller re-raises the original, so swallow it here.
                if raised is not exc and not isinstance(raised, pybreaker.CircuitBreakerError):
                    raise
            finally:
                if exc is not None:
                    exc.__traceback__ = tb  # keep the caller's traceback free of replay frames

    def _judge_rate(self, failed: bool) -> None:
        """A closed breaker's outcome under ``failure_rate``: counted in the window; open it when the window's
        failures reach both the threshold and the rate. Lock held."""
        assert self._window is not None and self._failure_rate is not None
        self._window.add(self._clock(), failed)
        if failed:
            calls, failures = self._window.counts()
            if failures >= self._cb.fail_max and failures >= self._failure_rate * calls:
                self._cb.open()

    def _release(self, trial: bool) -> None:
        if trial:
            with self._cb._lock:
                self._trial_in_flight = False

    def _on_pybreaker_change(self, old: str, new: str) -> None:
        """Called by pybreaker (lock held) on every transition."""
        self._generation += 1
        if self._window is not None:
            self._window.clear()  # a breaker closed again starts afresh: old failures must not re-open it
        if new == pybreaker.STATE_OPEN:
            self._opened_at = self._clock()
        if self.on_state_change is not None and old != new:
            try:
                self.on_state_change(self._name, old, new)
            except Exception:
                # A broken metrics hook must not leave pybreaker's state half-updated.
                log.exception("on_state_change hook failed for breaker %s", self._name)
