"""Reading a streamed WAV body: Fish Speech's stream starts with a 44-byte header that must never be played."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from peer_remote.tts.wav_stream import WavFormat, WavStreamError, WavStreamReader, parse_wav_header

SAMPLES = (np.sin(np.arange(1_001) / 7) * 20_000).astype(np.int16)


def streaming_header(rate: int = 44_100, channels: int = 1, width: int = 2) -> bytes:
    """What Python's wave writes for an empty file: the header a streaming server sends first (sizes 0)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
    return buffer.getvalue()


def read_all(pieces: list[bytes]) -> tuple[np.ndarray, WavStreamReader]:
    reader = WavStreamReader()
    blocks = [reader.feed(piece) for piece in pieces]
    return np.concatenate(blocks), reader


def test_the_streaming_header_is_parsed_not_played() -> None:
    header = streaming_header()
    assert len(header) == 44 and struct.unpack_from("<I", header, 40)[0] == 0  # the data size is a placeholder
    assert parse_wav_header(header) == (WavFormat(1, 1, 44_100, 16), 44)
    audio, reader = read_all([header + SAMPLES.tobytes()])
    assert np.array_equal(audio, SAMPLES) and reader.format == WavFormat(1, 1, 44_100, 16)


@pytest.mark.parametrize("cut", range(1, 50))
def test_a_header_and_samples_split_anywhere_come_out_whole(cut: int) -> None:
    body = streaming_header() + SAMPLES.tobytes()
    pieces = [body[:cut]] + [body[i : i + 7] for i in range(cut, len(body), 7)]  # odd pieces: samples straddle
    audio, reader = read_all(pieces)
    assert np.array_equal(audio, SAMPLES) and reader.pending_bytes == 0


def test_byte_by_byte_is_the_same_as_all_at_once() -> None:
    body = streaming_header() + SAMPLES.tobytes()
    audio, _ = read_all([body[i : i + 1] for i in range(len(body))])
    assert np.array_equal(audio, SAMPLES)


def test_chunks_before_the_data_are_skipped_with_their_padding() -> None:
    header = streaming_header()
    odd_chunk = b"LIST" + struct.pack("<I", 5) + b"abcde" + b"\0"  # odd size: one pad byte
    body = header[:36] + odd_chunk + header[36:] + SAMPLES.tobytes()
    assert parse_wav_header(body) == (WavFormat(1, 1, 44_100, 16), 44 + len(odd_chunk))
    audio, _ = read_all([body[:40], body[40:]])
    assert np.array_equal(audio, SAMPLES)


def test_a_body_that_is_not_wav_is_refused_from_its_first_bytes() -> None:
    with pytest.raises(WavStreamError, match="not a WAV stream"):
        WavStreamReader().feed(b'{"det')
    with pytest.raises(WavStreamError, match="not a WAV stream"):
        parse_wav_header(b"RIFF\0\0\0\0AVI ")


@pytest.mark.parametrize("width", [1, 3, 4])
def test_only_16_bit_pcm_is_read(width: int) -> None:
    with pytest.raises(WavStreamError, match=f"{8 * width}-bit samples; only 16-bit PCM"):
        WavStreamReader().feed(streaming_header(width=width))


def test_a_data_chunk_before_fmt_and_an_endless_header_are_refused() -> None:
    with pytest.raises(WavStreamError, match="no fmt chunk"):
        parse_wav_header(b"RIFF\0\0\0\0WAVEdata\0\0\0\0")
    with pytest.raises(WavStreamError, match="too long"):
        parse_wav_header(b"RIFF\0\0\0\0WAVEJUNK" + struct.pack("<I", 1_000_000))
