"""Generated speech for benchmarks and tests: espeak-ng (a Debian package; .ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

SENTENCES = [
    "What time is the meeting with the design team tomorrow?",
    "Please send me the quarterly report before Friday.",
    "Could you tell me more about the new project plan?",
    "I think we should move the launch to next month.",
    "Thank you, that sounds like a very good idea.",
]


def espeak(text: str, path: Path, speed: int = 150, voice: str = "en-us") -> Path:
    """Speak ``text`` into a 22.05 kHz mono WAV (``voice``: an espeak-ng voice, e.g. ``en-us+f3``)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does it)")
    subprocess.run([binary, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, timeout=60)
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return path


def conversation(path: Path, sentences: list[str], gap_s: float = 1.2, lead_s: float = 1.0) -> Path:
    """Sentences separated by silence, in one WAV."""
    parts: list[np.ndarray] = []
    rate = 22_050
    for i, sentence in enumerate(sentences):
        samples, rate = read_wav(espeak(sentence, path.with_name(f"{path.stem}-{i}.wav")))
        parts += [np.zeros(int((lead_s if i == 0 else gap_s) * rate), dtype=np.int16), samples]
    parts.append(np.zeros(int(gap_s * rate), dtype=np.int16))
    return write_wav(path, np.concatenate(parts), rate)
