"""Turn detection: VAD probabilities in, ``speech-start`` at once and the whole turn at its end."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from peer_local.vad import VAD_CHUNK, VAD_RATE


@dataclass(frozen=True)
class TurnSettings:
    threshold: float = 0.5  # speech probability that opens speech
    release: float = 0.35  # probability under which a chunk counts as silence (hysteresis)
    min_speech_s: float = 0.25  # shorter bursts are not turns (coughs, clicks)
    end_silence_s: float = 0.32  # silence that ends a turn (silence-only detection)
    # a learned end-of-turn model (smart-turn): after pause_s of silence it judges the turn; complete ends it,
    # otherwise the turn ends only after max_end_silence_s. None: silence only.
    pause_s: float | None = None
    max_end_silence_s: float = 2.0
    # a turn with less voiced speech than this is not judged by the model: it ends on ``end_silence_s`` as with
    # silence alone (a name said alone, "Alex," before its question, sounds complete to the model)
    min_judged_speech_s: float = 1.0
    # after this much silence the turn so far is offered for transcription while the end of turn is still being
    # confirmed (kept if no more speech comes); None: off
    early_asr_s: float | None = None
    pre_roll_s: float = 0.2  # audio kept from before speech was detected
    max_turn_s: float = 30.0  # a turn this long is cut and sent


@dataclass(frozen=True)
class SpeechStarted:
    t_s: float


@dataclass(frozen=True)
class SpeechConfirmed:
    """Speech has lasted ``min_speech_s``: a remark, not a click or a cough."""

    t_s: float


@dataclass(frozen=True)
class PauseDetected:
    """Speech paused for ``pause_s``: ``audio`` (the turn so far, 16 kHz) for an end-of-turn model to judge."""

    audio: np.ndarray
    t_s: float


@dataclass(frozen=True)
class SilenceStarted:
    """Speech stopped at ``voice_end_s`` and silence has lasted ``early_asr_s``: ``audio`` is the turn so far,
    to transcribe while the end of the turn is being confirmed."""

    audio: np.ndarray
    voice_end_s: float
    start_s: float


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back at ``t_s`` after the turn so far was offered for early transcription (that one misses
    the end now)."""

    t_s: float


@dataclass(frozen=True)
class TurnEnded:
    """A complete utterance: ``audio`` (16 kHz float32, with pre-roll) spoken from ``start_s`` to ``end_s``;
    ``detected_s`` is when the end-of-turn silence had elapsed."""

    audio: np.ndarray
    start_s: float
    end_s: float
    detected_s: float


@dataclass(frozen=True)
class SpeechDiscarded:
    """Speech started but was too short to be a turn."""

    start_s: float


TurnEvent = (
    SpeechStarted | SpeechConfirmed | SilenceStarted | SpeechResumed | PauseDetected | TurnEnded | SpeechDiscarded
)


class EndOfTurnDetector:
    """A small state machine over 32 ms chunks (time given by the caller's source clock)."""

    def __init__(self, settings: TurnSettings | None = None) -> None:
        self.settings = settings or TurnSettings()
        chunk_s = VAD_CHUNK / VAD_RATE
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, round(self.settings.pre_roll_s / chunk_s)))
        self._speech: list[np.ndarray] = []
        self._in_speech = False
        self._start_s = 0.0
        self._last_voice_end_s = 0.0
        self._voiced_s = 0.0
        self._pause_judged = False  # this pause went to the end-of-turn model already
        self._early_offered = False  # this pause's audio went to early transcription already

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def push(self, chunk: np.ndarray, t_s: float, probability: float) -> list[TurnEvent]:
        s = self.settings
        chunk_s = chunk.size / VAD_RATE
        events: list[TurnEvent] = []
        if not self._in_speech:
            if probability >= s.threshold:
                self._in_speech = True
                self._start_s = t_s
                self._speech = [*self._pre_roll, chunk]
                self._pre_roll.clear()
                self._voiced_s = chunk_s
                self._last_voice_end_s = t_s + chunk_s
                self._pause_judged = False
                self._early_offered = False
                events.append(SpeechStarted(t_s))
            else:
                self._pre_roll.append(chunk)
            return events
        self._speech.append(chunk)
        if probability >= s.release:
            confirmed = self._voiced_s >= s.min_speech_s
            self._voiced_s += chunk_s
            self._last_voice_end_s = t_s + chunk_s
            if not confirmed and self._voiced_s >= s.min_speech_s:
                events.append(SpeechConfirmed(t_s + chunk_s))
            self._pause_judged = False
            if self._early_offered:
                self._early_offered = False
                events.append(SpeechResumed(t_s))
        silence = t_s + chunk_s - self._last_voice_end_s
        too_long = t_s + chunk_s - self._start_s >= s.max_turn_s
        judged = s.pause_s is not None and self._voiced_s >= s.min_judged_speech_s
        end_silence_s = s.max_end_silence_s if judged else s.end_silence_s
        if silence >= end_silence_s or too_long:
            events.append(self._close(t_s + chunk_s))
            return events
        if s.early_asr_s is not None and silence >= s.early_asr_s and not self._early_offered:
            self._early_offered = True
            if self._voiced_s >= s.min_speech_s:
                events.append(SilenceStarted(np.concatenate(self._speech), self._last_voice_end_s, self._start_s))
        if judged and s.pause_s is not None and silence >= s.pause_s and not self._pause_judged:
            self._pause_judged = True
            if self._voiced_s >= s.min_speech_s:
                events.append(PauseDetected(np.concatenate(self._speech), t_s + chunk_s))
        return events

    def judged(self, complete: bool, now_s: float) -> list[TurnEvent]:
        """The end-of-turn model's verdict on the last :class:`PauseDetected`: complete ends the turn now."""
        if complete and self._in_speech and self._pause_judged:
            return [self._close(now_s)]
        return []

    def _close(self, now_s: float) -> TurnEvent:
        self._in_speech = False
        audio = np.concatenate(self._speech)
        self._speech = []
        if self._voiced_s < self.settings.min_speech_s:
            return SpeechDiscarded(self._start_s)
        # drop the trailing silence beyond a short tail: the ASR does not need it
        keep = int((self._last_voice_end_s - self._start_s + self.settings.pre_roll_s + 0.1) * VAD_RATE)
        return TurnEnded(audio[:keep], self._start_s, self._last_voice_end_s, now_s)

    def flush(self, now_s: float) -> list[TurnEvent]:
        """End of input: close an open turn."""
        return [self._close(now_s)] if self._in_speech else []
