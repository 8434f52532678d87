"""Building the configured LLM, TTS and face backends (imports stay lazy: only what is chosen loads)."""

from __future__ import annotations

import re
from pathlib import Path

import platformdirs

from peer_remote.conversation import DEFAULT_PERSONA, PersonaPrompt
from peer_remote.face.base import FaceAnimator
from peer_remote.llm.base import LanguageModel, LlmError
from peer_remote.settings import SpeakingSettings
from peer_remote.tts.base import Synthesizer, TtsError


def build_llm(settings: SpeakingSettings) -> LanguageModel:
    if settings.llm == "openai":
        from peer_remote.llm.openai_compat import OpenAIChatModel

        return OpenAIChatModel.from_settings(settings.openai)
    from peer_remote.llm.embedded import LlamaCppModel

    return LlamaCppModel.from_settings(settings.embedded)


def build_persona(settings: SpeakingSettings, model_name: str) -> PersonaPrompt:
    text = settings.persona or DEFAULT_PERSONA
    if settings.persona_file is not None:
        if not settings.persona_file.is_file():
            raise LlmError(f"persona file not found: {settings.persona_file}")
        text = settings.persona_file.read_text(encoding="utf-8").strip() or DEFAULT_PERSONA
    fold = settings.fold_system_prompt
    if fold is None:
        fold = PersonaPrompt.needs_folding(model_name)
    return PersonaPrompt(text=text, fold_system=fold, names=persona_names(text, settings.names))


def persona_names(text: str, given: list[str]) -> tuple[str, ...]:
    """The names given, or else the one the prompt introduces ("You are Alex, ...")."""
    if given:
        return tuple(given)
    found = re.match(r"\s*You are (\w+)", text)
    return (found.group(1),) if found else ("Alex",)


def build_tts(settings: SpeakingSettings) -> Synthesizer:
    if settings.tts == "fish":
        from peer_remote.tts.fish import FishSpeechSynthesizer

        return FishSpeechSynthesizer.from_settings(settings.fish)
    if settings.fish.reference is not None:
        raise TtsError("a reference voice needs --tts fish (Piper speaks only its own voice)")
    from peer_remote.tts.piper_voice import PiperSynthesizer

    return PiperSynthesizer.from_settings(settings.piper)


def profile_cache_dir(settings: SpeakingSettings) -> Path:
    """Where received profile files are cached by hash."""
    return settings.profile_cache_dir or Path(platformdirs.user_cache_dir("avatar")) / "profiles"


def face_cache_dir(settings: SpeakingSettings) -> Path:
    return settings.face_cache_dir or Path(platformdirs.user_cache_dir("avatar")) / "faces"


def build_face(settings: SpeakingSettings, width: int, height: int) -> FaceAnimator:
    if settings.face == "musetalk":
        from peer_remote.face.musetalk import MuseTalkAnimator

        return MuseTalkAnimator.from_settings(
            settings.musetalk, settings.face_image, width, height, face_cache_dir(settings)
        )
    from peer_remote.face.portrait import PortraitAnimator

    return PortraitAnimator(settings.face_image, width, height, cache_dir=face_cache_dir(settings))
