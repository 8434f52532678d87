"""What of the LLM's text a voice should say: no emoji, no markdown marks.

Piper reads text through espeak-ng, which names what it sees: "👏✨ Done." is spoken "clapping hands sparkles
done", "**Sure**" as "asterisk asterisk sure asterisk asterisk", "→" as "right arrow" (checked with the bundled
voice's ``phonemize``). Small instruction-tuned models (SmolLM2) start many replies with emoji. Symbols that read
as words people say (``$5``, ``10%``, ``&``, ``+``) stay.
"""

from __future__ import annotations

import re
import unicodedata

MARKDOWN_MARKS = "*#`~|>"  # emphasis, headings, code, strike-through, tables, quotes
_SPACES = re.compile(r"\s+")


def _spoken(char: str) -> str:
    if char in MARKDOWN_MARKS:
        return " "
    if char == "_":
        return " "
    category = unicodedata.category(char)
    if category in ("So", "Sk", "Cs", "Co", "Me"):  # emoji, pictographs, skin tones, keycaps
        return " "
    if category == "Sm" and 0x2190 <= ord(char) <= 0x21FF:  # arrows
        return " "
    if category in ("Mn", "Cf") and (0xFE00 <= ord(char) <= 0xFE0F or char == "\u200d"):  # emoji selectors, ZWJ
        return ""
    return char


def speakable(text: str) -> str:
    """``text`` without what a voice should not read aloud; "" if nothing is left to say."""
    cleaned = _SPACES.sub(" ", "".join(_spoken(c) for c in text)).strip()
    cleaned = re.sub(r"\s+([,.;:!?…])", r"\1", cleaned)  # "Sure **," -> "Sure,"
    return cleaned if any(c.isalnum() for c in cleaned) else ""
