"""The clause chunker: early first chunk, no cuts inside numbers, abbreviations or initials."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer_remote.chunking import ChunkingSettings, ClauseChunker


def chunk(text: str, pieces: list[int] | None = None, settings: ChunkingSettings | None = None) -> list[str]:
    chunker = ClauseChunker(settings)
    out: list[str] = []
    if pieces is None:
        for char in text:
            out += chunker.feed(char)
    else:
        position = 0
        for size in pieces:
            out += chunker.feed(text[position : position + size])
            position += size
        out += chunker.feed(text[position:])
    return out + chunker.flush()


def test_sentences_are_cut_at_their_ends() -> None:
    assert chunk("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]


def test_a_boundary_waits_for_the_next_character() -> None:
    chunker = ClauseChunker()
    assert chunker.feed("It costs 3.") == []  # "3." might be "3.5"
    assert chunker.feed("5 dollars. Next") == ["It costs 3.5 dollars."]
    assert chunker.flush() == ["Next"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Version 2.0 is out now. Try it.", ["Version 2.0 is out now.", "Try it."]),
        ("Ask Dr. Smith about it. Then call.", ["Ask Dr. Smith about it.", "Then call."]),
        ("Bring snacks e.g. fruit or nuts. Thanks.", ["Bring snacks e.g. fruit or nuts.", "Thanks."]),
        ("I met J. K. Rowling once. Really.", ["I met J. K. Rowling once.", "Really."]),
        ("We start at 9 a.m. sharp tomorrow. Okay?", ["We start at 9 a.m. sharp tomorrow.", "Okay?"]),
        ("It is in the U.S.A. now. Good.", ["It is in the U.S.A. now.", "Good."]),
        ("We sold 1,000 units, which is great. Yes.", ["We sold 1,000 units,", "which is great.", "Yes."]),
        ("Pay 1,500 now. Then 2,000.", ["Pay 1,500 now.", "Then 2,000."]),
        ('He said "go home." Then left.', ['He said "go home."', "Then left."]),
        ("Wait... what? No.", ["Wait...", "what?", "No."]),
        ("First line\nSecond line", ["First line", "Second line"]),
    ],
)
def test_no_cuts_inside_numbers_abbreviations_or_initials(text: str, expected: list[str]) -> None:
    assert chunk(text, settings=ChunkingSettings(first_phrase_words=0, first_max_chars=220)) == expected


def test_the_first_chunk_may_end_at_a_comma_once_long_enough() -> None:
    text = "Well, that sounds like a plan, and I think we should also invite the design team next week."
    chunks = chunk(text)
    assert chunks[0] == "Well,"  # spoken with a pause after it anyway: its audio starts sooner
    assert chunks[1] == "that sounds like a plan, and I think we should also invite the design team next week."
    assert chunk("So, we ship.") == ["So, we ship."]  # "So," is too short to stand alone
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize(
    "text,first",
    [
        ("I'll send you a draft by tomorrow.", "I'll send you a draft"),
        ("We'll meet at ten tomorrow.", "We'll meet"),  # "at" after two words
        ("I think that the new design is great.", "I think"),
        ("I was in the office all day long.", "I was in the office"),  # not after "was", not "all | day"
        ("The whole team of engineers agreed.", "The whole team"),  # "of" starts no phrase; never "team of |"
        ("Alex is leading the project with a team of ten people.", "Alex is leading"),  # "with" past 24 chars
        ("Я надішлю тобі звіт до п'ятниці, якщо встигну.", "Я надішлю тобі звіт"),
    ],
)
def test_the_first_chunk_is_a_short_phrase_that_never_ends_on_a_word_leaning_on_the_next(text: str, first: str) -> None:
    chunks = chunk(text)
    assert chunks[0] == first and " ".join(chunks) == text


@pytest.mark.parametrize(
    "text,first",
    [
        ("I've been enjoying a great trip to the mountains.", "I've been enjoying"),  # not "... enjoying a"
        ("It's going to be a lot of work for sure!", "It's going"),  # before "to", not after "It's"
        ("Our new design is really exciting and bold.", "Our new design"),  # not after "is"
        ("We have to finish the whole migration first.", "We have to finish"),
        ("the of a the of a the of a the end.", "the of a the of a the"),  # nothing but clinging words: the last space
    ],
)
def test_a_first_chunk_cut_for_length_ends_where_no_word_leans_on_the_next(text: str, first: str) -> None:
    chunks = chunk(text)
    assert chunks[0] == first and len(first) <= ChunkingSettings().first_max_chars and " ".join(chunks) == text


def test_later_clauses_need_more_text_before_a_comma_cut() -> None:
    text = "Sure. Yes, we can, and we will, of course, do it together with the whole team, as planned."
    chunks = chunk(text)
    assert chunks[0] == "Sure."
    assert chunks[1] == "Yes, we can, and we will, of course, do it together with the whole team,"
    assert chunks[2] == "as planned."


def test_text_without_punctuation_is_cut_at_a_space_before_max_chars() -> None:
    chunker = ClauseChunker(ChunkingSettings(max_chars=30))
    chunks = chunker.feed("word " * 20) + chunker.flush()
    assert all(len(c) <= 30 for c in chunks) and all(not c.endswith("wor") for c in chunks)
    assert " ".join(chunks).split() == ["word"] * 20


def test_a_long_first_sentence_is_cut_early_so_its_speech_starts_sooner() -> None:
    text = "I have been reviewing the whole migration plan with the backend team this week. It is on track."
    chunks = chunk(text)
    assert len(chunks[0]) <= ChunkingSettings().first_max_chars and text.startswith(chunks[0])
    assert chunks[1].endswith("this week.") and chunks[2] == "It is on track."


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("abc XY.,!?:;'3\n")), max_size=200),
    pieces=st.lists(st.integers(min_value=1, max_value=12), max_size=40),
)
def test_how_the_stream_is_split_never_changes_the_chunks_or_loses_text(text: str, pieces: list[int]) -> None:
    by_char = chunk(text)
    by_pieces = chunk(text, pieces)
    assert by_char == by_pieces
    assert "".join(by_char).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_the_text_through_a_chunk_is_the_stream_as_generated() -> None:
    chunker = ClauseChunker()
    chunks = chunker.feed("Sure, here it is:\nthe plan is ready.\n\nWe ship on Friday. And") + chunker.flush()
    assert chunks == ["Sure,", "here it is:", "the plan is ready.", "We ship on Friday.", "And"]
    assert chunker.text_through(0) == ""
    assert chunker.text_through(3) == "Sure, here it is:\nthe plan is ready."
    assert chunker.text_through(5) == chunker.text


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(["to", "and", "the", "tomorrow", "Andy", "x", "x.", "x,", "\n"]), max_size=40),
    pieces=st.lists(st.integers(min_value=1, max_value=12), max_size=40),
)
def test_phrase_cuts_never_depend_on_how_the_stream_is_split(words: list[str], pieces: list[int]) -> None:
    text = " ".join(words)
    assert chunk(text) == chunk(text, pieces)
