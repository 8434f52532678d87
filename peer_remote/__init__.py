"""peer_remote package."""
