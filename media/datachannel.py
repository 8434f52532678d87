"""One end of the data channel: validates what arrives, answers ``ping`` and bad input, measures RTT."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiortc import RTCDataChannel

from media.events import Event
from media.protocol import (
    MAX_MESSAGE_BYTES,
    DataMessage,
    Error,
    Ping,
    Pong,
    ProtocolError,
    encode_message,
    parse_message,
)

logger = logging.getLogger(__name__)

MessageHandler = Callable[[DataMessage], Awaitable[None] | None]


class DataChannelEndpoint:
    """Wraps an :class:`RTCDataChannel` with the protocol; ``message_received`` gets every valid non-ping message
    (``listener``, if given, is its first listener)."""

    def __init__(self, channel: RTCDataChannel, listener: MessageHandler | None = None, name: str = "") -> None:
        self.channel = channel
        self.name = name or channel.label
        self.message_received: Event[[DataMessage]] = Event(f"{self.name}.message_received")
        if listener is not None:
            self.message_received.connect(listener)
        self.rtts_ms: deque[float] = deque(maxlen=1000)
        self.errors_received: deque[Error] = deque(maxlen=100)
        self.rejected = 0
        self._ping_ids = itertools.count()
        self._pending: dict[int, asyncio.Future[float]] = {}
        channel.on("message", self._on_raw)

    @property
    def is_open(self) -> bool:
        return self.channel.readyState == "open"

    def send(self, message: DataMessage) -> bool:
        """Send if the channel is open; returns whether it was sent."""
        if not self.is_open:
            return False
        try:
            text = encode_message(message)
        except ProtocolError as exc:
            logger.error("%s: not sent: %s", self.name, exc)
            return False
        self.channel.send(text)
        return True

    async def ping(self, timeout_s: float = 2.0) -> float:
        """Round-trip time in milliseconds; raises TimeoutError."""
        ping_id = next(self._ping_ids)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending[ping_id] = future
        try:
            if not self.send(Ping(id=ping_id, t=time.monotonic())):
                raise ConnectionError("data channel is not open")
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self._pending.pop(ping_id, None)

    def close(self) -> None:
        self.message_received.cancel_pending()
        for future in self._pending.values():
            future.cancel()

    def _on_raw(self, data: str | bytes) -> None:
        try:
            message = parse_message(data, MAX_MESSAGE_BYTES)
        except ProtocolError as exc:
            self.rejected += 1
            logger.info("%s: rejected data-channel message: %s", self.name, exc)
            self.send(Error(code=exc.code, message=str(exc)))
            return
        if isinstance(message, Ping):
            self.send(Pong(id=message.id, t=message.t))
            return
        if isinstance(message, Pong):
            future = self._pending.get(message.id)
            if future is not None and not future.done():
                rtt = (time.monotonic() - message.t) * 1000.0
                self.rtts_ms.append(rtt)
                future.set_result(rtt)
            return
        if isinstance(message, Error):
            self.errors_received.append(message)
            logger.warning("%s: peer reported error %s: %s", self.name, message.code, message.message)
        self.message_received.emit(message)
