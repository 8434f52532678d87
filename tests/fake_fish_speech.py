"""A protocol-faithful FAKE of Fish Speech's API server (``POST /v1/tts`` msgpack, ``GET /v1/health``).

A real Fish Speech server needs a GPU and its weights, neither of which exist here; this fake checks the
request exactly as Fish Speech's ``ServeTTSRequest`` defines it and streams headerless int16 PCM at
44.1 kHz in deliberately odd-sized pieces (so samples straddle reads), like the real server's stream.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np
from aiohttp import web

FIELDS = {
    "text": str,
    "chunk_length": int,
    "format": str,
    "references": list,
    "reference_id": (str, type(None)),
    "seed": (int, type(None)),
    "use_memory_cache": str,
    "normalize": bool,
    "streaming": bool,
    "max_new_tokens": int,
    "top_p": float,
    "repetition_penalty": float,
    "temperature": float,
}


class FakeFishSpeechServer:
    def __init__(self, fail_with: int | None = None, json_instead: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.json_instead = json_instead
        self.app = web.Application()
        self.app.router.add_get("/v1/health", self.health)
        self.app.router.add_post("/v1/tts", self.tts)
        self._runner = web.AppRunner(self.app)
        self.url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def tts(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/msgpack":
            return web.json_response({"detail": "expected application/msgpack"}, status=415)
        body = msgpack.unpackb(await request.read(), raw=False)
        problems = [k for k, kind in FIELDS.items() if k not in body or not isinstance(body[k], kind)]
        for reference in body.get("references", []):
            if not isinstance(reference.get("audio"), bytes) or not isinstance(reference.get("text"), str):
                problems.append("references[].audio must be bytes and .text a string")
        if problems:
            return web.json_response({"detail": f"invalid request: {problems}"}, status=422)
        self.requests.append(body)
        if self.fail_with:
            return web.Response(status=self.fail_with, text="CUDA out of memory")
        if self.json_instead:
            return web.json_response({"detail": "something odd"})
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        seconds = 0.06 * len(body["text"])
        t = np.arange(int(44_100 * seconds)) / 44_100
        pcm = (np.sin(2 * math.pi * 220 * t) * 8_000).astype("<i2").tobytes()
        for start in range(0, len(pcm), 4_411):  # odd sizes: a sample straddles two writes
            await response.write(pcm[start : start + 4_411])
        await response.write_eof()
        return response
