"""``avatar demo``: signaling, the avatar and the local peer in one process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import webbrowser
from pathlib import Path
from typing import Literal

from pydantic import Field

from media.protocol import AnswerPolicy
from media.rtc.rendezvous import wait_event
from peer_local.app import LocalApp
from peer_local.service import LocalPeer
from peer_local.settings import InChargeSettings, LocalSettings
from peer_local.turn_latency import SpeechOnsetProbe
from peer_remote.service import ProducerWrapper, RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.auth import generate_token
from signaling.server import SignalingService, install_stop_signals, join_url
from signaling.settings import SignalingSettings

logger = logging.getLogger(__name__)

DEMO_ROOM = "demo"


class DemoSettings(InChargeSettings):
    """Settings of ``avatar demo``."""

    answer: AnswerPolicy = Field(
        "always",
        description="when the clone answers: always (the demo answers everything said to it), addressed (its name, "
        "a follow-up to its answer, or [a]/answer-this) or never (listen only)",
    )
    port: int = Field(8080, ge=0, le=65535, description="signaling/preview port on 127.0.0.1 (0 picks a free one)")
    input: str = Field("mic", description="what the clone listens to: mic, mic:NAME|INDEX, loopback, a FILE, or none")
    turn_detector: Literal["silence", "smart-turn"] = Field(
        "silence", description="what ends a turn: silence or smart-turn (Smart Turn v3 judges each pause)"
    )
    smart_turn_model: Path | None = Field(
        None, description="the Smart Turn v3 ONNX file", json_schema_extra={"metavar": "ONNX"}
    )
    early_answer: bool = Field(
        True,
        description="the clone prepares its answer on the turn transcribed during the end-of-turn wait and speaks "
        "once the turn has ended",
    )
    face_image: Path | None = Field(None, description="photo of the person (unset: the bundled astronaut portrait)")
    persona: str | None = Field(None, description="system prompt: who the person is and how they speak")
    record: Path | None = Field(
        None, description="record what the local peer receives", json_schema_extra={"metavar": "OUT.mp4"}
    )
    camera: Literal["virtual", "none"] = Field(
        "virtual", description="feed a virtual webcam (skipped with a hint if none is installed) or not"
    )
    mic_out: str | None = Field(
        None,
        description="virtual microphone device or none (unset: VB-Cable on Windows, the avatar_mic null sink on Linux)",
    )
    metrics_json: Path | None = Field(
        None,
        description="write per-turn metrics and end-of-speech -> first-audio figures here on exit",
        json_schema_extra={"metavar": "PATH"},
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        description="stop after S seconds of media",
        json_schema_extra={"flag": "--duration", "metavar": "S"},
    )
    open_browser: bool = Field(
        True,
        description="open the preview page in a browser (--no-browser: do not)",
        json_schema_extra={"flag": "--no-browser"},
    )


class Demo:
    """Everything on one machine: a fresh token, loopback ICE, the embedded backends.

    A benchmark observes it through ``wrap_producer`` (wraps what the avatar streams, e.g. to stamp its frames)
    and ``probe`` (times each answer's arrival at the laptop; by default its first audio only)."""

    def __init__(
        self,
        settings: DemoSettings,
        explicit_devices: frozenset[str] = frozenset(),
        wrap_producer: ProducerWrapper | None = None,
        probe: SpeechOnsetProbe | None = None,
    ) -> None:
        self.settings = settings
        self.explicit_devices = explicit_devices
        self.wrap_producer = wrap_producer
        self.probe = probe or SpeechOnsetProbe()
        self.token = generate_token()
        self.url = ""

    async def run(self) -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        signaling_settings = SignalingSettings.load({"host": "127.0.0.1", "port": self.settings.port})
        async with SignalingService(signaling_settings, self.token) as service:
            peer = {
                "signaling": service.base_url,
                "room": DEMO_ROOM,
                "token": self.token,
                "ice_servers": [],
                "ice_host_addresses": ["127.0.0.1"],
            }
            remote = RemotePeer(
                RemoteSettings.load({**peer, "face_image": self.settings.face_image, "persona": self.settings.persona}),
                wrap_producer=self.wrap_producer,
            )
            local_settings = LocalSettings.load(
                {
                    **peer,
                    "input": self.settings.input,
                    "turn_detector": self.settings.turn_detector,
                    "smart_turn_model": self.settings.smart_turn_model,
                    "early_answer": self.settings.early_answer,
                    "record": self.settings.record,
                    "camera": self.settings.camera,
                    "mic_out": self.settings.mic_out,
                    **self.settings.model_dump(include=set(InChargeSettings.model_fields)),
                }
            )
            local = LocalApp(
                local_settings,
                explicit_input=self.settings.input != "mic",
                explicit_devices=self.explicit_devices,
                probe=self.probe,
            )
            await local.start()
            self.url = join_url(service.base_url, DEMO_ROOM, self.token)
            print(f"avatar demo running. Preview page: {self.url}", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            if self.settings.open_browser:
                with contextlib.suppress(webbrowser.Error):
                    webbrowser.open(self.url)
            tasks = [
                asyncio.create_task(remote.run(stop), name="demo-remote"),
                asyncio.create_task(local.peer.run(stop), name="demo-local"),
            ]
            if local.listener is not None:
                tasks.append(asyncio.create_task(self._listen(local, remote), name="demo-listener"))
            timer = asyncio.create_task(self._stop_after(stop, local.peer), name="demo-timer")
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a peer that ended on its own: surface why
            finally:
                stop.set()
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
                peers, helpers = tasks[:2], tasks[2:]
                for task in helpers:
                    task.cancel()
                try:
                    async with asyncio.timeout(20):
                        await asyncio.gather(*peers, *helpers, return_exceptions=True)
                except TimeoutError:
                    logger.error("the peers did not stop within 20 s")
                await local.close()
                if self.settings.metrics_json is not None:
                    self._write_metrics(local)
        print("avatar demo stopped.", flush=True)

    def _write_metrics(self, local: LocalApp) -> None:
        assert self.settings.metrics_json is not None
        self.settings.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        self.settings.metrics_json.write_text(json.dumps(local.turn_metrics(), indent=2))
        print(f"metrics written to {self.settings.metrics_json}", flush=True)

    async def _listen(self, local: LocalApp, remote: RemotePeer) -> None:
        """Start hearing once the avatar is ready, so nothing said is lost to model loading."""
        await local.listen(ready=remote.connected)
        await asyncio.Event().wait()  # the input ended (a file): keep the demo running until stopped

    async def _stop_after(self, stop: asyncio.Event, local: LocalPeer) -> None:
        if self.settings.duration_s is None:
            return
        session = await local.wait_session()
        await session.media_started.wait()
        await wait_event(stop, self.settings.duration_s)
        stop.set()
