"""The person's persona (``persona.toml``): who the clone is, how they speak, what they may share or deflect."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TEMPLATE = """# persona.toml: who your clone is. Edit, then check it with: avatar enroll persona --check
# Every key is optional except name.

# Your name as the clone introduces itself.
name = "Alex Example"

# Other names people call you in meetings (the clone answers to these and to your first name).
aliases = ["Sasha"]

# How you speak: tone, pace, habits. One or two sentences.
speaking_style = "Friendly and direct; short sentences; a little dry humour."

# Languages you answer in, most used first (ISO codes: en, uk, de, ...).
languages = ["en"]

# Facts the clone may share when asked (one per line).
facts = [
    "I work on the platform team.",
    "I am based in Kyiv.",
]

# Topics the clone politely deflects ("let me get back to you on that").
deflect = [
    "salary and contracts",
    "anything under NDA",
]
"""


class PersonaError(ValueError):
    """``persona.toml`` is missing, not TOML, or not a persona (the message names the file and the problem)."""


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    aliases: list[str] = Field(default_factory=list, max_length=16)
    speaking_style: str = Field(default="", max_length=500)
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1, max_length=8)
    facts: list[str] = Field(default_factory=list, max_length=50)
    deflect: list[str] = Field(default_factory=list, max_length=50)

    def system_prompt(self) -> str:
        """The LLM's system prompt for this person."""
        parts = [
            f"You are {self.name}, joining a video call as yourself. Speak naturally, in the first person, "
            "like in a meeting. Reply briefly: one or two short sentences. Never mention being an AI or a model."
        ]
        if self.speaking_style:
            parts.append(f"How you speak: {self.speaking_style}")
        if self.facts:
            parts.append("Facts you may share when asked: " + " ".join(f.strip() for f in self.facts))
        if self.deflect:
            parts.append("Politely deflect these topics and offer to follow up later: " + "; ".join(self.deflect) + ".")
        return " ".join(parts)


def parse_persona(text: str, where: str = "persona.toml") -> Persona:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{where}: not valid TOML: {exc}") from exc
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "persona"
        raise PersonaError(f"{where}: {key}: {first['msg']}") from exc


def load_persona(path: Path) -> Persona:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PersonaError(f"{path}: not found (create one with: avatar enroll persona)") from exc
    except UnicodeDecodeError as exc:
        raise PersonaError(f"{path}: not UTF-8 text") from exc
    return parse_persona(text, str(path))
