"""Where one clause's audio meets the next. The TTS speaks each clause as a whole utterance, with about 150 ms
of quiet after it and 30-60 ms before (Piper's ``en_US-joe-medium``); that is the pause of a sentence's end or
a comma, but a chunk cut mid-sentence (before a phrase, at a space: peer_remote/chunking.py) would be heard as
a stop. Such a join is made as tight as a word boundary; the answer's first sound starts at once."""

from __future__ import annotations

import numpy as np

from media.audio import LeadingQuietTrimmer, TrailingQuietHolder

JOIN_TAIL_S = 0.03  # quiet kept after a clause cut mid-sentence ...
JOIN_LEAD_S = 0.01  # ... and before the clause that goes on with it: a pause as between two words
PAUSING_MARKS = ".!?…,;:"  # a chunk ending in one of these keeps the TTS's own pause


def ends_mid_sentence(words: str) -> bool:
    """Whether ``words`` (a clause as spoken) was cut where a speaker would not pause."""
    stripped = words.rstrip(" \"'”’)")
    return bool(stripped) and stripped[-1] not in PAUSING_MARKS


class ClauseJoiner:
    """One answer's audio, clause by clause: :meth:`begin` each clause, :meth:`feed` its blocks, :meth:`end`
    it (what is left to play of it)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._lead: LeadingQuietTrimmer | None = LeadingQuietTrimmer(rate)  # the answer's first sound at once
        self._tail: TrailingQuietHolder | None = None

    def begin(self, words: str) -> None:
        self._tail = TrailingQuietHolder(self.rate) if ends_mid_sentence(words) else None

    def feed(self, block: np.ndarray) -> np.ndarray:
        if self._lead is not None:
            block = self._lead.feed(block)
        if self._tail is not None:
            block = self._tail.feed(block)
        return block

    def end(self) -> np.ndarray:
        """The clause's synthesis is over: the quiet kept after it (empty unless it was cut mid-sentence)."""
        first_sound_pending = self._lead is not None and not self._lead.heard
        rest = np.zeros(0, np.int16)
        if self._tail is not None:
            rest = self._tail.end(JOIN_TAIL_S)
            if not first_sound_pending:
                self._lead = LeadingQuietTrimmer(self.rate, keep_s=JOIN_LEAD_S)
        elif not first_sound_pending:
            self._lead = None
        self._tail = None
        return rest
