"""An advisory lock file that says "this process feeds the virtual camera", so that ``avatar devices`` and a
second ``avatar local`` never open a camera a running call holds (on Windows a second writer to OBS's Virtual
Camera fails, and probing it would take it over for a moment)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import psutil

logger = logging.getLogger(__name__)


def default_lock_path() -> Path:
    """Per user: the runtime directory (Linux: $XDG_RUNTIME_DIR/avatar) or the local app data (Windows)."""
    return platformdirs.user_runtime_path("avatar", appauthor=False) / "virtual-camera.lock"


@dataclass(frozen=True)
class CameraHolder:
    pid: int
    command: str

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid})"


class CameraLock:
    """``acquire`` writes this process's pid (refused while another live process holds the file), ``release``
    removes it; a lock left by a process that died is taken over."""

    def __init__(self, path: Path | None = None, command: str = "avatar") -> None:
        self.path = path or default_lock_path()
        self.command = command
        self._held = False

    def holder(self) -> CameraHolder | None:
        """The live process holding the camera, or None (no file, an unreadable one, or a dead holder)."""
        try:
            data = json.loads(self.path.read_text())
            holder = CameraHolder(int(data["pid"]), str(data.get("command", "avatar")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not psutil.pid_exists(holder.pid):
            return None
        return holder

    def acquire(self) -> CameraHolder | None:
        """Take the lock; returns the other holder instead if a live process other than this one has it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # no writable runtime directory: run without the advisory lock
            logger.warning("cannot create %s (%s); a second avatar could not tell the camera is in use", self.path, exc)
            return None
        record = json.dumps({"pid": os.getpid(), "command": self.command, "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and holder.pid != os.getpid():
                    return holder
                with contextlib.suppress(FileNotFoundError):  # a stale lock (its process died): take it over
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as out:
                out.write(record)
            self._held = True
            return None
        holder = self.holder()
        return holder if holder is not None and holder.pid != os.getpid() else None

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        holder = self.holder()
        if holder is None or holder.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
