"""The names every part of Blackout shares: the five services and the user actions. Declared here once; the
topology, the settings, the profiles, the runtimes, the scenarios' probes, the reports and the load test read
them from here. (Each service's routes and bodies are its own: services/<service>/api.py.)"""

from __future__ import annotations

from typing import Literal, get_args

ServiceName = Literal["auth", "views", "earnings", "recommender", "gateway"]
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)
# What a service may call (a profile's per-dependency policies are keyed by it): every service but the gateway.
DependencyName = Literal["auth", "views", "recommender", "earnings"]
DEPENDENCIES: tuple[DependencyName, ...] = get_args(DependencyName)
GATEWAY: ServiceName = "gateway"

# What a simulated user does through the gateway (services/gateway/api.py maps each to its route), in the
# order reports list them.
UserAction = Literal["login", "feed", "view", "upload", "earnings"]
USER_ACTIONS: tuple[UserAction, ...] = get_args(UserAction)
