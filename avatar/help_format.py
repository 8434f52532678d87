"""The parser every ``avatar`` command uses: each flag's help ends with its default, written nowhere by hand."""

from __future__ import annotations

import argparse
from enum import Enum
from pathlib import Path
from typing import Any


def default_text(value: Any) -> str:
    """How a default reads in help; empty when there is none worth saying (None, False, an empty list)."""
    if value is None or value is False or value == [] or value is argparse.SUPPRESS:
        return ""
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path | int | str):
        return str(value)
    return ""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default X)": a settings flag's from its field (``shown_default``), any other flag's own."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = default_text(getattr(action, "shown_default", action.default))
        if not text or not action.option_strings:
            return action.help
        return f"{action.help or ''} (default {text.replace('%', '%%')})".lstrip()


class AvatarArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help shows defaults; its subcommands' parsers are of the same kind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
