"""Fish Speech's HTTP API (``POST /v1/tts``, msgpack) with the person's reference clip: the production voice.

Written against fish-speech v1.5.0 (the box runs that tag): streaming answers only ``format="wav"`` (anything else
is a 400, tools/server/views.py), and the streamed body is a 44-byte WAV header (tools/inference_engine/utils.py,
``wav_chunk_header``) followed by int16 PCM at the decoder's 44.1 kHz. ``/v1/health`` is registered for POST only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgpack
import numpy as np
from pydantic import Field, SecretStr

from peer_remote.tts.base import TtsError
from peer_remote.tts.wav_stream import WavFormat, WavStreamError, WavStreamReader
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)

FISH_RATE = 44_100  # fish_speech/configs/firefly_gan_vq.yaml, spec_transform.sample_rate
READ_BYTES = 8_820  # 100 ms of 44.1 kHz int16
# v1.5.0 registers the health route with @routes.http.post (tools/server/views.py): a GET gets 405
HEALTH_PATH = "/v1/health"
HEALTH_METHOD = "POST"


@dataclass(frozen=True)
class FishReference:
    """The person's voice: a short clip and its exact transcript (zero-shot cloning)."""

    audio: bytes
    text: str

    @classmethod
    def from_files(cls, audio_path: Path, text_path: Path | None = None, text: str | None = None) -> FishReference:
        if not audio_path.is_file():
            raise TtsError(f"reference voice clip not found: {audio_path}")
        if text is None:
            if text_path is None or not text_path.is_file():
                raise TtsError(f"the reference clip needs its transcript ({text_path or 'no text given'})")
            text = text_path.read_text(encoding="utf-8").strip()
        if not text:
            raise TtsError("the reference transcript is empty")
        return cls(audio=audio_path.read_bytes(), text=text)


def tts_request(text: str, reference: FishReference | None, streaming: bool = True) -> dict[str, object]:
    """The request body Fish Speech's ``ServeTTSRequest`` (tools/schema.py at v1.5.0) expects; streaming is WAV."""
    return {
        "text": text,
        "chunk_length": 200,
        "format": "wav",
        "references": [{"audio": reference.audio, "text": reference.text}] if reference else [],
        "reference_id": None,
        "seed": None,
        "use_memory_cache": "on",
        # v1.5.0's "normalize" is Chinese-only (ChnNormedText in tools/inference_engine/__init__.py): it turns
        # every digit into Chinese numerals ("3 cats" -> "三 cats"), which an English or Ukrainian voice then reads
        "normalize": False,
        "streaming": streaming,
        "max_new_tokens": 1024,
        "top_p": 0.7,
        "repetition_penalty": 1.2,
        "temperature": 0.7,
    }


class FishSettings(SettingsGroup):
    """A Fish Speech API server (``--tts fish``) and the person's reference clip."""

    key_prefix = "fish_"
    keys = {"reference": "voice_reference", "reference_text": "voice_reference_text"}

    url: str = Field(default="http://127.0.0.1:8080", description="fish: Fish Speech API server")
    api_key: SecretStr | None = Field(default=None, description="fish: API key, if the server wants one")
    reference: Path | None = Field(
        default=None, description="fish: the person's reference clip (its transcript in a .txt beside it)"
    )
    reference_text: str | None = Field(default=None, description="fish: the reference clip's exact transcript")


class ServerConnections:
    """One HTTP session (its connection pool) to a Fish Speech server, shared by the synthesizer that opened it and
    every voice made from it (each room's clone on a box), closed once by that first synthesizer."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10.0)
        self._session: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    @property
    def closed(self) -> bool:
        """No connection open (never opened, or closed)."""
        return self._session is None or self._session.closed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class FishSpeechSynthesizer:
    """Streams PCM from a Fish Speech API server as it is generated (the WAV header is read, never played)."""

    def __init__(
        self,
        url: str,
        reference: FishReference | None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connections: ServerConnections | None = None,
    ) -> None:
        """``connections``: another synthesizer's (the voices made by :meth:`with_reference`), which that one
        closes; without, this synthesizer opens its own and :meth:`close` closes them."""
        self.url = url.rstrip("/")
        self.reference = reference
        self.name = f"fish:{self.url}"
        self.sample_rate = FISH_RATE
        self.supports_voice_reference = True
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._owns_connections = connections is None
        self.connections = connections or ServerConnections(timeout_s)

    @classmethod
    def from_settings(cls, settings: FishSettings) -> FishSpeechSynthesizer:
        reference = None
        if settings.reference is not None:
            text_path = settings.reference.with_suffix(".txt")
            reference = FishReference.from_files(settings.reference, text_path, settings.reference_text)
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(settings.url, reference, key)

    def with_reference(self, clip: Path, transcript: Path) -> FishSpeechSynthesizer:
        """The same server in another voice (the reference travels with each request: nothing is kept there)."""
        return FishSpeechSynthesizer(
            self.url, FishReference.from_files(clip, transcript), self._api_key, self._timeout_s, self.connections
        )

    def _client(self) -> aiohttp.ClientSession:
        return self.connections.client()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/msgpack"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def load(self) -> None:
        try:
            async with self._client().request(
                HEALTH_METHOD, f"{self.url}{HEALTH_PATH}", headers=self._headers()
            ) as response:
                if response.status != 200:
                    raise TtsError(f"Fish Speech at {self.url} is not healthy ({response.status})")
        except aiohttp.ClientError as exc:
            raise TtsError(f"cannot reach Fish Speech at {self.url}: {exc}") from exc

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        body = msgpack.packb(tts_request(text, self.reference), use_bin_type=True)
        reader = WavStreamReader()
        try:
            async with self._client().post(f"{self.url}/v1/tts", data=body, headers=self._headers()) as response:
                if response.status != 200:
                    detail = (await response.text())[:300]
                    raise TtsError(f"Fish Speech answered {response.status}: {detail}")
                kind = response.headers.get("Content-Type", "")
                if "json" in kind or "text/" in kind:
                    raise TtsError(f"Fish Speech sent {kind} instead of audio: {(await response.text())[:300]}")
                checked = False
                async for data in response.content.iter_chunked(READ_BYTES):
                    samples = reader.feed(data)
                    if not checked and reader.format is not None:
                        self._check_format(reader.format)
                        checked = True
                    if samples.size:
                        yield samples
        except WavStreamError as exc:
            raise TtsError(f"Fish Speech sent an unusable stream: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise TtsError(f"Fish Speech request failed: {exc}") from exc
        if reader.format is None:
            raise TtsError(f"Fish Speech stream ended inside its WAV header ({reader.pending_bytes} bytes)")
        if reader.pending_bytes:
            logger.warning("Fish Speech stream ended on half a sample; dropped one byte")

    def _check_format(self, wav_format: WavFormat) -> None:
        if wav_format.channels != 1 or wav_format.sample_rate != self.sample_rate:
            raise TtsError(
                f"Fish Speech streams {wav_format.channels} channel(s) at {wav_format.sample_rate} Hz; "
                f"expected mono at {self.sample_rate} Hz"
            )

    async def close(self) -> None:
        """Close the server connections if this synthesizer opened them (a voice made from another shares its)."""
        if self._owns_connections:
            await self.connections.close()
