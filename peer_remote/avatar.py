"""The clone in one room: what it hears and decides, what it says, who is in control, whose profile it wears.

Everything here is one room's own (conversation, floor, take-over, persona, voice reference, prepared face);
only :class:`CloneBackends` (the LLM, the TTS server or voice, the face models) may be shared by several rooms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media.clock import MediaClock
from media.events import Event
from media.producer import AVProducer
from media.profile.persona import load_persona
from media.protocol import (
    AnswerNow,
    Control,
    DataMessage,
    Decision,
    EarlyTranscript,
    Interrupt,
    ProfileChunk,
    ProfileOffer,
    Retract,
    Speech,
    Transcript,
    Turn,
)
from media.stream import AVStream
from media.test_pattern import TestPatternProducer
from peer_remote.answer_policy import AnswerDecider, names_for
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_face, build_llm, build_persona, build_tts, profile_cache_dir
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.face.base import FaceAnimator
from peer_remote.floor import Floor
from peer_remote.llm.base import LanguageModel
from peer_remote.profile_receiver import ProfileCache, ProfileReceiver
from peer_remote.responder import ReplySettings, Responder
from peer_remote.settings import RemoteSettings
from peer_remote.tts.base import Synthesizer

logger = logging.getLogger(__name__)

Reply = Callable[[DataMessage], None]
ProducerWrapper = Callable[[AVProducer, MediaClock], AVProducer]  # wraps what is streamed (benchmarks stamp frames)


@dataclass(frozen=True)
class CloneBackends:
    """What clones may share: the LLM, the voice and the face's models. ``face`` is one clone's own animator;
    :meth:`with_own_face` gives another room the same models with a face prepared for it alone."""

    llm: LanguageModel
    tts: Synthesizer
    face: FaceAnimator

    @classmethod
    def build(cls, settings: RemoteSettings) -> CloneBackends:
        return cls(build_llm(settings), build_tts(settings), build_face(settings, settings.width, settings.height))

    def with_own_face(self, face_image: Path | None) -> CloneBackends:
        return CloneBackends(self.llm, self.tts, self.face.with_portrait(face_image))

    async def close(self) -> None:
        """Close the shared LLM and TTS clients: by whoever built them, once no clone uses them."""
        await self.llm.close()
        await self.tts.close()


class Avatar:
    """One room's clone: decides which turns to answer, answers them on its stream, follows the person's control
    and wears the profile the person's laptop syncs. ``said`` carries every message for the room's subscribers."""

    def __init__(
        self,
        settings: RemoteSettings,
        clock: MediaClock,
        backends: CloneBackends | None = None,
        producer: AVProducer | None = None,
        wrap_producer: ProducerWrapper | None = None,
    ) -> None:
        """``producer``: stream this instead (a clone that never speaks); ``wrap_producer``: wraps what is
        streamed, for a benchmark to observe it."""
        self.settings = settings
        self._own_backends: CloneBackends | None = None  # built here, so closed here (not a room host's shared ones)
        self.said: Event[[DataMessage]] = Event("said")
        self.producer: AVProducer
        self.speaking: AvatarProducer | None = None  # None: a test pattern (or a given producer) that never speaks
        if producer is not None:
            self.producer = producer
        elif settings.source == "test-pattern":
            self.producer = TestPatternProducer(clock, settings.width, settings.height)
        else:
            if backends is None:
                backends = self._own_backends = CloneBackends.build(settings)
            self.producer = self.speaking = AvatarProducer(backends.face)
        streamed = wrap_producer(self.producer, clock) if wrap_producer is not None else self.producer
        self.stream = AVStream(streamed, clock, settings.fps, settings.lookahead_s)
        self.floor = Floor()
        self.decider = AnswerDecider("always", tuple(settings.names) or ("Alex",), settings.answer_settings())
        self.responder: Responder | None = None
        if backends is not None and self.speaking is not None:
            persona = build_persona(settings, backends.llm.name)
            self.decider.names = persona.names
            conversation = Conversation(persona, backends.llm.count_tokens, settings.context_tokens)
            self.responder = Responder(
                backends.llm,
                backends.tts,
                conversation,
                self.speaking,
                self.stream,
                self.say,
                ReplySettings(settings.max_tokens, settings.temperature, settings.floor_max_hold_s),
                self.floor,
            )
        self.decisions: list[Decision] = []
        self.decision_made = asyncio.Event()
        self.transcripts: list[Transcript] = []
        self.transcript_arrived = asyncio.Event()
        self.early_transcripts: list[EarlyTranscript] = []
        self.early_started = 0  # answers started on an early transcript
        self.early_confirmed = 0  # ... that their transcript confirmed (the rest were retracted or replaced)
        self.interrupts_received = 0
        self.interrupt_arrived = asyncio.Event()
        self.control = Control(mode="clone", answer="always")
        self.control_changed = asyncio.Event()
        self.preparing = False
        self._held_transcript: Transcript | None = None
        self._last_unanswered: Transcript | None = None
        self.profiles = ProfileReceiver(ProfileCache(profile_cache_dir(settings)), self._apply_profile, self.say)

    async def prepare(self) -> None:
        """Load models and prepare the face before joining (progress in the log)."""
        if self.speaking is not None:
            logger.info("preparing the face (%s) ...", self.speaking.face.name)
            await asyncio.get_running_loop().run_in_executor(None, self.speaking.face.prepare)
        if self.responder is not None:
            logger.info("loading the LLM (%s) and the voice (%s) ...", self.responder.llm.name, self.responder.tts.name)
            await self.responder.load()
            logger.info("models ready")

    async def close(self) -> None:
        if self.responder is not None:
            await self.responder.close()
        if self._own_backends is not None:
            await self._own_backends.close()

    def say(self, message: DataMessage) -> None:
        """To every subscriber of the room (the local peer and viewers see the clone's turns)."""
        if isinstance(message, Turn) and message.state == "done" and message.text:
            self.decider.note_answered()  # a question within the follow-up window is for the clone
        self.said.emit(message)

    def greeting(self) -> list[DataMessage]:
        """What a new subscriber learns at once (a page opened after a take-over shows who is in control)."""
        return [self.control] if self.control.clone_paused else []

    def subscriber_left(self) -> None:
        if not self.floor.free:
            self.floor.speech_stopped()  # a speaker's peer that went away holds no floor

    async def on_message(self, message: DataMessage, reply: Reply, typed: bool) -> bool:
        """Act on a subscriber's message (already allowed for its role); False if the clone takes no such message.
        ``typed``: a transcript typed on the preview page, a deliberate request."""
        if isinstance(message, Transcript):
            self.transcripts.append(message)
            self.transcript_arrived.set()
            logger.info("transcript: %r", message.text[:80])
            await self._answer_transcript(message, typed)
        elif isinstance(message, EarlyTranscript):
            self.early_transcripts.append(message)
            await self._prepare_early(message)
        elif isinstance(message, Retract):
            if self.responder is not None and await self.responder.retract(message.turn_id):
                logger.info("turn %s: early transcript retracted (the speaker went on)", message.turn_id)
        elif isinstance(message, Interrupt):
            self.interrupts_received += 1
            if self.responder is not None:
                await self.responder.interrupt()
            self.stream.interrupt()
            self.interrupt_arrived.set()
        elif isinstance(message, ProfileOffer):
            await self.profiles.on_offer(message, reply)
        elif isinstance(message, ProfileChunk):
            await self.profiles.on_chunk(message, reply)
        elif isinstance(message, Control):
            await self._on_control(message)
        elif isinstance(message, Speech):
            if message.state == "start":
                self.floor.speech_started()
            else:
                self.floor.speech_stopped()
        elif isinstance(message, AnswerNow):
            await self._answer_now()
        else:
            return False
        return True

    async def _prepare_early(self, message: EarlyTranscript) -> None:
        """A turn transcribed before its end is confirmed: if it would be answered, start the answer now (it
        speaks once the turn's ``transcript`` confirms it). The decision itself is made and said on that one."""
        responder = self.responder
        if responder is None or self.control.clone_paused or self.preparing:
            return
        if not self.decider.decide(message.confirmed(), dry_run=True).answered:
            return
        self.early_started += 1
        logger.info("turn %s: preparing an answer before the turn has ended: %r", message.turn_id, message.text[:80])
        await responder.on_transcript(message.confirmed(), early=True)

    async def _answer_transcript(self, message: Transcript, typed: bool) -> None:
        """Decide, say why, remember, answer (an answer already prepared on its early transcript goes on)."""
        early = self.responder is not None and self.responder.early_turn_id == message.turn_id
        if self.responder is not None and self.responder.busy and not early:
            await self.responder.cancel("someone else's turn was heard")  # never answer over a new turn
        if self.control.clone_paused:
            decision = Decision(turn_id=message.turn_id, answered=False, reason="person in control")
        elif typed:
            decision = Decision(turn_id=message.turn_id, answered=True, reason="answered", why="typed")
        else:
            decision = self.decider.decide(message)
        self._decided(decision, message)
        if early and self.responder is not None:
            if decision.answered and self.responder.confirm(message):
                self.early_confirmed += 1
                return
            await self.responder.cancel("its early transcript was not confirmed as it was")
        if not decision.answered:
            if decision.reason != "unlikely speech" and self.responder is not None:
                self.responder.conversation.add_heard(message.text)  # meeting context for later answers
                self.responder.warm_context(message.language)  # evaluated now, so the next answer need not
            if decision.reason not in ("too short", "unlikely speech"):
                self._last_unanswered = message  # what "answer this" answers
            return
        await self._respond(message)

    def _decided(self, decision: Decision, message: Transcript) -> None:
        self.decisions.append(decision)
        self.decision_made.set()
        detail = f" ({decision.why})" if decision.why else ""
        logger.info("turn %s: %s%s: %r", decision.turn_id, decision.reason, detail, message.text[:80])
        self.say(decision)

    async def _answer_now(self) -> None:
        """The person asked the clone to answer: the last unanswered remark, or else the next turn heard."""
        last, self._last_unanswered = self._last_unanswered, None
        if last is None or self.control.clone_paused:
            self.decider.asked = True
            logger.info("answer this: the next turn heard will be answered")
            return
        if self.responder is not None:
            self.responder.conversation.take_heard(last.text)
        self._decided(Decision(turn_id=last.turn_id, answered=True, reason="answered", why="asked"), last)
        await self._respond(last)

    async def _respond(self, message: Transcript) -> None:
        if self.preparing:
            self._held_transcript = message  # answered once the profile is ready; only the newest is kept
            logger.info("holding %s until the profile is prepared", message.turn_id)
            return
        if self.responder is not None:
            await self.responder.on_transcript(message)

    async def _on_control(self, message: Control) -> None:
        if message.answer is None:
            message = message.model_copy(update={"answer": self.control.answer})  # an older peer: unchanged
        self.control = message
        if message.answer is not None:
            self.decider.mode = message.answer
        self.control_changed.set()
        logger.info("control: %s%s; answers %s", message.mode, " (muted)" if message.muted else "", self.decider.mode)
        if message.clone_paused and self.responder is not None:
            await self.responder.cancel("the person took over" if message.mode == "person" else "muted")
        self.say(message)  # viewers show who is in control

    async def _apply_profile(self, files: dict[str, Path]) -> None:
        """Make the person's profile the clone's: persona, reference voice, face (idle while preparing)."""
        self.preparing = True
        try:
            await self._apply_profile_files(files)
        finally:
            self.preparing = False
        held, self._held_transcript = self._held_transcript, None
        if held is not None:
            await self._respond(held)

    async def _apply_profile_files(self, files: dict[str, Path]) -> None:
        responder = self.responder
        if "persona.toml" in files and responder is not None:
            persona = load_persona(files["persona.toml"])
            fold = responder.conversation.persona.fold_system
            names = names_for(persona.name, persona.aliases)
            responder.conversation.persona = PersonaPrompt(persona.system_prompt(), fold, names)
            self.decider.names = names
            logger.info("persona: %s", persona.name)
        if "voice.wav" in files and "voice.txt" in files and responder is not None:
            if responder.tts.supports_voice_reference:
                responder.tts = responder.tts.with_reference(files["voice.wav"], files["voice.txt"])
                logger.info("voice: the person's reference clip")
            else:
                logger.info("voice: %s speaks its own voice; the reference is used with --tts fish", responder.tts.name)
        if "face.png" in files and self.speaking is not None:
            face = self.speaking.face.with_portrait(files["face.png"])
            await asyncio.get_running_loop().run_in_executor(None, face.prepare)
            self.speaking.face = face  # from the next frame on
            logger.info("face: the person's portrait")
