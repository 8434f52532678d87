"""One outgoing A/V stream: a producer on a media clock, its two paced tracks, and their fan-out."""

from __future__ import annotations

from media.clock import MediaClock
from media.fanout import FanoutTrack, TrackFanout
from media.producer import AVProducer, AVScheduler
from media.tracks import AudioOutputTrack, VideoOutputTrack

VIDEO_QUEUE_FRAMES = 3  # per subscriber; older frames are dropped
AUDIO_QUEUE_FRAMES = 10  # 200 ms of 20 ms frames per subscriber


class AVStream:
    """Renders once, streams to any number of subscribers, all on one clock."""

    def __init__(self, producer: AVProducer, clock: MediaClock, fps: int, lookahead_s: float = 0.2) -> None:
        self.clock = clock
        self.producer = producer
        self.scheduler = AVScheduler(producer, clock, fps, lookahead_s)
        self.video = VideoOutputTrack(self.scheduler, producer.width, producer.height)
        self.audio = AudioOutputTrack(self.scheduler)
        self._video_fanout = TrackFanout(self.video, VIDEO_QUEUE_FRAMES)
        self._audio_fanout = TrackFanout(self.audio, AUDIO_QUEUE_FRAMES)

    def start(self) -> None:
        self.scheduler.start()

    def subscribe(self) -> tuple[FanoutTrack, FanoutTrack]:
        """``(audio, video)`` tracks for one more peer connection."""
        return self._audio_fanout.subscribe(), self._video_fanout.subscribe()

    @property
    def subscriber_count(self) -> int:
        return self._video_fanout.subscriber_count

    def queue_stats(self) -> dict[str, int]:
        """Sender-side queue depths and drops (for soak benchmarks)."""
        video, audio = self._video_fanout.queue_stats(), self._audio_fanout.queue_stats()
        return {
            "video_queued_max": video["queued_max"],
            "audio_queued_max": audio["queued_max"],
            "video_dropped": video["dropped"],
            "audio_dropped": audio["dropped"],
        }

    def interrupt(self) -> None:
        """Flush queued speech and frames; the next slot is idle."""
        self.scheduler.clear()

    async def stop(self) -> None:
        await self._video_fanout.close()
        await self._audio_fanout.close()
        await self.scheduler.stop()
        self.video.stop()
        self.audio.stop()
