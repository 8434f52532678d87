"""Live control: the person stays in charge during a meeting.

``take over`` puts the real webcam and microphone on the virtual devices (next frame) and stops the clone from
answering; ``hand back`` returns them to the avatar; ``mute`` keeps the clone on screen but silent; ``skip``
drops the current answer; ``answer-always|addressed|never`` sets when the clone answers (``answer-next`` cycles);
``answer-this`` asks it to answer the last remark it did not answer. The remote is told (``control`` message,
echoed to viewers for the page's badge; ``answer-now``).
"""

from __future__ import annotations

import logging
from typing import Any

from media.events import Event
from media.protocol import AnswerNow, AnswerPolicy, Control, Interrupt
from peer_local.service import LocalPeer
from peer_local.sinks.switch import SourceSwitch

logger = logging.getLogger(__name__)

ANSWER_POLICIES: tuple[AnswerPolicy, ...] = ("always", "addressed", "never")
ACTIONS = (
    "take-over",
    "hand-back",
    "mute",
    "unmute",
    "skip",
    "answer-always",
    "answer-addressed",
    "answer-never",
    "answer-next",
    "answer-this",
)


class LiveControl:
    def __init__(self, peer: LocalPeer, switch: SourceSwitch | None = None, answer: AnswerPolicy = "addressed") -> None:
        self.peer = peer
        self.switch = switch
        self.mode: str = "clone"
        self.muted = False
        self.skips = 0
        self.answer: AnswerPolicy = answer
        self.answer_requests = 0
        self.person_mic_ready = False  # the person's real microphone runs and can go to the meeting
        self.changed: Event[[LiveControl]] = Event("changed")
        peer.channel_opened.connect(self._announce)  # a (re)connected avatar learns the current state

    @property
    def answering(self) -> bool:
        """Whether the clone should answer what it hears."""
        return self.mode == "clone" and not self.muted

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "muted": self.muted,
            "answering": self.answering,
            "skips": self.skips,
            "answer": self.answer,
        }

    def describe(self) -> str:
        if self.mode == "person":
            return "YOU are on camera and microphone; the clone is paused  [h] hand back"
        if self.muted:
            return "the clone is on camera but muted  [m] unmute  [t] take over"
        return (
            f"the clone is speaking for you, answering {self.answer}  [t] take over  [m] mute  [s] skip answer  "
            "[a] answer this  [p] when to answer"
        )

    def _announce(self) -> None:
        self.peer.send(
            Control(mode="person" if self.mode == "person" else "clone", muted=self.muted, answer=self.answer)
        )

    def _changed(self) -> None:
        self._announce()
        logger.info("control: %s", self.describe())
        self.changed.emit(self)

    def take_over(self) -> None:
        self.mode = "person"
        if self.switch is not None:
            self.switch.select("person")
        if not self.person_mic_ready:
            logger.warning("taken over, but your microphone is not available: the meeting hears silence")
        self.peer.send(Interrupt(reason="take-over"))
        self._changed()

    def hand_back(self) -> None:
        self.mode = "clone"
        if self.switch is not None:
            self.switch.select("avatar")
        self._changed()

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        if muted:
            self.peer.send(Interrupt(reason="muted"))
        self._changed()

    def skip(self) -> None:
        self.skips += 1
        self.peer.send(Interrupt(reason="skip"))
        logger.info("control: skipped the current answer")

    def set_answer(self, answer: AnswerPolicy) -> None:
        self.answer = answer
        self._changed()

    def answer_this(self) -> None:
        """Ask the clone to answer the last remark it let pass (or else the next one)."""
        self.answer_requests += 1
        self.peer.send(AnswerNow())
        logger.info("control: asked the clone to answer")

    def act(self, action: str) -> dict[str, Any]:
        """One of :data:`ACTIONS` (also ``toggle-mute``); returns the new state."""
        if action == "take-over":
            self.take_over()
        elif action == "hand-back":
            self.hand_back()
        elif action in ("mute", "unmute", "toggle-mute"):
            self.set_muted(not self.muted if action == "toggle-mute" else action == "mute")
        elif action == "skip":
            self.skip()
        elif action == "answer-next":
            self.set_answer(ANSWER_POLICIES[(ANSWER_POLICIES.index(self.answer) + 1) % len(ANSWER_POLICIES)])
        elif action in ("answer-always", "answer-addressed", "answer-never"):
            self.set_answer(next(p for p in ANSWER_POLICIES if action == f"answer-{p}"))
        elif action == "answer-this":
            self.answer_this()
        else:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        return self.state()
