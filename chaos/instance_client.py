"""The one HTTP client the controller side talks to instances with (health, admin routes, metrics, replication):
every timeout in one place. Each user keeps one client (one connection pool) for its work, closed when done.

(The control API's own client, chaos/control_client.py, talks to a controller, not to instances.)
"""

from __future__ import annotations

from types import TracebackType

import httpx

from services.common.api import HEALTHZ

# How long one call may wait for its answer, per use. A dark instance accepts connections and never answers, so
# each is as short as its use allows.
HEALTH_S = 2.0  # /healthz while an instance boots
ADMIN_S = 5.0  # a profile switch (the instance rebuilds its clients)
LINK_S = 1.0  # a link fault's PUT or DELETE, repeated on failure (chaos/faults/link.py)
PROBE_S = 0.8  # the control room's look at each instance, every second
SCRAPE_S = 1.0  # /metrics at a phase boundary
AUDIT_S = 5.0  # replication status and earnings recomputation before an audit


class InstanceClient:
    """``admin_secret``: sent as the bearer token every /admin route demands."""

    def __init__(
        self, timeout_s: float, admin_secret: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {admin_secret}"} if admin_secret else {}
        self._http = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def __enter__(self) -> InstanceClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, url: str) -> httpx.Response:
        return self._http.get(url)

    def put(self, url: str, body: object) -> httpx.Response:
        return self._http.put(url, json=body)

    def delete(self, url: str) -> httpx.Response:
        return self._http.delete(url)

    def healthy(self, base_url: str) -> bool:
        """Whether the instance answers /healthz with 200 now; no answer is not healthy."""
        try:
            return self._http.get(base_url + HEALTHZ).status_code == 200
        except httpx.HTTPError:
            return False

    def outcome(self, method: str, url: str, body: object = None) -> str:
        """One admin call's outcome as the journal shows it: "ok", "HTTP <status>: <why>" or "no answer (<error>)"."""
        try:
            answer = self._http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"
