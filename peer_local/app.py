"""The laptop's one composition root: every part of the local side, wired once from :class:`LocalSettings`.

``avatar local`` (peer_local/runner.py) runs it on its own; ``avatar demo`` (avatar/demo.py) runs it beside
signaling and the avatar in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from media.protocol import Decision, Metrics
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input import AudioInputError, open_audio_source
from peer_local.in_charge import PersonInCharge
from peer_local.listener import HeardTurn, Listener
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.sinks import MediaSink
from peer_local.sinks.setup import build_sinks
from peer_local.sinks.switch import SourceSwitch
from peer_local.transcript_sender import TranscriptSender
from peer_local.turn_latency import SpeechOnsetProbe, turn_latency_report

logger = logging.getLogger(__name__)


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
    return Listener(source, transcriber, turn_settings=settings.turn_settings(), turn_model=turn_model)


class LocalApp:
    """Sinks behind the take-over switch, the peer, the ears and the transcript sender, and what keeps the person in
    charge (live control, keys, the control endpoint, profile sync, the session log). ``probe``, when given, times
    each answer's arrival (``avatar demo --metrics-json``, benchmarks).

    Build it before running (a broken profile or a missing ``--input`` fails here, clearly); ``start`` before the
    peer runs and ``close`` after."""

    def __init__(
        self,
        settings: LocalSettings,
        explicit_input: bool = True,
        explicit_devices: frozenset[str] = frozenset(),
        probe: SpeechOnsetProbe | None = None,
        show: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.sinks: list[MediaSink] = build_sinks(settings, explicit_devices)
        self.switch = SourceSwitch(self.sinks)  # the avatar, or the person on take-over
        self.probe = probe
        self.peer = LocalPeer(settings, [self.switch] if probe is None else [self.switch, probe])
        if probe is not None:
            self.peer.message_received.connect(probe.on_message)
        self.sender = TranscriptSender(
            self.peer,
            settings.half_duplex,
            answering=self._answering,
            echo_tail_s=settings.half_duplex_tail_ms / 1000,
            early=settings.early_answer,
        )
        self.listener = build_listener(settings, explicit_input)
        if self.listener is not None:
            self.sender.attach(self.listener)
        self.in_charge = PersonInCharge(settings, self.peer, self.switch, self.sender, show)

    def _answering(self) -> bool:
        return self.in_charge.control.answering

    async def start(self) -> None:
        await self.in_charge.start()

    async def listen(self, ready: asyncio.Event | None = None) -> list[HeardTurn]:
        """Hear the input to its end (once ``ready`` is set, if given); the heard turns."""
        if self.listener is None:
            return []
        if ready is not None:
            await ready.wait()
        turns = await self.listener.run()
        logger.info("input ended after %d turns", len(turns))
        return turns

    async def close(self) -> None:
        await self.in_charge.stop()
        await self.switch.close()
        if self.probe is not None:
            await self.probe.close()

    def turn_metrics(self) -> dict[str, Any]:
        """Per heard turn: end of speech -> the answer's first audio here (needs ``probe``), the avatar's stage
        metrics and decisions, and the end-of-turn model's verdicts."""
        assert self.probe is not None, "turn metrics need a SpeechOnsetProbe"
        received = self.sender.received
        metrics = [m for m in received if isinstance(m, Metrics)]
        listener = self.listener
        report = turn_latency_report(
            listener.turns if listener else [], listener.origin if listener else None, self.probe, metrics
        )
        report["decisions"] = [m.model_dump(exclude={"v", "type"}) for m in received if isinstance(m, Decision)]
        report["early_transcripts"] = {
            "sent": [m.turn_id for m in self.sender.early_sent],
            "retracted": list(self.sender.retracted),
        }
        if listener is not None:
            report["end_of_turn_verdicts"] = [[round(t, 3), round(p, 3)] for t, p in listener.verdicts]
        return report
