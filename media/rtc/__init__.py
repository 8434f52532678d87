"""WebRTC plumbing both peers share: ICE, codecs, the SDP allow-list, receive buffers, and the aiortc adjustments."""
