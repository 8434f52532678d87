"""The persona and a bounded conversation memory, rendered for the model's chat template."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from peer_remote.llm.base import ChatMessage

DEFAULT_PERSONA = (
    "You are Alex, joining a video call as yourself. Speak naturally, in the first person, like in a meeting. "
    "Reply briefly: one or two short sentences. Never mention being an AI or a model."
)
LANGUAGE_NAMES = {"en": "English", "uk": "Ukrainian"}
# when the turns outgrow the budget, the oldest go until the rest fill this share of it, so that the prompt's start
# stays the same for the next several turns: a model's cache (llama.cpp's, a server's prefix cache) reuses only a
# common prefix, and a window sliding by one turn each time had every prompt evaluated whole (~3.7 s for 1024
# tokens with the embedded model on two cores)
TRIM_TO = 0.6


@dataclass(frozen=True)
class PersonaPrompt:
    """Who the clone is; ``fold_system`` puts it into the first user turn (Gemma 2 rejects a system role)."""

    text: str = DEFAULT_PERSONA
    fold_system: bool = False
    names: tuple[str, ...] = ("Alex",)  # what the clone answers to (the persona's name and aliases)

    @staticmethod
    def needs_folding(model_name: str) -> bool:
        return "gemma" in model_name.lower() or "mamay" in model_name.lower()


class Conversation:
    """User and assistant turns, oldest dropped first to stay within ``budget_tokens`` (several at once, down to
    ``TRIM_TO`` of it, so that the prompt's start changes rarely).

    Turns alternate: a user turn after a failed, empty or barged-in reply (nothing stored for it) is merged into
    the unanswered one, since strict chat templates (Gemma 2's) refuse two turns of one role in a row. What was
    heard but not answered (meeting context) waits, bounded, and is folded into the next user turn.
    """

    def __init__(self, persona: PersonaPrompt, count_tokens: Callable[[str], int], budget_tokens: int = 1024) -> None:
        self.persona = persona
        self.count_tokens = count_tokens
        self.budget_tokens = budget_tokens
        self._turns: deque[ChatMessage] = deque()
        self._heard: deque[str] = deque()

    def add_heard(self, text: str) -> None:
        """A remark heard in the meeting and not answered: context for the next answer (oldest dropped first)."""
        if not text.strip():
            return
        self._heard.append(text.strip())
        while len(self._heard) > 1 and sum(self.count_tokens(h) + 1 for h in self._heard) > self.budget_tokens // 2:
            self._heard.popleft()

    def take_heard(self, text: str) -> bool:
        """Remove the newest heard remark equal to ``text`` (it is about to be answered as a user turn)."""
        for i in range(len(self._heard) - 1, -1, -1):
            if self._heard[i] == text.strip():
                del self._heard[i]
                return True
        return False

    @property
    def heard(self) -> list[str]:
        return list(self._heard)

    def add_user(self, text: str) -> None:
        self._add(self._user_turn(text))
        self._heard.clear()

    def _user_turn(self, text: str) -> ChatMessage:
        """``text`` as a user turn, after the remarks heard since the last one (folded in)."""
        return ChatMessage("user", "\n".join([*self._heard, text]))

    def add_assistant(self, text: str) -> None:
        if text.strip():
            self._add(ChatMessage("assistant", text.strip()))

    def _add(self, turn: ChatMessage) -> None:
        if self._turns and self._turns[-1].role == turn.role:
            self._turns[-1] = self._merged(self._turns[-1], turn)
        else:
            self._turns.append(turn)

    @staticmethod
    def _merged(first: ChatMessage, second: ChatMessage) -> ChatMessage:
        return ChatMessage(first.role, f"{first.content}\n\n{second.content}")

    def messages(
        self, language: str | None = None, pending: bool = False, question: str | None = None
    ) -> list[ChatMessage]:
        """The prompt: persona, then as many recent turns as fit the budget, starting with a user turn.
        ``pending``: the remarks heard since, as the user turn they will start (for evaluating it ahead);
        ``question``: as if it had been added as the user turn (nothing is remembered yet: an early transcript
        that may still be retracted). Memory is trimmed only for a prompt of what is remembered."""
        system = self.persona.text
        if language and language in LANGUAGE_NAMES:
            system += f" Reply in {LANGUAGE_NAMES[language]}."
        budget = self.budget_tokens - self.count_tokens(system)
        kept: list[ChatMessage] = []
        turns = list(self._turns)
        ahead = self._user_turn(question) if question is not None else None
        if ahead is None and pending:
            ahead = self._user_turn("")  # the question will follow (after the remarks heard)
        if ahead is not None:
            turns = (
                [*turns[:-1], self._merged(turns[-1], ahead)] if turns and turns[-1].role == "user" else [*turns, ahead]
            )
        costs = [self.count_tokens(message.content) + 4 for message in turns]
        if sum(costs) > budget:
            budget = int(budget * TRIM_TO)
        for message, cost in zip(reversed(turns), reversed(costs), strict=True):
            if cost > budget and kept:
                break
            kept.append(message)
            budget -= cost
        kept.reverse()
        while kept and kept[0].role != "user":
            kept.pop(0)
        while ahead is None and not pending and len(self._turns) > len(kept):
            self._turns.popleft()  # forget what no longer fits: memory stays bounded
        if self.persona.fold_system and kept:
            first = kept[0]
            return [ChatMessage("user", f"{system}\n\n{first.content}"), *kept[1:]]
        return [ChatMessage("system", system), *kept]
