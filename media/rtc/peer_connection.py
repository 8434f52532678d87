"""Helpers around RTCPeerConnection used by both peers: ICE candidates from signaling, teardown."""

from __future__ import annotations

import asyncio
import logging

from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

from signaling.messages import Candidate

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


async def add_remote_candidate(pc: RTCPeerConnection, message: Candidate) -> None:
    """Apply a trickled candidate (browsers trickle; aiortc puts all of its own in the SDP)."""
    text = (message.candidate or "").strip()
    if not text:
        return  # end-of-candidates
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        candidate = candidate_from_sdp(text)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"malformed ICE candidate: {exc}") from exc
    candidate.sdpMid = message.sdpMid
    candidate.sdpMLineIndex = message.sdpMLineIndex
    await pc.addIceCandidate(candidate)


async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """Close with a bound; aiortc's close can wait on transports that never answer."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await pc.close()
    except TimeoutError:
        logger.warning("peer connection did not close within %.0f s", CLOSE_TIMEOUT_S)
    except Exception:
        logger.exception("error while closing a peer connection")
