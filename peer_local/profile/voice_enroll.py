"""``avatar enroll voice``: a clean reference clip of the person reading a passage, checked before it is kept.

Checks, in order, each with a reason the person can act on: clipping (input gain), too little speech, too
much background noise (speech-to-noise ratio from the VAD's speech and non-speech stretches), then the
project's own ASR must hear the passage (word error rate). Leading and trailing silence are trimmed.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peer_local.asr.wer import word_error_rate
from peer_local.profile.store import Profile

logger = logging.getLogger(__name__)

RATE = 16_000
CHUNK = 512  # the VAD's step at 16 kHz (32 ms)
PASSAGE = (
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow. "
    "The rainbow is a division of white light into many beautiful colors. "
    "These take the shape of a long round arch, with its path high above, and its two ends apparently "
    "beyond the horizon. There is, according to legend, a boiling pot of gold at one end."
)
MIN_SPEECH_S = 5.0
MIN_SNR_DB = 15.0
MAX_CLIPPED = 0.001  # share of samples at full scale
MAX_WER = 0.35


class EnrollmentError(ValueError):
    """The recording or picture cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class VoiceReport:
    speech_s: float
    snr_db: float
    clipped: float
    wer: float
    heard: str
    kept_s: float


def speech_mask(samples: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """One bool per 32 ms chunk: the VAD hears speech there."""
    from peer_local.vad import SileroVad

    vad = SileroVad()
    chunks = samples[: samples.size // CHUNK * CHUNK].reshape(-1, CHUNK)
    return np.array([vad(chunk) >= threshold for chunk in chunks], dtype=bool)


def analyse(samples: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """(speech mask, speech seconds, speech-to-noise dB, clipped share) of 16 kHz float32 audio."""
    clipped = float(np.mean(np.abs(samples) >= 0.999)) if samples.size else 0.0
    mask = speech_mask(samples)
    speech_s = float(mask.sum() * CHUNK / RATE)
    chunks = samples[: mask.size * CHUNK].reshape(-1, CHUNK)
    rms = np.sqrt(np.mean(chunks.astype(np.float64) ** 2, axis=1)) if mask.size else np.zeros(0)
    speech_rms = float(np.median(rms[mask])) if mask.any() else 0.0
    noise = rms[~mask]
    noise_rms = float(np.percentile(noise, 50)) if noise.size else 0.0
    snr_db = 120.0 if noise_rms < 1e-6 else 20 * np.log10(max(speech_rms, 1e-9) / noise_rms)
    return mask, speech_s, float(snr_db), clipped


def trim(samples: np.ndarray, mask: np.ndarray, lead_s: float = 0.2, tail_s: float = 0.3) -> np.ndarray:
    spoken = np.flatnonzero(mask)
    start = max(0, spoken[0] * CHUNK - int(lead_s * RATE))
    end = min(samples.size, (spoken[-1] + 1) * CHUNK + int(tail_s * RATE))
    return samples[start:end]


def check_voice(
    samples: np.ndarray, text: str, transcribe: Callable[[np.ndarray], str] | None = None
) -> tuple[np.ndarray, VoiceReport]:
    """The trimmed clip and its report, or :class:`EnrollmentError` with the first problem."""
    if samples.size < RATE:
        raise EnrollmentError("the recording is shorter than a second: record the whole passage")
    mask, speech_s, snr_db, clipped = analyse(samples)
    if clipped > MAX_CLIPPED:
        raise EnrollmentError(
            f"clipping: {clipped:.1%} of the samples hit full scale; lower the microphone gain and record again"
        )
    if speech_s < MIN_SPEECH_S:
        raise EnrollmentError(
            f"too little speech: {speech_s:.1f} s heard (need {MIN_SPEECH_S:.0f} s); read the whole passage aloud"
        )
    if snr_db < MIN_SNR_DB:
        raise EnrollmentError(
            f"too noisy: speech is only {snr_db:.0f} dB above the background (need {MIN_SNR_DB:.0f} dB); "
            "find a quieter room or move closer to the microphone"
        )
    clip = trim(samples, mask)
    heard = (transcribe or whisper_transcribe)(clip)
    wer = word_error_rate(text, heard)
    if wer > MAX_WER:
        raise EnrollmentError(
            f"the recording does not match the text ({wer:.0%} of the words differ; heard: {heard[:120]!r}); "
            "read exactly the passage shown"
        )
    return clip, VoiceReport(
        round(speech_s, 2), round(snr_db, 1), clipped, round(wer, 3), heard, round(clip.size / RATE, 2)
    )


def whisper_transcribe(samples: np.ndarray) -> str:
    from peer_local.asr.whisper import FasterWhisperTranscriber

    transcriber = FasterWhisperTranscriber()
    transcriber.load()
    return transcriber.transcribe(samples).text


def write_wav16(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())


def enroll_voice(profile: Profile, samples: np.ndarray, text: str) -> VoiceReport:
    """Check, trim and keep the clip as the profile's ``voice.wav`` with ``voice.txt``."""
    clip, report = check_voice(samples, text)
    write_wav16(profile.file("voice.wav"), clip)
    profile.file("voice.txt").write_text(text.strip() + "\n", encoding="utf-8")
    profile.write_manifest()
    return report


def level_bar(block: np.ndarray, width: int = 30) -> str:
    """A text level meter for one block: dBFS as a bar, with a clipping mark."""
    peak = float(np.abs(block).max()) if block.size else 0.0
    db = 20 * np.log10(max(peak, 1e-6))
    filled = int(np.clip((db + 60) / 60, 0, 1) * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {db:6.1f} dBFS" + ("  CLIPPING" if peak >= 0.999 else "")


async def record(device: str | None, seconds: float, show: Callable[[str], None]) -> np.ndarray:
    """Record ``seconds`` from a microphone (name, index or None: the default), 16 kHz mono, with a level meter.

    The device runs at its own rate (WASAPI refuses others) and is resampled once, as the listening path does.
    """
    from peer_local.audio_input.base import AudioInputError
    from peer_local.audio_input.device_source import DeviceAudioSource
    from peer_local.audio_input.devices import resolve_input_device

    blocks: list[np.ndarray] = []
    recorded, wanted = 0, int(seconds * RATE)
    try:
        source = DeviceAudioSource(resolve_input_device(device), kind="mic")
        try:
            async for chunk in source.chunks():
                blocks.append(chunk.samples)
                recorded += chunk.samples.size
                if len(blocks) % 5 == 0:  # ten meter updates a second
                    show(level_bar(np.concatenate(blocks[-5:])))
                if recorded >= wanted:
                    break
        finally:
            await source.close()  # the device is released as soon as enough is recorded
    except AudioInputError as exc:
        raise EnrollmentError(f"cannot record: {exc}") from exc
    return np.concatenate(blocks)[:wanted] if blocks else np.zeros(0, dtype=np.float32)
