"""Speech recognition backends behind one interface."""

from peer_local.asr.base import AsrError, AsrResult, Transcriber
from peer_local.asr.whisper import FasterWhisperTranscriber, WhisperSettings

__all__ = ["AsrError", "AsrResult", "FasterWhisperTranscriber", "Transcriber", "WhisperSettings"]
