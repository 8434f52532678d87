"""Bridges the listener and the avatar: transcripts and barge-in out, the avatar's turn state in."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from media.events import Event
from media.protocol import (
    DataMessage,
    EarlyTranscript,
    Interrupt,
    Metrics,
    Retract,
    Speech,
    Transcript,
    TranscriptTimings,
    Turn,
)
from peer_local.listener import HeardTurn, Listener
from peer_local.service import LocalPeer

logger = logging.getLogger(__name__)

PENDING_TRANSCRIPTS = 16


class TranscriptSender:
    """Sends each heard turn as a ``transcript``, ``speech`` start/stop (the avatar holds its answer while
    someone speaks) and ``interrupt`` on barge-in: at once while the avatar speaks, and once speech is confirmed
    (not a click) while it prepares an answer. Keeps transcripts that could not be sent (no connection yet) and
    sends them when the data channel opens. ``answering`` says whether heard turns go to the avatar at all
    (live control: not while the person is in charge). ``early``: a turn transcribed while its end is being
    confirmed goes out at once as an ``early-transcript`` (the avatar prepares its answer during the wait), and a
    ``retract`` follows if the speaker goes on."""

    def __init__(
        self,
        peer: LocalPeer,
        half_duplex: bool = False,
        answering: Callable[[], bool] = lambda: True,
        echo_tail_s: float = 0.0,
        early: bool = True,
    ) -> None:
        self.peer = peer
        self.listener: Listener | None = None
        self.half_duplex = half_duplex
        self.answering = answering
        self.echo_tail_s = echo_tail_s  # half-duplex: still deaf this long after the avatar stops
        self.early = early
        self.early_sent: list[EarlyTranscript] = []
        self.retracted: list[str] = []
        self.avatar_speaking = False
        self.avatar_thinking = False
        self.speech_messages_sent = 0
        self.current_turn: str | None = None
        self.sent: list[Transcript] = []
        self.interrupts_sent = 0
        self.received: list[DataMessage] = []
        self.turn_state_changed = asyncio.Event()
        self._pending: deque[Transcript] = deque(maxlen=PENDING_TRANSCRIPTS)
        self.transcript_sent: Event[[Transcript]] = Event("transcript_sent")  # e.g. the session log
        peer.message_received.connect(self.on_message)
        peer.channel_opened.connect(self.flush)

    def attach(self, listener: Listener) -> None:
        self.listener = listener
        listener.turn_heard.connect(self.on_turn)
        listener.speech_started.connect(self.on_speech_start)
        listener.speech_confirmed.connect(self.on_speech_confirmed)
        listener.speech_stopped.connect(self.on_speech_stop)
        if self.early:
            listener.turn_early.connect(self.on_turn_early)
            listener.early_dropped.connect(self.on_early_dropped)

    def on_speech_start(self, t_s: float) -> None:
        if self.peer.send(Speech(state="start")):
            self.speech_messages_sent += 1
        if self.avatar_speaking and not self.half_duplex:
            self._barge_in(t_s, "speaking")

    def on_speech_confirmed(self, t_s: float) -> None:
        if self.avatar_thinking:  # nothing of the avatar's is playing yet: no echo to mistake, even half-duplex
            self._barge_in(t_s, "preparing an answer")

    def on_speech_stop(self, t_s: float) -> None:
        if self.peer.send(Speech(state="stop")):
            self.speech_messages_sent += 1

    def _barge_in(self, t_s: float, state: str) -> None:
        if self.peer.send(Interrupt(reason="barge-in", turn_id=self.current_turn)):
            self.interrupts_sent += 1
            logger.info("barge-in at %.2f s: interrupting the avatar (%s)", t_s, state)

    def on_turn_early(self, turn: HeardTurn) -> None:
        """Only live: an early transcript that cannot go now is of no use later (the turn itself will be sent)."""
        if self.answering() and self.peer.send(message := EarlyTranscript(**_heard_fields(turn))):
            self.early_sent.append(message)
            logger.debug("early transcript %s sent: %r", turn.turn_id, turn.text[:60])

    def on_early_dropped(self, turn_id: str) -> None:
        if any(m.turn_id == turn_id for m in self.early_sent) and self.peer.send(Retract(turn_id=turn_id)):
            self.retracted.append(turn_id)
            logger.debug("early transcript %s retracted: the speaker went on", turn_id)

    def on_turn(self, turn: HeardTurn) -> None:
        if not self.answering():
            logger.info("heard %r; not sent: the person is in charge", turn.text[:60])
            return
        message = Transcript(**_heard_fields(turn))
        if self.peer.send(message):
            self._sent(message)
        else:
            if len(self._pending) == self._pending.maxlen:
                logger.warning("no connection to the avatar: dropping the oldest unsent transcript")
            self._pending.append(message)
            logger.info("no connection to the avatar yet: transcript %s kept for later", turn.turn_id)

    def flush(self) -> None:
        while self._pending:
            message = self._pending[0]
            if not self.peer.send(message.model_copy(update={"sent_at": time.time()})):
                return
            self._sent(self._pending.popleft())

    def _sent(self, message: Transcript) -> None:
        self.sent.append(message)
        self.transcript_sent.emit(message)

    def on_message(self, message: DataMessage) -> None:
        self.received.append(message)
        if isinstance(message, Turn):
            self.current_turn = message.turn_id
            self.avatar_speaking = message.state == "speaking"
            self.avatar_thinking = message.state == "thinking"
            self.turn_state_changed.set()
            if self.listener is not None and self.half_duplex:
                self.listener.set_muted(self.avatar_speaking, self.echo_tail_s)
        elif isinstance(message, Metrics):
            logger.info(
                "turn %s metrics: %s", message.turn_id, ", ".join(f"{k}={v:.0f}" for k, v in message.values.items())
            )


def _heard_fields(turn: HeardTurn) -> dict[str, Any]:
    """What ``transcript`` and ``early-transcript`` carry of a heard turn."""
    return {
        "turn_id": turn.turn_id,
        "text": turn.text,
        "language": turn.language,
        "timings": TranscriptTimings(
            speech_start_s=turn.start_s,
            speech_end_s=turn.end_s,
            asr_start_s=turn.asr_start_s,
            asr_done_s=turn.asr_done_s,
        ),
        "sent_at": time.time(),
        "no_speech_prob": turn.no_speech_prob,
        "avg_logprob": turn.avg_logprob,
    }
