"""The signaling wire protocol: JSON messages validated against typed schemas.

Clients send ``offer``/``answer``/``candidate``/``bye`` addressed to a peer id (``to``) and ``ping``; the
server relays the first four with ``from`` set, and itself sends ``welcome``, ``peer-joined``, ``peer-left``,
``pong`` and ``error``. SDP is checked for size and shape only, never interpreted.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 1_024
ROOM_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PEER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Role(StrEnum):
    """Who a connection is: the avatar, the person's laptop, or a browser preview."""

    REMOTE = "remote"
    LOCAL = "local"
    VIEWER = "viewer"


class ErrorCode(StrEnum):
    BAD_JSON = "bad-json"
    BAD_MESSAGE = "bad-message"
    UNKNOWN_TYPE = "unknown-type"
    TOO_LARGE = "too-large"
    NO_SUCH_PEER = "no-such-peer"
    NOT_ALLOWED = "not-allowed"
    ROLE_TAKEN = "role-taken"
    ROOM_FULL = "room-full"
    RATE_LIMITED = "rate-limited"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _Addressed(_Message):
    to: str = Field(pattern=PEER_ID_PATTERN)
    from_: str | None = Field(default=None, alias="from")


def _check_sdp(sdp: str) -> str:
    if not sdp.startswith("v=0"):
        raise ValueError("sdp must start with 'v=0'")
    return sdp


class Offer(_Addressed):
    type: Literal["offer"] = "offer"
    sdp: str = Field(max_length=MAX_SDP_CHARS)
    _sdp_shape = field_validator("sdp")(_check_sdp)


class Answer(_Addressed):
    type: Literal["answer"] = "answer"
    sdp: str = Field(max_length=MAX_SDP_CHARS)
    _sdp_shape = field_validator("sdp")(_check_sdp)


class Candidate(_Addressed):
    """A trickled ICE candidate; ``candidate`` None or empty means end of candidates."""

    type: Literal["candidate"] = "candidate"
    candidate: str | None = Field(default=None, max_length=MAX_CANDIDATE_CHARS)
    sdpMid: str | None = Field(default=None, max_length=64)  # noqa: N815 - WebRTC's name
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)  # noqa: N815 - WebRTC's name


class Bye(_Addressed):
    type: Literal["bye"] = "bye"
    reason: str | None = Field(default=None, max_length=200)


class Ping(_Message):
    type: Literal["ping"] = "ping"
    id: int | str | None = None


ClientMessage = Annotated[Offer | Answer | Candidate | Bye | Ping, Field(discriminator="type")]
RelayedMessage = Offer | Answer | Candidate | Bye
_CLIENT_ADAPTER: TypeAdapter[Offer | Answer | Candidate | Bye | Ping] = TypeAdapter(ClientMessage)
CLIENT_TYPES = frozenset({"offer", "answer", "candidate", "bye", "ping"})


class PeerInfo(_Message):
    peer_id: str
    role: Role


class Welcome(_Message):
    type: Literal["welcome"] = "welcome"
    peer_id: str
    room: str
    role: Role
    peers: list[PeerInfo]
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)


class PeerJoined(_Message):
    type: Literal["peer-joined"] = "peer-joined"
    peer_id: str
    role: Role


class PeerLeft(_Message):
    type: Literal["peer-left"] = "peer-left"
    peer_id: str
    role: Role


class Pong(_Message):
    type: Literal["pong"] = "pong"
    id: int | str | None = None


class ErrorReply(_Message):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


ServerMessage = Annotated[
    Welcome | PeerJoined | PeerLeft | Pong | ErrorReply | Offer | Answer | Candidate | Bye,
    Field(discriminator="type"),
]
SERVER_ADAPTER: TypeAdapter[Any] = TypeAdapter(ServerMessage)


class MessageError(ValueError):
    """A client message that cannot be accepted; ``code`` goes back to the sender."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_client_message(text: str | bytes, max_bytes: int) -> Offer | Answer | Candidate | Bye | Ping:
    """Validate one client frame, raising :class:`MessageError` with a precise reason."""
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > max_bytes:
        raise MessageError(ErrorCode.TOO_LARGE, f"message of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MessageError(ErrorCode.BAD_JSON, f"malformed JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise MessageError(ErrorCode.BAD_MESSAGE, "a message must be a JSON object")
    kind = raw.get("type")
    if kind not in CLIENT_TYPES:
        raise MessageError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind!r}")
    raw.pop("from", None)  # the server sets the sender; a client cannot claim one
    try:
        return _CLIENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or kind
        raise MessageError(ErrorCode.BAD_MESSAGE, f"invalid {kind} message: {where}: {first['msg']}") from exc


def parse_server_message(text: str | bytes) -> Any:
    """Validate a frame received from the server (used by clients); :class:`MessageError` if it is not one."""
    try:
        return SERVER_ADAPTER.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MessageError(ErrorCode.BAD_MESSAGE, f"invalid server message: {first['msg']}") from exc


def dump(message: BaseModel) -> str:
    """Serialise a message with wire names (``from``, not ``from_``)."""
    return message.model_dump_json(by_alias=True, exclude_none=True)
