"""Request-scoped faults (Filibuster's, Meiklejohn et al., SoCC 2021): a fault set that acts on one user request and
the calls made for it downstream, and on nothing else.

The fault-space search (chaos/search) sends each experiment as one request carrying ``REQUEST_FAULTS_HEADER``:
``<payload>.<signature>``, the payload base64url JSON ``{"exp": <epoch s>, "faults": [[kind, source, target], ...]}``
and the signature HMAC-SHA256 of the payload under the instance's admin secret (``BLACKOUT_ADMIN_SECRET``: the
credential that already opens ``/admin/faults``; the service key every service sends on every call is not enough,
nor the token secret). ``RequestFaultsMiddleware`` checks it on the way in: a header with a bad or expired
signature, or on an instance without an admin secret, is **refused** (401), never ignored, so an experiment can
never pass for one its faults did not reach. A request without the header costs one scan of its headers.

Inside a verified request the shared HTTP client (services/common/http.py) forwards the header on every call,
applies the faults naming this instance as source (or any source) to attempts to their target base URL
(``crash``: refused at once; ``blackhole``: no answer until the caller's timeout; ``error``: a synthetic 503;
``slow``: the call is made, its answer comes after the caller's timeout), and records the request's lineage:
every attempt, ``<caller instance> <target> <outcome>``, returned in ``LINEAGE_HEADER`` with those of the
dependencies below. Such a request is an experiment standing for a *lasting* fault on a quiet stack: its calls
neither consult nor feed the breakers, the retry budget and the client throttle that real traffic shares (so
thousands of experiments disturb no user and do not depend on one another); where the profile has breakers, a
target the fault set fails is skipped as its open breaker would skip it once the fault has lasted a few calls;
and the gateway verifies the session afresh (a lasting fault outlives its few seconds of session cache).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

REQUEST_FAULTS_HEADER = "X-Blackout-Request-Faults"
LINEAGE_HEADER = "X-Blackout-Lineage"
SCOPED_KINDS = ("crash", "blackhole", "error", "slow")
ANY_SOURCE = ""  # a fault on every caller's attempts to the target
MAX_HEADER_BYTES = 16_384
MAX_FAULTS = 64

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RefusedFaults(ValueError):
    """The header is not a fault set this stack's admin signed (the reason says why)."""


@dataclass(frozen=True, slots=True)
class ScopedFault:
    kind: str  # one of SCOPED_KINDS
    source: str  # the calling instance's name; ANY_SOURCE: every caller
    target: str  # the callee's base URL, e.g. http://127.0.0.1:8002

    def to_wire(self) -> list[str]:
        return [self.kind, self.source, self.target]


@dataclass(slots=True)
class Experiment:
    """One verified request's fault set, as this instance applies it, and the lineage it records."""

    instance: str  # this instance: the source its outgoing calls have
    header: str  # the signed value, forwarded unchanged downstream
    faults: tuple[ScopedFault, ...]
    lineage: list[str] = field(default_factory=list)

    def fault_for(self, target: str) -> str | None:
        """The kind acting on this instance's attempts to ``target`` (the first listed), or None."""
        for fault in self.faults:
            if fault.target == target and fault.source in (ANY_SOURCE, self.instance):
                return fault.kind
        return None

    def record(self, target: str, outcome: str) -> None:
        self.lineage.append(f"{self.instance} {target} {outcome}")

    def adopt(self, reported: str | None) -> None:
        """Add a dependency's lineage (its own calls and those below) from its answer's header."""
        if reported:
            self.lineage.extend(entry for entry in reported.split(",") if entry)


_current: ContextVar[Experiment | None] = ContextVar("blackout_experiment", default=None)


def current() -> Experiment | None:
    """The experiment the running request is, or None (every real user's request)."""
    return _current.get()


def sign(faults: Iterable[ScopedFault], key: bytes, ttl_s: float = 60.0, now: float | None = None) -> str:
    """The header value for ``faults``, valid ``ttl_s`` seconds (the search holds the stack's admin secret)."""
    expires = (time.time() if now is None else now) + ttl_s
    body = json.dumps({"exp": round(expires, 3), "faults": [f.to_wire() for f in faults]}, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_mac(payload, key)}"


def verify(value: str, key: bytes, now: float | None = None) -> tuple[ScopedFault, ...]:
    """The fault set of a header value signed with ``key`` and not expired; RefusedFaults otherwise."""
    if not key:
        raise RefusedFaults("this instance has no admin secret: request-scoped faults are disabled")
    if len(value) > MAX_HEADER_BYTES:
        raise RefusedFaults(f"longer than {MAX_HEADER_BYTES} bytes")
    payload, dot, signature = value.strip().partition(".")
    # compare_digest: the time taken must not tell a caller how much of the signature it got right
    if not dot or not hmac.compare_digest(signature.encode(), _mac(payload, key).encode()):
        raise RefusedFaults("bad signature: only the stack's admin may inject request-scoped faults")
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires, wire = float(data["exp"]), data["faults"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RefusedFaults(f"malformed payload: {type(exc).__name__}") from None
    if expires < (time.time() if now is None else now):
        raise RefusedFaults("expired: sign the fault set again")
    return _faults(wire)


def _faults(wire: object) -> tuple[ScopedFault, ...]:
    if not isinstance(wire, list) or len(wire) > MAX_FAULTS:
        raise RefusedFaults(f"faults must be a list of at most {MAX_FAULTS} [kind, source, target] triples")
    faults = []
    for n, item in enumerate(wire):
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(part, str) for part in item)):
            raise RefusedFaults(f"fault {n}: not a [kind, source, target] triple of strings")
        if item[0] not in SCOPED_KINDS:
            raise RefusedFaults(f"fault {n}: kind {item[0][:20]!r} is not one of {', '.join(SCOPED_KINDS)}")
        faults.append(ScopedFault(item[0], item[1], item[2].rstrip("/")))
    return tuple(faults)


def _mac(payload: str, key: bytes) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


class RequestFaultsMiddleware:
    """Pure ASGI: adopts a verified fault set for the request's duration; 401 for one it cannot verify."""

    _key = REQUEST_FAULTS_HEADER.lower().encode("latin-1")

    def __init__(self, app: Any, instance: str, admin_secret: bytes) -> None:
        self.app = app
        self.instance = instance
        self.secret = admin_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = None
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == self._key:  # ASGI servers give header names lower-cased
                    raw = value
                    break
        if raw is None:
            await self.app(scope, receive, send)
            return
        header = raw.decode("latin-1")
        try:
            faults = verify(header, self.secret)
        except RefusedFaults as exc:
            await _refuse(send, f"{REQUEST_FAULTS_HEADER} refused: {exc}")
            return
        experiment = Experiment(self.instance, header, faults)
        lineage_key = LINEAGE_HEADER.lower().encode("latin-1")

        async def send_with_lineage(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                lineage = ",".join(experiment.lineage).encode("latin-1")
                message = {**message, "headers": [*message.get("headers", []), (lineage_key, lineage)]}
            await send(message)

        token = _current.set(experiment)
        try:
            await self.app(scope, receive, send_with_lineage)
        finally:
            _current.reset(token)


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
