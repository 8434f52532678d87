"""Settings of ``avatar remote``: the process's own, and each backend's, nested under its flat keys."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from media.rtc.codecs import X264Preset
from media.settings import PeerSettings
from peer_remote.answer_policy import AnswerSettings
from peer_remote.face.musetalk_models import MuseTalkSettings
from peer_remote.llm.embedded import EmbeddedLlmSettings
from peer_remote.llm.openai_compat import OpenAiLlmSettings
from peer_remote.tts.fish import FishSettings
from peer_remote.tts.piper_voice import PiperSettings
from signaling.settings import AvatarSettings


class SpeakingSettings(AvatarSettings):
    """The avatar's brain, voice and face: which backend of each, the backends' own settings, the persona."""

    llm: Literal["embedded", "openai"] = Field(
        "embedded", description="embedded llama.cpp or an OpenAI-compatible server such as vLLM"
    )
    embedded: EmbeddedLlmSettings = EmbeddedLlmSettings()
    openai: OpenAiLlmSettings = OpenAiLlmSettings()
    max_tokens: int = Field(96, ge=8, le=1024, description="longest reply in tokens")
    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature")
    context_tokens: int = Field(1024, ge=128, description="conversation memory budget in tokens")
    persona: str | None = Field(None, description="system prompt: who the person is and how they speak")
    persona_file: Path | None = Field(None, description="a text file with the system prompt")
    fold_system_prompt: bool | None = Field(
        None,
        description="put the persona into the first user turn (unset: automatic for Gemma/MamayLM, which reject "
        "a system role)",
    )
    names: list[str] = Field(
        default_factory=list,
        description="a name the clone answers to, repeatable (unset: the persona's name)",
        json_schema_extra={"flag": "--name", "metavar": "NAME"},
    )
    follow_up_s: float = Field(8.0, ge=0, le=120, description="seconds after the clone's answer a question is for it")
    answer_min_words: int = Field(2, ge=1, le=20, description="shorter turns are never answered")
    answer_max_no_speech_prob: float = Field(
        0.6, gt=0, le=1, description="the ASR's no-speech probability above which a turn is not speech"
    )
    answer_min_avg_logprob: float = Field(
        -1.0, le=0, description="the ASR's average log-probability below which a turn is not answered"
    )
    floor_max_hold_s: float = Field(
        10.0, gt=0, le=120, description="seconds an answer waits for someone speaking before it is dropped"
    )
    tts: Literal["piper", "fish"] = Field("piper", description="piper with the bundled voice or a Fish Speech server")
    piper: PiperSettings = PiperSettings()
    fish: FishSettings = FishSettings()
    face: Literal["portrait", "musetalk"] = Field(
        "portrait", description="face animator: portrait (CPU) or musetalk (GPU)"
    )
    musetalk: MuseTalkSettings = MuseTalkSettings()
    face_image: Path | None = Field(None, description="the person's photo (unset: the bundled astronaut portrait)")
    face_cache_dir: Path | None = Field(None, description="where prepared faces are cached (unset: the user cache dir)")
    profile_cache_dir: Path | None = Field(
        None, description="where received profile files are kept by hash (unset: the user cache dir)"
    )

    def answer_settings(self) -> AnswerSettings:
        return AnswerSettings(
            follow_up_s=self.follow_up_s,
            min_words=self.answer_min_words,
            max_no_speech_prob=self.answer_max_no_speech_prob,
            min_avg_logprob=self.answer_min_avg_logprob,
        )


class RemoteSettings(PeerSettings, SpeakingSettings):
    """The avatar side: what it streams and how."""

    source: Literal["avatar", "test-pattern"] = Field(
        "avatar", description="what to stream: the avatar or a measurable test pattern"
    )
    width: int = Field(512, ge=128, le=1920, description="video width")
    height: int = Field(512, ge=64, le=1080, description="video height")
    fps: int = Field(25, ge=1, le=60, description="video frame rate; must divide 48000")
    codec: Literal["VP8", "H264"] = Field("VP8", description="video codec")
    x264_preset: X264Preset = Field("veryfast", description="x264 preset when the codec is H264")
    lookahead_s: float = Field(
        0.2, gt=0, le=2.0, description="seconds rendered ahead of the clock", json_schema_extra={"flag": "--lookahead"}
    )
    max_subscribers: int = Field(8, ge=1, description="subscribers (local peer and viewers) served at once")
    publish_whip: str | None = Field(
        None,
        pattern=r"^https?://",
        description="also publish the stream to this WHIP endpoint (an SFU's, for a large audience): one more "
        "encode, republished with backoff when the SFU restarts",
    )
    publish_token: SecretStr | None = Field(
        None, description="bearer token for --publish-whip (or AVATAR_PUBLISH_TOKEN)"
    )
