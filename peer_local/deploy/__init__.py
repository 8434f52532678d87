"""Deploying peer_remote to rented GPUs (Vast.ai)."""
