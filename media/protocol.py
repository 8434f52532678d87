"""The data-channel protocol between the peers: typed, versioned JSON messages (see docs/protocol.md)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION: Literal[1] = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TEXT_CHARS = 8_000


class _Message(BaseModel):
    # unknown fields are ignored so that a newer peer can add some without breaking an older one
    model_config = ConfigDict(extra="ignore", frozen=True)
    v: Literal[1] = PROTOCOL_VERSION


class TranscriptTimings(BaseModel):
    """Media-clock seconds (of the sending peer) for one heard turn."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    speech_start_s: float | None = None
    speech_end_s: float | None = None
    asr_start_s: float | None = None
    asr_done_s: float | None = None


class _Heard(_Message):
    """A heard turn's text and what is known of it (the fields ``transcript`` and ``early-transcript`` share)."""

    turn_id: str = Field(min_length=1, max_length=64)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    language: str | None = Field(default=None, max_length=16)
    timings: TranscriptTimings = Field(default_factory=TranscriptTimings)
    sent_at: float | None = None  # epoch seconds when sent
    # the ASR's confidence (faster-whisper): the avatar never answers unlikely speech
    no_speech_prob: float | None = Field(default=None, ge=0, le=1)
    avg_logprob: float | None = None


class Transcript(_Heard):
    """What the person (or a viewer typing) said: the avatar answers it."""

    type: Literal["transcript"] = "transcript"


class EarlyTranscript(_Heard):
    """local -> avatar: a turn transcribed while its end is still being confirmed (the silence not yet long
    enough). The avatar may prepare its answer, but it speaks only once the ``transcript`` with the same
    ``turn_id`` and text confirms the turn; a ``retract`` (speech went on) or another turn drops it."""

    type: Literal["early-transcript"] = "early-transcript"

    def confirmed(self) -> Transcript:
        """The transcript that confirms this turn (what the avatar answers once it is confirmed)."""
        return Transcript(**self.model_dump(exclude={"type"}))


class Retract(_Message):
    """local -> avatar: the ``early-transcript`` ``turn_id`` is void: the speaker went on (their whole turn
    comes later as a ``transcript`` of its own)."""

    type: Literal["retract"] = "retract"
    turn_id: str = Field(min_length=1, max_length=64)


class Interrupt(_Message):
    """The person started speaking: stop the current answer now (barge-in)."""

    type: Literal["interrupt"] = "interrupt"
    reason: str = Field(default="barge-in", max_length=64)
    turn_id: str | None = Field(default=None, max_length=64)


AnswerPolicy = Literal["always", "addressed", "never"]


class Speech(_Message):
    """local -> avatar: someone in the meeting started or stopped speaking (the avatar holds the floor for them)."""

    type: Literal["speech"] = "speech"
    state: Literal["start", "stop"]


class AnswerNow(_Message):
    """local -> avatar: the person asks the clone to answer ("answer this"): the last unanswered remark, or else
    the next one heard."""

    type: Literal["answer-now"] = "answer-now"


class Decision(_Message):
    """avatar -> subscribers: whether a heard turn is answered, and why (the page and the session log show it)."""

    type: Literal["decision"] = "decision"
    turn_id: str = Field(min_length=1, max_length=64)
    answered: bool
    reason: Literal[
        "answered", "not addressed", "too short", "unlikely speech", "listening only", "person in control", "dropped"
    ]
    why: str | None = Field(default=None, max_length=64)  # for answered: always / name / follow-up / asked


class Turn(_Message):
    """The avatar's state for a turn."""

    type: Literal["turn"] = "turn"
    turn_id: str = Field(min_length=1, max_length=64)
    state: Literal["thinking", "speaking", "done"]
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)


class Metrics(_Message):
    """Named figures (milliseconds unless the name says otherwise), optionally for one turn."""

    type: Literal["metrics"] = "metrics"
    turn_id: str | None = Field(default=None, max_length=64)
    values: dict[str, float] = Field(default_factory=dict, max_length=64)


class Ping(_Message):
    type: Literal["ping"] = "ping"
    id: int = Field(ge=0)
    t: float  # sender's clock, echoed back


class Pong(_Message):
    type: Literal["pong"] = "pong"
    id: int = Field(ge=0)
    t: float


class Error(_Message):
    type: Literal["error"] = "error"
    code: str = Field(max_length=64)
    message: str = Field(max_length=1_000)


SHA256_PATTERN = r"^[0-9a-f]{64}$"
PROFILE_FILE_NAMES = ("voice.wav", "voice.txt", "face.png", "face.mp4", "persona.toml")
PROFILE_CHUNK_BYTES = 32 * 1024  # raw bytes per chunk: base64 and JSON stay well under MAX_MESSAGE_BYTES


class ProfileFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Literal["voice.wav", "voice.txt", "face.png", "face.mp4", "persona.toml"]
    sha256: str = Field(pattern=SHA256_PATTERN)
    bytes: int = Field(ge=1, le=200 * 1024 * 1024)


class ProfileOffer(_Message):
    """local -> remote on connect: the person's profile files by content hash."""

    type: Literal["profile-offer"] = "profile-offer"
    profile: str = Field(min_length=1, max_length=64)
    files: list[ProfileFile] = Field(max_length=len(PROFILE_FILE_NAMES))


class ProfileRequest(_Message):
    """remote -> local: the hashes it does not have yet (empty: it has everything)."""

    type: Literal["profile-request"] = "profile-request"
    sha256: list[str] = Field(default_factory=list, max_length=len(PROFILE_FILE_NAMES))


class ProfileChunk(_Message):
    """local -> remote: one bounded piece of a requested file (base64), in order."""

    type: Literal["profile-chunk"] = "profile-chunk"
    sha256: str = Field(pattern=SHA256_PATTERN)
    index: int = Field(ge=0)
    count: int = Field(ge=1, le=10_000)
    data: str = Field(max_length=PROFILE_CHUNK_BYTES * 4 // 3 + 8)


class ProfileStatus(_Message):
    """remote -> local (and viewers): where the profile stands."""

    type: Literal["profile-status"] = "profile-status"
    state: Literal["receiving", "preparing", "ready", "rejected"]
    detail: str | None = Field(default=None, max_length=500)


class Control(_Message):
    """local -> remote: the person's live control; the remote echoes it to viewers (the page's indicator)."""

    type: Literal["control"] = "control"
    mode: Literal["clone", "person"]  # person: taken over, the clone does not answer
    muted: bool = False  # the clone stays on screen but does not answer
    answer: AnswerPolicy | None = None  # when the clone answers; None: unchanged (older peers)

    @property
    def clone_paused(self) -> bool:
        """The person has taken over or muted the clone: it must not answer."""
        return self.mode == "person" or self.muted


DataMessage = (
    Transcript
    | EarlyTranscript
    | Retract
    | Interrupt
    | Turn
    | Metrics
    | Ping
    | Pong
    | Error
    | ProfileOffer
    | ProfileRequest
    | ProfileChunk
    | ProfileStatus
    | Control
    | Speech
    | AnswerNow
    | Decision
)
_ADAPTER: TypeAdapter[DataMessage] = TypeAdapter(Annotated[DataMessage, Field(discriminator="type")])
KNOWN_TYPES = frozenset(
    {
        "transcript",
        "early-transcript",
        "retract",
        "interrupt",
        "turn",
        "metrics",
        "ping",
        "pong",
        "error",
        "profile-offer",
        "profile-request",
        "profile-chunk",
        "profile-status",
        "control",
        "speech",
        "answer-now",
        "decision",
    }
)


class ProtocolError(ValueError):
    """A data-channel message that cannot be accepted; ``code`` goes back in an ``error`` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_message(data: str | bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> DataMessage:
    """Validate one data-channel message, raising :class:`ProtocolError` with a precise reason."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise ProtocolError("too-large", f"message of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad-json", f"malformed JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError("bad-message", "a message must be a JSON object")
    if raw.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise ProtocolError(
            "bad-version", f"protocol version {raw.get('v')!r} is not supported (this peer speaks {PROTOCOL_VERSION})"
        )
    kind = raw.get("type")
    if kind not in KNOWN_TYPES:
        raise ProtocolError("unknown-type", f"unknown message type {kind!r}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or str(kind)
        raise ProtocolError("bad-message", f"invalid {kind} message: {where}: {first['msg']}") from exc


def encode_message(message: DataMessage, max_bytes: int = MAX_MESSAGE_BYTES) -> str:
    """The wire form; :class:`ProtocolError` ``too-large`` if the peer would refuse it."""
    text = message.model_dump_json(exclude_none=True)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ProtocolError("too-large", f"{message.type} message of {size} bytes exceeds the {max_bytes}-byte limit")
    return text
