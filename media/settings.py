"""Settings both peers share: where signaling is, which room, ICE."""

from __future__ import annotations

import re
from typing import Any

from aiortc import RTCIceServer
from pydantic import Field, SecretStr, field_validator

from media.rtc.ice import ice_server_from_dict, parse_ice_server
from signaling.settings import AvatarSettings

ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_size(text: str) -> tuple[int, int]:
    """``"512x512"`` -> ``(512, 512)``."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"size must look like 512x512, got {text!r}") from exc
    if not (16 <= width <= 4096 and 16 <= height <= 4096) or width % 2 or height % 2:
        raise ValueError(f"size must be even and between 16 and 4096 pixels a side, got {text!r}")
    return width, height


class PeerSettings(AvatarSettings):
    """What every peer needs to meet the other through signaling."""

    signaling: str = Field(
        "http://127.0.0.1:8080", description="signaling server base URL", json_schema_extra={"metavar": "URL"}
    )
    room: str = Field("demo", pattern=ROOM_NAME.pattern, description="room to join")
    token: SecretStr | None = Field(None, description="signaling token (or AVATAR_TOKEN)")
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN server, repeatable: stun:HOST:PORT or turn://USER:PASS@HOST:PORT?transport=udp",
        json_schema_extra={"flag": "--ice-server", "metavar": "URL"},
    )
    ice_host_addresses: list[str] = Field(
        default_factory=list,
        description="gather ICE host candidates only on this address, repeatable (e.g. 127.0.0.1 for "
        "same-machine runs)",
        json_schema_extra={"flag": "--ice-host", "metavar": "ADDR"},
    )
    connect_timeout_s: float = Field(15.0, gt=0, description="seconds the signaling connection may take")

    @field_validator("ice_servers")
    @classmethod
    def _valid_ice_servers(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_ice_server(spec)
        return value

    def rtc_ice_servers(self, advertised: list[dict[str, Any]] | None = None) -> list[RTCIceServer]:
        """Our configured servers plus those the signaling server advertised (with their TURN credentials)."""
        servers = [parse_ice_server(spec) for spec in self.ice_servers]
        return servers + [ice_server_from_dict(entry) for entry in advertised or []]

    def token_value(self) -> str:
        if self.token is None or not self.token.get_secret_value():
            raise ValueError("no token: set AVATAR_TOKEN or pass --token (the signaling server prints one)")
        return self.token.get_secret_value()
