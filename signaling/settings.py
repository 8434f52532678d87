"""Typed settings loading shared by every process: CLI flags > ``AVATAR_*`` env > TOML file > defaults."""

from __future__ import annotations

import contextvars
import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from signaling.tokens import DEFAULT_LEEWAY_S

_LAYERS: contextvars.ContextVar[tuple[Mapping[str, Any], Mapping[str, Any]]] = contextvars.ContextVar(
    "avatar_settings_layers", default=({}, {})
)


class ConfigFileError(ValueError):
    """The TOML config file is missing or malformed."""


class SettingsGroup(BaseModel):
    """One backend's own settings, nested in a process's settings under flat keys: ``key_prefix`` + field name
    (``llm_`` + ``url`` -> ``llm_url``: the ``AVATAR_LLM_URL`` variable, the ``llm_url`` config key, ``--llm-url``),
    or the name ``keys`` gives a field."""

    key_prefix: ClassVar[str] = ""
    keys: ClassVar[dict[str, str]] = {}

    @classmethod
    def flat_key(cls, name: str) -> str:
        return cls.keys.get(name, cls.key_prefix + name)


def settings_group(field: FieldInfo) -> type[SettingsGroup] | None:
    """The group a field nests, if it nests one."""
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, SettingsGroup) else None


def flat_group_keys(settings_cls: type[BaseModel]) -> dict[str, tuple[str, str]]:
    """Every nested group's flat key -> (the group's field, the field inside the group)."""
    keys: dict[str, tuple[str, str]] = {}
    for name, field in settings_cls.model_fields.items():
        group = settings_group(field)
        if group is not None:
            keys.update({group.flat_key(inner): (name, inner) for inner in group.model_fields})
    return keys


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source backed by a plain mapping (CLI flags or one TOML table)."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        known = self.settings_cls.model_fields.keys() | flat_group_keys(self.settings_cls).keys()
        return {k: v for k, v in self._data.items() if k in known}


class _EnvSource(EnvSettingsSource):
    """``AVATAR_*`` variables, a nested group's fields by their flat keys (``AVATAR_FISH_URL``), never the group
    as a whole (so the box's ``AVATAR_FISH=false`` is no Fish Speech settings object for ``avatar remote``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if settings_group(field) is not None:
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        prefix = self.env_prefix.lower()
        for key in flat_group_keys(self.settings_cls):
            value = self.env_vars.get(prefix + key)
            if value is not None:
                values[key] = value
        return values


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
            _EnvSource(settings_cls),
            _MappingSource(settings_cls, toml),
        )

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        """Gather each group's flat keys (``fish_url``) into its nested object (``fish.url``)."""
        if not isinstance(data, dict):
            return data
        keys = flat_group_keys(cls)
        if not keys.keys() & data.keys():
            return data
        data = dict(data)
        for key, (group, inner) in keys.items():
            if key in data:
                nested = data.get(group) or {}
                if isinstance(nested, BaseModel):
                    nested = nested.model_dump(exclude_unset=True)
                data[group] = {**nested, inner: data.pop(key)}
        return data

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

    host: str = Field("127.0.0.1", description="address to bind (anything but loopback requires a token)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 picks a free one)")
    token: SecretStr | None = Field(
        None, description="shared secret clients must present (or AVATAR_TOKEN; unset: generated, loopback only)"
    )
    max_message_bytes: int = Field(64 * 1024, ge=1024, description="largest accepted message")
    max_frame_bytes: int = Field(1024 * 1024, ge=1024, description="WebSocket frames above this close with 1009")
    heartbeat_s: float = Field(
        10.0,
        gt=0,
        description="WebSocket ping interval in seconds (dead sockets drop within 1.5x)",
        json_schema_extra={"flag": "--heartbeat"},
    )
    max_connections_per_address: int = Field(32, ge=1, description="concurrent sockets per client address")
    max_viewers_per_room: int = Field(16, ge=0, description="browser viewers per room")
    messages_per_second: float = Field(100.0, gt=0, description="messages a socket may send per second, sustained")
    message_burst: int = Field(300, ge=1, description="messages a socket may send at once above that rate")
    public_url: str | None = Field(None, description="base URL to print in join links, e.g. https://host:port")
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URL advertised to peers in welcome, repeatable (e.g. turn:HOST:3478?transport=udp)",
        json_schema_extra={"flag": "--ice-server", "metavar": "URL"},
    )
    turn_secret: SecretStr | None = Field(
        None, description="coturn static-auth-secret: peers get short-lived TURN credentials (or AVATAR_TURN_SECRET)"
    )
    turn_ttl_s: int = Field(
        12 * 3600, ge=60, description="TURN credential lifetime in seconds", json_schema_extra={"flag": "--turn-ttl"}
    )
    token_leeway_s: float = Field(
        DEFAULT_LEEWAY_S,
        ge=0,
        le=300,
        description="seconds a signed token is still accepted after it expires (and before it starts): clock "
        "differences",
        json_schema_extra={"flag": "--token-leeway", "metavar": "S"},
    )
    accept_shared_token: bool | None = Field(
        None,
        description="accept the plain secret as a token (unset: only on loopback; elsewhere peers present signed "
        "room tokens, which peers holding the secret mint themselves; `avatar token` issues one)",
    )
    static_dir: Path | None = Field(
        None, description="serve the preview page's files (/static/) from this folder instead of the bundled ones"
    )

    @property
    def shared_token_accepted(self) -> bool:
        if self.accept_shared_token is not None:
            return self.accept_shared_token
        return is_loopback_host(self.host)
