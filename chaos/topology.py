"""The declarative topology: data centers, the service instances in each, their ports and dependencies."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from services.common.config_files import describe, load_yaml
from services.common.errors import ConfigError
from services.common.names import ServiceName
from services.common.settings import REQUIRED_DEPENDENCIES

NAME = r"^[a-z][a-z0-9-]{0,39}$"
LOOPBACK = "127.0.0.1"  # where every data center listens unless its runtime gave it an address of its own


class Instance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: ServiceName
    # 0: the runtime binds any free port and reports it (tests run beside a live demo this way)
    port: int = Field(ge=0, le=65535)
    # dependency service -> instance names in failover order
    depends_on: dict[ServiceName, list[str]] = {}


class DataCenter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: dict[str, Instance] = Field(min_length=1)


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    description: str = ""
    data_centers: dict[str, DataCenter] = Field(min_length=1)
    # data center -> its address, set by a runtime that gives each data center a network of its own
    # (chaos/runtime/netns.py); never read from a file: a topology cannot point the stack at another host.
    _addresses: dict[str, str] = PrivateAttr(default_factory=dict)

    def instances(self) -> dict[str, tuple[str, Instance]]:
        """instance name -> (data center, instance)."""
        return {name: (dc, inst) for dc, center in self.data_centers.items() for name, inst in center.instances.items()}

    def address(self, dc: str) -> str:
        return self._addresses.get(dc, LOOPBACK)

    def url(self, instance: str) -> str:
        dc, inst = self.instances()[instance]
        return f"http://{self.address(dc)}:{inst.port}"

    def with_addresses(self, addresses: dict[str, str]) -> Topology:
        """A copy whose data centers listen on ``addresses`` (data center -> IPv4 address)."""
        copy = self.model_copy(deep=True)
        copy._addresses = dict(addresses)
        return copy

    def dependency_urls(self, instance: str) -> dict[str, list[str]]:
        _, inst = self.instances()[instance]
        return {dep: [self.url(target) for target in targets] for dep, targets in inst.depends_on.items()}

    def gateways(self) -> dict[str, str]:
        """data center -> URL of its (first) gateway: where that data center's users are sent."""
        found: dict[str, str] = {}
        for name, (dc, inst) in self.instances().items():
            if inst.service == "gateway":
                found.setdefault(dc, self.url(name))
        return found

    def require_dc(self, dc: str) -> None:
        if dc not in self.data_centers:
            known = ", ".join(sorted(self.data_centers))
            raise ConfigError(f"data center '{dc}'", f"unknown in topology {self.name}; known data centers: {known}")

    def with_ports(self, allocate: Callable[[str], int]) -> Topology:
        """A copy with every port replaced by ``allocate(instance name)``."""
        copy = self.model_copy(deep=True)
        for center in copy.data_centers.values():
            for name, inst in center.instances.items():
                inst.port = allocate(name)
        return copy

    def with_any_ports(self) -> Topology:
        """A copy whose every port is 0: the runtime binds free ports itself (no race with other sockets)."""
        return self.with_ports(lambda name: 0)

    def names(self, dc: str) -> list[str]:
        """The instances of one data center, in the file's order."""
        return list(self.data_centers[dc].instances)

    def dc_of(self, name: str) -> str:
        found = self.instances().get(name)
        if found is None:
            raise ConfigError(f"instance '{name}'", f"unknown; instances: {', '.join(sorted(self.instances()))}")
        return found[0]

    def boot_waves(self, dc: str, boot_order: list[str] | None) -> list[list[str]]:
        """The data center's instances grouped by the services named in ``boot_order`` (in that order); the
        rest come last, together."""
        names = self.names(dc)
        if not boot_order:
            return [names]
        instances = self.instances()
        waves = [[n for n in names if instances[n][1].service == service] for service in boot_order]
        rest = [n for n in names if instances[n][1].service not in boot_order]
        return [wave for wave in waves + [rest] if wave]

    def find(self, name: str) -> list[str]:
        """Instances named by a data center, a service or an instance name; an unknown name lists what exists."""
        instances = self.instances()
        if name in self.data_centers:
            return list(self.data_centers[name].instances)
        if name in instances:
            return [name]
        chosen = [inst for inst, (_, spec) in instances.items() if spec.service == name]
        if chosen:
            return chosen
        raise ConfigError(
            f"'{name}'",
            f"no data center, service or instance of that name in topology {self.name}; data centers: {', '.join(sorted(self.data_centers))}; "
            f"services: {', '.join(sorted({s.service for _, s in instances.values()}))}; "
            f"instances: {', '.join(sorted(instances))}",
        )


def check(topology: Topology, source: str) -> Topology:
    """Cross-field rules pydantic cannot express; each error names the field."""
    instances = topology.instances()
    seen: Counter[str] = Counter(n for c in topology.data_centers.values() for n in c.instances)
    for name, count in seen.items():
        if count > 1:
            raise ConfigError(
                source, f"field 'data_centers.*.instances.{name}': instance name used in {count} data centers"
            )
    for dc in topology.data_centers:
        if not _matches(dc):
            raise ConfigError(source, f"field 'data_centers.{dc}': a name must match {NAME}")
    ports: dict[int, str] = {}
    for name, (dc, inst) in instances.items():
        where = f"data_centers.{dc}.instances.{name}"
        if not _matches(name):
            raise ConfigError(source, f"field '{where}': a name must match {NAME}")
        if inst.port and inst.port in ports:
            raise ConfigError(source, f"field '{where}.port': port {inst.port} is also used by {ports[inst.port]}")
        if inst.port:
            if inst.port < 1024:
                raise ConfigError(
                    source, f"field '{where}.port': {inst.port} is privileged; use 1024-65535, or 0 for any"
                )
            ports[inst.port] = name
        for dep, targets in inst.depends_on.items():
            if not targets:
                raise ConfigError(source, f"field '{where}.depends_on.{dep}': depends on nothing (empty list)")
            for target in targets:
                if target not in instances:
                    raise ConfigError(source, f"field '{where}.depends_on.{dep}': no instance named '{target}'")
                if instances[target][1].service != dep:
                    raise ConfigError(
                        source,
                        f"field '{where}.depends_on.{dep}': '{target}' is a {instances[target][1].service}, not a {dep}",
                    )
        for needed in REQUIRED_DEPENDENCIES[inst.service]:
            if needed not in inst.depends_on:
                raise ConfigError(source, f"field '{where}.depends_on': a {inst.service} needs '{needed}'")
    return topology


def _matches(name: str) -> bool:
    return re.fullmatch(NAME[1:-1], name) is not None


def parse_topology(data: object, source: str) -> Topology:
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe(exc)) from None
    return check(topology, source)


def load_topology(path: str | Path) -> Topology:
    return parse_topology(load_yaml(path), str(path))
