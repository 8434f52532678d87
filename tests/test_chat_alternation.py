"""Regression (issue 16, defect 5): Gemma 2 refuses a prompt whose roles do not alternate.

A failed, empty or barged-in reply stores no assistant turn, which used to leave two user turns in a row; vLLM
then answered 400 "Conversation roles must alternate" on every later turn. The prompts here are rendered with
Gemma 2's own chat template through transformers' own renderer, the way vLLM renders them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import jinja2
import numpy as np
import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from media.clock import MediaClock
from media.protocol import DataMessage, Transcript, Turn
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_llm, build_persona
from peer_remote.box.plan import remote_spec
from peer_remote.box.settings import BoxSettings
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.face.portrait import PortraitAnimator
from peer_remote.llm.base import ChatMessage, LlmError
from peer_remote.responder import Responder
from peer_remote.settings import SpeakingSettings
from peer_remote.tts.base import TtsError

# `chat_template` of google/gemma-2-9b-it's tokenizer_config.json (Gemma 1 and 2 ship the same one), as quoted
# by llama.cpp's tests/test-chat-template.cpp; MamayLM-Gemma-2-9B-IT inherits it.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
GEMMA = PersonaPrompt("You are Alex.", fold_system=PersonaPrompt.needs_folding("MamayLM-Gemma-2-9B-IT"))


def render_gemma2(messages: list[ChatMessage]) -> str:
    """The prompt vLLM would build (transformers' apply_chat_template path); raises TemplateError like it."""
    rendered, _ = render_jinja_template(
        conversations=[[m.as_dict() for m in messages]],
        chat_template=GEMMA2_TEMPLATE,
        add_generation_prompt=True,
        bos_token="<bos>",
    )
    return str(rendered[0])


def test_the_template_refuses_two_user_turns_and_a_system_turn() -> None:
    with pytest.raises(jinja2.TemplateError, match="roles must alternate"):
        render_gemma2([ChatMessage("user", "Hi"), ChatMessage("user", "Hello?")])
    with pytest.raises(jinja2.TemplateError, match="System role not supported"):
        render_gemma2([ChatMessage("system", "You are Alex."), ChatMessage("user", "Hi")])


def test_the_box_s_openai_backend_sends_gemma_no_system_turn() -> None:
    """The box runs `avatar remote --llm openai --llm-model <MamayLM>`: the persona is folded into the first user
    turn, since Gemma 2's template refuses a system role."""
    box = BoxSettings.load({"token": "t"})
    argv = remote_spec(box, "http://127.0.0.1:8765", "t").argv
    flags = dict(zip(argv, argv[1:], strict=False))
    settings = SpeakingSettings(llm="openai", llm_url=flags["--llm-url"], llm_model=flags["--llm-model"])
    persona = build_persona(settings, build_llm(settings).name)
    conversation = Conversation(persona, len)
    conversation.add_user("Hi")
    assert render_gemma2(conversation.messages()).startswith(f"<bos><start_of_turn>user\n{persona.text}\n\nHi")


@pytest.mark.parametrize("reply", ["", "   "], ids=["failed turn", "empty reply"])
def test_a_reply_that_stored_nothing_keeps_the_prompt_alternating(reply: str) -> None:
    conversation = Conversation(GEMMA, len)
    conversation.add_user("What did we decide?")
    conversation.add_assistant("We ship on Friday.")
    conversation.add_user("Who tests it?")
    conversation.add_assistant(reply)  # what the responder stores after an LLM/TTS error or an empty answer
    conversation.add_user("Hello, are you there?")
    messages = conversation.messages("en")
    prompt = render_gemma2(messages)
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[-1].content == "Who tests it?\n\nHello, are you there?"  # nothing the person said is lost
    assert prompt.startswith("<bos><start_of_turn>user\nYou are Alex. Reply in English.\n\nWhat did we decide?")
    assert prompt.endswith(
        "<start_of_turn>user\nWho tests it?\n\nHello, are you there?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_memory_stays_bounded_and_alternating_through_many_failed_turns() -> None:
    conversation = Conversation(GEMMA, lambda text: len(text.split()), budget_tokens=40)
    for i in range(20):
        conversation.add_user(f"question {i} about the plan")
        conversation.add_assistant("" if i % 3 else f"answer {i}")
    conversation.add_user("last question")
    messages = conversation.messages()
    render_gemma2(messages)
    assert messages[-1].content.endswith("last question")
    assert sum(len(m.content.split()) for m in messages) <= 40 + 4 * len(messages)


class GemmaTemplateChatStandIn:
    """A STAND-IN for vLLM's chat endpoint: it renders the prompt with Gemma 2's template first and answers the
    template's error as an error (vllm/entrypoints/openai/serving_chat.py returns 400 when
    apply_hf_chat_template raises), then streams nothing until the test lets it speak."""

    name = "gemma-template-stand-in"

    def __init__(self) -> None:
        self.prompts: list[list[ChatMessage]] = []
        self.errors: list[str] = []
        self.thinking = asyncio.Event()

    async def load(self) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def pause_generation(self, paused: bool) -> None:
        return None

    async def close(self) -> None:
        return None

    async def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        self.prompts.append(list(messages))
        try:
            render_gemma2(messages)
        except jinja2.TemplateError as exc:
            self.errors.append(str(exc))
            raise LlmError(f"LLM server answered 400: {exc}") from exc
        self.thinking.set()
        await asyncio.Event().wait()  # still thinking when the person speaks again
        yield ""


class SilentVoice:
    """Never reached in these turns: no clause is produced before the barge-in."""

    name = "silent"
    sample_rate = 16_000
    supports_voice_reference = False

    def with_reference(self, clip: Path, transcript: Path) -> SilentVoice:
        raise TtsError("a stand-in has no voice to clone")

    async def load(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        yield np.zeros(160, dtype=np.int16)


async def test_a_barge_in_before_the_reply_keeps_the_next_prompt_alternating(tmp_path: Path) -> None:
    llm = GemmaTemplateChatStandIn()
    producer = AvatarProducer(PortraitAnimator(width=128, height=128, cache_dir=tmp_path))
    stream = AVStream(producer, MediaClock(), fps=25)
    sent: list[DataMessage] = []
    responder = Responder(llm, SilentVoice(), Conversation(GEMMA, llm.count_tokens), producer, stream, sent.append)
    stream.start()
    try:
        for turn, text in enumerate(["Tell me about the plan.", "Sorry, I meant the budget.", "And the dates?"]):
            llm.thinking.clear()
            await responder.on_transcript(Transcript(turn_id=str(turn), text=text, language="en"))
            async with asyncio.timeout(10):
                await llm.thinking.wait()  # the model got a prompt it accepted; the next transcript barges in
    finally:
        await responder.close()
        await stream.stop()
    assert llm.errors == []
    assert [[m.role for m in prompt] for prompt in llm.prompts] == [["user"]] * 3
    assert llm.prompts[-1][0].content.endswith(
        "Tell me about the plan.\n\nSorry, I meant the budget.\n\nAnd the dates?"
    )
    assert [m.state for m in sent if isinstance(m, Turn)].count("done") == 3


def test_when_memory_is_full_the_oldest_turns_go_several_at_once_so_the_prompts_start_rarely_changes() -> None:
    conversation = Conversation(PersonaPrompt("You are Alex."), lambda text: len(text.split()), budget_tokens=200)
    firsts: list[str] = []
    for i in range(40):
        conversation.add_user(f"question number {i} about the plan for the launch")
        prompt = conversation.messages("en")
        assert sum(len(m.content.split()) + 4 for m in prompt[1:]) <= 200  # within the budget, always
        assert prompt[1].role == "user" and prompt[-1].content.endswith(f"{i} about the plan for the launch")
        firsts.append(prompt[1].content)
        conversation.add_assistant(f"answer number {i} about the plan for the launch")
    changes = sum(a != b for a, b in zip(firsts, firsts[1:], strict=False))
    assert 0 < changes <= 40 // 3  # the memory was trimmed, but a prompt's start changed at most every third turn
