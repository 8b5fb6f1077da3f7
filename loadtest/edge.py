"""A global load balancer in front of the data centers: health-checks every gateway, routes users to live ones.

Active checks (GET /healthz every 50 ms) and passive ones (a user request that got no answer) mark a
gateway down; two good checks in a row bring it back, so users return home after power-on. An operator may
also drain a data center: its users' DNS answers point elsewhere once their resolver's cached copy expires.
"""

from __future__ import annotations

import gevent
import requests

from services.common.api import HEALTHZ

CHECK_INTERVAL_S = 0.05
CHECK_TIMEOUT_S = 0.1
UP_AFTER = 2  # consecutive good checks before a gateway takes users again
# The app's timeout for one try behind the edge (each try's connect and every read); the fault-space search's
# oracle (chaos/search/oracle.py) plays the same app.
EDGE_TRY_TIMEOUT_S = 0.5
# Safe to send twice: reads, logins, and view writes (idempotent by event_id). Uploads are not.
RETRYABLE = frozenset({"feed", "earnings", "login", "view"})


class EdgeRouter:
    def __init__(self, gateways: list[tuple[str, str]]) -> None:
        self.gateways = dict(gateways)
        self.up = {dc: True for dc in self.gateways}
        self._good_checks = {dc: UP_AFTER for dc in self.gateways}
        self._checker: gevent.Greenlet | None = None

    def route(self, home: str, avoid: frozenset[str] = frozenset()) -> tuple[str, str]:
        """The user's home data center if it is up, else the first live one not drained (home when none is)."""
        if self.up[home]:
            return home, self.gateways[home]
        for dc, url in self.gateways.items():
            if self.up[dc] and dc not in avoid:
                return dc, url
        return home, self.gateways[home]

    def mark_down(self, dc: str) -> None:
        self.up[dc] = False
        self._good_checks[dc] = 0

    def observe(self, dc: str, healthy: bool) -> None:
        if not healthy:
            self.mark_down(dc)
            return
        self._good_checks[dc] += 1
        if self._good_checks[dc] >= UP_AFTER:
            self.up[dc] = True

    def start(self) -> None:
        if self._checker is None:
            self._checker = gevent.spawn(self._check_forever)

    def _check_forever(self) -> None:
        session = requests.Session()
        while True:
            for dc, url in self.gateways.items():
                try:
                    healthy = session.get(url + HEALTHZ, timeout=CHECK_TIMEOUT_S).status_code == 200
                except requests.RequestException:
                    healthy = False
                self.observe(dc, healthy)
            gevent.sleep(CHECK_INTERVAL_S)


class EdgeSettings:
    """How the edge behaves (the profile's edge_failover and client_attempts), followed live by locust."""

    def __init__(self, gateways: list[tuple[str, str]], failover: bool, client_attempts: int) -> None:
        self.router = EdgeRouter(gateways)
        self.failover = failover
        self.client_attempts = client_attempts  # the app's own immediate retries on no answer or a 5xx
        self.drained: dict[str, float] = {}  # data center -> when the balancer stopped answering with it
        self.running = False

    def apply(self, failover: bool, client_attempts: int, drained: dict[str, float] | None = None) -> None:
        self.failover, self.client_attempts = failover, client_attempts
        if drained is not None:
            self.drained = dict(drained)
        if failover and self.running:
            self.router.start()  # health checks only while someone may fail over

    def home(self, dc: str, resolver_age_s: float, now: float) -> str:
        """The data center a user's DNS answer names: its home, unless the home was drained more than the user's
        resolver age ago (0..DRAIN_TTL_S); then the first data center not drained (home when all are)."""
        since = self.drained.get(dc)
        if since is None or now < since + resolver_age_s:
            return dc
        return next((other for other in self.router.gateways if other not in self.drained), dc)

    def start(self) -> None:
        self.running = True
        self.apply(self.failover, self.client_attempts)
