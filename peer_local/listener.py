"""The local peer's ears: audio source -> Silero VAD -> turn detection -> faster-whisper, off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from media.events import Event
from peer_local.asr.base import AsrResult, Transcriber
from peer_local.audio_input.base import ASR_RATE, AudioSource
from peer_local.turns import (
    EndOfTurnDetector,
    PauseDetected,
    SilenceStarted,
    SpeechConfirmed,
    SpeechDiscarded,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
    TurnSettings,
)
from peer_local.vad import VAD_CHUNK, SileroVad

logger = logging.getLogger(__name__)

ASR_QUEUE_TURNS = 16


@dataclass(frozen=True)
class HeardTurn:
    """One transcribed turn; times in seconds on the listener's clock (0 = the source's start)."""

    turn_id: str
    text: str
    language: str | None
    start_s: float
    end_s: float
    detected_s: float
    asr_start_s: float
    asr_done_s: float
    audio_s: float
    asr_ms: float  # time the ASR itself took
    no_speech_prob: float | None = None
    avg_logprob: float | None = None
    asr_early: bool = False  # transcribed during the end-of-turn wait (ASR time hidden in the silence)

    @property
    def silence_wait_ms(self) -> float:
        return (self.detected_s - self.end_s) * 1000


@dataclass
class EarlyAsr:
    """A transcription of the turn so far, started when a pause began; kept only if no more speech came."""

    voice_end_s: float
    start_s: float  # the turn's speech start
    audio_s: float
    result: asyncio.Future[AsrResult]
    started: float  # perf_counter
    started_s: float  # the listener's clock
    turn_id: str | None = None  # given once it was reported early (``turn_early``): the turn keeps it


class EndOfTurnModel(Protocol):
    """A learned end-of-turn judge (peer_local/smart_turn.py): blocking, run off the loop."""

    def load(self) -> None: ...

    def completion(self, audio: np.ndarray) -> float:
        """Probability that the turn in ``audio`` (16 kHz) is complete."""
        ...


def _ignore_result(future: asyncio.Future[AsrResult]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an unused early transcription that failed is not an error


class Listener:
    """Turns what a source hears into transcribed turns (``turn_heard``); ``speech_started`` is reported at once
    (barge-in). The speech events pass the time on the listener's clock."""

    def __init__(
        self,
        source: AudioSource,
        transcriber: Transcriber,
        turn_settings: TurnSettings | None = None,
        vad: SileroVad | None = None,
        turn_model: EndOfTurnModel | None = None,
    ) -> None:
        self.source = source
        self.transcriber = transcriber
        self.turn_heard: Event[[HeardTurn]] = Event("turn_heard")
        self.speech_started: Event[[float]] = Event("speech_started")
        self.speech_confirmed: Event[[float]] = Event("speech_confirmed")  # speech lasted min_speech_s: not a click
        self.speech_stopped: Event[[float]] = Event("speech_stopped")  # the turn (or a discarded burst) ended
        # a turn transcribed while its end is still being confirmed (its ``detected_s``: when it was reported);
        # the turn itself follows in ``turn_heard`` with the same id, or ``early_dropped`` (its id) if speech went on
        self.turn_early: Event[[HeardTurn]] = Event("turn_early")
        self.early_dropped: Event[[str]] = Event("early_dropped")
        self.detector = EndOfTurnDetector(turn_settings)
        self.turn_model = turn_model
        if turn_model is not None and self.detector.settings.pause_s is None:
            raise ValueError("an end-of-turn model needs TurnSettings.pause_s")
        self.verdicts: list[tuple[float, float]] = []  # (time, completion probability) per judged pause
        self.vad = vad or SileroVad()
        self.muted = False  # half-duplex: while True, input is ignored
        self._muted_until_s = float("-inf")  # ... and until then (the avatar's echo still arriving)
        self._position_s = 0.0  # source time of the last block heard
        self.turns: list[HeardTurn] = []
        self.discarded = 0
        self._ids = itertools.count(1)
        self._session = uuid.uuid4().hex[:6]
        self._queue: asyncio.Queue[tuple[TurnEnded, EarlyAsr | None] | None] = asyncio.Queue(maxsize=ASR_QUEUE_TURNS)
        self._early: EarlyAsr | None = None  # the transcription started during the current pause
        self._origin: float | None = None  # monotonic time of source time 0

    @property
    def origin(self) -> float | None:
        """Monotonic time of the source's time 0 (from the chunk delivered soonest after its end)."""
        return self._origin

    def now_s(self) -> float:
        """The listener's clock: seconds since the source's time 0 (wall-clock paced for live inputs)."""
        return time.monotonic() - (self._origin if self._origin is not None else time.monotonic())

    def set_muted(self, muted: bool, tail_s: float = 0.0) -> None:
        """Half-duplex: ignore the input while the avatar speaks and for ``tail_s`` after it stops (its voice
        coming back through a meeting arrives late)."""
        if not muted and self.muted:
            self._muted_until_s = self._position_s + tail_s  # on the source's clock, as the blocks are
        self.muted = muted

    async def run(self) -> list[HeardTurn]:
        """Listen until the source ends; returns every transcribed turn."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.transcriber.load)
        if self.turn_model is not None:
            await loop.run_in_executor(None, self.turn_model.load)
        worker = asyncio.create_task(self._transcribe_turns(), name="asr-worker")
        pending = np.zeros(0, dtype=np.float32)
        position_s = 0.0
        try:
            async for chunk in self.source.chunks():
                # a chunk is delivered at the earliest when its last sample is heard: the earliest such origin is
                # the source's clock (one first chunk delivered late would put every later time ahead of it)
                origin = time.monotonic() - chunk.end_s
                if self._origin is None or origin < self._origin:
                    self._origin = origin
                if not pending.size:
                    position_s = chunk.t_s
                pending = np.concatenate([pending, chunk.samples])
                while pending.size >= VAD_CHUNK:
                    block, pending = pending[:VAD_CHUNK], pending[VAD_CHUNK:]
                    await self._step(block, position_s)
                    position_s += VAD_CHUNK / ASR_RATE
            for event in self.detector.flush(position_s):
                await self._handle(event)
        finally:
            await self._queue.put(None)
            try:
                async with asyncio.timeout(120):
                    await worker
            except TimeoutError:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await self.source.close()
        return self.turns

    async def _step(self, block: np.ndarray, t_s: float) -> None:
        self._position_s = t_s
        if self.muted or t_s < self._muted_until_s:
            if self.detector.in_speech:
                self.detector.flush(t_s)  # discard what was being said into the avatar's own voice
                self._drop_early()
                self.speech_stopped.emit(t_s)
            self.vad.reset()
            return
        probability = self.vad(block)
        for event in self.detector.push(block, t_s, probability):
            await self._handle(event)

    async def _handle(self, event: TurnEvent) -> None:
        if isinstance(event, SpeechStarted):
            logger.debug("speech started at %.2f s", event.t_s)
            self.speech_started.emit(event.t_s)
        elif isinstance(event, SilenceStarted):
            self._drop_early()  # speech resumed since that one began: it is not needed (not started yet: skipped)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, self.transcriber.transcribe, event.audio)
            future.add_done_callback(_ignore_result)  # a discarded one must not warn when it fails
            offered = EarlyAsr(
                event.voice_end_s, event.start_s, event.audio.size / ASR_RATE, future, time.perf_counter(), self.now_s()
            )
            future.add_done_callback(lambda _: self._report_early(offered))
            self._early = offered
        elif isinstance(event, SpeechResumed):
            self._drop_early()  # it misses what is being said now
        elif isinstance(event, PauseDetected):
            await self._judge(event)
        elif isinstance(event, SpeechConfirmed):
            self.speech_confirmed.emit(event.t_s)
        elif isinstance(event, SpeechDiscarded):
            self._drop_early()
            self.discarded += 1
            self.speech_stopped.emit(event.start_s)
        else:
            self.speech_stopped.emit(event.detected_s)
            early = self._early
            if early is not None and early.voice_end_s != event.end_s:
                self._drop_early()  # speech resumed after that transcription began: it misses the end
                early = None
            self._early = None
            await self._queue.put((event, early))  # back-pressure: never drop a turn

    def _drop_early(self) -> None:
        """Forget the early transcription; if it is still waiting for the ASR, it never runs."""
        early, self._early = self._early, None
        if early is not None:
            early.result.cancel()
            if early.turn_id is not None:
                self.early_dropped.emit(early.turn_id)

    def _next_turn_id(self) -> str:
        return f"{self._session}-{next(self._ids)}"

    def _report_early(self, early: EarlyAsr) -> None:
        """The early transcription is done while the end of its turn is still being confirmed: report it."""
        future = early.result
        if self._early is not early or future.cancelled() or future.exception() is not None:
            return  # speech went on, or the turn ended first (it is reported as the turn itself)
        result = future.result()
        if not result.text or not len(self.turn_early):
            return
        early.turn_id = self._next_turn_id()
        now_s = self.now_s()
        self.turn_early.emit(
            HeardTurn(
                turn_id=early.turn_id,
                text=result.text,
                language=result.language,
                start_s=early.start_s,
                end_s=early.voice_end_s,
                detected_s=now_s,
                asr_start_s=early.started_s,
                asr_done_s=now_s,
                audio_s=early.audio_s,
                asr_ms=(time.perf_counter() - early.started) * 1000,
                no_speech_prob=result.no_speech_prob,
                avg_logprob=result.avg_logprob,
                asr_early=True,
            )
        )

    async def _judge(self, pause: PauseDetected) -> None:
        """Ask the end-of-turn model whether the pause ends the turn (input waits meanwhile: nothing is lost)."""
        assert self.turn_model is not None
        loop = asyncio.get_running_loop()
        try:
            probability = await loop.run_in_executor(None, self.turn_model.completion, pause.audio)
        except Exception:
            logger.exception("the end-of-turn model failed; waiting for the silence instead")
            return
        self.verdicts.append((pause.t_s, probability))
        logger.debug("pause at %.2f s: turn complete with p=%.2f", pause.t_s, probability)
        for event in self.detector.judged(probability > 0.5, pause.t_s):
            await self._handle(event)

    async def _transcribe_turns(self) -> None:
        loop = asyncio.get_running_loop()
        while (queued := await self._queue.get()) is not None:
            turn, early = queued
            asr_start = self.now_s()
            started = time.perf_counter()
            result: AsrResult | None = None
            if early is not None:
                asr_start, started = early.started_s, early.started
                with contextlib.suppress(Exception):  # it failed: transcribe the turn itself below
                    result = await early.result
            if result is None:
                early = None
                asr_start, started = self.now_s(), time.perf_counter()
                try:
                    result = await loop.run_in_executor(None, self.transcriber.transcribe, turn.audio)
                except Exception:
                    logger.exception("ASR failed on a %.1f s turn", turn.audio.size / ASR_RATE)
                    continue
            heard = HeardTurn(
                turn_id=early.turn_id if early is not None and early.turn_id else self._next_turn_id(),
                text=result.text,
                language=result.language,
                start_s=turn.start_s,
                end_s=turn.end_s,
                detected_s=turn.detected_s,
                asr_start_s=asr_start if early is not None else max(asr_start, turn.detected_s),
                asr_done_s=self.now_s(),
                audio_s=turn.audio.size / ASR_RATE,
                asr_ms=(time.perf_counter() - started) * 1000,
                no_speech_prob=result.no_speech_prob,
                avg_logprob=result.avg_logprob,
                asr_early=early is not None,
            )
            if not heard.text:
                logger.info("turn at %.2f s had no words", heard.start_s)
                continue
            self.turns.append(heard)
            logger.info("heard %r (%.2f-%.2f s, ASR %.0f ms)", heard.text, heard.start_s, heard.end_s, heard.asr_ms)
            self.turn_heard.emit(heard)
