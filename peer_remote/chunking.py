"""Cutting streamed LLM text into clauses for TTS, so the first one reaches TTS early.

A chunk ends at a sentence end (``.``, ``!``, ``?``, ``…`` followed by a space or the end), or at a
comma, colon, semicolon or dash once the chunk is long enough, or at a space before ``max_chars`` (the first chunk
sooner: the turn's first audio waits for its synthesis). A dot never ends a chunk inside a number
(``3.5``), after a known abbreviation (``e.g.``, ``Dr.``) or after a single-letter initial (``J. K.``); a
comma never inside a number (``1,000``). A boundary is only decided once the next character is seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "approx",
        "dept",
        "est",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "ave",
        "rd",
        "mt",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "gov",
        "rev",
        "vol",
        "op",
        "cf",
        "al",
    }
)
# words a spoken phrase starts with: the first chunk may end before one (after ``first_phrase_words`` words), where a
# speaker would take a breath anyway ("I'll send you a draft | by tomorrow."); "of" and articles never start one
PHRASE_STARTS = frozenset(
    [
        "and",
        "but",
        "or",
        "so",
        "because",
        "to",
        "for",
        "with",
        "by",
        "at",
        "on",
        "in",
        "from",
        "about",
        "after",
        "before",
        "until",
        "when",
        "while",
        "if",
        "that",
        "which",
        "who",
        "where",
        "than",
        "і",
        "й",
        "та",
        "але",
        "або",
        "бо",
        "щоб",
        "що",
        "який",
        "яка",
        "які",
        "коли",
        "якщо",
        "для",
        "після",
        "перед",
    ]
)
# words a chunk cut mid-sentence (at a space) never ends with: each leans on the word after it, and a chunk is spoken as
# an utterance of its own ("I've been | enjoying" would stop on "been"; "I've been enjoying | a great trip" does not)
CLINGING_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "these",
        "those",
        "all",
        "some",
        "any",
        "every",
        "each",
        "many",
        "much",
        "more",
        "most",
        "few",
        "both",
        "another",
        "other",
        "of",
        "to",
        "very",
        "not",
        "no",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "will",
        "would",
        "shall",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "we're",
        "we've",
        "we'll",
        "we'd",
        "you're",
        "you'll",
        "you've",
        "it's",
        "that's",
        "there's",
        "let's",
        "don't",
        "can't",
        "won't",
        "в",
        "у",
        "на",
        "з",
        "із",
        "зі",
        "до",
        "від",
        "по",
        "за",
        "про",
        "не",
        "я",
        "ми",
        "ти",
        "ви",
        "мій",
        "моя",
        "моє",
        "мої",
        "наш",
        "наша",
        "наше",
        "наші",
    ]
)
SENTENCE_END = ".!?…"
CLAUSE_END = ",;:—–"
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


@dataclass(frozen=True)
class ChunkingSettings:
    # a comma may end the first chunk once it is this long: "Well," "Sure," "Alex," are spoken with a pause after
    # them anyway, and the turn's first audio waits for the first chunk's words and its synthesis
    first_min_chars: int = 4
    min_chars: int = 40  # ... and later chunks once they are this long
    # no sentence end or clause cut by then: cut at a space (the first chunk sooner: its TTS is waited for, and
    # both the LLM's time to it and its synthesis grow with every character: about 8 ms each on two cores)
    first_max_chars: int = 24
    max_chars: int = 220
    # the first chunk may also end before a word that starts a phrase (PHRASE_STARTS) once it has this many words
    # (0: never)
    first_phrase_words: int = 2


class ClauseChunker:
    """Feed text deltas, get complete chunks; ``flush`` returns what is left at the end."""

    def __init__(self, settings: ChunkingSettings | None = None) -> None:
        self.settings = settings or ChunkingSettings()
        self._buffer = ""
        self._emitted = 0
        self.text = ""  # everything fed, as it came
        self.ends: list[int] = []  # per chunk returned: where it ends in ``text``

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        self.text += delta
        chunks: list[str] = []
        while (cut := self._find_cut()) is not None:
            chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if chunk:
                chunks.append(chunk)
                self._emitted += 1
                self.ends.append(len(self.text) - len(self._buffer))
        return chunks

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        if not rest:
            return []
        self.ends.append(len(self.text))
        return [rest]

    def text_through(self, chunks: int) -> str:
        """The text as fed up to the end of the first ``chunks`` chunks (newlines and spacing kept: what the
        model generated, so that a prompt quoting it shares the model's cached tokens)."""
        return self.text[: self.ends[chunks - 1]] if chunks > 0 else ""

    def _find_cut(self) -> int | None:
        text = self._buffer
        first = self._emitted == 0
        min_clause = self.settings.first_min_chars if first else self.settings.min_chars
        max_chars = min(self.settings.first_max_chars, self.settings.max_chars) if first else self.settings.max_chars
        # the last character has no follower yet; nothing past max_chars is looked at, so that how the stream
        # was split never changes the cut
        phrase_words = self.settings.first_phrase_words if first else 0
        for i, char in enumerate(text[: min(len(text) - 1, max_chars)]):
            follower = text[i + 1]
            if char == "\n":
                return i + 1
            if phrase_words and char == " " and len(text[:i].split()) >= phrase_words and not _clings(text[:i]):
                starts = self._phrase_starts_at(text, i + 1)
                if starts is None:
                    return None  # the next word is not complete yet: decide when it is
                if starts:
                    return i + 1
            if char in SENTENCE_END and (follower.isspace() or follower in "\"')]»"):
                if char == "." and not self._dot_ends_sentence(text[: i + 1]):
                    continue
                end = i + 1
                while end < len(text) and text[end] in "\"')]»":
                    end += 1
                if end == len(text):
                    return None  # more closing quotes may follow: decide when the next character comes
                return end
            if char in CLAUSE_END and follower.isspace() and len(text[:i].strip()) >= min_clause:
                if char == "," and i > 0 and text[i - 1].isdigit() and i + 1 < len(text) and text[i + 1].isdigit():
                    continue
                return i + 1
        if len(text) > max_chars:
            return _space_cut(text, max_chars)
        return None

    @staticmethod
    def _phrase_starts_at(text: str, start: int) -> bool | None:
        """Whether the word at ``start`` starts a phrase; None while it may still grow (no character after it)."""
        end = start
        while end < len(text) and text[end].isalpha():
            end += 1
        if end == len(text):
            return None
        return text[start:end].lower() in PHRASE_STARTS

    @staticmethod
    def _dot_ends_sentence(before: str) -> bool:
        if len(before) >= 2 and before[-2].isdigit():
            # "3." at the end of "version 3." ends a sentence; "3.5" never reaches here (no space follows)
            return True
        match = _WORD_BEFORE.search(before)
        if match is None:
            return True
        word = match.group(1).lower()
        if word in ABBREVIATIONS or word.rstrip(".") in ABBREVIATIONS:
            return False
        if len(word) == 1 and match.group(1).isupper():
            return False  # an initial: "J. K. Rowling"
        return not re.fullmatch(r"(?:[a-z]\.)+[a-z]", word)  # "u.s.a"


def _clings(before: str) -> bool:
    """Whether the last word of ``before`` leans on the next one (CLINGING_WORDS)."""
    words = before.split()
    return bool(words) and words[-1].lower().strip("\"'“”‘’(«").replace("’", "'") in CLINGING_WORDS


def _space_cut(text: str, max_chars: int) -> int:
    """Where to cut ``text`` (longer than ``max_chars``, no punctuation to cut at) so that the chunk stays within
    ``max_chars``: at the last space whose word before it does not cling to the next, else at the last space."""
    last = text.rfind(" ", 0, max_chars)
    if last <= 0:
        return max_chars
    space = last
    while space > 0:
        if text[:space].strip() and not _clings(text[:space]):
            return space + 1
        space = text.rfind(" ", 0, space)
    return last + 1
