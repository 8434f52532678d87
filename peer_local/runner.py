"""Runs ``avatar local``: the local peer with its sinks and ears, an optional time limit and measurement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
from pathlib import Path

from media.measure import TestPatternMeter, summary_ms
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input import AudioInputError, open_audio_source
from peer_local.in_charge import PersonInCharge
from peer_local.listener import Listener
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.sinks import MediaSink
from peer_local.sinks.setup import build_sinks
from peer_local.sinks.switch import SourceSwitch
from peer_local.transcript_sender import TranscriptSender
from signaling.server import install_stop_signals

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 0.2


def build_listener(settings: LocalSettings, explicit_input: bool) -> Listener | None:
    """The listener for ``--input``; None for ``none``, or when the default microphone is missing."""
    if settings.input == "none":
        return None
    try:
        source = open_audio_source(settings.input, realtime=True)
    except AudioInputError as exc:
        if explicit_input:
            raise
        logger.warning("not listening: %s. Pass --input FILE or --input none to silence this.", exc)
        return None
    transcriber = FasterWhisperTranscriber(settings.asr)
    turn_model = None
    if settings.turn_detector == "smart-turn":
        from peer_local.smart_turn import SmartTurnModel

        turn_model = SmartTurnModel(settings.smart_turn_model)
    return Listener(
        source, transcriber, on_turn=lambda turn: None, turn_settings=settings.turn_settings(), turn_model=turn_model
    )


class LocalRun:
    """The local peer plus sinks and listener, stopping on a signal or after ``duration`` seconds of media."""

    def __init__(
        self,
        settings: LocalSettings,
        duration: float | None,
        measure: Path | None,
        warmup_s: float = 2.0,
        explicit_input: bool = True,
        explicit_devices: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self.duration = duration
        self.measure = measure
        self.warmup_s = warmup_s
        self.meter: TestPatternMeter | None = None
        self.rtts_ms: list[float] = []
        self.sinks: list[MediaSink] = build_sinks(settings, explicit_devices)
        self.switch = SourceSwitch(self.sinks)  # the avatar, or the person on take-over
        self.peer = LocalPeer(settings, [self.switch])
        self.sender = TranscriptSender(self.peer, half_duplex=settings.half_duplex)
        self.listener = build_listener(settings, explicit_input)
        if self.listener is not None:
            self.sender.attach(self.listener)
        self.in_charge = PersonInCharge(settings, self.peer, self.switch, self.sender)

    async def main(self) -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await self.in_charge.start()
        peer_task = asyncio.create_task(self.peer.run(stop), name="local-peer")
        helpers: list[asyncio.Task[None]] = []
        if self.duration is not None or self.measure is not None:
            helpers.append(asyncio.create_task(self._timed(stop), name="local-timer"))
        if self.listener is not None:
            helpers.append(asyncio.create_task(self._listen(), name="local-listener"))
        try:
            await peer_task
        finally:
            stop.set()
            for task in helpers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.in_charge.stop()
            await self.switch.close()
            if self.measure is not None:
                self._write_measurement()

    async def _listen(self) -> None:
        assert self.listener is not None
        turns = await self.listener.run()
        logger.info("input ended after %d turns", len(turns))

    async def _timed(self, stop: asyncio.Event) -> None:
        session = await self.peer.wait_session()
        await session.media_started.wait()
        if self.measure is not None:
            await asyncio.sleep(self.warmup_s)
            self.meter = TestPatternMeter()
            self.peer.sinks.append(self.meter)
            session.sinks.append(self.meter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.duration if self.duration is not None else float("inf"))
        while loop.time() < deadline and not stop.is_set():
            endpoint = self.peer.endpoint
            if self.measure is not None and endpoint is not None and endpoint.is_open:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    self.rtts_ms.append(await endpoint.ping(timeout_s=1.0))
            await asyncio.sleep(min(PING_INTERVAL_S, max(0.0, deadline - loop.time())))
        stop.set()

    def _write_measurement(self) -> None:
        assert self.measure is not None
        report: dict[str, object] = self.meter.report() if self.meter else {"error": "no media received"}
        report["datachannel_rtt_ms"] = summary_ms(self.rtts_ms)
        if self.rtts_ms:
            report["datachannel_rtt_ms_mean"] = round(statistics.fmean(self.rtts_ms), 2)
        self.measure.parent.mkdir(parents=True, exist_ok=True)
        self.measure.write_text(json.dumps(report, indent=2))
        logger.info("measurement written to %s", self.measure)
