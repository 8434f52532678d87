"""Where a received frame belongs on a recording's timeline: its RTP time (the sender's media clock), not the
moment it arrived.

Each stream's RTP clock starts at a random origin, so the two are joined through arrival: a stream's anchor is
the smallest ``arrival - media time`` seen so far (its fastest trip: a busy first second, when every frame
came late, is corrected as soon as one comes quickly); every frame lands at ``anchor + media time``, exactly
as far from its neighbours as the sender spaced them, however bursty the network or the decoder was.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av

WRAP = 1 << 32  # RTP timestamps are 32 bits
RESYNC_S = 1.0  # a frame this far off its anchor belongs to a new session or another source


@dataclass
class Anchor:
    """``arrival - media time`` of a stream's fastest trip so far."""

    transit: float

    def time_of(self, media_time: float) -> float:
        return self.transit + media_time


class StreamTimeline:
    """One stream's RTP timestamps (unwrapped) mapped onto the arrival clock."""

    def __init__(self) -> None:
        self.anchor: Anchor | None = None
        self._last_raw: int | None = None
        self._cycles = 0

    def media_time(self, pts: int, time_base: Fraction) -> float:
        """Seconds on the sender's clock; RTP timestamp wrap-arounds (every 13 h of video) are unwrapped."""
        raw = pts % WRAP
        if self._last_raw is not None:
            if raw < self._last_raw and self._last_raw - raw > WRAP // 2:
                self._cycles += 1
            elif raw > self._last_raw and raw - self._last_raw > WRAP // 2:
                self._cycles -= 1  # a late frame from before the wrap
        self._last_raw = raw
        return float((raw + self._cycles * WRAP) * time_base)

    def observe(self, media_time: float, arrival: float) -> Anchor:
        """The anchor of a frame that arrived at ``arrival`` (it may still improve: read ``time_of`` late)."""
        anchor = self.anchor
        if anchor is None or abs(anchor.time_of(media_time) - arrival) > RESYNC_S:
            anchor = self.anchor = Anchor(arrival - media_time)
        else:
            anchor.transit = min(anchor.transit, arrival - media_time)
        return anchor

    def due(self, frame: av.AudioFrame | av.VideoFrame, arrival: float) -> float:
        """When ``frame`` would play with no delay at all: its RTP time on the arrival clock, free of the
        jitter of the network, the decoder and the event loop (a frame without RTP time: its arrival)."""
        if frame.pts is None or not frame.time_base:
            return arrival
        media_time = self.media_time(frame.pts, frame.time_base)
        return self.observe(media_time, arrival).time_of(media_time)
