"""The remote peer: joins signaling as ``remote`` and answers every subscriber from one shared stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from media.clock import MediaClock
from media.producer import AVProducer
from media.profile.persona import load_persona
from media.protocol import (
    AnswerNow,
    Control,
    DataMessage,
    Decision,
    Error,
    Interrupt,
    ProfileChunk,
    ProfileOffer,
    Speech,
    Transcript,
    Turn,
)
from media.rtc import patches
from media.rtc.codecs import set_x264_preset
from media.rtc.ice import pin_host_addresses
from media.rtc.rendezvous import join_room
from media.stream import AVStream
from media.test_pattern import TestPatternProducer
from peer_remote.answer_policy import AnswerDecider, names_for
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_face, build_llm, build_persona, build_tts, profile_cache_dir
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.floor import Floor
from peer_remote.profile_receiver import ProfileCache, ProfileReceiver
from peer_remote.responder import ReplySettings, Responder
from peer_remote.settings import RemoteSettings
from peer_remote.subscriber import SubscriberSession
from peer_remote.tts.fish import FishReference
from peer_remote.whip_publisher import WhipPublisher, WhipTarget
from signaling.client import SignalingClient
from signaling.messages import Answer, Bye, Candidate, Offer, PeerJoined, PeerLeft, Role

logger = logging.getLogger(__name__)
# what only the person's own laptop may send; viewers (the preview page) may type transcripts, nothing more
# (a viewer's `speech start` would hold the clone's floor, its `answer-now` make it answer)
LOCAL_ONLY = (Interrupt, Speech, AnswerNow, Control, ProfileOffer, ProfileChunk)


ProducerWrapper = Callable[[AVProducer, MediaClock], AVProducer]  # wraps what is streamed (benchmarks stamp frames)


def build_producer(settings: RemoteSettings, clock: MediaClock) -> AVProducer:
    if settings.source == "test-pattern":
        return TestPatternProducer(clock, settings.width, settings.height)
    return AvatarProducer(build_face(settings, settings.width, settings.height))


class RemotePeer:
    """Serves the avatar stream to subscribers in one room until stopped."""

    def __init__(
        self, settings: RemoteSettings, producer: AVProducer | None = None, wrap_producer: ProducerWrapper | None = None
    ) -> None:
        self.settings = settings
        self.clock = MediaClock()
        self.producer = producer or build_producer(settings, self.clock)
        streamed = wrap_producer(self.producer, self.clock) if wrap_producer is not None else self.producer
        self.stream = AVStream(streamed, self.clock, settings.fps, settings.lookahead_s)
        self.responder: Responder | None = None
        self.floor = Floor()
        self.decider = AnswerDecider("always", tuple(settings.names) or ("Alex",), settings.answer_settings())
        self.decisions: list[Decision] = []
        self.decision_made = asyncio.Event()
        self._last_unanswered: Transcript | None = None
        if isinstance(self.producer, AvatarProducer):
            llm = build_llm(settings)
            persona = build_persona(settings, llm.name)
            self.decider.names = persona.names
            conversation = Conversation(persona, llm.count_tokens, settings.context_tokens)
            self.responder = Responder(
                llm,
                build_tts(settings),
                conversation,
                self.producer,
                self.stream,
                self.broadcast,
                ReplySettings(settings.max_tokens, settings.temperature, settings.floor_max_hold_s),
                self.floor,
            )
        self.sessions: dict[str, SubscriberSession] = {}
        self.sessions_changed = asyncio.Event()  # set whenever a subscriber session is added or removed
        self.connected = asyncio.Event()
        self.transcripts: list[Transcript] = []
        self.transcript_arrived = asyncio.Event()
        self.interrupts_received = 0
        self.interrupt_arrived = asyncio.Event()
        self._roles: dict[str, Role] = {}
        self.control = Control(mode="clone", answer="always")
        self.control_changed = asyncio.Event()
        self.preparing = False
        self._held_transcript: Transcript | None = None
        self.publisher: WhipPublisher | None = None
        if settings.publish_whip:
            token = settings.publish_token.get_secret_value() if settings.publish_token else None
            target = WhipTarget(settings.publish_whip, token, settings.codec)
            self.publisher = WhipPublisher(target, self.stream, settings.rtc_ice_servers())
        self.profiles = ProfileReceiver(ProfileCache(profile_cache_dir(settings)), self._apply_profile, self.broadcast)
        if settings.ice_host_addresses:
            pin_host_addresses(settings.ice_host_addresses)
        set_x264_preset(settings.x264_preset)
        patches.install()

    async def prepare(self) -> None:
        """Load models and prepare the face before joining (progress in the log)."""
        if isinstance(self.producer, AvatarProducer):
            logger.info("preparing the face (%s) ...", self.producer.face.name)
            await asyncio.get_running_loop().run_in_executor(None, self.producer.face.prepare)
        if self.responder is not None:
            logger.info("loading the LLM (%s) and the voice (%s) ...", self.responder.llm.name, self.responder.tts.name)
            await self.responder.load()
            logger.info("models ready")

    def broadcast(self, message: DataMessage) -> None:
        """Send to every subscriber (the local peer and viewers see the avatar's turns)."""
        if isinstance(message, Turn) and message.state == "done" and message.text:
            self.decider.note_answered()  # a question within the follow-up window is for the clone
        for session in list(self.sessions.values()):
            session.send(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Stay joined (reconnecting to signaling with backoff) until ``stop`` is set."""
        await self.prepare()
        self.stream.start()
        # an SFU behind a WHIP endpoint: one more peer connection, alongside the subscribers, until we stop
        stop_publishing = asyncio.Event()
        publishing = asyncio.create_task(self.publisher.run(stop_publishing)) if self.publisher else None
        try:
            while (client := await join_room(self.settings, Role.REMOTE, stop)) is not None:
                logger.info(
                    "joined room %s as remote (%s)",
                    self.settings.room,
                    client.welcome.peer_id if client.welcome else "?",
                )
                if client.welcome:
                    self._roles = {p.peer_id: p.role for p in client.welcome.peers}
                self.connected.set()
                try:
                    await self._serve(client, stop)
                finally:
                    self.connected.clear()
                    await client.close()
        finally:
            # subscribers keep their media through a signaling outage; they end only with us
            if publishing is not None:
                stop_publishing.set()
                await _stopped(publishing)
            if self.responder is not None:
                await self.responder.close()
            await self._close_sessions()
            await self.stream.stop()

    async def _serve(self, client: SignalingClient, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        messages = client.messages().__aiter__()
        try:
            while True:
                next_message = asyncio.ensure_future(messages.__anext__())
                done, _ = await asyncio.wait({next_message, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if stop_wait in done:
                    next_message.cancel()
                    return
                try:
                    message = next_message.result()
                except StopAsyncIteration:
                    logger.warning("signaling connection lost; reconnecting")
                    return
                await self._handle_signal(client, message)
        finally:
            stop_wait.cancel()

    async def _handle_signal(self, client: SignalingClient, message: object) -> None:
        if isinstance(message, PeerJoined):
            self._roles[message.peer_id] = message.role
        elif isinstance(message, Offer) and message.from_:
            await self._answer(client, message)
        elif isinstance(message, Candidate) and message.from_ in self.sessions:
            try:
                await self.sessions[message.from_].add_candidate(message)
            except ValueError as exc:
                logger.info("ignoring candidate from %s: %s", message.from_, exc)
        elif isinstance(message, Bye) and message.from_ in self.sessions:
            await self.sessions[message.from_].close()
        elif isinstance(message, PeerLeft):
            self._roles.pop(message.peer_id, None)
            if message.peer_id in self.sessions:
                await self.sessions[message.peer_id].close()

    async def _answer(self, client: SignalingClient, offer: Offer) -> None:
        peer_id = offer.from_
        assert peer_id is not None
        if peer_id in self.sessions:
            await self.sessions.pop(peer_id).close()
        if len(self.sessions) >= self.settings.max_subscribers:
            await client.send(Bye(to=peer_id, reason="too many subscribers"))
            return
        role = self._roles.get(peer_id, Role.VIEWER)
        advertised = client.welcome.ice_servers if client.welcome else []
        session = SubscriberSession(
            peer_id,
            role,
            self.settings,
            self.stream,
            self._on_message,
            self._session_closed,
            advertised,
            on_channel_open=self._greet,
        )
        self.sessions[peer_id] = session
        self.sessions_changed.set()
        try:
            sdp = await session.answer(offer.sdp)
        except (
            ValueError,
            AssertionError,
            RuntimeError,
            InternalError,
            InvalidAccessError,
            InvalidStateError,
            OperationError,
        ) as exc:
            logger.warning("cannot answer %s: %s", peer_id, exc)
            await session.close()
            await client.send(Bye(to=peer_id, reason=f"bad offer: {exc}"[:200]))
            return
        await client.send(Answer(to=peer_id, sdp=sdp))
        logger.info("answered %s; %d subscriber(s)", peer_id, len(self.sessions))

    def _session_closed(self, session: SubscriberSession) -> None:
        if not self.floor.free:
            self.floor.speech_stopped()  # a speaker's peer that went away holds no floor
        if self.sessions.get(session.peer_id) is session:
            del self.sessions[session.peer_id]
            self.sessions_changed.set()
            logger.info("subscriber %s gone; %d left", session.peer_id, len(self.sessions))

    async def _on_message(self, session: SubscriberSession, message: DataMessage) -> None:
        if isinstance(message, LOCAL_ONLY) and session.role is not Role.LOCAL:
            # a viewer token (a browser preview) must not steer the clone: take over, mute, skip, replace its face
            logger.warning("refused %s from %s (%s)", message.type, session.peer_id, session.role.value)
            session.send(Error(code="not-allowed", message=f"only the local peer may send {message.type} messages"))
            return
        if isinstance(message, Transcript):
            self.transcripts.append(message)
            self.transcript_arrived.set()
            logger.info("transcript from %s: %r", session.peer_id, message.text[:80])
            await self._answer_transcript(message, typed=session.role == Role.VIEWER)
        elif isinstance(message, Interrupt):
            self.interrupts_received += 1
            if self.responder is not None:
                await self.responder.interrupt()
            self.stream.interrupt()
            self.interrupt_arrived.set()
        elif isinstance(message, ProfileOffer):
            await self.profiles.on_offer(message, session.send)
        elif isinstance(message, ProfileChunk):
            await self.profiles.on_chunk(message, session.send)
        elif isinstance(message, Control):
            await self._on_control(message)
        elif isinstance(message, Speech):
            if message.state == "start":
                self.floor.speech_started()
            else:
                self.floor.speech_stopped()
        elif isinstance(message, AnswerNow):
            await self._answer_now()
        elif not isinstance(message, Error):
            session.send(Error(code="unexpected", message=f"the remote peer does not accept {message.type} messages"))

    async def _answer_transcript(self, message: Transcript, typed: bool = False) -> None:
        """Decide, say why, remember, answer. ``typed``: from the preview page, a deliberate request."""
        if self.responder is not None and self.responder.busy:
            await self.responder.cancel("someone else's turn was heard")  # never answer over a new turn
        if self.control.clone_paused:
            decision = Decision(turn_id=message.turn_id, answered=False, reason="person in control")
        elif typed:
            decision = Decision(turn_id=message.turn_id, answered=True, reason="answered", why="typed")
        else:
            decision = self.decider.decide(message)
        self._decided(decision, message)
        if not decision.answered:
            if decision.reason != "unlikely speech" and self.responder is not None:
                self.responder.conversation.add_heard(message.text)  # meeting context for later answers
            if decision.reason not in ("too short", "unlikely speech"):
                self._last_unanswered = message  # what "answer this" answers
            return
        await self._respond(message)

    def _decided(self, decision: Decision, message: Transcript) -> None:
        self.decisions.append(decision)
        self.decision_made.set()
        detail = f" ({decision.why})" if decision.why else ""
        logger.info("turn %s: %s%s: %r", decision.turn_id, decision.reason, detail, message.text[:80])
        self.broadcast(decision)

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

    def _greet(self, session: SubscriberSession) -> None:
        """A new subscriber learns who is in control (a page opened after a take-over shows it at once)."""
        if self.control.clone_paused:
            session.send(self.control)

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
        self.broadcast(message)  # viewers show who is in control

    async def _apply_profile(self, files: dict[str, Path]) -> None:
        """Make the person's profile the avatar's: persona, reference voice, face (idle while preparing)."""
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
            if hasattr(responder.tts, "reference"):
                reference = FishReference.from_files(files["voice.wav"], files["voice.txt"])
                responder.tts.reference = reference
                logger.info("voice: the person's reference clip")
            else:
                logger.info("voice: %s speaks its own voice; the reference is used with --tts fish", responder.tts.name)
        if "face.png" in files and isinstance(self.producer, AvatarProducer):
            settings = self.settings.model_copy(update={"face_image": files["face.png"]})
            face = build_face(settings, self.producer.width, self.producer.height)
            await asyncio.get_running_loop().run_in_executor(None, face.prepare)
            self.producer.face = face  # from the next frame on
            logger.info("face: the person's portrait")

    async def _close_sessions(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()


async def _stopped(task: asyncio.Task[None], timeout_s: float = 10.0) -> None:
    """Wait for a task told to stop; cancel it past ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            await task
    except TimeoutError:
        logger.warning("%s did not stop within %.0f s; cancelled", task.get_name(), timeout_s)
