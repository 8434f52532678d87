"""ICE configuration: ICE server URLs from settings, and the addresses host candidates are pinned to.

aioice leaves 127.0.0.1 out of its host candidates, so two peers on a machine with no other usable
interface (CI, network namespaces) never connect. ``pin_host_addresses(["127.0.0.1"])`` chooses the addresses;
:mod:`media.rtc.patches` makes aioice gather its host candidates on exactly those.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from aiortc import RTCConfiguration, RTCIceServer

logger = logging.getLogger(__name__)

_pinned: tuple[str, ...] | None = None


def pin_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (None restores aioice's own choice)."""
    global _pinned
    _pinned = tuple(addresses) if addresses else None
    if _pinned:
        logger.info("ICE host candidates pinned to %s", ", ".join(_pinned))


def pinned_host_addresses() -> tuple[str, ...] | None:
    return _pinned


def pinned_addresses_of_family(use_ipv4: bool, use_ipv6: bool) -> list[str] | None:
    """The pinned addresses of the families asked for, or None when nothing is pinned."""
    if _pinned is None:
        return None
    return [a for a in _pinned if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def parse_ice_server(spec: str) -> RTCIceServer:
    """``stun:host:port``, ``turn:host:port?transport=tcp``, or with credentials
    ``turn://USER:PASSWORD@host:port?transport=udp`` (user and password URL-encoded)."""
    if "://" in spec:
        parts = urlsplit(spec)
        if parts.scheme not in ("stun", "stuns", "turn", "turns") or not parts.hostname:
            raise ValueError(f"bad ICE server {spec!r}: expected stun:, stuns:, turn: or turns: with a host")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = f"{parts.scheme}:{host}" + (f":{parts.port}" if parts.port else "")
        if parts.query:
            url += f"?{parts.query}"
        username = unquote(parts.username) if parts.username else None
        credential = unquote(parts.password) if parts.password else None
        return RTCIceServer(urls=url, username=username, credential=credential)
    scheme = spec.split(":", 1)[0]
    if scheme not in ("stun", "stuns", "turn", "turns") or ":" not in spec:
        raise ValueError(f"bad ICE server {spec!r}: expected e.g. stun:host:3478 or turn://user:pass@host:3478")
    return RTCIceServer(urls=spec)


def ice_server_from_dict(entry: dict[str, object]) -> RTCIceServer:
    """An ICE server as advertised in signaling (WebRTC's RTCIceServer dictionary)."""
    urls = entry.get("urls")
    if not isinstance(urls, str | list):
        raise ValueError("ICE server entry needs 'urls'")
    username = entry.get("username")
    credential = entry.get("credential")
    return RTCIceServer(
        urls=urls,
        username=username if isinstance(username, str) else None,
        credential=credential if isinstance(credential, str) else None,
    )


def rtc_configuration(servers: Sequence[RTCIceServer]) -> RTCConfiguration:
    """Always an explicit list: with ``None`` aiortc silently falls back to a public STUN server."""
    return RTCConfiguration(iceServers=list(servers))
