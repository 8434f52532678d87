"""Answering: one turn at a time, transcript -> streaming LLM -> clauses -> TTS -> the avatar's voice.

A new transcript or an ``interrupt`` cancels the current turn (LLM stream, TTS, queued audio and
frames) at once. Each turn reports its state (``turn``) and its timings (``metrics``). A turn started on an
early transcript is prepared at once but speaks, and is remembered, only once it is confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from media.frames import AVChunk
from media.protocol import DataMessage, Metrics, Transcript, Turn
from media.resample import Resampler48k
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.chunking import ClauseChunker
from peer_remote.clause_joins import ClauseJoiner
from peer_remote.conversation import Conversation
from peer_remote.floor import Floor
from peer_remote.llm.base import ChatMessage, LanguageModel, LlmError, evaluate_prompt
from peer_remote.speakable import speakable
from peer_remote.tts.base import Synthesizer, TtsError

logger = logging.getLogger(__name__)

DONE_TIMEOUT_S = 120.0
WARM_UP_LANGUAGE = "en"  # the persona's prompt is evaluated ahead as for a first turn in this language


@dataclass
class TurnTimeline:
    """Milliseconds from the transcript's arrival to each stage (None: not reached)."""

    turn_id: str
    received: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)
    first_chunk: str | None = None  # the first clause spoken (what its first audio waited for)

    def mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = (time.monotonic() - self.received) * 1000

    def values(self) -> dict[str, float]:
        return {"transcript_received_ms": 0.0, **{k: round(v, 1) for k, v in self.marks.items()}}


@dataclass(frozen=True)
class ReplySettings:
    max_tokens: int = 96
    temperature: float = 0.7
    floor_max_hold_s: float = 10.0  # an answer held this long for someone speaking is dropped


class FloorTakenError(Exception):
    """Someone kept speaking past the hold limit: the prepared answer is dropped."""


class NotConfirmedError(Exception):
    """An early transcript's turn was neither confirmed nor retracted within the hold limit: dropped."""


class Responder:
    """Turns transcripts into speech on the avatar's stream; ``broadcast`` sends turn and metrics messages."""

    def __init__(
        self,
        llm: LanguageModel,
        tts: Synthesizer,
        conversation: Conversation,
        producer: AvatarProducer,
        stream: AVStream,
        broadcast: Callable[[DataMessage], None],
        settings: ReplySettings | None = None,
        floor: Floor | None = None,
    ) -> None:
        self.llm = llm
        self.tts = tts
        self.conversation = conversation
        self.producer = producer
        self.stream = stream
        self.broadcast = broadcast
        self.settings = settings or ReplySettings()
        self.floor = floor or Floor()
        self.timelines: list[TurnTimeline] = []
        self.turn_finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: TurnTimeline | None = None
        self._drained: dict[str, asyncio.Future[int]] = {}
        self._warming: asyncio.Task[bool] | None = None
        self._early: Transcript | None = None  # the turn in flight, while it is an unconfirmed early transcript
        self._confirmed = asyncio.Event()  # the turn in flight may speak (set at once for a transcript)
        self.waiting_confirmation = asyncio.Event()  # set when an answer's first audio waits for its turn's end
        self.context_warmed = asyncio.Event()  # set each time the meeting heard so far has been evaluated ahead
        producer.drained.connect(self._on_drained)
        stream.scheduler.sent.connect(self._on_sent)

    async def load(self) -> None:
        """Load the models before the first turn, and evaluate the persona's prompt once so that the first turn
        does not pay for it (llama.cpp keeps the evaluated tokens and reuses the longest common prefix)."""
        await self.llm.load()
        await self.tts.load()
        await self._warm_prompt()

    async def _warm_prompt(self) -> None:
        warm = Conversation(self.conversation.persona, self.llm.count_tokens, self.conversation.budget_tokens)
        started = time.monotonic()
        if await self._evaluate(warm.messages(WARM_UP_LANGUAGE, pending=True)):
            logger.info("persona prompt evaluated in %.0f ms", (time.monotonic() - started) * 1000)

    async def _evaluate(self, messages: list[ChatMessage]) -> bool:
        """Have the model evaluate ``messages`` (one token generated and dropped); False if it failed."""
        try:
            await evaluate_prompt(self.llm, messages)
        except LlmError as exc:
            logger.warning("the prompt could not be evaluated ahead: %s", exc)
            return False
        return True

    def warm_context(self, language: str | None = None) -> None:
        """While nobody asks the clone anything, evaluate the meeting heard so far (the persona, the call's turns
        and the start of the next user turn, with the remarks waiting to be folded into it), so that the next
        answer's prompt shares that prefix with what the model holds and only its question is new (llama.cpp
        reuses the longest common prefix; a server with prefix caching does the same). Called after each answer
        and each remark let pass; skipped while a turn is in flight; cancelled by the next transcript."""
        if self.busy:
            return
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        self.context_warmed.clear()
        self._warming = asyncio.create_task(self._warm_context(language), name="warm-context")

    async def _warm_context(self, language: str | None) -> bool:
        started = time.monotonic()
        if not await self._evaluate(self.conversation.messages(language, pending=True)):
            return False
        logger.debug("meeting context evaluated ahead in %.0f ms", (time.monotonic() - started) * 1000)
        self.context_warmed.set()
        return True

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def on_transcript(self, transcript: Transcript, early: bool = False) -> None:
        """Answer ``transcript`` (cancelling the turn in flight). ``early``: the turn's end is still being
        confirmed: prepare the answer, but hold its first audio and remember nothing until :meth:`confirm`."""
        await self.cancel("a new transcript arrived")
        if self._warming is not None:
            self._warming.cancel()  # the model finishes the prompt it is on (its prefix is the answer's too)
        self._early = transcript if early else None
        self._confirmed = asyncio.Event()
        if not early:
            self._confirmed.set()
        timeline = TurnTimeline(transcript.turn_id)
        self._current = timeline
        self.timelines.append(timeline)
        self.turn_finished.clear()
        self._task = asyncio.create_task(self._respond(transcript, timeline), name=f"turn-{transcript.turn_id}")

    @property
    def early_turn_id(self) -> str | None:
        """The turn in flight's id while it is an unconfirmed early transcript."""
        return self._early.turn_id if self._early is not None and self.busy else None

    def confirm(self, transcript: Transcript) -> bool:
        """The turn has ended as its early transcript said: remember the question and let the answer speak.
        False (nothing done) if the turn in flight is not that early transcript, word for word."""
        early = self._early
        if early is None or not self.busy or early.turn_id != transcript.turn_id or early.text != transcript.text:
            return False
        self._early = None
        self.conversation.add_user(transcript.text)
        self._confirmed.set()
        if self._current is not None:
            self._current.mark("turn_confirmed_ms")
        return True

    async def retract(self, turn_id: str) -> bool:
        """The early transcript ``turn_id`` is void (the speaker went on): drop its answer, remember nothing."""
        if self.early_turn_id != turn_id:
            return False
        await self.cancel("its early transcript was retracted")
        return True

    async def interrupt(self) -> None:
        await self.cancel("interrupted")

    async def cancel(self, reason: str) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        logger.info("turn %s cancelled: %s", self._current.turn_id if self._current else "?", reason)
        self.stream.interrupt()  # flush queued audio and frames: the next slot is idle
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        await self.cancel("shutting down")
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming

    def _on_sent(self, kind: str, chunk: AVChunk) -> None:
        turn_id = chunk.meta.get("turn_id")
        timeline = self._current
        if not turn_id or timeline is None or timeline.turn_id != turn_id:
            return
        if kind == "audio" and "first_audio_frame_sent_ms" not in timeline.marks:
            timeline.mark("first_audio_frame_sent_ms")
            self.broadcast(Turn(turn_id=str(turn_id), state="speaking"))
        elif kind == "video":
            timeline.mark("first_speaking_video_frame_sent_ms")

    def _on_drained(self, turn_id: str, slot_index: int | None) -> None:
        future = self._drained.get(turn_id)
        if future is not None and not future.done():
            future.set_result(slot_index if slot_index is not None else self.stream.scheduler.current_index())

    async def _wait_played(self, drained: asyncio.Future[int]) -> None:
        """Until the slot that took the turn's last audio has been sent."""
        last_slot = await drained
        scheduler = self.stream.scheduler
        await scheduler.clock.sleep_until((last_slot + 1) / scheduler.fps)

    async def _respond(self, transcript: Transcript, timeline: TurnTimeline) -> None:
        turn_id = transcript.turn_id
        self.broadcast(Turn(turn_id=turn_id, state="thinking", text=transcript.text))
        confirmed = self._confirmed
        if confirmed.is_set():
            self.conversation.add_user(transcript.text)
            messages = self.conversation.messages(transcript.language)
        else:  # an early transcript: asked as if remembered; remembered once confirmed
            messages = self.conversation.messages(transcript.language, question=transcript.text)
        said: list[str] = []
        drained: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._drained[turn_id] = drained
        chunker = ClauseChunker()
        joiner = ClauseJoiner(self.tts.sample_rate)  # the first sound at once, clauses cut mid-sentence joined tight
        try:
            resampler = Resampler48k(self.tts.sample_rate)
            # until the first audio is queued nothing is generated ahead of what the chunker has read: the first
            # clause's TTS gets the CPU from its first moment (a token computed meanwhile would take a core from it)
            self.llm.pause_generation(True)
            async for delta in self.llm.stream(messages, self.settings.max_tokens, self.settings.temperature):
                timeline.mark("llm_first_token_ms")
                for clause in chunker.feed(delta):
                    await self._speak(turn_id, clause, timeline, resampler, joiner)  # resumes it at the first audio
                    said.append(clause)
            for clause in chunker.flush():
                await self._speak(turn_id, clause, timeline, resampler, joiner)
                said.append(clause)
            tail = resampler.flush()
            if tail.size:
                await self.producer.enqueue(turn_id, tail)
            self.producer.finish(turn_id)
            async with asyncio.timeout(DONE_TIMEOUT_S):
                await self._wait_played(drained)
        except (LlmError, TtsError) as exc:
            logger.error("turn %s failed: %s", turn_id, exc)
        except FloorTakenError:
            logger.info("turn %s dropped: someone kept speaking for %.0f s", turn_id, self.settings.floor_max_hold_s)
        except NotConfirmedError:
            logger.info("turn %s dropped: its early transcript was not confirmed", turn_id)
        finally:
            self.llm.pause_generation(False)
            self._drained.pop(turn_id, None)
            if not confirmed.is_set():
                said.clear()  # an unconfirmed turn said nothing and leaves nothing to remember
            text = " ".join(said)
            # remembered as generated (a prompt quoting it then shares the model's cached tokens)
            self.conversation.add_assistant(chunker.text_through(len(said)))
            self.broadcast(Turn(turn_id=turn_id, state="done", text=text))
            self.broadcast(Metrics(turn_id=turn_id, values=timeline.values()))
            logger.info(
                "turn %s: %s | %r",
                turn_id,
                ", ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in timeline.values().items() if v),
                text[:80],
            )
            self.turn_finished.set()
            # once this task is done: the next user turn's start evaluated while nobody asks anything (~20 tokens
            # of the next prompt fewer: 5 ms each for the embedded model)
            asyncio.get_running_loop().call_soon(self.warm_context, transcript.language)

    async def _speak(
        self,
        turn_id: str,
        clause: str,
        timeline: TurnTimeline,
        resampler: Resampler48k,
        joiner: ClauseJoiner,
    ) -> None:
        words = speakable(clause)
        if not words:
            return  # only emoji or marks: nothing to say
        timeline.mark("first_chunk_ready_ms")
        if timeline.first_chunk is None:
            timeline.first_chunk = words
        joiner.begin(words)
        async for synthesized in self.tts.synthesize(words):
            block = joiner.feed(synthesized)
            if not block.size:
                continue
            first = "tts_first_audio_ms" not in timeline.marks
            timeline.mark("tts_first_audio_ms")
            if first:
                await self._hold_first_audio(turn_id, timeline)
            await self.producer.enqueue(turn_id, resampler.convert(block))
            if first:
                self.llm.pause_generation(False)  # the first audio is queued: generation goes on
                self.stream.scheduler.flush_idle()
        rest = joiner.end()
        if rest.size and "tts_first_audio_ms" in timeline.marks:
            await self.producer.enqueue(turn_id, resampler.convert(rest))

    async def _hold_first_audio(self, turn_id: str, timeline: TurnTimeline) -> None:
        """The answer's first audio is ready: it waits for its turn to be confirmed (an early transcript) and for
        the floor (someone speaking); generation goes on meanwhile."""
        if not (self._confirmed.is_set() and self.floor.free):
            self.llm.pause_generation(False)  # the rest of the answer may be generated while it waits
        if not self._confirmed.is_set():
            # an early transcript: its turn may still go on; the answer waits for the turn's end
            self.waiting_confirmation.set()
            try:
                async with asyncio.timeout(self.settings.floor_max_hold_s):
                    await self._confirmed.wait()
            except TimeoutError:
                raise NotConfirmedError from None
        if not self.floor.free:
            # someone is speaking: hold the prepared audio until they stop (the turn is dropped if their speech
            # becomes a turn of its own: a new transcript or a barge-in cancels this one)
            logger.info("turn %s: holding the answer while someone speaks", turn_id)
            if not await self.floor.wait_free(self.settings.floor_max_hold_s):
                raise FloorTakenError
            timeline.mark("floor_free_ms")
