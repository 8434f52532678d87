"""Joining the room through signaling, retrying with backoff: what both peers do first and after any loss."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from media.settings import PeerSettings
from signaling.client import SignalingAuthError, SignalingClient, SignalingError
from signaling.messages import Role

logger = logging.getLogger(__name__)

MIN_BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0  # a restarted server is rejoined within ~2.5 s (the reconnect promise is 5 s)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait at most ``seconds`` for ``event``; returns whether it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def join_room(settings: PeerSettings, role: Role, stop: asyncio.Event) -> SignalingClient | None:
    """A connected client (``welcome`` received), or None once ``stop`` is set.

    Unreachable servers are retried with jittered exponential backoff; a refused token is not retried
    (:class:`SignalingAuthError` propagates).
    """
    backoff = MIN_BACKOFF_S
    while not stop.is_set():
        client = SignalingClient(
            settings.signaling, settings.room, role, settings.token_value(), settings.connect_timeout_s
        )
        try:
            await client.connect()
            return client
        except SignalingAuthError:
            raise
        except SignalingError as exc:
            logger.warning("%s; retrying in %.1f s", exc, backoff)
            await wait_event(stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S) * random.uniform(0.8, 1.2)
    return None
