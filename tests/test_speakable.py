"""The voice says the words of a reply, not its emoji or markdown (checked against the bundled Piper voice)."""

from __future__ import annotations

import asyncio

import pytest

from peer_remote.speakable import speakable
from peer_remote.tts.piper_voice import PiperSynthesizer


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("👏✨ The migration is done.", "The migration is done."),
        ("**Sure**, I can do that.", "Sure, I can do that."),
        ("# Plan", "Plan"),
        ("Use `git` now → then ship 👍🏽.", "Use git now then ship."),
        ("It costs $5 & 10% more.", "It costs $5 & 10% more."),  # read as words people say
        ("Олексо, добре 🙂", "Олексо, добре"),
        ("👩‍💻✨", ""),  # nothing to say
    ],
)
def test_only_words_are_left_to_say(text: str, said: str) -> None:
    assert speakable(text) == said


def test_the_bundled_voice_no_longer_names_emoji_or_asterisks() -> None:
    voice = PiperSynthesizer()
    asyncio.run(voice.load())
    raw = "".join(voice._voice.phonemize("👏 **Sure**.")[0])  # piper-tts's espeak-ng phonemes
    said = "".join(voice._voice.phonemize(speakable("👏 **Sure**."))[0])
    assert "æstɚɹˌɪsk" in raw and "klˈæpɪŋ" in raw  # "clapping hands ... asterisk asterisk"
    assert said == "".join(voice._voice.phonemize("Sure.")[0])
