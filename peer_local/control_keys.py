"""Single-key commands on the terminal of ``avatar local``: t take over, h hand back, m mute, s skip, a answer
this, p when to answer (always / addressed / never)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from peer_local.control import LiveControl

logger = logging.getLogger(__name__)

KEYS = {"t": "take-over", "h": "hand-back", "m": "toggle-mute", "s": "skip", "a": "answer-this", "p": "answer-next"}
POLL_S = 0.1  # how often the reader looks at its stop flag between keys


class KeyCommands:
    """Reads keys in a thread (the terminal in cbreak mode, restored on stop) and applies them on the event loop.

    Every state change, whether from a key or from the control endpoint, is shown on the terminal.
    """

    def __init__(self, control: LiveControl, show: Callable[[str], None] = print, stdin: TextIO | None = None) -> None:
        self.control = control
        self.show = show
        self.stdin = stdin or sys.stdin
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved_mode: list[Any] | None = None  # the terminal's mode before cbreak, restored by stop()

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """False (and nothing started) when stdin is not a terminal."""
        if not self.stdin.isatty():
            return False
        self._loop = loop
        if sys.platform != "win32":
            import termios
            import tty

            self._saved_mode = termios.tcgetattr(self.stdin.fileno())
            tty.setcbreak(self.stdin.fileno())  # single keys, no Enter; Ctrl-C still interrupts
        self.show(self.control.describe())
        self.control.changed.connect(self._show_state)
        self._thread = threading.Thread(target=self._run, daemon=True, name="control-keys")
        self._thread.start()
        return True

    def _show_state(self, control: LiveControl) -> None:
        self.show(control.describe())

    def stop(self) -> None:
        """Stop reading and give the terminal back as it was (bounded: the reader polls every 0.1 s)."""
        self._stop.set()
        self.control.changed.disconnect(self._show_state)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._saved_mode is not None:
            import termios

            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.stdin.fileno(), termios.TCSADRAIN, self._saved_mode)
            self._saved_mode = None

    def _apply(self, key: str) -> None:
        action = KEYS.get(key.lower())
        if action is None:
            return
        self.control.act(action)
        if action == "skip":
            self.show("skipped the current answer")
        elif action == "answer-this":
            self.show("asked the clone to answer")

    def _deliver(self, key: str) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed while a key was in flight
            self._loop.call_soon_threadsafe(self._apply, key)

    def _run(self) -> None:
        try:
            if sys.platform == "win32":
                self._run_windows()
            else:
                self._run_posix()
        except Exception:  # a broken terminal must not take the call down
            logger.exception("terminal keys stopped")

    def _run_windows(self) -> None:
        import msvcrt

        windows: Any = msvcrt  # getwch/kbhit exist only on Windows
        while not self._stop.wait(POLL_S):
            while windows.kbhit():
                self._deliver(str(windows.getwch()))

    def _run_posix(self) -> None:
        fd = self.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if not ready:
                continue
            data = os.read(fd, 64)  # raw bytes: two keys typed together both arrive
            if not data:
                return  # end of input
            for key in data.decode("utf-8", "ignore"):
                self._deliver(key)
