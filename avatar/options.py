"""Helpers shared by the subcommands: flags generated from the settings models, ``--config``, settings errors.

A settings field is a flag named after its flat key (``llm_url`` -> ``--llm-url``; a field's
``json_schema_extra={"flag": ...}`` renames it, ``{"flag": False}`` leaves it to the environment and the config
file), typed by its annotation, helped by its ``description``; the help formatter appends its default.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from media.settings import PeerSettings
from signaling.settings import AvatarSettings, ConfigFileError, flat_group_keys, settings_group

SettingsT = TypeVar("SettingsT", bound=AvatarSettings)


@dataclass(frozen=True)
class SettingField:
    """One settings field as the command line sees it: its flat key (the flag's dest, the ``AVATAR_*`` variable's
    and the config key's name) and its pydantic field."""

    key: str
    info: FieldInfo

    @property
    def extra(self) -> dict[str, Any]:
        extra = self.info.json_schema_extra
        return extra if isinstance(extra, dict) else {}

    @property
    def flag(self) -> str:
        flag = self.extra.get("flag")
        return flag if isinstance(flag, str) else "--" + self.key.replace("_", "-")

    @property
    def default(self) -> Any:
        return None if self.info.default_factory is not None else self.info.default


def settings_fields(cls: type[BaseModel]) -> list[SettingField]:
    """The fields of a settings model that are flags, nested backend groups by their flat keys."""
    fields: list[SettingField] = []
    for name, info in cls.model_fields.items():
        group = settings_group(info)
        if group is None:
            fields.append(SettingField(name, info))
        else:
            fields.extend(SettingField(group.flat_key(inner), field) for inner, field in group.model_fields.items())
    return [field for field in fields if field.extra.get("flag", True) is not False]


def _without_none(kind: Any) -> Any:
    if get_origin(kind) in (Union, types.UnionType):
        rest = [arg for arg in get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def _scalar(kind: Any) -> type:
    return kind if kind in (int, float, Path) else str  # str, SecretStr


def add_settings_flags(
    parser: argparse.ArgumentParser, cls: type[AvatarSettings], exclude: Collection[str] = ()
) -> None:
    """One flag per settings field (but those in ``exclude``), and ``--config``."""
    for field in settings_fields(cls):
        if field.key not in exclude:
            _add_flag(parser, field)
    add_config_flag(parser)


def _add_flag(parser: argparse.ArgumentParser, field: SettingField) -> None:
    kind = _without_none(field.info.annotation)
    options: dict[str, Any] = {"dest": field.key, "default": None, "help": field.info.description}
    shown = field.default
    if kind is bool:
        if field.flag.startswith("--no-"):
            options["action"], shown = "store_false", None
        else:
            options["action"] = "store_true" if field.default is False else argparse.BooleanOptionalAction
    else:
        if "metavar" in field.extra:
            options["metavar"] = field.extra["metavar"]
        if get_origin(kind) is Literal:
            options["choices"] = list(get_args(kind))
        elif get_origin(kind) is list:
            options["action"], options["type"] = "append", _scalar(get_args(kind)[0])
        else:
            options["type"] = _scalar(kind)
    action = parser.add_argument(field.flag, **options)
    action.shown_default = shown  # type: ignore[attr-defined]  # read by avatar.help_format


def flag_values(args: argparse.Namespace, cls: type[BaseModel]) -> dict[str, Any]:
    """The settings the command line gave, by flat key (``None``: not given)."""
    return {field.key: getattr(args, field.key, None) for field in settings_fields(cls)}


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings file (top-level keys and a [section] per command)"
    )


def load_settings(
    cls: type[SettingsT], args: argparse.Namespace, section: str, extra: Mapping[str, Any] | None = None
) -> SettingsT | None:
    """Load settings from the flags (and ``extra``), the environment and ``--config``; or print a clear error to
    stderr and return None."""
    try:
        return cls.load({**flag_values(args, cls), **(extra or {})}, getattr(args, "config", None), section)
    except ConfigFileError as exc:
        print(f"avatar: {exc}", file=sys.stderr)
    except ValidationError as exc:
        flat = {place: key for key, place in flat_group_keys(cls).items()}
        problems = "; ".join(f"{_setting_name(e['loc'], flat)}: {e['msg']}" for e in exc.errors())
        print(f"avatar: invalid settings: {problems}", file=sys.stderr)
    return None


def _setting_name(loc: tuple[int | str, ...], flat: Mapping[tuple[str, str], str]) -> str:
    """A validation error's place as the user names it: a nested backend field by its flat key (``fish_url``)."""
    if len(loc) >= 2 and (place := (str(loc[0]), str(loc[1]))) in flat:
        return ".".join([flat[place], *map(str, loc[2:])])
    return ".".join(map(str, loc)) or "settings"


def token_problem(settings: PeerSettings, command: str) -> bool:
    """Print why a peer cannot start without a token; True if there is a problem."""
    try:
        settings.token_value()
    except ValueError as exc:
        print(f"avatar {command}: {exc}", file=sys.stderr)
        return True
    return False


def explicit_devices(args: argparse.Namespace) -> frozenset[str]:
    """Which sink devices the user named on the command line (those must work; defaults may be skipped)."""
    return frozenset(name for name in ("camera", "mic_out") if getattr(args, name, None) is not None)


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write a result as JSON (when a path was given) and say where."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(f"wrote {path}")
