"""Any OpenAI-compatible streaming chat endpoint (vLLM's ``vllm serve``, llama.cpp's server, ...)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
from pydantic import Field, SecretStr

from peer_remote.llm.base import ChatMessage, LlmError
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)


class OpenAiLlmSettings(SettingsGroup):
    """An OpenAI-compatible server (``--llm openai``), such as the box's vLLM."""

    key_prefix = "llm_"

    url: str = Field(default="http://127.0.0.1:8000/v1", description="openai: the server's base URL")
    model: str = Field(default="INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1", description="openai: model name")
    api_key: SecretStr | None = Field(default=None, description="openai: API key, if the server wants one")


class OpenAIChatModel:
    """POST ``{url}/chat/completions`` with ``stream: true`` and read its server-sent events."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}@{self.url}"
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10.0)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: OpenAiLlmSettings) -> OpenAIChatModel:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(settings.url, settings.model, key)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def load(self) -> None:
        """Check that the server answers and serves the model."""
        try:
            async with self._client().get(f"{self.url}/models", headers=self._headers()) as response:
                if response.status != 200:
                    raise LlmError(f"{self.url}/models answered {response.status}: {(await response.text())[:200]}")
                models = [m.get("id") for m in (await response.json()).get("data", [])]
        except aiohttp.ClientError as exc:
            raise LlmError(f"cannot reach the LLM server at {self.url}: {exc}") from exc
        if models and self.model not in models:
            raise LlmError(
                f"the LLM server at {self.url} does not serve {self.model!r} (it serves {', '.join(map(str, models))})"
            )

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    async def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        body = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        try:
            async with self._client().post(
                f"{self.url}/chat/completions", json=body, headers=self._headers()
            ) as response:
                if response.status != 200:
                    raise LlmError(f"LLM server answered {response.status}: {(await response.text())[:300]}")
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                        delta = event["choices"][0].get("delta", {}).get("content")
                    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
                        raise LlmError(f"malformed stream event from the LLM server: {data[:200]}") from exc
                    if delta:
                        yield delta
        except aiohttp.ClientError as exc:
            raise LlmError(f"LLM request to {self.url} failed: {exc}") from exc

    def pause_generation(self, paused: bool) -> None:
        return None  # the server's generation does not take this machine's CPU

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
