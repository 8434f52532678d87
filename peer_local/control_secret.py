"""The control endpoint's per-run secret: generated at start, kept in a file only the user can read.

Hotkey tools (and ``avatar control``) read it from :func:`secret_path` and send it as ``Authorization: Bearer``.
The file is per port, so two runs on two ports do not overwrite each other's secret.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import platformdirs

DEFAULT_CONTROL_PORT = 8766
SECRET_BYTES = 32  # 256 bits: guessing is hopeless, so the endpoint needs no rate limit against it


class ControlSecretError(RuntimeError):
    """No readable secret file for this port (no running avatar, or another user's)."""


def secret_dir() -> Path:
    """The user's state directory for avatar (``$XDG_STATE_HOME/avatar`` on Linux)."""
    return platformdirs.user_state_path("avatar")


def secret_path(port: int, directory: Path | None = None) -> Path:
    return (directory or secret_dir()) / f"control-{port}.secret"


def generate_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def write_secret(port: int, secret: str, directory: Path | None = None) -> Path:
    """Write ``secret`` where :func:`read_secret` finds it, mode 0600 from the first byte (no readable window)."""
    path = secret_path(port, directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secret + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path


def read_secret(port: int, directory: Path | None = None, path: Path | None = None) -> str:
    """The secret of the avatar running with its control endpoint on ``port``."""
    path = path or secret_path(port, directory)
    try:
        secret = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise ControlSecretError(
            f"no control secret at {path}: is `avatar local` (or `avatar demo`) running with --control-port {port}?"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ControlSecretError(f"cannot read the control secret at {path}: {exc}") from exc
    if not secret:
        raise ControlSecretError(f"the control secret file {path} is empty")
    return secret


def remove_secret(path: Path, secret: str) -> None:
    """Delete the file if it still holds ``secret`` (a newer run on the same port may have replaced it)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if path.read_text(encoding="ascii").strip() == secret:
            path.unlink()
