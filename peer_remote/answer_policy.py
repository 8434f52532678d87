"""When the clone answers in a meeting: ``always``, only when ``addressed`` (its name, a follow-up question to its
own answer, or the person asking), or ``never``; turns too short or unlikely to be speech are never answered."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from media.protocol import AnswerPolicy, Decision, Transcript

# Ukrainian (and Russian) Cyrillic to Latin, so "Олекс" and "Alex" compare letter by letter
# fmt: off
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ye", "ж": "zh", "з": "z",
    "и": "y", "і": "i", "ї": "yi", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ь": "", "ю": "yu", "я": "ya", "ё": "yo", "ы": "y", "э": "e", "ъ": "", "'": "", "’": "",
}
# fmt: on
# spellings that sound alike: ASR output and transliteration disagree on these
_FOLDS = (("x", "ks"), ("ck", "k"), ("ph", "f"), ("c", "k"), ("q", "k"), ("w", "v"), ("j", "y"), ("gh", "h"))
QUESTION_WORDS = frozenset(
    [
        "what",
        "who",
        "whom",
        "whose",
        "why",
        "how",
        "when",
        "where",
        "which",
        "do",
        "does",
        "did",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "would",
        "will",
        "should",
        "shall",
        "may",
        "have",
        "has",
        "що",
        "хто",
        "кого",
        "чому",
        "навіщо",
        "як",
        "коли",
        "де",
        "куди",
        "звідки",
        "який",
        "яка",
        "яке",
        "які",
        "чий",
        "чия",
        "чиє",
        "чи",
        "скільки",
        "что",
        "кто",
        "почему",
        "зачем",
        "как",
        "когда",
        "где",
        "куда",
        "какой",
        "какая",
        "какое",
        "какие",
        "сколько",
    ]
)
# words a question may start with before its question word ("And when will it ship?", "So what now?")
LEAD_INS = frozenset(
    [
        "and",
        "so",
        "but",
        "also",
        "then",
        "ok",
        "okay",
        "well",
        "now",
        "oh",
        "alright",
        "right",
        "і",
        "й",
        "а",
        "та",
        "але",
        "то",
        "так",
        "ну",
        "добре",
        "и",
        "но",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


def sound_key(word: str) -> str:
    """A lower-case Latin spelling of ``word`` with look-alike spellings folded (``Алекс`` -> ``aleks``)."""
    word = unicodedata.normalize("NFKC", word).lower()
    latin = "".join(_CYRILLIC.get(c, c) for c in word)
    latin = "".join(c for c in unicodedata.normalize("NFKD", latin) if not unicodedata.combining(c))
    for spelled, folded in _FOLDS:
        latin = latin.replace(spelled, folded)
    return latin


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[len(b)]


def _allowed_edits(key: str) -> int:
    return 0 if len(key) < 4 else 1 if len(key) < 8 else 2


def _matches(name_key: str, heard_key: str) -> bool:
    allowed = _allowed_edits(name_key)
    if edit_distance(name_key, heard_key) <= allowed:
        return True
    # a case ending (Ukrainian vocative "Олексо", "Андрію"): the heard word extends the name by a short suffix
    extra = len(heard_key) - len(name_key)
    return len(name_key) >= 4 and 0 < extra <= 2 and edit_distance(name_key, heard_key[: len(name_key)]) <= allowed


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


def said_name(text: str, names: Iterable[str]) -> str | None:
    """The name (as given) that ``text`` mentions, tolerant of ASR spellings and Ukrainian forms; else None."""
    heard = [sound_key(w) for w in words_of(text)]
    for name in names:
        parts = [sound_key(w) for w in words_of(name)]
        if not parts:
            continue
        key = "".join(parts)
        for start in range(len(heard)):
            for width in {len(parts), 1}:  # "Alex Example" as two words or as one ASR token
                window = "".join(heard[start : start + width])
                if start + width <= len(heard) and _matches(key, window):
                    return name
    return None


def is_question(text: str) -> bool:
    """Ends with a question mark, or starts with a question word (after lead-ins such as "and", "so", "ну"):
    ASR punctuation is not reliable enough to be the only sign."""
    words = words_of(text.lower())
    while len(words) > 1 and words[0] in LEAD_INS:
        words.pop(0)
    return text.rstrip().endswith("?") or bool(words and words[0] in QUESTION_WORDS)


def names_for(name: str, aliases: Iterable[str] = ()) -> tuple[str, ...]:
    """What the clone answers to: the full name, its first name, and the aliases."""
    first = words_of(name)[:1]
    found: list[str] = []
    for candidate in (name, *first, *aliases):
        if candidate.strip() and candidate not in found:
            found.append(candidate)
    return tuple(found)


@dataclass(frozen=True)
class AnswerSettings:
    follow_up_s: float = 8.0  # a question this soon after the clone's own answer is for the clone
    min_words: int = 2  # shorter turns ("yes", a cough transcribed as a word) are never answered
    max_no_speech_prob: float = 0.6  # faster-whisper's no-speech probability above this: not speech
    min_avg_logprob: float = -1.0  # faster-whisper's average log-probability below this: unlikely words


class AnswerDecider:
    """Decides, turn by turn, whether the clone answers; ``note_answered`` opens the follow-up window."""

    def __init__(
        self,
        mode: AnswerPolicy = "always",
        names: tuple[str, ...] = ("Alex",),
        settings: AnswerSettings | None = None,
    ) -> None:
        self.mode: AnswerPolicy = mode
        self.names = names
        self.settings = settings or AnswerSettings()
        self.asked = False  # "answer this" with nothing to answer: the next turn is answered
        self._last_answer_at: float | None = None

    def note_answered(self, now: float | None = None) -> None:
        """The clone finished an answer: a question within ``follow_up_s`` is for it."""
        self._last_answer_at = time.monotonic() if now is None else now

    def quality_problem(self, transcript: Transcript) -> Decision | None:
        """A decision not to answer when the turn is too short or unlikely to be speech, in any mode."""
        s = self.settings
        if len(words_of(transcript.text)) < s.min_words:
            return Decision(turn_id=transcript.turn_id, answered=False, reason="too short")
        if (transcript.no_speech_prob is not None and transcript.no_speech_prob > s.max_no_speech_prob) or (
            transcript.avg_logprob is not None and transcript.avg_logprob < s.min_avg_logprob
        ):
            return Decision(turn_id=transcript.turn_id, answered=False, reason="unlikely speech")
        return None

    def decide(self, transcript: Transcript, now: float | None = None, dry_run: bool = False) -> Decision:
        """``dry_run``: what would be decided, changing nothing (an "answer this" stays pending)."""
        now = time.monotonic() if now is None else now
        turn_id = transcript.turn_id
        problem = self.quality_problem(transcript)
        if problem is not None:
            return problem
        if self.asked:  # the person asked for an answer: in any mode
            self.asked = dry_run
            return Decision(turn_id=turn_id, answered=True, reason="answered", why="asked")
        if self.mode == "never":
            return Decision(turn_id=turn_id, answered=False, reason="listening only")
        if self.mode == "always":
            return Decision(turn_id=turn_id, answered=True, reason="answered", why="always")
        if said_name(transcript.text, self.names) is not None:
            return Decision(turn_id=turn_id, answered=True, reason="answered", why="name")
        last = self._last_answer_at
        if last is not None and now - last <= self.settings.follow_up_s and is_question(transcript.text):
            return Decision(turn_id=turn_id, answered=True, reason="answered", why="follow-up")
        return Decision(turn_id=turn_id, answered=False, reason="not addressed")
