"""Low-latency receive buffers for aiortc's RTCRtpReceiver.

aiortc's audio jitter buffer holds 4 packets before releasing one (~80 ms), and its video buffer
releases a frame only when the first packet of the *next* frame arrives (one frame period, 40 ms at
25 fps). On a LAN or loopback that is most of the latency. This module is the one place that swaps
those buffers: audio packets are released as soon as they are next in sequence (waiting at most a
couple of packets for a reordered one), and video frames as soon as their marker-bit packet completes
them. ``tune_receiver`` must be called before the first packet arrives (right after addTransceiver).
"""

from __future__ import annotations

import logging

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.utils import uint16_add

logger = logging.getLogger(__name__)

_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


class LowLatencyAudioJitterBuffer(JitterBuffer):
    """Releases each audio packet (one Opus frame) as soon as it is next in sequence.

    A missing packet is waited for while fewer than ``reorder_window`` newer packets have arrived, then
    skipped. When several packets become ready at once, only the newest is released: audio latency
    stays at its floor instead of growing by a packet per late arrival.
    """

    def __init__(self, capacity: int = 16, reorder_window: int = 2) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=False)
        self.reorder_window = reorder_window
        self.skipped = 0
        self.dropped_for_latency = 0
        self._newest: int | None = None

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        if self._newest is None or uint16_add(sequence_number, -self._newest) < 0x8000:
            self._newest = sequence_number
        ahead = uint16_add(self._newest, -self._origin)
        # skip a hole once enough newer packets show it is lost
        while self._packets[self._origin % self._capacity] is None and ahead > self.reorder_window:
            self.remove(1)
            self.skipped += 1
            ahead -= 1
        ready = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                break
            ready.append(packet)
        if not ready:
            return None
        self.dropped_for_latency += len(ready) - 1
        self.remove(len(ready))
        newest = ready[-1]
        return JitterFrame(data=newest._data, timestamp=newest.timestamp)  # type: ignore[attr-defined]


class MarkerVideoJitterBuffer(JitterBuffer):
    """Releases a video frame as soon as its last packet (RTP marker bit) completes it."""

    def __init__(self, capacity: int = 512) -> None:
        super().__init__(capacity=capacity, is_video=True)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # the previous frame ended without a marker bit: it is complete all the same
                self.remove(count)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        return None


def tune_receiver(receiver: RTCRtpReceiver, kind: str) -> JitterBuffer:
    """Swap in the low-latency buffer for ``kind``; returns it (its counters are useful in stats)."""
    if not hasattr(receiver, _BUFFER_ATTRIBUTE):
        raise RuntimeError("this aiortc version has no receiver jitter buffer to tune; update media/receive_tuning.py")
    buffer: JitterBuffer = LowLatencyAudioJitterBuffer() if kind == "audio" else MarkerVideoJitterBuffer()
    setattr(receiver, _BUFFER_ATTRIBUTE, buffer)
    return buffer
