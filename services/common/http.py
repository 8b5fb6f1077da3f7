"""The shared HTTP client every service uses to call its dependencies, under the profile in force.

One `DependencyClient` per dependency. A logical call, in order:

1. deadline (``deadline_propagation``): a request whose deadline has passed sends nothing
   (outcome ``deadline``); every attempt's timeout is capped by the time left, and the time left
   is sent on with every attempt (``X-Blackout-Deadline-Ms``);
2. bulkhead: at most ``bulkhead.max_concurrent`` calls in flight to this dependency; the excess is
   refused at once (outcome ``rejected``);
3. targets: the instances in failover order (only the first without ``failover``); each has its
   own circuit breaker (``breaker.enabled``): an open one is skipped (outcome ``short_circuited``
   when no target is left);
4. retries on each target: up to ``retries.attempts`` attempts with the profile's backoff, each
   retry paid from the dependency's retry budget (``retry_budget.enabled``; empty -> stop).

A 4xx answer is returned (the caller decides): it counts as a success for the breaker and is
never retried. ``get_json``/``post_json`` turn it into ``DependencyRejected`` (status and reason:
the dependency is up and refused the request), except 429, which an overloaded dependency sends
when it sheds a call undone: that is a ``DependencyError`` (outcome ``shed``), so fallbacks apply. The final outcome of a failed call is the last *sent* attempt's (``timeout`` or
``error``) when any attempt went out, so ``deadline``, ``rejected`` and ``short_circuited`` always
mean "nothing was sent" (see ``services.common.app.dependency_status``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from services.common import accounting
from services.common.errors import DependencyError, DependencyRejected
from services.common.fast_http import HttpClient, Reply, WireClient
from services.common.faults import FaultRegistry, scoped
from services.common.guards import (
    AttemptFailed,
    Guards,
    OutOfTime,
    attempt_timeout,
    is_dependency_failure,
    sleep_within_deadline,
    with_deadline_header,
)
from services.common.metrics import (
    BULKHEAD_IN_FLIGHT,
    BULKHEAD_REJECTED,
    DEP_ATTEMPTS,
    DEP_CALLS,
    DEP_LATENCY,
    DEP_RETRIES,
)
from services.common.overload import ClientThrottle
from services.common.policy import DependencyPolicy, ProfileHolder
from services.common.resilience import BulkheadFull, CircuitOpen, DeadlineExceeded, backoff_s, check


@dataclass(slots=True)
class _Call:
    """One logical call: what it asks for, under which policy, and the last sent attempt that failed."""

    policy: DependencyPolicy
    guards: Guards
    deadline_on: bool  # the profile propagates deadlines
    method: str
    path: str
    kwargs: dict[str, Any]
    # A request-scoped experiment (services/common/faults/scoped.py): its faults act on this call's attempts, which
    # neither consult nor feed the breakers, the retry budget and the throttle real traffic shares.
    experiment: scoped.Experiment | None = None
    failure: AttemptFailed | None = None


def make_http_client(
    transport: httpx.AsyncBaseTransport | None = None, headers: dict[str, str] | None = None
) -> HttpClient:
    """HTTP/1.1 on asyncio (services/common/fast_http.py: a third of aiohttp's CPU per call, a sixth of
    httpx's); an httpx.AsyncClient when a transport is given (tests: httpx.MockTransport). ``headers`` go
    with every call (the service credential: services/common/perimeter.py)."""
    if transport is None:
        return WireClient(headers=headers)
    # Timeouts are enforced per attempt by DependencyClient, so the client itself has none.
    return httpx.AsyncClient(transport=transport, timeout=None, headers=headers)


class _Metrics:
    """This dependency's metric children, looked up once (``labels()`` takes a lock and hashes per call)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.retries = DEP_RETRIES.labels(name)
        self.latency = DEP_LATENCY.labels(name)
        self.in_flight = BULKHEAD_IN_FLIGHT.labels(name)
        self._calls: dict[str, Any] = {}
        self._attempts: dict[str, Any] = {}

    def calls(self, outcome: str) -> Any:
        child = self._calls.get(outcome)
        if child is None:
            child = self._calls[outcome] = DEP_CALLS.labels(self.name, outcome)
        return child

    def attempts(self, target: str) -> Any:
        child = self._attempts.get(target)
        if child is None:
            child = self._attempts[target] = DEP_ATTEMPTS.labels(self.name, target)
        return child


class DependencyClient:
    def __init__(
        self,
        name: str,
        urls: list[str],
        profiles: ProfileHolder,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        faults: FaultRegistry | None = None,
    ) -> None:
        """``clock`` drives breakers and budgets, ``sleep`` the backoff waits (both injectable for tests);
        ``faults``: the instance's injected link faults, consulted before every attempt."""
        if not urls:
            raise ValueError(f"dependency {name} has no address")
        self.name = name
        self.urls = [u.rstrip("/") for u in urls]
        self.profiles = profiles
        self.http = http
        self._clock = clock
        self._sleep = sleep
        self._guards: Guards | None = None
        self._metrics = _Metrics(name)
        self.throttle = ClientThrottle(clock)  # outlives profile swaps: it is about the dependency
        self.faults = faults

    @property
    def policy(self) -> DependencyPolicy:
        return self.profiles.current.for_dependency(self.name)

    def guards(self, policy: DependencyPolicy) -> Guards:
        """The breakers, bulkhead and budget for ``policy``, rebuilt when a live swap changed it."""
        current = self._guards
        if current is None or not current.matches(policy):
            if current is not None:
                current.retired = True
            current = self._guards = Guards(
                self.name, policy, self.urls, is_failure=is_dependency_failure, clock=self._clock
            )
        return current

    async def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        """Return the first response below 500 (4xx included: the caller decides); raise DependencyError."""
        profile = self.profiles.current
        policy = profile.for_dependency(self.name)
        experiment = scoped.current()
        call = _Call(policy, self.guards(policy), profile.deadline_propagation, method, path, kwargs, experiment)
        accounting.current().calls += 1
        started = time.monotonic()
        outcome: str | None = None
        throttling = profile.overload.client_throttle
        throttled = throttling.enabled and experiment is None  # an experiment neither meets nor feeds the throttle
        try:
            if throttled and not self.throttle.admit(throttling):
                raise DependencyError(self.name, "throttled", "refused locally: the dependency refuses most calls")
            response = await self._logical_call(call)
            outcome = "success"
            return response
        except DependencyError as exc:
            outcome = exc.outcome
            raise
        finally:
            if outcome is not None:  # a cancelled call has no outcome
                self._metrics.calls(outcome).inc()
                if throttled and outcome != "throttled":
                    self.throttle.record(throttling, accepted=outcome == "success")
            self._metrics.latency.observe(time.monotonic() - started)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_or_raise(self.name, await self.request("GET", path, **kwargs))

    async def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return json_or_raise(self.name, await self.request("POST", path, json=payload, **kwargs))

    async def _logical_call(self, call: _Call) -> Reply:
        if call.deadline_on:
            try:
                check()
            except DeadlineExceeded as exc:
                raise DependencyError(self.name, "deadline", str(exc)) from None
        try:
            async with call.guards.bulkhead:
                in_flight = self._metrics.in_flight
                in_flight.inc()
                try:
                    call.guards.deposit()  # only calls that may load the dependency earn retries
                    return await self._over_targets(call)
                finally:
                    in_flight.dec()
        except BulkheadFull as exc:
            BULKHEAD_REJECTED.labels(self.name).inc()
            raise DependencyError(self.name, "rejected", str(exc)) from None

    async def _over_targets(self, call: _Call) -> Reply:
        targets = self.urls if call.policy.failover else self.urls[:1]
        refused = out_of_time = ""
        for target in targets:
            try:
                return await self._call_target(call, target)
            except CircuitOpen as exc:
                refused = str(exc)  # skip to the next target (if failover)
            except AttemptFailed as exc:
                if exc.by_deadline:
                    break
            except OutOfTime as exc:
                out_of_time = str(exc)
                break
        if call.failure is not None:  # something was sent: say how the last of it failed
            raise DependencyError(self.name, call.failure.outcome, call.failure.detail)
        if out_of_time:
            raise DependencyError(self.name, "deadline", out_of_time)
        raise DependencyError(self.name, "short_circuited", refused)

    async def _call_target(self, call: _Call, target: str) -> Reply:
        """Attempts on one target under the retry policy: what ``resilience.retrying`` (tenacity) does,
        unrolled: building tenacity's objects for every call cost more than the rest of the policies,
        and almost every call succeeds at once. A retry needs a retryable failure (``AttemptFailed``,
        not by the deadline), an attempt left, then a token from the budget (asked in that order, so
        a retry that could not happen costs no token); the last error is raised as itself."""
        if call.experiment is not None and call.policy.breaker.enabled and call.experiment.fault_for(target):
            # An experiment stands for a lasting fault: by then the breaker of a target failing every call is open
            # (after its first few failures), so the call moves on at once; the onset is the live replay's to show.
            call.experiment.record(target, "short_circuited")
            raise CircuitOpen(f"{self.name}@{target}", "open (a request-scoped fault)")
        breaker = call.guards.breaker(target) if call.experiment is None else None
        retries = call.policy.retries
        attempt = 1
        while True:
            timeout_s, capped = attempt_timeout(call.policy.timeout_s, call.deadline_on)
            if attempt > 1:
                self._metrics.retries.inc()
            try:
                if breaker is None:
                    return await self._attempt(call, target, timeout_s, capped)
                return await breaker.call(self._attempt, call, target, timeout_s, capped)
            except AttemptFailed as exc:
                call.failure = exc
                if not is_dependency_failure(exc) or attempt >= retries.attempts:
                    raise
                if call.experiment is None and not call.guards.allow_retry():
                    raise
            wait = backoff_s(retries, attempt)
            await (sleep_within_deadline(self._sleep) if call.deadline_on else self._sleep)(wait)
            attempt += 1

    async def _attempt(self, call: _Call, target: str, timeout_s: float, capped: bool) -> Reply:
        account = accounting.current()
        account.attempts += 1
        self._metrics.attempts(target).inc()
        kwargs = with_deadline_header(call.kwargs) if call.deadline_on else call.kwargs
        if call.experiment is None:
            response = await self._timed(call, target, timeout_s, capped, kwargs)
        else:
            response = await self._experiment_attempt(call.experiment, call, target, timeout_s, capped, kwargs)
        account.add_reported(response.headers)
        if response.status_code >= 500:
            raise AttemptFailed("error", f"{target} answered {response.status_code}")
        return response

    async def _timed(
        self,
        call: _Call,
        target: str,
        timeout_s: float,
        capped: bool,
        kwargs: dict[str, Any],
        scoped_kind: str | None = None,
    ) -> Reply:
        try:
            async with asyncio.timeout(timeout_s):
                # An injected fault acts inside the timeout: a delay or a blackhole can time the attempt out.
                response: Reply | None = await self.faults.before_attempt(target) if self.faults is not None else None
                if response is None:
                    response = await _scoped_attempt(scoped_kind, target) if scoped_kind else None
                if response is None:
                    response = await self.http.request(call.method, target + call.path, **kwargs)
                await response.aread()
                if scoped_kind == "slow":
                    await asyncio.Event().wait()  # answered, but only after the caller's timeout
        except TimeoutError:
            why = " (the request's deadline)" if capped else ""
            raise AttemptFailed("timeout", f"{target} did not answer within {timeout_s:.3g}s{why}", capped) from None
        except httpx.TimeoutException:
            raise AttemptFailed("timeout", f"{target} timed out") from None
        except httpx.HTTPError as exc:
            raise AttemptFailed("error", f"{target}: {type(exc).__name__}") from None
        return response

    async def _experiment_attempt(
        self,
        experiment: scoped.Experiment,
        call: _Call,
        target: str,
        timeout_s: float,
        capped: bool,
        kwargs: dict[str, Any],
    ) -> Reply:
        """An attempt of a request-scoped experiment: its fault applied, its header passed on, its lineage kept."""
        headers = {**(kwargs.get("headers") or {}), scoped.REQUEST_FAULTS_HEADER: experiment.header}
        try:
            response = await self._timed(
                call, target, timeout_s, capped, {**kwargs, "headers": headers}, experiment.fault_for(target)
            )
        except AttemptFailed as exc:
            experiment.record(target, exc.outcome)
            raise
        experiment.record(target, "error" if response.status_code >= 500 else "ok")
        experiment.adopt(response.headers.get(scoped.LINEAGE_HEADER))
        return response


async def _scoped_attempt(kind: str, target: str) -> httpx.Response | None:
    """What a request-scoped fault makes of an attempt before anything is sent (None: send it)."""
    if kind == "crash":  # nothing listens there: refused at once
        raise httpx.ConnectError(f"{target}: connection refused (request-scoped crash)")
    if kind == "blackhole":
        await asyncio.Event().wait()  # only the caller's timeout ends this
    if kind == "error":
        return httpx.Response(503, json={"detail": "request-scoped fault: error"})
    return None


def json_or_raise(name: str, response: Reply) -> Any:
    status = response.status_code
    if status == 429:  # an overloaded dependency shed the call undone: unavailable (fallbacks apply)
        raise DependencyError(name, "shed", f"429 {refusal_detail(response)}")
    if status >= 400:
        raise DependencyRejected(name, status, refusal_detail(response))
    try:
        return orjson.loads(response.content)  # a tenth of response.json()'s time (stdlib json)
    except ValueError:
        raise DependencyError(name, "error", "answer is not JSON") from None


def refusal_detail(response: Reply) -> str:
    """The reason a 4xx gives (FastAPI's ``detail``: a string, or a list of validation errors), short."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:200]
    if isinstance(detail, list):  # 422: [{"loc": [...], "msg": ...}, ...]
        parts = []
        for error in detail[:3]:
            if isinstance(error, dict):
                where = ".".join(str(p) for p in error.get("loc", ()))
                parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
        return "; ".join(parts)[:200]
    return str(detail)[:200] if detail is not None else response.text[:200]
