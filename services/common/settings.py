"""Configuration of one service instance, from the environment (fails fast on a missing address)."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import ConfigError

SERVICES = ("auth", "views", "earnings", "recommender", "gateway")
# What each service calls; a missing address for one of these stops the service at start.
REQUIRED_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "auth": (),
    "views": (),
    "earnings": ("views", "recommender"),
    "recommender": ("views",),
    "gateway": ("auth", "views", "recommender", "earnings"),
}


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLACKOUT_", extra="ignore")

    service: str = Field(pattern="^(auth|views|earnings|recommender|gateway)$")
    instance: str = Field(min_length=1)
    dc: str = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    listen_fd: int | None = Field(None, description="an inherited listening socket (held by the runtime)")
    data_dir: Path
    # dependency name -> base URLs in failover order, e.g. {"views": ["http://127.0.0.1:8002"]}
    dependencies: dict[str, list[str]] = {}
    profile: Path | None = None
    token_secret: SecretStr | None = None
    # Guards /admin/* (profile swaps, fault injection); kept apart from token_secret, which signs users' tokens.
    admin_secret: SecretStr | None = None
    token_ttl_s: int = Field(3600, ge=1, le=86_400)
    supervisor_pid: int | None = None
    seed: int = 42

    def secret_bytes(self) -> bytes:
        if self.token_secret is None or not self.token_secret.get_secret_value():
            raise ConfigError("BLACKOUT_TOKEN_SECRET", f"required by {self.service}: tokens are signed with it")
        return self.token_secret.get_secret_value().encode()


def load_settings(**overrides: object) -> ServiceSettings:
    """Read and check the environment; raise ConfigError naming the variable that is wrong."""
    try:
        settings = ServiceSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(f"BLACKOUT_{field.upper()}", err["msg"]) from None
    if settings.admin_secret and settings.token_secret and (
        settings.admin_secret.get_secret_value() == settings.token_secret.get_secret_value()
    ):
        raise ConfigError("BLACKOUT_ADMIN_SECRET", "must differ from BLACKOUT_TOKEN_SECRET (else admins mint tokens)")
    missing = [d for d in REQUIRED_DEPENDENCIES[settings.service] if not settings.dependencies.get(d)]
    if missing:
        raise ConfigError(
            "BLACKOUT_DEPENDENCIES",
            f"{settings.instance} ({settings.service}) needs an address for: {', '.join(missing)}",
        )
    return settings


def dependencies_env(deps: dict[str, list[str]]) -> str:
    return json.dumps(deps, separators=(",", ":"))
