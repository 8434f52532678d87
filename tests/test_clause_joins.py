"""Where clauses meet in an answer: a chunk cut mid-sentence is joined as words are, a sentence's end or a comma
keeps the TTS's own pause (real Piper voice). Guards against a clone that stops for 200 ms inside a sentence
wherever the chunker cut it for latency."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from media.audio import TrailingQuietHolder
from peer_remote.clause_joins import JOIN_LEAD_S, JOIN_TAIL_S, ClauseJoiner, ends_mid_sentence
from peer_remote.tts.piper_voice import PiperSynthesizer

LEVEL = 150  # the joiner's "audible" (int16, about -47 dBFS)


@pytest.mark.parametrize(
    ("words", "mid"),
    [
        ("I'll send you a draft", True),
        ("the budget for", True),
        ("Well,", False),
        ("See you soon!", False),
        ("We meet at ten.", False),
        ('He said "fine."', False),
        ("Wait…", False),
        ("Which one:", False),
    ],
)
def test_a_chunk_ends_mid_sentence_unless_a_mark_makes_a_pause(words: str, mid: bool) -> None:
    assert ends_mid_sentence(words) is mid


def test_the_quiet_after_the_last_sound_waits_and_is_cut_where_the_clause_ends() -> None:
    holder = TrailingQuietHolder(rate=1000, level=LEVEL)
    loud = np.full(10, 3000, np.int16)
    quiet = np.zeros(50, np.int16)
    assert holder.feed(np.concatenate([loud, quiet])).size == 10  # the quiet after it waits
    out = holder.feed(np.concatenate([quiet, loud]))
    assert out.size == 110 and out[-1] == 3000  # a pause inside the clause plays whole, before the next sound
    assert holder.feed(quiet).size == 0
    assert holder.end(keep_s=0.02).size == 20 and holder.dropped == 30
    assert holder.end(keep_s=0.02).size == 0  # nothing held any more


def pause_at_s(audio: np.ndarray, start: int, rate: int) -> float:
    """The quiet between the last audible sample before ``start`` and the first one from it."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) >= LEVEL)
    return float(loud[loud >= start][0] - loud[loud < start][-1]) / rate


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    voice = PiperSynthesizer()
    asyncio.run(voice.load())
    return voice


async def spoken(piper: PiperSynthesizer, clauses: list[str]) -> tuple[np.ndarray, list[int]]:
    """The answer as the joiner lets it play, and where each clause's audio starts."""
    joiner = ClauseJoiner(piper.sample_rate)
    out: list[np.ndarray] = []
    starts: list[int] = []
    for clause in clauses:
        starts.append(sum(b.size for b in out))
        joiner.begin(clause)
        out += [joiner.feed(b) async for b in piper.synthesize(clause)]
        out.append(joiner.end())
    return np.concatenate(out), starts


async def test_a_clause_cut_mid_sentence_joins_the_next_as_words_do(piper: PiperSynthesizer) -> None:
    rate = piper.sample_rate
    cut, starts = await spoken(piper, ["I'll send you a draft", "by tomorrow."])
    whole = np.concatenate([b async for b in piper.synthesize("I'll send you a draft")])
    loud = np.flatnonzero(np.abs(whole.astype(np.int32)) >= LEVEL)
    assert (whole.size - loud[-1]) / rate > 0.1  # alone, the TTS ends the clause with 100+ ms of quiet
    assert pause_at_s(cut, starts[1], rate) <= JOIN_TAIL_S + JOIN_LEAD_S + 0.001  # as between two words
    first = np.flatnonzero(np.abs(cut.astype(np.int32)) >= LEVEL)[0]
    assert first / rate <= 0.006  # the answer's first sound at once (5 ms of lead-in)


async def test_a_sentences_end_keeps_the_voices_own_pause(piper: PiperSynthesizer) -> None:
    answer, starts = await spoken(piper, ["We meet at ten.", "Then we go."])
    assert pause_at_s(answer, starts[1], piper.sample_rate) > 0.12  # as the voice pauses after a sentence
