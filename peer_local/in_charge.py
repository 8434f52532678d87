"""What keeps the person in charge around a local peer: profile sync, live control (keys, the 127.0.0.1
endpoint, the real webcam and microphone for take-over) and the session log. Shared by ``avatar local`` and
``avatar demo``."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peer_local.control import ACTIONS, LiveControl
from peer_local.control_http import ControlServer
from peer_local.control_keys import KeyCommands
from peer_local.control_secret import DEFAULT_CONTROL_PORT
from peer_local.person_sources import MicPassthrough, WebcamSource
from peer_local.profile.store import Profile
from peer_local.profile.sync import ProfileSender
from peer_local.service import LocalPeer
from peer_local.session_log import SessionLog, default_log_path
from peer_local.settings import LocalSettings
from peer_local.sinks.switch import SourceSwitch
from peer_local.transcript_sender import TranscriptSender

logger = logging.getLogger(__name__)


def control_banner(server: ControlServer, show_secret: bool) -> str:
    """How to use the control endpoint; the secret itself only where ``show_secret`` (a terminal, never a log)."""
    if show_secret:
        header = f"'Authorization: Bearer {server.secret}' (this run's secret, also in {server.secret_file}"
    else:
        header = f"'Authorization: Bearer SECRET' (SECRET: the contents of {server.secret_file}"
    port = f" --port {server.port}" if server.port != DEFAULT_CONTROL_PORT else ""
    return (
        f"control endpoint for hotkey tools: POST {server.url}/ACTION with {header}, readable by you only), or run "
        f"`avatar control ACTION{port}`; ACTION: {', '.join(ACTIONS)}; GET {server.url} for the state"
    )


class PersonInCharge:
    """Build before the peer runs (a broken profile fails here, clearly); ``start``/``stop`` around the run."""

    def __init__(
        self,
        settings: LocalSettings,
        peer: LocalPeer,
        switch: SourceSwitch,
        sender: TranscriptSender,
        show: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.show = show  # the terminal: where the control secret may appear (never the log)
        self.switch = switch
        self.profile_sender = ProfileSender(peer, Profile.open(settings.profile)) if settings.profile else None
        self.control = LiveControl(peer, switch, settings.answer)
        self.session_log: SessionLog | None = None
        if (settings.session_log or "").lower() != "none":
            self.session_log = SessionLog(Path(settings.session_log) if settings.session_log else default_log_path())
            sender.transcript_sent.connect(self.session_log.heard)
            peer.message_received.connect(self.session_log.on_message)
            logger.info("session log: %s", self.session_log.path)
        self._started: list[Any] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.settings.control_port:
            server = ControlServer(self.control, self.settings.control_port)
            try:
                await server.start()
                self._started.append(server)
                self._show_control(server)
            except OSError as exc:
                logger.warning("no control endpoint on port %d: %s", self.settings.control_port, exc)
        keys = KeyCommands(self.control)
        if keys.start(loop):
            self._started.append(keys)
        # the person's own devices run all along, so a take-over switches on the next frame
        mic = MicPassthrough(self.settings.person_mic, self.switch.person_audio)
        if self._start_source(mic, loop, "your microphone"):
            self.control.person_mic_ready = True
        if self.settings.webcam is not None:
            webcam = WebcamSource(self.settings.webcam, self.switch.person_video, self.settings.camera_fps)
            if self._start_source(webcam, loop, "your webcam"):
                self.switch.person_has_video = True
        else:
            logger.info("take-over keeps the avatar's idle picture on the camera (give --webcam N for yours)")

    def _show_control(self, server: ControlServer) -> None:
        logger.info("control endpoint: %s (secret in %s)", server.url, server.secret_file)
        self.show(control_banner(server, show_secret=sys.stdout.isatty()))  # a redirected stdout is a log file

    def _start_source(self, source: MicPassthrough | WebcamSource, loop: asyncio.AbstractEventLoop, what: str) -> bool:
        try:
            source.start(loop)
        except Exception as exc:  # a missing device must not stop the clone
            logger.warning("take-over cannot use %s: %s", what, exc)
            return False
        self._started.append(source)
        return True

    async def stop(self) -> None:
        for part in reversed(self._started):
            result = part.stop()
            if asyncio.iscoroutine(result):
                await result
        self._started.clear()
        if self.session_log is not None:
            self.session_log.close()
