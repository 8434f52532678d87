"""Where the local peer puts the avatar's decoded audio and video."""

from peer_local.sinks.base import MediaSink
from peer_local.sinks.null import NullSink
from peer_local.sinks.recorder import RecorderSink

__all__ = ["MediaSink", "NullSink", "RecorderSink"]
