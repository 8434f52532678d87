"""ICE servers the signaling server advertises, with short-lived TURN credentials from a shared secret.

The credentials follow the TURN REST scheme coturn implements with ``use-auth-secret``: the username is
``<expiry unix time>:<peer id>`` and the password is base64(HMAC-SHA1(secret, username)). Nothing long-lived
ever reaches a client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any


def turn_credentials(secret: str, peer_id: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{peer_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def advertised_ice_servers(urls: list[str], turn_secret: str | None, peer_id: str, ttl_s: int) -> list[dict[str, Any]]:
    """WebRTC RTCIceServer dictionaries for one peer: STUN as is, TURN with fresh credentials."""
    servers: list[dict[str, Any]] = []
    for url in urls:
        if url.startswith(("turn:", "turns:")):
            if turn_secret is None:
                continue  # a TURN server without credentials is useless to clients
            username, credential = turn_credentials(turn_secret, peer_id, ttl_s)
            servers.append({"urls": url, "username": username, "credential": credential})
        else:
            servers.append({"urls": url})
    return servers
