"""The clone in a meeting (issue 22): it answers when addressed, explains every decision, remembers what it did
not answer, holds its answer while someone speaks, and is interrupted while it is still preparing one.

Guards against: answering every remark and cough, answering over a speaker, barge-in only while speaking.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from benchmarks.harness.speech import SENTENCES, espeak
from media.protocol import DataMessage, Decision, EarlyTranscript, Retract, Speech, Transcript, Turn
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input.file_source import FileAudioSource
from peer_local.control import LiveControl
from peer_local.listener import Listener
from peer_local.service import LocalPeer
from peer_local.session_log import SessionLog, read_log
from peer_local.settings import LocalSettings
from peer_local.transcript_sender import TranscriptSender
from peer_remote.answer_policy import AnswerDecider, AnswerSettings, names_for, said_name
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.llm.embedded import LlamaCppModel
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.messages import Role
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import peer_fields

NAMES = names_for("Alex Example", ["Sasha"])


def heard(turn_id: str, text: str, **confidence: float) -> Transcript:
    return Transcript(turn_id=turn_id, text=text, language="en", **confidence)  # type: ignore[arg-type]


# -- the policy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Alex, what do you think?",
        "alec, can you check the build",  # ASR spellings
        "Alexa, are we on track?",
        "So, Alex Example, any news?",
        "Sasha, ready?",
        "Алекс, як справи?",  # Ukrainian Cyrillic
        "Олексо, що скажеш?",  # Ukrainian vocative of Олекс(а)
        "Саша, ти готовий?",
    ],
)
def test_the_clone_hears_its_name_through_asr_spellings_and_ukrainian_forms(text: str) -> None:
    assert said_name(text, NAMES) is not None


@pytest.mark.parametrize(
    "text", ["Let us ship it on Friday.", "Alexander will present.", "The axle broke", "Who is next?"]
)
def test_other_words_are_not_its_name(text: str) -> None:
    assert said_name(text, NAMES) is None


def test_addressed_answers_its_name_and_follow_up_questions_only_within_the_window() -> None:
    decider = AnswerDecider("addressed", NAMES, AnswerSettings(follow_up_s=8.0))
    assert decider.decide(heard("1", "We should ship on Friday."), now=0.0).reason == "not addressed"
    named = decider.decide(heard("2", "Alex, should we ship on Friday?"), now=1.0)
    assert named.answered and named.why == "name"
    decider.note_answered(now=5.0)
    follow_up = decider.decide(heard("3", "And what about Monday?"), now=9.0)
    assert follow_up.answered and follow_up.why == "follow-up"
    assert decider.decide(heard("4", "I agree with that plan."), now=10.0).reason == "not addressed"  # no question
    assert decider.decide(heard("5", "What about Tuesday?"), now=13.5).reason == "not addressed"  # window over


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("and when will the migration be finished.", True),  # ASR left out the question mark
        ("So what do we do now", True),
        ("Ну, коли буде реліз.", True),
        ("And we ship on Friday.", False),
        ("Okay.", False),
    ],
)
def test_a_follow_up_is_recognised_by_its_question_word_after_lead_ins(text: str, question: bool) -> None:
    decider = AnswerDecider("addressed", NAMES, AnswerSettings(follow_up_s=8.0))
    decider.note_answered(now=0.0)
    assert decider.decide(heard("1", text), now=2.0).answered is question


def test_short_or_unlikely_turns_are_never_answered_in_any_mode() -> None:
    decider = AnswerDecider("always", NAMES)
    assert decider.decide(heard("1", "Alex.")).reason == "too short"
    unlikely = heard("2", "Alex, below now.", no_speech_prob=0.9, avg_logprob=-0.3)
    assert decider.decide(unlikely).reason == "unlikely speech"
    garbled = heard("3", "Alex, below now.", no_speech_prob=0.1, avg_logprob=-1.6)
    assert decider.decide(garbled).reason == "unlikely speech"
    assert decider.decide(heard("4", "Alex, below now.", no_speech_prob=0.1, avg_logprob=-0.4)).answered
    decider.mode = "never"
    assert decider.decide(heard("5", "Alex, what do you think?")).reason == "listening only"
    decider.asked = True  # the person asked through the control endpoint: the next turn is answered
    asked = decider.decide(heard("6", "What do you think?"))
    assert asked.answered and asked.why == "asked" and not decider.asked


def test_unanswered_remarks_are_folded_into_the_next_user_turn_and_turns_alternate() -> None:
    conversation = Conversation(PersonaPrompt("You are Alex."), lambda text: len(text.split()), budget_tokens=200)
    conversation.add_heard("We decided to ship on Friday.")
    conversation.add_heard("Olena will write the notes.")
    conversation.add_user("Alex, what did we just decide?")
    conversation.add_assistant("We ship on Friday; Olena writes the notes.")
    conversation.add_heard("Thanks.")
    conversation.add_user("Alex, who writes the notes?")
    messages = conversation.messages()
    roles = [m.role for m in messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert messages[1].content.splitlines() == [
        "We decided to ship on Friday.",
        "Olena will write the notes.",
        "Alex, what did we just decide?",
    ]
    assert messages[3].content == "Thanks.\nAlex, who writes the notes?"
    conversation.add_heard("Alex, anything to add?")
    assert conversation.take_heard("Alex, anything to add?")  # answered on request: a user turn, not context
    assert not conversation.take_heard("never heard")
    for i in range(200):  # heard context is bounded too
        conversation.add_heard(f"remark number {i} about the plan")
    assert 0 < len(conversation.heard) < 30 and conversation.heard[-1] == "remark number 199 about the plan"


def test_the_meeting_heard_so_far_is_the_start_of_the_next_answers_prompt() -> None:
    """What the avatar evaluates ahead (``pending``) is what the prompt of the next answer starts with."""
    conversation = Conversation(PersonaPrompt("You are Alex."), lambda text: len(text.split()), budget_tokens=200)
    conversation.add_user("Alex, hello?")
    conversation.add_assistant("Hi all.")
    conversation.add_heard("We decided to ship on Friday.")
    conversation.add_heard("Olena will write the notes.")
    ahead = conversation.messages(pending=True)
    assert conversation.heard == ["We decided to ship on Friday.", "Olena will write the notes."]  # nothing moved
    conversation.add_user("Alex, who writes the notes?")
    real = conversation.messages()
    assert [m.role for m in ahead] == [m.role for m in real] == ["system", "user", "assistant", "user"]
    assert ahead[:-1] == real[:-1]
    assert real[-1].content.startswith(ahead[-1].content) and ahead[-1].content.endswith("notes.\n")


# -- over real peers ----------------------------------------------------------------------------------------


class Inbox:
    """What the local peer received over the data channel, with a bounded wait for a message."""

    def __init__(self) -> None:
        self.messages: list[DataMessage] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: DataMessage) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def until(self, found: Callable[[list[DataMessage]], bool], timeout_s: float = 60) -> None:
        async with asyncio.timeout(timeout_s):
            while not found(self.messages):
                self._arrived.clear()
                await self._arrived.wait()

    def states(self, turn_id: str) -> list[str]:
        return [m.state for m in self.messages if isinstance(m, Turn) and m.turn_id == turn_id]

    def decisions(self) -> list[Decision]:
        return [m for m in self.messages if isinstance(m, Decision)]


@contextlib.asynccontextmanager
async def meeting(
    signaling: SignalingService, token: str, avatar: bool = False
) -> AsyncIterator[tuple[RemotePeer, LocalPeer, Inbox]]:
    """A local peer joined to a remote: the test pattern (no models: it decides but has no voice), or the avatar
    with the embedded LLM and Piper."""
    fields = {**peer_fields(signaling, token), "width": 256, "height": 256}
    remote = RemotePeer(RemoteSettings.load({**fields, "source": "avatar" if avatar else "test-pattern"}))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(remote.run(stop))]
    local = LocalPeer(LocalSettings.load({**fields, "input": "none"}), [CollectingSink()])
    received = Inbox()
    local.message_received.connect(received)
    tasks.append(asyncio.create_task(local.run(stop)))
    try:
        async with asyncio.timeout(60):
            session = await local.wait_session()
            await session.channel_open.wait()
        yield remote, local, received
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await asyncio.gather(*tasks)


async def test_the_avatar_decides_by_the_persons_policy_and_explains_every_decision(
    signaling: SignalingService, token: str, tmp_path: Path
) -> None:
    async with meeting(signaling, token) as (remote, local, received):
        control = LiveControl(local, answer="addressed")
        log = SessionLog(tmp_path / "log.jsonl")
        local.message_received.connect(log.on_message)
        control.act("answer-addressed")  # announced as a control message
        async with asyncio.timeout(10):
            while remote.avatar.decider.mode != "addressed":
                remote.avatar.control_changed.clear()
                await remote.avatar.control_changed.wait()
        for message in (
            heard("m1", "We decided to ship on Friday."),
            heard("m2", "Alex, what did we decide?"),
            heard("m3", "Hmm."),
            heard("m4", "Alex, below now.", no_speech_prob=0.95, avg_logprob=-1.5),
        ):
            log.heard(message)
            assert local.send(message)
            turn_id = message.turn_id
            await received.until(lambda seen, t=turn_id: any(isinstance(m, Decision) and m.turn_id == t for m in seen))
        first = received.decisions()
        assert [(d.turn_id, d.reason, d.why) for d in first] == [
            ("m1", "not addressed", None),
            ("m2", "answered", "name"),
            ("m3", "too short", None),
            ("m4", "unlikely speech", None),
        ]
        assert control.act("answer-never")["answer"] == "never"
        async with asyncio.timeout(10):
            while remote.avatar.decider.mode != "never":
                remote.avatar.control_changed.clear()
                await remote.avatar.control_changed.wait()
        assert local.send(heard("m5", "Alex, anything to add?"))
        control.act("answer-this")  # the person asks: the last remark it let pass is answered
        await received.until(lambda _: len(received.decisions()) >= 6)
        later = received.decisions()[4:]
        assert [(d.turn_id, d.reason, d.why) for d in later] == [
            ("m5", "listening only", None),
            ("m5", "answered", "asked"),
        ]
        log.close()
    records = {r["turn_id"]: r for r in read_log(tmp_path / "log.jsonl")}
    assert records["m1"]["decision"] == "not addressed" and records["m3"]["decision"] == "too short"


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    model = FasterWhisperTranscriber()
    model.load()
    return model


async def test_speech_while_the_avatar_prepares_an_answer_interrupts_it_and_holds_the_floor(
    signaling: SignalingService, token: str, tmp_path: Path, transcriber: FasterWhisperTranscriber
) -> None:
    speech = espeak(SENTENCES[2], tmp_path / "remark.wav")
    async with meeting(signaling, token) as (remote, local, _received):
        sender = TranscriptSender(local)
        for session in remote.sessions.values():
            session.send(Turn(turn_id="a1", state="thinking", text="Alex, what do you think?"))
        async with asyncio.timeout(10):
            await sender.turn_state_changed.wait()
        assert sender.avatar_thinking and not sender.avatar_speaking
        listener = Listener(FileAudioSource(speech, realtime=True), transcriber)
        sender.attach(listener)
        listening = asyncio.create_task(listener.run())
        async with asyncio.timeout(30):
            await remote.avatar.interrupt_arrived.wait()
            floor_free_at_interrupt = remote.avatar.floor.free
            transcripts_at_interrupt = len(remote.avatar.transcripts)
            await listening
            while len(remote.avatar.transcripts) < 1:
                remote.avatar.transcript_arrived.clear()
                await remote.avatar.transcript_arrived.wait()
    assert remote.avatar.interrupts_received == 1 and sender.interrupts_sent == 1
    assert transcripts_at_interrupt == 0  # barge-in while thinking, before the remark's transcript
    assert not floor_free_at_interrupt  # the speaker held the floor from their first word
    assert remote.avatar.floor.starts == 1 and remote.avatar.floor.stops == 1 and remote.avatar.floor.free


@pytest.mark.slow
async def test_a_prepared_answer_waits_while_someone_speaks_and_is_dropped_if_their_speech_becomes_a_turn(
    signaling: SignalingService, token: str
) -> None:
    async with meeting(signaling, token, avatar=True) as (remote, local, received):
        assert local.send(Speech(state="start"))
        assert local.send(heard("q1", "Alex, what is your favourite colour?"))
        async with asyncio.timeout(60):
            await remote.avatar.floor.held.wait()  # the first audio is ready and waits
        assert received.states("q1") == ["thinking"]
        assert local.send(Speech(state="stop"))
        await received.until(lambda _: "speaking" in received.states("q1"))
        await received.until(lambda _: "done" in received.states("q1"))

        remote.avatar.floor.held.clear()
        assert local.send(Speech(state="start"))
        assert local.send(heard("q2", "Alex, and what is your favourite food?"))
        async with asyncio.timeout(60):
            await remote.avatar.floor.held.wait()
        assert local.send(heard("q3", "Let us move on to the budget now."))  # the speech became a turn
        await received.until(lambda _: "done" in received.states("q2"))
        assert local.send(Speech(state="stop"))
        await received.until(lambda _: "done" in received.states("q3"))
    q2 = [m for m in received.messages if isinstance(m, Turn) and m.turn_id == "q2"]
    assert [t.state for t in q2] == ["thinking", "done"] and not q2[-1].text  # dropped unheard
    assert received.states("q3") == ["thinking", "speaking", "done"]


async def test_what_the_meeting_says_is_evaluated_ahead_of_the_next_answer(
    signaling: SignalingService, token: str
) -> None:
    async with meeting(signaling, token, avatar=True) as (remote, local, received):
        control = LiveControl(local, answer="never")
        control.act("answer-never")
        async with asyncio.timeout(10):
            while remote.avatar.decider.mode != "never":
                remote.avatar.control_changed.clear()
                await remote.avatar.control_changed.wait()
        responder = remote.avatar.responder
        assert responder is not None and isinstance(responder.llm, LlamaCppModel)
        assert local.send(heard("w1", "We decided to ship the release on Friday."))
        async with asyncio.timeout(60):
            await responder.context_warmed.wait()
        assert "ship the release on Friday." in responder.llm.evaluated_text()  # in the model's cache already
        control.act("answer-always")
        await received.until(lambda seen: any(isinstance(m, Decision) and m.turn_id == "w1" for m in seen))
        assert local.send(heard("w2", "Alex, when do we ship?"))
        await received.until(lambda _: "done" in received.states("w2"))
    assert received.states("w2") == ["thinking", "speaking", "done"]
    evaluated = responder.llm.evaluated_text()
    assert "ship the release on Friday.\nAlex, when do we ship?" in evaluated  # one user turn, in order


async def test_text_typed_on_the_page_is_answered_whatever_the_policy(signaling: SignalingService, token: str) -> None:
    async with meeting(signaling, token) as (remote, local, _received):
        LiveControl(local, answer="never").act("answer-never")
        async with asyncio.timeout(10):
            while remote.avatar.decider.mode != "never":
                remote.avatar.control_changed.clear()
                await remote.avatar.control_changed.wait()
        viewer = LocalPeer(
            LocalSettings.load({**peer_fields(signaling, token), "input": "none"}), [CollectingSink()], role=Role.VIEWER
        )
        seen = Inbox()
        viewer.message_received.connect(seen)
        stop = asyncio.Event()
        task = asyncio.create_task(viewer.run(stop))
        try:
            async with asyncio.timeout(30):
                session = await viewer.wait_session()
                await session.channel_open.wait()
            assert viewer.send(heard("typed-1", "How are you today?"))
            await seen.until(lambda _: bool(seen.decisions()))
        finally:
            stop.set()
            async with asyncio.timeout(15):
                await task
    decision = seen.decisions()[0]
    assert decision.turn_id == "typed-1" and decision.answered and decision.why == "typed"


async def test_an_answer_prepared_on_an_early_transcript_speaks_only_once_its_turn_ends_and_a_retracted_one_is_forgotten(
    signaling: SignalingService, token: str
) -> None:
    async with meeting(signaling, token, avatar=True) as (remote, local, received):
        responder = remote.avatar.responder
        assert responder is not None
        early = EarlyTranscript(turn_id="e1", text="Alex, what is your favourite colour?", language="en")
        assert local.send(early)
        async with asyncio.timeout(60):
            await responder.waiting_confirmation.wait()  # prepared: its first audio is ready and waits
        assert received.states("e1") == ["thinking"] and not received.decisions()
        assert "favourite colour" not in str(responder.conversation.messages())  # nothing remembered yet
        assert local.send(early.confirmed())
        await received.until(lambda _: "done" in received.states("e1"))
        assert received.states("e1") == ["thinking", "speaking", "done"]  # one turn, not started again
        assert [(d.turn_id, d.reason) for d in received.decisions()] == [("e1", "answered")]
        remembered = responder.conversation.messages()
        assert [m.role for m in remembered[1:]] == ["user", "assistant"]
        assert remembered[1].content == early.text and remembered[2].content

        responder.waiting_confirmation.clear()
        assert local.send(EarlyTranscript(turn_id="e2", text="Alex, and what is your favourite food?", language="en"))
        async with asyncio.timeout(60):
            await responder.waiting_confirmation.wait()
        assert local.send(Retract(turn_id="e2"))  # the speaker went on
        await received.until(lambda _: "done" in received.states("e2"))
        assert local.send(heard("e3", "Alex, and what is your favourite food in winter?"))
        await received.until(lambda _: "done" in received.states("e3"))
    e2 = [m for m in received.messages if isinstance(m, Turn) and m.turn_id == "e2"]
    assert [t.state for t in e2] == ["thinking", "done"] and not e2[-1].text  # never spoke
    assert received.states("e3") == ["thinking", "speaking", "done"]
    assert [d.turn_id for d in received.decisions()] == ["e1", "e3"]  # decided on transcripts only
    users = [m.content for m in responder.conversation.messages() if m.role == "user"]
    assert not any("favourite food?" in u for u in users)  # the retracted question is not remembered
    assert remote.avatar.early_started == 2 and remote.avatar.early_confirmed == 1


async def test_after_an_answer_the_next_user_turns_start_is_evaluated_while_nobody_asks(
    signaling: SignalingService, token: str
) -> None:
    async with meeting(signaling, token, avatar=True) as (remote, local, received):
        responder = remote.avatar.responder
        assert responder is not None and isinstance(responder.llm, LlamaCppModel)
        assert local.send(heard("k1", "Alex, what is your favourite colour?"))
        await received.until(lambda _: "done" in received.states("k1"))
        responder.context_warmed.clear()
        async with asyncio.timeout(60):
            await responder.context_warmed.wait()
        answer = responder.conversation.messages()[-1]
        assert answer.role == "assistant" and answer.content
        # SmolLM2's ChatML (detokenized without its special tokens): the answer, then the next user turn's start,
        # so the next prompt shares everything up to its question with what the model holds
        assert f"{answer.content}\nuser\n" in responder.llm.evaluated_text()
