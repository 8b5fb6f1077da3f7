"""The few Docker Engine calls the Docker runtime makes (the Docker SDK for Python), scoped to one run.

Every container this creates carries ``blackout.run=<run id>``; every query and removal filters on it, so
nothing here can touch a container another run (or anyone else) created.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chaos.runtime.base import RuntimeError_
from chaos.runtime.pids import is_process, start_time

if TYPE_CHECKING:  # imported when a runtime connects: the SDK is slow to import and only this runtime needs it
    from docker import DockerClient
    from docker.models.containers import Container

RUN_LABEL = "blackout.run"
OWNER_LABEL = "blackout.owner"  # host:pid of the runtime that created it
OWNER_STARTED_LABEL = "blackout.owner-started"  # that process's start time: its pid alone may be reused
HEALTHCHECK_INTERVAL_NS = 10_000_000_000  # Docker's own check (for `docker ps`); the runtime polls /healthz itself
# The probe Docker runs inside the container: stdlib only, the instance's own port.
HEALTH_PROBE = (
    "import os, urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['BLACKOUT_PORT'], timeout=2)"
)
T = TypeVar("T")


class Engine:
    def __init__(self, client: DockerClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.containers: dict[str, Container] = {}  # instance -> container
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="docker")

    @classmethod
    def connect(cls, run_id: str) -> Engine:
        try:
            import docker
        except ImportError:
            raise RuntimeError_("the docker runtime needs the Docker SDK for Python: pip install docker") from None
        try:
            client = docker.from_env(timeout=60, max_pool_size=16)
            client.ping()
        except docker.errors.DockerException as exc:
            raise RuntimeError_(f"no Docker engine answers ({exc}); start one (see README, Docker)") from None
        return cls(client, run_id)

    def require_image(self, image: str) -> None:
        import docker

        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise RuntimeError_(
                f"no image '{image}': build it with `make image` (docker build --network host -t {image} .)"
            ) from None

    def create(
        self, name: str, image: str, labels: dict[str, str], env: dict[str, str], memory: str, run_dir: Path
    ) -> None:
        labels = {
            **labels,
            RUN_LABEL: self.run_id,
            OWNER_LABEL: f"{os.uname().nodename}:{os.getpid()}",
            OWNER_STARTED_LABEL: repr(start_time(os.getpid())),
        }
        self.containers[name] = self.client.containers.create(
            image,
            name=f"blackout-{self.run_id}-{name}"[:120],
            labels=labels,
            environment=env,
            network_mode="host",  # only loopback traffic is allowed here; services find each other at 127.0.0.1
            # a killed data center stays dark until the controller powers it on (types-docker knows only
            # "always" and "on-failure" here; the Engine API takes "no")
            restart_policy={"Name": "no"},  # type: ignore[arg-type]
            mem_limit=memory,
            user=f"{os.getuid()}:{os.getgid()}",  # files in the run directory stay the user's
            volumes={str(run_dir): {"bind": str(run_dir), "mode": "rw"}},
            healthcheck={
                "test": ["CMD", "python", "-c", HEALTH_PROBE],
                "interval": HEALTHCHECK_INTERVAL_NS,
                "timeout": 5_000_000_000,
                "retries": 3,
            },  # a Python start can take seconds on a busy machine
        )

    def start(self, names: list[str]) -> dict[str, int]:
        """Start the containers at once; instance -> the pid of its process on this host."""

        def start_one(name: str) -> tuple[str, int]:
            container = self.containers[name]
            container.start()
            container.reload()
            return name, int(container.attrs["State"]["Pid"])

        return dict(self._each(start_one, names))

    def kill(self, names: list[str]) -> float:
        """SIGKILL the containers concurrently; seconds until Docker reports every one of them stopped."""
        import docker

        def kill_one(name: str) -> None:
            container = self.containers[name]
            try:
                container.kill(signal="SIGKILL")
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: it was not running (it crashed on its own)
                    raise
            container.wait(condition="not-running")

        started = time.monotonic()
        self._each(kill_one, names)
        return time.monotonic() - started

    def states(self) -> dict[str, str]:
        """instance -> Docker's state ("running", "exited", "created", ...), in one call."""
        found = self.client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"})
        return {_instance(c): c.status for c in found}

    def exited(self, name: str) -> int | None:
        """The exit code when the container stopped, else None."""
        container = self.containers[name]
        container.reload()
        state = container.attrs["State"]
        return None if state["Running"] or state["Status"] == "created" else int(state["ExitCode"])

    def log_tail(self, name: str, lines: int = 15) -> str:
        return self.containers[name].logs(tail=lines).decode(errors="replace")

    def remove_all(self, logs_dir: Path) -> list[str]:
        """Save every container's log, then remove every container of this run (found by label, so even one
        created by a call that failed half-way); the names removed."""
        import docker

        found = self.client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"})

        def remove_one(container: Container) -> str:
            name = _instance(container)
            try:
                (logs_dir / f"{name}.log").write_bytes(container.logs())
            except (docker.errors.APIError, OSError):
                pass  # the log is a courtesy; removal is the point
            container.remove(force=True)
            return name

        return sorted(self._each(remove_one, found))

    def sweep_orphans(self) -> list[str]:
        """Remove the containers of earlier runs whose runtime died without `down` (SIGKILL, a crash): created
        on this host by a process that is gone. A live run's containers are never touched. The names removed."""
        found = self.client.containers.list(all=True, filters={"label": RUN_LABEL})
        orphans = [c for c in found if c.labels.get(RUN_LABEL) != self.run_id and _orphaned(c.labels)]

        def remove_one(container: Container) -> str:
            import docker

            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass  # another runtime's sweep was first
            return str(container.name)  # Docker names every container

        return sorted(self._each(remove_one, orphans))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def _each(self, work: Callable[[T], object], items: Iterable[T]) -> list[Any]:
        """``work`` on every item at once; the first error is raised after all have finished."""
        futures = [self._pool.submit(work, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise RuntimeError_(f"docker: {errors[0]}") from errors[0]
        return [f.result() for f in futures]


def _instance(container: Container) -> str:
    """The instance a container runs: its label, else its own name (Docker names every container)."""
    return container.labels.get("blackout.instance", str(container.name))


def _orphaned(labels: dict[str, str]) -> bool:
    """Created on this host by a process that no longer runs (its pid gone, or someone else's by now)."""
    host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if host != os.uname().nodename or not pid.isdigit():
        return False  # another host's (or a hand-made) container: not ours to judge
    try:
        started = float(labels[OWNER_STARTED_LABEL])
    except (KeyError, ValueError):
        return start_time(int(pid)) is None  # labelled before start times were: only a gone pid is sure
    return not is_process(int(pid), started)
