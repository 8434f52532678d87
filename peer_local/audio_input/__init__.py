"""Where the local peer's ears are: a microphone, the computer's own output, or a file."""

from peer_local.audio_input.base import ASR_RATE, AudioChunk, AudioInputError, AudioSource
from peer_local.audio_input.open import open_audio_source

__all__ = ["ASR_RATE", "AudioChunk", "AudioInputError", "AudioSource", "open_audio_source"]
