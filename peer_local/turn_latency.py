"""End of the person's speech -> the avatar's first audio, measured where it counts: at the local peer.

Each turn's first audio is the first loud frame this peer receives after the avatar announced that turn as
``speaking`` (the remote sends that ``turn`` message with the turn's first audio frame, tagged by its id), so an
answer is credited to the turn it answers, never to whichever turn happened to end before the first sound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from media.audio import mono_int16
from media.measure import summary_ms
from media.protocol import DataMessage, Metrics, Turn
from media.stamping import read_speaking
from media.test_pattern import luma_plane
from peer_local.listener import HeardTurn

ONSET_LEVEL = 1_000  # int16 peak that counts as the avatar speaking
SOUND_GAP_S = 0.3  # loud frames closer than this are one stretch of the avatar's voice
MAX_SOUND_STRETCHES = 10_000


@dataclass
class SpeechOnsetProbe:
    """A sink (and data-channel listener) that notes, per turn id, when the turn's answer starts to arrive:
    its first loud audio frame and, when the avatar stamps its frames (benchmarks), its first speaking video frame."""

    read_video: bool = False
    clock: Callable[[], float] = time.monotonic
    first_audio: dict[str, float] = field(default_factory=dict)
    first_video: dict[str, float] = field(default_factory=dict)
    # stretches of the avatar's voice (monotonic start, end): did it talk over anyone (meeting benchmark)
    sounding: list[list[float]] = field(default_factory=list)
    _audio_for: str | None = None  # the turn announced as speaking whose first audio has not arrived yet
    _video_for: str | None = None

    def on_message(self, message: DataMessage) -> None:
        """``turn`` messages say which turn the next answer audio belongs to."""
        if isinstance(message, Turn) and message.state == "speaking":
            # a newer answer supersedes one that never sounded (cancelled at once)
            self._audio_for = message.turn_id
            self._video_for = message.turn_id if self.read_video else None

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        if int(np.abs(mono_int16(frame).astype(np.int32)).max()) < ONSET_LEVEL:
            return
        now = self.clock()
        if self.sounding and now - self.sounding[-1][1] <= SOUND_GAP_S:
            self.sounding[-1][1] = now
        elif len(self.sounding) < MAX_SOUND_STRETCHES:
            self.sounding.append([now, now])
        if self._audio_for is not None:
            self.first_audio[self._audio_for] = now
            self._audio_for = None

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        if self._video_for is None:
            return
        if read_speaking(luma_plane(frame), now=arrival):
            self.first_video[self._video_for] = self.clock()
            self._video_for = None

    def on_connection(self, connected: bool) -> None:
        return None

    async def close(self) -> None:
        return None


def turn_latency_report(
    turns: list[HeardTurn], origin: float | None, probe: SpeechOnsetProbe, metrics: list[Metrics]
) -> dict[str, Any]:
    """Per turn: end of speech -> its own answer's first audio at this peer, plus the avatar's stage metrics."""
    rows = []
    by_turn = {m.turn_id: m.values for m in metrics if m.turn_id}
    for turn in turns:
        row: dict[str, Any] = {
            "turn_id": turn.turn_id,
            "text": turn.text,
            "start_s": round(turn.start_s, 3),
            "end_s": round(turn.end_s, 3),
            "asr_ms": round(turn.asr_ms, 1),
        }
        if origin is not None:
            end = origin + turn.end_s
            onset = probe.first_audio.get(turn.turn_id)
            if onset is not None:
                row["end_of_speech_to_first_audio_ms"] = round((onset - end) * 1000, 1)
            video = probe.first_video.get(turn.turn_id)
            if video is not None:
                row["end_of_speech_to_first_speaking_video_ms"] = round((video - end) * 1000, 1)
                if onset is not None:
                    row["answer_av_offset_ms"] = round((onset - video) * 1000, 1)
        row["remote"] = by_turn.get(turn.turn_id, {})
        rows.append(row)

    def column(key: str) -> list[float]:
        return [r[key] for r in rows if key in r]

    # the avatar's voice on the listener's clock (seconds since the input's start)
    sounding = (
        [[round(a - origin, 3), round(b - origin + 0.02, 3)] for a, b in probe.sounding] if origin is not None else []
    )
    return {
        "turns": rows,
        "avatar_sounding_s": sounding,
        "end_of_speech_to_first_audio_ms": summary_ms(column("end_of_speech_to_first_audio_ms")),
        "end_of_speech_to_first_speaking_video_ms": summary_ms(column("end_of_speech_to_first_speaking_video_ms")),
        "answer_av_offset_ms": summary_ms(column("answer_av_offset_ms")),
    }
