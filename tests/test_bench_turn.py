"""`avatar bench turn` reports the product's turn beside the naive chain of its own models, measured in one run
(issue 22: a figure without its baseline says nothing on a machine of unknown speed)."""

from __future__ import annotations

import pytest

from benchmarks.naive_chain import SENTENCES_ONLY
from benchmarks.turn import run_turn_bench
from peer_remote.chunking import ClauseChunker
from peer_remote.settings import RemoteSettings

pytestmark = pytest.mark.slow


async def test_bench_turn_measures_the_naive_chain_of_the_same_models_in_the_same_run() -> None:
    result = await run_turn_bench(RemoteSettings.load({}), turns=2)
    assert result["transcript_to_first_audio_ms"]["count"] == 2
    assert result["naive_chain_ms"]["count"] == 2 and len(result["naive_chain_per_turn_ms"]) == 2
    assert all(ms > 0 for ms in result["naive_chain_per_turn_ms"])
    assert result["ratio_to_naive_chain_p50"] == pytest.approx(
        result["transcript_to_first_audio_ms"]["p50"] / result["naive_chain_ms"]["p50"], abs=0.01
    )
    naive = result["naive_chain_stages_ms"]  # the chain's stages, named as the product's
    assert naive["llm_first_token_ms"]["p50"] <= naive["first_chunk_ready_ms"]["p50"]
    assert naive["first_chunk_ready_ms"]["p50"] <= naive["tts_first_audio_ms"]["p50"] == result["naive_chain_ms"]["p50"]
    assert all(result["first_chunk"]) and result["naive_chain_first_chunk_chars"]["p50"] > 0
    same = result["same_prompt_chain_ms"]  # the chain given the product's own two prompts
    assert same["count"] == 2 and result["same_prompt_chain_stages_ms"]["tts_first_audio_ms"]["p50"] == same["p50"]
    assert result["ratio_to_same_prompt_chain_p50"] == pytest.approx(
        result["transcript_to_first_audio_ms"]["p50"] / same["p50"], abs=0.01
    )
    clause = result["clause_chain_ms"]  # the chain cut where the product cuts its first clause
    assert clause["count"] == 2 and result["clause_chain_stages_ms"]["tts_first_audio_ms"]["p50"] == clause["p50"]
    assert result["ratio_to_clause_chain_p50"] == pytest.approx(
        result["transcript_to_first_audio_ms"]["p50"] / clause["p50"], abs=0.01
    )


def test_the_naive_chain_waits_for_the_end_of_the_first_sentence_as_issue_22_defines_it() -> None:
    """Not the product's first-clause cuts (a comma, a phrase start, a length): those are what the product does
    better than the chain."""
    text = "Well, I think that we could send the whole report to the design team by Friday. Then we rest."
    chunker = ClauseChunker(SENTENCES_ONLY)
    assert chunker.feed(text) == ["Well, I think that we could send the whole report to the design team by Friday."]
    assert ClauseChunker().feed(text)[0] == "Well,"
