"""The Fish Speech client and the box's sidecar check against the REAL fish-speech v1.5.0 server, on CPU.

v1.5.0 is not on a registry and its environment (container/fish-speech/uv.lock) brings CUDA torch, so CI cannot
install it: these tests run where both exist, e.g. on a machine with the image's layout::

    git clone --depth 1 --branch v1.5.0 https://github.com/fishaudio/fish-speech /opt/fish-speech
    UV_PROJECT_ENVIRONMENT=/opt/fish-speech/.venv uv sync --frozen --project container/fish-speech
    uv pip install --python /opt/fish-speech/.venv/bin/python --no-deps -e /opt/fish-speech
    FISH_SPEECH_DIR=/opt/fish-speech FISH_SPEECH_PYTHON=/opt/fish-speech/.venv/bin/python \\
        uv run --group dev pytest tests/test_fish_speech_upstream.py

The server is started exactly as the box starts it (peer_remote/box/plan.py fish_spec, under a Sidecar) with tiny
random weights (tests/fish_speech_tiny_checkpoint.py). The same raw requests then go to it and to the stand-in
(tests/fish_speech_stand_in.py), which must answer alike.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import numpy as np
import pytest
import pytest_asyncio

from peer_remote.box.plan import FISH_DECODER, fish_spec
from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import Sidecar
from peer_remote.tts.fish import FishReference, FishSpeechSynthesizer, tts_request
from tests.fish_speech_stand_in import FishSpeechStandIn

FISH_DIR = os.environ.get("FISH_SPEECH_DIR", "")
FISH_PYTHON = os.environ.get("FISH_SPEECH_PYTHON", "")
TINY_CHECKPOINT = Path(__file__).with_name("fish_speech_tiny_checkpoint.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not (FISH_DIR and FISH_PYTHON and Path(FISH_DIR, "tools", "api_server.py").is_file()),
        reason="needs a fish-speech v1.5.0 checkout and its environment (FISH_SPEECH_DIR, FISH_SPEECH_PYTHON)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fish-speech-1.5")
    subprocess.run([FISH_PYTHON, str(TINY_CHECKPOINT), str(path), FISH_DECODER], cwd=FISH_DIR, check=True, timeout=300)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream(checkpoint: Path) -> AsyncIterator[str]:
    port = free_port()
    settings = BoxSettings.load(
        {
            "token": "t",
            "fish_dir": FISH_DIR,
            "fish_python": FISH_PYTHON,
            "fish_checkpoint": checkpoint,
            "fish_port": port,
            "fish_compile": False,  # torch.compile is for the GPU; upstream falls back to CPU without CUDA
            "health_timeout_s": 600,
        }
    )
    sidecar = Sidecar(fish_spec(settings))
    await asyncio.wait_for(sidecar.start(progress_every_s=30), 660)
    yield f"http://127.0.0.1:{port}"
    await sidecar.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stand_in() -> AsyncIterator[str]:
    server = FishSpeechStandIn()
    await server.start()
    yield server.url
    await server.stop()


def reference_clip() -> FishReference:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44_100)
        w.writeframes((np.sin(np.arange(44_100) / 9) * 9_000).astype("<i2").tobytes())
    return FishReference(buffer.getvalue(), "This is how I sound.")


async def test_the_client_speaks_through_the_real_v1_5_0_server(upstream: str) -> None:
    client = FishSpeechSynthesizer(upstream, reference_clip(), timeout_s=300)
    try:
        await client.load()
        blocks = [b async for b in client.synthesize("Hello there, this is a test.")]
    finally:
        await client.close()
    audio = np.concatenate(blocks)
    assert audio.size > 0 and np.abs(audio).max() > 0


async def answer(url: str, method: str, path: str, body: Any, content_type: str) -> tuple[int, Any]:
    data = msgpack.packb(body, use_bin_type=True) if content_type == "application/msgpack" else body
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session,
        session.request(method, url + path, data=data, headers={"Content-Type": content_type}) as response,
    ):
        raw = await response.read()
    if raw[:4] == b"RIFF":
        return response.status, raw[:44]  # the audio itself is random upstream; the header is not
    if response.content_type == "application/json" and raw:
        parsed = json.loads(raw)
        if isinstance(parsed, list):  # pydantic's errors: compare where and what, not the prose
            return response.status, [(e["loc"], e["type"]) for e in parsed]
        return response.status, parsed
    return response.status, raw


REQUESTS = {
    "health GET": ("GET", "/v1/health", None, "application/msgpack"),
    "health POST": ("POST", "/v1/health", None, "application/msgpack"),
    "pcm streaming": ("POST", "/v1/tts", {**tts_request("Hi.", None), "format": "pcm"}, "application/msgpack"),
    "wav streaming": ("POST", "/v1/tts", tts_request("Hi.", None), "application/msgpack"),
    "strict float": ("POST", "/v1/tts", {**tts_request("Hi.", None), "top_p": "0.7"}, "application/msgpack"),
    "unknown field": ("POST", "/v1/tts", {"text": "Hi.", "streaming": True, "x": 1}, "application/msgpack"),
    "json body": ("POST", "/v1/tts", b'{"text": "Hi.", "streaming": true}', "application/json"),
    "form body": ("POST", "/v1/tts", b"text=Hi", "text/plain"),
}


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_the_stand_in_answers_as_the_real_server_does(upstream: str, stand_in: str, name: str) -> None:
    method, path, body, content_type = REQUESTS[name]
    assert await answer(stand_in, method, path, body, content_type) == await answer(
        upstream, method, path, body, content_type
    )
