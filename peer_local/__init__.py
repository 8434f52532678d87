"""peer_local package."""
