"""Typed settings loading shared by every process: CLI flags > ``AVATAR_*`` env > TOML file > defaults."""

from __future__ import annotations

import contextvars
import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from signaling.tokens import DEFAULT_LEEWAY_S

_LAYERS: contextvars.ContextVar[tuple[Mapping[str, Any], Mapping[str, Any]]] = contextvars.ContextVar(
    "avatar_settings_layers", default=({}, {})
)


class ConfigFileError(ValueError):
    """The TOML config file is missing or malformed."""


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source backed by a plain mapping (CLI flags or one TOML table)."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


def read_config_file(path: Path, section: str) -> dict[str, Any]:
    """Top-level keys of a TOML file overlaid with its ``[section]`` table."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigFileError(f"config file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"config file {path} is not valid TOML: {exc}") from exc
    values = {k: v for k, v in document.items() if not isinstance(v, dict)}
    table = document.get(section, {})
    if not isinstance(table, dict):
        raise ConfigFileError(f"config file {path}: [{section}] must be a table")
    values.update(table)
    return values


class AvatarSettings(BaseSettings):
    """Base of every process's one settings object."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_", extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        cli, toml = _LAYERS.get()
        return (
            init_settings,
            _MappingSource(settings_cls, cli),
            env_settings,
            _MappingSource(settings_cls, toml),
        )

    @classmethod
    def load(
        cls,
        cli: Mapping[str, Any] | None = None,
        config_file: Path | None = None,
        section: str = "",
    ) -> Self:
        """Build the settings; ``cli`` holds only the flags the user actually gave (no ``None``)."""
        toml = read_config_file(config_file, section) if config_file else {}
        given = {k: v for k, v in (cli or {}).items() if v is not None}
        token = _LAYERS.set((given, toml))
        try:
            return cls()
        finally:
            _LAYERS.reset(token)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SignalingSettings(AvatarSettings):
    """Settings of ``avatar signaling``."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: SecretStr | None = None
    max_message_bytes: int = Field(64 * 1024, ge=1024)
    max_frame_bytes: int = Field(1024 * 1024, ge=1024, description="frames above this close with 1009")
    heartbeat_s: float = Field(10.0, gt=0)
    max_connections_per_address: int = Field(32, ge=1)
    max_viewers_per_room: int = Field(16, ge=0)
    messages_per_second: float = Field(100.0, gt=0)
    message_burst: int = Field(300, ge=1)
    public_url: str | None = None
    ice_servers: list[str] = Field(
        default_factory=list
    )  # advertised to peers: stun:HOST:PORT, turn:HOST:PORT?transport=udp
    turn_secret: SecretStr | None = None  # coturn's static-auth-secret: TURN credentials are derived per peer
    turn_ttl_s: int = Field(12 * 3600, ge=60)
    # a signed token is still accepted this long after its expiry (and before its start): clock differences
    token_leeway_s: float = Field(DEFAULT_LEEWAY_S, ge=0, le=300)
    # the plain shared secret as a token: None = only when bound to loopback; elsewhere peers present signed tokens
    accept_shared_token: bool | None = None
    static_dir: Path | None = None

    @property
    def shared_token_accepted(self) -> bool:
        if self.accept_shared_token is not None:
            return self.accept_shared_token
        return is_loopback_host(self.host)
