"""Face animators behind one interface: the CPU portrait by default, MuseTalk on the GPU."""

from peer_remote.face.base import FaceAnimator, FaceError

__all__ = ["FaceAnimator", "FaceError"]
