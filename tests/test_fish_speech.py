"""The Fish Speech client against a stand-in for the v1.5.0 server the box runs (tests/fish_speech_stand_in.py).

Guards issue 16's defects 3 (PCM streaming refused with 400; the WAV header must not be played) and 4 (health is
POST only), and keeps the stand-in honest about the upstream behaviours it reproduces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import numpy as np
import pytest

from peer_remote.tts.base import TtsError
from peer_remote.tts.fish import FishReference, FishSpeechSynthesizer, tts_request
from tests.fish_speech_stand_in import FishSpeechStandIn


async def post(url: str, body: Any, content_type: str = "application/msgpack") -> tuple[int, bytes]:
    data = msgpack.packb(body, use_bin_type=True) if content_type == "application/msgpack" else body
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(url, data=data, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.read()


async def test_fish_client_streams_wav_and_never_plays_its_header(fish: FishSpeechStandIn, tmp_path: Path) -> None:
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"RIFF....fake wav bytes")
    (tmp_path / "voice.txt").write_text("This is how I sound.")
    client = FishSpeechSynthesizer(fish.url, FishReference.from_files(clip, tmp_path / "voice.txt"))
    try:
        await client.load()
        blocks = [b async for b in client.synthesize("Hello there.")]
    finally:
        await client.close()
    request = fish.requests[0]
    assert request["text"] == "Hello there." and request["streaming"] is True and request["format"] == "wav"
    assert request["use_memory_cache"] == "on"
    assert request["normalize"] is False  # v1.5.0 normalises by turning digits into Chinese numerals
    assert request["references"] == [{"audio": clip.read_bytes(), "text": "This is how I sound."}]
    audio = np.concatenate(blocks)
    expected = np.frombuffer(fish.pcm("Hello there."), dtype="<i2")
    assert audio.size == expected.size  # not one sample more: the 44 header bytes were not played
    assert np.array_equal(audio, expected)  # no byte lost or shifted across reads


async def test_fish_client_checks_health_with_post_as_v1_5_0_serves_it(fish: FishSpeechStandIn) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{fish.url}/v1/health") as response:
        assert response.status == 405 and response.headers["Allow"] == "POST"
    client = FishSpeechSynthesizer(fish.url, None)
    try:
        await client.load()  # raises "not healthy (405)" if it asks with GET
    finally:
        await client.close()


async def test_voices_made_from_a_client_share_its_connections_and_it_closes_them(
    fish: FishSpeechStandIn, tmp_path: Path
) -> None:
    """Each room's clone speaks in its own person's voice through the box's one client: one connection pool, closed
    once by the client that opened it, whichever voices were made from it."""
    clip, text = tmp_path / "voice.wav", tmp_path / "voice.txt"
    clip.write_bytes(b"RIFF....fake wav bytes")
    text.write_text("This is how I sound.")
    shared = FishSpeechSynthesizer(fish.url, None)
    await shared.load()
    voices = [shared.with_reference(clip, text) for _ in range(2)]
    for voice in voices:
        assert [b async for b in voice.synthesize("Hello.")]
        assert voice.connections is shared.connections
        await voice.close()  # a voice made from another closes nothing of the shared pool
    assert not shared.connections.closed
    await shared.close()
    assert shared.connections.closed


async def test_streaming_pcm_is_refused_as_upstream_refuses_it(fish: FishSpeechStandIn) -> None:
    status, body = await post(f"{fish.url}/v1/tts", {**tts_request("Hi.", None), "format": "pcm"})
    assert status == 400 and b"Streaming only supports WAV format" in body


async def test_the_client_request_passes_the_serve_tts_request_schema(fish: FishSpeechStandIn) -> None:
    status, body = await post(f"{fish.url}/v1/tts", tts_request("Hi.", FishReference(b"clip", "words")))
    assert status == 200 and body.startswith(b"RIFF") and body[8:12] == b"WAVE"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"top_p": "0.7"}, "top_p"),  # the sampling floats are strict: a string is refused
        ({"temperature": True}, "temperature"),
        ({"repetition_penalty": 3.0}, "repetition_penalty"),  # bounded 0.9..2.0
        ({"format": "flac"}, "format"),
        ({"use_memory_cache": True}, "use_memory_cache"),  # "on" or "off"
        ({"references": [{"audio": b"x"}]}, "text"),  # each reference needs its transcript
    ],
)
async def test_the_stand_in_refuses_what_serve_tts_request_refuses(
    fish: FishSpeechStandIn, change: dict[str, Any], field: str
) -> None:
    status, body = await post(f"{fish.url}/v1/tts", {**tts_request("Hi.", None), **change})
    assert status == 422 and field.encode() in body


async def test_the_stand_in_ignores_unknown_fields_and_takes_json(fish: FishSpeechStandIn) -> None:
    status, _ = await post(f"{fish.url}/v1/tts", {"text": "Hi.", "streaming": True, "speaker": "me"})
    assert status == 200  # pydantic's default: extra fields ignored; defaults fill the rest
    status, body = await post(f"{fish.url}/v1/tts", b'{"text": "Hi."}', "application/json")
    assert status == 200 and body[:4] == b"RIFF"
    status, _ = await post(f"{fish.url}/v1/tts", b"text=Hi", "text/plain")
    assert status == 415


async def test_fish_client_reports_a_refusal_with_upstreams_message() -> None:
    server = FishSpeechStandIn(max_text_length=10)
    await server.start()
    client = FishSpeechSynthesizer(server.url, None)
    try:
        with pytest.raises(TtsError, match="answered 400: .*Text is too long, max length is 10"):
            _ = [b async for b in client.synthesize("This clause is far too long.")]
    finally:
        await client.close()
        await server.stop()


@pytest.mark.parametrize("break_after", [0, 20, 44, 4_000])
async def test_fish_client_reports_a_stream_the_engine_breaks_off(break_after: int) -> None:
    server = FishSpeechStandIn(break_after=break_after)
    await server.start()
    client = FishSpeechSynthesizer(server.url, None)
    try:
        with pytest.raises(TtsError, match="request failed"):
            _ = [b async for b in client.synthesize("Hi there.")]
    finally:
        await client.close()
        await server.stop()


def test_fish_reference_needs_its_transcript(tmp_path: Path) -> None:
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"x")
    with pytest.raises(TtsError, match="needs its transcript"):
        FishReference.from_files(clip, tmp_path / "missing.txt")
