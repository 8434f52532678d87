"""Settings of ``avatar local``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from media.protocol import AnswerPolicy
from media.settings import PeerSettings
from peer_local.asr.whisper import WhisperSettings
from peer_local.control_secret import DEFAULT_CONTROL_PORT
from peer_local.turns import TurnSettings
from signaling.settings import AvatarSettings


class ListeningSettings(AvatarSettings):
    """How the local peer hears: input, turn detection, ASR."""

    input: str = "mic"  # mic | mic:NAME|INDEX | loopback | FILE | none
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    min_speech_ms: int = Field(250, ge=0)
    end_silence_ms: int = Field(320, ge=100, le=5000)
    turn_detector: Literal["silence", "smart-turn"] = "silence"  # smart-turn: Smart Turn v3 judges each pause
    smart_turn_model: Path | None = None  # default: the ONNX file inside an installed pipecat-ai
    smart_turn_pause_ms: int = Field(200, ge=64, le=2000)  # silence after which Smart Turn judges the turn
    smart_turn_max_wait_ms: int = Field(2000, ge=200, le=10000)  # an "incomplete" turn still ends after this
    pre_roll_ms: int = Field(200, ge=0, le=2000)
    early_asr_ms: int = Field(100, ge=0, le=2000)  # silence after which ASR starts during the end-of-turn wait; 0: off
    asr_model: str = "tiny.en"
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    asr_beam_size: int = Field(5, ge=1, le=10)
    language: str | None = "en"  # "auto" or None to detect
    half_duplex: bool = False
    half_duplex_tail_ms: int = Field(400, ge=0, le=3000)  # half-duplex: input still ignored this long after (echo)

    def turn_settings(self) -> TurnSettings:
        return TurnSettings(
            threshold=self.vad_threshold,
            release=max(0.05, self.vad_threshold - 0.15),
            min_speech_s=self.min_speech_ms / 1000,
            end_silence_s=self.end_silence_ms / 1000,
            pre_roll_s=self.pre_roll_ms / 1000,
            pause_s=self.smart_turn_pause_ms / 1000 if self.turn_detector == "smart-turn" else None,
            max_end_silence_s=self.smart_turn_max_wait_ms / 1000,
            early_asr_s=self.early_asr_ms / 1000 if self.early_asr_ms else None,
        )

    def whisper_settings(self) -> WhisperSettings:
        language = None if self.language in (None, "", "auto") else self.language
        return WhisperSettings(
            model=self.asr_model,
            device=self.asr_device,
            compute_type=self.asr_compute_type,
            beam_size=self.asr_beam_size,
            language=language,
        )


class InChargeSettings(AvatarSettings):
    """How the person stays in charge: their profile, live control, the session log (``avatar local`` and
    ``avatar demo``)."""

    profile: str | None = None  # the person's profile (name or folder) synced to the avatar
    control_port: int = Field(
        DEFAULT_CONTROL_PORT, ge=0, le=65535
    )  # 127.0.0.1 control endpoint for hotkey tools; 0: off
    webcam: int | None = None  # the real webcam shown on take-over (OpenCV index)
    person_mic: str | None = None  # the real microphone heard on take-over: index or part of a name; None: default
    session_log: str | None = None  # JSONL path; default under the user data dir; "none": off
    answer: AnswerPolicy = "addressed"  # when the clone answers: always | addressed (its name, follow-ups) | never


class LocalSettings(PeerSettings, ListeningSettings, InChargeSettings):
    """The laptop side: what it hears, and what it does with the avatar's audio and video."""

    record: Path | None = None
    camera: str = "virtual"  # virtual | none
    camera_device: str | None = None
    camera_width: int = Field(1280, ge=160, le=3840)
    camera_height: int = Field(720, ge=120, le=2160)
    camera_fps: int = Field(25, ge=5, le=60)
    mirror: bool = False
    mic_out: str | None = None  # a device name, "none", or None for the platform default (VB-Cable / avatar_mic)
    codec: Literal["VP8", "H264"] | None = None
    answer_timeout_s: float = Field(10.0, gt=0)
    # no frame of either kind for this long ends the session (a frozen or vanished avatar without a goodbye)
    media_timeout_s: float = Field(3.0, gt=0)
    reconnect_min_s: float = Field(0.25, gt=0)
    reconnect_max_s: float = Field(5.0, gt=0)
