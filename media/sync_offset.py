"""A/V offset read from output media: test-pattern flash onsets against beep onsets, and a speaking face's
mouth darkness against the audio's energy. Used by ``avatar bench sync`` and by the box's smoke test.

Sign: offset = video time - audio time. Positive: the picture is late (the sound comes first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from media.frames import AUDIO_RATE
from media.profile.face_geometry import FaceGeometry, frame_geometry
from media.test_pattern import STAMP_ROWS, read_stamp, stamp_block

FLASH_LUMA = 200.0  # the test pattern's flash is white below the stamp rows; its bars average about 100
BEEP_LEVEL = 0.15  # of full scale; the beep is 0.5
QUIET_S = 0.3  # a beep onset follows at least this much near-silence
BEEP_BODY_S = 0.06  # the beep lasts 80 ms
PAIR_WINDOW_S = 0.4  # a flash and a beep further apart than this are not one pair (they repeat every second)


def below_stamp_luma(luma: np.ndarray) -> float:
    """Mean brightness of a test-pattern frame under its stamp rows (where the flash is painted)."""
    top = STAMP_ROWS * stamp_block(luma.shape[1])
    return float(luma[top:].mean())


def flash_onsets(
    times: Sequence[float],
    brightness: Sequence[float],
    first_of_flash: Sequence[bool | None] | None = None,
    level: float = FLASH_LUMA,
) -> list[float]:
    """Times of the frames where the picture turns white (bright after not bright). ``first_of_flash``: per
    frame, whether its stamp says it is the flash's first frame (None: no stamp read); an onset on a later
    frame (the first was lost on the way) is no measure of sync and is left out."""
    onsets = []
    was_bright = True  # a recording that starts inside a flash has no measurable onset there
    for i, (at, value) in enumerate(zip(times, brightness, strict=True)):
        bright = value >= level
        if bright and not was_bright and (first_of_flash is None or first_of_flash[i] is not False):
            onsets.append(float(at))
        was_bright = bright
    return onsets


def starts_a_flash(luma: np.ndarray, fps: int) -> bool | None:
    """Whether a test-pattern frame's stamp says it is the first frame of a flash (None without a stamp)."""
    stamp = read_stamp(luma)
    return None if stamp is None else stamp.index % fps == 0


def beep_onsets(samples: np.ndarray, start: float, rate: int = AUDIO_RATE, level: float = BEEP_LEVEL) -> list[float]:
    """Times of the first loud sample after at least ``QUIET_S`` of near-silence (``start``: time of sample 0)."""
    is_loud = np.abs(samples.astype(np.int32)) > level * 32767
    loud = np.flatnonzero(is_loud)
    if loud.size == 0:
        return []
    gaps = np.diff(loud, prepend=-(10**9))
    body = int(BEEP_BODY_S * rate)
    # a beep is loud for most of its body: a click (a glitch of a starved sender) is not
    return [start + int(i) / rate for i in loud[gaps > QUIET_S * rate] if is_loud[i : i + body].mean() >= 0.5]


def paired_offsets(flashes: Sequence[float], beeps: Sequence[float], window: float = PAIR_WINDOW_S) -> list[float]:
    """For each flash, the nearest beep within ``window``: flash time - beep time (seconds)."""
    return [offset for _, offset in flash_beep_pairs(flashes, beeps, window)]


def flash_beep_pairs(
    flashes: Sequence[float], beeps: Sequence[float], window: float = PAIR_WINDOW_S
) -> list[tuple[float, float]]:
    """``(flash time, flash time - nearest beep time)`` for each flash with a beep within ``window``."""
    if not beeps:
        return []
    sorted_beeps = np.sort(np.asarray(beeps, dtype=float))
    pairs = []
    for flash in flashes:
        i = int(np.searchsorted(sorted_beeps, flash))
        near = [sorted_beeps[j] for j in (i - 1, i) if 0 <= j < sorted_beeps.size]
        beep = min(near, key=lambda b: abs(b - flash))
        if abs(beep - flash) <= window:
            pairs.append((float(flash), float(flash - beep)))
    return pairs


def mouth_darkness(luma: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """How dark the mouth box ``(x, y, w, h)`` is (an open mouth shows its dark inside)."""
    x, y, w, h = box
    return float(255.0 - luma[y : y + h, x : x + w].mean())


@dataclass(frozen=True)
class MouthEnergyFit:
    """The shift of the video that best matches mouth darkness to audio energy."""

    offset_s: float  # video time - audio time, as for the test pattern
    correlation: float  # Pearson r at that shift
    frames: int


VOICED_BAND_HZ = (80.0, 1000.0)  # vowels open the mouth; fricatives (s, f: loud above 3 kHz) close it


def voiced_band(samples: np.ndarray, rate: int = AUDIO_RATE) -> np.ndarray:
    """The audio limited to the band where voiced speech has its energy (an FFT mask over the whole clip)."""
    spectrum = np.fft.rfft(samples.astype(np.float64))
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    spectrum[(freqs < VOICED_BAND_HZ[0]) | (freqs > VOICED_BAND_HZ[1])] = 0.0
    return np.fft.irfft(spectrum, n=samples.size)


def mouth_energy_offset(
    frame_times: Sequence[float],
    darkness: Sequence[float],
    samples: np.ndarray,
    audio_start: float,
    fps: float,
    rate: int = AUDIO_RATE,
    max_shift_s: float = 0.4,
    step_s: float = 0.005,
) -> MouthEnergyFit | None:
    """Cross-correlate each frame's mouth darkness with the voiced energy of the frame period it is shown for,
    with the audio shifted in ``step_s`` steps; the best shift is the offset. None without enough speech."""
    times = np.asarray(frame_times, dtype=float)
    dark = np.asarray(darkness, dtype=float)
    if times.size < 10 or float(np.std(dark)) == 0.0:
        return None
    power = voiced_band(samples, rate) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    period = 1.0 / fps
    best: tuple[float, float] | None = None
    for shift in np.arange(-max_shift_s, max_shift_s + step_s / 2, step_s):
        # the sound heard while the frame shown at t is on screen, if the picture is ``-shift`` early
        first = np.round((times + shift - audio_start) * rate).astype(np.int64)
        last = first + int(round(period * rate))
        valid = (first >= 0) & (last < cumulative.size)
        if valid.sum() < 10:
            continue
        energy = np.sqrt((cumulative[last[valid]] - cumulative[first[valid]]) / (last[valid] - first[valid]))
        level = np.log10(energy + 1.0)
        if float(np.std(level)) == 0.0:
            continue
        r = float(np.corrcoef(dark[valid], level)[0, 1])
        if best is None or r > best[1]:
            best = (float(shift), r)
    if best is None:
        return None
    # the frame at t shows the sound at t + shift: the picture leads by ``shift``
    return MouthEnergyFit(offset_s=-best[0], correlation=best[1], frames=int(times.size))


def mouth_box(geometry: FaceGeometry) -> tuple[int, int, int, int]:
    """Where an opening mouth shows: the detected mouth, extended down by half its height (the jaw drops)."""
    x, y, w, h = geometry.mouth
    return x, y, w, int(h * 1.5)


def rendered_speech_offset(frames: Sequence[np.ndarray], audio: np.ndarray, fps: float) -> MouthEnergyFit | None:
    """The offset of a face rendered slot by slot from ``audio`` (48 kHz, sample 0 with frame 0): how far its
    mouth runs ahead of (negative) or behind (positive) its own voice. The mouth is found in the first frame."""
    if not frames:
        return None
    box = mouth_box(frame_geometry(frames[0]))
    luma = [frame[..., 0] * 0.299 + frame[..., 1] * 0.587 + frame[..., 2] * 0.114 for frame in frames]
    darkness = [mouth_darkness(y, box) for y in luma]
    return mouth_energy_offset([i / fps for i in range(len(frames))], darkness, audio, 0.0, fps)
