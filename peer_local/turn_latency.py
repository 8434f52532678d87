"""End of the person's speech -> the avatar's first audio, measured where it counts: at the local peer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from media.audio import mono_int16
from media.measure import summary_ms
from media.protocol import Metrics
from media.stamping import read_speaking
from media.test_pattern import luma_plane
from peer_local.listener import HeardTurn

ONSET_LEVEL = 1_000  # int16 peak that counts as the avatar speaking
QUIET_S = 0.3


@dataclass
class SpeechOnsetProbe:
    """A sink that notes (monotonic) when the received audio starts after at least ``QUIET_S`` of quiet,
    and, when the avatar stamps its frames (benchmarks), when speaking video starts."""

    onsets: list[float] = field(default_factory=list)
    video_onsets: list[float] = field(default_factory=list)
    read_video: bool = False
    _last_loud: float = 0.0
    _last_speaking_frame: float = 0.0

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        now = time.monotonic()
        if int(np.abs(mono_int16(frame).astype(np.int32)).max()) >= ONSET_LEVEL:
            if now - self._last_loud > QUIET_S:
                self.onsets.append(now)
            self._last_loud = now

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        if not self.read_video:
            return
        now = time.monotonic()
        if read_speaking(luma_plane(frame), now=arrival):
            if now - self._last_speaking_frame > QUIET_S:
                self.video_onsets.append(now)
            self._last_speaking_frame = now

    def on_connection(self, connected: bool) -> None:
        return None

    async def close(self) -> None:
        return None


def turn_latency_report(
    turns: list[HeardTurn], origin: float | None, probe: SpeechOnsetProbe, metrics: list[Metrics]
) -> dict[str, Any]:
    """Per turn: end of speech -> first avatar audio at this peer, plus the avatar's own stage metrics."""
    rows = []
    by_turn = {m.turn_id: m.values for m in metrics if m.turn_id}
    for i, turn in enumerate(turns):
        row: dict[str, Any] = {"turn_id": turn.turn_id, "text": turn.text, "asr_ms": round(turn.asr_ms, 1)}
        if origin is not None:
            end = origin + turn.end_s
            # the answer may begin after the person has started the next question, but not after it ends
            until = origin + turns[i + 1].end_s if i + 1 < len(turns) else float("inf")
            onset = next((t for t in probe.onsets if end < t < until), None)
            if onset is not None:
                row["end_of_speech_to_first_audio_ms"] = round((onset - end) * 1000, 1)
            video = next((t for t in probe.video_onsets if end < t < until), None)
            if video is not None:
                row["end_of_speech_to_first_speaking_video_ms"] = round((video - end) * 1000, 1)
                if onset is not None:
                    row["answer_av_offset_ms"] = round((onset - video) * 1000, 1)
        row["remote"] = by_turn.get(turn.turn_id, {})
        rows.append(row)

    def column(key: str) -> list[float]:
        return [r[key] for r in rows if key in r]

    return {
        "turns": rows,
        "end_of_speech_to_first_audio_ms": summary_ms(column("end_of_speech_to_first_audio_ms")),
        "end_of_speech_to_first_speaking_video_ms": summary_ms(column("end_of_speech_to_first_speaking_video_ms")),
        "answer_av_offset_ms": summary_ms(column("answer_av_offset_ms")),
    }
