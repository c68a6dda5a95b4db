"""Typed settings from environment variables, one object per service.

Every variable has the ``CROWDQUANT_`` prefix except ``DATABASE_URL``. Defaults work on a laptop:
loopback addresses, the embedded PostgreSQL under ``.data/``, the offline Bitcoin test network.
A bad value stops start-up with one line naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_PORTS: dict[str, int] = {
    "submissions": 50051,
    "scoring": 50052,
    "leaderboard": 50053,
    "payouts": 50054,
}
GATEWAY_PORT = 8080


class ConfigError(Exception):
    """A configuration value is missing or bad; the message names the variable."""


def _addr(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port")
    return value


class CommonSettings(BaseSettings):
    """Settings every process shares."""

    model_config = SettingsConfigDict(
        env_prefix="CROWDQUANT_", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CROWDQUANT_DATABASE_URL")
    )
    # The migration role's URL (owner of the schemas): only the migration job holds it, never a service.
    migration_database_url: SecretStr | None = None
    data_dir: Path = Path(".data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    grpc_host: str = "127.0.0.1"
    grace_seconds: float = Field(default=5.0, ge=0, le=300)
    health_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, le=1024 * 1024 * 1024)
    auth_cache_seconds: float = Field(default=30.0, ge=0, le=59)
    service_api_key: SecretStr | None = None
    # Key of the HMAC on page tokens; unset = derived from the service key (shared by replicas).
    page_token_secret: SecretStr | None = None
    submissions_addr: str = f"127.0.0.1:{SERVICE_PORTS['submissions']}"
    scoring_addr: str = f"127.0.0.1:{SERVICE_PORTS['scoring']}"
    leaderboard_addr: str = f"127.0.0.1:{SERVICE_PORTS['leaderboard']}"
    payouts_addr: str = f"127.0.0.1:{SERVICE_PORTS['payouts']}"
    rpc_deadline_seconds: float = Field(default=30.0, gt=0, le=3600)
    # TLS: a server with a certificate and key serves TLS only; clients verify peers against the CA file.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None

    _check_addrs = field_validator("submissions_addr", "scoring_addr", "leaderboard_addr", "payouts_addr")(_addr)

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("tls_cert_file", "tls_key_file", "tls_ca_file")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    def peer_addr(self, service: str) -> str:
        return getattr(self, f"{service}_addr")


class ServiceSettings(CommonSettings):
    """Settings of one gRPC service; ``port`` comes from ``CROWDQUANT_<SERVICE>_PORT``."""

    service_name: str = ""
    port: int = Field(default=0, ge=0, lt=65536)


def _service_settings(name: str) -> type[ServiceSettings]:
    default_port = SERVICE_PORTS[name]

    class _Settings(ServiceSettings):
        service_name: str = name
        port: int = Field(default=default_port, ge=0, lt=65536, validation_alias=f"CROWDQUANT_{name.upper()}_PORT")

    _Settings.__name__ = f"{name.capitalize()}BaseSettings"
    return _Settings


SubmissionsBaseSettings = _service_settings("submissions")
ScoringBaseSettings = _service_settings("scoring")
LeaderboardBaseSettings = _service_settings("leaderboard")
PayoutsBaseSettings = _service_settings("payouts")

S = TypeVar("S", bound=BaseSettings)


def _variable_name(cls: type[BaseSettings], loc: tuple[str | int, ...]) -> str:
    if not loc:
        return "configuration"
    field = str(loc[0])
    if field.isupper() or field.startswith(("CROWDQUANT_", "DATABASE_URL")):
        return field
    info = cls.model_fields.get(field)
    alias = getattr(info, "validation_alias", None) if info else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    prefix = cls.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def read_secret_files(environ: dict[str, str] | None = None) -> None:
    """``<VAR>_FILE`` names a file holding ``<VAR>`` (Docker/Kubernetes secrets): read it in.

    A variable set directly wins over its file. The trailing newline of the file is dropped.
    """
    env = os.environ if environ is None else environ
    for name in [n for n in env if n.endswith("_FILE") and n.startswith(("CROWDQUANT_", "DATABASE_URL"))]:
        target = name[: -len("_FILE")]
        if env.get(target):
            continue
        try:
            env[target] = Path(env[name]).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {env[name]!r} ({exc.strerror})") from None


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment, turning validation errors into one readable line."""
    read_secret_files()
    try:
        return cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = _variable_name(cls, tuple(err.get("loc", ())))
        raw = err.get("input")
        shown = "" if isinstance(raw, dict) or raw is None else f" (got {str(raw)[:60]!r})"
        if any(word in name.lower() for word in ("key", "secret", "database_url")):
            shown = ""
        raise ConfigError(f"{name}: {err['msg']}{shown}") from None
