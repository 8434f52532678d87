"""Text-to-speech backends behind one interface."""

from peer_remote.tts.base import Synthesizer, TtsError

__all__ = ["Synthesizer", "TtsError"]
