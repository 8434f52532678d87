"""Guards issue 20's attribution bug: a turn's latency is measured to the first audio of *its own* answer.

Before the fix the first sound after a turn's end of speech was credited to that turn, so when the answer to a
greeting started just after a question ended, the question was reported as answered in 150 ms.
"""

from __future__ import annotations

import av
import numpy as np

from media.protocol import Metrics, Turn
from peer_local.listener import HeardTurn
from peer_local.turn_latency import SpeechOnsetProbe, turn_latency_report


class SteppedClock:
    """The probe's clock, set by the test to the moment each event happens."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def audio_frame(loud: bool) -> av.AudioFrame:
    samples = np.full((1, 960), 8_000 if loud else 0, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = 48_000
    return frame


def heard(turn_id: str, text: str, start_s: float, end_s: float) -> HeardTurn:
    return HeardTurn(
        turn_id=turn_id,
        text=text,
        language="en",
        start_s=start_s,
        end_s=end_s,
        detected_s=end_s + 0.32,
        asr_start_s=end_s + 0.32,
        asr_done_s=end_s + 1.0,
        audio_s=end_s - start_s,
        asr_ms=680.0,
    )


def play(probe: SpeechOnsetProbe, clock: SteppedClock, start: float, end: float, loud: bool) -> None:
    """20 ms audio frames received between ``start`` and ``end`` (seconds)."""
    for t in np.arange(start, end, 0.02):
        clock.now = float(t)
        probe.on_audio(audio_frame(loud), arrival=float(t))


def test_an_answer_is_credited_to_the_turn_it_answers_not_to_the_turn_that_ended_before_it() -> None:
    clock = SteppedClock()
    probe = SpeechOnsetProbe(clock=clock)
    greeting = heard("t1", "Hello there.", 0.5, 1.0)
    question = heard("t2", "What is the capital of France?", 2.0, 3.0)
    play(probe, clock, 0.0, 3.1, loud=False)  # the avatar is silent while both are said
    probe.on_message(Turn(turn_id="t1", state="thinking"))
    probe.on_message(Turn(turn_id="t1", state="speaking"))  # the greeting's answer, late: after the question
    play(probe, clock, 3.1, 3.14, loud=False)  # still in the jitter buffer
    play(probe, clock, 3.14, 4.5, loud=True)
    probe.on_message(Turn(turn_id="t1", state="done"))
    play(probe, clock, 4.5, 5.5, loud=False)
    probe.on_message(Turn(turn_id="t2", state="speaking"))
    play(probe, clock, 5.5, 5.56, loud=False)
    play(probe, clock, 5.56, 7.0, loud=True)

    report = turn_latency_report([greeting, question], origin=0.0, probe=probe, metrics=[Metrics(turn_id="t2")])
    rows = {row["turn_id"]: row for row in report["turns"]}
    assert rows["t1"]["end_of_speech_to_first_audio_ms"] == 2140.0
    assert rows["t2"]["end_of_speech_to_first_audio_ms"] == 2560.0  # not 140 ms: the greeting's answer
    assert report["end_of_speech_to_first_audio_ms"]["count"] == 2


def test_a_turn_whose_answer_never_sounded_gets_no_figure() -> None:
    clock = SteppedClock()
    probe = SpeechOnsetProbe(clock=clock)
    probe.on_message(Turn(turn_id="t1", state="speaking"))  # cancelled before its first loud frame
    play(probe, clock, 0.0, 0.1, loud=False)
    probe.on_message(Turn(turn_id="t2", state="speaking"))
    play(probe, clock, 0.1, 0.3, loud=True)
    report = turn_latency_report(
        [heard("t1", "one", 0.0, 0.05), heard("t2", "two", 0.0, 0.05)], origin=0.0, probe=probe, metrics=[]
    )
    rows = {row["turn_id"]: row for row in report["turns"]}
    assert "end_of_speech_to_first_audio_ms" not in rows["t1"]
    assert rows["t2"]["end_of_speech_to_first_audio_ms"] == 50.0
