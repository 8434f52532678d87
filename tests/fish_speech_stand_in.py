"""A STAND-IN for Fish Speech v1.5.0's API server (``python -m tools.api_server``), the version the box runs.

v1.5.0 cannot be installed from a registry (the registry's fish-speech 0.1.0 is the later OpenAudio code) and its
server needs torch and the weights, so this reproduces, in aiohttp, each behaviour of that tag our client relies on.
Every fact names the file of github.com/fishaudio/fish-speech at tag v1.5.0 it was read from.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import wave
from http import HTTPStatus
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, model_validator

SAMPLE_RATE = 44_100  # fish_speech/configs/firefly_gan_vq.yaml: spec_transform.sample_rate
AMPLITUDE = 32768  # tools/server/inference.py: segments are (audio * 32768).astype(np.int16).tobytes()


class StandInReferenceAudio(BaseModel):
    """tools/schema.py ServeReferenceAudio: audio bytes and its transcript; a str audio longer than 255
    characters is base64-decoded before validation."""

    audio: bytes
    text: str

    @model_validator(mode="before")
    @classmethod
    def decode_audio(cls, values: Any) -> Any:
        audio = values.get("audio") if isinstance(values, dict) else None
        if isinstance(audio, str) and len(audio) > 255:
            with contextlib.suppress(ValueError):  # upstream leaves an undecodable string as it is
                values["audio"] = base64.b64decode(audio)
        return values


class StandInTtsRequest(BaseModel):
    """tools/schema.py ServeTTSRequest: names, types and defaults of v1.5.0. Its pydantic config only allows
    arbitrary types, so unknown fields are ignored (not refused); the three sampling floats are strict (a str or
    bool is refused, an int accepted) and bounded. Upstream's ``chunk_length: Annotated[int, conint(ge=100,
    le=300, strict=True)]`` nests the constraint where pydantic 2.9.2 (its pin) ignores it: a plain lax int."""

    text: str
    chunk_length: int = 200
    format: Literal["wav", "pcm", "mp3"] = "wav"
    references: list[StandInReferenceAudio] = []
    reference_id: str | None = None
    seed: int | None = None
    use_memory_cache: Literal["on", "off"] = "off"
    normalize: bool = True
    streaming: bool = False
    max_new_tokens: int = 1024
    top_p: Annotated[float, Field(ge=0.1, le=1.0, strict=True)] = 0.7
    repetition_penalty: Annotated[float, Field(ge=0.9, le=2.0, strict=True)] = 1.2
    temperature: Annotated[float, Field(ge=0.1, le=1.0, strict=True)] = 0.7


def wav_chunk_header(sample_rate: int = SAMPLE_RATE) -> bytes:
    """tools/inference_engine/utils.py wav_chunk_header: Python's ``wave`` closing an empty mono 16-bit file,
    i.e. 44 bytes whose RIFF and data sizes say 0 frames."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(sample_rate)
    return buffer.getvalue()


def http_error(status: HTTPStatus, message: object, headers: dict[str, str] | None = None) -> web.Response:
    """tools/server/exception_handler.py http_exception_handler: the JSON every HTTPException becomes."""
    return web.json_response(
        {"statusCode": int(status), "message": message, "error": status.phrase}, status=int(status), headers=headers
    )


class FishSpeechStandIn:
    """In-process server on 127.0.0.1 with v1.5.0's routes; ``requests`` holds each decoded body that validated.

    ``break_after``: the engine fails once that many bytes of the stream are out. Upstream cannot turn that into an
    error status: baize's StreamResponse sends 200 and its headers before it pulls the first chunk, and the
    HTTPException that tools/server/inference.py raises for an "error" result escapes the response iterator, so the
    server drops the connection mid-body.
    """

    def __init__(
        self, break_after: int | None = None, max_text_length: int = 0, seconds_per_char: float = 0.06
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.break_after = break_after
        self.max_text_length = max_text_length  # tools/server/api_utils.py --max-text-length, default 0 (off)
        self.seconds_per_char = seconds_per_char
        self.app = web.Application()
        # tools/server/views.py: @routes.http.post("/v1/health") and @routes.http.post("/v1/tts"); kui's
        # required_method answers any other method with 405 and "Allow: POST" (GET on health was added after v1.5.0)
        self.app.router.add_route("*", "/v1/health", self._post_only(self.health))
        self.app.router.add_route("*", "/v1/tts", self._post_only(self.tts))
        self._runner = web.AppRunner(self.app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    @staticmethod
    def _post_only(handler: Any) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            if request.method == "POST":
                return await handler(request)  # type: ignore[no-any-return]
            if request.method == "OPTIONS":
                return web.Response(headers={"Allow": "POST"})
            return web.Response(status=405, headers={"Allow": "POST"})

        return route

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})  # tools/server/views.py health()

    def pcm(self, text: str) -> bytes:
        """What the stand-in "says": a 220 Hz tone, converted to int16 as upstream converts its segments."""
        t = np.arange(int(SAMPLE_RATE * self.seconds_per_char * len(text))) / SAMPLE_RATE
        audio = (np.sin(2 * math.pi * 220 * t) * 0.25).astype(np.float32)
        return (audio * AMPLITUDE).astype(np.int16).tobytes()

    async def tts(self, request: web.Request) -> web.StreamResponse:
        # tools/server/api_utils.py MsgPackRequest.data: msgpack (ormsgpack.unpackb) or JSON, else 415
        body = await request.read()
        if request.content_type == "application/msgpack":
            data = msgpack.unpackb(body, raw=False)
        elif request.content_type == "application/json":
            data = json.loads(body)
        else:
            return http_error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, None, headers={"Accept": "application/msgpack, application/json"}
            )
        # kui validates Body(exclusive=True) with pydantic; a failure is 422 with the error list as JSON
        try:
            req = StandInTtsRequest.model_validate(data)
        except ValidationError as exc:
            return web.Response(status=422, text=exc.json(), content_type="application/json")
        self.requests.append(data)
        # tools/server/views.py tts(): the text length check, then "Streaming only supports WAV format"
        if self.max_text_length > 0 and len(req.text) > self.max_text_length:
            return http_error(HTTPStatus.BAD_REQUEST, f"Text is too long, max length is {self.max_text_length}")
        if req.streaming and req.format != "wav":
            return http_error(HTTPStatus.BAD_REQUEST, "Streaming only supports WAV format")
        if not req.streaming:
            return self._whole_file(req)
        # streaming: content type audio/wav (api_utils.get_content_type), the header first
        # (inference_engine/__init__.py yields code="header" before any segment), then each segment's int16 bytes;
        # the "final" result is an ndarray that api_utils.inference_async drops, so nothing follows the segments
        response = web.StreamResponse(
            headers={"Content-Type": "audio/wav", "Content-Disposition": "attachment; filename=audio.wav"}
        )
        await response.prepare(request)
        stream = wav_chunk_header() + self.pcm(req.text)
        if self.break_after is not None:
            if self.break_after:
                await response.write(stream[: self.break_after])
            assert request.transport is not None
            request.transport.close()
            return response
        # odd sizes from the first byte: the header arrives split, and samples straddle writes
        for start in range(0, len(stream), 4_411):
            await response.write(stream[start : start + 4_411])
        await response.write_eof()
        return response

    def _whole_file(self, req: StandInTtsRequest) -> web.Response:
        """Non-streaming: one complete file written by soundfile (tools/server/views.py); only WAV is reproduced."""
        if req.format != "wav":
            return web.Response(status=501, text=f"the stand-in does not encode {req.format}")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav_file:
            wav_file.setnchannels(1)
            wav_file.setsampwidth(2)
            wav_file.setframerate(SAMPLE_RATE)
            wav_file.writeframes(self.pcm(req.text))
        return web.Response(
            body=buffer.getvalue(),
            headers={"Content-Type": "audio/wav", "Content-Disposition": "attachment; filename=audio.wav"},
        )
