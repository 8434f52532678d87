"""Single-key commands on the terminal of ``avatar local``: t take over, h hand back, m mute, s skip."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable

from peer_local.control import LiveControl

logger = logging.getLogger(__name__)

KEYS = {"t": "take-over", "h": "hand-back", "m": "toggle-mute", "s": "skip"}


def _read_key_windows() -> str:
    import msvcrt

    return str(msvcrt.getwch())  # type: ignore[attr-defined]


class KeyCommands:
    """Reads keys in a thread (the terminal in cbreak mode) and applies them on the event loop."""

    def __init__(self, control: LiveControl, show: Callable[[str], None] = print) -> None:
        self.control = control
        self.show = show
        self._stop = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """False (and nothing started) when stdin is not a terminal."""
        if not sys.stdin.isatty():
            return False
        self.show(self.control.describe())
        threading.Thread(target=self._run, args=(loop,), daemon=True, name="control-keys").start()
        return True

    def stop(self) -> None:
        self._stop.set()

    def _apply(self, key: str) -> None:
        action = KEYS.get(key.lower())
        if action is None:
            return
        self.control.act(action)
        self.show(self.control.describe())

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        if sys.platform == "win32":
            while not self._stop.is_set():
                loop.call_soon_threadsafe(self._apply, _read_key_windows())
            return
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                key = sys.stdin.read(1)
                if not key:
                    return
                loop.call_soon_threadsafe(self._apply, key)
        finally:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
