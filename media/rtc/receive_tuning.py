"""Low-latency, loss-tolerant receive buffers for aiortc's RTCRtpReceiver.

aiortc's audio jitter buffer holds 4 packets before releasing one (~80 ms), and its video buffer
releases a frame only when the first packet of the *next* frame arrives (one frame period, 40 ms at
25 fps). On a LAN or loopback that is most of the latency. On a lossy link it is worse: aiortc sends one
NACK per hole and, if that NACK or its retransmission is lost too, video stalls until 512 packets pile up
(1-4 s freezes), while its audio buffer fills up and never drains.

This module holds the replacements (:mod:`media.rtc.patches` puts them into every receiver):

- audio packets are released as soon as they are next in sequence (waiting at most a couple of packets
  for a reordered one), so a loss never adds latency;
- video frames are released as soon as their marker-bit packet completes them; a hole is waited for while
  NACKs are repeated (every ~1.2 RTT, RTT measured from NACK to retransmission), and given up after
  ~1.6 RTT (at most 160 ms): the incomplete frame is skipped, decoding goes on with the next frame, and a PLI asks the
  sender for a key frame -- a short glitch instead of a freeze.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class RetransmissionRtt:
    """Round-trip time seen from NACK to retransmitted packet (EWMA), and the waits derived from it."""

    def __init__(self, initial_s: float = 0.1) -> None:
        self.rtt_s = initial_s
        self.samples = 0

    def observe(self, rtt_s: float) -> None:
        if 0 < rtt_s < 2.0:
            self.rtt_s = rtt_s if self.samples == 0 else 0.8 * self.rtt_s + 0.2 * rtt_s
            self.samples += 1

    @property
    def retry_after_s(self) -> float:
        """When to repeat a NACK whose retransmission has not come."""
        return min(0.3, max(0.02, 1.2 * self.rtt_s + 0.005))

    @property
    def give_up_after_s(self) -> float:
        """How long a hole may hold back complete frames behind it (bounded so no freeze passes 300 ms)."""
        return min(0.16, max(0.06, 1.6 * self.rtt_s))


class RetryingNackGenerator:
    """Drop-in for aiortc's NackGenerator that repeats NACKs until the packet comes or retries run out.

    aiortc calls ``add`` for every packet and, when it returns True, sends a NACK listing ``missing``;
    here ``missing`` is exactly the set due now (new holes and holes whose last NACK is older than the
    retry interval), so nothing is requested twice within one round trip.
    """

    def __init__(
        self, rtt: RetransmissionRtt, max_retries: int = 3, history: int = 512, clock: Clock = time.monotonic
    ) -> None:
        self.rtt = rtt
        self.max_retries = max_retries
        self.history = history
        self.clock = clock
        self.max_seq: int | None = None
        self.missing: set[int] = set()
        self.nacks_sent = 0
        self._pending: dict[int, tuple[float, int]] = {}  # seq -> (last NACK time, NACKs sent)

    def add(self, packet: RtpPacket) -> bool:
        now = self.clock()
        seq = packet.sequence_number
        due: set[int] = set()
        if self.max_seq is None:
            self.max_seq = seq
        elif uint16_gt(seq, self.max_seq):
            hole = uint16_add(self.max_seq, 1)
            while uint16_gt(seq, hole):
                self._pending[hole] = (now, 0)
                due.add(hole)
                hole = uint16_add(hole, 1)
            self.max_seq = seq
        elif seq in self._pending:
            sent_at, count = self._pending.pop(seq)
            if count:
                self.rtt.observe(now - sent_at)
        oldest = uint16_add(self.max_seq, -self.history)
        for missing_seq, (sent_at, count) in list(self._pending.items()):
            if uint16_gt(oldest, missing_seq) or count >= self.max_retries and now - sent_at > self.rtt.retry_after_s:
                del self._pending[missing_seq]  # too old, or given up
            elif count and now - sent_at >= self.rtt.retry_after_s and count < self.max_retries:
                due.add(missing_seq)
        for missing_seq in due:
            self._pending[missing_seq] = (now, self._pending[missing_seq][1] + 1)
        self.missing = due
        if due:
            self.nacks_sent += 1
        return bool(due)


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
    """Releases a video frame as soon as its last packet (RTP marker bit) completes it.

    A hole that holds complete frames back for longer than ``rtt.give_up_after_s`` is given up: packets up
    to the next frame start are dropped, the next ``add`` reports ``pli_flag`` so aiortc sends a PLI.
    """

    def __init__(
        self, capacity: int = 512, rtt: RetransmissionRtt | None = None, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self.rtt = rtt or RetransmissionRtt()
        self.clock = clock
        self.skipped_frames = 0
        self._stalled_since: float | None = None
        self._newest: int | None = None
        self._pli_due = False

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if self._pli_due:
            pli_flag, self._pli_due = True, False
        return pli_flag, frame

    def _packet(self, offset: int) -> RtpPacket | None:
        assert self._origin is not None
        return self._packets[(self._origin + offset) % self._capacity]

    def _next_frame_start(self, after: int, span: int) -> int | None:
        """Offset of the first packet past ``after`` that surely starts a frame (its predecessor ends one)."""
        for offset in range(after + 1, span + 1):
            packet, previous = self._packet(offset), self._packet(offset - 1)
            if packet is None or previous is None:
                continue
            if previous.marker or previous.timestamp != packet.timestamp:
                return offset
        return None

    def _take_complete_frame(self) -> tuple[JitterFrame | None, int | None]:
        """(the frame at the origin if complete, else None; the offset of the first hole, if any)."""
        packets: list[RtpPacket] = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packet(count)
            if packet is None:
                return None, count
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # the previous frame ended without a marker bit: it is complete all the same
                self.remove(count)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp), None  # type: ignore[attr-defined]
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp), None  # type: ignore[attr-defined]
        return None, None

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        if self._newest is None or uint16_gt(sequence_number, self._newest):
            self._newest = sequence_number
        frame, hole = self._take_complete_frame()
        span = uint16_add(self._newest, -self._origin)
        if frame is not None or hole is None or span <= hole or span >= self.capacity:
            self._stalled_since = None  # a frame came out, or nothing has arrived past the hole yet
            return frame
        now = self.clock()
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since < self.rtt.give_up_after_s:
            return None
        start = self._next_frame_start(hole, span)
        if start is None:
            return None  # the data past the hole does not yet show where a frame starts
        logger.debug(
            "video: gave up a hole after %.0f ms; skipping to the next frame", (now - self._stalled_since) * 1000
        )
        self.remove(start)
        self.skipped_frames += 1
        self._pli_due = True
        self._stalled_since = None
        frame, _ = self._take_complete_frame()
        return frame
