"""A streamed WAV body (RIFF header, then PCM of unknown length) turned into int16 sample blocks as it arrives.

Streaming servers write the header before they know the length, so its size fields are placeholders (Fish Speech
writes 0); the reader trusts the ``fmt `` chunk and reads samples until the stream ends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

WAVE_FORMAT_PCM = 1
MAX_HEADER_BYTES = 4_096  # a header longer than this is not a streaming WAV header


class WavStreamError(ValueError):
    """The body is not a 16-bit PCM WAV stream."""


@dataclass(frozen=True)
class WavFormat:
    """What the ``fmt `` chunk says about the samples that follow."""

    audio_format: int
    channels: int
    sample_rate: int
    bits_per_sample: int


def parse_wav_header(data: bytes) -> tuple[WavFormat, int] | None:
    """(format, offset of the first sample) once ``data`` holds the header up to the ``data`` chunk; None while
    more bytes are needed. Raises :class:`WavStreamError` for anything but a RIFF WAVE header."""
    riff, wave = data[:4], data[8:12]
    if riff != b"RIFF"[: len(riff)] or wave != b"WAVE"[: len(wave)]:
        raise WavStreamError(f"not a WAV stream (starts with {data[:12]!r})")
    if len(data) < 12:
        return None
    offset = 12
    wav_format: WavFormat | None = None
    while len(data) >= offset + 8:
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk_id == b"data":
            if wav_format is None:
                raise WavStreamError("WAV stream has no fmt chunk before its data")
            return wav_format, offset + 8
        end = offset + 8 + size + (size & 1)  # chunks are padded to an even length
        if end > MAX_HEADER_BYTES:
            raise WavStreamError(f"WAV header chunk {chunk_id!r} of {size} bytes is too long for a stream")
        if len(data) < end:
            return None
        if chunk_id == b"fmt ":
            if size < 16:
                raise WavStreamError(f"WAV fmt chunk of {size} bytes is too short")
            audio_format, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from(
                "<HHIIHH", data, offset + 8
            )
            wav_format = WavFormat(audio_format, channels, rate, bits)
        offset = end
    if offset + 8 > MAX_HEADER_BYTES:
        raise WavStreamError(f"no data chunk in the first {MAX_HEADER_BYTES} bytes of the WAV stream")
    return None


class WavStreamReader:
    """Feed it the body's pieces in order; it returns int16 samples (interleaved if not mono) as they complete.

    The header may arrive split across pieces, and a sample may straddle two pieces: both are carried over.
    """

    def __init__(self) -> None:
        self.format: WavFormat | None = None
        self._pending = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes held back: an incomplete header, or the first byte of a split sample."""
        return len(self._pending)

    def feed(self, piece: bytes) -> np.ndarray:
        data = self._pending + piece
        if self.format is None:
            parsed = parse_wav_header(data)
            if parsed is None:
                self._pending = data
                return np.zeros(0, dtype=np.int16)
            self.format, start = parsed
            if self.format.audio_format != WAVE_FORMAT_PCM or self.format.bits_per_sample != 16:
                raise WavStreamError(
                    f"WAV stream is format {self.format.audio_format} with {self.format.bits_per_sample}-bit "
                    "samples; only 16-bit PCM is supported"
                )
            data = data[start:]
        usable = len(data) - len(data) % 2
        self._pending = data[usable:]
        return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
