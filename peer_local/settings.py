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

    input: str = Field(
        "mic", description="what to listen to: mic, mic:NAME|INDEX, loopback, an audio/video FILE, or none"
    )
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="speech probability that starts speech")
    min_speech_ms: int = Field(250, ge=0, description="shortest speech that counts as a turn")
    end_silence_ms: int = Field(320, ge=100, le=5000, description="silence that ends a turn")
    turn_detector: Literal["silence", "smart-turn"] = Field(
        "silence",
        description="what ends a turn: silence (--end-silence-ms) or smart-turn (Smart Turn v3 judges each pause: "
        "complete ends the turn, a pause mid-sentence waits up to --smart-turn-max-wait-ms)",
    )
    smart_turn_model: Path | None = Field(
        None,
        description="smart-turn-v3.2-cpu.onnx (unset: the one inside an installed pipecat-ai)",
        json_schema_extra={"metavar": "ONNX"},
    )
    smart_turn_pause_ms: int = Field(200, ge=64, le=2000, description="silence after which Smart Turn judges the turn")
    smart_turn_max_wait_ms: int = Field(
        2000, ge=200, le=10000, description="an incomplete turn (as Smart Turn judges it) still ends after this"
    )
    smart_turn_min_speech_ms: int = Field(
        1000,
        ge=0,
        le=10000,
        description="a turn with less speech than this is not judged by Smart Turn: it ends on --end-silence-ms "
        "(a name said alone sounds complete to the model)",
    )
    pre_roll_ms: int = Field(200, ge=0, le=2000, description="audio kept from before speech is detected")
    early_asr_ms: int = Field(
        32,
        ge=0,
        le=2000,
        description="silence after which the turn so far is transcribed during the end-of-turn wait (0: off)",
    )
    early_answer: bool = Field(
        True,
        description="send the turn transcribed during the end-of-turn wait (--early-asr-ms) to the avatar at once: "
        "it prepares its answer during the wait and speaks only once the turn has ended",
    )
    asr: WhisperSettings = WhisperSettings()
    half_duplex: bool = Field(False, description="ignore the input while the avatar speaks (echo guard)")
    half_duplex_tail_ms: int = Field(
        400, ge=0, le=3000, description="with --half-duplex, the input is still ignored this long after (its echo)"
    )

    def turn_settings(self) -> TurnSettings:
        return TurnSettings(
            threshold=self.vad_threshold,
            release=max(0.05, self.vad_threshold - 0.15),
            min_speech_s=self.min_speech_ms / 1000,
            end_silence_s=self.end_silence_ms / 1000,
            pre_roll_s=self.pre_roll_ms / 1000,
            pause_s=self.smart_turn_pause_ms / 1000 if self.turn_detector == "smart-turn" else None,
            max_end_silence_s=self.smart_turn_max_wait_ms / 1000,
            min_judged_speech_s=self.smart_turn_min_speech_ms / 1000,
            early_asr_s=self.early_asr_ms / 1000 if self.early_asr_ms else None,
        )


class InChargeSettings(AvatarSettings):
    """How the person stays in charge: their profile, live control, the session log (``avatar local`` and
    ``avatar demo``)."""

    profile: str | None = Field(None, description="the person's profile (name or folder) to sync to the avatar")
    control_port: int = Field(
        DEFAULT_CONTROL_PORT,
        ge=0,
        le=65535,
        description="127.0.0.1 port of the control endpoint for hotkey tools (0: off). Every request needs "
        "'Authorization: Bearer SECRET', SECRET being this run's secret from the file named at start (readable by "
        "you only; `avatar control ACTION` sends it for you)",
    )
    webcam: int | None = Field(None, description="real webcam index put on the virtual camera on take-over")
    person_mic: str | None = Field(
        None,
        description="your real microphone, put on the virtual microphone on take-over (unset: the default input)",
        json_schema_extra={"metavar": "NAME|INDEX"},
    )
    session_log: str | None = Field(
        None, description="session log (JSONL) path, or none (unset: under the user data dir)"
    )
    answer: AnswerPolicy = Field(
        "addressed",
        description="when the clone answers: always, addressed (its name, a follow-up to its answer, or "
        "[a]/answer-this) or never (listen only)",
    )


class LocalSettings(PeerSettings, ListeningSettings, InChargeSettings):
    """The laptop side: what it hears, and what it does with the avatar's audio and video."""

    record: Path | None = Field(
        None, description="record the received stream to an MP4 file", json_schema_extra={"metavar": "OUT.mp4"}
    )
    camera: Literal["virtual", "none"] = Field(
        "virtual", description="feed a virtual webcam (skipped with a hint if none is installed) or not"
    )
    camera_device: str | None = Field(
        None, description="virtual camera device (e.g. /dev/video10; unset: the backend's own)"
    )
    camera_width: int = Field(
        1280, ge=160, le=3840, description="virtual camera width (the square avatar sits on a background)"
    )
    camera_height: int = Field(720, ge=120, le=2160, description="virtual camera height")
    camera_fps: int = Field(25, ge=5, le=60, description="virtual camera frame rate")
    mirror: bool = Field(False, description="mirror the virtual camera image")
    mic_out: str | None = Field(
        None,
        description="virtual microphone output device, or none (unset: 'CABLE Input (VB-Audio Virtual Cable)' on "
        "Windows, the avatar_mic null sink on Linux)",
    )
    codec: Literal["VP8", "H264"] | None = Field(
        None, description="ask for this video codec (unset: the remote's choice)"
    )
    answer_timeout_s: float = Field(10.0, gt=0, description="seconds the avatar may take to answer an offer")
    media_timeout_s: float = Field(
        3.0,
        gt=0,
        description="seconds without a frame of either kind that end the session (a frozen or vanished avatar)",
    )
    reconnect_min_s: float = Field(0.25, gt=0, description="first wait before reconnecting")
    reconnect_max_s: float = Field(5.0, gt=0, description="longest wait between reconnection attempts")
